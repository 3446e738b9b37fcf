//! Every route through its function's handler: real REST proxy events, real tokens, a real
//! PostgreSQL. Status, headers and body as CONTRACT.md section 2 says.

use promo_core::api::App;
use promo_core::routes::{Access, Function, ROUTES};
use serde_json::{Value, json};

use crate::events::{Answer, Event, app, call};
use crate::tokens::Issuer;

fn summer(code: &str) -> Value {
    json!({"code": code, "owner": "user-123", "discount_percentage": 12.5,
           "expires_at": "2030-12-31T23:59:59+01:00", "description": "Summer campaign"})
}

async fn create(app: &App, issuer: &Issuer, body: &Value) -> Answer {
    call(app, Function::Create, &Event::fixture("create").bearer(&issuer.admin()).json_body(body)).await
}

#[tokio::test]
async fn create_answers_201_with_location_etag_and_the_promo_code() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    let answer = create(&app, &issuer, &summer("summer25")).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.header("location"), Some("/promo-codes/SUMMER25"));
    assert_eq!(answer.header("etag"), Some("\"1\""));
    let body = &answer.body;
    assert_eq!(body["code"], "SUMMER25");
    assert_eq!(body["owner"], "user-123");
    assert_eq!(body["discount_percentage"], json!(12.5));
    assert_eq!(body["expires_at"], "2030-12-31T22:59:59Z");
    assert_eq!(body["description"], "Summer campaign");
    assert_eq!(body["active"], true);
    assert_eq!(body["max_redemptions"], Value::Null);
    assert_eq!(body["times_redeemed"], 0);
    assert_eq!(body["version"], 1);
    assert_eq!(body["created_at"], body["updated_at"]);
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 11, "exactly the contract's fields: {keys:?}");
}

#[tokio::test]
async fn create_without_a_code_generates_one() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    let mut body = summer("x");
    body.as_object_mut().unwrap().remove("code");
    let answer = create(&app, &issuer, &body).await;
    assert_eq!(answer.status, 201);
    let code = answer.body["code"].as_str().unwrap();
    assert_eq!(code.len(), 12);
    assert!(code.chars().all(|c| "23456789ABCDEFGHJKLMNPQRSTUVWXYZ".contains(c)));
    assert_eq!(answer.header("location"), Some(format!("/promo-codes/{code}").as_str()));
}

#[tokio::test]
async fn create_refuses_a_code_that_exists_in_another_case_with_409() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    assert_eq!(create(&app, &issuer, &summer("SUMMER25")).await.status, 201);
    let answer = create(&app, &issuer, &summer("Summer25")).await;
    assert_eq!(answer.status, 409);
    assert_eq!(answer.error_code(), "already_exists");
    assert_eq!(answer.param(), Some("code"));
}

#[tokio::test]
async fn create_names_the_field_that_breaks_a_rule_with_422() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    let cases = [
        (json!({"discount_percentage": 12.345}), "discount_percentage"),
        (json!({"discount_percentage": 0}), "discount_percentage"),
        (json!({"expires_at": "2020-01-01T00:00:00Z"}), "expires_at"),
        (json!({"expires_at": "2030-01-01T00:00:00"}), "expires_at"),
        (json!({"owner": ""}), "owner"),
        (json!({"code": "no spaces"}), "code"),
        (json!({"description": "x".repeat(501)}), "description"),
        (json!({"max_redemptions": 0}), "max_redemptions"),
        (json!({"times_redeemed": 3}), "times_redeemed"),
        (json!({"surprise": true}), "surprise"),
    ];
    for (change, param) in cases {
        let mut body = summer("RULES1");
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let answer = create(&app, &issuer, &body).await;
        assert_eq!(answer.status, 422, "{change}: {}", answer.body);
        assert_eq!(answer.error_code(), "validation_failed");
        assert_eq!(answer.param(), Some(param), "{change}");
    }
}

