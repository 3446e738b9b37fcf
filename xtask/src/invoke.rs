//! `cargo xtask invoke --env <ENV> --function <name> [--data <json> | --data-file <path> |
//! --method <M> --path <P> [--body <B>] [--header 'Name: value']...]`: invokes the function's
//! `live` alias in AWS and prints its answer and the tail of its log, as `sam remote invoke`
//! and `cargo lambda invoke --remote` do. For an HTTP function, `--path` builds the REST proxy
//! event API Gateway would send (the local gateway's own builder, routed by the route table).

use std::path::PathBuf;

use anyhow::{Context, bail};
use promo_core::routes::{FUNCTION_CRATES, Match, match_route};
use serde_json::Value;

use crate::environment::{clients, explained, load};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    pub env: String,
    /// The function: create, update, validate, list, redeem or migrate.
    #[arg(long)]
    pub function: String,
    /// The event, as JSON.
    #[arg(long, conflicts_with_all = ["data_file", "path"])]
    pub data: Option<String>,
    /// A file holding the event, as JSON.
    #[arg(long, conflicts_with = "path")]
    pub data_file: Option<PathBuf>,
    /// For an HTTP function: the request's path, query included (`/promo-codes?limit=5`).
    #[arg(long)]
    pub path: Option<String>,
    /// The request's method.
    #[arg(long, requires = "path", default_value = "GET")]
    pub method: String,
    /// The request's body.
    #[arg(long, requires = "path")]
    pub body: Option<String>,
    /// A request header, `Name: value`; repeat for several.
    #[arg(long = "header", requires = "path")]
    pub headers: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (env, spec) = load(&args.env)?;
    if !FUNCTION_CRATES.contains(&args.function.as_str()) {
        bail!("no function {:?}: expected one of {}", args.function, FUNCTION_CRATES.join(", "));
    }
    let http = args.path.is_some();
    let event = event(&args, &spec.api.stage)?;
    let function = deployer::names::Names::new(&env).function(&args.function);
    let runtime = tokio::runtime::Runtime::new()?;
    let answer = runtime
        .block_on(async {
            let clients = clients(&spec).await;
            deployer::invoke::invoke(&clients, &function, deployer::names::ALIAS, event.as_bytes()).await
        })
        .map_err(explained)?;
    let version = answer.executed_version.as_deref().unwrap_or("?");
    eprintln!("invoked {function}:{} (version {version})", deployer::names::ALIAS);
    if !answer.log_tail.is_empty() {
        eprintln!("--- log tail ---\n{}\n--- end of log tail ---", answer.log_tail.trim_end());
    }
    if let Some(error) = &answer.function_error {
        println!("{}", answer.payload);
        bail!("{function} failed ({error})");
    }
    if http {
        print_http_answer(&answer.payload)?;
    } else {
        println!("{}", pretty(&answer.payload));
    }
    Ok(())
}

/// The event to send: `--data`, `--data-file`, the REST proxy event of `--path`, or `{}`.
fn event(args: &Args, stage: &str) -> anyhow::Result<String> {
    if let Some(data) = &args.data {
        serde_json::from_str::<Value>(data).context("--data is not JSON")?;
        return Ok(data.clone());
    }
    if let Some(file) = &args.data_file {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        serde_json::from_str::<Value>(&text).with_context(|| format!("{} is not JSON", file.display()))?;
        return Ok(text);
    }
    let Some(path) = &args.path else {
        if args.function != "migrate" {
            bail!(
                "{} answers HTTP requests: give --method and --path (and --body, --header), or the event with --data",
                args.function
            );
        }
        return Ok("{}".into());
    };
    let route_path = path.split('?').next().unwrap_or_default();
    let (resource, function, params) = match match_route(&args.method, route_path) {
        Match::Found(route, params) => (route.path, route.function, params),
        Match::Preflight(preflight, params) => (preflight.path, preflight.function, params),
        Match::MethodNotAllowed(allowed) => bail!("{route_path} takes {}, not {}", allowed.join(", "), args.method),
        Match::NotFound => bail!("no route matches {route_path} (see CONTRACT.md's route table)"),
    };
    if function.name() != args.function {
        bail!("{} {route_path} is served by {}, not {}", args.method, function.name(), args.function);
    }
    let mut request = hyper::Request::builder().method(args.method.as_str()).uri(path.as_str());
    if args.body.is_some() {
        request = request.header("content-type", "application/json");
    }
    for header in &args.headers {
        let (name, value) =
            header.split_once(':').with_context(|| format!("--header {header:?} is not `Name: value`"))?;
        request = request.header(name.trim(), value.trim());
    }
    let (parts, ()) = request.body(()).context("building the request")?.into_parts();
    let request_id = format!("xtask-invoke-{:016x}", rand::random::<u64>());
    let body = args.body.as_deref().unwrap_or_default();
    Ok(crate::gateway::rest_event(&parts, stage, resource, &params, body.as_bytes(), &request_id).to_string())
}

/// A REST proxy answer as a person reads an HTTP response: status, headers, then the body.
fn print_http_answer(payload: &str) -> anyhow::Result<()> {
    let answer: Value = serde_json::from_str(payload).context("the function's answer is not JSON")?;
    let status = answer["statusCode"].as_u64().context("the answer has no statusCode")?;
    println!("HTTP {status}");
    let mut headers: Vec<(String, String)> = Vec::new();
    for (name, value) in answer["headers"].as_object().into_iter().flatten() {
        headers.push((name.clone(), value.as_str().unwrap_or_default().to_owned()));
    }
    for (name, values) in answer["multiValueHeaders"].as_object().into_iter().flatten() {
        for value in values.as_array().into_iter().flatten() {
            headers.push((name.clone(), value.as_str().unwrap_or_default().to_owned()));
        }
    }
    headers.sort();
    headers.dedup();
    for (name, value) in headers {
        println!("{name}: {value}");
    }
    println!();
    println!("{}", pretty(answer["body"].as_str().unwrap_or_default()));
    Ok(())
}

/// JSON indented, anything else as it is.
fn pretty(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| text.to_owned())
}
