//! Redemptions under concurrency, guess protection, and the audit trail, through the real
//! handlers on a real PostgreSQL.

use std::time::Duration;

use promo_core::api::App;
use promo_core::routes::Function;
use promo_core::store::{GuessLimit, Store};
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;

use crate::events::{Answer, Event, app, call};
use crate::tokens::Issuer;

async fn create(app: &App, issuer: &Issuer, code: &str, extra: Value) -> Answer {
    let mut body =
        json!({"code": code, "owner": "alice", "discount_percentage": 10, "expires_at": "2031-01-01T00:00:00Z"});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let answer = call(app, Function::Create, &Event::fixture("create").bearer(&issuer.admin()).json_body(&body)).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer
}

async fn redeem(app: &App, token: &str, code: &str, order: &str) -> Answer {
    let event = Event::fixture("redeem").bearer(token).json_body(&json!({"code": code, "order_id": order}));
    call(app, Function::Redeem, &event).await
}

async fn times_redeemed(app: &App, code: &str) -> i64 {
    sqlx::query_scalar("SELECT times_redeemed::bigint FROM promo_codes WHERE code = $1")
        .bind(code)
        .fetch_one(app.store.pool())
        .await
        .unwrap()
}

/// The same app on a pool of `size` connections, so concurrent requests really run in parallel.
async fn with_pool_of(app: &App, size: u32) -> App {
    let options = app.store.pool().connect_options().as_ref().clone();
    let pool = PgPoolOptions::new().max_connections(size).connect_with(options).await.unwrap();
    App { store: Store::new(pool), ..app.clone() }
}

#[tokio::test]
async fn a_redemption_answers_201_and_counts_once() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    create(&app, &issuer, "SUMMER25", json!({"discount_percentage": 12.5})).await;
    let answer = redeem(&app, &issuer.user("alice"), "summer25", "order-42").await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.body["code"], "SUMMER25");
    assert_eq!(answer.body["order_id"], "order-42");
    assert_eq!(answer.body["discount_percentage"], json!(12.5));
    assert!(answer.body["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(answer.body["redeemed_at"].as_str().unwrap().ends_with('Z'));

    let again = redeem(&app, &issuer.user("alice"), "SUMMER25", "order-42").await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, answer.body);
    assert_eq!(times_redeemed(&app, "SUMMER25").await, 1);

    // A redemption does not change the version (the ETag of the admin fields).
    let get = call(&app, Function::List, &Event::fixture("get").bearer(&issuer.admin())).await;
    assert_eq!((get.body["version"].as_i64(), get.body["times_redeemed"].as_i64()), (Some(1), Some(1)));
}

#[tokio::test]
async fn of_200_concurrent_redemptions_of_a_code_limited_to_10_exactly_10_succeed() {
    let issuer = Issuer::start().await;
    let app = with_pool_of(&app(&issuer).await, 40).await;
    create(&app, &issuer, "LIMITED10", json!({"max_redemptions": 10})).await;
    let token = issuer.user("alice");
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (app, token) = (app.clone(), token.clone());
            tokio::spawn(async move { redeem(&app, &token, "LIMITED10", &format!("order-{i}")).await })
        })
        .collect();
    let mut created = 0;
    let mut exhausted = 0;
    for task in tasks {
        let answer = task.await.unwrap();
        match (answer.status, answer.body["error"]["code"].as_str()) {
            (201, _) => created += 1,
            (409, Some("exhausted")) => exhausted += 1,
            other => panic!("unexpected answer {other:?}: {}", answer.body),
        }
    }
    assert_eq!((created, exhausted), (10, 190));
    assert_eq!(times_redeemed(&app, "LIMITED10").await, 10);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM redemptions WHERE code = 'LIMITED10'")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(rows, 10);
}

