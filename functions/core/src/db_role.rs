//! The database role the functions connect as: read and write the application's tables, and
//! nothing else (no DDL, no migrations table, not the master user). `migrate`, which alone
//! connects as the master user, calls [`ensure_app_role`] after every run of the migrations, so
//! a table a migration adds is granted at once, and the role's password is always the one in
//! the application's secret.
//!
//! The password reaches PostgreSQL only as a SCRAM-SHA-256 verifier computed here (RFC 5802,
//! RFC 7677; the form `ALTER ROLE ... PASSWORD` accepts and stores as is), so the plain
//! password is never in a statement the server could log.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use crate::secrets::DbCredentials;

/// PostgreSQL's own default for SCRAM verifiers (`scram_iterations`).
const SCRAM_ITERATIONS: u32 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    #[error("the application role's name {0:?} must be lower-case letters, digits and '_', not starting with a digit")]
    BadName(String),
    #[error("the application role's password must be printable ASCII of at least 16 characters")]
    BadPassword,
    #[error("the application role's name must not be the user running the migrations")]
    SameAsMaster,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Creates the application role when it is missing, sets its password from `app`, and grants it
/// DML on every table of the `public` schema but the migrations' own, in one transaction.
pub async fn ensure_app_role(conn: &mut PgConnection, app: &DbCredentials) -> Result<(), RoleError> {
    let role = role_name(&app.username)?;
    if !app.password.bytes().all(|b| b.is_ascii_graphic()) || app.password.len() < 16 {
        return Err(RoleError::BadPassword);
    }
    let mut tx = sqlx::Connection::begin(conn).await?;
    let (me, database): (String, String) =
        sqlx::query_as("SELECT current_user::text, current_database()::text").fetch_one(&mut *tx).await?;
    if me == app.username {
        return Err(RoleError::SameAsMaster);
    }
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_roles WHERE rolname = $1")
        .bind(&app.username)
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        // A new role holds no attribute but LOGIN: not superuser, no CREATEDB, no CREATEROLE.
        sqlx::raw_sql(&format!("CREATE ROLE {role} LOGIN")).execute(&mut *tx).await?;
    }
    let verifier = scram_verifier(&app.password, &rand::rng().random::<[u8; 16]>(), SCRAM_ITERATIONS);
    let database = quote_identifier(&database);
    // Utility statements take no bind parameters: the verifier is base64 and digits, quoted anyway.
    let statements = format!(
        "ALTER ROLE {role} WITH LOGIN PASSWORD {password};
         GRANT CONNECT ON DATABASE {database} TO {role};
         REVOKE CREATE ON DATABASE {database} FROM {role};
         REVOKE CREATE ON SCHEMA public FROM PUBLIC;
         GRANT USAGE ON SCHEMA public TO {role};
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};
         GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role};
         REVOKE ALL ON TABLE _sqlx_migrations FROM {role};",
        password = quote_literal(&verifier),
    );
    sqlx::raw_sql(&statements).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// The role name, as a quoted identifier, when it is a plain lower-case name.
fn role_name(name: &str) -> Result<String, RoleError> {
    let mut chars = name.chars();
    let plain = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
        && !name.starts_with("pg_")
        && !name.starts_with("rds");
    if !plain {
        return Err(RoleError::BadName(name.to_owned()));
    }
    Ok(quote_identifier(name))
}

fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (ASCII, so SASLprep leaves it
/// as it is): `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
pub fn scram_verifier(password: &str, salt: &[u8], iterations: u32) -> String {
    let salted = pbkdf2_sha256(password.as_bytes(), salt, iterations);
    let client_key = hmac_sha256(&salted, b"Client Key");
    let stored_key = Sha256::digest(client_key);
    let server_key = hmac_sha256(&salted, b"Server Key");
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored_key),
        STANDARD.encode(server_key)
    )
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// PBKDF2-HMAC-SHA256 (RFC 8018) for one 32-byte block: what SCRAM's `Hi()` is.
fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut first = salt.to_vec();
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac_sha256(password, &first);
    let mut out = u;
    for _ in 1..iterations {
        u = hmac_sha256(password, &u);
        out.iter_mut().zip(u).for_each(|(o, b)| *o ^= b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_lower_case_role_names_are_accepted() {
        assert_eq!(role_name("promo_app").unwrap(), "\"promo_app\"");
        for bad in ["", "Promo", "1app", "app-1", "app\"; DROP TABLE x; --", "pg_app", "rdsadmin", &"a".repeat(64)] {
            assert!(role_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pbkdf2_matches_the_rfc_7914_test_vector() {
        // RFC 7914 section 11: PBKDF2-HMAC-SHA256("passwd", "salt", 1), first 32 bytes.
        let out = pbkdf2_sha256(b"passwd", b"salt", 1);
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc");
    }
}
