//! CloudWatch: the alarms a canary release watches. Each is put whole (PutMetricAlarm creates
//! and replaces); its tags, which PutMetricAlarm only sets on creation, are converged with
//! TagResource/UntagResource like every other kind's.

use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, StateValue, Statistic, Tag};

use crate::apply::Context;
use crate::aws::Clients;
use crate::desired::{AlarmSpec, alarm_names};
use crate::error::{DeployError, aws};
use crate::names::Names;
use crate::plan::{Action, Change};
use crate::tags::Tags;

/// The dimension a release sets on a function's alarms: the version it made live.
pub const EXECUTED_VERSION: &str = "ExecutedVersion";

/// The environment's alarms as CloudWatch holds them: exactly the names it derives.
pub async fn observe(names: &Names, cloudwatch: &aws_sdk_cloudwatch::Client) -> Result<Vec<AlarmSpec>, DeployError> {
    let out = cloudwatch
        .describe_alarms()
        .set_alarm_names(Some(alarm_names(names)))
        .send()
        .await
        .map_err(aws("reading the alarms"))?;
    let mut found = Vec::new();
    for alarm in out.metric_alarms() {
        let name = alarm.alarm_name().unwrap_or_default().to_owned();
        let tags = match alarm.alarm_arn() {
            Some(arn) => {
                let listed = cloudwatch
                    .list_tags_for_resource()
                    .resource_arn(arn)
                    .send()
                    .await
                    .map_err(aws(format!("reading the tags of alarm {name}")))?;
                Tags::observed(listed.tags().iter().filter_map(|t| Some((t.key()?, t.value()?))))
            }
            None => Tags::default(),
        };
        let mut dimensions = Vec::new();
        let mut executed_version = None;
        for d in alarm.dimensions() {
            let (key, value) = (d.name().unwrap_or_default().to_owned(), d.value().unwrap_or_default().to_owned());
            if key == EXECUTED_VERSION {
                executed_version = Some(value);
            } else {
                dimensions.push((key, value));
            }
        }
        dimensions.sort();
        found.push(AlarmSpec {
            name,
            namespace: alarm.namespace().unwrap_or_default().to_owned(),
            metric: alarm.metric_name().unwrap_or_default().to_owned(),
            dimensions,
            executed_version,
            threshold: alarm.threshold().unwrap_or_default(),
            tags,
        });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// Puts `alarm` whole, with `executed_version` as its `ExecutedVersion` dimension when given.
pub async fn put(
    clients: &Clients,
    alarm: &AlarmSpec,
    executed_version: Option<&str>,
    tags: bool,
) -> Result<(), DeployError> {
    let mut dimensions: Vec<Dimension> =
        alarm.dimensions.iter().map(|(k, v)| Dimension::builder().name(k).value(v).build()).collect();
    if let Some(version) = executed_version {
        dimensions.push(Dimension::builder().name(EXECUTED_VERSION).value(version).build());
    }
    let tag_list: Vec<Tag> = alarm.tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
    clients
        .cloudwatch
        .put_metric_alarm()
        .alarm_name(&alarm.name)
        .alarm_description("promo-codes: watched during a canary; when it fires, the release is rolled back")
        .namespace(&alarm.namespace)
        .metric_name(&alarm.metric)
        .set_dimensions(Some(dimensions))
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(alarm.threshold)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .treat_missing_data("notBreaching")
        .set_tags(tags.then_some(tag_list))
        .send()
        .await
        .map_err(aws(format!("writing alarm {}", alarm.name)))?;
    Ok(())
}

pub async fn apply(
    ctx: &Context<'_>,
    change: &Change,
    want: &AlarmSpec,
    have: Option<&AlarmSpec>,
) -> Result<(), DeployError> {
    let create = change.action == Action::Create;
    if create || change.changes("metric") || change.changes("threshold") {
        // Keep the version the last release set: the file does not say it.
        let version = have.and_then(|h| h.executed_version.as_deref());
        put(ctx.clients, want, version, create).await?;
    }
    let (Some(have), false) = (have, create) else { return Ok(()) };
    if change.changes("tags") {
        let Some(arn) = alarm_arn(ctx.clients, &want.name).await? else { return Ok(()) };
        let changes = want.tags.changes_from(&have.tags);
        let cloudwatch = &ctx.clients.cloudwatch;
        if !changes.remove.is_empty() {
            cloudwatch
                .untag_resource()
                .resource_arn(&arn)
                .set_tag_keys(Some(changes.remove.clone()))
                .send()
                .await
                .map_err(aws(format!("untagging alarm {}", want.name)))?;
        }
        if !changes.set.is_empty() {
            let tags = changes.set.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
            cloudwatch
                .tag_resource()
                .resource_arn(&arn)
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(aws(format!("tagging alarm {}", want.name)))?;
        }
    }
    Ok(())
}

async fn alarm_arn(clients: &Clients, name: &str) -> Result<Option<String>, DeployError> {
    let out = clients
        .cloudwatch
        .describe_alarms()
        .alarm_names(name)
        .send()
        .await
        .map_err(aws(format!("reading alarm {name}")))?;
    Ok(out.metric_alarms().first().and_then(|a| a.alarm_arn()).map(str::to_owned))
}

pub async fn delete(ctx: &Context<'_>, have: &AlarmSpec) -> Result<(), DeployError> {
    ctx.clients
        .cloudwatch
        .delete_alarms()
        .alarm_names(&have.name)
        .send()
        .await
        .map_err(aws(format!("deleting alarm {}", have.name)))?;
    Ok(())
}

/// Of `names`, those in state ALARM now.
pub async fn firing(clients: &Clients, names: &[String]) -> Result<Vec<String>, DeployError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let out = clients
        .cloudwatch
        .describe_alarms()
        .set_alarm_names(Some(names.to_vec()))
        .state_value(StateValue::Alarm)
        .send()
        .await
        .map_err(aws("reading the release's alarms"))?;
    // The state is checked here too: an emulator (moto) ignores the StateValue filter.
    Ok(out
        .metric_alarms()
        .iter()
        .filter(|a| a.state_value() == Some(&StateValue::Alarm))
        .filter_map(|a| a.alarm_name().map(str::to_owned))
        .collect())
}
