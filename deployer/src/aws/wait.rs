//! Waiting on AWS: poll at an interval that fits the resource, up to an explicit maximum.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::error::DeployError;

/// Polls `ready` now and then every `every` until it says yes, for at most `max`.
pub async fn until<F, Fut>(what: &str, every: Duration, max: Duration, mut ready: F) -> Result<(), DeployError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, DeployError>>,
{
    let started = Instant::now();
    loop {
        if ready().await? {
            return Ok(());
        }
        if started.elapsed() + every > max {
            return Err(DeployError::Refused(format!(
                "gave up waiting for {what} after {} s: it may still finish; run the command again to go on",
                started.elapsed().as_secs()
            )));
        }
        tokio::time::sleep(every).await;
    }
}
