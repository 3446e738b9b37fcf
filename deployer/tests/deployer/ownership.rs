//! An environment touches only what is its own, and a refusal comes before the first change.

use deployer::apply::{deploy, destroy, plan_deploy};
use deployer::plan::Action;

use crate::helpers::{clients, emulator, quiet, spec_named, temp_dir, zips};

#[tokio::test(flavor = "multi_thread")]
async fn dev_and_dev_eu_side_by_side_never_touch_each_other() {
    let emulator = emulator();
    let (dev, dev_spec) = spec_named("dev");
    let (dev_eu, dev_eu_spec) = spec_named("dev-eu");
    let dir = temp_dir("neighbours");
    let zips = zips(&dir, "");
    let clients = clients(&emulator).await;
    deploy(&clients, &dev, &dev_spec, &zips, &quiet).await.unwrap();
    deploy(&clients, &dev_eu, &dev_eu_spec, &zips, &quiet).await.unwrap();

    // dev's names are a prefix of dev-eu's: dev must not take them for its own.
    let (plan, observed) = plan_deploy(&clients, &dev, &dev_spec, &zips).await.unwrap();
    assert!(plan.is_empty(), "dev plans changes to what is not its own: {plan}");
    assert!(observed.state.functions.iter().all(|f| !f.name.contains("dev-eu")));

    let before = clients.log.writes().len();
    deploy(&clients, &dev, &dev_spec, &zips, &quiet).await.unwrap();
    assert_eq!(clients.log.writes().len(), before, "a deploy of an unchanged dev writes nothing");

    let report = destroy(&clients, &dev, &dev_spec, &quiet).await.unwrap();
    assert!(
        report.plan.changes.iter().all(|c| c.action == Action::Delete && !c.name.contains("dev-eu")),
        "{}",
        report.plan
    );
    let (plan, observed) = plan_deploy(&clients, &dev_eu, &dev_eu_spec, &zips).await.unwrap();
    assert!(plan.is_empty(), "destroying dev touched dev-eu: {plan}");
    assert_eq!(observed.state.functions.len(), 6, "dev-eu keeps its six functions");
    let (_, observed) = plan_deploy(&clients, &dev, &dev_spec, &zips).await.unwrap();
    assert!(observed.state.is_empty(), "dev is gone: {:?}", observed.state);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resource_with_the_environment_s_name_but_not_its_tags_is_refused_before_any_write() {
    let emulator = emulator();
    let (env, spec) = spec_named("team");
    let dir = temp_dir("foreign");
    let zips = zips(&dir, "");
    let clients = clients(&emulator).await;
    // Someone else's role happens to have one of the names environment `team` derives.
    clients
        .iam
        .create_role()
        .role_name("promo-codes-team-list")
        .assume_role_policy_document("{}")
        .tags(aws_sdk_iam::types::Tag::builder().key("env").value("other").build().unwrap())
        .send()
        .await
        .unwrap();
    // And a secret with the name of its application role's secret, holding someone's password.
    clients
        .secretsmanager
        .create_secret()
        .name("promo-codes-team-app-db")
        .secret_string(r#"{"username":"theirs","password":"not-ours-to-touch"}"#)
        .send()
        .await
        .unwrap();
    let writes_before = clients.log.writes();

    let refused = deploy(&clients, &env, &spec, &zips, &quiet).await.unwrap_err();
    let message = refused.report();
    assert!(message.contains("iam role promo-codes-team-list (app: none, env: other)"), "{message}");
    assert!(message.contains("secret promo-codes-team-app-db (app: none, env: none)"), "{message}");
    assert!(message.contains("nothing was changed"), "{message}");
    assert_eq!(clients.log.writes(), writes_before, "refused before its first write");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_destroy_of_a_protected_environment_leaves_every_resource_in_place() {
    let emulator = emulator();
    let (env, mut spec) = spec_named("guarded");
    spec.database.deletion_protection = true;
    let dir = temp_dir("protected");
    let zips = zips(&dir, "");
    let clients = clients(&emulator).await;
    deploy(&clients, &env, &spec, &zips, &quiet).await.unwrap();
    let (_, before) = plan_deploy(&clients, &env, &spec, &zips).await.unwrap();
    let writes = clients.log.writes().len();

    let refused = destroy(&clients, &env, &spec, &quiet).await.unwrap_err().to_string();
    assert!(
        refused.contains("database.deletion_protection: true") && refused.contains("nothing was deleted"),
        "{refused}"
    );
    assert_eq!(clients.log.writes().len(), writes, "not one delete was sent");
    let (_, after) = plan_deploy(&clients, &env, &spec, &zips).await.unwrap();
    assert_eq!(after.state.len(), before.state.len());
    assert_eq!(after.state, before.state, "every resource is still there");

    // The file says the protection is off, but it was never deployed: AWS still protects it.
    spec.database.deletion_protection = false;
    let refused = destroy(&clients, &env, &spec, &quiet).await.unwrap_err().to_string();
    assert!(refused.contains("deletion protection on in AWS") && refused.contains("deploy"), "{refused}");
    assert_eq!(clients.log.writes().len(), writes);

    // Deployed, the protection comes off, and destroy goes through.
    deploy(&clients, &env, &spec, &zips, &quiet).await.unwrap();
    destroy(&clients, &env, &spec, &quiet).await.unwrap();
    let (_, gone) = plan_deploy(&clients, &env, &spec, &zips).await.unwrap();
    assert!(gone.state.is_empty(), "{:?}", gone.state);
}
