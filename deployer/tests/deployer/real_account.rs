//! The emulator with a real account's behaviour (tools/real_account.py): API Gateway's quotas,
//! Lambda's states, IAM's propagation delay, Aurora's creation. The deployer must converge on it.

use std::time::{Duration, Instant};

use deployer::apply::{deploy, destroy, plan_deploy};
use deployer::progress::Event;

use crate::helpers::{clients, emulator, quiet, spec_named, temp_dir, zips};

#[tokio::test(flavor = "multi_thread")]
async fn two_destroys_in_a_row_both_succeed_the_second_waiting_out_the_delete_rest_api_quota() {
    // DeleteRestApi: one per 9 s here (a real account: one per 30 s), so the second destroy
    // meets the quota the first one used.
    let python = aws_emulator::venv_python();
    let emulator = aws_emulator::Emulator::start_with(&python, &["--quota-scale", "0.3", "--role-propagation", "0"])
        .unwrap_or_else(|e| panic!("{e}"));
    let (one, spec) = spec_named("first");
    let (two, _) = spec_named("second");
    let dir = temp_dir("two-destroys");
    let zips = zips(&dir, "");
    let clients = clients(&emulator).await;
    deploy(&clients, &one, &spec, &zips, &quiet).await.unwrap();
    deploy(&clients, &two, &spec, &zips, &quiet).await.unwrap();

    destroy(&clients, &one, &spec, &quiet).await.expect("the first destroy");
    let second = crate::helpers::clients(&emulator).await;
    let started = Instant::now();
    destroy(&second, &two, &spec, &quiet).await.expect("the second destroy outlasts the quota");
    let deletes = second.log.calls().iter().filter(|c| c.ends_with(":DeleteRestApi")).count();
    println!("second destroy: {:?}, DeleteRestApi sent {deletes} times", started.elapsed());
    assert!(deletes >= 2, "the second destroy met the quota and retried ({deletes} DeleteRestApi)");
    for env in [&one, &two] {
        let (_, observed) = plan_deploy(&clients, env, &spec, &zips).await.unwrap();
        assert!(observed.state.is_empty(), "{env} left: {:?}", observed.state);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_deploy_killed_while_the_cluster_is_creating_converges_on_the_next_run() {
    let emulator = emulator();
    let (env, spec) = spec_named("killed");
    let dir = temp_dir("killed");
    let zips = zips(&dir, "");
    let clients = clients(&emulator).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let progress = |event: Event, _: Duration| {
        if let Event::Waiting(what) = event
            && what.starts_with("aurora cluster promo-codes-killed: creating")
        {
            let _ = tx.send(());
        }
    };
    tokio::select! {
        result = deploy(&clients, &env, &spec, &zips, &progress) => panic!("the deploy was meant to be cut short: {result:?}"),
        _ = rx.recv() => {}
    }
    let cluster = clients.rds.describe_db_clusters().db_cluster_identifier("promo-codes-killed").send().await.unwrap();
    assert_eq!(cluster.db_clusters()[0].status(), Some("creating"), "cut short while Aurora was creating");

    let waits = std::sync::Mutex::new(Vec::<String>::new());
    let progress = |event: Event, _: Duration| {
        if let Event::Waiting(what) = event {
            waits.lock().unwrap().push(what.to_owned());
        }
    };
    let report = deploy(&clients, &env, &spec, &zips, &progress).await.expect("the next run converges");
    assert!(report.migrated, "the migrations ran once the database was there");
    assert!(
        waits.lock().unwrap().iter().any(|w| w.starts_with("aurora")),
        "the next run waited for the database before using it: {:?}",
        waits.lock().unwrap()
    );
    let (plan, _) = plan_deploy(&clients, &env, &spec, &zips).await.unwrap();
    assert!(plan.is_empty(), "{plan}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_deploy_meets_iam_s_delay_and_lambda_s_states_and_converges() {
    let emulator = emulator();
    let (env, spec) = spec_named("fresh");
    let dir = temp_dir("fresh");
    let zips = zips(&dir, "");
    let clients = clients(&emulator).await;
    let started = Instant::now();
    deploy(&clients, &env, &spec, &zips, &quiet).await.expect("a deploy from nothing converges");
    let calls = clients.log.calls();
    let creates = calls.iter().filter(|c| c.ends_with(":CreateFunction")).count();
    println!(
        "first deploy with a real account's behaviour: {:?}, {} calls, {creates} CreateFunction",
        started.elapsed(),
        calls.len()
    );
    assert!(creates > 6, "CreateFunction was refused while the new roles could not be assumed, and retried");
    let (plan, _) = plan_deploy(&clients, &env, &spec, &zips).await.unwrap();
    assert!(plan.is_empty(), "{plan}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_lambda_list_tags_the_deployer_fails_naming_the_permission_instead_of_untagging() {
    let emulator = emulator();
    let (env, spec) = spec_named("denied");
    let dir = temp_dir("denied");
    let zips = zips(&dir, "");
    let clients = clients(&emulator).await;
    deploy(&clients, &env, &spec, &zips, &quiet).await.unwrap();

    emulator.deny("lambda:ListTags").unwrap();
    let writes = clients.log.writes().len();
    let refused = deploy(&clients, &env, &spec, &zips, &quiet).await.unwrap_err().to_string();
    assert!(refused.contains("allow lambda:ListTags"), "{refused}");
    assert_eq!(clients.log.writes().len(), writes, "nothing was written on tags it could not read");
}
