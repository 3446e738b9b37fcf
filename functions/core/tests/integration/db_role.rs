//! The role the functions connect as: every route works through it, and nothing else does (no
//! DDL, no migrations table). Roles belong to the whole server, so each test names its own.

use promo_core::api::App;
use promo_core::db_role::{ensure_app_role, scram_verifier};
use promo_core::routes::Function;
use promo_core::secrets::DbCredentials;
use promo_core::store::Store;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};

use crate::events::{Event, app, call};
use crate::tokens::Issuer;

fn credentials(username: &str) -> DbCredentials {
    DbCredentials { username: username.to_owned(), password: "Zq8vN3kP0xW7rT2mY5bL9cH4".to_owned() }
}

/// A unique role name for this test run.
fn role(label: &str) -> String {
    format!("app_{label}_{}", std::process::id())
}

/// A pool on the same database as `master`, connected as `username`.
async fn pool_as(master: &PgPool, username: &str) -> PgPool {
    let options = master.connect_options().as_ref().clone().username(username);
    PgPoolOptions::new().max_connections(4).connect_with(options).await.expect("connect as the app role")
}

async fn set_up(master: &PgPool, username: &str) {
    let mut conn = master.acquire().await.unwrap();
    ensure_app_role(&mut conn, &credentials(username)).await.expect("ensure the app role");
}

/// SQLSTATE 42501: insufficient_privilege (or, for DROP, "must be owner").
async fn refused(pool: &PgPool, sql: &str) -> bool {
    match sqlx::raw_sql(sql).execute(pool).await {
        Err(sqlx::Error::Database(e)) => e.code().as_deref() == Some("42501"),
        _ => false,
    }
}

#[tokio::test]
async fn every_route_works_as_the_app_role() {
    let issuer = Issuer::start().await;
    let master = app(&issuer).await;
    let name = role("routes");
    set_up(master.store.pool(), &name).await;
    let app = App { store: Store::new(pool_as(master.store.pool(), &name).await), ..master.clone() };
    let user: String = sqlx::query_scalar("SELECT current_user::text").fetch_one(app.store.pool()).await.unwrap();
    assert_eq!(user, name);

    let admin = issuer.admin();
    let body = json!({"code": "SUMMER25", "owner": "alice", "discount_percentage": 10, "expires_at": "2031-01-01T00:00:00Z", "max_redemptions": 5});
    let created = call(&app, Function::Create, &Event::fixture("create").bearer(&admin).json_body(&body)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let patch =
        Event::fixture("update").bearer(&admin).header("If-Match", "\"1\"").json_body(&json!({"description": "x"}));
    assert_eq!(call(&app, Function::Update, &patch).await.status, 200);
    assert_eq!(call(&app, Function::List, &Event::fixture("list").bearer(&admin)).await.status, 200);
    assert_eq!(call(&app, Function::List, &Event::fixture("get").bearer(&admin)).await.status, 200);
    let alice = issuer.user("alice");
    let validate = Event::fixture("validate").bearer(&alice).json_body(&json!({"code": "SUMMER25"}));
    assert_eq!(call(&app, Function::Validate, &validate).await.body["valid"], true);
    let guess = Event::fixture("validate").bearer(&alice).json_body(&json!({"code": "NOSUCH99"}));
    assert_eq!(call(&app, Function::Validate, &guess).await.body["reason"], "not_found");
    let redeem = Event::fixture("redeem").bearer(&alice).json_body(&json!({"code": "SUMMER25", "order_id": "o-1"}));
    assert_eq!(call(&app, Function::Redeem, &redeem).await.status, 201);
    let events = call(&app, Function::List, &Event::fixture("events").code("SUMMER25").bearer(&admin)).await;
    assert_eq!(events.body["data"].as_array().map(Vec::len), Some(3), "{}", events.body);
}

#[tokio::test]
async fn the_app_role_can_change_no_schema_nor_read_the_migrations() {
    let issuer = Issuer::start().await;
    let master = app(&issuer).await;
    let name = role("ddl");
    set_up(master.store.pool(), &name).await;
    let as_app = pool_as(master.store.pool(), &name).await;
    for sql in [
        "CREATE TABLE stolen (x int)",
        "DROP TABLE promo_codes",
        "ALTER TABLE promo_codes ADD COLUMN x int",
        "TRUNCATE promo_codes",
        "SELECT * FROM _sqlx_migrations",
        "CREATE SCHEMA elsewhere",
        "CREATE ROLE another LOGIN",
    ] {
        assert!(refused(&as_app, sql).await, "{sql} must be refused");
    }
    // A table a later migration adds is granted when migrate runs again.
    sqlx::raw_sql("CREATE TABLE added_later (x int)").execute(master.store.pool()).await.unwrap();
    assert!(refused(&as_app, "SELECT * FROM added_later").await);
    set_up(master.store.pool(), &name).await;
    sqlx::raw_sql("INSERT INTO added_later VALUES (1)").execute(&as_app).await.expect("granted on the next run");
}

#[tokio::test]
async fn the_master_user_is_never_made_the_app_role_and_names_are_checked() {
    let issuer = Issuer::start().await;
    let master = app(&issuer).await;
    let me: String = sqlx::query_scalar("SELECT current_user::text").fetch_one(master.store.pool()).await.unwrap();
    let mut conn = master.store.pool().acquire().await.unwrap();
    assert!(ensure_app_role(&mut conn, &credentials(&me)).await.is_err());
    assert!(ensure_app_role(&mut conn, &credentials("x\"; DROP TABLE promo_codes; --")).await.is_err());
    let short = DbCredentials { username: role("short"), password: "short".into() };
    assert!(ensure_app_role(&mut conn, &short).await.is_err());
}

/// The verifier is the one PostgreSQL itself stores for the same password and salt.
#[tokio::test]
async fn the_scram_verifier_is_what_postgresql_computes() {
    let issuer = Issuer::start().await;
    let master = app(&issuer).await;
    let options = master.store.pool().connect_options().as_ref().clone();
    let mut conn = PgConnection::connect_with(&options).await.unwrap();
    let name = role("scram");
    let password = "Zq8vN3kP0xW7rT2mY5bL9cH4";
    sqlx::raw_sql(&format!("SET password_encryption = 'scram-sha-256'; CREATE ROLE {name} PASSWORD '{password}'"))
        .execute(&mut conn)
        .await
        .unwrap();
    let stored: String = sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
        .bind(&name)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    // SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
    let (head, _) = stored.split_once('$').and_then(|(_, rest)| rest.split_once('$')).unwrap();
    let (iterations, salt) = head.split_once(':').unwrap();
    use base64::Engine;
    let salt = base64::engine::general_purpose::STANDARD.decode(salt).unwrap();
    assert_eq!(scram_verifier(password, &salt, iterations.parse().unwrap()), stored);
}
