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
    #[error("configuration error: DB_EXTRA_ROOT_CERT_FILE {0}: {1}")]
    ExtraRootCert(String, std::io::Error),
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

/// AWS's RDS certificate authorities (certs/README.md says where from, and its SHA-256).
pub const RDS_CA_BUNDLE: &[u8] = include_bytes!("../certs/rds-global-bundle.pem");

/// The CAs the database's certificate must chain to: AWS's RDS bundle, and the CAs in the PEM
/// file `DB_EXTRA_ROOT_CERT_FILE` names, when set (the emulator's test CA; never set in AWS).
pub fn database_root_certs() -> Result<Vec<u8>, StartupError> {
    let mut pem = RDS_CA_BUNDLE.to_vec();
    if let Ok(path) = std::env::var("DB_EXTRA_ROOT_CERT_FILE") {
        let extra = std::fs::read(&path).map_err(|e| StartupError::ExtraRootCert(path, e))?;
        pem.push(b'\n');
        pem.extend(extra);
    }
    Ok(pem)
}

/// The database connection options. Locally: `DATABASE_URL`. In AWS: `DB_HOST`, `DB_NAME`,
/// `DB_PORT` (default 5432) and `DB_SECRET_ARN`, the RDS-managed secret holding the user and
/// password, read now from Secrets Manager; TLS with `verify-full` against AWS's RDS CAs
/// (`DB_SSL_MODE` to override). No password is ever in a variable, and none is logged.
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
    let ssl_mode = std::env::var("DB_SSL_MODE").unwrap_or_else(|_| "verify-full".into());
    let ssl_mode = PgSslMode::from_str(&ssl_mode).map_err(|_| StartupError::BadSslMode)?;
    let client = SecretsClient::from_env()?;
    let credentials = DbCredentials::parse(&secret_arn, &client.secret_string(&secret_arn)?)?;
    let options = database_options(&host, port, &var("DB_NAME")?, &credentials, ssl_mode);
    Ok(options.ssl_root_cert_from_pem(database_root_certs()?))
}

pub use promo_shared::DB_APP_SECRET_VARIABLE as APP_SECRET_VARIABLE;

/// The application role's credentials, read from the secret `DB_APP_SECRET_ARN` names; None
/// when it is not set (a local database, where everything connects as one user).
pub fn app_credentials_from_env() -> Result<Option<DbCredentials>, StartupError> {
    let Ok(arn) = std::env::var(APP_SECRET_VARIABLE) else {
        return Ok(None);
    };
    let client = SecretsClient::from_env()?;
    Ok(Some(DbCredentials::parse(&arn, &client.secret_string(&arn)?)?))
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

#[cfg(test)]
mod certs {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    use x509_cert::der::Decode;

    #[test]
    fn the_rds_bundle_parses_and_holds_cas_valid_for_years() {
        let certs: Vec<CertificateDer> =
            CertificateDer::pem_slice_iter(super::RDS_CA_BUNDLE).collect::<Result<_, _>>().expect("PEM");
        assert!(certs.len() >= 100, "{} certificates", certs.len());
        let in_ten_years = std::time::SystemTime::now() + std::time::Duration::from_secs(10 * 365 * 24 * 3600);
        let mut long_lived_roots = Vec::new();
        for der in &certs {
            webpki::anchor_from_trusted_cert(der).expect("every certificate is a usable trust anchor");
            let cert = x509_cert::Certificate::from_der(der).expect("X.509");
            let subject = cert.tbs_certificate.subject.to_string();
            if subject.contains("Root CA")
                && std::time::UNIX_EPOCH + cert.tbs_certificate.validity.not_after.to_unix_duration() > in_ten_years
            {
                long_lived_roots.push(subject);
            }
        }
        // Each commercial region has RSA2048, RSA4096 and ECC384 G1 roots valid for decades.
        for region in ["us-east-1", "eu-west-1", "ap-southeast-2"] {
            for kind in ["RSA2048 G1", "RSA4096 G1", "ECC384 G1"] {
                let name = format!("Amazon RDS {region} Root CA {kind}");
                assert!(long_lived_roots.iter().any(|s| s.contains(&name)), "{name} valid for ten more years");
            }
        }
    }
}
