//! The real `validate` binary refuses to start on a configuration that cannot work, and says
//! which variable is wrong, before it ever asks the Lambda runtime for an event.

use std::process::Command;

fn start(vars: &[(&str, &str)]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_validate"))
        .env_clear()
        .envs(vars.iter().copied())
        .output()
        .expect("run the validate binary");
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

const SECRET: &str = "0123456789abcdef0123456789abcdef-secret";

#[test]
fn a_missing_issuer_stops_the_function_naming_the_variable() {
    let (status, stderr) = start(&[("AUTH_AUDIENCE", "promo"), ("AUTH_HS256_SECRET", SECRET)]);
    assert_eq!(status, 1);
    assert!(stderr.contains("AUTH_ISSUER is not set"), "{stderr}");
}

#[test]
fn both_key_sources_stop_the_function() {
    let (status, stderr) = start(&[
        ("AUTH_ISSUER", "https://issuer/"),
        ("AUTH_AUDIENCE", "promo"),
        ("AUTH_HS256_SECRET", SECRET),
        ("AUTH_JWKS_URL", "https://issuer/jwks.json"),
    ]);
    assert_eq!(status, 1);
    assert!(stderr.contains("AUTH_JWKS_URL") && stderr.contains("AUTH_HS256_SECRET"), "{stderr}");
}

#[test]
fn a_short_secret_stops_the_function_without_printing_it() {
    let (status, stderr) =
        start(&[("AUTH_ISSUER", "i"), ("AUTH_AUDIENCE", "a"), ("AUTH_HS256_SECRET", "short-secret-value")]);
    assert_eq!(status, 1);
    assert!(stderr.contains("at least 32 bytes"), "{stderr}");
    assert!(!stderr.contains("short-secret-value"), "{stderr}");
}

#[test]
fn a_missing_database_url_stops_the_function() {
    let (status, stderr) = start(&[("AUTH_ISSUER", "i"), ("AUTH_AUDIENCE", "a"), ("AUTH_HS256_SECRET", SECRET)]);
    assert_eq!(status, 1);
    assert!(stderr.contains("set DATABASE_URL, or DB_SECRET_ARN"), "{stderr}");
}
