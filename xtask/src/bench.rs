//! `cargo xtask bench [--quick]`: the numbers we claim, measured on this machine next to its
//! limits, printed as a table and written to `target/bench/report.md` (with SVG charts).
//!
//! 1. validate: the full handler path (REST proxy event -> handler -> PostgreSQL) at
//!    concurrency 1, 8 and 32, next to `pgbench -S` on the same server and connection count.
//! 2. list: keyset pages at depth 1, 100 and 10,000 for every sort, both directions, next to
//!    the same page fetched with OFFSET (and checked equal to it).
//! 3. cold start: each release `bootstrap` under a Lambda Runtime API emulator: exec to first
//!    `/next` (init) and to the first response, with and without the first database connection.
//! 4. deployer: wall time, calls and writes of a no-op deploy against the emulator.
//! 5. what Lambda bills: CPU time per warm request (validate, list, redeem), validate at the
//!    CPU share of 128, 512 and 1,769 MB, and a Node.js 20 peer beside ours (CPU and cold start).
//!
//! `--quick` runs the same code on tiny sizes (`cargo xtask test` runs it, so the bench never
//! rots); its numbers mean nothing.

mod billed;
mod cold;
mod cpu;
mod data;
mod list;
mod noop_deploy;
mod report;
mod runtime;
mod stats;
mod validate;

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use xshell::Shell;

use crate::build::{self, Arch};
use crate::local::{LocalConfig, sign_token};
use crate::workspace_root;

#[derive(clap::Args)]
pub struct Args {
    /// Tiny sizes and short runs: proves the bench works, measures nothing.
    #[arg(long)]
    pub quick: bool,
}

/// How big and how long.
#[derive(Debug, Clone)]
pub struct Sizes {
    pub quick: bool,
    pub codes: u64,
    /// pgbench's scale: 100,000 rows of `pgbench_accounts` each.
    pub pgbench_scale: u32,
    /// Seconds each concurrency level runs (pgbench takes whole seconds).
    pub seconds: u64,
    pub concurrency: Vec<usize>,
    pub depths: Vec<u64>,
    pub keyset_reps: usize,
    pub offset_reps: usize,
    pub cold_reps: usize,
    pub noop_reps: usize,
    /// Sequential requests per CPU-per-request measurement.
    pub billed_requests: usize,
    /// Sequential validates per CPU share.
    pub share_requests: usize,
}

impl Sizes {
    fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                quick,
                codes: 3_000,
                pgbench_scale: 1,
                seconds: 1,
                concurrency: vec![1, 8, 32],
                depths: vec![1, 10, 100],
                keyset_reps: 5,
                offset_reps: 3,
                cold_reps: 1,
                noop_reps: 1,
                billed_requests: 100,
                share_requests: 50,
            }
        } else {
            Sizes {
                quick,
                codes: 1_000_000,
                pgbench_scale: 10,
                seconds: 5,
                concurrency: vec![1, 8, 32],
                depths: vec![1, 100, 10_000],
                keyset_reps: 200,
                offset_reps: 30,
                cold_reps: 5,
                noop_reps: 5,
                billed_requests: 5_000,
                share_requests: 2_000,
            }
        }
    }
}

/// What every part needs: a token for the owner of every code and for the back office.
pub struct Tokens {
    pub user: String,
    pub admin: String,
}

pub const OWNER: &str = "bench-user";
pub const PAGE: u32 = 20;

/// The REST proxy event API Gateway would send for this request (the local gateway's builder).
pub fn proxy_event(
    method: &str,
    uri: &str,
    resource: &str,
    params: &[(&str, String)],
    token: Option<&str>,
    body: &str,
) -> anyhow::Result<String> {
    let mut request = hyper::Request::builder().method(method).uri(uri).header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let (parts, ()) = request.body(())?.into_parts();
    let request_id = format!("bench-{:016x}", rand::random::<u64>());
    Ok(crate::gateway::rest_event(&parts, crate::gateway::STAGE, resource, params, body.as_bytes(), &request_id)
        .to_string())
}

