//! The deployer against moto's server on loopback: a real AWS SDK talking to a real emulator.
//! Each test starts its own server, so environments and counts never mix.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use deployer::apply::{Zip, deploy, destroy, plan_deploy};
use deployer::aws::Clients;
use deployer::config::{EnvName, EnvironmentSpec};
use deployer::desired::Kind;
use deployer::outputs::outputs;
use deployer::plan::Action;
use sha2::{Digest, Sha256};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A moto server on a free loopback port, stopped when dropped.
struct Moto {
    child: Child,
    url: String,
}

impl Moto {
    fn start() -> Moto {
        let bin =
            std::env::var_os("PROMO_VENV_BIN").map(PathBuf::from).unwrap_or_else(|| root().join("target/venv/bin"));
        let server = bin.join("moto_server");
        assert!(server.exists(), "{} is missing: run `cargo xtask test`, which installs it", server.display());
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut command = Command::new(server);
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe. The server dies with the test thread that started
        // it, even if the test binary is killed before any destructor runs.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong);
                Ok(())
            });
        }
        let child = command.spawn().expect("start moto_server");
        let url = format!("http://127.0.0.1:{port}");
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        // Generous: under a full test run on two cores, six of these start at once.
        let deadline = Instant::now() + Duration::from_secs(90);
        while agent.get(format!("{url}/moto-api/")).call().is_err() {
            assert!(Instant::now() < deadline, "moto did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        // Lambda invocations without Docker: moto answers them itself.
        agent
            .post(format!("{url}/moto-api/config"))
            .header("Content-Type", "application/json")
            .send(r#"{"lambda":{"use_docker":false}}"#)
            .expect("configure moto");
        Moto { child, url }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spec_named(name: &str) -> (EnvName, EnvironmentSpec) {
    let text = std::fs::read_to_string(root().join("environments/emulator.yaml")).unwrap();
    (EnvName::parse(name).unwrap(), EnvironmentSpec::parse(Path::new("emulator.yaml"), &text).unwrap())
}

/// Zips for every function: cargo-lambda's when `cargo xtask test` built them, otherwise small
/// stand-ins (moto never runs the code).
fn zips(dir: &Path, salt: &str) -> BTreeMap<String, Zip> {
    let built = root().join("target/lambda/x86_64");
    promo_core::routes::FUNCTION_CRATES
        .iter()
        .map(|f| {
            let real = built.join(format!("{f}.zip"));
            let path = if real.exists() && salt.is_empty() {
                real
            } else {
                let path = dir.join(format!("{f}{salt}.zip"));
                let mut writer = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
                writer.start_file("bootstrap", zip::write::SimpleFileOptions::default()).unwrap();
                writer.write_all(format!("#!/bin/sh\n# {f}{salt}\n").as_bytes()).unwrap();
                writer.finish().unwrap();
                path
            };
            let sha = Sha256::digest(std::fs::read(&path).unwrap());
            let code_sha256 = base64::engine::general_purpose::STANDARD.encode(sha);
            (f.to_string(), Zip { path, code_sha256 })
        })
        .collect()
}

/// A directory for a test's stand-in zips, removed when the test ends.
struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("promo-deployer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

fn quiet(_: &str, _: Duration) {}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_from_nothing_creates_everything_and_outputs_say_what() {
    let moto = Moto::start();
    let (env, spec) = spec_named("emulator");
    let clients = Clients::for_emulator(&spec.region, &moto.url).await;
    let dir = temp_dir("first");
    let zips = zips(&dir, "");

    let started = Instant::now();
    let report = deploy(&clients, &env, &spec, &zips, &quiet).await.expect("first deploy");
    let took = started.elapsed();
    assert!(report.plan.changes.iter().all(|c| c.action == Action::Create), "{}", report.plan);
    assert!(report.migrated, "the migrations run after the first deploy");
    println!("first deploy: {took:?}, {} calls, {} writes", clients.log.calls().len(), clients.log.writes().len());
    assert!(clients.log.writes().iter().any(|c| c == "Lambda:CreateFunction"), "the call log sees writes");

    let out = outputs(&clients, &env, &spec).await.unwrap();
    let api_id = out["api_id"].as_str().expect("api id");
    assert_eq!(out["api_url"], format!("https://{api_id}.execute-api.us-east-1.amazonaws.com/v1"));
    assert_eq!(out["stage"], "v1");
    assert_eq!(out["database"]["cluster_id"], "promo-codes-emulator");
    assert!(out["database"]["endpoint"].as_str().is_some_and(|e| e.contains("promo-codes-emulator")));
    for (name, zip) in &zips {
        let f = &out["functions"][name];
        assert_eq!(f["function_name"], format!("promo-codes-emulator-{name}"));
        assert!(f["alias_arn"].as_str().unwrap().ends_with(&format!("promo-codes-emulator-{name}:live")));
        assert_eq!(f["code_sha256"], zip.code_sha256.as_str(), "{name}");
    }

    // The functions get the contract's configuration, and no secret.
    let config = clients
        .lambda
        .get_function_configuration()
        .function_name("promo-codes-emulator-validate")
        .send()
        .await
        .unwrap();
    let vars = config.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
    assert_eq!(vars.get("AUTH_ISSUER").map(String::as_str), Some("https://issuer.example.test/"));
    assert!(vars.contains_key("AUTH_JWKS_URL") && vars.contains_key("DB_SECRET_ARN") && vars.contains_key("DB_HOST"));
    assert!(!vars.keys().any(|k| k.contains("PASSWORD")) && !vars.contains_key("AUTH_HS256_SECRET"));

    // API Gateway has every route of the table, each an AWS_PROXY integration to a live alias.
    let resources = clients.apigateway.get_resources().rest_api_id(api_id).embed("methods").send().await.unwrap();
    let mut routes = 0;
    for item in resources.items() {
        for (method, detail) in item.resource_methods().into_iter().flatten() {
            let integration = detail.method_integration().expect("integration");
            assert_eq!(integration.r#type().map(|t| t.as_str()), Some("AWS_PROXY"), "{method} {:?}", item.path());
            assert!(integration.uri().unwrap().ends_with(":live/invocations"));
            routes += 1;
        }
    }
    assert_eq!(routes, promo_core::routes::ROUTES.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_deploy_with_nothing_changed_writes_nothing_and_plans_nothing() {
    let moto = Moto::start();
    let (env, spec) = spec_named("emulator");
    let dir = temp_dir("noop");
    let zips = zips(&dir, "");
    deploy(&Clients::for_emulator(&spec.region, &moto.url).await, &env, &spec, &zips, &quiet).await.unwrap();

    let clients = Clients::for_emulator(&spec.region, &moto.url).await;
    let started = Instant::now();
    let report = deploy(&clients, &env, &spec, &zips, &quiet).await.unwrap();
    let took = started.elapsed();
    println!("no-op deploy: {took:?}, {} calls, {} writes", clients.log.calls().len(), clients.log.writes().len());
    assert!(report.plan.is_empty(), "{}", report.plan);
    assert_eq!(clients.log.writes(), Vec::<String>::new());
    assert!(!report.migrated);
    let (plan, _) = plan_deploy(&clients, &env, &spec, &zips).await.unwrap();
    assert!(plan.is_empty(), "{plan}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_yaml_change_is_exactly_that_update() {
    let moto = Moto::start();
    let (env, spec) = spec_named("emulator");
    let dir = temp_dir("change");
    let zips = zips(&dir, "");
    let clients = Clients::for_emulator(&spec.region, &moto.url).await;
    deploy(&clients, &env, &spec, &zips, &quiet).await.unwrap();

    let mut changed = spec.clone();
    changed.functions.overrides.insert("validate".into(), serde_yaml::from_str("memory_mb: 512").unwrap());
    let (plan, _) = plan_deploy(&clients, &env, &changed, &zips).await.unwrap();
    assert_eq!(plan.changes.len(), 1, "{plan}");
    let c = &plan.changes[0];
    assert_eq!((c.action, c.kind, c.name.as_str()), (Action::Update, Kind::Function, "promo-codes-emulator-validate"));
    assert_eq!(c.fields, ["memory_mb"]);

    deploy(&clients, &env, &changed, &zips, &quiet).await.unwrap();
    let live = clients
        .lambda
        .get_function_configuration()
        .function_name("promo-codes-emulator-validate")
        .qualifier("live")
        .send()
        .await
        .unwrap();
    assert_eq!(live.memory_size(), Some(512), "the live alias serves the new configuration");
    let (plan, _) = plan_deploy(&clients, &env, &changed, &zips).await.unwrap();
    assert!(plan.is_empty(), "{plan}");

    // New code for one function: only that function's code goes up.
    let mut new_zips = zips.clone();
    new_zips.insert("list".into(), zips_with_salt(&dir, "list", "-v2"));
    let (plan, _) = plan_deploy(&clients, &env, &changed, &new_zips).await.unwrap();
    assert_eq!(plan.changes.len(), 1, "{plan}");
    assert_eq!(plan.changes[0].fields, ["code_sha256"]);
}

fn zips_with_salt(dir: &Path, function: &str, salt: &str) -> Zip {
    zips(dir, salt).remove(function).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_removes_its_environment_and_leaves_the_other_alone() {
    let moto = Moto::start();
    let (one, spec) = spec_named("alpha");
    let (two, _) = spec_named("beta");
    let dir = temp_dir("destroy");
    let zips = zips(&dir, "");
    let clients = Clients::for_emulator(&spec.region, &moto.url).await;
    deploy(&clients, &one, &spec, &zips, &quiet).await.unwrap();
    deploy(&clients, &two, &spec, &zips, &quiet).await.unwrap();

    let report = destroy(&clients, &one, &spec, &quiet).await.unwrap();
    assert!(report.plan.changes.iter().all(|c| c.action == Action::Delete));
    let (plan, observed) = plan_deploy(&clients, &one, &spec, &zips).await.unwrap();
    assert!(
        observed.resources.is_empty(),
        "left behind: {:?}",
        observed.resources.iter().map(|r| &r.name).collect::<Vec<_>>()
    );
    assert!(plan.changes.iter().all(|c| c.action == Action::Create));
    let (plan, _) = plan_deploy(&clients, &two, &spec, &zips).await.unwrap();
    assert!(plan.is_empty(), "beta was touched: {plan}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_interrupted_half_way_converges_on_the_next_run() {
    let moto = Moto::start();
    let (env, spec) = spec_named("emulator");
    let dir = temp_dir("interrupted");
    let zips = zips(&dir, "");
    let clients = Clients::for_emulator(&spec.region, &moto.url).await;

    // Stop the first deploy after its 8th step, as Ctrl-C or a crash would.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let steps = std::sync::atomic::AtomicUsize::new(0);
    let progress = |_: &str, _: Duration| {
        if steps.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == 8 {
            let _ = tx.send(());
        }
    };
    tokio::select! {
        result = deploy(&clients, &env, &spec, &zips, &progress) => panic!("the deploy was meant to be cut short: {result:?}"),
        _ = rx.recv() => {}
    }
    let (plan, _) = plan_deploy(&clients, &env, &spec, &zips).await.unwrap();
    assert!(!plan.is_empty(), "half-way, there is work left");

    deploy(&clients, &env, &spec, &zips, &quiet).await.expect("the next run converges");
    let (plan, _) = plan_deploy(&clients, &env, &spec, &zips).await.unwrap();
    assert!(plan.is_empty(), "{plan}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_function_reads_its_database_credentials_from_the_rds_secret_not_from_a_variable() {
    use promo_core::secrets::{DbCredentials, SecretsClient};
    use sqlx::Connection;

    let moto = Moto::start();
    let secrets = SecretsClient::new("us-east-1", &moto.url, "testing", "testing", None);
    let created = secrets
        .call("CreateSecret", &serde_json::json!({"Name": "rds!cluster-test", "SecretString": r#"{"username":"postgres","password":"not-needed-locally"}"#}))
        .expect("create the secret");
    let arn = created["ARN"].as_str().expect("arn").to_owned();

    let text = secrets.secret_string(&arn).expect("read the secret");
    let credentials = DbCredentials::parse(&arn, &text).unwrap();
    assert!(!format!("{credentials:?}").contains("not-needed-locally"), "Debug never shows the password");

    let server = ephemeral_pg::shared_server_url().expect("a PostgreSQL for the test");
    let port: u16 =
        server.rsplit(':').next().and_then(|p| p.split('/').next()).and_then(|p| p.parse().ok()).expect("port");
    let options = promo_core::startup::database_options(
        "127.0.0.1",
        port,
        "postgres",
        &credentials,
        sqlx::postgres::PgSslMode::Disable,
    );
    let mut connection =
        sqlx::PgConnection::connect_with(&options).await.expect("connect with the secret's credentials");
    let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut connection).await.unwrap();
    assert_eq!(one, 1);

    let missing = secrets.secret_string("arn:aws:secretsmanager:us-east-1:123456789012:secret:nope").unwrap_err();
    assert!(
        matches!(&missing, promo_core::secrets::SecretError::Refused { message, .. } if message.contains("ResourceNotFound")),
        "{missing}"
    );
}
