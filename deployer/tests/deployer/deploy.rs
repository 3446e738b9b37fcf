//! Deploys, plans, promotion, canaries and rollback: the real AWS SDK against the emulator.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use deployer::apply::{deploy, destroy, plan_deploy};
use deployer::aws::Clients;
use deployer::desired::Kind;
use deployer::outputs::outputs;
use deployer::plan::Action;
use deployer::progress::Event;
use deployer::promote::fetch_live_code;
use deployer::release::rollback;

use crate::helpers::{builds_answering, live_config, quiet, spec_named, temp_dir, zips, zips_with_salt};

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_from_nothing_creates_everything_and_outputs_say_what() {
    let moto = crate::helpers::emulator();
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
    // On the emulator, the stage's URL is the emulator's (on AWS, https://<id>.execute-api...).
    assert_eq!(out["api_url"], format!("{}/restapis/{api_id}/v1/_user_request_", moto.url));
    let as_on_aws = Clients { emulator: None, ..clients.clone() };
    let aws_url = outputs(&as_on_aws, &env, &spec).await.unwrap()["api_url"].clone();
    assert_eq!(aws_url, format!("https://{api_id}.execute-api.us-east-1.amazonaws.com/v1"));
    assert_eq!(out["stage"], "v1");
    assert_eq!(out["database"]["cluster_id"], "promo-codes-emulator");
    // The emulator's Aurora: a PostgreSQL on a loopback address of the cluster's own.
    let endpoint = out["database"]["endpoint"].as_str().expect("endpoint");
    assert!(endpoint.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback()), "{endpoint}");
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
    assert_eq!(vars.get("AUTH_ISSUER").map(String::as_str), Some("promo-codes-local"));
    assert!(vars.contains_key("AUTH_JWKS_URL") && vars.contains_key("DB_SECRET_ARN") && vars.contains_key("DB_HOST"));
    assert!(!vars.keys().any(|k| k.contains("PASSWORD")) && !vars.contains_key("AUTH_HS256_SECRET"));

    // API Gateway has every route of the table and an OPTIONS (a browser's preflight) on each of
    // its paths, each an AWS_PROXY integration to a live alias.
    let resources = clients.apigateway.get_resources().rest_api_id(api_id).embed("methods").send().await.unwrap();
    let mut routes = 0;
    let mut preflights = 0;
    for item in resources.items() {
        for (method, detail) in item.resource_methods().into_iter().flatten() {
            let integration = detail.method_integration().expect("integration");
            assert_eq!(integration.r#type().map(|t| t.as_str()), Some("AWS_PROXY"), "{method} {:?}", item.path());
            assert!(integration.uri().unwrap().ends_with(":live/invocations"));
            if method == "OPTIONS" { preflights += 1 } else { routes += 1 }
        }
    }
    assert_eq!(routes, promo_shared::routes::ROUTES.len());
    let paths: std::collections::BTreeSet<_> = promo_shared::routes::ROUTES.iter().map(|r| r.path).collect();
    assert_eq!(preflights, paths.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_deploy_with_nothing_changed_writes_nothing_and_plans_nothing() {
    let moto = crate::helpers::emulator();
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
    let moto = crate::helpers::emulator();
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

#[tokio::test(flavor = "multi_thread")]
async fn destroy_removes_its_environment_and_leaves_the_other_alone() {
    let moto = crate::helpers::emulator();
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
    assert!(observed.state.is_empty(), "left behind: {:?}", observed.state);
    assert!(plan.changes.iter().all(|c| c.action == Action::Create));
    let (plan, _) = plan_deploy(&clients, &two, &spec, &zips).await.unwrap();
    assert!(plan.is_empty(), "beta was touched: {plan}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_interrupted_half_way_converges_on_the_next_run() {
    let moto = crate::helpers::emulator();
    let (env, spec) = spec_named("emulator");
    let dir = temp_dir("interrupted");
    let zips = zips(&dir, "");
    let clients = Clients::for_emulator(&spec.region, &moto.url).await;

    // Stop the first deploy after its 8th step, as Ctrl-C or a crash would.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let steps = std::sync::atomic::AtomicUsize::new(0);
    let progress = |event: Event, _: Duration| {
        if matches!(event, Event::Done(_)) && steps.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == 8 {
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
async fn promote_copies_the_exact_code_and_keeps_the_targets_own_configuration() {
    let moto = crate::helpers::emulator();
    let (staging, staging_spec) = spec_named("staging");
    let (prod, mut prod_spec) = spec_named("prod");
    prod_spec.functions.defaults.memory_mb = 512.try_into().unwrap();
    prod_spec.functions.defaults.env.insert("FEATURE_FLAGS".into(), "prod-only".into());
    prod_spec.tags.insert("tier".into(), "production".into());
    let dir = temp_dir("promote");
    let staging_zips = zips(&dir, "-tested");
    let clients = Clients::for_emulator(&staging_spec.region, &moto.url).await;
    deploy(&clients, &staging, &staging_spec, &staging_zips, &quiet).await.unwrap();
    deploy(&clients, &prod, &prod_spec, &zips(&dir, "-old"), &quiet).await.unwrap();

    let fetched = fetch_live_code(&clients, &staging, &staging_spec, &prod_spec, &dir.join("fetched")).await.unwrap();
    for (function, zip) in &fetched {
        assert_eq!(zip.code_sha256, staging_zips[function].code_sha256, "{function}");
        assert_eq!(std::fs::read(&zip.path).unwrap(), std::fs::read(&staging_zips[function].path).unwrap());
    }
    let report = deploy(&clients, &prod, &prod_spec, &fetched, &quiet).await.unwrap();
    assert!(report.migrated, "new migrate code runs its migrations in the target");

    let out = outputs(&clients, &prod, &prod_spec).await.unwrap();
    let prod_database = out["database"]["endpoint"].as_str().expect("prod's endpoint").to_owned();
    let staging_out = outputs(&clients, &staging, &staging_spec).await.unwrap();
    assert_ne!(staging_out["database"]["endpoint"].as_str(), Some(prod_database.as_str()));
    for (function, zip) in &staging_zips {
        assert_eq!(out["functions"][function]["code_sha256"], zip.code_sha256.as_str(), "{function}");
        let name = format!("promo-codes-prod-{function}");
        let live = live_config(&clients, &name).await;
        assert_eq!(live.code_sha256(), Some(zip.code_sha256.as_str()), "{function}: same CodeSha256 as staging");
        assert_eq!(live.memory_size(), Some(512), "{function}: prod's memory");
        let vars = live.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
        assert_eq!(vars.get("FEATURE_FLAGS").map(String::as_str), Some("prod-only"), "{function}: prod's env");
        assert_eq!(vars.get("DB_HOST"), Some(&prod_database), "{function}: prod's database");
        let arn = format!("arn:aws:lambda:us-east-1:123456789012:function:{name}");
        let tags = clients.lambda.list_tags().resource(arn).send().await.unwrap();
        let tags = tags.tags().cloned().unwrap_or_default();
        assert_eq!(tags.get("env").map(String::as_str), Some("prod"), "{function}");
        assert_eq!(tags.get("tier").map(String::as_str), Some("production"), "{function}");
    }
    let staging_live = live_config(&clients, "promo-codes-staging-list").await;
    assert_eq!(staging_live.memory_size(), Some(256), "staging keeps its own configuration");
    let (plan, _) = plan_deploy(&clients, &prod, &prod_spec, &fetched).await.unwrap();
    assert!(plan.is_empty(), "promoting again changes nothing: {plan}");

    // A source changed behind the deployer's back is not what was tested: refused.
    clients
        .lambda
        .update_function_configuration()
        .function_name("promo-codes-staging-list")
        .memory_size(1024)
        .send()
        .await
        .unwrap();
    let refused = fetch_live_code(&clients, &staging, &staging_spec, &prod_spec, &dir.join("again")).await.unwrap_err();
    assert!(refused.to_string().contains("differs from what staging was deployed as"), "{refused}");

    // Code for another architecture cannot be promoted by copying it.
    deploy(&clients, &staging, &staging_spec, &staging_zips, &quiet).await.unwrap();
    let mut arm = prod_spec.clone();
    arm.functions.defaults.architecture = deployer::config::Architecture::Arm64;
    let refused = fetch_live_code(&clients, &staging, &staging_spec, &arm, &dir.join("arm")).await.unwrap_err();
    assert!(refused.to_string().contains("cannot change its architecture"), "{refused}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_canary_routes_its_share_to_the_new_version_then_moves_everything_after_the_migrations() {
    let moto = crate::helpers::emulator();
    let (env, mut spec) = spec_named("emulator");
    spec.release = Some(serde_yaml::from_str("{canary_percent: 10, bake_seconds: 8}").unwrap());
    let dir = temp_dir("canary");
    let clients = Clients::for_emulator(&spec.region, &moto.url).await;
    deploy(&clients, &env, &spec, &zips(&dir, "-v1"), &quiet).await.unwrap();
    let old = live_config(&clients, "promo-codes-emulator-validate").await.version().unwrap().to_owned();
    let api_url = outputs(&clients, &env, &spec).await.unwrap()["api_url"].as_str().unwrap().to_owned();
    let answers = |n| builds_answering(&api_url, "POST", "/validations", n);
    assert_eq!(answers(5), BTreeMap::from([("validate-v1".to_owned(), 5)]));

    let lines = std::sync::Mutex::new(Vec::<String>::new());
    let progress = |event: Event, _: Duration| {
        if let Event::Done(line) = event {
            lines.lock().unwrap().push(line.to_owned());
        }
    };
    let new_zips = zips(&dir, "-v2");
    let watch = async {
        // While the deploy bakes its canary, the alias still points at the old version and
        // sends 10% to the new one.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let alias =
                clients.lambda.get_alias().function_name("promo-codes-emulator-validate").name("live").send().await;
            if let Some((version, weight)) = alias.as_ref().ok().and_then(deployer::observe::canary_weights) {
                // What callers of the deployed API get while it bakes (requests through the
                // stage, the integration and the alias's weights).
                let url = api_url.clone();
                let calls = move || builds_answering(&url, "POST", "/validations", 100);
                let seen = tokio::task::spawn_blocking(calls).await.unwrap();
                return (alias.unwrap().function_version().unwrap().to_owned(), version, weight, seen);
            }
            assert!(Instant::now() < deadline, "no canary was seen");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let (deployed, (primary, canary, weight, seen)) =
        tokio::join!(deploy(&clients, &env, &spec, &new_zips, &progress), watch);
    deployed.unwrap();
    let (old_share, new_share) = (seen.get("validate-v1").copied(), seen.get("validate-v2").copied());
    assert_eq!(old_share.unwrap_or(0) + new_share.unwrap_or(0), 100, "{seen:?}");
    // 10% of 100: none at all, or more than 30, would be odds of about 1 in 40,000.
    assert!(new_share.is_some_and(|n| (1..=30).contains(&n)), "the canary's share of the answers: {seen:?}");
    assert_eq!(answers(5), BTreeMap::from([("validate-v2".to_owned(), 5)]), "after the bake, all of it");
    assert_eq!(primary, old, "during the canary, live's main version is the old one");
    assert_ne!(canary, old);
    assert!((weight - 0.10).abs() < 1e-9, "{weight}");

    let alias = clients.lambda.get_alias().function_name("promo-codes-emulator-validate").name("live").send().await;
    let alias = alias.unwrap();
    assert_eq!(alias.function_version(), Some(canary.as_str()), "after the bake, live is the new version");
    assert_eq!(deployer::observe::canary_weights(&alias), None, "and the routing config is cleared");
    let live = live_config(&clients, "promo-codes-emulator-validate").await;
    assert_eq!(live.code_sha256(), Some(new_zips["validate"].code_sha256.as_str()));

    let lines = lines.into_inner().unwrap();
    let position = |prefix: &str| lines.iter().position(|l| l.starts_with(prefix));
    let migrated = position("migrated the database").expect("migrate ran");
    let canary_line = position("canary: 10%").expect("the canary was announced");
    assert!(migrated < canary_line, "the migrations run before any alias moves: {lines:#?}");
    let (plan, _) = plan_deploy(&clients, &env, &spec, &new_zips).await.unwrap();
    assert!(plan.is_empty(), "{plan}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_points_live_back_at_what_the_latest_release_replaced() {
    let moto = crate::helpers::emulator();
    let (env, spec) = spec_named("emulator");
    let dir = temp_dir("rollback");
    let clients = Clients::for_emulator(&spec.region, &moto.url).await;
    let v1 = zips(&dir, "-v1");
    let v2 = zips(&dir, "-v2");
    deploy(&clients, &env, &spec, &v1, &quiet).await.unwrap();
    let refused = rollback(&clients, &env).await.unwrap_err();
    assert!(refused.to_string().contains("nothing to roll back"), "a first deploy has nothing before it: {refused}");
    deploy(&clients, &env, &spec, &v2, &quiet).await.unwrap();

    let rollback_clients = Clients::for_emulator(&spec.region, &moto.url).await;
    let rolled = rollback(&rollback_clients, &env).await.unwrap();
    assert_eq!(rolled.len(), v1.len(), "{rolled:?}");
    let writes = rollback_clients.log.writes();
    assert_eq!(writes, vec!["Lambda:UpdateAlias"; v1.len()], "one call per function");
    let out = outputs(&clients, &env, &spec).await.unwrap();
    for (function, zip) in &v1 {
        assert_eq!(out["functions"][function]["code_sha256"], zip.code_sha256.as_str(), "{function}");
    }
    let api_url = out["api_url"].as_str().unwrap();
    let listed = builds_answering(api_url, "GET", "/promo-codes", 3);
    assert_eq!(listed, BTreeMap::from([("list-v1".to_owned(), 3)]), "callers get the code rolled back to");
    let again = rollback(&clients, &env).await.unwrap_err();
    assert!(again.to_string().contains("nothing to roll back"), "{again}");

    // The next deploy moves forward again; a release that changed one function rolls back one.
    deploy(&clients, &env, &spec, &v2, &quiet).await.unwrap();
    let mut v3 = v2.clone();
    v3.insert("list".into(), zips_with_salt(&dir, "list", "-v3"));
    deploy(&clients, &env, &spec, &v3, &quiet).await.unwrap();
    let rolled = rollback(&clients, &env).await.unwrap();
    assert_eq!(rolled.iter().map(|r| r.function.as_str()).collect::<Vec<_>>(), ["promo-codes-emulator-list"]);
    let out = outputs(&clients, &env, &spec).await.unwrap();
    for (function, zip) in &v2 {
        assert_eq!(out["functions"][function]["code_sha256"], zip.code_sha256.as_str(), "{function}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_cut_short_before_the_migrations_ran_runs_them_on_the_next_run() {
    let moto = crate::helpers::emulator();
    let (env, spec) = spec_named("emulator");
    let dir = temp_dir("cut-before-migrate");
    let clients = Clients::for_emulator(&spec.region, &moto.url).await;
    deploy(&clients, &env, &spec, &zips(&dir, "-v1"), &quiet).await.unwrap();

    // Stop right after the new migrate function went up, before it was invoked.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let progress = |event: Event, _: Duration| {
        if event == Event::Done("updated lambda function promo-codes-emulator-migrate") {
            let _ = tx.send(());
        }
    };
    let v2 = zips(&dir, "-v2");
    tokio::select! {
        result = deploy(&clients, &env, &spec, &v2, &progress) => panic!("the deploy was meant to be cut short: {result:?}"),
        _ = rx.recv() => {}
    }
    let live = live_config(&clients, "promo-codes-emulator-migrate").await;
    assert_eq!(live.code_sha256(), Some(zips(&dir, "-v1")["migrate"].code_sha256.as_str()), "migrate's alias waits");
    // The new code is uploaded, but callers get it only once its alias moves.
    let api_url = outputs(&clients, &env, &spec).await.unwrap()["api_url"].as_str().unwrap().to_owned();
    let url = api_url.clone();
    let before = tokio::task::spawn_blocking(move || builds_answering(&url, "GET", "/promo-codes", 3)).await.unwrap();
    assert_eq!(before, BTreeMap::from([("list-v1".to_owned(), 3)]));

    let report = deploy(&clients, &env, &spec, &v2, &quiet).await.unwrap();
    assert!(report.migrated, "the next run invokes the new migrate");
    let live = live_config(&clients, "promo-codes-emulator-migrate").await;
    assert_eq!(live.code_sha256(), Some(v2["migrate"].code_sha256.as_str()));
    let after =
        tokio::task::spawn_blocking(move || builds_answering(&api_url, "GET", "/promo-codes", 3)).await.unwrap();
    assert_eq!(after, BTreeMap::from([("list-v2".to_owned(), 3)]));
}

/// The versions `live` points at, per function, and whether any still splits traffic.
async fn live_versions(clients: &Clients, env: &str) -> BTreeMap<String, (String, bool)> {
    let mut versions = BTreeMap::new();
    for function in promo_shared::routes::FUNCTION_CRATES {
        let name = format!("promo-codes-{env}-{function}");
        let alias = clients.lambda.get_alias().function_name(&name).name("live").send().await.unwrap();
        let splits = deployer::observe::canary_weights(&alias).is_some();
        versions.insert(name, (alias.function_version().unwrap().to_owned(), splits));
    }
    versions
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alarm_that_fires_during_the_bake_rolls_the_release_back_and_fails_the_deploy() {
    let moto = crate::helpers::emulator();
    let (env, mut spec) = spec_named("alarmed");
    spec.release = Some(serde_yaml::from_str("{canary_percent: 10, bake_seconds: 60}").unwrap());
    let dir = temp_dir("alarmed");
    let clients = Clients::for_emulator(&spec.region, &moto.url).await;
    deploy(&clients, &env, &spec, &zips(&dir, "-v1"), &quiet).await.unwrap();
    let alarms = clients.cloudwatch.describe_alarms().alarm_name_prefix("promo-codes-alarmed-").send().await.unwrap();
    assert_eq!(alarms.metric_alarms().len(), 11, "the release's alarms exist before any release bakes");
    let before = live_versions(&clients, "alarmed").await;

    let fire = async {
        // Once the canary runs, the new version's errors alarm goes off (moto evaluates no
        // metrics; SetAlarmState is what a real alarm's evaluation does).
        loop {
            let alias =
                clients.lambda.get_alias().function_name("promo-codes-alarmed-validate").name("live").send().await;
            if alias.ok().and_then(|a| deployer::observe::canary_weights(&a)).is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        clients
            .cloudwatch
            .set_alarm_state()
            .alarm_name("promo-codes-alarmed-validate-errors")
            .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
            .state_reason("errors of the new version")
            .send()
            .await
            .unwrap();
    };
    let new_zips = zips(&dir, "-v2");
    let started = Instant::now();
    let (deployed, ()) = tokio::join!(deploy(&clients, &env, &spec, &new_zips, &quiet), fire);
    let error = deployed.expect_err("an aborted canary fails the deploy").report();
    assert!(error.contains("alarm promo-codes-alarmed-validate-errors fired"), "{error}");
    assert!(error.contains("rolled back"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(45), "aborted during the 60 s bake, not after it");
    assert_eq!(live_versions(&clients, "alarmed").await, before, "every live alias is back where it was");

    // During the bake the alarm counted the new version's errors.
    let watched = clients.cloudwatch.describe_alarms().alarm_names("promo-codes-alarmed-validate-errors").send().await;
    let dimensions = watched.unwrap().metric_alarms()[0].dimensions().to_vec();
    let version = dimensions.iter().find(|d| d.name() == Some("ExecutedVersion")).and_then(|d| d.value());
    assert!(version.is_some_and(|v| v != before["promo-codes-alarmed-validate"].0), "{dimensions:?}");
}
