//! Moving each function's `live` alias to its new version, at once or through a canary, and
//! moving it back. Every move writes into the alias's description which release moved it and
//! from which version; that is all `rollback` needs, so there is still no state file.

use std::collections::HashMap;

use aws_sdk_lambda::types::AliasRoutingConfiguration;

use crate::aws::Clients;
use crate::aws::cloudwatch;
use crate::aws::lambda::canary_weights;
use crate::config::{EnvName, Release};
use crate::desired::AlarmSpec;
use crate::error::{DeployError, aws as aws_error};
use crate::names::{ALIAS, Names};
use crate::progress::{Event, Progress};

/// One function's `live` alias going from one published version to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub function: String,
    pub from: String,
    pub to: String,
}

/// What rollback did to one function's alias.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RolledBack {
    pub function: String,
    /// The version `live` served most traffic from before (a canary's, if one was running).
    pub from: String,
    pub to: String,
}

/// The alias description a release leaves: which release moved it, and from where.
pub fn moved_by(release: &str, from: &str) -> String {
    format!("release {release}: from version {from}")
}

/// Reads a description written by [`moved_by`]: (release, version moved from).
fn parse_moved_by(description: &str) -> Option<(u128, String)> {
    let rest = description.strip_prefix("release ")?;
    let (release, from) = rest.split_once(": from version ")?;
    Some((release.parse().ok()?, from.to_owned()))
}

/// Routing config that sends no traffic anywhere but the alias's own version.
fn no_routing() -> AliasRoutingConfiguration {
    AliasRoutingConfiguration::builder().set_additional_version_weights(Some(HashMap::new())).build()
}

/// What a canary's bake watches: the environment's alarms (none when its file turns them off).
#[derive(Debug, Clone, Copy)]
pub struct Watch<'a> {
    pub env: &'a EnvName,
    pub alarms: &'a [AlarmSpec],
}

/// Points `live` at each move's new version. With a canary, each alias first sends the canary's
/// share to the new version for the bake time, then everything. During the bake the moved
/// functions' alarms (set to the new version) and the API's are watched: when one fires, the
/// release is rolled back as `rollback` would, and the deploy fails naming it.
pub async fn release(
    clients: &Clients,
    moves: &[Move],
    release_id: &str,
    canary: Option<Release>,
    watch: Option<Watch<'_>>,
    progress: Progress<'_>,
) -> Result<(), DeployError> {
    let lambda = &clients.lambda;
    let canaries: Vec<&Move> = moves.iter().filter(|m| m.from != m.to).collect();
    if let (Some(canary), false) = (canary, canaries.is_empty()) {
        let started = std::time::Instant::now();
        // The alarms count the new versions before any traffic reaches them.
        let watched = match watch {
            Some(watch) => watch_new_versions(clients, &canaries, watch.alarms).await?,
            None => Vec::new(),
        };
        for m in &canaries {
            let weights = HashMap::from([(m.to.clone(), canary.canary_percent.weight())]);
            lambda
                .update_alias()
                .function_name(&m.function)
                .name(ALIAS)
                .function_version(&m.from)
                .routing_config(
                    AliasRoutingConfiguration::builder().set_additional_version_weights(Some(weights)).build(),
                )
                .description(moved_by(release_id, &m.from))
                .send()
                .await
                .map_err(aws_error(format!("starting the canary of {}", m.function)))?;
        }
        let line = format!(
            "canary: {}% of live on the new version of {} function(s); baking {} s \
             (interrupted: `deploy` again finishes it, `rollback` undoes it)",
            canary.canary_percent.get(),
            canaries.len(),
            canary.bake_seconds.duration().as_secs()
        );
        progress(Event::Done(&line), started.elapsed());
        // The bake is the point of a canary: a deliberate wait, not a wait on AWS.
        let fired = bake(clients, canary.bake_seconds.duration(), &watched, progress).await?;
        if let (false, Some(watch)) = (fired.is_empty(), watch) {
            let undone = rollback(clients, watch.env).await?;
            let line = format!("alarm {} fired during the bake: rolled back", fired.join(", "));
            progress(Event::Done(&line), started.elapsed());
            return Err(DeployError::Refused(format!(
                "the canary was aborted: alarm {} fired during the bake, so the release was rolled back ({} \
                 live alias(es) back where they were before it; the database keeps its migrations). Look at \
                 the alarm and `cargo xtask logs --env {}`, fix, and deploy again",
                fired.join(", "),
                undone.len(),
                watch.env
            )));
        }
    }
    for m in moves {
        let started = std::time::Instant::now();
        lambda
            .update_alias()
            .function_name(&m.function)
            .name(ALIAS)
            .function_version(&m.to)
            .routing_config(no_routing())
            .description(moved_by(release_id, &m.from))
            .send()
            .await
            .map_err(aws_error(format!("moving the live alias of {}", m.function)))?;
        let line = format!("live of {} -> version {} (was {})", m.function, m.to, m.from);
        progress(Event::Done(&line), started.elapsed());
    }
    Ok(())
}

