//! lambda_http glue: API Gateway REST proxy requests in, domain types to the handlers, and
//! every failure rendered as the contract's error body with its status.

use chrono::Utc;
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;

use crate::auth::{AuthError, Caller, Verifier};
use crate::cors::Cors;
use crate::domain::{Code, DomainError, Unusable};
use crate::routes::{Access, ROUTES, Route};
use crate::store::{GuessLimit, RedeemError, Store, StoreError};

/// Bodies above this are refused with 413 before anything parses them.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// What every handler needs, built once per Lambda instance (outside the handler).
#[derive(Clone)]
pub struct App {
    pub store: Store,
    pub verifier: Verifier,
    /// How many `not_found` answers of validate and redeem a caller may get per window.
    pub guess_limit: GuessLimit,
    /// The origins a browser back office may call from.
    pub cors: Cors,
}

/// A failure on its way to becoming a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub param: Option<String>,
    /// Extra response headers, such as `Allow` or `Retry-After`.
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), param: None, headers: Vec::new() }
    }

    pub fn with_param(mut self, param: impl Into<String>) -> ApiError {
        self.param = Some(param.into());
        self
    }

    pub fn invalid_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn validation(param: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", message).with_param(param)
    }

    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such promo code")
    }

    pub fn route_not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    }

    pub fn method_not_allowed(allowed: &[&str]) -> ApiError {
        let mut error = ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed here");
        error.headers.push(("allow", allowed.join(", ")));
        error
    }

    pub fn rate_limited(retry_after: std::time::Duration) -> ApiError {
        let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        let mut error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many unknown codes; retry in {seconds} s"),
        );
        error.headers.push(("retry-after", seconds.to_string()));
        error
    }

    pub fn internal() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the request id identifies it in our logs",
        )
    }

    pub fn unavailable() -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the database is unavailable; retry shortly")
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> ApiError {
        match error {
            DomainError::Invalid { param, message } => ApiError::validation(&param, message),
            DomainError::Malformed { param, message } => {
                let error = ApiError::invalid_request(message);
                match param {
                    Some(param) => error.with_param(param),
                    None => error,
                }
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::NotFound => ApiError::not_found(),
            StoreError::Conflict { .. } => {
                ApiError::new(StatusCode::CONFLICT, "already_exists", "a promo code with this code already exists")
                    .with_param("code")
            }
            StoreError::VersionMismatch { current, .. } => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                format!("the promo code has changed; its current ETag is \"{current}\""),
            ),
            StoreError::Invalid { param, message } => ApiError::validation(&param, message),
            StoreError::Unavailable(_) => {
                log_cause("database unavailable", &error);
                ApiError::unavailable()
            }
            StoreError::Database(_) | StoreError::Corrupt { .. } => {
                log_cause("internal error", &error);
                ApiError::internal()
            }
        }
    }
}

impl From<RedeemError> for ApiError {
    fn from(error: RedeemError) -> ApiError {
        match error {
            RedeemError::NotFound => ApiError::not_found(),
            RedeemError::Unusable(Unusable::Exhausted) => {
                ApiError::new(StatusCode::CONFLICT, "exhausted", "the promo code has been used as often as it may be")
            }
            RedeemError::Unusable(Unusable::Expired) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "expired", "the promo code has expired")
            }
            RedeemError::Unusable(Unusable::Inactive) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "inactive", "the promo code is switched off")
            }
            RedeemError::OrderTaken => ApiError::new(
                StatusCode::CONFLICT,
                "already_exists",
                "this order already has a redemption of this promo code",
            )
            .with_param("order_id"),
            RedeemError::Store(store) => store.into(),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> ApiError {
        if let AuthError::KeysUnavailable(_) = &error {
            tracing::error!(error = %error, "token keys unavailable");
        } else {
            tracing::info!(reason = %error, "token refused");
        }
        // One message for every failure: which check failed is for our logs, not for a prober.
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "a valid bearer token is required")
    }
}

/// Logs an error with its whole cause chain; the response only carries a generic message.
fn log_cause(what: &str, error: &(dyn std::error::Error + 'static)) {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    tracing::error!(error = %chain, "{what}");
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorFields<'a>,
}

#[derive(Serialize)]
struct ErrorFields<'a> {
    code: &'a str,
    message: &'a str,
    param: Option<&'a str>,
    request_id: &'a str,
}

/// The request id API Gateway assigned, or one of our own when there is none (local calls).
pub fn request_id(request: &Request) -> String {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => context.request_id.clone(),
        _ => None,
    }
    .unwrap_or_else(|| format!("local-{}", Code::generate()))
}

/// The API Gateway resource a request came in on (`/promo-codes/{code}`).
pub fn resource_of(request: &Request) -> Option<String> {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => context.resource_path.clone(),
        _ => None,
    }
}

/// The route a request came in on, from API Gateway's `resource` and method.
pub fn route_of(request: &Request) -> Option<&'static Route> {
    let resource = resource_of(request)?;
    ROUTES.iter().find(|r| r.path == resource && r.method == request.method().as_str())
}

pub fn json_response(status: StatusCode, body: &impl Serialize, request_id: &str) -> Response<Body> {
    match serde_json::to_vec(body) {
        Ok(bytes) => base_response(status, request_id, Body::Binary(bytes)),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialise a response");
            error_response(&ApiError::internal(), request_id)
        }
    }
}

pub fn error_response(error: &ApiError, request_id: &str) -> Response<Body> {
    let body = ErrorBody {
        error: ErrorFields { code: error.code, message: &error.message, param: error.param.as_deref(), request_id },
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut response = base_response(error.status, request_id, Body::Binary(bytes));
    if error.status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    for (name, value) in &error.headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            response.headers_mut().insert(*name, value);
        }
    }
    response
}

fn base_response(status: StatusCode, request_id: &str, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", id);
    }
    response
}

/// Authenticates the caller and checks the route's access rule.
pub async fn authorize(app: &App, request: &Request, access: Access) -> Result<Caller, ApiError> {
    let header = match request.headers().get(header::AUTHORIZATION) {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| ApiError::from(AuthError::NotBearer))?),
    };
    let caller = app.verifier.verify(header).await?;
    if access == Access::Admin && !caller.admin {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "this route needs the admin scope"));
    }
    Ok(caller)
}

/// The JSON body of a request: at most 16 KiB, declared as JSON.
pub fn json_body(request: &Request) -> Result<&[u8], ApiError> {
    let body: &[u8] = request.body().as_ref();
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body must be at most {MAX_BODY_BYTES} bytes"),
        ));
    }
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let is_json =
        media_type == "application/json" || (media_type.starts_with("application/") && media_type.ends_with("+json"));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the request body must be JSON, sent with Content-Type: application/json",
        ));
    }
    Ok(body)
}

/// The `{code}` path parameter. A value that can never be a code names no code: 404.
pub fn path_code(request: &Request) -> Result<Code, ApiError> {
    let params = request.path_parameters_ref().ok_or_else(ApiError::not_found)?;
    let raw = params.first("code").ok_or_else(ApiError::not_found)?;
    Code::parse(raw).map_err(|_| ApiError::not_found())
}

/// The current time, for rules such as "expires in the future".
pub fn now() -> chrono::DateTime<Utc> {
    Utc::now()
}
