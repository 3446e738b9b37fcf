//! What a real account does that a naive deployer never converges on: tags removed from the
//! file, engine versions AWS moved up by itself, a migrate function that answers nonsense.

use std::collections::BTreeMap;

use deployer::apply::{deploy, plan_deploy};
use deployer::aws::Clients;
use deployer::plan::Action;

use crate::helpers::{clients, emulator, live_config, migration_versions, quiet, spec_named, stand_in, temp_dir, zips};

/// The tags every kind of resource of environment `env` carries in AWS, read directly.
async fn tags_in_aws(clients: &Clients, env: &str, api_id: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let mut all = Vec::new();
    let function = format!("promo-codes-{env}-validate");
    let arn = format!("arn:aws:lambda:us-east-1:123456789012:function:{function}");
    let tags = clients.lambda.list_tags().resource(arn).send().await.unwrap();
    all.push((function.clone(), tags.tags().cloned().unwrap_or_default().into_iter().collect()));
    let role = clients.iam.list_role_tags().role_name(&function).send().await.unwrap();
    all.push((format!("role {function}"), role.tags().iter().map(|t| (t.key().into(), t.value().into())).collect()));
    let cluster =
        clients.rds.describe_db_clusters().db_cluster_identifier(format!("promo-codes-{env}")).send().await.unwrap();
    let tag_list = cluster.db_clusters()[0].tag_list();
    all.push((
        "cluster".into(),
        tag_list.iter().map(|t| (t.key().unwrap().into(), t.value().unwrap().into())).collect(),
    ));
    let instance = clients
        .rds
        .describe_db_instances()
        .db_instance_identifier(format!("promo-codes-{env}-1"))
        .send()
        .await
        .unwrap();
    let tag_list = instance.db_instances()[0].tag_list();
    all.push((
        "instance".into(),
        tag_list.iter().map(|t| (t.key().unwrap().into(), t.value().unwrap().into())).collect(),
    ));
    let secret = clients.secretsmanager.describe_secret().secret_id(format!("promo-codes-{env}-app-db")).send().await;
    let secret = secret.unwrap();
    all.push((
        "secret".into(),
        secret.tags().iter().map(|t| (t.key().unwrap().into(), t.value().unwrap().into())).collect(),
    ));
    let api = clients.apigateway.get_rest_api().rest_api_id(api_id).send().await.unwrap();
    all.push(("rest api".into(), api.tags().cloned().unwrap_or_default().into_iter().collect()));
    let stage = clients.apigateway.get_stage().rest_api_id(api_id).stage_name("v1").send().await.unwrap();
    all.push(("stage".into(), stage.tags().cloned().unwrap_or_default().into_iter().collect()));
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn adding_then_removing_a_tag_converges_to_an_empty_plan_on_every_kind() {
    let emulator = emulator();
    let (env, spec) = spec_named("tagged");
    let dir = temp_dir("tags");
    let zips = zips(&dir, "");
    let clients = clients(&emulator).await;
    deploy(&clients, &env, &spec, &zips, &quiet).await.unwrap();
    let (_, observed) = plan_deploy(&clients, &env, &spec, &zips).await.unwrap();
    let api_id = observed.facts.api_id.clone().unwrap();

    let mut tagged = spec.clone();
    tagged.tags.insert("owner".into(), "growth".into());
    let report = deploy(&clients, &env, &tagged, &zips, &quiet).await.expect("a tag change deploys, the API's too");
    assert!(report.plan.changes.iter().all(|c| c.action == Action::Update && c.fields == ["tags"]), "{}", report.plan);
    let (plan, _) = plan_deploy(&clients, &env, &tagged, &zips).await.unwrap();
    assert!(plan.is_empty(), "{plan}");
    for (what, tags) in tags_in_aws(&clients, "tagged", &api_id).await {
        assert_eq!(tags.get("owner").map(String::as_str), Some("growth"), "{what}");
    }

    let report = deploy(&clients, &env, &spec, &zips, &quiet).await.unwrap();
    // 6 functions and their roles, the cluster, its instance, the secret, the API, its stage.
    assert_eq!(report.plan.changes.len(), 6 * 2 + 5, "every resource untagged once: {}", report.plan);
    let (plan, _) = plan_deploy(&clients, &env, &spec, &zips).await.unwrap();
    assert!(plan.is_empty(), "a removed tag converges: {plan}");
    for (what, tags) in tags_in_aws(&clients, "tagged", &api_id).await {
        assert_eq!(tags.get("owner"), None, "{what} still has the removed tag");
        assert_eq!(tags.get("env").map(String::as_str), Some("tagged"), "{what}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_engine_minor_version_newer_than_the_file_deploys_cleanly_and_is_not_moved_back() {
    let emulator = emulator();
    let (env, spec) = spec_named("aged");
    let dir = temp_dir("engine");
    let zips = zips(&dir, "");
    let clients = clients(&emulator).await;
    deploy(&clients, &env, &spec, &zips, &quiet).await.unwrap();

    // AWS's auto minor version upgrade, behind the deployer's back.
    let rds = &clients.rds;
    rds.modify_db_cluster()
        .db_cluster_identifier("promo-codes-aged")
        .engine_version("16.6")
        .apply_immediately(true)
        .send()
        .await
        .unwrap();
    // The emulator refuses a downgrade as a real account does, once the upgrade is done.
    let started = std::time::Instant::now();
    while rds.describe_db_clusters().db_cluster_identifier("promo-codes-aged").send().await.unwrap().db_clusters()[0]
        .status()
        != Some("available")
    {
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "the upgrade never finished");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let downgrade = rds
        .modify_db_cluster()
        .db_cluster_identifier("promo-codes-aged")
        .engine_version("16.4")
        .apply_immediately(true)
        .send()
        .await;
    let message = aws_smithy_types::error::display::DisplayErrorContext(downgrade.unwrap_err()).to_string();
    assert!(message.contains("Cannot upgrade aurora-postgresql from 16.6 to 16.4"), "{message}");

    let (plan, _) = plan_deploy(&clients, &env, &spec, &zips).await.unwrap();
    assert!(plan.is_empty(), "16.6 satisfies a file asking for 16.4: {plan}");
    deploy(&clients, &env, &spec, &zips, &quiet).await.expect("deploys cleanly");
    let version = |out: aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput| {
        out.db_clusters()[0].engine_version().unwrap().to_owned()
    };
    let cluster = rds.describe_db_clusters().db_cluster_identifier("promo-codes-aged").send().await.unwrap();
    assert_eq!(version(cluster), "16.6", "not moved back");

    // An upgrade the file asks for is made, and a major one says so in the plan.
    let mut newer = spec.clone();
    newer.database.engine_version = "16.8".to_owned().try_into().unwrap();
    let report = deploy(&clients, &env, &newer, &zips, &quiet).await.unwrap();
    assert_eq!(report.plan.changes.len(), 1, "{}", report.plan);
    assert!(report.plan.to_string().contains("minor version upgrade 16.6 -> 16.8"), "{}", report.plan);
    let cluster = rds.describe_db_clusters().db_cluster_identifier("promo-codes-aged").send().await.unwrap();
    assert_eq!(version(cluster), "16.8");
    let mut major = spec.clone();
    major.database.engine_version = "17.2".to_owned().try_into().unwrap();
    let (plan, _) = plan_deploy(&clients, &env, &major, &zips).await.unwrap();
    assert!(plan.to_string().contains("MAJOR version upgrade 16.8 -> 17.2"), "{plan}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_migrate_answer_without_versions_fails_the_deploy_before_any_alias_moves() {
    let emulator = emulator();
    let (env, spec) = spec_named("emulator");
    let dir = temp_dir("bad-migrate");
    let clients = clients(&emulator).await;
    let v1 = zips(&dir, "-v1");
    let report = deploy(&clients, &env, &spec, &v1, &quiet).await.unwrap();
    assert_eq!(report.migrations, migration_versions(), "the stand-in migrate reports the versions under migrations/");

    let mut v2 = zips(&dir, "-v2");
    v2.insert("migrate".into(), stand_in(&dir, "migrate-ok-only", &serde_json::json!({ "ok": true })));
    let failed = deploy(&clients, &env, &spec, &v2, &quiet).await.unwrap_err().to_string();
    assert!(failed.contains("answered without the migration versions"), "{failed}");
    assert!(failed.contains(r#"{"ok":true}"#), "the function's answer is in the message: {failed}");
    for function in promo_shared::routes::FUNCTION_CRATES {
        let live = live_config(&clients, &format!("promo-codes-emulator-{function}")).await;
        assert_eq!(live.code_sha256(), Some(v1[function].code_sha256.as_str()), "{function}'s alias moved");
    }
}

/// Someone deletes the application role's secret from the console, which schedules it for
/// deletion (a recovery window) and keeps its name: CreateSecret with that name fails. The next
/// deploy plans a restore and converges; the password the database has is kept.
#[tokio::test(flavor = "multi_thread")]
async fn a_secret_scheduled_for_deletion_is_restored_not_recreated() {
    let emulator = emulator();
    let (env, spec) = spec_named("restored");
    let dir = temp_dir("restore");
    let zips = zips(&dir, "");
    let clients = clients(&emulator).await;
    deploy(&clients, &env, &spec, &zips, &quiet).await.unwrap();
    let name = "promo-codes-restored-app-db";
    let value = |clients: &Clients| {
        let clients = clients.clone();
        async move {
            let out = clients.secretsmanager.get_secret_value().secret_id(name).send().await.unwrap();
            out.secret_string().unwrap().to_owned()
        }
    };
    let before = value(&clients).await;
    clients.secretsmanager.delete_secret().secret_id(name).recovery_window_in_days(7).send().await.unwrap();
    let again = clients.secretsmanager.create_secret().name(name).secret_string("{}").send().await;
    assert!(again.is_err(), "the name stays taken while the secret waits out its window");

    let (plan, _) = plan_deploy(&clients, &env, &spec, &zips).await.unwrap();
    assert_eq!(
        plan.to_string().lines().next(),
        Some("~ Update secret promo-codes-restored-app-db (restore): scheduled for deletion: restored"),
        "{plan}"
    );
    deploy(&clients, &env, &spec, &zips, &quiet).await.expect("the deploy restores it");
    let (plan, _) = plan_deploy(&clients, &env, &spec, &zips).await.unwrap();
    assert!(plan.is_empty(), "{plan}");
    assert_eq!(value(&clients).await, before, "the same credentials as the database's");
}
