//! promo-core: everything the promo-code Lambda functions share.
//!
//! Data flows one way: the HTTP glue parses requests into [`domain`] types, hands them to the
//! [`store`], and renders what comes back. The domain knows nothing of SQL, HTTP or AWS.

pub mod api;
pub mod auth;
pub mod cors;
pub mod db_role;
pub mod domain;
pub mod handlers;
pub use promo_shared::routes;
pub mod secrets;
pub mod startup;
pub mod store;
