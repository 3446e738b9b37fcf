//! `cargo xtask plan --env <ENV> [--json]`: what `deploy` would change, changing nothing.

use crate::environment::{clients, explained, load, zips};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    pub env: String,
    /// `{"changes":[{"action","resource","fields"}]}` for CI.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (env, spec) = load(&args.env)?;
    let zips = zips(&spec)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let (plan, _) = runtime
        .block_on(async {
            let clients = clients(&spec).await;
            deployer::apply::plan_deploy(&clients, &env, &spec, &zips).await
        })
        .map_err(explained)?;
    if args.json {
        let changes: Vec<_> = plan
            .changes
            .iter()
            .map(|c| serde_json::json!({"action": c.action, "resource": c.resource, "fields": c.fields}))
            .collect();
        println!("{}", serde_json::json!({ "changes": changes }));
    } else {
        print!("{plan}");
    }
    Ok(())
}