#[tokio::test]
async fn a_malformed_body_is_400_too_large_is_413_and_not_json_is_415() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    let base = Event::fixture("create").bearer(&issuer.admin());

    let answer = call(&app, Function::Create, &base.clone().body("{\"owner\": ")).await;
    assert_eq!((answer.status, answer.error_code()), (400, "invalid_request"));

    let huge = json!({"owner": "u", "description": "x".repeat(17 * 1024)});
    let answer = call(&app, Function::Create, &base.clone().json_body(&huge)).await;
    assert_eq!((answer.status, answer.error_code()), (413, "payload_too_large"));

    let answer = call(&app, Function::Create, &base.clone().header("Content-Type", "text/plain")).await;
    assert_eq!((answer.status, answer.error_code()), (415, "unsupported_media_type"));
    let answer = call(&app, Function::Create, &base.clone().without_header("Content-Type")).await;
    assert_eq!((answer.status, answer.error_code()), (415, "unsupported_media_type"));

    let answer = call(&app, Function::Create, &base.header("Content-Type", "application/json; charset=utf-8")).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
}

#[tokio::test]
async fn get_answers_the_code_with_its_etag_and_404_for_an_unknown_one() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    let created = create(&app, &issuer, &summer("SUMMER25")).await;

    let answer = call(&app, Function::List, &Event::fixture("get").bearer(&issuer.admin()).code("summer25")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("etag"), Some("\"1\""));
    assert_eq!(answer.body, created.body);

    for unknown in ["NOPE1234", "x", "not a code"] {
        let answer = call(&app, Function::List, &Event::fixture("get").bearer(&issuer.admin()).code(unknown)).await;
        assert_eq!((answer.status, answer.error_code()), (404, "not_found"), "{unknown}");
    }
}

#[tokio::test]
async fn patch_changes_fields_and_answers_the_new_etag() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    create(&app, &issuer, &summer("SUMMER25")).await;
    let event = Event::fixture("update")
        .bearer(&issuer.admin())
        .header("If-Match", "\"1\"")
        .json_body(&json!({"discount_percentage": 15, "description": null, "max_redemptions": 100}));
    let answer = call(&app, Function::Update, &event).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("etag"), Some("\"2\""));
    assert_eq!(answer.body["discount_percentage"], json!(15));
    assert_eq!(answer.body["description"], Value::Null);
    assert_eq!(answer.body["max_redemptions"], 100);
    assert_eq!(answer.body["version"], 2);
    assert_eq!(answer.body["owner"], "user-123");
}

#[tokio::test]
async fn patch_with_a_stale_if_match_is_412_and_changes_nothing() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    create(&app, &issuer, &summer("SUMMER25")).await;
    let first = Event::fixture("update").bearer(&issuer.admin()).header("If-Match", "\"1\"");
    assert_eq!(call(&app, Function::Update, &first).await.status, 200);

    let stale = first.clone().json_body(&json!({"owner": "someone-else"}));
    let answer = call(&app, Function::Update, &stale).await;
    assert_eq!((answer.status, answer.error_code()), (412, "precondition_failed"));
    let garbage = first.header("If-Match", "W/\"2\"");
    assert_eq!(call(&app, Function::Update, &garbage).await.status, 412);

    let get = call(&app, Function::List, &Event::fixture("get").bearer(&issuer.admin())).await;
    assert_eq!(get.body["owner"], "user-123");
    assert_eq!(get.body["version"], 2);
}

#[tokio::test]
async fn if_match_takes_a_list_and_a_star_and_compares_etags_exactly() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    create(&app, &issuer, &summer("SUMMER25")).await;
    let patch = |if_match: &str, owner: &str| {
        Event::fixture("update")
            .bearer(&issuer.admin())
            .header("If-Match", if_match)
            .json_body(&json!({"owner": owner}))
    };
    // "001" is not the ETag "1", though it names the same number.
    for not_the_etag in ["\"001\"", "\"+1\"", "\" 1\"", "W/\"1\"", "1", "\"1\"x"] {
        let answer = call(&app, Function::Update, &patch(not_the_etag, "x")).await;
        assert_eq!(answer.status, 412, "If-Match: {not_the_etag}");
    }
    let listed = call(&app, Function::Update, &patch("\"7\", \"1\"", "listed")).await;
    assert_eq!((listed.status, listed.header("etag")), (200, Some("\"2\"")), "one tag of the list matches");
    let star = call(&app, Function::Update, &patch("*", "starred")).await;
    assert_eq!((star.status, star.header("etag")), (200, Some("\"3\"")), "* matches any version");
    let stale_list = call(&app, Function::Update, &patch("\"1\", \"2\"", "late")).await;
    assert_eq!(stale_list.status, 412);
}

