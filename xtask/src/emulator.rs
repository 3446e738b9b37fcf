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
    cmd!(sh, "{python} {script} -H 127.0.0.1 -p {port}").quiet().run()?;
    Ok(())
}

/// The emulator as a child process on a free loopback port, stopped when dropped (the bench).
pub struct Running {
    child: std::process::Child,
    pub url: String,
}

impl Running {
    pub fn start() -> anyhow::Result<Running> {
        let sh = Shell::new()?;
        let python = python_tools(&sh)?.join("python");
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut command = std::process::Command::new(python);
        command
            .arg(workspace_root().join("tools/emulator.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: prctl is async-signal-safe; the emulator dies with the thread that started it.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong);
                Ok(())
            });
        }
        let child = command.spawn().context("starting tools/emulator.py")?;
        let running = Running { child, url: format!("http://127.0.0.1:{port}") };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            anyhow::ensure!(std::time::Instant::now() < deadline, "the emulator did not start within 60 s");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Ok(running)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
