//! `cargo xtask outputs --env <ENV> [--json]`: what is deployed.

use crate::environment::{clients, explained, load};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    pub env: String,
    /// Compact JSON on one line (the default is indented).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (env, spec) = load(&args.env)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let outputs = runtime
        .block_on(async {
            let clients = clients(&spec).await;
            deployer::outputs::outputs(&clients, &env, &spec).await
        })
        .map_err(explained)?;
    if args.json {
        println!("{outputs}");
    } else {
        println!("{}", serde_json::to_string_pretty(&outputs)?);
    }
    Ok(())
}
