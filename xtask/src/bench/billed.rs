//! What Lambda bills, measured the way it bills: the CPU time a warm instance burns per request
//! (validate with one token and with a token per request, list, redeem), validate's latency
//! with the instance held to the CPU share of 128, 512 and 1,769 MB, and the same for a
//! Node.js 20 peer (`tools/node-peer`: jose + pg), with both cold starts.
//!
//! Every instance is a real process polling the Runtime API emulator, requests are sequential
//! (one Lambda instance serves one request at a time), and a fresh instance starts each
//! measurement, so the cache of verified tokens starts empty.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::cpu::{CpuShare, cpu_time};
use super::runtime::{Program, RuntimeApi, expect};
use super::stats::Latencies;
use super::{OWNER, PAGE, Sizes, Tokens, cold, data, proxy_event};

/// Whose function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implementation {
    Ours,
    NodePeer,
}

impl Implementation {
    pub fn name(self) -> &'static str {
        match self {
            Implementation::Ours => "promo-codes (Rust)",
            Implementation::NodePeer => "Node.js 20 peer (jose + pg)",
        }
    }
}

/// The requests measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// validate without a token: answered 401 before any signature check or query, so this is
    /// the runtime loop, the event and the response alone.
    NoToken,
    /// validate, every request with the same token (a client checking several codes).
    ValidateOneToken,
    /// validate, every request with a token the instance has not seen (many users).
    ValidateNewToken,
    List,
    Redeem,
}

impl Request {
    pub fn name(self) -> &'static str {
        match self {
            Request::NoToken => "validate, no token (401)",
            Request::ValidateOneToken => "validate, one token",
            Request::ValidateNewToken => "validate, a new token each",
            Request::List => "list, first page",
            Request::Redeem => "redeem, a new order each",
        }
    }
}

pub struct CpuRow {
    pub implementation: Implementation,
    pub request: Request,
    pub requests: usize,
    pub cpu_per_request: Duration,
    pub latencies: Latencies,
}

pub struct ShareRow {
    pub memory_mb: u64,
    pub fraction: f64,
    pub implementation: Implementation,
    pub rps: f64,
    pub latencies: Latencies,
}

pub struct ColdRow {
    pub implementation: Implementation,
    pub init: Latencies,
    pub first_response: Latencies,
}

pub struct Billed {
    pub cpu: Vec<CpuRow>,
    pub shares: Vec<ShareRow>,
    /// Why the share rows were not measured, when they were not.
    pub shares_skipped: Option<String>,
    pub cold: Vec<ColdRow>,
}

pub const MEMORY_SIZES_MB: [u64; 3] = [128, 512, 1769];

/// What one measurement needs: the programs, their environment and the tokens.
pub struct Setup<'a> {
    pub ours: HashMap<&'static str, Program>,
    pub node: Program,
    pub env: &'a HashMap<String, String>,
    pub tokens: &'a Tokens,
    /// Tokens for [`OWNER`], all different: at least as many as any run's requests.
    pub fresh_tokens: &'a [String],
    pub sizes: &'a Sizes,
}

