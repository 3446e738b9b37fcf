//! `cargo xtask plan --env <ENV> [--json] [--detailed-exitcode] [--deployed-code]`: what
//! `deploy` would change, changing nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;

use deployer::apply::Zip;

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
    let (plan, _) = runtime
        .block_on(async {
            let clients = clients(&spec).await;
            let zips = match built {
                Some(zips) => zips,
                None => deployed_code(&clients, &env, &spec).await?,
            };
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
    if args.detailed_exitcode && !plan.is_empty() {
        std::process::exit(CHANGES_EXIT_CODE);
    }
    Ok(())
}

/// The code each existing function's `$LATEST` has, as the artifacts to plan with: no code
/// change is planned for a function that exists.
async fn deployed_code(
    clients: &deployer::aws::Clients,
    env: &deployer::config::EnvName,
    spec: &deployer::config::EnvironmentSpec,
) -> Result<BTreeMap<String, Zip>, deployer::error::DeployError> {
    let observed = deployer::observe::observe(clients, env, spec).await?;
    Ok(observed
        .state
        .functions
        .into_iter()
        .map(|f| (f.crate_name, Zip { path: PathBuf::new(), code_sha256: f.code_sha256 }))
        .collect())
}
