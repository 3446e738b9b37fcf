//! `cargo xtask destroy --env <ENV> --yes`: deletes everything `deploy` made for that
//! environment, and nothing else.

use std::time::Instant;

use crate::environment::{clients, explained, load};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    pub env: String,
    /// Always required: destroying deletes the database too.
    #[arg(long)]
    pub yes: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (env, spec) = load(&args.env)?;
    if !args.yes {
        anyhow::bail!("destroy deletes every resource of {env}, its database included: run it with --yes");
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let started = Instant::now();
    let report = runtime
        .block_on(async {
            let clients = clients(&spec).await;
            let reporter = crate::progress::Reporter::new();
            deployer::apply::destroy(&clients, &env, &spec, &|e, d| reporter.report(e, d)).await
        })
        .map_err(explained)?;
    println!("Destroyed {env}: {} resources in {:.1?}.", report.plan.changes.len(), started.elapsed());
    Ok(())
}