pub async fn run(setup: &Setup<'_>) -> anyhow::Result<Billed> {
    let sizes = setup.sizes;
    let mut cpu = Vec::new();
    let measured = [
        (Implementation::Ours, Request::NoToken),
        (Implementation::Ours, Request::ValidateOneToken),
        (Implementation::Ours, Request::ValidateNewToken),
        (Implementation::Ours, Request::List),
        (Implementation::Ours, Request::Redeem),
        (Implementation::NodePeer, Request::ValidateOneToken),
        (Implementation::NodePeer, Request::ValidateNewToken),
    ];
    for (implementation, request) in measured {
        let run = sequential(setup, implementation, request, None, sizes.billed_requests).await?;
        let row = CpuRow {
            implementation,
            request,
            requests: run.latencies.len(),
            cpu_per_request: run.cpu / u32::try_from(run.latencies.len().max(1))?,
            latencies: run.latencies,
        };
        println!(
            "    {:<28} {:<26} CPU {:>7.1} µs per request, p50 {} ms",
            implementation.name(),
            request.name(),
            row.cpu_per_request.as_secs_f64() * 1e6,
            super::stats::ms(row.latencies.p50())
        );
        cpu.push(row);
    }

    let mut shares = Vec::new();
    let mut shares_skipped = None;
    'sizes: for memory_mb in MEMORY_SIZES_MB {
        for implementation in [Implementation::Ours, Implementation::NodePeer] {
            let share = match CpuShare::create(memory_mb) {
                Ok(share) => share,
                Err(why) => {
                    println!("    CPU shares skipped: {why}");
                    shares_skipped = Some(why);
                    break 'sizes;
                }
            };
            let run = sequential(setup, implementation, Request::ValidateNewToken, Some(&share), sizes.share_requests)
                .await?;
            let row = ShareRow {
                memory_mb,
                fraction: share.fraction(),
                implementation,
                rps: run.latencies.len() as f64 / run.wall.as_secs_f64(),
                latencies: run.latencies,
            };
            println!(
                "    {memory_mb:>4} MB ({:>5.1}% of a vCPU) {:<28} {:>6.0} req/s p50 {} p99 {} ms",
                row.fraction * 100.0,
                implementation.name(),
                row.rps,
                super::stats::ms(row.latencies.p50()),
                super::stats::ms(row.latencies.p99())
            );
            shares.push(row);
        }
    }

    let mut cold = Vec::new();
    for implementation in [Implementation::Ours, Implementation::NodePeer] {
        let program = program(setup, implementation, Request::ValidateOneToken)?;
        let (mut init, mut first) = (Vec::new(), Vec::new());
        for rep in 0..sizes.cold_reps {
            let (event, status) = cold::request("validate", Some(setup.tokens), rep)?;
            let (i, f) = cold::start(program, setup.env, event, "validate", status).await?;
            init.push(i);
            first.push(f);
        }
        let row = ColdRow { implementation, init: Latencies::new(init), first_response: Latencies::new(first) };
        println!(
            "    cold start of {:<28} init {} ms, first response {} ms",
            implementation.name(),
            super::stats::ms(row.init.p50()),
            super::stats::ms(row.first_response.p50())
        );
        cold.push(row);
    }
    Ok(Billed { cpu, shares, shares_skipped, cold })
}

fn program<'a>(setup: &'a Setup<'_>, implementation: Implementation, request: Request) -> anyhow::Result<&'a Program> {
    match implementation {
        Implementation::NodePeer => Ok(&setup.node),
        Implementation::Ours => {
            let function = match request {
                Request::NoToken | Request::ValidateOneToken | Request::ValidateNewToken => "validate",
                Request::List => "list",
                Request::Redeem => "redeem",
            };
            setup.ours.get(function).with_context(|| format!("no bootstrap for {function}"))
        }
    }
}

/// What a sequential run measured.
struct Run {
    /// User + system time of the instance over the measured requests.
    cpu: Duration,
    wall: Duration,
    latencies: Latencies,
}

/// A fresh instance (held to `share` when given), warmed up, then `requests` requests one
/// after another; the instance's CPU time is read before and after the measured requests.
async fn sequential(
    setup: &Setup<'_>,
    implementation: Implementation,
    request: Request,
    share: Option<&CpuShare>,
    requests: usize,
) -> anyhow::Result<Run> {
    let runtime = RuntimeApi::start().await?;
    let mut instance = runtime.spawn_program(program(setup, implementation, request)?, setup.env)?;
    let pid = instance.id().context("the instance exited at once")?;
    let result = async {
        if let Some(share) = share {
            share.hold(pid)?;
        }
        // Warm-up: init, the JWKS fetch, the database connection, the JIT for node. Its tokens
        // are not the measured ones.
        let fresh = setup.fresh_tokens.len();
        for n in 0..WARM_UP {
            one(&runtime, request, token(setup, request, fresh - WARM_UP + n), n).await?;
        }
        let cpu_before = cpu_time(pid)?;
        let started = Instant::now();
        let mut samples = Vec::with_capacity(requests);
        for n in 0..requests {
            samples.push(one(&runtime, request, token(setup, request, n), WARM_UP + n).await?);
        }
        let wall = started.elapsed();
        let cpu = cpu_time(pid)? - cpu_before;
        anyhow::Ok(Run { cpu, wall, latencies: Latencies::new(samples) })
    }
    .await;
    let _ = instance.kill().await;
    result.with_context(|| format!("{} {}", implementation.name(), request.name()))
}

