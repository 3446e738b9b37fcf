//! Test helpers: a fresh, migrated database per test on the shared server, and row builders.

use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Utc};
use promo_core::domain::{Code, NewPromoCode, Owner, PromoCode, PromoCodePatch};
use promo_core::store::{MIGRATOR, Store, StoreError};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

/// A store on a database of its own, with the migrations applied.
pub async fn fresh_store() -> Store {
    Store::new(fresh_pool(8).await)
}

/// A pool of `size` connections on a fresh, migrated database.
pub async fn fresh_pool(size: u32) -> PgPool {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let server = ephemeral_pg::shared_server_url().unwrap_or_else(|e| panic!("no PostgreSQL for the tests: {e}"));
    let name = format!("test_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
    let mut admin = PgConnection::connect(&server).await.expect("connect to the test server");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create database");
    admin.close().await.ok();

    let options = PgConnectOptions::from_str(&server).expect("server URL").database(&name);
    let pool = PgPoolOptions::new().max_connections(size).connect_with(options).await.expect("connect");
    MIGRATOR.run(&pool).await.expect("migrate");
    pool
}

pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).expect("test timestamp").with_timezone(&Utc)
}

/// A row as the tests write it straight into the table, to control `created_at` and the past.
#[derive(Debug, Clone)]
pub struct Seed {
    pub code: String,
    pub owner: String,
    pub discount_bp: i32,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub active: bool,
}

pub async fn seed(pool: &PgPool, rows: &[Seed]) {
    for row in rows {
        sqlx::query(
            "INSERT INTO promo_codes (code, owner, discount_bp, expires_at, created_at, updated_at, active) \
             VALUES ($1, $2, $3, $4, $5, $5, $6)",
        )
        .bind(&row.code)
        .bind(&row.owner)
        .bind(row.discount_bp)
        .bind(row.expires_at)
        .bind(row.created_at)
        .bind(row.active)
        .execute(pool)
        .await
        .expect("seed row");
    }
}

/// Store writes on behalf of a back-office user, for tests that are not about the audit trail.
pub trait StoreAsAdmin {
    async fn insert_as_admin(&self, new: &NewPromoCode) -> Result<PromoCode, StoreError>;
    async fn patch_as_admin(
        &self,
        code: &Code,
        patch: &PromoCodePatch,
        version: Option<i32>,
    ) -> Result<PromoCode, StoreError>;
}

pub fn back_office() -> Owner {
    Owner::parse("back-office").expect("owner")
}

impl StoreAsAdmin for Store {
    async fn insert_as_admin(&self, new: &NewPromoCode) -> Result<PromoCode, StoreError> {
        self.insert(new, &back_office()).await
    }

    async fn patch_as_admin(
        &self,
        code: &Code,
        patch: &PromoCodePatch,
        version: Option<i32>,
    ) -> Result<PromoCode, StoreError> {
        self.patch(code, patch, version.as_ref().map(std::slice::from_ref), &back_office()).await
    }
}