#[tokio::test]
async fn the_same_order_sent_20_times_at_once_is_one_redemption_counted_once() {
    let issuer = Issuer::start().await;
    let app = with_pool_of(&app(&issuer).await, 20).await;
    create(&app, &issuer, "ONCE0001", json!({})).await;
    let token = issuer.user("alice");
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (app, token) = (app.clone(), token.clone());
            tokio::spawn(async move { redeem(&app, &token, "ONCE0001", "order-1").await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    let firsts = answers.iter().filter(|a| a.status == 201).count();
    let replays = answers.iter().filter(|a| a.status == 200).count();
    assert_eq!((firsts, replays), (1, 19), "{:?}", answers.iter().map(|a| a.status).collect::<Vec<_>>());
    assert!(answers.iter().all(|a| a.body["id"] == answers[0].body["id"]));
    assert_eq!(times_redeemed(&app, "ONCE0001").await, 1);
}

#[tokio::test]
async fn a_non_owner_gets_the_same_answer_as_for_an_unknown_code() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    create(&app, &issuer, "ALICEONLY", json!({})).await;
    let mallory = issuer.user("mallory");
    let foreign = redeem(&app, &mallory, "ALICEONLY", "order-1").await;
    let unknown = redeem(&app, &mallory, "NOSUCHCODE", "order-1").await;
    assert_eq!((foreign.status, foreign.error_code()), (404, "not_found"));
    assert_eq!((unknown.status, unknown.error_code()), (404, "not_found"));
    assert_eq!(foreign.body["error"]["message"], unknown.body["error"]["message"]);
    assert_eq!(times_redeemed(&app, "ALICEONLY").await, 0);
    // Alice's redemption of her code is hers alone: mallory cannot replay it either.
    assert_eq!(redeem(&app, &issuer.user("alice"), "ALICEONLY", "order-1").await.status, 201);
    assert_eq!(redeem(&app, &mallory, "ALICEONLY", "order-1").await.status, 404);
}

/// A replay answers the caller who redeemed the order, and no one else: when an admin hands a
/// code to another owner, the new owner's `order-1` is not the old owner's redemption.
#[tokio::test]
async fn a_replay_belongs_to_whoever_redeemed_the_order_even_after_the_code_changes_hands() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    create(&app, &issuer, "MOVING01", json!({})).await;
    let (alice, bob) = (issuer.user("alice"), issuer.user("bob"));
    let first = redeem(&app, &alice, "MOVING01", "order-1").await;
    assert_eq!(first.status, 201, "{}", first.body);
    let to_bob = Event::fixture("update").bearer(&issuer.admin()).code("MOVING01").json_body(&json!({"owner": "bob"}));
    assert_eq!(call(&app, Function::Update, &to_bob).await.status, 200);

    let taken = redeem(&app, &bob, "MOVING01", "order-1").await;
    assert_eq!((taken.status, taken.error_code()), (409, "already_exists"), "{}", taken.body);
    assert_eq!(taken.param(), Some("order_id"));
    assert!(!taken.body.to_string().contains(first.body["id"].as_str().unwrap()), "bob never sees alice's redemption");

    let replay = redeem(&app, &alice, "MOVING01", "order-1").await;
    assert_eq!((replay.status, &replay.body), (200, &first.body), "alice's retry still finds her redemption");
    assert_eq!(redeem(&app, &bob, "MOVING01", "order-2").await.status, 201);
    assert_eq!(times_redeemed(&app, "MOVING01").await, 2);
}

/// The functions and the database disagree about the time (a Lambda's clock is not Aurora's).
/// The database's clock decides, for the update and for the answer alike: a code it holds
/// expired is `expired`, also for validate, and never `exhausted` when it has no limit.
#[tokio::test]
async fn the_database_clock_decides_expiry_for_redeem_and_validate() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    create(&app, &issuer, "HALFHOUR", json!({"expires_at": chrono_in(30 * 60)})).await;
    let skewed = with_database_clock_ahead(&app, "1 hour").await;
    let alice = issuer.user("alice");
    let answer = redeem(&skewed, &alice, "HALFHOUR", "order-1").await;
    assert_eq!((answer.status, answer.error_code()), (422, "expired"), "{}", answer.body);
    let event = Event::fixture("validate").bearer(&alice).json_body(&json!({"code": "HALFHOUR"}));
    let validated = call(&skewed, Function::Validate, &event).await;
    assert_eq!((validated.status, &validated.body["reason"]), (200, &json!("expired")), "{}", validated.body);
    assert_eq!(times_redeemed(&app, "HALFHOUR").await, 0);
}

fn chrono_in(seconds: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(seconds)).to_rfc3339()
}

