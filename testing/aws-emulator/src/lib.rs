//! The project's AWS emulator (`tools/emulator.py`: moto's server plus what a real account does
//! that moto does not) as a child process on a free loopback port, stopped when dropped and
//! through the kernel's parent-death signal when its owner dies first.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What tests run the emulator with: every real-account behaviour, lasting a second or two, and
/// API Gateway's quotas at a tenth of their periods (one DeleteRestApi per 3 s, not 30).
pub const TEST_ARGS: &[&str] = &[
    "--quota-scale",
    "0.1",
    "--cluster-creating",
    "2",
    "--instance-creating",
    "2",
    "--cluster-modifying",
    "1",
    "--lambda-pending",
    "0.3",
    "--role-propagation",
    "1.5",
];

/// Generous: under a full test run on two cores, several of these start at once (moto's imports
/// alone take seconds).
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// How long a stopping emulator gets to stop its databases before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A running emulator.
#[derive(Debug)]
pub struct Emulator {
    child: Child,
    port: u16,
    /// `http://127.0.0.1:<port>`: the endpoint URL for the AWS SDK.
    pub url: String,
}

/// The repository's root, where `tools/emulator.py` lives.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python of the pinned venv `cargo xtask test` installs (`PROMO_VENV_BIN` overrides).
pub fn venv_python() -> PathBuf {
    let bin = std::env::var_os("PROMO_VENV_BIN").map(PathBuf::from).unwrap_or_else(|| root().join("target/venv/bin"));
    bin.join("python")
}

impl Emulator {
    /// Starts the emulator with the venv's Python, a real account's behaviour on and API
    /// Gateway's quota periods a tenth of AWS's (tests).
    pub fn start() -> Result<Emulator, String> {
        let python = venv_python();
        if !python.exists() {
            return Err(format!("{} is missing: run `cargo xtask test`, which installs it", python.display()));
        }
        Self::start_with(&python, TEST_ARGS)
    }

    /// Starts the emulator with `python`, which must have the pinned moto installed, and
    /// `args` (see tools/emulator.py: `--plain`, `--quota-scale`, the durations).
    pub fn start_with(python: &Path, args: &[&str]) -> Result<Emulator, String> {
        let mut command = Command::new(python);
        command
            .arg(root().join("tools/emulator.py"))
            .args(["-H", "127.0.0.1", "-p", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: prctl is async-signal-safe. The server dies with the thread that started it,
        // even if the process is killed before any destructor runs.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong);
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|e| format!("starting tools/emulator.py: {e}"))?;
        let stderr = drain_keeping_tail(child.stderr.take().expect("piped"));
        let port = announced_port(child.stdout.take().expect("piped"));
        let port = match port.recv_timeout(START_TIMEOUT) {
            Ok(port) => port,
            Err(e) => {
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                let why = match e {
                    RecvTimeoutError::Timeout => format!("did not announce its port within {START_TIMEOUT:?}"),
                    RecvTimeoutError::Disconnected => format!("exited ({status}) before listening"),
                };
                std::thread::sleep(Duration::from_millis(100));
                let tail = stderr.lock().map(|t| Vec::from(t.clone()).join("\n")).unwrap_or_default();
                return Err(format!("tools/emulator.py {why}; its last lines:\n{tail}"));
            }
        };
        Ok(Emulator { child, port, url: format!("http://127.0.0.1:{port}") })
    }

    /// One HTTP/1.0 request to the emulator's own (non-AWS) endpoints; the answer's body.
    fn request(&self, method: &str, path: &str, body: &str) -> std::io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        let status = answer.split(' ').nth(1).unwrap_or_default();
        if !status.starts_with('2') {
            return Err(std::io::Error::other(format!("{method} {path}: {answer}")));
        }
        Ok(answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
    }

    /// Denies the deployer `action` (only `lambda:ListTags` is modelled), as a policy would.
    pub fn deny(&self, action: &str) -> std::io::Result<()> {
        self.request("POST", "/moto-api/emulator/deny", &format!(r#"{{"Action":"{action}"}}"#)).map(|_| ())
    }
}

/// The port from the emulator's first line (`emulator listening on http://host:port`), then the
/// rest of its output read and dropped so that it never blocks on a full pipe.
fn announced_port(stdout: ChildStdout) -> Receiver<u16> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let announced = line.strip_prefix("emulator listening on ").and_then(|url| url.rsplit_once(':'));
            if let Some(port) = announced.and_then(|(_, p)| p.trim().parse().ok()) {
                let _ = tx.send(port);
            }
        }
    });
    rx
}

/// Reads the emulator's stderr to its end, keeping the last lines for an error message.
fn drain_keeping_tail(stderr: ChildStderr) -> Arc<Mutex<VecDeque<String>>> {
    const KEPT: usize = 20;
    let tail = Arc::new(Mutex::new(VecDeque::with_capacity(KEPT)));
    let kept = Arc::clone(&tail);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
            if kept.len() == KEPT {
                kept.pop_front();
            }
            kept.push_back(line);
        }
    });
    tail
}

impl Drop for Emulator {
    /// SIGTERM first, so that the emulator stops its PostgreSQL servers and function instances and
    /// removes their directories; SIGKILL if it has not exited after a while.
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid, which cannot have been reaped yet.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + STOP_TIMEOUT;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn an_emulator_that_cannot_start_says_why_at_once() {
        let started = Instant::now();
        let error = Emulator::start_with(&venv_python(), &["--no-such-flag"]).unwrap_err();
        assert!(error.contains("exited") && error.contains("unrecognized arguments: --no-such-flag"), "{error}");
        assert!(started.elapsed() < START_TIMEOUT / 2, "it failed at once, not at the timeout");
    }

    #[test]
    fn two_emulators_listen_on_ports_of_their_own() {
        let (a, b) = (Emulator::start().unwrap(), Emulator::start().unwrap());
        assert_ne!(a.url, b.url);
        a.deny("lambda:ListTags").unwrap();
        b.deny("lambda:ListTags").unwrap();
    }
}
