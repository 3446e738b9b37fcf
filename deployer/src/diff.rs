//! Field-by-field comparison of a desired spec with the observed one, per resource kind: which
//! fields differ, and for some a note that says more (an engine upgrade, major or minor).

use crate::desired::{
    AlarmSpec, ClusterSpec, FunctionSpec, InstanceSpec, Kind, RestApiSpec, RoleSpec, SecretSpec, StageSpec,
    SubnetGroupSpec,
};
use crate::tags::Tags;

/// One field that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub note: Option<String>,
}

/// A resource kind the plan compares.
pub trait Resource {
    const KIND: Kind;
    fn name(&self) -> &str;
    fn tags(&self) -> &Tags;
    /// The fields in which `self` (desired) differs from `have` (observed).
    fn diff(&self, have: &Self) -> Vec<Field>;
}

#[derive(Default)]
struct Diff(Vec<Field>);

impl Diff {
    fn field<T: PartialEq + ?Sized>(mut self, name: &'static str, want: &T, have: &T) -> Diff {
        if want != have {
            self.0.push(Field { name, note: None });
        }
        self
    }

    fn tags(self, want: &Tags, have: &Tags) -> Diff {
        self.field("tags", want, have)
    }
}

impl Resource for SubnetGroupSpec {
    const KIND: Kind = Kind::DbSubnetGroup;

    fn name(&self) -> &str {
        &self.name
    }

    fn tags(&self) -> &Tags {
        &self.tags
    }

    fn diff(&self, have: &Self) -> Vec<Field> {
        Diff::default().field("subnet_ids", &self.subnet_ids, &have.subnet_ids).tags(&self.tags, &have.tags).0
    }
}

impl Resource for ClusterSpec {
    const KIND: Kind = Kind::DbCluster;

    fn name(&self) -> &str {
        &self.name
    }

    fn tags(&self) -> &Tags {
        &self.tags
    }

    fn diff(&self, have: &Self) -> Vec<Field> {
        let mut diff = Diff::default();
        // The file's version is a minimum: AWS moves minor versions up by itself, and a
        // cluster can never go back down.
        if let Some(upgrade) = self.engine_version.upgrade_from(&have.engine_version) {
            diff.0.push(Field { name: "engine_version", note: Some(upgrade.to_string()) });
        }
        diff.field("min_capacity", &self.min_capacity, &have.min_capacity)
            .field("max_capacity", &self.max_capacity, &have.max_capacity)
            .field("deletion_protection", &self.deletion_protection, &have.deletion_protection)
            .field("backup_retention_days", &self.backup_retention_days, &have.backup_retention_days)
            .field("subnet_group", &self.subnet_group, &have.subnet_group)
            .field("security_group_ids", &self.security_group_ids, &have.security_group_ids)
            .tags(&self.tags, &have.tags)
            .0
    }
}

impl Resource for InstanceSpec {
    const KIND: Kind = Kind::DbInstance;

    fn name(&self) -> &str {
        &self.name
    }

    fn tags(&self) -> &Tags {
        &self.tags
    }

    fn diff(&self, have: &Self) -> Vec<Field> {
        Diff::default()
            .field("cluster", &self.cluster, &have.cluster)
            .field("class", &self.class, &have.class)
            .tags(&self.tags, &have.tags)
            .0
    }
}

impl Resource for AlarmSpec {
    const KIND: Kind = Kind::Alarm;

    fn name(&self) -> &str {
        &self.name
    }

    fn tags(&self) -> &Tags {
        &self.tags
    }

    fn diff(&self, have: &Self) -> Vec<Field> {
        // `executed_version` is the release's to set, not the file's.
        Diff::default()
            .field(
                "metric",
                &(&self.namespace, &self.metric, &self.dimensions),
                &(&have.namespace, &have.metric, &have.dimensions),
            )
            .field("threshold", &self.threshold, &have.threshold)
            .tags(&self.tags, &have.tags)
            .0
    }
}

