//! `cargo xtask rollback --env <ENV> [--yes]`: points `live` back at the versions the latest
//! release moved it from (or stops a running canary), one UpdateAlias per function. The next
//! deploy moves it forward again, so fix the code or the file before deploying.

use crate::environment::{check_protected, clients, explained, load};

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
    check_protected(&env, &spec, args.yes, "rolling it back")?;
    let runtime = tokio::runtime::Runtime::new()?;
    let rolled = runtime
        .block_on(async {
            let clients = clients(&spec).await;
            deployer::release::rollback(&clients, &env).await
        })
        .map_err(explained)?;
    for r in &rolled {
        println!("{}: live -> version {} (was {})", r.function, r.to, r.from);
    }
    println!("Rolled back {} function(s) of {env}. The database keeps its migrations.", rolled.len());
    Ok(())
}
