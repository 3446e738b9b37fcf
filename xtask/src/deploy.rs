//! `cargo xtask deploy --env <ENV> [--yes]`: builds the zips and converges AWS to the
//! environment file, printing a line per resource with its time.

use std::time::Instant;

use crate::environment::{check_protected, clients, explained, load, zips};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    pub env: String,
    /// Required for an environment marked `protected: true`.
    #[arg(long)]
    pub yes: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (env, spec) = load(&args.env)?;
    check_protected(&env, &spec, args.yes, "deploying to it")?;
    let zips = zips(&spec)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let started = Instant::now();
    let (report, calls, writes) = runtime.block_on(async {
        let clients = clients(&spec).await;
        let reporter = crate::progress::Reporter::new();
        let report = deployer::apply::deploy(&clients, &env, &spec, &zips, &|e, d| reporter.report(e, d)).await;
        (report, clients.log.calls().len(), clients.log.writes().len())
    });
    let report = report.map_err(explained)?;
    if report.plan.is_empty() {
        println!("No changes: {env} already matches environments/{env}.yaml.");
    } else {
        print!("{}", report.plan);
    }
    println!("Done in {:.1?}: {calls} AWS calls, {writes} of them writes.", started.elapsed());
    Ok(())
}
