//! Secrets Manager, read at init: the database credentials RDS manages and an HS256 key, so no
//! secret ever sits in an environment variable. One signed JSON call (SigV4 with the function's
//! own role credentials) instead of the whole AWS SDK, to keep the zips small and cold starts short.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use serde::Deserialize;

/// Why a secret could not be read. Never carries the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("cannot sign the request: {0}")]
    Signing(String),
    #[error("Secrets Manager answered {status} to {operation}: {message}")]
    Refused { operation: String, status: u16, message: String },
    #[error("cannot reach Secrets Manager: {0}")]
    Unreachable(String),
    #[error("secret {0} is not what was expected: {1}")]
    Shape(String, String),
}

/// Where Secrets Manager is and who we are: the region and role credentials Lambda provides.
#[derive(Clone)]
pub struct SecretsClient {
    region: String,
    endpoint: String,
    credentials: Credentials,
}

impl std::fmt::Debug for SecretsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsClient").field("region", &self.region).field("endpoint", &self.endpoint).finish()
    }
}

impl SecretsClient {
    pub fn new(
        region: &str,
        endpoint: &str,
        access_key: &str,
        secret_key: &str,
        session_token: Option<String>,
    ) -> Self {
        SecretsClient {
            region: region.to_owned(),
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            credentials: Credentials::new(access_key, secret_key, session_token, None, "environment"),
        }
    }

    /// From the variables Lambda sets (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`); `AWS_ENDPOINT_URL_SECRETS_MANAGER` or `AWS_ENDPOINT_URL` point
    /// elsewhere (an emulator).
    pub fn from_env() -> Result<SecretsClient, SecretError> {
        let var = |name: &'static str| std::env::var(name).map_err(|_| SecretError::Missing(name));
        let region = var("AWS_REGION").or_else(|_| var("AWS_DEFAULT_REGION"))?;
        let endpoint = var("AWS_ENDPOINT_URL_SECRETS_MANAGER")
            .or_else(|_| var("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|_| format!("https://secretsmanager.{region}.amazonaws.com"));
        Ok(Self::new(
            &region,
            &endpoint,
            &var("AWS_ACCESS_KEY_ID")?,
            &var("AWS_SECRET_ACCESS_KEY")?,
            var("AWS_SESSION_TOKEN").ok(),
        ))
    }

    /// One Secrets Manager operation (its JSON protocol), signed with SigV4.
    pub fn call(&self, operation: &str, body: &serde_json::Value) -> Result<serde_json::Value, SecretError> {
        let body = body.to_string();
        let target = format!("secretsmanager.{operation}");
        let headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target.as_str())];
        let identity = self.credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("secretsmanager")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| SecretError::Signing(e.to_string()))?
            .into();
        let url = format!("{}/", self.endpoint);
        let signable =
            SignableRequest::new("POST", &url, headers.iter().copied(), SignableBody::Bytes(body.as_bytes()))
                .map_err(|e| SecretError::Signing(e.to_string()))?;
        let (instructions, _) = sign(signable, &params).map_err(|e| SecretError::Signing(e.to_string()))?.into_parts();
        let mut request = ureq::http::Request::builder().method("POST").uri(&url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let mut request = request.body(body).map_err(|e| SecretError::Signing(e.to_string()))?;
        instructions.apply_to_request_http1x(&mut request);

        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .http_status_as_error(false)
            .build()
            .into();
        let mut response = agent.run(request).map_err(|e| SecretError::Unreachable(e.to_string()))?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().map_err(|e| SecretError::Unreachable(e.to_string()))?;
        if status != 200 {
            // Error bodies name the problem (AccessDenied, ResourceNotFound), never a secret value.
            let message: String = text.chars().take(300).collect();
            return Err(SecretError::Refused { operation: operation.to_owned(), status, message });
        }
        serde_json::from_str(&text).map_err(|e| SecretError::Unreachable(format!("not JSON: {e}")))
    }

    /// The `SecretString` of a secret.
    pub fn secret_string(&self, secret_id: &str) -> Result<String, SecretError> {
        let answer = self.call("GetSecretValue", &serde_json::json!({ "SecretId": secret_id }))?;
        answer["SecretString"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| SecretError::Shape(secret_id.to_owned(), "no SecretString".into()))
    }
}

/// The credentials in an RDS-managed secret.
#[derive(Deserialize)]
pub struct DbCredentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for DbCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbCredentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

impl DbCredentials {
    pub fn parse(secret_id: &str, text: &str) -> Result<DbCredentials, SecretError> {
        serde_json::from_str(text)
            .map_err(|_| SecretError::Shape(secret_id.to_owned(), "expected {\"username\", \"password\"}".into()))
    }
}
