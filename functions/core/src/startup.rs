//! What every function does once per Lambda instance, before its first request: read the
//! configuration from the environment and build the pool and the token verifier.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;

use crate::api::App;
use crate::auth::{AuthConfig, Verifier};
use crate::store::{GuessLimit, Store, lambda_pool};

/// A configuration the function cannot start with; the message names the variable.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("configuration error: {0}")]
    Auth(#[from] crate::auth::ConfigError),
    #[error("configuration error: DATABASE_URL is not set")]
    NoDatabase,
    #[error("configuration error: DATABASE_URL is not a PostgreSQL URL")]
    BadDatabaseUrl,
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
    Ok(App { store: Store::new(pool), verifier: Verifier::new(auth), guess_limit: guess_limit_from_env()? })
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