/// Requests before the measured ones; the last tokens of `fresh_tokens` serve them.
pub const WARM_UP: usize = 20;

/// The token of the `n`-th request: the `n`-th fresh one when each request has its own.
fn token<'a>(setup: &'a Setup<'_>, request: Request, n: usize) -> &'a str {
    match request {
        Request::ValidateNewToken => &setup.fresh_tokens[n],
        Request::List => &setup.tokens.admin,
        Request::NoToken | Request::ValidateOneToken | Request::Redeem => &setup.tokens.user,
    }
}

/// One request, answered as it must be; its latency as the caller saw it.
async fn one(runtime: &RuntimeApi, request: Request, token: &str, n: usize) -> anyhow::Result<Duration> {
    let code = data::code(rand::random::<u64>() % CODES_USED + 1);
    let (event, status) = match request {
        Request::NoToken => {
            let body = format!(r#"{{"code":"{code}"}}"#);
            (proxy_event("POST", "/validations", "/validations", &[], None, &body)?, 401)
        }
        Request::ValidateOneToken | Request::ValidateNewToken => {
            let body = format!(r#"{{"code":"{code}"}}"#);
            (proxy_event("POST", "/validations", "/validations", &[], Some(token), &body)?, 200)
        }
        Request::List => {
            let uri = format!("/promo-codes?limit={PAGE}");
            (proxy_event("GET", &uri, "/promo-codes", &[], Some(token), "")?, 200)
        }
        Request::Redeem => {
            let order = format!("bench-{:016x}-{n}", rand::random::<u64>());
            let body = format!(r#"{{"code":"{code}","order_id":"{order}"}}"#);
            (proxy_event("POST", "/redemptions", "/redemptions", &[], Some(token), &body)?, 201)
        }
    };
    let started = Instant::now();
    let reply = runtime.invoke(event).await?;
    let took = started.elapsed();
    expect(&format!("{} of {code} for {OWNER}", request.name()), &reply, status)?;
    Ok(took)
}

/// The codes requests pick from: the first ones of every data set (the quick one included).
const CODES_USED: u64 = 1_000;

/// The peer's first answer must be ours, field for field, or the comparison means nothing.
pub async fn check_peer_answers_as_ours(setup: &Setup<'_>) -> anyhow::Result<()> {
    let mut answers = Vec::new();
    for implementation in [Implementation::Ours, Implementation::NodePeer] {
        let runtime = RuntimeApi::start().await?;
        let mut instance =
            runtime.spawn_program(program(setup, implementation, Request::ValidateOneToken)?, setup.env)?;
        let body = format!(r#"{{"code":"{}"}}"#, data::code(7));
        let event = proxy_event("POST", "/validations", "/validations", &[], Some(&setup.tokens.user), &body)?;
        let reply = runtime.invoke(event).await;
        let _ = instance.kill().await;
        let reply = reply.with_context(|| format!("the first validate of {}", implementation.name()))?;
        expect(implementation.name(), &reply, 200)?;
        let document: serde_json::Value = serde_json::from_str(&reply.body)?;
        let answer: serde_json::Value = serde_json::from_str(document["body"].as_str().unwrap_or_default())?;
        answers.push(answer);
    }
    anyhow::ensure!(
        answers[0] == answers[1],
        "the Node.js peer answers {} where ours answers {}",
        answers[1],
        answers[0]
    );
    Ok(())
}