/// Points the alarms of each canary's function at its new version (`ExecutedVersion`), so that
/// they count what the new code does; the names to watch: those, and the alarms of no function
/// (the API's).
async fn watch_new_versions(
    clients: &Clients,
    canaries: &[&Move],
    alarms: &[AlarmSpec],
) -> Result<Vec<String>, DeployError> {
    let mut watched = Vec::new();
    for alarm in alarms {
        let function = alarm.dimensions.iter().find(|(k, _)| k == "FunctionName").map(|(_, v)| v.as_str());
        match function {
            None => watched.push(alarm.name.clone()),
            Some(function) => {
                if let Some(m) = canaries.iter().find(|m| m.function == function) {
                    cloudwatch::put(clients, alarm, Some(&m.to), false).await?;
                    watched.push(alarm.name.clone());
                }
            }
        }
    }
    Ok(watched)
}

/// Waits `bake`, looking at `alarms` every poll; the names of those that fired, if any did.
async fn bake(
    clients: &Clients,
    bake: std::time::Duration,
    alarms: &[String],
    progress: Progress<'_>,
) -> Result<Vec<String>, DeployError> {
    let started = tokio::time::Instant::now();
    let end = started + bake;
    loop {
        let fired = cloudwatch::firing(clients, alarms).await?;
        if !fired.is_empty() {
            return Ok(fired);
        }
        let now = tokio::time::Instant::now();
        if now >= end {
            return Ok(Vec::new());
        }
        let what = format!("canary baking for {} s; {} alarm(s) quiet", bake.as_secs(), alarms.len());
        progress(Event::Waiting(&what), now - started);
        tokio::time::sleep(clients.timing.alarm_poll.min(end - now)).await;
    }
}

/// Undoes the latest release of an environment: every alias that release moved goes back to the
/// version it moved from, and a running canary stops. One UpdateAlias per function.
pub async fn rollback(clients: &Clients, env: &EnvName) -> Result<Vec<RolledBack>, DeployError> {
    let names = Names::new(env);
    let lambda = &clients.lambda;
    let mut aliases = Vec::new();
    for crate_name in promo_shared::routes::FUNCTION_CRATES {
        let function = names.function(crate_name);
        match lambda.get_alias().function_name(&function).name(ALIAS).send().await {
            Ok(alias) => aliases.push((function, alias)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {}
            Err(e) => return Err(aws_error(format!("reading the live alias of {function}"))(e)),
        }
    }
    let moved: Vec<_> = aliases
        .iter()
        .filter_map(|(function, alias)| {
            let (release, from) = parse_moved_by(alias.description().unwrap_or_default())?;
            Some((function, alias, release, from))
        })
        .collect();
    let Some(latest) = moved.iter().map(|(_, _, release, _)| *release).max() else {
        return Err(DeployError::Refused(format!(
            "nothing to roll back in {env}: no live alias records a release (a first deploy has nothing \
             before it, and a release that was rolled back stays rolled back until the next deploy)"
        )));
    };
    let mut done = Vec::new();
    for (function, alias, release, from) in moved.into_iter().filter(|m| m.2 == latest) {
        let serving = match canary_weights(alias) {
            Some((canary, _)) => canary,
            None => alias.function_version().unwrap_or_default().to_owned(),
        };
        lambda
            .update_alias()
            .function_name(function)
            .name(ALIAS)
            .function_version(&from)
            .routing_config(no_routing())
            .description(format!("rolled back release {release} (was version {serving})"))
            .send()
            .await
            .map_err(aws_error(format!("rolling back the live alias of {function}")))?;
        done.push(RolledBack { function: function.clone(), from: serving, to: from });
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_description_reads_back_as_written() {
        assert_eq!(parse_moved_by(&moved_by("1764000000000", "7")), Some((1_764_000_000_000, "7".to_owned())));
    }

    #[test]
    fn a_rolled_back_or_foreign_description_is_no_release() {
        assert_eq!(parse_moved_by("rolled back release 1764000000000 (was version 8)"), None);
        assert_eq!(parse_moved_by(""), None);
        assert_eq!(parse_moved_by("release soon: from version 2"), None);
    }
}
