//! `cargo xtask`: the commands engineers and CI run. One file per command; this is the one match.

mod bench;
mod build;
mod deploy;
mod destroy;
mod dev;
mod emulator;
mod environment;
mod gateway;
mod invoke;
mod local;
mod logs;
mod outputs;
mod plan;
mod progress;
mod promote;
mod rollback;
mod schemathesis;
mod test;
mod token;
mod tools;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "promo-codes: test, run and ship the service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what the tests need, then run every check and test (CI runs exactly this).
    #[command(
        after_help = "Examples:\n  cargo xtask test             # what CI runs\n  cargo xtask test --no-lint   # skip fmt, clippy and actionlint"
    )]
    Test(test::Args),
    /// Run the whole service locally on an embedded PostgreSQL.
    #[command(
        after_help = "Examples:\n  cargo xtask dev\n  cargo xtask dev --port 3001\n  curl -H \"Authorization: Bearer $(cargo xtask token --sub back-office --admin)\" http://127.0.0.1:3000/promo-codes"
    )]
    Dev(dev::Args),
    /// Print a JWT that the local stack accepts.
    #[command(
        after_help = "Examples:\n  cargo xtask token --sub alice\n  cargo xtask token --sub back-office --admin --ttl 600\n  cargo xtask token --jwks     # the local issuer's key set"
    )]
    Token(token::Args),
    /// Build every function as a Lambda zip and print its path, size and SHA-256.
    #[command(after_help = "Examples:\n  cargo xtask build --arch arm64\n  cargo xtask build --arch x86_64 --json")]
    Build(build::Args),
    /// Show what `deploy` would create, update or delete, changing nothing.
    #[command(
        after_help = "Examples:\n  cargo xtask plan --env dev\n  cargo xtask plan --env prod --deployed-code --detailed-exitcode   # drift: exit 0 none, 2 some, 1 error"
    )]
    Plan(plan::Args),
    /// Converge AWS to environments/<ENV>.yaml.
    #[command(
        after_help = "Examples:\n  cargo xtask deploy --env dev\n  cargo xtask deploy --env prod --yes   # a protected environment"
    )]
    Deploy(deploy::Args),
    /// Show what is deployed.
    #[command(
        after_help = "Examples:\n  cargo xtask outputs --env dev\n  cargo xtask outputs --env dev --json | jq -r .api_url"
    )]
    Outputs(outputs::Args),
    /// Deploy to one environment exactly the code running in another.
    #[command(after_help = "Example:\n  cargo xtask promote --from staging --to prod --yes")]
    Promote(promote::Args),
    /// Show the functions' CloudWatch Logs, interleaved by time.
    #[command(
        after_help = "Examples:\n  cargo xtask logs --env dev --since 1h\n  cargo xtask logs --env prod --function validate --follow\n  cargo xtask logs --env prod --filter ERROR --since 1d"
    )]
    Logs(logs::Args),
    /// Invoke a deployed function's `live` alias; print its answer and the tail of its log.
    #[command(
        after_help = "Examples:\n  cargo xtask invoke --env dev --function validate --method POST --path /validations \\\n    --body '{\"code\":\"SUMMER25\"}' --header \"Authorization: Bearer $TOKEN\"\n  cargo xtask invoke --env dev --function migrate\n  cargo xtask invoke --env dev --function list --data-file event.json"
    )]
    Invoke(invoke::Args),
    /// Point `live` back at what the latest release moved it from.
    #[command(after_help = "Example:\n  cargo xtask rollback --env prod --yes")]
    Rollback(rollback::Args),
    /// Delete everything `deploy` made for an environment.
    #[command(after_help = "Example:\n  cargo xtask destroy --env dev --yes")]
    Destroy(destroy::Args),
    /// Measure validate, list, cold starts and the deployer; write target/bench/report.md.
    #[command(
        after_help = "Examples:\n  cargo xtask bench            # the full run: target/bench/report.md\n  cargo xtask bench --quick    # tiny sizes, as cargo xtask test runs it"
    )]
    Bench(bench::Args),
    /// Run the AWS emulator (moto) on loopback, for deploys without an AWS account.
    #[command(
        after_help = "Examples:\n  cargo xtask emulator\n  AWS_ENDPOINT_URL=http://127.0.0.1:5000 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing cargo xtask deploy --env emulator"
    )]
    Emulator(emulator::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Test(args) => test::run(args),
        Command::Dev(args) => dev::run(args),
        Command::Token(args) => token::run(args),
        Command::Build(args) => build::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Deploy(args) => deploy::run(args),
        Command::Outputs(args) => outputs::run(args),
        Command::Promote(args) => promote::run(args),
        Command::Logs(args) => logs::run(args),
        Command::Invoke(args) => invoke::run(args),
        Command::Rollback(args) => rollback::run(args),
        Command::Destroy(args) => destroy::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Emulator(args) => emulator::run(args),
    }
}

/// The repository root, whatever directory the command was started from.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}
