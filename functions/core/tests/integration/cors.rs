//! CORS for a back office in a browser, through the real handlers: a preflight from an allowed
//! origin, from another origin, and the headers of real answers.

use lambda_http::http::HeaderMap;
use promo_core::api::App;
use promo_core::cors::Cors;
use promo_core::routes::Function;

use crate::events::{Event, app, call, preflight};
use crate::tokens::Issuer;

const BACK_OFFICE: &str = "https://admin.example.com";

async fn app_for_back_office(issuer: &Issuer) -> App {
    App { cors: Cors::new(&[BACK_OFFICE, "http://localhost:5173"]).expect("origins"), ..app(issuer).await }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_gets_the_resources_methods_and_headers_without_a_token() {
    let issuer = Issuer::start().await;
    let app = app_for_back_office(&issuer).await;
    let event = Event::fixture("get")
        .code("SUMMER25")
        .header("Origin", BACK_OFFICE)
        .header("Access-Control-Request-Method", "PATCH");
    let (status, headers) = preflight(&app, Function::List, &event).await;
    assert_eq!(status, 204);
    assert_eq!(header(&headers, "access-control-allow-origin"), Some(BACK_OFFICE));
    assert_eq!(header(&headers, "access-control-allow-methods"), Some("GET, PATCH, OPTIONS"));
    assert_eq!(header(&headers, "access-control-allow-headers"), Some("Authorization, Content-Type, If-Match"));
    assert_eq!(header(&headers, "access-control-max-age"), Some("7200"));
    assert_eq!(header(&headers, "vary"), Some("Origin"));
}

#[tokio::test]
async fn a_preflight_from_another_origin_gets_no_allow_header() {
    let issuer = Issuer::start().await;
    let app = app_for_back_office(&issuer).await;
    for origin in ["https://evil.example", "https://admin.example.com.evil.example", "null"] {
        let event = Event::fixture("validate").header("Origin", origin).header("Access-Control-Request-Method", "POST");
        let (status, headers) = preflight(&app, Function::Validate, &event).await;
        assert_eq!(status, 204);
        let allow: Vec<_> = headers.keys().filter(|k| k.as_str().starts_with("access-control-")).collect();
        assert!(allow.is_empty(), "{origin}: {allow:?}");
    }
}

#[tokio::test]
async fn answers_to_an_allowed_origin_carry_the_allow_origin_and_expose_the_headers_errors_included() {
    let issuer = Issuer::start().await;
    let app = app_for_back_office(&issuer).await;
    let created = call(
        &app,
        Function::Create,
        &Event::fixture("create")
            .bearer(&issuer.admin())
            .header("Origin", BACK_OFFICE)
            .json_body(&serde_json::json!({"code": "CORS1", "owner": "u", "discount_percentage": 5, "expires_at": "2031-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.header("access-control-allow-origin"), Some(BACK_OFFICE));
    assert_eq!(created.header("access-control-expose-headers"), Some("ETag, Location, Retry-After, x-request-id"));

    let refused = call(&app, Function::List, &Event::fixture("get").code("CORS1").header("Origin", BACK_OFFICE)).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.header("access-control-allow-origin"), Some(BACK_OFFICE), "the browser may read why");

    let foreign = call(
        &app,
        Function::List,
        &Event::fixture("get").code("CORS1").bearer(&issuer.admin()).header("Origin", "https://evil.example"),
    )
    .await;
    assert_eq!(foreign.status, 200);
    assert_eq!(foreign.header("access-control-allow-origin"), None);
    assert_eq!(foreign.header("access-control-expose-headers"), None);
}

#[tokio::test]
async fn without_allowed_origins_no_origin_is_allowed() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    let event =
        Event::fixture("validate").header("Origin", BACK_OFFICE).header("Access-Control-Request-Method", "POST");
    let (_, headers) = preflight(&app, Function::Validate, &event).await;
    assert_eq!(header(&headers, "access-control-allow-origin"), None);
}