/// The same app on a pool whose `now()` runs `ahead` of this machine's clock: a `now()` in a
/// schema searched before pg_catalog.
async fn with_database_clock_ahead(app: &App, ahead: &str) -> App {
    let create = format!(
        "CREATE SCHEMA skewed; CREATE FUNCTION skewed.now() RETURNS timestamptz LANGUAGE sql STABLE \
         AS $$ SELECT pg_catalog.now() + interval '{ahead}' $$"
    );
    sqlx::raw_sql(&create).execute(app.store.pool()).await.unwrap();
    let options =
        app.store.pool().connect_options().as_ref().clone().options([("search_path", "skewed,public,pg_catalog")]);
    let pool = PgPoolOptions::new().max_connections(2).connect_with(options).await.unwrap();
    let now: (chrono::DateTime<chrono::Utc>,) = sqlx::query_as("SELECT now()").fetch_one(&pool).await.unwrap();
    assert!(now.0 > chrono::Utc::now() + chrono::Duration::minutes(59), "the skewed clock is in effect");
    App { store: Store::new(pool), ..app.clone() }
}

#[tokio::test]
async fn an_unusable_code_is_refused_with_its_reason() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    create(&app, &issuer, "SWITCHEDOFF", json!({"active": false})).await;
    create(&app, &issuer, "USEDUP", json!({"max_redemptions": 1})).await;
    create(&app, &issuer, "TOOLATE", json!({})).await;
    sqlx::query("UPDATE promo_codes SET created_at = now() - interval '2 days', expires_at = now() - interval '1 day' WHERE code = 'TOOLATE'")
        .execute(app.store.pool())
        .await
        .unwrap();
    let alice = issuer.user("alice");
    assert_eq!(redeem(&app, &alice, "USEDUP", "order-1").await.status, 201);
    for (code, status, error) in
        [("SWITCHEDOFF", 422, "inactive"), ("USEDUP", 409, "exhausted"), ("TOOLATE", 422, "expired")]
    {
        let answer = redeem(&app, &alice, code, "order-2").await;
        assert_eq!((answer.status, answer.error_code()), (status, error), "{code}");
    }
    // The first order of the used-up code is still answered, not refused.
    assert_eq!(redeem(&app, &alice, "USEDUP", "order-1").await.status, 200);
    for body in
        [json!({"code": "USEDUP"}), json!({"code": "USEDUP", "order_id": ""}), json!({"code": "USEDUP", "order_id": 7})]
    {
        let event = Event::fixture("redeem").bearer(&alice).json_body(&body);
        let answer = call(&app, Function::Redeem, &event).await;
        assert_eq!((answer.status, answer.param()), (422, Some("order_id")), "{body}");
    }
}

#[tokio::test]
async fn too_many_unknown_codes_get_429_until_the_window_has_passed() {
    let issuer = Issuer::start().await;
    let base = app(&issuer).await;
    let limit = GuessLimit { max: 3, window: Duration::from_secs(2) };
    // Two instances with pools of their own: the count lives in the database, not in memory.
    let one = App { guess_limit: limit, ..with_pool_of(&base, 2).await };
    let two = App { guess_limit: limit, ..with_pool_of(&base, 2).await };
    create(&one, &issuer, "REALCODE", json!({})).await;
    let guesser = issuer.user("guesser");
    let validate = |app: &App, code: &str| {
        let event = Event::fixture("validate").bearer(&guesser).json_body(&json!({ "code": code }));
        let app = app.clone();
        async move { call(&app, Function::Validate, &event).await }
    };
    assert_eq!(validate(&one, "GUESS001").await.body["reason"], "not_found");
    assert_eq!(redeem(&two, &guesser, "GUESS002", "o").await.status, 404);
    assert_eq!(validate(&two, "GUESS003").await.body["reason"], "not_found");

    let limited = validate(&one, "GUESS004").await;
    assert_eq!((limited.status, limited.error_code()), (429, "rate_limited"));
    let retry: u64 = limited.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    let limited = redeem(&two, &guesser, "REALCODE", "o").await;
    assert_eq!(limited.status, 429, "redeem is limited too");
    // Someone else is not affected.
    let alice_validates =
        Event::fixture("validate").bearer(&issuer.user("alice")).json_body(&json!({"code": "REALCODE"}));
    assert_eq!(call(&one, Function::Validate, &alice_validates).await.body["valid"], true);

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let cleared = validate(&two, "GUESS005").await;
    assert_eq!(cleared.status, 200, "{}", cleared.body);
}

