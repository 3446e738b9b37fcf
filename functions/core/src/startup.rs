//! What every function does once per Lambda instance, before its first request: read the
//! configuration from the environment and build the pool and the token verifier.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;

use crate::api::App;
use crate::auth::{AuthConfig, Verifier};
use crate::store::{Store, lambda_pool};

/// A configuration the function cannot start with; the message names the variable.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("configuration error: {0}")]
    Auth(#[from] crate::auth::ConfigError),
    #[error("configuration error: DATABASE_URL is not set")]
    NoDatabase,
    #[error("configuration error: DATABASE_URL is not a PostgreSQL URL")]
    BadDatabaseUrl,
}

/// The database connection options from `DATABASE_URL`. The URL itself is never logged: it may
/// hold a password.
pub fn database_options_from_env() -> Result<PgConnectOptions, StartupError> {
    let url = std::env::var("DATABASE_URL").map_err(|_| StartupError::NoDatabase)?;
    PgConnectOptions::from_str(&url).map_err(|_| StartupError::BadDatabaseUrl)
}

/// The application a function serves: its store (a lazy pool) and its verifier.
pub fn app_from_env() -> Result<App, StartupError> {
    let auth = AuthConfig::from_env()?;
    let pool = lambda_pool(database_options_from_env()?);
    Ok(App {
        store: Store::new(pool),
        verifier: Verifier::new(auth),
    })
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
