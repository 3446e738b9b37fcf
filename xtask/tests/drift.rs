//! `cargo xtask plan --detailed-exitcode`, as a scheduled drift check runs it against the
//! emulator: 0 when nothing would change, 2 when something would, 1 on error. And every
//! command's `--help` ends with an example.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use base64::Engine;
use common::xtask;
use deployer::apply::{Zip, deploy};
use deployer::aws::Clients;
use deployer::config::{EnvName, EnvironmentSpec};
use deployer::progress::quiet;
use sha2::{Digest, Sha256};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The zips `cargo xtask test` builds before the tests.
fn built_zips() -> BTreeMap<String, Zip> {
    let dir = root().join("target/lambda/x86_64");
    promo_core::routes::FUNCTION_CRATES
        .iter()
        .map(|f| {
            let path = dir.join(format!("{f}.zip"));
            let bytes =
                std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}: run `cargo xtask build`", path.display()));
            let code_sha256 = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes));
            (f.to_string(), Zip { path, code_sha256 })
        })
        .collect()
}

/// `cargo xtask plan --env emulator --deployed-code --detailed-exitcode` against `endpoint`.
fn drift_check(endpoint: &str) -> Output {
    let dir = std::env::temp_dir().join(format!("promo-drift-{}", std::process::id()));
    xtask(&dir)
        .args(["plan", "--env", "emulator", "--deployed-code", "--detailed-exitcode"])
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run cargo xtask plan")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn plan_detailed_exitcode_is_0_without_drift_2_with_it_and_1_on_error() {
    let emulator = aws_emulator::Emulator::start().unwrap();
    let nothing_yet = drift_check(&emulator.url);
    assert_eq!(nothing_yet.status.code(), Some(2), "{}", text(&nothing_yet));
    assert!(text(&nothing_yet).contains("to create"), "{}", text(&nothing_yet));

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let path = root().join("environments/emulator.yaml");
    let spec = EnvironmentSpec::parse(&path, &std::fs::read_to_string(&path).unwrap()).unwrap();
    let env = EnvName::parse("emulator").unwrap();
    let clients = runtime.block_on(Clients::for_emulator(&spec.region, &emulator.url));
    runtime.block_on(deploy(&clients, &env, &spec, &built_zips(), &quiet)).expect("deploy");
    let clean = drift_check(&emulator.url);
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean));
    assert!(text(&clean).contains("No changes"), "{}", text(&clean));

    // Someone doubles a function's memory in the console.
    runtime
        .block_on(
            clients
                .lambda
                .update_function_configuration()
                .function_name("promo-codes-emulator-list")
                .memory_size(1024)
                .send(),
        )
        .unwrap();
    let drifted = drift_check(&emulator.url);
    assert_eq!(drifted.status.code(), Some(2), "{}", text(&drifted));
    assert!(
        text(&drifted).contains("~ Update lambda function promo-codes-emulator-list (memory_mb, live_alias)"),
        "{}",
        text(&drifted)
    );

    // Nothing listens there: an error, not "no drift" and not "drift".
    drop(emulator);
    let unreachable = drift_check("http://127.0.0.1:9");
    assert_eq!(unreachable.status.code(), Some(1), "{}", text(&unreachable));
}

#[test]
fn every_command_s_help_ends_with_an_example() {
    let dir = std::env::temp_dir();
    for command in [
        "test", "dev", "token", "build", "plan", "deploy", "outputs", "promote", "rollback", "destroy", "bench",
        "emulator",
    ] {
        let help = xtask(&dir).args([command, "--help"]).output().unwrap();
        assert!(help.status.success(), "{command}");
        let help = String::from_utf8_lossy(&help.stdout);
        assert!(help.contains("Example") && help.contains(&format!("cargo xtask {command}")), "{command}:\n{help}");
    }
}
