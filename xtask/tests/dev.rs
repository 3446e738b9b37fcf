//! End to end: `cargo xtask dev` started as a process and driven over HTTP as an API client
//! would, then stopped with SIGTERM, leaving no process behind.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;

use common::{Client, token, xtask};

/// A state directory of this test's own, so it never touches the developer's `target/dev`.
struct DevDir(PathBuf);

impl DevDir {
    fn new() -> DevDir {
        let dir = std::env::temp_dir().join(format!("promo-dev-e2e-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create dev dir");
        DevDir(dir)
    }
}

impl Drop for DevDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running `xtask dev`; killed if the test fails before stopping it.
struct Dev {
    child: Child,
    base: String,
}

impl Dev {
    fn start(dir: &Path, port: u16) -> Dev {
        let mut child = xtask(dir)
            .args(["dev", "--port", &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start xtask dev");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("dev: {line}");
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        let expected = format!("API: http://127.0.0.1:{port}");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line == expected => break,
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill();
                    panic!("xtask dev did not print {expected:?} in time");
                }
            }
        }
        Dev { child, base: format!("http://127.0.0.1:{port}") }
    }

    /// SIGTERM, then the time it took to exit and its status.
    fn terminate(mut self) -> (Duration, bool) {
        let started = Instant::now();
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc_kill(self.child.id() as i32, 15);
        }
        let deadline = started + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return (started.elapsed(), status.success());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("xtask dev ignored SIGTERM for 15 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

/// PostgreSQL processes whose command line names `dir`.
fn postgres_processes_under(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            entry.file_name().to_str()?.parse::<u32>().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline.contains(&needle).then_some(cmdline)
        })
        .collect()
}

#[test]
fn dev_serves_the_api_end_to_end_and_stops_cleanly_on_sigterm() {
    let dir = DevDir::new();
    let port = free_port();
    let dev = Dev::start(&dir.0, port);
    let api = Client::new(&dev.base);
    let admin = token(&dir.0, "back-office", true);
    let alice = token(&dir.0, "alice", false);
    let mallory = token(&dir.0, "mallory", false);

    common::story(&api, &admin, &alice, &mallory, "e2e-summer");
    // environments/local.yaml allows a back office on a local dev server.
    common::browser(&api, &admin, "http://localhost:5173");

    // The gateway: an unknown route, a wrong method, a user on an admin route, no token.
    let unknown = api.send("GET", "/nowhere", &admin, &[], None);
    assert_eq!((unknown.status, unknown.body["error"]["code"].as_str()), (404, Some("not_found")));
    let wrong = api.send("DELETE", "/promo-codes/E2E-SUMMER", &admin, &[], None);
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("allow"), Some("GET, PATCH"));
    assert_eq!(api.send("GET", "/promo-codes", &alice, &[], None).status, 403);
    let anonymous = api.send("GET", "/promo-codes", "", &[], None);
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));

    // A second dev on the same port is refused, clearly.
    let second = xtask(&dir.0).args(["dev", "--port", &port.to_string()]).output().expect("second dev");
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains(&format!("port {port}")) && stderr.contains("already in use"), "{stderr}");

    // SIGTERM stops everything within 10 s and leaves no PostgreSQL behind.
    let (took, clean) = dev.terminate();
    assert!(clean, "xtask dev exited with an error after SIGTERM");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(postgres_processes_under(&dir.0), Vec::<String>::new());

    // A second start keeps the data of the first.
    let again = Dev::start(&dir.0, free_port());
    let api = Client::new(&again.base);
    let kept = api.send("GET", "/promo-codes/E2E-SUMMER", &admin, &[], None);
    assert_eq!(kept.status, 200);
    assert_eq!(kept.body["version"], 2);
    let (_, clean) = again.terminate();
    assert!(clean);
    assert_eq!(postgres_processes_under(&dir.0), Vec::<String>::new());
}

#[test]
fn a_protected_environment_refuses_deploy_promote_and_rollback_without_yes() {
    for args in [
        vec!["deploy", "--env", "prod"],
        vec!["promote", "--from", "staging", "--to", "prod"],
        vec!["rollback", "--env", "prod"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_xtask")).args(&args).env("RUST_BACKTRACE", "0").output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} went ahead");
        assert!(
            stderr.contains("environment prod is protected") && stderr.contains("needs --yes"),
            "{args:?}: {stderr}"
        );
    }
}