#[tokio::test]
async fn a_description_with_nul_or_another_control_character_is_422_not_500() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    for (i, bad) in ["nul\u{0}inside", "bell\u{7}", "c1\u{85}"].into_iter().enumerate() {
        let mut body = summer(&format!("CTRL{i}"));
        body["description"] = json!(bad);
        let answer = create(&app, &issuer, &body).await;
        assert_eq!(
            (answer.status, answer.error_code(), answer.param()),
            (422, "validation_failed", Some("description"))
        );
    }
}

#[tokio::test]
async fn patch_refuses_empty_immutable_and_read_only_changes_with_422() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    create(&app, &issuer, &summer("SUMMER25")).await;
    for (body, param) in [
        (json!({}), "body"),
        (json!({"code": "OTHER1"}), "code"),
        (json!({"version": 9}), "version"),
        (json!({"times_redeemed": 0}), "times_redeemed"),
        (json!({"expires_at": "2000-01-01T00:00:00Z"}), "expires_at"),
    ] {
        let event = Event::fixture("update").bearer(&issuer.admin()).json_body(&body);
        let answer = call(&app, Function::Update, &event).await;
        assert_eq!((answer.status, answer.error_code()), (422, "validation_failed"), "{body}");
        assert_eq!(answer.param(), Some(param), "{body}");
    }
    let unknown = Event::fixture("update").bearer(&issuer.admin()).code("GHOST99");
    let answer = call(&app, Function::Update, &unknown).await;
    assert_eq!((answer.status, answer.error_code()), (404, "not_found"));
}

#[tokio::test]
async fn list_pages_through_every_code_with_cursors() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    for i in 0..5 {
        create(&app, &issuer, &summer(&format!("CODE{i}"))).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("sort", "code"), ("limit", "2")];
        if let Some(c) = &cursor {
            query.push(("cursor", c));
        }
        let answer = call(&app, Function::List, &Event::fixture("list").bearer(&issuer.admin()).query(&query)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        for code in answer.body["data"].as_array().unwrap() {
            seen.push(code["code"].as_str().unwrap().to_owned());
        }
        assert_eq!(answer.body["has_more"], json!(answer.body["next_cursor"].is_string()));
        match answer.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["CODE0", "CODE1", "CODE2", "CODE3", "CODE4"]);
}

#[tokio::test]
async fn list_answers_400_for_what_does_not_parse_and_422_for_what_is_out_of_range() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    type Case<'a> = (&'a [(&'a str, &'a str)], u16, &'a str);
    let cases: [Case; 6] = [
        (&[("sort", "owner")], 400, "sort"),
        (&[("status", "gone")], 400, "status"),
        (&[("limit", "ten")], 400, "limit"),
        (&[("cursor", "bm90LWEtY3Vyc29y")], 400, "cursor"),
        (&[("limit", "0")], 422, "limit"),
        (&[("limit", "101")], 422, "limit"),
    ];
    for (query, status, param) in cases {
        let answer = call(&app, Function::List, &Event::fixture("list").bearer(&issuer.admin()).query(query)).await;
        assert_eq!(answer.status, status, "{query:?}");
        assert_eq!(answer.error_code(), if status == 400 { "invalid_request" } else { "validation_failed" });
        assert_eq!(answer.param(), Some(param));
    }
}

#[tokio::test]
async fn list_filters_by_status() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    create(&app, &issuer, &summer("ON0001")).await;
    let mut off = summer("OFF001");
    off["active"] = json!(false);
    create(&app, &issuer, &off).await;
    for (status, expected) in [("active", vec!["ON0001"]), ("inactive", vec!["OFF001"]), ("expired", vec![])] {
        let event = Event::fixture("list").bearer(&issuer.admin()).query(&[("status", status)]);
        let answer = call(&app, Function::List, &event).await;
        let codes: Vec<&str> =
            answer.body["data"].as_array().unwrap().iter().map(|c| c["code"].as_str().unwrap()).collect();
        assert_eq!(codes, expected, "{status}");
        assert_eq!(answer.body["has_more"], false);
        assert_eq!(answer.body["next_cursor"], Value::Null);
    }
}

async fn validate(app: &App, issuer: &Issuer, sub: &str, code: &str) -> Answer {
    let event = Event::fixture("validate").bearer(&issuer.user(sub)).json_body(&json!({ "code": code }));
    call(app, Function::Validate, &event).await
}

