//! `cargo xtask plan --env <ENV> [--json] [--detailed-exitcode] [--deployed-code]`: what
//! `deploy` would change, changing nothing.

use crate::environment::{clients, explained, load, zips};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    pub env: String,
    /// `{"changes":[{"action","resource","fields"}]}` for CI.
    #[arg(long)]
    pub json: bool,
    /// Exit 0 when nothing would change, 2 when something would, 1 on error (Terraform's
    /// convention): a CI job fails on drift.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Compare against the code each function runs now instead of building this checkout, so
    /// that only configuration and infrastructure count: drift in an environment whose code
    /// lags the branch (prod, until the next promote).
    #[arg(long)]
    pub deployed_code: bool,
}

/// What `--detailed-exitcode` exits with when the plan has changes.
pub const CHANGES_EXIT_CODE: i32 = 2;

pub fn run(args: Args) -> anyhow::Result<()> {
    let (env, spec) = load(&args.env)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let built = if args.deployed_code { None } else { Some(zips(&spec)?) };
    let plan = runtime
        .block_on(async {
            let clients = clients(&spec).await;
            match built {
                Some(zips) => deployer::apply::plan_deploy(&clients, &env, &spec, &zips).await.map(|(plan, _)| plan),
                None => {
                    // One observation serves both: the code each function has is the artifact.
                    let observed = deployer::observe::observe(&clients, &env, &spec).await?;
                    let artifacts = observed
                        .state
                        .functions
                        .iter()
                        .map(|f| (f.crate_name.clone(), f.code_sha256.clone()))
                        .collect();
                    let want = deployer::desired::desired(&env, &spec, &artifacts, &observed.facts);
                    Ok(deployer::plan::plan(&want, &observed.state))
                }
            }
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
    if args.detailed_exitcode && !plan.is_empty() {
        std::process::exit(CHANGES_EXIT_CODE);
    }
    Ok(())
}
