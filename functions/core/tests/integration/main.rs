//! Integration tests of promo-core on a real PostgreSQL (an ephemeral cluster, or DATABASE_URL),
//! with real API Gateway REST proxy events and real signed tokens.

mod api;
mod auth;
mod cors;
mod db_role;
mod events;
mod helpers;
mod redeem;
mod secrets;
mod store;
mod tokens;
