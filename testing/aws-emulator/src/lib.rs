//! The project's AWS emulator (`tools/emulator.py`: moto's server plus what a real account does
//! that moto does not) as a child process on a free loopback port, stopped when dropped and
//! through the kernel's parent-death signal when its owner dies first.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// Generous: under a full test run on two cores, several of these start at once.
const START_TIMEOUT: Duration = Duration::from_secs(90);

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
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("finding a free port: {e}"))?
            .port();
        let mut command = Command::new(python);
        command
            .arg(root().join("tools/emulator.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe. The server dies with the thread that started it,
        // even if the process is killed before any destructor runs.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong);
                Ok(())
            });
        }
        let child = command.spawn().map_err(|e| format!("starting tools/emulator.py: {e}"))?;
        let emulator = Emulator { child, port, url: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + START_TIMEOUT;
        while emulator.get("/moto-api/").is_err() {
            if Instant::now() > deadline {
                return Err(format!("the emulator did not answer within {START_TIMEOUT:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(emulator)
    }

    fn get(&self, path: &str) -> std::io::Result<String> {
        self.request("GET", path, "")
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

    /// Makes every invocation of `function` answer `payload` (JSON), as if its code had: the
    /// emulator runs no function code yet (see tools/emulator.py).
    pub fn set_lambda_answer(&self, function: &str, payload: &str) -> std::io::Result<()> {
        let body = format!(r#"{{"FunctionName":"{function}","Payload":{payload}}}"#);
        self.request("POST", "/moto-api/emulator/lambda-answers", &body).map(|_| ())
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