#[tokio::test]
async fn a_burst_of_guesses_past_the_limit_is_refused_however_many_arrive_at_once() {
    let issuer = Issuer::start().await;
    let base = app(&issuer).await;
    let limit = GuessLimit { max: 3, window: Duration::from_secs(60) };
    // Four instances, each with connections of its own, all guessing at the same moment.
    let mut instances = Vec::new();
    for _ in 0..4 {
        instances.push(App { guess_limit: limit, ..with_pool_of(&base, 5).await });
    }
    let guesser = issuer.user("burst-guesser");
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..20 {
        let app = instances[i % instances.len()].clone();
        let event = Event::fixture("validate").bearer(&guesser).json_body(&json!({ "code": format!("BURST{i:03}") }));
        calls.spawn(async move { call(&app, Function::Validate, &event).await });
    }
    let mut not_found = 0;
    let mut limited = Vec::new();
    while let Some(answer) = calls.join_next().await {
        let answer = answer.unwrap();
        match answer.status {
            200 => {
                assert_eq!(answer.body["reason"], "not_found");
                not_found += 1;
            }
            429 => limited.push(answer.header("retry-after").unwrap_or_default().parse::<u64>().unwrap()),
            other => panic!("{other}: {}", answer.body),
        }
    }
    assert_eq!(not_found, 3, "exactly the limit of not_found answers, however the guesses interleave");
    assert_eq!(limited.len(), 17);
    // Retry-After is when the window that holds the counted guesses ends.
    assert!(limited.iter().all(|s| (58..=60).contains(s)), "{limited:?}");
}

#[tokio::test]
async fn the_audit_trail_records_who_changed_what_and_pages_like_the_list() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    create(&app, &issuer, "AUDITED1", json!({"description": "first"})).await;
    let patch = Event::fixture("update")
        .code("AUDITED1")
        .bearer(&issuer.token(&crate::tokens::claims("editor-7", true)))
        .json_body(&json!({"discount_percentage": 15, "description": null}));
    assert_eq!(call(&app, Function::Update, &patch).await.status, 200);
    assert_eq!(redeem(&app, &issuer.user("alice"), "AUDITED1", "order-9").await.status, 201);

    let events = |query: Vec<(&'static str, String)>| {
        let app = app.clone();
        let admin = issuer.admin();
        async move {
            let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let event = Event::fixture("events").code("AUDITED1").bearer(&admin).query(&pairs);
            call(&app, Function::List, &event).await
        }
    };
    let all = events(vec![]).await;
    assert_eq!(all.status, 200, "{}", all.body);
    let data = all.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(data[0]["action"], "created");
    assert_eq!(data[0]["sub"], "back-office");
    assert_eq!(data[0]["changes"]["description"], "first");
    assert_eq!(data[0]["changes"]["discount_percentage"], json!(10));
    assert_eq!(data[1]["action"], "updated");
    assert_eq!(data[1]["sub"], "editor-7");
    assert_eq!(
        data[1]["changes"],
        json!({"discount_percentage": {"from": 10, "to": 15}, "description": {"from": "first", "to": null}})
    );
    assert_eq!(data[2]["action"], "redeemed");
    assert_eq!(data[2]["sub"], "alice");
    assert_eq!(data[2]["changes"], json!({"order_id": "order-9", "times_redeemed": {"from": 0, "to": 1}}));
    assert_eq!(all.body["has_more"], false);

    // One event a page, following the cursors: each event exactly once, in order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", "1".to_owned())];
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let page = events(query).await;
        seen.push(page.body["data"][0]["action"].as_str().unwrap().to_owned());
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["created", "updated", "redeemed"]);

    let unknown = call(&app, Function::List, &Event::fixture("events").code("NOPE1234").bearer(&issuer.admin())).await;
    assert_eq!((unknown.status, unknown.error_code()), (404, "not_found"));
    let bad_cursor = events(vec![("cursor", "garbage".into())]).await;
    assert_eq!((bad_cursor.status, bad_cursor.error_code()), (400, "invalid_request"));
}

#[tokio::test]
async fn a_refused_write_leaves_no_event_behind() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    create(&app, &issuer, "NOGHOSTS", json!({})).await;
    let stale = Event::fixture("update").code("NOGHOSTS").bearer(&issuer.admin()).header("If-Match", "\"9\"");
    assert_eq!(call(&app, Function::Update, &stale).await.status, 412);
    let invalid = Event::fixture("update")
        .code("NOGHOSTS")
        .bearer(&issuer.admin())
        .json_body(&json!({"expires_at": "2000-01-01T00:00:00Z"}));
    assert_eq!(call(&app, Function::Update, &invalid).await.status, 422);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM promo_code_events WHERE code = 'NOGHOSTS'")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(count, 1, "only the creation");
}
