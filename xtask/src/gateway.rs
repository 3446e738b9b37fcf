//! The local API Gateway: turns each HTTP request into the REST proxy event API Gateway would
//! send (resource, path, stage, pathParameters, multi-value headers and query, a request id),
//! routes it by the route table, and answers with the real handler of the real function.

use std::convert::Infallible;
use std::sync::Arc;

use base64::Engine;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use promo_core::api::{ApiError, App, error_response};
use promo_core::handlers::handle;
use promo_core::routes::{Match, match_route};
use serde_json::{Map, Value, json};

/// API Gateway refuses request payloads above 10 MB; the handlers refuse far less (16 KiB).
const MAX_GATEWAY_BODY: usize = 10 * 1024 * 1024;
pub const STAGE: &str = "local";
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

pub struct Gateway {
    pub app: App,
    /// The local issuer's key set, served at [`JWKS_PATH`].
    pub jwks: String,
}

pub async fn serve(gateway: Arc<Gateway>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let request_id = new_request_id();
    let (parts, body) = request.into_parts();
    if parts.method == hyper::Method::GET && parts.uri.path() == JWKS_PATH {
        return Ok(plain(200, "application/json", gateway.jwks.clone().into_bytes()));
    }
    let (resource, function, params) = match match_route(parts.method.as_str(), parts.uri.path()) {
        Match::Found(route, params) => (route.path, route.function, params),
        // API Gateway has an OPTIONS method per resource, integrated with one of its functions.
        Match::Preflight(preflight, params) => (preflight.path, preflight.function, params),
        Match::MethodNotAllowed(allowed) => {
            return Ok(convert(error_response(&ApiError::method_not_allowed(&allowed), &request_id)));
        }
        Match::NotFound => return Ok(convert(error_response(&ApiError::route_not_found(), &request_id))),
    };
    let body = match Limited::new(body, MAX_GATEWAY_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            let error = ApiError::new(hyper::StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "request too large");
            return Ok(convert(error_response(&error, &request_id)));
        }
    };

    let event = rest_event(&parts, STAGE, resource, &params, &body, &request_id);
    let response = match lambda_http::request::from_str(&event.to_string()) {
        Ok(lambda_request) => handle(&gateway.app, function, lambda_request).await,
        Err(e) => {
            eprintln!("local gateway built an event lambda_http cannot read: {e}");
            error_response(&ApiError::internal(), &request_id)
        }
    };
    Ok(convert(response))
}

/// The REST (v1) proxy event for a request to `stage`, as API Gateway builds it.
pub fn rest_event(
    parts: &hyper::http::request::Parts,
    stage: &str,
    resource: &str,
    params: &[(&str, String)],
    body: &[u8],
    request_id: &str,
) -> Value {
    let mut headers = Map::new();
    let mut multi_headers = Map::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers.insert(name.to_string(), json!(value));
        push_multi(&mut multi_headers, name.as_str(), &value);
    }
    let mut query = Map::new();
    let mut multi_query = Map::new();
    for (name, value) in form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()) {
        query.insert(name.to_string(), json!(value));
        push_multi(&mut multi_query, &name, &value);
    }
    let path_parameters: Map<String, Value> = params.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    let (body, is_base64) = match (body.is_empty(), std::str::from_utf8(body)) {
        (true, _) => (Value::Null, false),
        (false, Ok(text)) => (json!(text), false),
        (false, Err(_)) => (json!(base64::engine::general_purpose::STANDARD.encode(body)), true),
    };
    let or_null = |m: Map<String, Value>| if m.is_empty() { Value::Null } else { Value::Object(m) };
    let path = parts.uri.path();
    json!({
        "resource": resource,
        "path": path,
        "httpMethod": parts.method.as_str(),
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": or_null(query),
        "multiValueQueryStringParameters": or_null(multi_query),
        "pathParameters": or_null(path_parameters),
        "stageVariables": null,
        "requestContext": {
            "resourceId": "local",
            "resourcePath": resource,
            "httpMethod": parts.method.as_str(),
            "path": format!("/{stage}{path}"),
            "accountId": "000000000000",
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainName": "127.0.0.1",
            "requestId": request_id,
            "requestTimeEpoch": chrono::Utc::now().timestamp_millis(),
            "identity": { "sourceIp": "127.0.0.1" },
            "apiId": "local",
        },
        "body": body,
        "isBase64Encoded": is_base64,
    })
}

/// Appends a value to a multi-value map (`multiValueHeaders`, `multiValueQueryStringParameters`).
fn push_multi(map: &mut Map<String, Value>, name: &str, value: &str) {
    if let Value::Array(values) = map.entry(name.to_owned()).or_insert_with(|| json!([])) {
        values.push(json!(value));
    }
}

fn new_request_id() -> String {
    let bytes: [u8; 16] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

fn convert(response: lambda_http::Response<lambda_http::Body>) -> Response<Full<Bytes>> {
    let (parts, body) = response.into_parts();
    let bytes: Vec<u8> = match body {
        lambda_http::Body::Empty => Vec::new(),
        lambda_http::Body::Text(text) => text.into_bytes(),
        lambda_http::Body::Binary(bytes) => bytes,
        _ => Vec::new(),
    };
    Response::from_parts(parts, Full::new(Bytes::from(bytes)))
}

fn plain(status: u16, content_type: &'static str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(content_type));
    response
}
