//! Cold starts: each function's release `bootstrap` (from its zip) exec'd under the Runtime
//! API emulator, timed from exec to its first poll for an event (init) and to its first
//! response. Each HTTP function starts twice: once answering a request without a token (no
//! database connection, no JWKS fetch), once a real request (token verified against the JWKS,
//! first connection to PostgreSQL). migrate's first invocation always connects.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};

use super::runtime::{Program, RuntimeApi, expect, unpack};
use super::stats::Latencies;
use super::{OWNER, Sizes, Tokens, data, proxy_event};
use crate::build::Artifact;

pub struct Row {
    pub function: String,
    pub zip_bytes: u64,
    pub init: Latencies,
    /// Exec to the first response of a request that needs neither the database nor the JWKS.
    pub first_without_db: Option<Latencies>,
    /// Exec to the first response of a real request: JWKS fetched, first database connection.
    pub first_with_db: Latencies,
}

pub async fn run(
    artifacts: &[Artifact],
    env: &HashMap<String, String>,
    tokens: &Tokens,
    sizes: &Sizes,
    out_dir: &Path,
) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for artifact in artifacts {
        let bootstrap = Program::bootstrap(&unpack(&artifact.zip, &out_dir.join("cold").join(&artifact.function))?);
        let mut init = Vec::new();
        let mut without_db = Vec::new();
        let mut with_db = Vec::new();
        for rep in 0..sizes.cold_reps {
            if artifact.function != "migrate" {
                let (event, _) = request(&artifact.function, None, rep)?;
                let (i, first) = start(&bootstrap, env, event, &artifact.function, 401).await?;
                init.push(i);
                without_db.push(first);
            }
            let (event, status) = request(&artifact.function, Some(tokens), rep)?;
            let (i, first) = start(&bootstrap, env, event, &artifact.function, status).await?;
            init.push(i);
            with_db.push(first);
        }
        let row = Row {
            function: artifact.function.clone(),
            zip_bytes: artifact.size,
            init: Latencies::new(init),
            first_without_db: (!without_db.is_empty()).then(|| Latencies::new(without_db)),
            first_with_db: Latencies::new(with_db),
        };
        println!(
            "    {:<9} init p50 {} ms, first response without db {} ms, with db {} ms",
            row.function,
            super::stats::ms(row.init.p50()),
            row.first_without_db.as_ref().map(|l| super::stats::ms(l.p50())).unwrap_or_else(|| "-".into()),
            super::stats::ms(row.first_with_db.p50()),
        );
        rows.push(row);
    }
    Ok(rows)
}

/// Execs the program with `event` waiting as its first invocation; returns (init, first
/// response), both from exec. The process is killed once it answered.
pub async fn start(
    program: &Program,
    env: &HashMap<String, String>,
    event: String,
    function: &str,
    status: u16,
) -> anyhow::Result<(Duration, Duration)> {
    let runtime = RuntimeApi::start().await?;
    let exec = std::time::Instant::now();
    let mut child = runtime.spawn_program(program, env)?;
    let reply = runtime.invoke(event).await;
    let _ = child.kill().await;
    let reply = reply.with_context(|| format!("the first invocation of {function}"))?;
    expect(function, &reply, status)?;
    let init = runtime.first_poll().context("the function never polled for an event")?;
    Ok((init - exec, reply.at - exec))
}

/// The first event of a start and the status it must get. Without tokens: no Authorization.
pub fn request(function: &str, tokens: Option<&Tokens>, rep: usize) -> anyhow::Result<(String, u16)> {
    let user = tokens.map(|t| t.user.as_str());
    let admin = tokens.map(|t| t.admin.as_str());
    let nonce = rand::random::<u32>();
    Ok(match function {
        "create" => {
            let body = format!(
                r#"{{"code":"COLD{nonce:08X}","owner":"{OWNER}","discount_percentage":15,"expires_at":"2031-01-01T00:00:00Z"}}"#
            );
            (proxy_event("POST", "/promo-codes", "/promo-codes", &[], admin, &body)?, 201)
        }
        "update" => {
            let code = data::code(1);
            let params = [("code", code.clone())];
            let body = format!(r#"{{"description":"cold start {rep}"}}"#);
            let uri = format!("/promo-codes/{code}");
            (proxy_event("PATCH", &uri, "/promo-codes/{code}", &params, admin, &body)?, 200)
        }
        "validate" => {
            let body = format!(r#"{{"code":"{}"}}"#, data::code(2));
            (proxy_event("POST", "/validations", "/validations", &[], user, &body)?, 200)
        }
        "list" => (proxy_event("GET", "/promo-codes?limit=20", "/promo-codes", &[], admin, "")?, 200),
        "redeem" => {
            let body = format!(r#"{{"code":"{}","order_id":"cold-{nonce:08x}"}}"#, data::code(3));
            (proxy_event("POST", "/redemptions", "/redemptions", &[], user, &body)?, 201)
        }
        "migrate" => ("{}".to_owned(), 200),
        other => bail!("no cold-start request for {other}"),
    })
}
