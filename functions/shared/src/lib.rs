//! promo-shared: the few names both the Lambda functions and the deployer need, and nothing
//! else, so that the deployer builds without sqlx, jsonwebtoken or lambda_http.

pub mod cors;
pub mod jwks;
pub mod routes;

/// The OAuth scope that makes a caller an admin when the environment names none.
pub const DEFAULT_ADMIN_SCOPE: &str = "promo:admin";