#[tokio::test]
async fn validate_tells_the_owner_the_discount_of_a_usable_code() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    create(&app, &issuer, &summer("SUMMER25")).await;
    let answer = validate(&app, &issuer, "user-123", "summer25").await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.body,
        json!({"valid": true, "code": "SUMMER25", "discount_percentage": 12.5, "expires_at": "2030-12-31T22:59:59Z"})
    );
}

#[tokio::test]
async fn validate_hides_a_code_owned_by_someone_else() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    create(&app, &issuer, &summer("SUMMER25")).await;
    let foreign = validate(&app, &issuer, "mallory", "SUMMER25").await;
    let unknown = validate(&app, &issuer, "mallory", "WINTER25").await;
    assert_eq!(foreign.status, 200);
    assert_eq!(foreign.body, json!({"valid": false, "code": "SUMMER25", "reason": "not_found"}));
    assert_eq!(unknown.body, json!({"valid": false, "code": "WINTER25", "reason": "not_found"}));
    // Apart from the echoed code and the request id, the two answers are identical.
    let strip = |a: &Answer| {
        let mut headers: Vec<(String, String)> = a
            .headers
            .iter()
            .filter(|(k, _)| k.as_str() != "x-request-id")
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        headers.sort();
        (a.status, headers, a.body["valid"].clone(), a.body["reason"].clone(), a.body.as_object().unwrap().len())
    };
    assert_eq!(strip(&foreign), strip(&unknown));
}

#[tokio::test]
async fn validate_gives_the_owner_the_reason_a_code_is_unusable() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    let mut off = summer("OFF001");
    off["active"] = json!(false);
    create(&app, &issuer, &off).await;
    let mut capped = summer("CAPPED1");
    capped["max_redemptions"] = json!(1);
    create(&app, &issuer, &capped).await;
    create(&app, &issuer, &summer("OLD001")).await;
    sqlx::query("UPDATE promo_codes SET times_redeemed = 1 WHERE code = 'CAPPED1'")
        .execute(app.store.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE promo_codes SET created_at = now() - interval '2 days', expires_at = now() - interval '1 day' WHERE code = 'OLD001'")
        .execute(app.store.pool())
        .await
        .unwrap();
    for (code, reason) in [("OFF001", "inactive"), ("CAPPED1", "exhausted"), ("OLD001", "expired")] {
        let answer = validate(&app, &issuer, "user-123", code).await;
        assert_eq!(answer.body, json!({"valid": false, "code": code, "reason": reason}));
        let stranger = validate(&app, &issuer, "someone", code).await;
        assert_eq!(stranger.body["reason"], "not_found", "{code}");
    }
}

#[tokio::test]
async fn validate_refuses_a_body_without_a_usable_code_with_422() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    for body in [json!({}), json!({"code": 5}), json!({"code": "a"}), json!({"code": "SUMMER25", "extra": 1})] {
        let event = Event::fixture("validate").bearer(&issuer.user("u")).json_body(&body);
        let answer = call(&app, Function::Validate, &event).await;
        assert_eq!((answer.status, answer.error_code()), (422, "validation_failed"), "{body}");
    }
}

#[tokio::test]
async fn a_user_without_the_admin_scope_gets_403_on_every_admin_route() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    create(&app, &issuer, &summer("SUMMER25")).await;
    let fixtures = [
        ("POST", "/promo-codes", "create"),
        ("GET", "/promo-codes", "list"),
        ("GET", "/promo-codes/{code}", "get"),
        ("PATCH", "/promo-codes/{code}", "update"),
        ("GET", "/promo-codes/{code}/events", "events"),
    ];
    let mut checked = 0;
    for route in ROUTES.iter().filter(|r| r.access == Access::Admin) {
        let (_, _, fixture) = fixtures
            .iter()
            .find(|(m, p, _)| *m == route.method && *p == route.path)
            .expect("a fixture per admin route");
        let answer = call(&app, route.function, &Event::fixture(fixture).bearer(&issuer.user("user-123"))).await;
        assert_eq!((answer.status, answer.error_code()), (403, "forbidden"), "{route:?}");
        checked += 1;
    }
    assert_eq!(checked, 5);
}

#[tokio::test]
async fn a_function_answers_404_for_a_route_it_does_not_serve() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    let answer = call(&app, Function::Validate, &Event::fixture("create").bearer(&issuer.admin())).await;
    assert_eq!((answer.status, answer.error_code()), (404, "not_found"));
}

