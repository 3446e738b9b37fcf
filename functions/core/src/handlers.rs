//! One handler per route of the route table. Each takes a REST proxy request and always answers:
//! failures become the contract's error responses here, never a Lambda error.

use std::collections::BTreeMap;

use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::api::{self, ApiError, App, authorize, error_response, json_body, json_response, path_code};
use crate::auth::Caller;
use crate::domain::{
    AuditEvent, Code, DomainError, EventsQuery, ListQuery, NewPromoCode, OrderId, PromoCode, PromoCodePatch,
    format_timestamp,
};
use crate::routes::{self, Function, Route};
use crate::store::{RedeemError, Redeemed, StoreError};

/// Serves a request for `function`: finds its route, checks access, runs the handler, and
/// renders any failure.
pub async fn handle(app: &App, function: Function, request: Request) -> Response<Body> {
    let request_id = api::request_id(&request);
    // A browser's preflight carries no token: it is answered from the route table alone.
    if request.method() == Method::OPTIONS {
        let preflight = api::resource_of(&request).and_then(|resource| routes::preflight(&resource));
        if let Some(preflight) = preflight.filter(|p| p.function == function) {
            return app.cors.preflight(&request, &preflight);
        }
    }
    let result = match api::route_of(&request).filter(|r| r.function == function) {
        None => Err(ApiError::route_not_found()),
        Some(route) => match dispatch(app, route, &request, &request_id).await {
            // The database refused our password (a rotation): once the credentials are read
            // again, the request is tried once more.
            Err(error) if error.status.is_server_error() && app.store.renew_credentials_if_refused().await => {
                dispatch(app, route, &request, &request_id).await
            }
            result => result,
        },
    };
    let mut response = result.unwrap_or_else(|error| error_response(&error, &request_id));
    app.cors.decorate(&request, &mut response);
    tracing::info!(
        request_id = %request_id,
        method = %request.method(),
        status = response.status().as_u16(),
        "request served"
    );
    response
}

async fn dispatch(app: &App, route: &Route, request: &Request, request_id: &str) -> Result<Response<Body>, ApiError> {
    let caller = authorize(app, request, route.access).await?;
    match (route.method, route.path) {
        ("POST", "/promo-codes") => create(app, &caller, request, request_id).await,
        ("GET", "/promo-codes") => list(app, request, request_id).await,
        ("GET", "/promo-codes/{code}") => get(app, request, request_id).await,
        ("PATCH", "/promo-codes/{code}") => update(app, &caller, request, request_id).await,
        ("GET", "/promo-codes/{code}/events") => events(app, request, request_id).await,
        ("POST", "/validations") => validate(app, &caller, request, request_id).await,
        ("POST", "/redemptions") => redeem(app, &caller, request, request_id).await,
        _ => Err(ApiError::route_not_found()),
    }
}

fn with_etag(mut response: Response<Body>, code: &PromoCode) -> Response<Body> {
    if let Ok(etag) = HeaderValue::from_str(&code.etag()) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

async fn create(app: &App, caller: &Caller, request: &Request, request_id: &str) -> Result<Response<Body>, ApiError> {
    let body = json_body(request)?;
    let mut new = NewPromoCode::from_json(body, api::now())?;
    // A generated code has 60 bits of entropy; a collision is astronomically rare but costs
    // only a retry, so never answer 409 for a code the client did not choose.
    let mut attempts = 0;
    let created = loop {
        match app.store.insert(&new, &caller.sub).await {
            Err(StoreError::Conflict { .. }) if new.code_generated && attempts < 3 => {
                attempts += 1;
                new.code = Code::generate();
            }
            other => break other?,
        }
    };
    let mut response = with_etag(json_response(StatusCode::CREATED, &created, request_id), &created);
    if let Ok(location) = HeaderValue::from_str(&format!("/promo-codes/{}", created.code)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

async fn get(app: &App, request: &Request, request_id: &str) -> Result<Response<Body>, ApiError> {
    let code = path_code(request)?;
    let found = app.store.get(&code).await?;
    Ok(with_etag(json_response(StatusCode::OK, &found, request_id), &found))
}

async fn update(app: &App, caller: &Caller, request: &Request, request_id: &str) -> Result<Response<Body>, ApiError> {
    let code = path_code(request)?;
    let expected_versions = if_match(request)?;
    let patch = PromoCodePatch::from_json(json_body(request)?)?;
    let updated = app.store.patch(&code, &patch, expected_versions.as_deref(), &caller.sub).await?;
    Ok(with_etag(json_response(StatusCode::OK, &updated, request_id), &updated))
}

/// `If-Match` (RFC 9110 13.1.1): `*` or no header, any version; otherwise a list of entity tags,
/// compared strongly and exactly with the ETag `"<version>"`: `"3"` matches version 3, while
/// `"003"`, `W/"3"` and anything else match no version (so the update fails its precondition).
fn if_match(request: &Request) -> Result<Option<Vec<i32>>, ApiError> {
    let values = request.headers().get_all(header::IF_MATCH);
    if values.iter().next().is_none() {
        return Ok(None);
    }
    let mut versions = Vec::new();
    for value in values {
        let text = value.to_str().map_err(|_| {
            ApiError::new(StatusCode::PRECONDITION_FAILED, "precondition_failed", "If-Match must be ASCII")
        })?;
        for tag in text.split(',').map(str::trim) {
            if tag == "*" {
                return Ok(None);
            }
            let version = tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')).and_then(|digits| {
                let version = digits.parse::<i32>().ok()?;
                // Only the exact text of an ETag we issued matches it.
                (version.to_string() == digits).then_some(version)
            });
            versions.extend(version);
        }
    }
    Ok(Some(versions))
}

#[derive(Serialize)]
struct ListBody<'a> {
    data: &'a [PromoCode],
    has_more: bool,
    next_cursor: Option<&'a str>,
}

