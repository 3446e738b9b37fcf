//! API Gateway REST proxy events from the fixtures in `tests/data/`, adjusted per test, fed to
//! the real handlers.

use lambda_http::http::HeaderMap;
use promo_core::api::App;
use promo_core::auth::{AuthConfig, KeySource, Verifier};
use promo_core::cors::Cors;
use promo_core::handlers::handle;
use promo_core::routes::Function;
use promo_core::store::GuessLimit;
use serde_json::{Value, json};

use crate::helpers::fresh_store;
use crate::tokens::{AUDIENCE, ISSUER, Issuer};

/// An app on a fresh database that trusts `issuer`'s JWKS.
pub async fn app(issuer: &Issuer) -> App {
    let config = AuthConfig {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        keys: KeySource::JwksUrl(issuer.jwks_url.clone()),
        admin_scope: "promo:admin".into(),
    };
    App {
        store: fresh_store().await,
        verifier: Verifier::new(config),
        guess_limit: GuessLimit::default(),
        cors: Cors::default(),
    }
}

/// A REST proxy event being prepared.
#[derive(Clone)]
pub struct Event {
    json: Value,
}

impl Event {
    /// One of `create`, `list`, `get`, `update`, `validate`.
    pub fn fixture(name: &str) -> Event {
        let path = format!("{}/tests/data/{name}.json", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        Event { json: serde_json::from_str(&text).expect("fixture json") }
    }

    pub fn header(mut self, name: &str, value: &str) -> Event {
        self = self.without_header(name);
        self.json["headers"][name] = json!(value);
        self.json["multiValueHeaders"][name] = json!([value]);
        self
    }

    pub fn without_header(mut self, name: &str) -> Event {
        for map in ["headers", "multiValueHeaders"] {
            if let Some(object) = self.json[map].as_object_mut() {
                object.retain(|k, _| !k.eq_ignore_ascii_case(name));
            }
        }
        self
    }

    pub fn bearer(self, token: &str) -> Event {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    pub fn body(mut self, body: &str) -> Event {
        self.json["body"] = json!(body);
        self
    }

    pub fn json_body(self, body: &Value) -> Event {
        self.body(&body.to_string())
    }

    pub fn code(mut self, code: &str) -> Event {
        self.json["pathParameters"] = json!({ "code": code });
        self.json["path"] = json!(format!("/prod/promo-codes/{code}"));
        self
    }

    pub fn query(mut self, pairs: &[(&str, &str)]) -> Event {
        let mut single = serde_json::Map::new();
        let mut multi = serde_json::Map::new();
        for (k, v) in pairs {
            single.insert(k.to_string(), json!(v));
            multi.entry(k.to_string()).or_insert_with(|| json!([])).as_array_mut().expect("array").push(json!(v));
        }
        let none = pairs.is_empty();
        self.json["queryStringParameters"] = if none { Value::Null } else { Value::Object(single) };
        self.json["multiValueQueryStringParameters"] = if none { Value::Null } else { Value::Object(multi) };
        self
    }

    /// The same request with another HTTP method (a preflight's `OPTIONS`).
    pub fn method(mut self, method: &str) -> Event {
        self.json["httpMethod"] = json!(method);
        self.json["requestContext"]["httpMethod"] = json!(method);
        self
    }

    pub fn request_id(mut self, id: &str) -> Event {
        self.json["requestContext"]["requestId"] = json!(id);
        self
    }

    pub fn request(&self) -> lambda_http::Request {
        lambda_http::request::from_str(&self.json.to_string()).expect("a valid REST proxy event")
    }
}

/// What a handler answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `code` of an error body, after checking the error shape.
    pub fn error_code(&self) -> &str {
        let error = &self.body["error"];
        assert!(error["message"].is_string(), "no message in {}", self.body);
        assert!(error.get("param").is_some(), "no param in {}", self.body);
        assert!(error["request_id"].is_string(), "no request_id in {}", self.body);
        error["code"].as_str().unwrap_or_else(|| panic!("not an error body: {}", self.body))
    }

    pub fn param(&self) -> Option<&str> {
        self.body["error"]["param"].as_str()
    }
}

/// A preflight's answer: a status and headers, no body.
pub async fn preflight(app: &App, function: Function, event: &Event) -> (u16, HeaderMap) {
    let response = handle(app, function, event.clone().method("OPTIONS").request()).await;
    assert!(response.body().is_empty(), "a preflight answer has no body");
    (response.status().as_u16(), response.headers().clone())
}

pub async fn call(app: &App, function: Function, event: &Event) -> Answer {
    let response = handle(app, function, event.request()).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    assert_eq!(headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"));
    let body: &[u8] = response.body().as_ref();
    let body = serde_json::from_slice(body).unwrap_or_else(|e| panic!("response body is not JSON ({e}): {body:?}"));
    Answer { status, headers, body }
}
