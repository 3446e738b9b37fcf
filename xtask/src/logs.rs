//! `cargo xtask logs --env <ENV> [--function <name>] [--since 10m] [--follow] [--filter <pattern>]`:
//! the functions' CloudWatch Logs, interleaved by time, one line per event with the function's
//! name; JSON log lines (the functions log JSON on Lambda) rendered as level, request id, the
//! message and the other fields. `--follow` polls for new lines until Ctrl-C.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{TimeZone, Utc};
use deployer::logs::LogLine;
use promo_core::routes::FUNCTION_CRATES;
use serde_json::Value;

use crate::environment::{clients, explained, load};

/// How often `--follow` asks for new lines.
const FOLLOW_EVERY: Duration = Duration::from_secs(2);

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    pub env: String,
    /// One function (create, update, validate, list, redeem, migrate); all of them by default.
    #[arg(long)]
    pub function: Option<String>,
    /// How far back to start: a number and s, m, h or d.
    #[arg(long, default_value = "10m", value_parser = parse_since)]
    pub since: Duration,
    /// Keep printing new lines until Ctrl-C.
    #[arg(long)]
    pub follow: bool,
    /// A CloudWatch Logs filter pattern (`ERROR`, `"status=500"`, `{ $.level = "ERROR" }`).
    #[arg(long)]
    pub filter: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (env, spec) = load(&args.env)?;
    let crates: Vec<&str> = match &args.function {
        Some(f) if FUNCTION_CRATES.contains(&f.as_str()) => vec![f.as_str()],
        Some(f) => bail!("no function {f:?}: expected one of {}", FUNCTION_CRATES.join(", ")),
        None => FUNCTION_CRATES.to_vec(),
    };
    let names = deployer::names::Names::new(&env);
    let functions: Vec<(String, String)> = crates.iter().map(|c| (c.to_string(), names.function(c))).collect();
    let since = i64::try_from(args.since.as_millis()).context("--since is too long")?;
    let mut start = Utc::now().timestamp_millis() - since;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let clients = clients(&spec).await;
        let mut seen: HashSet<String> = HashSet::new();
        loop {
            let lines =
                deployer::logs::read(&clients, &functions, start, args.filter.as_deref()).await.map_err(explained)?;
            for line in lines.iter().filter(|l| !seen.contains(&l.event_id)) {
                println!("{}", render(line));
            }
            if !args.follow {
                return anyhow::Ok(());
            }
            // Ask again from the newest line's millisecond; the lines already printed of that
            // millisecond are skipped by id.
            if let Some(newest) = lines.last() {
                start = newest.timestamp;
                seen = lines.iter().filter(|l| l.timestamp == newest.timestamp).map(|l| l.event_id.clone()).collect();
            }
            tokio::time::sleep(FOLLOW_EVERY).await;
        }
    })
}

fn parse_since(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration such as 30s, 10m, 2h or 1d");
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    Ok(Duration::from_secs(number * seconds))
}

/// `HH:MM:SS.mmm function  message`; a JSON line as `LEVEL [request id] message key=value ...`.
pub fn render(line: &LogLine) -> String {
    let time = Utc
        .timestamp_millis_opt(line.timestamp)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_default();
    let text = match serde_json::from_str::<Value>(&line.message) {
        Ok(Value::Object(fields)) => render_json(&fields),
        _ => line.message.clone(),
    };
    format!("{time} {:<8} {text}", line.function)
}

/// The fields a person looks for first, then the rest as `key=value`. Lambda's JSON format puts
/// them at the top level (`level`, `message`, `requestId`); tracing's JSON nests the event's
/// own under `fields` and the request id in its span.
fn render_json(object: &serde_json::Map<String, Value>) -> String {
    let mut fields = object.clone();
    if let Some(Value::Object(inner)) = fields.remove("fields") {
        fields.extend(inner);
    }
    if let Some(Value::Object(span)) = fields.remove("span") {
        for (k, v) in span {
            fields.entry(k).or_insert(v);
        }
    }
    for noise in ["timestamp", "time", "target", "spans", "name"] {
        fields.remove(noise);
    }
    let text = |v: Value| match v {
        Value::String(s) => s,
        other => other.to_string(),
    };
    let mut out = Vec::new();
    if let Some(level) = fields.remove("level").map(text) {
        out.push(format!("{level:<5}"));
    }
    let request = ["requestId", "request_id", "record"].iter().find_map(|k| match fields.get(*k) {
        Some(Value::String(id)) => Some(id.clone()),
        Some(Value::Object(record)) => record.get("requestId").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    });
    fields.remove("requestId");
    fields.remove("request_id");
    if let Some(id) = request {
        out.push(format!("[{id}]"));
    }
    if let Some(kind) = fields.remove("type").map(text) {
        out.push(kind);
    }
    if let Some(message) = fields.remove("message").map(text) {
        out.push(message);
    }
    // Sorted by name whatever order serde_json's map keeps (it keeps insertion order when
    // another crate of the build turns on `preserve_order`).
    let mut rest: Vec<(String, Value)> = fields.into_iter().collect();
    rest.sort_by(|a, b| a.0.cmp(&b.0));
    out.extend(rest.into_iter().map(|(k, v)| format!("{k}={}", text(v))));
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(message: &str) -> LogLine {
        LogLine {
            timestamp: 1_796_000_000_123,
            function: "validate".into(),
            message: message.into(),
            event_id: "1".into(),
        }
    }

    #[test]
    fn plain_lines_keep_their_text_and_json_lines_lead_with_level_and_request_id() {
        assert_eq!(
            render(&line("START RequestId: abc Version: 3")),
            "2026-11-30 00:53:20.123 validate START RequestId: abc Version: 3"
        );
        let json = r#"{"timestamp":"2026-11-29T01:33:20.123Z","level":"INFO","fields":{"message":"request served","status":200,"method":"POST"},"target":"promo_core","span":{"requestId":"r-1","name":"Lambda runtime invoke"}}"#;
        assert_eq!(
            render(&line(json)),
            "2026-11-30 00:53:20.123 validate INFO  [r-1] request served method=POST status=200"
        );
        let platform = r#"{"time":"2026-11-29T01:33:20.123Z","type":"platform.report","record":{"requestId":"r-2","metrics":{"durationMs":2.5}}}"#;
        assert!(render(&line(platform)).contains("[r-2] platform.report"), "{}", render(&line(platform)));
    }

    #[test]
    fn since_takes_a_number_and_a_unit() {
        assert_eq!(parse_since("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_since("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_since("45s"), Ok(Duration::from_secs(45)));
        for bad in ["", "10", "m", "10 m", "1w", "-5m"] {
            assert!(parse_since(bad).is_err(), "{bad}");
        }
    }
}