async fn list(app: &App, request: &Request, request_id: &str) -> Result<Response<Body>, ApiError> {
    let params = request.query_string_parameters();
    let query = ListQuery::parse(params.iter())?;
    let page = app.store.list(&query, api::now()).await?;
    let body =
        ListBody { data: &page.data, has_more: page.next_cursor.is_some(), next_cursor: page.next_cursor.as_deref() };
    Ok(json_response(StatusCode::OK, &body, request_id))
}

/// The answer of `POST /validations`.
#[derive(Serialize)]
#[serde(untagged)]
enum Validation<'a> {
    Valid { valid: bool, code: &'a str, discount_percentage: Box<RawValue>, expires_at: String },
    Invalid { valid: bool, code: &'a str, reason: &'static str },
}

async fn validate(app: &App, caller: &Caller, request: &Request, request_id: &str) -> Result<Response<Body>, ApiError> {
    let fields = json_fields(json_body(request)?, &["code"])?;
    let code = code_field(&fields)?;
    // One round trip: the caller's guess count and one indexed lookup by (code, owner), the
    // same whether the code is unknown or someone else's, so neither tells that a foreign
    // code exists.
    let lookup = match app.store.find_owned_unless_guessing(&code, &caller.sub, &app.guess_limit).await? {
        Ok(lookup) => lookup,
        Err(wait) => return Err(ApiError::rate_limited(wait)),
    };
    let invalid = |reason| Validation::Invalid { valid: false, code: code.as_str(), reason };
    let answer = match &lookup.code {
        None => {
            // The budget is spent atomically: of a burst of guesses, only those within it
            // learn `not_found`.
            if let Some(wait) = app.store.record_guess_failure(&caller.sub, &app.guess_limit).await? {
                return Err(ApiError::rate_limited(wait));
            }
            invalid("not_found")
        }
        // The database's clock, as redeem's: what validate calls usable, redeem does too.
        Some(p) => match p.unusable(lookup.now) {
            Some(why) => invalid(why.reason()),
            None => Validation::Valid {
                valid: true,
                code: code.as_str(),
                discount_percentage: RawValue::from_string(p.discount.to_json_number())
                    .map_err(|_| ApiError::internal())?,
                expires_at: format_timestamp(p.expires_at.at()),
            },
        },
    };
    Ok(json_response(StatusCode::OK, &answer, request_id))
}

async fn redeem(app: &App, caller: &Caller, request: &Request, request_id: &str) -> Result<Response<Body>, ApiError> {
    let fields = json_fields(json_body(request)?, &["code", "order_id"])?;
    let code = code_field(&fields)?;
    let order_id = OrderId::parse(&string_field(&fields, "order_id")?)?;
    refuse_guessers(app, caller).await?;
    match app.store.redeem(&code, &caller.sub, &order_id).await {
        Ok(Redeemed::First(redemption)) => Ok(json_response(StatusCode::CREATED, &redemption, request_id)),
        Ok(Redeemed::Again(redemption)) => Ok(json_response(StatusCode::OK, &redemption, request_id)),
        Err(RedeemError::NotFound) => match app.store.record_guess_failure(&caller.sub, &app.guess_limit).await? {
            Some(wait) => Err(ApiError::rate_limited(wait)),
            None => Err(RedeemError::NotFound.into()),
        },
        Err(other) => Err(other.into()),
    }
}

/// 429 for a caller who has had too many `not_found` answers lately.
async fn refuse_guessers(app: &App, caller: &Caller) -> Result<(), ApiError> {
    match app.store.guess_wait(&caller.sub, &app.guess_limit).await? {
        Some(wait) => Err(ApiError::rate_limited(wait)),
        None => Ok(()),
    }
}

async fn events(app: &App, request: &Request, request_id: &str) -> Result<Response<Body>, ApiError> {
    let code = path_code(request)?;
    let params = request.query_string_parameters();
    let query = EventsQuery::parse(&code, params.iter())?;
    let page = app.store.events(&code, &query).await?;
    let body =
        EventsBody { data: &page.data, has_more: page.next_cursor.is_some(), next_cursor: page.next_cursor.as_deref() };
    Ok(json_response(StatusCode::OK, &body, request_id))
}

#[derive(Serialize)]
struct EventsBody<'a> {
    data: &'a [AuditEvent],
    has_more: bool,
    next_cursor: Option<&'a str>,
}

type Fields = BTreeMap<String, Box<RawValue>>;

/// A JSON object body holding no field but the `allowed` ones.
fn json_fields(body: &[u8], allowed: &[&str]) -> Result<Fields, ApiError> {
    let fields: Fields = serde_json::from_slice(body).map_err(|e| {
        ApiError::from(DomainError::Malformed {
            param: None,
            message: format!("the request body must be a JSON object: {e}"),
        })
    })?;
    if let Some(unknown) = fields.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::validation(unknown, format!("unknown field {unknown:?}")));
    }
    Ok(fields)
}

fn string_field(fields: &Fields, name: &str) -> Result<String, ApiError> {
    let raw = fields.get(name).ok_or_else(|| ApiError::validation(name, format!("{name} is required")))?;
    serde_json::from_str(raw.get()).map_err(|_| ApiError::validation(name, format!("{name} must be a string")))
}

fn code_field(fields: &Fields) -> Result<Code, ApiError> {
    Ok(Code::parse(&string_field(fields, "code")?)?)
}