/// The environment of every function instance: the database and the issuer `cargo xtask dev`
/// uses (the local ES256 issuer, or `AUTH_HS256_SECRET` when that is set, as for dev).
fn function_env(
    cluster: &ephemeral_pg::Cluster,
    local: &LocalConfig,
    jwks_url: &str,
) -> anyhow::Result<HashMap<String, String>> {
    let auth = crate::local::auth_config(local, jwks_url)?;
    let key = match auth.keys {
        promo_core::auth::KeySource::JwksUrl(url) => ("AUTH_JWKS_URL", url),
        promo_core::auth::KeySource::Hs256Secret(secret) => {
            ("AUTH_HS256_SECRET", String::from_utf8(secret).context("AUTH_HS256_SECRET is not UTF-8")?)
        }
    };
    Ok([
        ("DATABASE_URL", cluster.url(data::DATABASE)),
        key,
        ("AUTH_ISSUER", auth.issuer),
        ("AUTH_AUDIENCE", auth.audience),
        ("AUTH_ADMIN_SCOPE", auth.admin_scope),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let sizes = Sizes::new(args.quick);
    let out_dir = workspace_root().join("target/bench");
    std::fs::create_dir_all(&out_dir)?;
    let sh = Shell::new()?;
    sh.change_dir(workspace_root());

    println!("==> building the release zips (x86_64)");
    let artifacts = build::build(&sh, Arch::X86_64)?;

    println!("==> installing the Node.js peer (tools/node-peer)");
    let peer_script = crate::tools::node_peer(&sh)?;

    let local = LocalConfig::load()?;
    let tokens =
        Tokens { user: sign_token(&local, OWNER, false, 3600)?, admin: sign_token(&local, "bench-admin", true, 3600)? };
    let fresh_tokens = (0..sizes.billed_requests.max(sizes.share_requests) + billed::WARM_UP)
        .map(|_| sign_token(&local, OWNER, false, 3600))
        .collect::<anyhow::Result<Vec<_>>>()?;

    // The cluster lives on this thread, which outlives everything that uses it.
    println!("==> starting PostgreSQL and loading {} codes", sizes.codes);
    let cluster =
        ephemeral_pg::Cluster::start(ephemeral_pg::Options { max_connections: Some(100), ..Default::default() })?;
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(async {
        let database = data::load(&cluster, sizes.codes).await.context("loading the benchmark data")?;
        let jwks = data::JwksServer::start().await?;
        let env = function_env(&cluster, &local, &jwks.url)?;
        let bootstrap = |function: &str| -> anyhow::Result<PathBuf> {
            let artifact = artifacts.iter().find(|a| a.function == function).context("no zip for a function")?;
            runtime::unpack(&artifact.zip, &out_dir.join("functions").join(function))
        };

        println!("==> validate vs pgbench -S");
        let validate = validate::run(&cluster, &bootstrap("validate")?, &env, &tokens, &sizes, &out_dir).await?;
        println!("==> list: keyset vs OFFSET");
        let list = list::run(&database, &bootstrap("list")?, &env, &tokens, &sizes).await?;
        println!("==> cold starts");
        let cold = cold::run(&artifacts, &env, &tokens, &sizes, &out_dir).await?;
        println!("==> what Lambda bills: CPU per request, CPU shares, the Node.js peer");
        let mut ours = HashMap::new();
        for function in ["validate", "list", "redeem"] {
            ours.insert(function, runtime::Program::bootstrap(&bootstrap(function)?));
        }
        let setup = billed::Setup {
            ours,
            node: runtime::Program::node(&peer_script)?,
            env: &env,
            tokens: &tokens,
            fresh_tokens: &fresh_tokens,
            sizes: &sizes,
        };
        billed::check_peer_answers_as_ours(&setup).await?;
        let billed = billed::run(&setup).await?;
        println!("==> no-op deploy against the emulator");
        let noop = noop_deploy::run(&artifacts, &sizes).await?;
        anyhow::Ok(report::Report { sizes: sizes.clone(), validate, list, cold, noop, billed })
    });
    drop(runtime);
    cluster.stop();
    let report = result?;

    let path: PathBuf = out_dir.join("report.md");
    report.write(&out_dir)?;
    print!("{}", report.table());
    println!("\nreport: {}", path.display());
    Ok(())
}
