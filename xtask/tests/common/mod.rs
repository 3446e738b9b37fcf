//! What the end-to-end tests share: running xtask, tokens from the local issuer, an HTTP client
//! for the API, and the story every deployment of the API must tell.

#![allow(dead_code)] // each test binary uses its own part

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use deployer::apply::Zip;
use sha2::{Digest, Sha256};

use serde_json::{Value, json};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The zips `cargo xtask test` builds before the tests (`cargo xtask build --arch x86_64`).
pub fn built_zips() -> BTreeMap<String, Zip> {
    let dir = root().join("target/lambda/x86_64");
    promo_core::routes::FUNCTION_CRATES
        .iter()
        .map(|f| {
            let path = dir.join(format!("{f}.zip"));
            let bytes = std::fs::read(&path).unwrap_or_else(|e| {
                panic!("{}: {e}: run `cargo xtask build --arch x86_64` (cargo xtask test does)", path.display())
            });
            let code_sha256 = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes));
            (f.to_string(), Zip { path, code_sha256 })
        })
        .collect()
}

/// A state directory of the test's own (the local issuer's key lives there), removed at the end.
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn xtask(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command.env("PROMO_DEV_DIR", dir).env_remove("DATABASE_URL");
    for var in ["AUTH_ISSUER", "AUTH_AUDIENCE", "AUTH_JWKS_URL", "AUTH_HS256_SECRET", "AUTH_ADMIN_SCOPE"] {
        command.env_remove(var);
    }
    command
}

pub fn token(dir: &Path, sub: &str, admin: bool) -> String {
    let mut command = xtask(dir);
    command.args(["token", "--sub", sub]);
    if admin {
        command.arg("--admin");
    }
    let output = command.output().expect("xtask token");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8").trim().to_owned()
}

pub struct Client {
    agent: ureq::Agent,
    base: String,
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl Client {
    pub fn new(base: &str) -> Client {
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        Client { agent, base: base.to_owned() }
    }

    pub fn send(&self, method: &str, path: &str, token: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Reply {
        let url = format!("{}{path}", self.base);
        let mut request =
            ureq::http::Request::builder().method(method).uri(&url).header("Authorization", format!("Bearer {token}"));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let result = match body {
            Some(body) => self
                .agent
                .run(request.header("Content-Type", "application/json").body(body.to_string()).expect("request")),
            None => self.agent.run(request.body(()).expect("request")),
        };
        let mut response = result.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let headers =
            response.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned())).collect();
        let text = response.body_mut().read_to_string().expect("body");
        let body = match text.as_str() {
            "" => Value::Null,
            text => serde_json::from_str(text).unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}")),
        };
        Reply { status, headers, body }
    }
}

