//! promo-shared: the few names both the Lambda functions and the deployer need, and nothing
//! else, so that the deployer builds without sqlx, jsonwebtoken or lambda_http.

pub mod cors;
pub mod jwks;
pub mod routes;

/// The OAuth scope that makes a caller an admin when the environment names none.
pub const DEFAULT_ADMIN_SCOPE: &str = "promo:admin";

/// The variable naming, on `migrate` alone, the secret of the role the API functions connect
/// as: migrate creates that role and sets its password.
pub const DB_APP_SECRET_VARIABLE: &str = "DB_APP_SECRET_ARN";