impl Resource for SecretSpec {
    const KIND: Kind = Kind::Secret;

    fn name(&self) -> &str {
        &self.name
    }

    fn tags(&self) -> &Tags {
        &self.tags
    }

    fn diff(&self, have: &Self) -> Vec<Field> {
        let mut diff = Diff::default();
        if have.scheduled_for_deletion && !self.scheduled_for_deletion {
            diff.0.push(Field { name: "restore", note: Some("scheduled for deletion: restored".into()) });
        }
        diff.tags(&self.tags, &have.tags).0
    }
}

impl Resource for RoleSpec {
    const KIND: Kind = Kind::Role;

    fn name(&self) -> &str {
        &self.name
    }

    fn tags(&self) -> &Tags {
        &self.tags
    }

    fn diff(&self, have: &Self) -> Vec<Field> {
        Diff::default()
            .field("managed_policies", &self.managed_policies, &have.managed_policies)
            .field("inline_policy", &self.inline_policy, &have.inline_policy)
            .tags(&self.tags, &have.tags)
            .0
    }
}

impl Resource for FunctionSpec {
    const KIND: Kind = Kind::Function;

    fn name(&self) -> &str {
        &self.name
    }

    fn tags(&self) -> &Tags {
        &self.tags
    }

    fn diff(&self, have: &Self) -> Vec<Field> {
        Diff::default()
            .field("role", &self.role, &have.role)
            .field("runtime", &self.runtime, &have.runtime)
            .field("handler", &self.handler, &have.handler)
            .field("architecture", &self.architecture, &have.architecture)
            .field("memory_mb", &self.memory_mb, &have.memory_mb)
            .field("timeout_seconds", &self.timeout_seconds, &have.timeout_seconds)
            .field("reserved_concurrency", &self.reserved_concurrency, &have.reserved_concurrency)
            .field("env", &self.env, &have.env)
            .field("subnet_ids", &self.subnet_ids, &have.subnet_ids)
            .field("security_group_ids", &self.security_group_ids, &have.security_group_ids)
            .field("code_sha256", &self.code_sha256, &have.code_sha256)
            .field("live_alias", &self.live, &have.live)
            .tags(&self.tags, &have.tags)
            .0
    }
}

impl FunctionSpec {
    /// Fields whose change makes a new version to publish (the rest is bookkeeping).
    pub const RUNTIME_FIELDS: [&str; 11] = [
        "role",
        "runtime",
        "handler",
        "architecture",
        "memory_mb",
        "timeout_seconds",
        "env",
        "subnet_ids",
        "security_group_ids",
        "code_sha256",
        "live_alias",
    ];
}

impl Resource for RestApiSpec {
    const KIND: Kind = Kind::RestApi;

    fn name(&self) -> &str {
        &self.name
    }

    fn tags(&self) -> &Tags {
        &self.tags
    }

    fn diff(&self, have: &Self) -> Vec<Field> {
        Diff::default()
            .field("routes", &self.routes, &have.routes)
            .field("invokers", &self.invokers, &have.invokers)
            .field("gateway_responses", &self.gateway_responses, &have.gateway_responses)
            .tags(&self.tags, &have.tags)
            .0
    }
}

impl Resource for StageSpec {
    const KIND: Kind = Kind::Stage;

    fn name(&self) -> &str {
        &self.name
    }

    fn tags(&self) -> &Tags {
        &self.tags
    }

    fn diff(&self, have: &Self) -> Vec<Field> {
        Diff::default()
            .field("deployment", &self.deployment, &have.deployment)
            .field("rate_limit", &self.rate_limit, &have.rate_limit)
            .field("burst_limit", &self.burst_limit, &have.burst_limit)
            .tags(&self.tags, &have.tags)
            .0
    }
}

impl ClusterSpec {
    /// The names of the fields that differ (tests and messages).
    pub fn diff_names(&self, have: &Self) -> Vec<&'static str> {
        self.diff(have).into_iter().map(|f| f.name).collect()
    }
}
