//! What every function does once per Lambda instance, before its first request: read the
//! configuration from the environment and build the pool and the token verifier.

use std::str::FromStr;
use std::sync::Arc;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::secrets::{DbCredentials, SecretsClient};

use crate::api::App;
use crate::auth::{AuthConfig, Verifier};
use crate::cors::Cors;
use crate::store::{Credentials, GuessLimit, Store, lambda_pool};

/// A configuration the function cannot start with; the message names the variable.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("configuration error: {0}")]
    Auth(#[from] crate::auth::ConfigError),
    #[error("configuration error: set DATABASE_URL, or DB_SECRET_ARN with DB_HOST and DB_NAME")]
    NoDatabase,
    #[error("configuration error: {0} is not set")]
    Missing(&'static str),
    #[error("configuration error: DB_SSL_MODE must be one of disable, allow, prefer, require, verify-ca, verify-full")]
    BadSslMode,
    #[error("configuration error: {0}")]
    Secret(#[from] crate::secrets::SecretError),
    #[error("configuration error: DATABASE_URL is not a PostgreSQL URL")]
    BadDatabaseUrl,
    #[error("configuration error: {0}")]
    Cors(#[from] crate::cors::CorsError),
    #[error("configuration error: {0} must be a whole number of at least 1")]
    BadNumber(&'static str),
}

/// The guess limit from `GUESS_LIMIT` (not_found answers allowed per window, default 20) and
/// `GUESS_WINDOW_SECONDS` (default 60).
pub fn guess_limit_from_env() -> Result<GuessLimit, StartupError> {
    let number = |name: &'static str, default: u32| -> Result<u32, StartupError> {
        match std::env::var(name) {
            Err(_) => Ok(default),
            Ok(text) => text.trim().parse::<u32>().ok().filter(|n| *n >= 1).ok_or(StartupError::BadNumber(name)),
        }
    };
    let default = GuessLimit::default();
    Ok(GuessLimit {
        max: number("GUESS_LIMIT", default.max)?,
        window: std::time::Duration::from_secs(u64::from(number(
            "GUESS_WINDOW_SECONDS",
            default.window.as_secs() as u32,
        )?)),
    })
}

/// The database connection options. Locally: `DATABASE_URL`. In AWS: `DB_HOST`, `DB_NAME`,
/// `DB_PORT` (default 5432) and `DB_SECRET_ARN`, the RDS-managed secret holding the user and
/// password, read now from Secrets Manager; TLS is required (`DB_SSL_MODE` to override). No
/// password is ever in a variable, and none is logged.
pub fn database_options_from_env() -> Result<PgConnectOptions, StartupError> {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return PgConnectOptions::from_str(&url).map_err(|_| StartupError::BadDatabaseUrl);
    }
    let Ok(secret_arn) = std::env::var("DB_SECRET_ARN") else {
        return Err(StartupError::NoDatabase);
    };
    let var = |name: &'static str| std::env::var(name).map_err(|_| StartupError::Missing(name));
    let host = var("DB_HOST")?;
    let port = match std::env::var("DB_PORT") {
        Ok(p) => p.parse::<u16>().map_err(|_| StartupError::BadNumber("DB_PORT"))?,
        Err(_) => 5432,
    };
    let ssl_mode = std::env::var("DB_SSL_MODE").unwrap_or_else(|_| "require".into());
    let ssl_mode = PgSslMode::from_str(&ssl_mode).map_err(|_| StartupError::BadSslMode)?;
    let client = SecretsClient::from_env()?;
    let credentials = DbCredentials::parse(&secret_arn, &client.secret_string(&secret_arn)?)?;
    Ok(database_options(&host, port, &var("DB_NAME")?, &credentials, ssl_mode))
}

/// How to read the database's credentials again, when they come from a secret (`DB_SECRET_ARN`).
pub fn credentials_from_env() -> Option<Credentials> {
    std::env::var_os("DB_SECRET_ARN")?;
    Some(Arc::new(|| database_options_from_env().map_err(|e| e.to_string())))
}

/// Connection options from the parts the deployer configures and the secret's credentials.
pub fn database_options(
    host: &str,
    port: u16,
    database: &str,
    credentials: &DbCredentials,
    ssl_mode: PgSslMode,
) -> PgConnectOptions {
    PgConnectOptions::new()
        .host(host)
        .port(port)
        .database(database)
        .username(&credentials.username)
        .password(&credentials.password)
        .ssl_mode(ssl_mode)
}

/// The token verifier's configuration; an HS256 key named by `AUTH_HS256_SECRET_ARN` is read
/// from Secrets Manager now, so it never sits in the environment.
pub fn auth_config_from_env() -> Result<AuthConfig, StartupError> {
    let from_secret = match std::env::var("AUTH_HS256_SECRET_ARN") {
        Ok(arn) => {
            if std::env::var_os("AUTH_HS256_SECRET").is_some() {
                return Err(StartupError::Auth(crate::auth::ConfigError::BothKeySources));
            }
            Some(SecretsClient::from_env()?.secret_string(&arn)?)
        }
        Err(_) => None,
    };
    Ok(AuthConfig::from_lookup(|name| match (name, &from_secret) {
        ("AUTH_HS256_SECRET", Some(secret)) => Some(secret.clone()),
        _ => std::env::var(name).ok(),
    })?)
}

/// The application a function serves: its store (a lazy pool) and its verifier.
pub fn app_from_env() -> Result<App, StartupError> {
    let auth = auth_config_from_env()?;
    let pool = lambda_pool(database_options_from_env()?);
    let store = match credentials_from_env() {
        Some(credentials) => Store::with_credentials(pool, credentials),
        None => Store::new(pool),
    };
    Ok(App { store, verifier: Verifier::new(auth), guess_limit: guess_limit_from_env()?, cors: Cors::from_env()? })
}

/// The value, or a one-line message on stderr and exit status 1: a function that cannot be
/// configured must fail its init visibly, naming the variable, not at its first request.
pub fn or_exit<T>(result: Result<T, StartupError>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(1);
        }
    }
}
