//! Invoking a deployed function: what `migrate` runs through and what `cargo xtask invoke`
//! shows a person. Lambda's answer, whether the function failed, and the tail of its log.

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::LogType;
use base64::Engine;

use crate::aws::Clients;
use crate::error::{DeployError, aws};

/// What one invocation gave back.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub payload: String,
    /// Lambda's `FunctionError` (`Unhandled`, ...) when the function failed.
    pub function_error: Option<String>,
    /// The version that ran, when an alias was invoked.
    pub executed_version: Option<String>,
    /// The last 4 KB of the invocation's log (`LogType: Tail`).
    pub log_tail: String,
}

/// Invokes `function` at `qualifier` (a version or an alias) with `payload`, waiting out a
/// function that is still being updated.
pub async fn invoke(
    clients: &Clients,
    function: &str,
    qualifier: &str,
    payload: &[u8],
) -> Result<Invocation, DeployError> {
    let request = clients
        .lambda
        .invoke()
        .function_name(function)
        .qualifier(qualifier)
        .log_type(LogType::Tail)
        .payload(Blob::new(payload));
    let out = crate::aws::retry::unless_busy(clients.timing.lambda_poll, || request.clone().send())
        .await
        .map_err(aws(format!("invoking {function}:{qualifier}")))?;
    let log_tail = out
        .log_result()
        .and_then(|tail| base64::engine::general_purpose::STANDARD.decode(tail).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    Ok(Invocation {
        payload: out.payload().map(|p| String::from_utf8_lossy(p.as_ref()).into_owned()).unwrap_or_default(),
        function_error: out.function_error().map(str::to_owned),
        executed_version: out.executed_version().map(str::to_owned),
        log_tail,
    })
}
