//! `cargo xtask emulator [--port 5000]`: the AWS emulator the deployer's tests use (moto's
//! server from the pinned venv, plus Lambda's code download: see tools/emulator.py), in the
//! foreground, for trying deploy, promote and rollback without an AWS account.

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::tools::python_tools;
use crate::workspace_root;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 5000)]
    pub port: u16,
    /// moto as it is: no API Gateway quotas, no Lambda or RDS states, no IAM delay. By default
    /// the emulator behaves like a real account (see tools/real_account.py), in seconds.
    #[arg(long)]
    pub plain: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let sh = Shell::new()?;
    let bin = python_tools(&sh)?;
    std::net::TcpListener::bind(("127.0.0.1", args.port))
        .with_context(|| format!("port {} is busy: pick another with --port", args.port))?;
    let python = bin.join("python");
    let script = workspace_root().join("tools/emulator.py");
    let port = args.port.to_string();
    println!("AWS_ENDPOINT_URL=http://127.0.0.1:{port} (environments/emulator.yaml deploys here; Ctrl-C stops it)");
    let plain = args.plain.then_some("--plain");
    cmd!(sh, "{python} {script} -H 127.0.0.1 -p {port} {plain...}").quiet().run()?;
    Ok(())
}

/// The emulator as a child process on a free loopback port, stopped when dropped (the bench).
pub fn start() -> anyhow::Result<aws_emulator::Emulator> {
    let sh = Shell::new()?;
    let python = python_tools(&sh)?.join("python");
    aws_emulator::Emulator::start_with(&python, aws_emulator::TEST_ARGS).map_err(anyhow::Error::msg)
}
