//! End to end on the emulator: the deployer deploys the real zips, then the deployed API (stage
//! URL -> integration -> live alias -> the uploaded bootstrap -> the cluster's PostgreSQL) is
//! driven over HTTP as an API client would, before and after the database password is rotated,
//! and again in a second environment the code was promoted to.

mod common;

use std::path::Path;

use common::{Client, TempDir, browser, built_zips, root, story, xtask};
use deployer::apply::deploy;
use deployer::aws::Clients;
use deployer::config::{EnvName, EnvironmentSpec};
use deployer::outputs::outputs;
use deployer::progress::quiet;
use deployer::promote::fetch_live_code;
use promo_core::secrets::{DbCredentials, SecretsClient};
use sqlx::Connection;

fn migration_versions() -> Vec<i64> {
    let mut versions: Vec<i64> = std::fs::read_dir(root().join("migrations"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.split('_').next()?.parse().ok())
        .collect();
    versions.sort_unstable();
    versions
}

/// environments/emulator.yaml as environment `name`, trusting the issuer whose JWKS the
/// emulator at `emulator_url` serves.
fn spec_named(name: &str, emulator_url: &str) -> (EnvName, EnvironmentSpec) {
    let text = std::fs::read_to_string(root().join("environments/emulator.yaml")).unwrap();
    let mut spec = EnvironmentSpec::parse(Path::new("emulator.yaml"), &text).unwrap();
    spec.auth.jwks_url = Some(format!("{emulator_url}/.well-known/jwks.json"));
    (EnvName::parse(name).unwrap(), spec)
}

/// Processes started by an emulator: its databases and function instances.
fn emulator_children() -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            entry.file_name().to_str()?.parse::<u32>().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (cmdline.contains("/emulator-aurora-") || cmdline.contains("/emulator-lambda-")).then_some(cmdline)
        })
        .collect()
}

/// The credentials in the secret that `variable` of `function`'s configuration names: the
/// master user's for migrate's `DB_SECRET_ARN`, the application role's for any other function's.
async fn credentials(clients: &Clients, emulator_url: &str, function: &str, variable: &str) -> DbCredentials {
    let config = clients.lambda.get_function_configuration().function_name(function).send().await.unwrap();
    let vars = config.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
    let arn = vars[variable].clone();
    let secrets = SecretsClient::new("us-east-1", emulator_url, "testing", "testing", None);
    let text = tokio::task::spawn_blocking(move || secrets.secret_string(&arn)).await.unwrap().unwrap();
    DbCredentials::parse(variable, &text).unwrap()
}

async fn master_credentials(clients: &Clients, emulator_url: &str) -> DbCredentials {
    credentials(clients, emulator_url, "promo-codes-e2e-migrate", "DB_SECRET_ARN").await
}

