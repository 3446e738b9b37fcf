//! `cargo xtask promote --from <ENV> --to <ENV> [--yes]`: deploys to the target exactly the
//! code `live` runs in the source (downloaded from Lambda, SHA-256 checked), with the target's
//! own configuration. Nothing is rebuilt: what was tested is what ships.

use std::time::Instant;

use anyhow::Context;

use crate::environment::{check_protected, clients, explained, load};
use crate::workspace_root;

#[derive(clap::Args)]
pub struct Args {
    /// The environment whose running code is promoted.
    #[arg(long)]
    pub from: String,
    /// The environment that receives it.
    #[arg(long)]
    pub to: String,
    /// Required when the target is marked `protected: true`.
    #[arg(long)]
    pub yes: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (source, source_spec) = load(&args.from)?;
    let (target, target_spec) = load(&args.to)?;
    anyhow::ensure!(source != target, "promote needs two different environments, got {source} twice");
    check_protected(&target, &target_spec, args.yes, "promoting to it")?;
    let dir = workspace_root().join("target/promote").join(source.as_str());
    let runtime = tokio::runtime::Runtime::new()?;
    let started = Instant::now();
    let reporter = crate::progress::Reporter::new();
    let progress = |e: deployer::progress::Event<'_>, d: std::time::Duration| reporter.report(e, d);
    let (report, calls, writes) = runtime.block_on(async {
        let source_clients = clients(&source_spec).await;
        let zips = deployer::promote::fetch_live_code(&source_clients, &source, &source_spec, &target_spec, &dir)
            .await
            .map_err(explained)
            .with_context(|| format!("fetching the code live in {source}"))?;
        for (function, zip) in &zips {
            eprintln!("  {function}: {} from {source}", zip.code_sha256);
        }
        let target_clients = clients(&target_spec).await;
        let report = deployer::apply::deploy(&target_clients, &target, &target_spec, &zips, &progress)
            .await
            .map_err(explained)
            .with_context(|| format!("deploying to {target}"))?;
        anyhow::Ok((report, target_clients.log.calls().len(), target_clients.log.writes().len()))
    })?;
    if report.plan.is_empty() {
        println!("No changes: {target} already runs the code of {source}.");
    } else {
        print!("{}", report.plan);
    }
    println!(
        "Promoted {source} -> {target} in {:.1?}: {calls} AWS calls to {target}, {writes} of them writes.",
        started.elapsed()
    );
    Ok(())
}
