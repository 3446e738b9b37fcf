//! Integration tests of promo-core on a real PostgreSQL (an ephemeral cluster, or DATABASE_URL).

mod helpers;
mod store;
