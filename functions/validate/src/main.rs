//! The `validate` Lambda function: serves POST /validations.

use lambda_http::{Error, service_fn};
use promo_core::handlers::handle;
use promo_core::routes::Function;
use promo_core::startup;

// One thread: an instance serves one request at a time, and a multi-threaded runtime only adds
// wake-ups between its threads to each request (measured with `cargo xtask bench`).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    // Built once per instance, outside the handler: the pool (lazy) and the token verifier.
    let app = startup::or_exit(startup::app_from_env());
    let app = &app;
    lambda_http::run(service_fn(move |request| async move {
        Ok::<_, Error>(handle(app, Function::Validate, request).await)
    }))
    .await
}
