//! `cargo xtask`: the commands engineers and CI run. One file per command; this is the one match.

mod bench;
mod build;
mod deploy;
mod destroy;
mod dev;
mod emulator;
mod environment;
mod gateway;
mod local;
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
    Test(test::Args),
    /// Run the whole service locally on an embedded PostgreSQL.
    Dev(dev::Args),
    /// Print a JWT that the local stack accepts.
    Token(token::Args),
    /// Build every function as a Lambda zip and print its path, size and SHA-256.
    Build(build::Args),
    /// Show what `deploy` would create, update or delete, changing nothing.
    Plan(plan::Args),
    /// Converge AWS to environments/<ENV>.yaml.
    Deploy(deploy::Args),
    /// Show what is deployed.
    Outputs(outputs::Args),
    /// Deploy to one environment exactly the code running in another.
    Promote(promote::Args),
    /// Point `live` back at what the latest release moved it from.
    Rollback(rollback::Args),
    /// Delete everything `deploy` made for an environment.
    Destroy(destroy::Args),
    /// Measure validate, list, cold starts and the deployer; write target/bench/report.md.
    Bench(bench::Args),
    /// Run the AWS emulator (moto) on loopback, for deploys without an AWS account.
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
