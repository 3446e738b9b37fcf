//! Waiting on AWS: poll at an interval that fits the resource, up to an explicit maximum,
//! telling the person at the terminal what is being waited on and for how long.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::error::DeployError;
use crate::progress::{Event, Progress};

/// What a poll found.
pub enum Check {
    Ready,
    /// Not yet: the state it is in.
    NotYet(String),
}

/// Polls `check` now and then every `every` until it is ready, for at most `max`.
pub async fn until<F, Fut>(
    what: &str,
    every: Duration,
    max: Duration,
    progress: Progress<'_>,
    mut check: F,
) -> Result<(), DeployError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Check, DeployError>>,
{
    let started = Instant::now();
    loop {
        let state = match check().await? {
            Check::Ready => return Ok(()),
            Check::NotYet(state) => state,
        };
        if started.elapsed() + every > max {
            return Err(DeployError::Refused(format!(
                "gave up waiting for {what} after {} s (still {state}): it may yet finish; run the command again to go on",
                started.elapsed().as_secs()
            )));
        }
        progress(Event::Waiting(&format!("{what}: {state}")), started.elapsed());
        tokio::time::sleep(every).await;
    }
}