#[tokio::test]
async fn the_request_id_of_api_gateway_is_in_every_error() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    let event = Event::fixture("get").request_id("req-1234").bearer(&issuer.admin()).code("NOPE1234");
    let answer = call(&app, Function::List, &event).await;
    assert_eq!(answer.body["error"]["request_id"], "req-1234");
    assert_eq!(answer.header("x-request-id"), Some("req-1234"));
}

#[tokio::test]
async fn a_database_that_cannot_be_reached_is_503_without_details() {
    let issuer = Issuer::start().await;
    let mut app = app(&issuer).await;
    // A port nothing listens on: bind one, note it, release it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let options = sqlx::postgres::PgConnectOptions::new()
        .host("127.0.0.1")
        .port(port)
        .username("postgres")
        .password("hunter2-secret");
    app.store = promo_core::store::Store::new(promo_core::store::lambda_pool(options));
    let answer = call(&app, Function::List, &Event::fixture("get").bearer(&issuer.admin())).await;
    assert_eq!((answer.status, answer.error_code()), (503, "unavailable"));
    let text = answer.body.to_string();
    assert!(!text.contains("hunter2") && !text.contains("127.0.0.1"), "{text}");
}

#[tokio::test]
async fn an_internal_error_is_500_with_no_sql_in_the_body() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    sqlx::query("DROP TABLE promo_codes CASCADE").execute(app.store.pool()).await.unwrap();
    let answer = call(&app, Function::List, &Event::fixture("list").bearer(&issuer.admin())).await;
    assert_eq!((answer.status, answer.error_code()), (500, "internal"));
    let text = answer.body.to_string();
    assert!(!text.contains("promo_codes") && !text.to_lowercase().contains("select"), "{text}");
}

/// The API's instants are years 0001-9999 in UTC: an offset must not carry one outside
/// (`9999-12-31T23:30:00-01:00` is year 10000 in UTC, which used to be stored and rendered as
/// `+10000-...`), and a cursor whose key lies outside is one this API never issued.
#[tokio::test]
async fn instants_outside_years_0001_to_9999_are_refused_and_so_are_cursors_that_carry_one() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    for expires_at in ["9999-12-31T23:30:00-01:00", "9999-12-31T23:59:59.999999-00:01"] {
        let mut body = summer("FAR0001");
        body["expires_at"] = json!(expires_at);
        let answer = create(&app, &issuer, &body).await;
        assert_eq!((answer.status, answer.error_code()), (422, "validation_failed"), "{expires_at}: {}", answer.body);
        assert_eq!(answer.param(), Some("expires_at"));
    }
    let mut latest = summer("LAST9999");
    latest["expires_at"] = json!("9999-12-31T23:59:59Z");
    assert_eq!(create(&app, &issuer, &latest).await.status, 201, "the last instant of year 9999 is fine");

    let filter = [("expires_after", "0001-01-01T00:30:00+01:00")];
    let answer = call(&app, Function::List, &Event::fixture("list").bearer(&issuer.admin()).query(&filter)).await;
    assert_eq!((answer.status, answer.param()), (400, Some("expires_after")), "{}", answer.body);

    // A genuine cursor with its key moved far outside PostgreSQL's range (it used to be a 500).
    create(&app, &issuer, &summer("NEAR0001")).await;
    let page = [("sort", "expires_at"), ("limit", "1")];
    let first = call(&app, Function::List, &Event::fixture("list").bearer(&issuer.admin()).query(&page)).await;
    let cursor = first.body["next_cursor"].as_str().expect("a second page").to_owned();
    let mut wire: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&cursor).unwrap()).unwrap();
    for micros in [-8_000_000_000_000_000_000_i64, 253_402_300_800_000_000] {
        wire["k"] = json!(micros);
        let forged = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wire).unwrap());
        let query = [("sort", "expires_at"), ("limit", "1"), ("cursor", forged.as_str())];
        let answer = call(&app, Function::List, &Event::fixture("list").bearer(&issuer.admin()).query(&query)).await;
        assert_eq!((answer.status, answer.error_code()), (400, "invalid_request"), "{micros}: {}", answer.body);
        assert_eq!(answer.param(), Some("cursor"));
    }
}
