//! The deployed API as API Gateway serves it when a function misbehaves: a crash, a reported
//! error, an answer that is not a proxy response and a timeout are each 502 with API Gateway's
//! own body, and Invoke reports them as function errors.

use deployer::apply::deploy;
use deployer::outputs::outputs;

use crate::helpers::{call_api, clients, emulator, quiet, spec_named, stand_in, stand_in_script, temp_dir, zips};

/// A bootstrap that answers each event by calling `what` on the Runtime API with `body`.
fn runtime_calling(what: &str, body: &str) -> String {
    format!(
        r#"#!/usr/bin/env python3
import os, time, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    with urllib.request.urlopen(api + "next") as event:
        request_id = event.headers["Lambda-Runtime-Aws-Request-Id"]
    if "{what}" == "sleep":
        time.sleep(60)
    urllib.request.urlopen(urllib.request.Request(api + request_id + "/{what}", data=b'{body}', method="POST")).read()
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_an_error_a_malformed_answer_and_a_timeout_are_each_a_502_from_the_gateway() {
    let emulator = emulator();
    let (env, mut spec) = spec_named("emulator");
    spec.functions.overrides.insert("validate".into(), serde_yaml::from_str("{timeout_seconds: 1}").unwrap());
    let dir = temp_dir("misbehaving");
    let clients = clients(&emulator).await;
    let mut functions = zips(&dir, "-v1");
    functions
        .insert("create".into(), stand_in_script(&dir, "create-crash", "#!/bin/sh\necho 'out of luck' >&2\nexit 3\n"));
    let error = r#"{"errorType":"Boom","errorMessage":"it went wrong"}"#;
    functions.insert("list".into(), stand_in_script(&dir, "list-error", &runtime_calling("error", error)));
    functions.insert("validate".into(), stand_in_script(&dir, "validate-slow", &runtime_calling("sleep", "")));
    functions.insert("redeem".into(), stand_in(&dir, "redeem-malformed", &serde_json::json!({"hello": "world"})));
    deploy(&clients, &env, &spec, &functions, &quiet).await.unwrap();
    let api_url = outputs(&clients, &env, &spec).await.unwrap()["api_url"].as_str().unwrap().to_owned();

    let gateway_error = r#"{"message": "Internal server error"}"#;
    let answers = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let slow = call_api(&api_url, "POST", "/validations");
        let took = started.elapsed();
        let others = [("POST", "/promo-codes"), ("GET", "/promo-codes"), ("POST", "/redemptions")]
            .map(|(method, path)| (path, call_api(&api_url, method, path)));
        (slow, took, others, call_api(&api_url, "PATCH", "/promo-codes/X"))
    })
    .await
    .unwrap();
    let (slow, took, others, patch_route) = answers;
    assert_eq!(slow, (502, gateway_error.to_owned()), "a function past its timeout");
    assert!(took >= std::time::Duration::from_secs(1) && took < std::time::Duration::from_secs(10), "{took:?}");
    for (path, answer) in others {
        assert_eq!(answer, (502, gateway_error.to_owned()), "{path}");
    }
    // The stand-in for update answers a well-formed proxy response: the gateway passes it on.
    assert_eq!(patch_route.0, 200, "{patch_route:?}");

    // Invoke says the same as a function error, with the runtime's last words in the log tail.
    let invoked = clients
        .lambda
        .invoke()
        .function_name("promo-codes-emulator-create")
        .qualifier("live")
        .log_type(aws_sdk_lambda::types::LogType::Tail)
        .send()
        .await
        .unwrap();
    assert_eq!(invoked.function_error(), Some("Unhandled"));
    let payload = String::from_utf8_lossy(invoked.payload().unwrap().as_ref()).into_owned();
    assert!(payload.contains("Runtime.ExitError"), "{payload}");
    let log =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, invoked.log_result().unwrap()).unwrap();
    assert!(String::from_utf8_lossy(&log).contains("out of luck"), "{}", String::from_utf8_lossy(&log));
    let invoked = clients.lambda.invoke().function_name("promo-codes-emulator-list").qualifier("live").send().await;
    let invoked = invoked.unwrap();
    assert_eq!(invoked.function_error(), Some("Unhandled"));
    assert_eq!(invoked.payload().unwrap().as_ref(), error.as_bytes(), "the function's own error");
}

#[tokio::test(flavor = "multi_thread")]
async fn invoke_runs_the_version_or_alias_it_names_and_latest_without_a_qualifier() {
    let emulator = emulator();
    let (env, spec) = spec_named("emulator");
    let dir = temp_dir("qualifiers");
    let clients = clients(&emulator).await;
    deploy(&clients, &env, &spec, &zips(&dir, "-v1"), &quiet).await.unwrap();
    // New code on $LATEST only: no version published, the alias unmoved.
    let v2 = std::fs::read(&zips(&dir, "-v2")["list"].path).unwrap();
    let function = "promo-codes-emulator-list";
    let update = clients.lambda.update_function_code().function_name(function).zip_file(v2.into());
    update.send().await.unwrap();
    let answer = |qualifier: Option<&'static str>| {
        let invoke = clients.lambda.invoke().function_name(function).set_qualifier(qualifier.map(str::to_owned));
        async move {
            let out =
                deployer::aws::retry::unless_busy(std::time::Duration::from_millis(100), || invoke.clone().send())
                    .await
                    .unwrap();
            let payload: serde_json::Value = serde_json::from_slice(out.payload().unwrap().as_ref()).unwrap();
            let body: serde_json::Value = serde_json::from_str(payload["body"].as_str().unwrap()).unwrap();
            (
                out.executed_version().unwrap_or_default().to_owned(),
                body["build"].as_str().unwrap_or_default().to_owned(),
            )
        }
    };
    let live = answer(Some("live")).await;
    assert_eq!(live.1, "list-v1", "the alias runs its version's code: {live:?}");
    assert_eq!(answer(Some("1")).await, (String::from("1"), String::from("list-v1")));
    assert_eq!(answer(None).await, (String::from("$LATEST"), String::from("list-v2")));
}
