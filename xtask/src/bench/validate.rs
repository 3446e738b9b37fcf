//! validate at concurrency 1, 8 and 32: N instances of the release validate function under the
//! Runtime API emulator, N callers. Each request is the whole path a Lambda instance runs: the
//! REST proxy event polled and parsed, the JWT verified, the code read from PostgreSQL, the
//! response posted. Next to it, `pgbench -S` (one indexed SELECT per transaction) with N
//! connections on the same server: this machine's limit for an indexed lookup.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::runtime::{RuntimeApi, expect};
use super::stats::Latencies;
use super::{Sizes, Tokens, data, proxy_event};

pub struct Level {
    pub concurrency: usize,
    pub rps: f64,
    pub latencies: Latencies,
    /// The same instances answering 401 to a request without a token: the cost of the runtime
    /// loop, the event and the response alone (no signature check, no database).
    pub floor_rps: f64,
    pub floor: Latencies,
    pub pgbench_tps: f64,
    pub pgbench: Latencies,
}

pub async fn run(
    cluster: &ephemeral_pg::Cluster,
    bootstrap: &Path,
    env: &HashMap<String, String>,
    tokens: &Tokens,
    sizes: &Sizes,
    out_dir: &Path,
) -> anyhow::Result<Vec<Level>> {
    let pgbench = pgbench_binary()?;
    let pg_url = cluster.url("pgbench");
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&cluster.url("postgres")).await?;
    sqlx::query("CREATE DATABASE pgbench").execute(&mut admin).await?;
    let scale = sizes.pgbench_scale.to_string();
    let status = tokio::process::Command::new(&pgbench)
        .args(["-i", "-q", "-s", &scale, &pg_url])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await?;
    anyhow::ensure!(status.success(), "pgbench -i failed");

    let mut levels = Vec::new();
    for &concurrency in &sizes.concurrency {
        let (rps, latencies) = handler_level(bootstrap, env, Some(&tokens.user), sizes, concurrency).await?;
        let (floor_rps, floor) = handler_level(bootstrap, env, None, sizes, concurrency).await?;
        let (pgbench_tps, pg) = pgbench_level(&pgbench, &pg_url, concurrency, sizes.seconds, out_dir).await?;
        println!(
            "    c={concurrency:<3} validate {rps:>6.0} rps p50 {} p99 {} ms | floor {floor_rps:>6.0} rps | pgbench -S {pgbench_tps:>6.0} tps p50 {} p99 {} ms",
            super::stats::ms(latencies.p50()),
            super::stats::ms(latencies.p99()),
            super::stats::ms(pg.p50()),
            super::stats::ms(pg.p99()),
        );
        levels.push(Level { concurrency, rps, latencies, floor_rps, floor, pgbench_tps, pgbench: pg });
    }
    Ok(levels)
}

/// `concurrency` instances of the release validate function, as many callers, for the
/// configured time: requests per second and the latency each caller saw. Without a token, each
/// request is answered 401 before any signature check or query.
async fn handler_level(
    bootstrap: &Path,
    env: &HashMap<String, String>,
    token: Option<&str>,
    sizes: &Sizes,
    concurrency: usize,
) -> anyhow::Result<(f64, Latencies)> {
    let runtime = Arc::new(RuntimeApi::start().await?);
    let mut instances = Vec::new();
    for _ in 0..concurrency {
        instances.push(runtime.spawn(bootstrap, env)?);
    }
    let token: Option<Arc<str>> = token.map(Into::into);
    let codes = sizes.codes;
    // Warm up every instance: init, the JWKS fetch, its database connection.
    let mut warm = tokio::task::JoinSet::new();
    for _ in 0..concurrency * 3 {
        let (runtime, token) = (runtime.clone(), token.clone());
        warm.spawn(async move { one(&runtime, token.as_deref(), codes).await });
    }
    while let Some(done) = warm.join_next().await {
        done??;
    }
    let deadline = Instant::now() + Duration::from_secs(sizes.seconds);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (runtime, token) = (runtime.clone(), token.clone());
        tasks.spawn(async move {
            let mut samples = Vec::new();
            while Instant::now() < deadline {
                samples.push(one(&runtime, token.as_deref(), codes).await?);
            }
            anyhow::Ok(samples)
        });
    }
    let mut samples = Vec::new();
    while let Some(done) = tasks.join_next().await {
        samples.extend(done??);
    }
    let elapsed = started.elapsed();
    for mut instance in instances {
        let _ = instance.kill().await;
    }
    Ok((samples.len() as f64 / elapsed.as_secs_f64(), Latencies::new(samples)))
}

/// One validation of a random code by its owner: 200, or 401 without a token; anything else
/// fails the bench.
async fn one(runtime: &RuntimeApi, token: Option<&str>, codes: u64) -> anyhow::Result<Duration> {
    let code = data::code(rand::random::<u64>() % codes + 1);
    let event = proxy_event("POST", "/validations", "/validations", &[], token, &format!(r#"{{"code":"{code}"}}"#))?;
    let started = Instant::now();
    let reply = runtime.invoke(event).await?;
    let took = started.elapsed();
    expect(&format!("validate of {code}"), &reply, if token.is_some() { 200 } else { 401 })?;
    Ok(took)
}

async fn pgbench_level(
    pgbench: &Path,
    url: &str,
    clients: usize,
    seconds: u64,
    out_dir: &Path,
) -> anyhow::Result<(f64, Latencies)> {
    let logs = out_dir.join("pgbench-logs");
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs)?;
    let prefix = logs.join("tx");
    let output = tokio::process::Command::new(pgbench)
        .args(["-S", "-n", "-M", "prepared"])
        .args(["-c", &clients.to_string(), "-j", &clients.min(2).to_string(), "-T", &seconds.to_string()])
        .arg("--log")
        .arg(format!("--log-prefix={}", prefix.display()))
        .arg(url)
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(output.status.success(), "pgbench -S failed: {}", String::from_utf8_lossy(&output.stderr));
    let tps = stdout
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .with_context(|| format!("no tps in pgbench's output: {stdout}"))?;
    // Per-transaction log lines: client, transaction, latency in microseconds, ...
    let mut samples = Vec::new();
    for entry in std::fs::read_dir(&logs)? {
        let text = std::fs::read_to_string(entry?.path())?;
        samples.extend(
            text.lines()
                .filter_map(|l| l.split_whitespace().nth(2))
                .filter_map(|us| us.parse::<u64>().ok())
                .map(Duration::from_micros),
        );
    }
    let _ = std::fs::remove_dir_all(&logs);
    Ok((tps, Latencies::new(samples)))
}

/// pgbench from the same installation as the server.
fn pgbench_binary() -> anyhow::Result<std::path::PathBuf> {
    let binaries = ephemeral_pg::find_binaries()?;
    let pgbench = binaries.postgres.with_file_name("pgbench");
    anyhow::ensure!(
        pgbench.exists(),
        "{} is missing: it comes with the Debian package `postgresql-contrib` (or `postgresql`)",
        pgbench.display()
    );
    Ok(pgbench)
}
