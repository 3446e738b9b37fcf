//! The deployed API as API Gateway serves it when a function misbehaves or a caller goes too far:
//! a crash, a reported error, an answer that is not a proxy response, a timeout, an unknown route
//! and throttling are each answered by the gateway in the contract's error shape (the gateway
//! responses the deployer puts), and Invoke reports function failures as function errors.

use deployer::apply::deploy;
use deployer::outputs::outputs;

use crate::helpers::{
    call_api, clients, emulator, quiet, request_api, spec_named, stand_in, stand_in_script, temp_dir, zips,
};

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
async fn a_crash_an_error_a_malformed_answer_and_a_function_timeout_are_the_gateways_500_in_the_contracts_shape() {
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

    let answers = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let slow = request_api(&api_url, "POST", "/validations");
        let took = started.elapsed();
        let others = [("POST", "/promo-codes"), ("GET", "/promo-codes"), ("POST", "/redemptions")]
            .map(|(method, path)| (path, request_api(&api_url, method, path)));
        (slow, took, others, call_api(&api_url, "PATCH", "/promo-codes/X"))
    })
    .await
    .unwrap();
    let (slow, took, others, patch_route) = answers;
    // Past its own timeout (1 s, under the integration's 29 s) the function failed: a 502 on
    // API Gateway (DEFAULT_5XX), which the deployer's gateway response makes the contract's 500.
    assert_eq!((slow.status, slow.error().0.as_str()), (500, "internal"), "a function past its timeout");
    assert!(took >= std::time::Duration::from_secs(1) && took < std::time::Duration::from_secs(10), "{took:?}");
    for (path, answer) in others {
        let (code, request_id) = answer.error();
        assert_eq!((answer.status, code.as_str()), (500, "internal"), "{path}");
        assert_eq!(answer.header("x-amzn-requestid"), Some(request_id.as_str()), "{path}: the gateway's request id");
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

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_route_is_404_and_a_burst_past_the_stages_throttling_is_429_in_the_contracts_shape() {
    let emulator = emulator();
    let (env, mut spec) = spec_named("emulator");
    spec.api.throttling.rate_limit = 1.0;
    spec.api.throttling.burst_limit = 5;
    let dir = temp_dir("gateway-answers");
    let clients = clients(&emulator).await;
    deploy(&clients, &env, &spec, &zips(&dir, "-v1"), &quiet).await.unwrap();
    let api_url = outputs(&clients, &env, &spec).await.unwrap()["api_url"].as_str().unwrap().to_owned();

    let (unknown, wrong_method, burst) = tokio::task::spawn_blocking(move || {
        let unknown = request_api(&api_url, "GET", "/no-such-route");
        let wrong_method = request_api(&api_url, "DELETE", "/promo-codes");
        let burst: Vec<_> = (0..8).map(|_| request_api(&api_url, "POST", "/validations")).collect();
        (unknown, wrong_method, burst)
    })
    .await
    .unwrap();
    for answer in [&unknown, &wrong_method] {
        assert_eq!((answer.status, answer.error().0.as_str()), (404, "not_found"), "{}", answer.body);
    }
    // Two tokens went to the 404s, the bucket holds 5 and refills at 1 per second.
    let throttled: Vec<_> = burst.iter().filter(|a| a.status == 429).collect();
    assert!((2..=5).contains(&throttled.len()), "{:?}", burst.iter().map(|a| a.status).collect::<Vec<_>>());
    for answer in throttled {
        assert_eq!(answer.error().0, "rate_limited");
        assert_eq!(answer.header("retry-after"), Some("1"));
    }
}
