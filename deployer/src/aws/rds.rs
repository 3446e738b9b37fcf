//! RDS: the Aurora Serverless v2 cluster, its writer instance and (in a VPC) its subnet group.
//! Waits poll at a fixed interval, as Aurora takes minutes, not the SDK waiters' doubling.

use std::time::Duration;

use aws_sdk_rds::types::{ServerlessV2ScalingConfiguration, Tag};

use crate::apply::Context;
use crate::config::{EngineVersion, Upgrade};
use crate::desired::{ClusterSpec, InstanceSpec, SubnetGroupSpec};
use crate::error::{DeployError, aws};
use crate::names::{APP, DATABASE_NAME, MASTER_USER, Names};
use crate::plan::{Action, Change};
use crate::tags::Tags;

use super::wait::{self, Check};

const DB_WAIT: Duration = Duration::from_secs(45 * 60);

/// What the database tells the functions: where it is, and the secret of its credentials.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DbFacts {
    pub endpoint: Option<String>,
    pub secret_arn: Option<String>,
    /// The cluster and instance that exist are `available` (not creating, modifying, ...).
    pub available: bool,
}

/// The environment's database resources as RDS holds them.
#[derive(Debug, Clone, Default)]
pub struct Database {
    pub subnet_groups: Vec<SubnetGroupSpec>,
    pub clusters: Vec<ClusterSpec>,
    pub instances: Vec<InstanceSpec>,
    pub facts: DbFacts,
}

fn tags_of(list: &[Tag]) -> Tags {
    Tags::observed(list.iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())))
}