#[test]
fn the_deployed_api_tells_the_story_across_a_password_rotation_and_after_a_promote() {
    let dir = TempDir(std::env::temp_dir().join(format!("promo-deployed-api-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let jwks = xtask(&dir.0).args(["token", "--jwks"]).output().expect("xtask token --jwks");
    assert!(jwks.status.success(), "{}", String::from_utf8_lossy(&jwks.stderr));
    std::fs::write(dir.0.join("jwks.json"), &jwks.stdout).unwrap();
    let jwks_path = dir.0.join("jwks.json").to_string_lossy().into_owned();
    let mut args = aws_emulator::TEST_ARGS.to_vec();
    args.extend(["--jwks", jwks_path.as_str()]);
    let emulator = aws_emulator::Emulator::start_with(&aws_emulator::venv_python(), &args).unwrap();
    let admin = common::token(&dir.0, "back-office", true);
    let alice = common::token(&dir.0, "alice", false);
    let mallory = common::token(&dir.0, "mallory", false);
    let runtime = tokio::runtime::Runtime::new().unwrap();

    let (env, spec) = spec_named("e2e", &emulator.url);
    let clients = runtime.block_on(Clients::for_emulator(&spec.region, &emulator.url));
    let zips = built_zips();
    let report = runtime.block_on(deploy(&clients, &env, &spec, &zips, &quiet)).expect("deploy");
    assert!(report.migrated, "the real migrate function ran");
    assert_eq!(report.migrations, migration_versions(), "and applied every migration to the cluster's database");

    let out = runtime.block_on(outputs(&clients, &env, &spec)).unwrap();
    let api = Client::new(out["api_url"].as_str().expect("api_url"));
    story(&api, &admin, &alice, &mallory, "deployed-summer");
    // environments/emulator.yaml allows a back office on a local dev server.
    browser(&api, &admin, "http://localhost:5173");

    // The functions answer with the request id API Gateway gave the request.
    let listed = api.send("GET", "/promo-codes?limit=1", &admin, &[], None);
    assert_eq!(listed.header("x-request-id"), listed.header("x-amzn-RequestId"));
    // What API Gateway answers itself is in the contract's shape, with its own request id.
    let unknown = api.send("GET", "/nowhere", &admin, &[], None);
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert_eq!(unknown.body["error"]["request_id"].as_str(), unknown.header("x-amzn-RequestId"));

    // The API functions connect as the application role, never as the master user; that role
    // may read and write the tables and nothing more, and its password (set by migrate as a
    // SCRAM verifier) opens a scram-sha-256 session as on Aurora.
    let host = out["database"]["endpoint"].as_str().unwrap().to_owned();
    let app = runtime.block_on(credentials(&clients, &emulator.url, "promo-codes-e2e-validate", "DB_SECRET_ARN"));
    let before = runtime.block_on(master_credentials(&clients, &emulator.url));
    assert_eq!((app.username.as_str(), before.username.as_str()), ("promo_app", "promo_admin"));
    let options = |credentials: &DbCredentials| {
        promo_core::startup::database_options(
            &host,
            5432,
            "promo_codes",
            credentials,
            sqlx::postgres::PgSslMode::Require,
        )
    };
    runtime.block_on(async {
        let mut master = sqlx::PgConnection::connect_with(&options(&before)).await.expect("the master password works");
        let users: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT usename::text FROM pg_stat_activity \
             WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
        )
        .fetch_all(&mut master)
        .await
        .unwrap();
        assert_eq!(users, ["promo_app"], "the warm functions' sessions");
        let mut as_app = sqlx::PgConnection::connect_with(&options(&app)).await.expect("the app role's password works");
        let ddl = sqlx::raw_sql("CREATE TABLE stolen (x int)").execute(&mut as_app).await;
        assert!(ddl.is_err(), "the application role runs no DDL");
        let migrations = sqlx::raw_sql("SELECT * FROM _sqlx_migrations").execute(&mut as_app).await;
        assert!(migrations.is_err(), "nor reads the migrations table");
    });

    // RDS rotates the master password. The API functions do not use it, so they never notice;
    // migrate reads it again on its next run. Their sessions are ended too (as a failover
    // would): warm instances reconnect rather than fail every request.
    runtime
        .block_on(
            clients
                .rds
                .modify_db_cluster()
                .db_cluster_identifier("promo-codes-e2e")
                .rotate_master_user_password(true)
                .apply_immediately(true)
                .send(),
        )
        .expect("rotate");
    let after = runtime.block_on(master_credentials(&clients, &emulator.url));
    assert_ne!(before.password, after.password, "the rotation changed the password");
    let ended = runtime.block_on(async {
        let mut admin_session =
            sqlx::PgConnection::connect_with(&options(&after)).await.expect("the new password works");
        // The functions connect with verify-full (the story above passed): the emulator's server
        // certificate chains to its own test CA, which AWS's RDS bundle alone does not trust.
        let verified = options(&after)
            .ssl_mode(sqlx::postgres::PgSslMode::VerifyFull)
            .ssl_root_cert_from_pem(promo_core::startup::RDS_CA_BUNDLE.to_vec());
        let untrusted = sqlx::PgConnection::connect_with(&verified).await.err().map(|e| e.to_string());
        assert!(untrusted.as_deref().is_some_and(|e| e.to_lowercase().contains("certificate")), "{untrusted:?}");
        let refused = sqlx::PgConnection::connect_with(&options(&before)).await;
        assert!(refused.is_err(), "the old password is refused");
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE pid <> pg_backend_pid() AND backend_type = 'client backend') ended",
        )
        .fetch_one(&mut admin_session)
        .await
        .unwrap()
    });
    assert!(ended > 0, "warm instances had sessions to end");
    // A warm migrate, invoked again after the rotation, reads the new master password.
    let migrated = runtime
        .block_on(deployer::migrate::migrate(&clients, "promo-codes-e2e-migrate", "live"))
        .expect("migrate after the rotation");
    assert_eq!(migrated, migration_versions());
    story(&api, &admin, &alice, &mallory, "rotated-summer");

    // Promote: the exact code of e2e, deployed to a second environment with its own database.
    let (next, next_spec) = spec_named("e2e-next", &emulator.url);
    let fetched = runtime
        .block_on(fetch_live_code(&clients, &env, &spec, &next_spec, &dir.0.join("fetched")))
        .expect("fetch the live code");
    let promoted =
        runtime.block_on(deploy(&clients, &next, &next_spec, &fetched, &quiet)).expect("deploy the promoted code");
    assert!(promoted.migrated);
    let next_out = runtime.block_on(outputs(&clients, &next, &next_spec)).unwrap();
    assert_ne!(next_out["database"]["endpoint"], out["database"]["endpoint"]);
    for (function, zip) in &zips {
        assert_eq!(next_out["functions"][function]["code_sha256"], zip.code_sha256.as_str(), "{function}");
    }
    let next_api = Client::new(next_out["api_url"].as_str().unwrap());
    story(&next_api, &admin, &alice, &mallory, "deployed-summer");

    // Stopping the emulator stops everything it ran.
    drop(emulator);
    assert_eq!(emulator_children(), Vec::<String>::new(), "processes outlived the emulator");
}
