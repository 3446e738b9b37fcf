//! Running the migrations: the deployer invokes one version of the `migrate` function, which
//! answers `{"applied": [<version>, ...]}`, every migration the database then has. Any other
//! answer is a failure: the aliases must not move onto code whose schema may not be there.

use serde_json::Value;

use crate::aws::Clients;
use crate::error::DeployError;
use crate::invoke::invoke;

/// How much of a function's answer an error message shows.
const SHOWN: usize = 500;

/// Invokes `function` at `qualifier` (a version, or the alias); the migration versions it reports.
pub async fn migrate(clients: &Clients, function: &str, qualifier: &str) -> Result<Vec<i64>, DeployError> {
    let answer = invoke(clients, function, qualifier, b"{}").await?;
    let payload = answer.payload;
    if let Some(error) = answer.function_error {
        return Err(DeployError::Function(format!(
            "{function}:{qualifier} failed ({error}), so no alias moved: {}",
            shown(&payload)
        )));
    }
    versions(&payload).ok_or_else(|| {
        DeployError::Function(format!(
            "{function}:{qualifier} answered without the migration versions, so no alias moved; it answered: {}",
            shown(&payload)
        ))
    })
}

/// The versions in `{"applied": [1, 2]}`: a non-empty list of integers, or nothing.
fn versions(payload: &str) -> Option<Vec<i64>> {
    let value: Value = serde_json::from_str(payload).ok()?;
    let list = value.get("applied")?.as_array()?;
    let versions: Option<Vec<i64>> = list.iter().map(Value::as_i64).collect();
    versions.filter(|v| !v.is_empty())
}

fn shown(payload: &str) -> String {
    if payload.is_empty() {
        return "(nothing)".into();
    }
    let end = payload.char_indices().nth(SHOWN).map_or(payload.len(), |(i, _)| i);
    if end < payload.len() { format!("{}...", &payload[..end]) } else { payload.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_list_of_versions_is_a_migrate_answer() {
        assert_eq!(
            versions(r#"{"applied":[20261125000000,20261125010000]}"#),
            Some(vec![20261125000000, 20261125010000])
        );
        for bad in
            ["{}", r#"{"applied":[]}"#, r#"{"applied":["1"]}"#, r#"{"ok":true}"#, "Simple Lambda happy path OK", ""]
        {
            assert_eq!(versions(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_long_answer_is_cut_in_messages() {
        let long = "x".repeat(2000);
        assert_eq!(shown(&long).len(), SHOWN + 3);
        assert_eq!(shown(""), "(nothing)");
    }
}
