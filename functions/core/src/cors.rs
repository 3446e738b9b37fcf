//! CORS as the functions answer it: a preflight `OPTIONS` from an allowed origin gets the
//! resource's methods and the allowed headers; every other response to an allowed origin carries
//! `Access-Control-Allow-Origin` and exposes the headers a back office reads. Another origin gets
//! no allow header, and the browser keeps the answer from its script.

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
pub use promo_shared::cors::{ALLOWED_HEADERS, EXPOSED_HEADERS, MAX_AGE_SECONDS, ORIGINS_VARIABLE, parse_origin};
use promo_shared::routes::Preflight;

/// The origins allowed to call the API from a browser. Empty: none (no browser access).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cors {
    origins: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{ORIGINS_VARIABLE}: {0}")]
pub struct CorsError(String);

impl Cors {
    /// Origins as `parse_origin` accepts them.
    pub fn new<S: AsRef<str>>(origins: &[S]) -> Result<Cors, CorsError> {
        let origins =
            origins.iter().map(|o| parse_origin(o.as_ref().trim()).map_err(CorsError)).collect::<Result<_, _>>()?;
        Ok(Cors { origins })
    }

    /// `CORS_ALLOWED_ORIGINS`: comma-separated origins; unset or empty: none.
    pub fn from_env() -> Result<Cors, CorsError> {
        let text = std::env::var(ORIGINS_VARIABLE).unwrap_or_default();
        let origins: Vec<&str> = text.split(',').map(str::trim).filter(|o| !o.is_empty()).collect();
        Cors::new(&origins)
    }

    /// The request's `Origin`, when it is one of ours. Browsers send it lower-case already;
    /// the comparison is exact otherwise (`https://admin.example.com.evil.test` is another origin).
    fn allowed_origin(&self, request: &Request) -> Option<HeaderValue> {
        let origin = request.headers().get(header::ORIGIN)?.to_str().ok()?;
        self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin)).then(|| HeaderValue::from_str(origin).ok())?
    }

    /// The answer to a preflight on `preflight`'s resource: 204, with the allow headers only for
    /// an allowed origin.
    pub fn preflight(&self, request: &Request, preflight: &Preflight) -> Response<Body> {
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = StatusCode::NO_CONTENT;
        let headers = response.headers_mut();
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = self.allowed_origin(request) {
            let mut methods = preflight.methods.clone();
            methods.push("OPTIONS");
            if let Ok(methods) = HeaderValue::from_str(&methods.join(", ")) {
                headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
            }
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOWED_HEADERS));
            headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(MAX_AGE_SECONDS));
        }
        response
    }

    /// Adds the allow and expose headers to an answer for an allowed origin.
    pub fn decorate(&self, request: &Request, response: &mut Response<Body>) {
        let headers = response.headers_mut();
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = self.allowed_origin(request) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED_HEADERS));
        }
    }
}
