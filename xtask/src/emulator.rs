//! `cargo xtask emulator [--port 5000]`: the AWS emulator the deployer's tests use (moto's
//! server from the pinned venv, plus what runs deployed code: see tools/emulator.py), in the
//! foreground, for trying deploy, the deployed API, promote and rollback without an AWS account.
//! It also publishes the local issuer's JWKS, standing in for the identity provider, so that
//! `cargo xtask token` signs tokens the deployed API accepts (environments/emulator.yaml).

use anyhow::Context;
use xshell::Shell;

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
    let jwks = crate::local::dev_dir().join("jwks.json");
    std::fs::create_dir_all(crate::local::dev_dir())?;
    std::fs::write(&jwks, serde_json::to_string(&crate::local::local_jwks()?)?)
        .with_context(|| format!("writing {}", jwks.display()))?;
    println!("AWS_ENDPOINT_URL=http://127.0.0.1:{port} (environments/emulator.yaml deploys here; Ctrl-C stops it)");
    println!("  deploy:  AWS_ENDPOINT_URL=http://127.0.0.1:{port} cargo xtask deploy --env emulator");
    println!("  the API: `cargo xtask outputs --env emulator` prints its api_url, served here");
    println!("  tokens:  cargo xtask token --sub alice [--admin] (the local issuer; its JWKS is served here)");
    let mut command = std::process::Command::new(python);
    command.arg(script).args(["-H", "127.0.0.1", "-p", &port, "--jwks"]).arg(&jwks);
    if args.plain {
        command.arg("--plain");
    }
    // SAFETY: prctl is async-signal-safe. The emulator (and the databases and functions it runs)
    // stops when this command does, however it is stopped.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong);
            Ok(())
        });
    }
    let status = command.status().context("starting tools/emulator.py")?;
    anyhow::ensure!(status.success(), "the emulator stopped: {status}");
    Ok(())
}

/// The emulator as a child process on a free loopback port, stopped when dropped (the bench).
pub fn start() -> anyhow::Result<aws_emulator::Emulator> {
    let sh = Shell::new()?;
    let python = python_tools(&sh)?.join("python");
    aws_emulator::Emulator::start_with(&python, aws_emulator::TEST_ARGS).map_err(anyhow::Error::msg)
}
