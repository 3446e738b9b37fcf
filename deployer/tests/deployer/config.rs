//! Environment files: the committed ones parse, their JSON Schema is current, and a bad file
//! fails with its path, line, field and what is allowed.

use std::path::{Path, PathBuf};

use deployer::config::{ConfigError, EnvName, EnvironmentSpec, json_schema};

fn environments() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../environments")
}

fn emulator_text() -> String {
    std::fs::read_to_string(environments().join("emulator.yaml")).unwrap()
}

/// The emulator file with one line replaced, parsed; the error text.
fn error_with(from: &str, to: &str) -> String {
    let text = emulator_text();
    assert!(text.contains(from), "the emulator file has no {from:?}");
    let err = EnvironmentSpec::parse(Path::new("environments/broken.yaml"), &text.replacen(from, to, 1)).unwrap_err();
    err.to_string()
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).expect("needle") + 1
}

#[test]
fn every_committed_environment_parses() {
    for name in ["emulator", "dev", "staging", "prod"] {
        let spec = EnvironmentSpec::load(&environments(), &EnvName::parse(name).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!spec.region.is_empty());
    }
    let prod = EnvironmentSpec::load(&environments(), &EnvName::parse("prod").unwrap()).unwrap();
    assert!(prod.protected);
    assert_eq!(prod.function_settings("migrate").timeout_seconds.get(), 120);
    assert_eq!(prod.function_settings("validate").timeout_seconds.get(), 10);
    let release = prod.release.expect("prod releases through a canary");
    assert_eq!((release.canary_percent.get(), release.bake_seconds.duration().as_secs()), (10, 300));
}

#[test]
fn the_committed_json_schema_is_current() {
    let path = environments().join("schema.json");
    let generated = serde_json::to_string_pretty(&json_schema()).unwrap() + "\n";
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(committed == generated, "environments/schema.json is stale: run UPDATE_SCHEMA=1 cargo test -p deployer");
}

#[test]
fn an_unknown_field_names_the_file_line_and_the_allowed_fields() {
    let err = error_with("  max_capacity: 1", "  max_capacity: 1\n  max_capcity: 2");
    let line = line_of(&emulator_text(), "max_capacity: 1") + 1;
    assert!(err.starts_with(&format!("environments/broken.yaml:{line}:")), "{err}");
    assert!(err.contains("unknown field `max_capcity`"), "{err}");
    assert!(err.contains("max_capacity") && err.contains("engine_version"), "lists the allowed fields: {err}");
}

#[test]
fn a_value_out_of_range_names_the_field_and_the_range() {
    let err = error_with("memory_mb: 256", "memory_mb: 64");
    assert!(err.contains("memory_mb must be 128 to 10240, got 64"), "{err}");
    assert!(err.contains("functions.defaults"), "{err}");
    let err = error_with("min_capacity: 0", "min_capacity: 0.3");
    assert!(err.contains("steps of 0.5"), "{err}");
    let err = error_with("auth:", "release:\n  canary_percent: 100\n  bake_seconds: 60\nauth:");
    assert!(err.contains("canary_percent must be 1 to 99, got 100"), "{err}");
    let line = line_of(&emulator_text(), "auth:") + 1;
    assert!(err.starts_with(&format!("environments/broken.yaml:{line}:")), "{err}");
}

#[test]
fn a_bad_enum_value_lists_the_allowed_ones() {
    let err = error_with("architecture: x86_64", "architecture: amd64");
    assert!(err.contains("unknown variant `amd64`, expected `x86_64` or `arm64`"), "{err}");
}

#[test]
fn a_missing_or_mistyped_field_is_named() {
    let err = error_with("  engine_version: \"16.4\"\n", "");
    assert!(err.contains("missing field `engine_version`"), "{err}");
    let err = error_with("protected: false", "protected: maybe");
    assert!(err.contains("protected") && err.contains("expected a boolean"), "{err}");
    let err = error_with("account_id: \"123456789012\"", "account_id: \"12345\"");
    assert!(err.contains("account_id must be 12 digits"), "{err}");
}

#[test]
fn rules_across_fields_are_checked() {
    assert!(error_with("max_capacity: 1", "max_capacity: 0").contains("at least 1 ACU"));
    let both = "  jwks_url: http://127.0.0.1:5000/.well-known/jwks.json\n  hs256_secret_arn: arn:aws:secretsmanager:us-east-1:123456789012:secret:k";
    assert!(error_with("  jwks_url: http://127.0.0.1:5000/.well-known/jwks.json", both).contains("exactly one"));
    let secret_env = "    architecture: x86_64\n    env:\n      API_TOKEN: hunter2";
    assert!(error_with("    architecture: x86_64", secret_env).contains("looks like a secret"));
    let reserved = "    architecture: x86_64\n    env:\n      AUTH_ISSUER: other";
    assert!(error_with("    architecture: x86_64", reserved).contains("set by the deployer"));
    let jwks = "  jwks_url: http://127.0.0.1:5000/.well-known/jwks.json";
    let plain = error_with(jwks, "  jwks_url: http://issuer.example/.well-known/jwks.json");
    assert!(plain.contains("http:// only on loopback"), "{plain}");
    let unknown_fn = "    architecture: x86_64\n  overrides:\n    delete:\n      memory_mb: 512";
    assert!(error_with("    architecture: x86_64", unknown_fn).contains("no such function"));
}

#[test]
fn environment_names_are_safe_in_aws_resource_names() {
    assert!(EnvName::parse("staging-2").is_ok());
    assert!(EnvName::parse("dev-eu").is_ok());
    // Aurora cluster identifiers end with a letter or digit and hold no "--".
    for bad in ["", "Prod", "1dev", "dev_1", "a-very-long-environment-name", "dev-", "dev--eu"] {
        assert!(matches!(EnvName::parse(bad), Err(ConfigError::BadName(_))), "{bad}");
    }
    let message = EnvName::parse("dev-").unwrap_err().to_string();
    assert!(message.contains("not ending with '-'") && message.contains("'--'"), "{message}");
}

#[test]
fn an_hs256_secret_is_a_secrets_manager_arn_in_any_partition() {
    let jwks = "  jwks_url: http://127.0.0.1:5000/.well-known/jwks.json";
    let text = emulator_text();
    for (arn, ok) in [
        ("arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:k", true),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:k", true),
        ("arn:aws:ssm:us-east-1:123456789012:parameter/k", false),
    ] {
        let changed = text.replacen(jwks, &format!("  hs256_secret_arn: {arn}"), 1);
        let parsed = EnvironmentSpec::parse(Path::new("environments/hs.yaml"), &changed);
        assert_eq!(parsed.is_ok(), ok, "{arn}: {:?}", parsed.err().map(|e| e.to_string()));
    }
}

#[test]
fn an_engine_version_must_be_major_and_minor() {
    let err = error_with("engine_version: \"16.4\"", "engine_version: \"16\"");
    assert!(err.contains("engine_version must be an Aurora PostgreSQL version such as \"16.4\""), "{err}");
}
