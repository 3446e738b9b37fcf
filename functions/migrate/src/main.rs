//! The `migrate` Lambda function: applies the migrations embedded in it, then reports every
//! version the database now has. The deployer invokes it before moving the `live` aliases.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use promo_core::startup;
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let options = startup::or_exit(startup::database_options_from_env());
    let options = &options;
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<Value>| async move {
        let pool = PgPoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        promo_core::store::MIGRATOR.run(&pool).await?;
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
                .fetch_all(&pool)
                .await?;
        pool.close().await;
        lambda_runtime::tracing::info!(?applied, "migrations applied");
        Ok::<_, Error>(json!({ "applied": applied }))
    }))
    .await
}
