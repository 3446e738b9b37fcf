//! `cargo xtask dev`: the whole service on this machine. An embedded PostgreSQL (or
//! `DATABASE_URL`), the migrations, the local issuer's JWKS, and every route of the route table
//! served at `http://127.0.0.1:<port>` through the local API Gateway to the real handlers.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use promo_core::api::App;
use promo_core::auth::Verifier;
use promo_core::store::{MIGRATOR, Store};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection};
use tokio::signal::unix::{SignalKind, signal};

use crate::gateway::{self, Gateway};
use crate::local::{LocalConfig, auth_config, dev_dir, local_jwks};

#[derive(clap::Args)]
pub struct Args {
    /// The port on 127.0.0.1 to serve the API on (default: environments/local.yaml's `port`).
    #[arg(long)]
    pub port: Option<u16>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let local = LocalConfig::load()?;
    let port = args.port.unwrap_or(local.port);
    // Bind before anything slow, so a busy port is the first and only thing the user hears.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => anyhow::anyhow!(
            "port {port} on 127.0.0.1 is already in use (another `cargo xtask dev`?): stop it or pick another with --port"
        ),
        _ => anyhow::anyhow!("cannot listen on 127.0.0.1:{port}: {e}"),
    })?;
    listener.set_nonblocking(true)?;

    // The cluster is started on this thread, which lives until the process ends: if the process
    // is killed outright, the kernel signals PostgreSQL to shut down too.
    let (database, cluster) = match std::env::var("DATABASE_URL") {
        Ok(url) => {
            println!("using DATABASE_URL");
            (PgConnectOptions::from_str(&url).context("DATABASE_URL is not a PostgreSQL URL")?, None)
        }
        Err(_) => {
            let data_dir = dev_dir().join("pgdata");
            let fresh = !data_dir.join("PG_VERSION").exists();
            if fresh {
                println!("creating the embedded PostgreSQL cluster in {} (first start only)", data_dir.display());
            }
            let cluster =
                ephemeral_pg::Cluster::start(ephemeral_pg::Options { data_dir: Some(data_dir), ..Default::default() })?;
            let options = PgConnectOptions::from_str(&cluster.url(&local.database))?;
            (options, Some(cluster))
        }
    };

    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(serve(listener, port, &local, database, cluster.is_some()));
    // In-flight work is over: stop the database last.
    drop(runtime);
    if let Some(cluster) = cluster {
        cluster.stop();
    }
    result
}

async fn serve(
    listener: std::net::TcpListener,
    port: u16,
    local: &LocalConfig,
    database: PgConnectOptions,
    embedded: bool,
) -> anyhow::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;

    if embedded {
        create_database_if_missing(&database, &local.database).await?;
    }
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(database)
        .await
        .context("cannot connect to the database")?;
    MIGRATOR.run(&pool).await.context("applying the migrations")?;

    let jwks_url = format!("http://127.0.0.1:{port}{}", gateway::JWKS_PATH);
    let auth = auth_config(local, &jwks_url)?;
    let gateway = Arc::new(Gateway {
        app: App {
            store: Store::new(pool),
            verifier: Verifier::new(auth),
            guess_limit: promo_core::startup::guess_limit_from_env()?,
            cors: local.cors()?,
        },
        jwks: serde_json::to_string(&local_jwks()?)?,
    });

    let listener = tokio::net::TcpListener::from_std(listener)?;
    println!("API: http://127.0.0.1:{port}");
    println!("tokens: cargo xtask token --sub <user> [--admin]; stop with Ctrl-C");

    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let gateway = gateway.clone();
                connections.spawn(async move {
                    let service = service_fn(move |request| gateway::serve(gateway.clone(), request));
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
        while connections.try_join_next().is_some() {}
    }
    println!("stopping");
    drop(listener);
    // Give requests in flight a moment, then drop the connections that are still open.
    let _ =
        tokio::time::timeout(Duration::from_secs(2), async { while connections.join_next().await.is_some() {} }).await;
    connections.abort_all();
    Ok(())
}

async fn create_database_if_missing(options: &PgConnectOptions, name: &str) -> anyhow::Result<()> {
    if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') || name.is_empty() {
        bail!("environments/local.yaml: database must be lower-case letters, digits and '_', got {name:?}");
    }
    let mut admin = PgConnection::connect_with(&options.clone().database("postgres")).await?;
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&mut admin)
        .await?;
    if exists.is_none() {
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await?;
    }
    admin.close().await?;
    Ok(())
}
