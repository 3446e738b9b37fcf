//! Retries for the exact errors that mean "not yet", never for every error of a type
//! (terraform-provider-aws's `retryFunctionOp` is the model).

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;

/// API Gateway's control-plane quotas are fixed (one DeleteRestApi per 30 s per account, one
/// CreateDeployment per 5 s, ...): a deploy must outlast them, not fail on them.
const THROTTLE_PATIENCE: Duration = Duration::from_secs(5 * 60);
const LONGEST_PAUSE: Duration = Duration::from_secs(30);
/// How long Lambda may keep a function Pending or an update InProgress.
const CONFLICT_PATIENCE: Duration = Duration::from_secs(5 * 60);

/// Whether a call failed with the error `code`. Throttling and conflicts are the same error
/// code on every operation of a service, and the SDK has no typed check shared by all of them.
fn failed_with<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>, code: &str) -> bool {
    error.as_service_error().and_then(|e| e.code()) == Some(code)
}

/// The pause a throttled answer asks for in its `Retry-After` header.
fn retry_after<E>(error: &SdkError<E, HttpResponse>) -> Option<Duration> {
    let header = error.raw_response()?.headers().get("Retry-After")?;
    header.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Runs an API Gateway call, again after each `TooManyRequestsException`, pausing as long as
/// it says (or doubling from `first_pause`), for up to five minutes.
pub async fn throttled<T, E, F, Fut>(first_pause: Duration, call: F) -> Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
{
    let mut pause = first_pause;
    let next = |error: &SdkError<E, HttpResponse>| {
        let wait = retry_after(error).unwrap_or(pause).min(LONGEST_PAUSE);
        pause = (pause * 2).min(LONGEST_PAUSE);
        wait
    };
    again_while("TooManyRequestsException", THROTTLE_PATIENCE, next, call).await
}

/// Runs a Lambda call, again while it fails with `ResourceConflictException`: the function is
/// still Pending, or another update is InProgress.
pub async fn unless_busy<T, E, F, Fut>(every: Duration, call: F) -> Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
{
    again_while("ResourceConflictException", CONFLICT_PATIENCE, |_| every, call).await
}

/// Runs `call` again while it fails with the error `code`, pausing as `pause` says, until
/// `patience` has run out; then the last answer is the answer.
async fn again_while<T, E, F, Fut>(
    code: &str,
    patience: Duration,
    mut pause: impl FnMut(&SdkError<E, HttpResponse>) -> Duration,
    mut call: F,
) -> Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
{
    let started = Instant::now();
    loop {
        match call().await {
            Err(e) if failed_with(&e, code) && started.elapsed() < patience => tokio::time::sleep(pause(&e)).await,
            result => return result,
        }
    }
}
