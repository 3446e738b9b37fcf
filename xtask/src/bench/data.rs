//! The benchmark's data: a database of promo codes made by one INSERT .. SELECT per 100,000
//! rows (all owned by [`OWNER`], none expired), and the local issuer's JWKS on loopback.

use std::convert::Infallible;
use std::str::FromStr;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection};

use super::OWNER;
use crate::local::local_jwks;

pub const DATABASE: &str = "bench";

/// The `n`-th code of the data set (1-based).
pub fn code(n: u64) -> String {
    format!("B{n:07}")
}

/// Creates the `bench` database, migrates it and fills it with `codes` codes.
pub async fn load(cluster: &ephemeral_pg::Cluster, codes: u64) -> anyhow::Result<PgConnectOptions> {
    let mut admin = PgConnection::connect(&cluster.url("postgres")).await?;
    sqlx::query(&format!("CREATE DATABASE {DATABASE}")).execute(&mut admin).await?;
    admin.close().await?;
    let options = PgConnectOptions::from_str(&cluster.url(DATABASE))?;
    let pool = PgPoolOptions::new().max_connections(2).connect_with(options.clone()).await?;
    promo_core::store::MIGRATOR.run(&pool).await?;
    let started = std::time::Instant::now();
    let mut first = 1u64;
    while first <= codes {
        let last = (first + 99_999).min(codes);
        // Spread keys so that every sort has a realistic order that is not the insert order.
        sqlx::query(
            "INSERT INTO promo_codes (code, owner, discount_bp, expires_at, created_at, updated_at)
             SELECT 'B' || lpad(i::text, 7, '0'), $3,
                    100 + (i * 7919) % 9901,
                    timestamptz '2030-01-01' + (i * 104729 % 1000000) * interval '1 minute',
                    timestamptz '2026-01-01' + (i * 15485863 % 1000000) * interval '1 second',
                    timestamptz '2026-01-01'
             FROM generate_series($1::bigint, $2::bigint) AS i",
        )
        .bind(first as i64)
        .bind(last as i64)
        .bind(OWNER)
        .execute(&pool)
        .await?;
        first = last + 1;
    }
    sqlx::query("VACUUM ANALYZE promo_codes").execute(&pool).await?;
    pool.close().await;
    println!("    {codes} codes loaded in {:.1?}", started.elapsed());
    Ok(options)
}

/// The local issuer's key set over HTTP, as an identity provider serves it.
pub struct JwksServer {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    pub async fn start() -> anyhow::Result<JwksServer> {
        let jwks = Bytes::from(serde_json::to_vec(&local_jwks()?)?);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/.well-known/jwks.json", listener.local_addr()?);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let jwks = jwks.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |_request| {
                        let jwks = jwks.clone();
                        async move { Ok::<_, Infallible>(hyper::Response::new(Full::new(jwks))) }
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Ok(JwksServer { url, task })
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
