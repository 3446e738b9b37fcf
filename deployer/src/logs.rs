//! The functions' CloudWatch Logs (`/aws/lambda/<function>`), read for `cargo xtask logs`:
//! FilterLogEvents on each function's group, merged into one list by time. Reading only; a
//! group that does not exist yet (a function never invoked) simply has no lines.

use crate::aws::Clients;
use crate::error::{DeployError, aws};

/// One log event of one function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    /// The function's crate name (`validate`), not its full name.
    pub function: String,
    pub message: String,
    /// CloudWatch's id of the event: what a follower uses not to print a line twice.
    pub event_id: String,
}

/// The log group Lambda writes a function's output to.
pub fn log_group(function_name: &str) -> String {
    format!("/aws/lambda/{function_name}")
}

/// Every event since `start_ms` (inclusive) of each `(crate name, function name)`, matching the
/// CloudWatch filter `pattern` when given, oldest first.
pub async fn read(
    clients: &Clients,
    functions: &[(String, String)],
    start_ms: i64,
    pattern: Option<&str>,
) -> Result<Vec<LogLine>, DeployError> {
    let mut lines = Vec::new();
    for (crate_name, function_name) in functions {
        let group = log_group(function_name);
        let mut pages = clients
            .logs
            .filter_log_events()
            .log_group_name(&group)
            .start_time(start_ms)
            .set_filter_pattern(pattern.map(str::to_owned))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(page) => page,
                Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => break,
                Err(e) => return Err(aws(format!("reading the log group {group}"))(e)),
            };
            lines.extend(page.events().iter().map(|event| LogLine {
                timestamp: event.timestamp().unwrap_or_default(),
                function: crate_name.clone(),
                message: event.message().unwrap_or_default().trim_end().to_owned(),
                event_id: event.event_id().unwrap_or_default().to_owned(),
            }));
        }
    }
    // Stable: lines of one function at the same millisecond keep CloudWatch's order.
    lines.sort_by_key(|line| line.timestamp);
    Ok(lines)
}
