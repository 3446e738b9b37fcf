//! Schemathesis against functions/openapi.yaml: over the local stack (`cargo xtask dev`) and
//! over the API deployed on the emulator (API Gateway, Lambda and Aurora as the emulator runs
//! them). Passing means no 5xx and every response conforms to the spec (status, content type,
//! headers, body schema).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::workspace_root;

/// The spec's operations with an admin token, then `/validations` and `/redemptions` with a
/// plain user's token, against `url`.
fn run(python_bin: &Path, url: &str, admin: &str, user: &str) -> anyhow::Result<()> {
    let spec = workspace_root().join("functions/openapi.yaml");
    let st = python_bin.join("st");
    let checks = "not_a_server_error,status_code_conformance,content_type_conformance,\
                  response_headers_conformance,response_schema_conformance";
    let runs = [(admin, vec![]), (user, vec!["/validations", "/redemptions"])];
    for (token, only) in runs {
        let mut command = std::process::Command::new(&st);
        // Its example database (.hypothesis) and reports belong under target/.
        command
            .current_dir(workspace_root().join("target"))
            .arg("run")
            .arg(&spec)
            .args(["--url", url, "--header", &format!("Authorization: Bearer {token}")])
            .args(["--checks", checks, "--max-examples", "40", "--seed", "20261125", "--no-color"]);
        for path in only {
            command.args(["--include-path", path]);
        }
        let status = command.status().context("running schemathesis")?;
        anyhow::ensure!(status.success(), "schemathesis found responses that break functions/openapi.yaml at {url}");
    }
    Ok(())
}

/// Starts the emulator, deploys environments/emulator.yaml to it (trusting the local issuer,
/// whose JWKS the emulator serves), and runs schemathesis against the deployed `api_url`.
pub fn against_emulator(python_bin: &Path) -> anyhow::Result<()> {
    use deployer::config::{ENVIRONMENTS_DIR, EnvName, EnvironmentSpec};
    let dir = std::env::temp_dir().join(format!("promo-schemathesis-emulator-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = (|| -> anyhow::Result<()> {
        let jwks = dir.join("jwks.json");
        std::fs::write(&jwks, serde_json::to_string(&crate::local::local_jwks()?)?)?;
        let mut args = aws_emulator::TEST_ARGS.to_vec();
        let jwks = jwks.to_string_lossy().into_owned();
        args.extend(["--jwks", jwks.as_str()]);
        let runtime = tokio::runtime::Runtime::new()?;
        // The emulator dies with the thread that started it: start it on this one.
        let emulator =
            aws_emulator::Emulator::start_with(&python_bin.join("python"), &args).map_err(anyhow::Error::msg)?;
        let env = EnvName::parse("emulator")?;
        let mut spec = EnvironmentSpec::load(&workspace_root().join(ENVIRONMENTS_DIR), &env)?;
        spec.auth.jwks_url = Some(format!("{}/.well-known/jwks.json", emulator.url));
        // Schemathesis sends thousands of made-up codes: see `against_local`.
        spec.functions.defaults.env.insert("GUESS_LIMIT".into(), "1000000".into());
        let zips = crate::environment::zips(&spec)?;
        let api_url = runtime.block_on(async {
            let clients = deployer::aws::Clients::for_emulator(&spec.region, &emulator.url).await;
            deployer::apply::deploy(&clients, &env, &spec, &zips, &deployer::progress::quiet).await?;
            let out = deployer::outputs::outputs(&clients, &env, &spec).await?;
            anyhow::Ok(out["api_url"].as_str().context("no api_url")?.to_owned())
        })?;
        println!("    deployed: {api_url}");
        let local = crate::local::LocalConfig::load()?;
        let admin = crate::local::sign_token(&local, "back-office", true, 3600)?;
        let user = crate::local::sign_token(&local, "alice", false, 3600)?;
        run(python_bin, &api_url, &admin, &user)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Starts `xtask dev` on a state directory of its own and runs schemathesis against it: once with
/// an admin token over every operation, once with a plain user's token over `/validations`.
/// Passing means no 5xx and every response conforms to the spec (status, content type, headers,
/// body schema).
pub fn against_local(python_bin: &Path) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("promo-schemathesis-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let result = (|| -> anyhow::Result<()> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        // `cargo test` may have rebuilt this very binary meanwhile: Linux then reports our own
        // path with " (deleted)" appended, and the new build sits at the original path.
        let exe = std::env::current_exe()?;
        let exe = std::path::PathBuf::from(exe.to_string_lossy().trim_end_matches(" (deleted)"));
        let mut dev = std::process::Command::new(&exe)
            .args(["dev", "--port", &port.to_string()])
            .env("PROMO_DEV_DIR", &dir)
            .env_remove("DATABASE_URL")
            // Schemathesis sends thousands of made-up codes: with the default guess limit most
            // of its calls would (correctly) get 429 and test nothing else.
            .env("GUESS_LIMIT", "1000000")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("starting xtask dev")?;
        let ready = wait_for_api_line(&mut dev, port);
        let outcome = ready.and_then(|()| {
            let token = |sub: &str, admin: bool| -> anyhow::Result<String> {
                let mut command = std::process::Command::new(&exe);
                command.args(["token", "--sub", sub]).env("PROMO_DEV_DIR", &dir);
                if admin {
                    command.arg("--admin");
                }
                let output = command.output()?;
                anyhow::ensure!(output.status.success(), "xtask token failed");
                Ok(String::from_utf8(output.stdout)?.trim().to_owned())
            };
            run(python_bin, &format!("http://127.0.0.1:{port}"), &token("back-office", true)?, &token("alice", false)?)
        });
        // SAFETY: kill(2) on the pid of our own child.
        unsafe {
            libc::kill(dev.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = dev.wait();
        outcome
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Reads the child's stdout until it announces the API, then keeps draining it in a thread.
fn wait_for_api_line(dev: &mut std::process::Child, port: u16) -> anyhow::Result<()> {
    use std::io::BufRead;
    let stdout = dev.stdout.take().context("no stdout")?;
    let expected = format!("API: http://127.0.0.1:{port}");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line == expected => return Ok(()),
            Ok(_) => {}
            Err(_) => bail!("xtask dev did not start within 120 s"),
        }
    }
}
