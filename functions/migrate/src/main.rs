//! The `migrate` Lambda function: applies the migrations embedded in it as the cluster's master
//! user, then makes sure the application role exists with the password of its secret and DML
//! on every table (so a table a migration adds is granted at once), and reports every version
//! the database now has. The deployer invokes it before moving the `live` aliases.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use promo_core::{db_role, startup};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    // Fail the init visibly on a configuration that cannot work.
    startup::or_exit(startup::database_options_from_env());
    lambda_runtime::run(service_fn(|_event: LambdaEvent<Value>| run())).await
}

async fn run() -> Result<Value, Error> {
    // The credentials are read for every run: RDS rotates the master password, and a warm
    // instance must not keep trying the old one.
    let (options, app) = tokio::task::spawn_blocking(|| {
        Ok::<_, startup::StartupError>((startup::database_options_from_env()?, startup::app_credentials_from_env()?))
    })
    .await??;
    let mut conn = PgConnection::connect_with(&options).await?;
    promo_core::store::MIGRATOR.run(&mut conn).await?;
    let app_role = match &app {
        Some(app) => {
            db_role::ensure_app_role(&mut conn, app).await?;
            Some(app.username.clone())
        }
        None => None,
    };
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
        .fetch_all(&mut conn)
        .await?;
    conn.close().await?;
    lambda_runtime::tracing::info!(?applied, ?app_role, "migrations applied");
    Ok(json!({ "applied": applied, "app_role": app_role }))
}
