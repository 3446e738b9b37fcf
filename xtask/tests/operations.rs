//! Day-two commands against a deployed environment on the emulator, run as a person or CI runs
//! them: `plan --detailed-exitcode` (0 when nothing would change, 2 when something would, 1 on
//! error) and `invoke`. And every command's `--help` ends with an example.

mod common;

use std::path::Path;
use std::process::Output;

use common::{TempDir, built_zips, root, token, xtask};
use deployer::apply::deploy;
use deployer::aws::Clients;
use deployer::config::{EnvName, EnvironmentSpec};
use deployer::progress::quiet;

/// `cargo xtask <args>` with the emulator at `endpoint` as AWS.
fn against(endpoint: &str, dir: &Path, args: &[&str]) -> Output {
    xtask(dir)
        .args(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run cargo xtask")
}

/// `cargo xtask plan --env emulator --deployed-code --detailed-exitcode` against `endpoint`.
fn drift_check(endpoint: &str, dir: &Path) -> Output {
    against(endpoint, dir, &["plan", "--env", "emulator", "--deployed-code", "--detailed-exitcode"])
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn drift_checks_exit_0_2_or_1_and_invoke_shows_a_deployed_function_s_answer_and_log() {
    let dir = TempDir(std::env::temp_dir().join(format!("promo-operations-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let jwks = xtask(&dir.0).args(["token", "--jwks"]).output().expect("xtask token --jwks");
    std::fs::write(dir.0.join("jwks.json"), &jwks.stdout).unwrap();
    let jwks_path = dir.0.join("jwks.json").to_string_lossy().into_owned();
    let mut args = aws_emulator::TEST_ARGS.to_vec();
    args.extend(["--jwks", jwks_path.as_str()]);
    let emulator = aws_emulator::Emulator::start_with(&aws_emulator::venv_python(), &args).unwrap();

    let nothing_yet = drift_check(&emulator.url, &dir.0);
    assert_eq!(nothing_yet.status.code(), Some(2), "{}", text(&nothing_yet));
    assert!(text(&nothing_yet).contains("to create"), "{}", text(&nothing_yet));

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let path = root().join("environments/emulator.yaml");
    let spec = EnvironmentSpec::parse(&path, &std::fs::read_to_string(&path).unwrap()).unwrap();
    let env = EnvName::parse("emulator").unwrap();
    let clients = runtime.block_on(Clients::for_emulator(&spec.region, &emulator.url));
    runtime.block_on(deploy(&clients, &env, &spec, &built_zips(), &quiet)).expect("deploy");
    let clean = drift_check(&emulator.url, &dir.0);
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
    let drifted = drift_check(&emulator.url, &dir.0);
    assert_eq!(drifted.status.code(), Some(2), "{}", text(&drifted));
    let line = "~ Update lambda function promo-codes-emulator-list (memory_mb, live_alias)";
    assert!(text(&drifted).contains(line), "{}", text(&drifted));

    // invoke: the functions trust the issuer this emulator serves, whose tokens `token` signs.
    let mut trusting = spec.clone();
    trusting.auth.jwks_url = Some(format!("{}/.well-known/jwks.json", emulator.url));
    runtime.block_on(deploy(&clients, &env, &trusting, &built_zips(), &quiet)).expect("deploy");
    let alice = format!("Authorization: Bearer {}", token(&dir.0, "alice", false));
    let invoke = |extra: &[&str]| {
        let mut args = vec!["invoke", "--env", "emulator"];
        args.extend(extra);
        against(&emulator.url, &dir.0, &args)
    };
    let validated = invoke(&[
        "--function",
        "validate",
        "--method",
        "POST",
        "--path",
        "/validations",
        "--body",
        r#"{"code":"NOSUCH99"}"#,
        "--header",
        &alice,
    ]);
    assert!(validated.status.success(), "{}", text(&validated));
    let stdout = String::from_utf8_lossy(&validated.stdout);
    assert!(stdout.starts_with("HTTP 200\n"), "{stdout}");
    assert!(stdout.contains(r#""reason": "not_found""#), "{stdout}");
    let stderr = String::from_utf8_lossy(&validated.stderr);
    assert!(stderr.contains("invoked promo-codes-emulator-validate:live (version"), "{stderr}");
    assert!(stderr.contains("--- log tail ---"), "{stderr}");
    let unauthenticated =
        invoke(&["--function", "validate", "--method", "POST", "--path", "/validations", "--body", "{}"]);
    assert!(String::from_utf8_lossy(&unauthenticated.stdout).starts_with("HTTP 401\n"), "{}", text(&unauthenticated));
    let migrated = invoke(&["--function", "migrate"]);
    assert!(migrated.status.success(), "{}", text(&migrated));
    let answer: serde_json::Value = serde_json::from_slice(&migrated.stdout).expect("migrate's JSON answer");
    assert_eq!(answer["app_role"], "promo_app", "{answer}");
    let wrong = invoke(&["--function", "list", "--method", "POST", "--path", "/validations"]);
    assert!(text(&wrong).contains("is served by validate, not list"), "{}", text(&wrong));

    // logs: what those invocations printed, found in CloudWatch Logs by function and pattern.
    let logs = against(&emulator.url, &dir.0, &["logs", "--env", "emulator", "--since", "10m"]);
    assert!(logs.status.success(), "{}", text(&logs));
    let all = String::from_utf8_lossy(&logs.stdout).into_owned();
    for wanted in [" validate START RequestId: ", "request served", " migrate  "] {
        assert!(all.contains(wanted), "{wanted:?} not in:\n{all}");
    }
    let mut times: Vec<&str> = all.lines().map(|l| &l[..23]).collect();
    let in_order = times.clone();
    times.sort();
    assert_eq!(times, in_order, "interleaved by time");
    let filtered =
        against(&emulator.url, &dir.0, &["logs", "--env", "emulator", "--function", "validate", "--filter", "REPORT"]);
    let reports = String::from_utf8_lossy(&filtered.stdout).into_owned();
    assert!(reports.lines().count() >= 2, "{}", text(&filtered));
    assert!(reports.lines().all(|l| l.contains(" validate ") && l.contains("REPORT RequestId")), "{reports}");

    // Nothing listens there: an error, not "no drift" and not "drift".
    drop(emulator);
    let unreachable = drift_check("http://127.0.0.1:9", &dir.0);
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
