//! The functions' AWS start-up against the emulator: database credentials from the RDS-managed
//! secret in Secrets Manager, never from a variable.

#[tokio::test(flavor = "multi_thread")]
async fn a_function_reads_its_database_credentials_from_the_rds_secret_not_from_a_variable() {
    use promo_core::secrets::{DbCredentials, SecretsClient};
    use sqlx::Connection;

    let moto = aws_emulator::Emulator::start().unwrap_or_else(|e| panic!("{e}"));
    let secrets = SecretsClient::new("us-east-1", &moto.url, "testing", "testing", None);
    let created = secrets
        .call("CreateSecret", &serde_json::json!({"Name": "rds!cluster-test", "SecretString": r#"{"username":"postgres","password":"not-needed-locally"}"#}))
        .expect("create the secret");
    let arn = created["ARN"].as_str().expect("arn").to_owned();

    let text = secrets.secret_string(&arn).expect("read the secret");
    let credentials = DbCredentials::parse(&arn, &text).unwrap();
    assert!(!format!("{credentials:?}").contains("not-needed-locally"), "Debug never shows the password");

    let server = ephemeral_pg::shared_server_url().expect("a PostgreSQL for the test");
    let port: u16 =
        server.rsplit(':').next().and_then(|p| p.split('/').next()).and_then(|p| p.parse().ok()).expect("port");
    let options = promo_core::startup::database_options(
        "127.0.0.1",
        port,
        "postgres",
        &credentials,
        sqlx::postgres::PgSslMode::Disable,
    );
    let mut connection =
        sqlx::PgConnection::connect_with(&options).await.expect("connect with the secret's credentials");
    let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut connection).await.unwrap();
    assert_eq!(one, 1);

    let missing = secrets.secret_string("arn:aws:secretsmanager:us-east-1:123456789012:secret:nope").unwrap_err();
    assert!(
        matches!(&missing, promo_core::secrets::SecretError::Refused { message, .. } if message.contains("ResourceNotFound")),
        "{missing}"
    );
}