fn rds_tags(tags: impl IntoIterator<Item = (String, String)>) -> Vec<Tag> {
    tags.into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

pub async fn observe(names: &Names, rds: &aws_sdk_rds::Client) -> Result<Database, DeployError> {
    let mut db = Database::default();
    db.facts.available = true;
    match rds.describe_db_subnet_groups().db_subnet_group_name(names.subnet_group()).send().await {
        Ok(out) => {
            for group in out.db_subnet_groups() {
                let mut subnet_ids: Vec<String> =
                    group.subnets().iter().filter_map(|s| s.subnet_identifier().map(str::to_owned)).collect();
                subnet_ids.sort();
                let tags = match group.db_subnet_group_arn() {
                    Some(arn) => {
                        let out = rds
                            .list_tags_for_resource()
                            .resource_name(arn)
                            .send()
                            .await
                            .map_err(aws("reading the tags of the db subnet group"))?;
                        tags_of(out.tag_list())
                    }
                    None => Tags::default(),
                };
                db.subnet_groups.push(SubnetGroupSpec { name: names.subnet_group(), subnet_ids, tags });
            }
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_db_subnet_group_not_found_fault()) => {}
        Err(e) => return Err(aws("reading the db subnet group")(e)),
    }

    match rds.describe_db_clusters().db_cluster_identifier(names.cluster()).send().await {
        Ok(out) => {
            for cluster in out.db_clusters() {
                let scaling = cluster.serverless_v2_scaling_configuration();
                let mut groups: Vec<String> = cluster
                    .vpc_security_groups()
                    .iter()
                    .filter_map(|g| g.vpc_security_group_id().map(str::to_owned))
                    .collect();
                groups.sort();
                db.clusters.push(ClusterSpec {
                    name: names.cluster(),
                    engine_version: EngineVersion::observed(cluster.engine_version().unwrap_or_default()),
                    min_capacity: scaling.and_then(|s| s.min_capacity()),
                    max_capacity: scaling.and_then(|s| s.max_capacity()),
                    deletion_protection: cluster.deletion_protection().unwrap_or_default(),
                    backup_retention_days: cluster.backup_retention_period().unwrap_or_default(),
                    // Without a VPC of its own, a cluster sits in the account's default group.
                    subnet_group: cluster.db_subnet_group().filter(|g| *g == names.subnet_group()).map(str::to_owned),
                    security_group_ids: groups,
                    tags: tags_of(cluster.tag_list()),
                });
                db.facts = DbFacts {
                    endpoint: cluster.endpoint().map(str::to_owned),
                    secret_arn: cluster.master_user_secret().and_then(|s| s.secret_arn()).map(str::to_owned),
                    available: cluster.status() == Some("available"),
                };
            }
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_db_cluster_not_found_fault()) => {}
        Err(e) => return Err(aws("reading the aurora cluster")(e)),
    }

    match rds.describe_db_instances().db_instance_identifier(names.instance()).send().await {
        Ok(out) => {
            for instance in out.db_instances() {
                db.facts.available &= instance.db_instance_status() == Some("available");
                db.instances.push(InstanceSpec {
                    name: names.instance(),
                    cluster: instance.db_cluster_identifier().unwrap_or_default().to_owned(),
                    class: instance.db_instance_class().unwrap_or_default().to_owned(),
                    tags: tags_of(instance.tag_list()),
                });
            }
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_db_instance_not_found_fault()) => {}
        Err(e) => return Err(aws("reading the aurora instance")(e)),
    }
    Ok(db)
}

/// Sets the tags the file has and removes those it no longer has, on any RDS resource.
async fn retag(ctx: &Context<'_>, arn: &str, want: &Tags, have: &Tags) -> Result<(), DeployError> {
    let changes = want.changes_from(have);
    let rds = &ctx.clients.rds;
    if !changes.remove.is_empty() {
        rds.remove_tags_from_resource()
            .resource_name(arn)
            .set_tag_keys(Some(changes.remove.clone()))
            .send()
            .await
            .map_err(aws(format!("untagging {arn}")))?;
    }
    if !changes.set.is_empty() {
        rds.add_tags_to_resource()
            .resource_name(arn)
            .set_tags(Some(rds_tags(changes.set)))
            .send()
            .await
            .map_err(aws(format!("tagging {arn}")))?;
    }
    Ok(())
}

pub async fn apply_subnet_group(
    ctx: &Context<'_>,
    change: &Change,
    want: &SubnetGroupSpec,
    have: Option<&SubnetGroupSpec>,
) -> Result<(), DeployError> {
    let rds = &ctx.clients.rds;
    if change.action == Action::Create {
        rds.create_db_subnet_group()
            .db_subnet_group_name(&want.name)
            .db_subnet_group_description(format!("{APP} {}", ctx.names.env()))
            .set_subnet_ids(Some(want.subnet_ids.clone()))
            .set_tags(Some(rds_tags(want.tags.to_map())))
            .send()
            .await
            .map_err(aws(format!("creating db subnet group {}", want.name)))?;
        return Ok(());
    }
    if change.changes("subnet_ids") {
        rds.modify_db_subnet_group()
            .db_subnet_group_name(&want.name)
            .set_subnet_ids(Some(want.subnet_ids.clone()))
            .send()
            .await
            .map_err(aws(format!("updating db subnet group {}", want.name)))?;
    }
    if let (true, Some(have)) = (change.changes("tags"), have) {
        retag(ctx, &ctx.facts.arns.rds("subgrp", &want.name), &want.tags, &have.tags).await?;
    }
    Ok(())
}

pub async fn apply_cluster(
    ctx: &Context<'_>,
    change: &Change,
    want: &ClusterSpec,
    have: Option<&ClusterSpec>,
) -> Result<(), DeployError> {
    let rds = &ctx.clients.rds;
    let scaling = ServerlessV2ScalingConfiguration::builder()
        .set_min_capacity(want.min_capacity)
        .set_max_capacity(want.max_capacity)
        .build();
    let groups = (!want.security_group_ids.is_empty()).then(|| want.security_group_ids.clone());
    if change.action == Action::Create {
        rds.create_db_cluster()
            .db_cluster_identifier(&want.name)
            .engine("aurora-postgresql")
            .engine_version(want.engine_version.as_str())
            .database_name(DATABASE_NAME)
            .master_username(MASTER_USER)
            // RDS makes and rotates the password in Secrets Manager: it never passes through here.
            .manage_master_user_password(true)
            .enable_iam_database_authentication(true)
            .storage_encrypted(true)
            .serverless_v2_scaling_configuration(scaling)
            .deletion_protection(want.deletion_protection)
            .backup_retention_period(want.backup_retention_days)
            .set_db_subnet_group_name(want.subnet_group.clone())
            .set_vpc_security_group_ids(groups)
            .set_tags(Some(rds_tags(want.tags.to_map())))
            .send()
            .await
            .map_err(aws(format!("creating aurora cluster {}", want.name)))?;
    } else {
        let have = have.ok_or_else(|| DeployError::Internal(format!("updating {} unseen", want.name)))?;
        // A cluster still creating or modifying (a run cut short) refuses ModifyDBCluster.
        wait_cluster(ctx, &want.name).await?;
        let settings = [
            "engine_version",
            "min_capacity",
            "max_capacity",
            "deletion_protection",
            "backup_retention_days",
            "security_group_ids",
        ];
        if settings.iter().any(|f| change.changes(f)) {
            // Only what changed is sent: above all, EngineVersion only for an upgrade the file
            // asks for, since a cluster AWS moved to a newer minor version cannot go back.
            let upgrade = want.engine_version.upgrade_from(&have.engine_version);
            let mut modify = rds.modify_db_cluster().db_cluster_identifier(&want.name).apply_immediately(true);
            if let Some(upgrade) = &upgrade {
                modify = modify
                    .engine_version(want.engine_version.as_str())
                    .allow_major_version_upgrade(matches!(upgrade, Upgrade::Major { .. }));
            }
            if change.changes("min_capacity") || change.changes("max_capacity") {
                modify = modify.serverless_v2_scaling_configuration(scaling);
            }
            if change.changes("deletion_protection") {
                modify = modify.deletion_protection(want.deletion_protection);
            }
            if change.changes("backup_retention_days") {
                modify = modify.backup_retention_period(want.backup_retention_days);
            }
            if change.changes("security_group_ids") {
                modify = modify.set_vpc_security_group_ids(groups);
            }
            modify.send().await.map_err(aws(format!("updating aurora cluster {}", want.name)))?;
        }
        if change.changes("tags") {
            retag(ctx, &ctx.facts.arns.rds("cluster", &want.name), &want.tags, &have.tags).await?;
        }
    }
    wait_cluster(ctx, &want.name).await
}

fn gone(status: Option<&str>) -> Check {
    match status {
        None => Check::Ready,
        Some(status) => Check::NotYet(status.to_owned()),
    }
}

fn available(status: Option<&str>) -> Check {
    match status {
        Some("available") => Check::Ready,
        other => Check::NotYet(other.unwrap_or("unknown").to_owned()),
    }
}

/// Waits until the cluster is `available`.
pub async fn wait_cluster(ctx: &Context<'_>, name: &str) -> Result<(), DeployError> {
    let rds = &ctx.clients.rds;
    wait::until(&format!("aurora cluster {name}"), ctx.clients.timing.rds_poll, DB_WAIT, ctx.progress, || async {
        let out = rds
            .describe_db_clusters()
            .db_cluster_identifier(name)
            .send()
            .await
            .map_err(aws(format!("reading aurora cluster {name}")))?;
        Ok(available(out.db_clusters().first().and_then(|c| c.status())))
    })
    .await
}

/// Waits until the instance is `available`.
pub async fn wait_instance(ctx: &Context<'_>, name: &str) -> Result<(), DeployError> {
    let rds = &ctx.clients.rds;
    wait::until(&format!("aurora instance {name}"), ctx.clients.timing.rds_poll, DB_WAIT, ctx.progress, || async {
        let out = rds
            .describe_db_instances()
            .db_instance_identifier(name)
            .send()
            .await
            .map_err(aws(format!("reading aurora instance {name}")))?;
        Ok(available(out.db_instances().first().and_then(|i| i.db_instance_status())))
    })
    .await
}

pub async fn apply_instance(
    ctx: &Context<'_>,
    change: &Change,
    want: &InstanceSpec,
    have: Option<&InstanceSpec>,
) -> Result<(), DeployError> {
    let rds = &ctx.clients.rds;
    if change.action == Action::Create {
        rds.create_db_instance()
            .db_instance_identifier(&want.name)
            .db_cluster_identifier(&want.cluster)
            .engine("aurora-postgresql")
            .db_instance_class(&want.class)
            // Only the functions, inside the VPC, reach the database.
            .publicly_accessible(false)
            .set_tags(Some(rds_tags(want.tags.to_map())))
            .send()
            .await
            .map_err(aws(format!("creating aurora instance {}", want.name)))?;
    } else if let (true, Some(have)) = (change.changes("tags"), have) {
        retag(ctx, &ctx.facts.arns.rds("db", &want.name), &want.tags, &have.tags).await?;
    }
    wait_instance(ctx, &want.name).await
}

pub async fn delete_subnet_group(ctx: &Context<'_>, have: &SubnetGroupSpec) -> Result<(), DeployError> {
    match ctx.clients.rds.delete_db_subnet_group().db_subnet_group_name(&have.name).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_db_subnet_group_not_found_fault()) => Ok(()),
        Err(e) => Err(aws(format!("deleting db subnet group {}", have.name))(e)),
    }
}