/// The contract's story, as an API client tells it: create, read, list, patch with If-Match,
/// validate as the owner and as someone else, redeem once per order, read the audit trail.
/// `code` must be new to the API.
pub fn story(api: &Client, admin: &str, alice: &str, mallory: &str, code: &str) {
    let upper = code.to_uppercase();
    // Create, then read it back.
    let body =
        json!({"code": code, "owner": "alice", "discount_percentage": 12.5, "expires_at": "2031-06-30T12:00:00+02:00"});
    let created = api.send("POST", "/promo-codes", admin, &[], Some(&body));
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.header("location"), Some(format!("/promo-codes/{upper}").as_str()));
    assert_eq!(created.header("etag"), Some("\"1\""));
    assert_eq!(created.body["expires_at"], "2031-06-30T10:00:00Z");

    let fetched = api.send("GET", &format!("/promo-codes/{code}"), admin, &[], None);
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body, created.body);

    let query = format!("/promo-codes?owner=alice&code_prefix={upper}&status=active&sort=-discount_percentage");
    let listed = api.send("GET", &query, admin, &[], None);
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["data"][0]["code"], upper);
    assert_eq!(listed.body["has_more"], false);

    // Patch with If-Match: the current ETag works once, then it is stale.
    let patch = json!({"discount_percentage": 20});
    let patched = api.send("PATCH", &format!("/promo-codes/{upper}"), admin, &[("If-Match", "\"1\"")], Some(&patch));
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.header("etag"), Some("\"2\""));
    assert_eq!(patched.body["discount_percentage"], json!(20));
    let stale = api.send("PATCH", &format!("/promo-codes/{upper}"), admin, &[("If-Match", "\"1\"")], Some(&patch));
    assert_eq!(stale.status, 412);
    assert_eq!(stale.body["error"]["code"], "precondition_failed");

    // Validate as the owner and as someone else.
    let mine = api.send("POST", "/validations", alice, &[], Some(&json!({"code": code})));
    assert_eq!(
        mine.body,
        json!({"valid": true, "code": upper, "discount_percentage": 20, "expires_at": "2031-06-30T10:00:00Z"})
    );
    let theirs = api.send("POST", "/validations", mallory, &[], Some(&json!({"code": code})));
    assert_eq!(theirs.body, json!({"valid": false, "code": upper, "reason": "not_found"}));

    // Redeem once per order, then read the audit trail.
    let order = json!({"code": upper, "order_id": "order-1"});
    let first = api.send("POST", "/redemptions", alice, &[], Some(&order));
    assert_eq!(first.status, 201, "{}", first.body);
    let replay = api.send("POST", "/redemptions", alice, &[], Some(&order));
    assert_eq!((replay.status, &replay.body), (200, &first.body));
    let trail = api.send("GET", &format!("/promo-codes/{upper}/events"), admin, &[], None);
    let actions: Vec<&str> =
        trail.body["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["created", "updated", "redeemed"]);

    // Pages: a second code of the same owner, listed one per page by following the cursor.
    let second = json!({"code": format!("{code}-2"), "owner": "alice", "discount_percentage": 5, "expires_at": "2032-01-01T00:00:00Z"});
    assert_eq!(api.send("POST", "/promo-codes", admin, &[], Some(&second)).status, 201);
    let query = format!("/promo-codes?owner=alice&code_prefix={upper}&sort=code&limit=1");
    let page_one = api.send("GET", &query, admin, &[], None);
    assert_eq!(
        (page_one.body["data"][0]["code"].as_str(), &page_one.body["has_more"]),
        (Some(upper.as_str()), &json!(true))
    );
    let cursor = page_one.body["next_cursor"].as_str().expect("a cursor to the next page");
    let page_two = api.send("GET", &format!("{query}&cursor={cursor}"), admin, &[], None);
    assert_eq!(page_two.body["data"][0]["code"], format!("{upper}-2"));
    assert_eq!((&page_two.body["has_more"], &page_two.body["next_cursor"]), (&json!(false), &Value::Null));
}

/// A back office in a browser at `origin` (an allowed origin): its preflights and answers, and
/// those of a page at another origin; then an unknown route, answered by the gateway itself.
pub fn browser(api: &Client, admin: &str, origin: &str) {
    let preflight = |from: &str| {
        let headers = [
            ("Origin", from),
            ("Access-Control-Request-Method", "PATCH"),
            ("Access-Control-Request-Headers", "authorization,content-type,if-match"),
        ];
        api.send("OPTIONS", "/promo-codes/SOME-CODE", "", &headers, None)
    };
    let allowed = preflight(origin);
    assert!(allowed.status == 204 || allowed.status == 200, "preflight: {}", allowed.status);
    assert_eq!(allowed.header("access-control-allow-origin"), Some(origin));
    let methods = allowed.header("access-control-allow-methods").unwrap_or_default();
    assert!(methods.contains("PATCH") && methods.contains("GET"), "{methods}");
    let allowed_headers = allowed.header("access-control-allow-headers").unwrap_or_default().to_ascii_lowercase();
    for needed in ["authorization", "content-type", "if-match"] {
        assert!(allowed_headers.contains(needed), "{allowed_headers}");
    }
    let other = preflight("https://elsewhere.example");
    assert_eq!(other.header("access-control-allow-origin"), None);
    assert_eq!(other.header("access-control-allow-methods"), None);

    let listed = api.send("GET", "/promo-codes?limit=1", admin, &[("Origin", origin)], None);
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.header("access-control-allow-origin"), Some(origin));
    let exposed = listed.header("access-control-expose-headers").unwrap_or_default().to_ascii_lowercase();
    for needed in ["etag", "location", "retry-after", "x-request-id"] {
        assert!(exposed.contains(needed), "{exposed}");
    }
    let foreign = api.send("GET", "/promo-codes?limit=1", admin, &[("Origin", "https://elsewhere.example")], None);
    assert_eq!(foreign.header("access-control-allow-origin"), None);

    let unknown = api.send("GET", "/no-such-route", admin, &[], None);
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert_eq!(unknown.body["error"]["code"], "not_found", "{}", unknown.body);
    assert!(unknown.body["error"]["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{}", unknown.body);
}