pub async fn delete_instance(ctx: &Context<'_>, have: &InstanceSpec) -> Result<(), DeployError> {
    let rds = &ctx.clients.rds;
    let name = &have.name;
    // RDS refuses to delete an instance that is still being created or modified.
    wait_instance(ctx, name).await?;
    match rds.delete_db_instance().db_instance_identifier(name).send().await {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|s| s.is_db_instance_not_found_fault()) => return Ok(()),
        Err(e) => return Err(aws(format!("deleting aurora instance {name}"))(e)),
    }
    wait::until(
        &format!("aurora instance {name} to go"),
        ctx.clients.timing.rds_poll,
        DB_WAIT,
        ctx.progress,
        || async {
            match rds.describe_db_instances().db_instance_identifier(name).send().await {
                Ok(out) => Ok(gone(out.db_instances().first().and_then(|i| i.db_instance_status()))),
                Err(e) if e.as_service_error().is_some_and(|s| s.is_db_instance_not_found_fault()) => Ok(Check::Ready),
                Err(e) => Err(aws(format!("reading aurora instance {name}"))(e)),
            }
        },
    )
    .await
}

/// Deletes the cluster without a final snapshot. `destroy` refuses before its first delete
/// when the cluster or the file has deletion protection, so this never meets it.
pub async fn delete_cluster(ctx: &Context<'_>, have: &ClusterSpec) -> Result<(), DeployError> {
    let rds = &ctx.clients.rds;
    let name = &have.name;
    wait_cluster(ctx, name).await?;
    match rds.delete_db_cluster().db_cluster_identifier(name).skip_final_snapshot(true).send().await {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|s| s.is_db_cluster_not_found_fault()) => return Ok(()),
        Err(e) => return Err(aws(format!("deleting aurora cluster {name}"))(e)),
    }
    wait::until(&format!("aurora cluster {name} to go"), ctx.clients.timing.rds_poll, DB_WAIT, ctx.progress, || async {
        match rds.describe_db_clusters().db_cluster_identifier(name).send().await {
            Ok(out) => Ok(gone(out.db_clusters().first().and_then(|c| c.status()))),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_db_cluster_not_found_fault()) => Ok(Check::Ready),
            Err(e) => Err(aws(format!("reading aurora cluster {name}"))(e)),
        }
    })
    .await
}
