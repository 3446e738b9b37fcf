//! Executes a plan against AWS in dependency order: database, roles, functions (with their
//! `live` alias), the REST API and its stage; then runs the migrations. Every wait is one of the
//! SDK's waiters with a maximum; IAM's eventual consistency is retried with backoff. A run that
//! stopped half-way is simply planned again: whatever exists is updated, whatever is missing is
//! created.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_apigateway::types::{EndpointConfiguration, EndpointType, IntegrationType, Op, PatchOperation};
use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, Environment, FunctionCode, LogFormat, LoggingConfig, Runtime, VpcConfig};
use serde_json::Value;

use crate::aws::{Clients, DeployError, aws_error};
use crate::config::{EnvName, EnvironmentSpec};
use crate::desired::{
    ALIAS, APP, Artifacts, DATABASE_NAME, Facts, Kind, MASTER_USER, Names, Resource, alias_arn, desired,
};
use crate::observe::{INLINE_POLICY, Observed, observe, permission_id, role_path};
use crate::plan::{Action, Change, Plan, plan};
use crate::release::{Move, release};

const DB_WAIT: Duration = Duration::from_secs(45 * 60);
const FUNCTION_WAIT: Duration = Duration::from_secs(5 * 60);

const LAMBDA_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// A built function: its zip and Lambda's `CodeSha256` of it.
#[derive(Debug, Clone)]
pub struct Zip {
    pub path: PathBuf,
    pub code_sha256: String,
}

/// What a deploy did: the plan it carried out and each step's time.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub plan: Plan,
    pub migrated: bool,
}

/// Plans a deployment: observes the account, diffs it against the desired state.
pub async fn plan_deploy(
    clients: &Clients,
    env: &EnvName,
    spec: &EnvironmentSpec,
    zips: &BTreeMap<String, Zip>,
) -> Result<(Plan, Observed), DeployError> {
    let observed = observe(clients, env, spec).await?;
    let want = desired(env, spec, &artifacts(zips), &observed.facts);
    Ok((plan(&want, &observed.resources), observed))
}

fn artifacts(zips: &BTreeMap<String, Zip>) -> Artifacts {
    zips.iter().map(|(k, z)| (k.clone(), z.code_sha256.clone())).collect()
}

/// Converges AWS to the environment file. `progress` hears of each finished step.
pub async fn deploy(
    clients: &Clients,
    env: &EnvName,
    spec: &EnvironmentSpec,
    zips: &BTreeMap<String, Zip>,
    progress: &dyn Fn(&str, Duration),
) -> Result<Report, DeployError> {
    let (first_plan, observed) = plan_deploy(clients, env, spec, zips).await?;
    let mut run = Run {
        clients,
        env,
        spec,
        zips,
        names: Names::new(env),
        facts: observed.facts.clone(),
        report: Report::default(),
        progress,
        moves: Vec::new(),
        migrate_move: None,
        release_id: release_id(),
    };
    run.report.plan = first_plan.clone();
    let mut database_created = false;
    let migrate = run.names.function("migrate");

    for kind in
        [Kind::DbSubnetGroup, Kind::DbCluster, Kind::DbInstance, Kind::Role, Kind::Function, Kind::RestApi, Kind::Stage]
    {
        // Values AWS assigned in earlier phases (the database endpoint, the API id) are known
        // now: plan this phase against them.
        let want = desired(env, spec, &artifacts(zips), &run.facts);
        let phase = plan(&want, &observed.resources);
        for change in phase.changes.iter().filter(|c| c.kind == kind && c.action != Action::Delete) {
            let resource = want
                .iter()
                .find(|r| r.kind == kind && r.name == change.name)
                .ok_or_else(|| DeployError::Refused(format!("internal: no desired {kind:?} {}", change.name)))?;
            let have = observed.resources.iter().find(|r| r.kind == kind && r.name == change.name);
            let started = Instant::now();
            run.apply(change, resource, have).await?;
            run.step(change, started.elapsed());
            if kind == Kind::DbCluster && change.action == Action::Create {
                database_created = true;
            }
        }
        if kind == Kind::DbInstance {
            run.refresh_database_facts().await?;
        }
        if kind == Kind::Function {
            // The migrations run before any alias moves, while the previous version still
            // serves: they must keep working with it (expand now, contract in a later release).
            let migrate_move = run.migrate_move.take();
            if database_created || first_plan.touches(Kind::Function, &migrate).is_some() {
                let started = Instant::now();
                let version = migrate_move.as_ref().map_or(ALIAS, |m| m.to.as_str());
                let applied = run.migrate(version).await?;
                run.report.migrated = true;
                (run.progress)(&format!("migrated the database: {applied}"), started.elapsed());
            }
            if let Some(m) = migrate_move {
                release(clients, &[m], &run.release_id, None, &|_, _| {}).await?;
            }
            let moves = std::mem::take(&mut run.moves);
            release(clients, &moves, &run.release_id, spec.release, progress).await?;
        }
    }

    // Deletes last, dependents first.
    let want = desired(env, spec, &artifacts(zips), &run.facts);
    let leftovers = plan(&want, &observed.resources);
    for change in leftovers.changes.iter().filter(|c| c.action == Action::Delete) {
        let started = Instant::now();
        run.delete(change).await?;
        run.step(change, started.elapsed());
    }
    Ok(run.report)
}

/// Deletes everything the environment owns, dependents first.
pub async fn destroy(
    clients: &Clients,
    env: &EnvName,
    spec: &EnvironmentSpec,
    progress: &dyn Fn(&str, Duration),
) -> Result<Report, DeployError> {
    let observed = observe(clients, env, spec).await?;
    let plan = plan(&[], &observed.resources);
    let zips = BTreeMap::new();
    let mut run = Run {
        clients,
        env,
        spec,
        zips: &zips,
        names: Names::new(env),
        facts: observed.facts.clone(),
        report: Report::default(),
        progress,
        moves: Vec::new(),
        migrate_move: None,
        release_id: release_id(),
    };
    run.report.plan = plan.clone();
    for change in &plan.changes {
        let started = Instant::now();
        run.delete(change).await?;
        run.step(change, started.elapsed());
    }
    Ok(run.report)
}

struct Run<'a> {
    clients: &'a Clients,
    env: &'a EnvName,
    spec: &'a EnvironmentSpec,
    zips: &'a BTreeMap<String, Zip>,
    names: Names,
    facts: Facts,
    report: Report,
    progress: &'a dyn Fn(&str, Duration),
    /// Aliases to move once the migrations ran.
    moves: Vec<Move>,
    /// migrate's alias, moved once its new version ran the migrations.
    migrate_move: Option<Move>,
    /// Names this deploy's alias moves, so rollback can find them: the start time in ms.
    release_id: String,
}

fn release_id() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis().to_string())
        .unwrap_or_default()
}

fn sdk_tags_map(resource: &Resource) -> std::collections::HashMap<String, String> {
    resource
        .props
        .get("tags")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
        .unwrap_or_default()
}

fn rds_tags(resource: &Resource) -> Vec<aws_sdk_rds::types::Tag> {
    sdk_tags_map(resource)
        .into_iter()
        .map(|(k, v)| aws_sdk_rds::types::Tag::builder().key(k).value(v).build())
        .collect()
}

fn prop_str<'r>(resource: &'r Resource, key: &str) -> &'r str {
    resource.props.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn prop_list(resource: &Resource, key: &str) -> Vec<String> {
    resource
        .props
        .get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

impl Run<'_> {
    fn step(&mut self, change: &Change, took: Duration) {
        let verb = match change.action {
            Action::Create => "created",
            Action::Update => "updated",
            Action::Delete => "deleted",
        };
        let line = format!("{verb} {}", change.resource);
        (self.progress)(&line, took);
    }

    fn region(&self) -> &str {
        &self.clients.region
    }

    fn crate_of(&self, function: &str) -> String {
        function.strip_prefix(&format!("{}-", self.names.prefix)).unwrap_or(function).to_owned()
    }

    async fn apply(&mut self, change: &Change, want: &Resource, have: Option<&Resource>) -> Result<(), DeployError> {
        match want.kind {
            Kind::DbSubnetGroup => self.subnet_group(change, want).await,
            Kind::DbCluster => self.cluster(change, want).await,
            Kind::DbInstance => self.instance(change, want).await,
            Kind::Role => self.role(change, want, have).await,
            Kind::Function => self.function(change, want).await,
            Kind::RestApi => self.rest_api(change, want).await,
            Kind::Stage => self.stage(change, want).await,
        }
    }

    async fn refresh_database_facts(&mut self) -> Result<(), DeployError> {
        let out = self
            .clients
            .rds
            .describe_db_clusters()
            .db_cluster_identifier(self.names.cluster())
            .send()
            .await
            .map_err(aws_error("reading the aurora cluster"))?;
        if let Some(cluster) = out.db_clusters().first() {
            self.facts.db_endpoint = cluster.endpoint().map(str::to_owned);
            self.facts.db_secret_arn = cluster.master_user_secret().and_then(|s| s.secret_arn()).map(str::to_owned);
        }
        Ok(())
    }

    async fn subnet_group(&mut self, change: &Change, want: &Resource) -> Result<(), DeployError> {
        let rds = &self.clients.rds;
        let subnets = prop_list(want, "subnet_ids");
        if change.action == Action::Create {
            let tags = rds_tags(want);
            rds.create_db_subnet_group()
                .db_subnet_group_name(&want.name)
                .db_subnet_group_description(format!("{APP} {}", self.env))
                .set_subnet_ids(Some(subnets))
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(aws_error(format!("creating db subnet group {}", want.name)))?;
        } else {
            rds.modify_db_subnet_group()
                .db_subnet_group_name(&want.name)
                .set_subnet_ids(Some(subnets))
                .send()
                .await
                .map_err(aws_error(format!("updating db subnet group {}", want.name)))?;
        }
        Ok(())
    }

    async fn cluster(&mut self, change: &Change, want: &Resource) -> Result<(), DeployError> {
        use aws_sdk_rds::client::Waiters;
        let rds = &self.clients.rds;
        let db = &self.spec.database;
        let scaling = aws_sdk_rds::types::ServerlessV2ScalingConfiguration::builder()
            .min_capacity(db.min_capacity.acus())
            .max_capacity(db.max_capacity.acus())
            .build();
        let groups = prop_list(want, "security_group_ids");
        if change.action == Action::Create {
            let tags = rds_tags(want);
            rds.create_db_cluster()
                .db_cluster_identifier(&want.name)
                .engine("aurora-postgresql")
                .engine_version(&db.engine_version)
                .database_name(DATABASE_NAME)
                .master_username(MASTER_USER)
                // RDS makes and rotates the password in Secrets Manager: it never passes through here.
                .manage_master_user_password(true)
                .enable_iam_database_authentication(true)
                .storage_encrypted(true)
                .serverless_v2_scaling_configuration(scaling)
                .deletion_protection(db.deletion_protection)
                .backup_retention_period(db.backup_retention_days.get() as i32)
                .set_db_subnet_group_name(want.props.get("subnet_group").and_then(Value::as_str).map(str::to_owned))
                .set_vpc_security_group_ids(if groups.is_empty() { None } else { Some(groups) })
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(aws_error(format!("creating aurora cluster {}", want.name)))?;
        } else {
            rds.modify_db_cluster()
                .db_cluster_identifier(&want.name)
                .engine_version(&db.engine_version)
                .allow_major_version_upgrade(false)
                .serverless_v2_scaling_configuration(scaling)
                .deletion_protection(db.deletion_protection)
                .backup_retention_period(db.backup_retention_days.get() as i32)
                .set_vpc_security_group_ids(if groups.is_empty() { None } else { Some(groups) })
                .apply_immediately(true)
                .send()
                .await
                .map_err(aws_error(format!("updating aurora cluster {}", want.name)))?;
            if change.fields.iter().any(|f| f == "tags") {
                self.rds_tag(
                    &format!("arn:aws:rds:{}:{}:cluster:{}", self.region(), self.facts.account_id, want.name),
                    want,
                )
                .await?;
            }
        }
        rds.wait_until_db_cluster_available()
            .db_cluster_identifier(&want.name)
            .wait(DB_WAIT)
            .await
            .map_err(aws_error(format!("waiting for aurora cluster {}", want.name)))?;
        Ok(())
    }

    async fn rds_tag(&self, arn: &str, want: &Resource) -> Result<(), DeployError> {
        let tags = rds_tags(want);
        self.clients
            .rds
            .add_tags_to_resource()
            .resource_name(arn)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(aws_error("tagging"))?;
        Ok(())
    }

    async fn instance(&mut self, change: &Change, want: &Resource) -> Result<(), DeployError> {
        use aws_sdk_rds::client::Waiters;
        let rds = &self.clients.rds;
        if change.action == Action::Create {
            let tags = rds_tags(want);
            rds.create_db_instance()
                .db_instance_identifier(&want.name)
                .db_cluster_identifier(self.names.cluster())
                .engine("aurora-postgresql")
                .db_instance_class("db.serverless")
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(aws_error(format!("creating aurora instance {}", want.name)))?;
        } else {
            let arn = format!("arn:aws:rds:{}:{}:db:{}", self.region(), self.facts.account_id, want.name);
            self.rds_tag(&arn, want).await?;
        }
        rds.wait_until_db_instance_available()
            .db_instance_identifier(&want.name)
            .wait(DB_WAIT)
            .await
            .map_err(aws_error(format!("waiting for aurora instance {}", want.name)))?;
        Ok(())
    }

    async fn role(&mut self, change: &Change, want: &Resource, have: Option<&Resource>) -> Result<(), DeployError> {
        let iam = &self.clients.iam;
        let name = &want.name;
        let tags: Vec<aws_sdk_iam::types::Tag> = sdk_tags_map(want)
            .into_iter()
            .filter_map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build().ok())
            .collect();
        if change.action == Action::Create {
            iam.create_role()
                .role_name(name)
                .path(role_path(self.env))
                .assume_role_policy_document(LAMBDA_TRUST)
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(aws_error(format!("creating role {name}")))?;
        } else if change.fields.iter().any(|f| f == "tags") {
            iam.tag_role()
                .role_name(name)
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(aws_error(format!("tagging role {name}")))?;
        }
        let wanted = prop_list(want, "managed_policies");
        let existing = have.map(|h| prop_list(h, "managed_policies")).unwrap_or_default();
        for arn in wanted.iter().filter(|a| !existing.contains(a)) {
            iam.attach_role_policy()
                .role_name(name)
                .policy_arn(arn)
                .send()
                .await
                .map_err(aws_error(format!("attaching {arn} to {name}")))?;
        }
        for arn in existing.iter().filter(|a| !wanted.contains(a)) {
            iam.detach_role_policy()
                .role_name(name)
                .policy_arn(arn)
                .send()
                .await
                .map_err(aws_error(format!("detaching {arn} from {name}")))?;
        }
        if change.action == Action::Create || change.fields.iter().any(|f| f == "inline_policy") {
            let document = want.props.get("inline_policy").map(Value::to_string).unwrap_or_default();
            iam.put_role_policy()
                .role_name(name)
                .policy_name(INLINE_POLICY)
                .policy_document(document)
                .send()
                .await
                .map_err(aws_error(format!("writing the policy of role {name}")))?;
        }
        Ok(())
    }

    async fn function(&mut self, change: &Change, want: &Resource) -> Result<(), DeployError> {
        use aws_sdk_lambda::client::Waiters;
        let lambda = &self.clients.lambda;
        let name = &want.name;
        let crate_name = self.crate_of(name);
        let role_arn =
            format!("arn:aws:iam::{}:role{}{}", self.facts.account_id, role_path(self.env), prop_str(want, "role"));
        let env_vars: std::collections::HashMap<String, String> = want
            .props
            .get("env")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
            .unwrap_or_default();
        let environment = Environment::builder().set_variables(Some(env_vars)).build();
        let subnets = prop_list(want, "subnet_ids");
        let vpc = VpcConfig::builder()
            .set_subnet_ids(Some(subnets.clone()))
            .set_security_group_ids(Some(prop_list(want, "security_group_ids")))
            .build();
        let architecture = Architecture::from(prop_str(want, "architecture"));
        // JSON log lines for CloudWatch: Lambda then sets AWS_LAMBDA_LOG_FORMAT, which the
        // functions' tracing follows. Not part of the diff: moto does not report it back.
        let logging = LoggingConfig::builder().log_format(LogFormat::Json).build();
        let memory = want.props.get("memory_mb").and_then(Value::as_i64).unwrap_or(256) as i32;
        let timeout = want.props.get("timeout_seconds").and_then(Value::as_i64).unwrap_or(10) as i32;
        let changed = |field: &str| change.action == Action::Create || change.fields.iter().any(|f| f == field);
        let zip = || -> Result<Vec<u8>, DeployError> {
            let zip = self
                .zips
                .get(&crate_name)
                .ok_or_else(|| DeployError::Refused(format!("no zip built for {crate_name}")))?;
            std::fs::read(&zip.path).map_err(|e| DeployError::Refused(format!("reading {}: {e}", zip.path.display())))
        };

        if change.action == Action::Create {
            let code = FunctionCode::builder().zip_file(Blob::new(zip()?)).build();
            // A role created seconds ago may not be assumable by Lambda yet: IAM is eventually
            // consistent. Retry that one error with backoff, for up to about a minute.
            let mut delay = Duration::from_secs(1);
            loop {
                let result = lambda
                    .create_function()
                    .function_name(name)
                    .role(&role_arn)
                    .runtime(Runtime::Providedal2023)
                    .handler("bootstrap")
                    .architectures(architecture.clone())
                    .memory_size(memory)
                    .timeout(timeout)
                    .environment(environment.clone())
                    .logging_config(logging.clone())
                    .set_vpc_config(if subnets.is_empty() { None } else { Some(vpc.clone()) })
                    .code(code.clone())
                    .set_tags(Some(sdk_tags_map(want)))
                    .send()
                    .await;
                match result {
                    Ok(_) => break,
                    Err(e) if e.code() == Some("InvalidParameterValueException") && delay < Duration::from_secs(40) => {
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                    }
                    Err(e) => return Err(aws_error(format!("creating function {name}"))(e)),
                }
            }
            lambda
                .wait_until_function_active_v2()
                .function_name(name)
                .wait(FUNCTION_WAIT)
                .await
                .map_err(aws_error(format!("waiting for {name}")))?;
        } else {
            let config_fields = [
                "role",
                "runtime",
                "handler",
                "memory_mb",
                "timeout_seconds",
                "env",
                "subnet_ids",
                "security_group_ids",
            ];
            if config_fields.iter().any(|f| changed(f)) {
                lambda
                    .update_function_configuration()
                    .function_name(name)
                    .role(&role_arn)
                    .runtime(Runtime::Providedal2023)
                    .handler("bootstrap")
                    .memory_size(memory)
                    .timeout(timeout)
                    .environment(environment)
                    .logging_config(logging)
                    .vpc_config(vpc)
                    .send()
                    .await
                    .map_err(aws_error(format!("updating the configuration of {name}")))?;
                lambda
                    .wait_until_function_updated_v2()
                    .function_name(name)
                    .wait(FUNCTION_WAIT)
                    .await
                    .map_err(aws_error(format!("waiting for {name}")))?;
            }
            // Code goes up only when its SHA-256 differs from the function's CodeSha256.
            if changed("code_sha256") || changed("architecture") {
                lambda
                    .update_function_code()
                    .function_name(name)
                    .zip_file(Blob::new(zip()?))
                    .architectures(architecture)
                    .send()
                    .await
                    .map_err(aws_error(format!("uploading the code of {name}")))?;
                lambda
                    .wait_until_function_updated_v2()
                    .function_name(name)
                    .wait(FUNCTION_WAIT)
                    .await
                    .map_err(aws_error(format!("waiting for {name}")))?;
            }
            if changed("tags") {
                let arn = format!("arn:aws:lambda:{}:{}:function:{name}", self.region(), self.facts.account_id);
                lambda
                    .tag_resource()
                    .resource(arn)
                    .set_tags(Some(sdk_tags_map(want)))
                    .send()
                    .await
                    .map_err(aws_error(format!("tagging {name}")))?;
            }
        }
        if changed("reserved_concurrency") {
            match want.props.get("reserved_concurrency").and_then(Value::as_i64) {
                Some(n) => {
                    lambda
                        .put_function_concurrency()
                        .function_name(name)
                        .reserved_concurrent_executions(n as i32)
                        .send()
                        .await
                        .map_err(aws_error(format!("reserving concurrency of {name}")))?;
                }
                None if change.action == Action::Update => {
                    lambda
                        .delete_function_concurrency()
                        .function_name(name)
                        .send()
                        .await
                        .map_err(aws_error(format!("releasing concurrency of {name}")))?;
                }
                None => {}
            }
        }

        // Publish a version and move `live` only when what it runs differs.
        let only_bookkeeping =
            change.action == Action::Update && change.fields.iter().all(|f| f == "tags" || f == "reserved_concurrency");
        if !only_bookkeeping {
            let sha = self.zips.get(&crate_name).map(|z| z.code_sha256.clone());
            let version = lambda
                .publish_version()
                .function_name(name)
                .set_code_sha256(sha)
                .send()
                .await
                .map_err(aws_error(format!("publishing a version of {name}")))?
                .version()
                .unwrap_or_default()
                .to_owned();
            match lambda.get_alias().function_name(name).name(ALIAS).send().await {
                Ok(alias) => {
                    let current = alias.function_version().unwrap_or_default().to_owned();
                    let to_move = Move { function: name.clone(), from: current, to: version };
                    // Aliases move after the migrations ran: migrate's own once its new version
                    // has run them (a deploy cut short before that runs them again), the others
                    // through the canary when there is one.
                    if crate_name == "migrate" {
                        self.migrate_move = Some(to_move);
                    } else {
                        self.moves.push(to_move);
                    }
                }
                Err(e) if e.code() == Some("ResourceNotFoundException") => {
                    // A new function: nothing serves yet, so there is nothing to shift from.
                    lambda
                        .create_alias()
                        .function_name(name)
                        .name(ALIAS)
                        .function_version(&version)
                        .send()
                        .await
                        .map_err(aws_error(format!("creating the live alias of {name}")))?;
                }
                Err(e) => return Err(aws_error(format!("reading the live alias of {name}"))(e)),
            }
        }
        Ok(())
    }

    async fn rest_api(&mut self, change: &Change, want: &Resource) -> Result<(), DeployError> {
        let apigw = &self.clients.apigateway;
        let api_id = match (&self.facts.api_id, change.action) {
            (Some(id), Action::Update) => id.clone(),
            _ => {
                let created = apigw
                    .create_rest_api()
                    .name(&want.name)
                    .description(format!("{APP} {}: routes from promo_core::routes", self.env))
                    .endpoint_configuration(EndpointConfiguration::builder().types(EndpointType::Regional).build())
                    .set_tags(Some(sdk_tags_map(want)))
                    .send()
                    .await
                    .map_err(aws_error(format!("creating REST API {}", want.name)))?;
                let id = created.id().unwrap_or_default().to_owned();
                self.facts.api_id = Some(id.clone());
                id
            }
        };
        if change.action == Action::Create || change.fields.iter().any(|f| f == "routes") {
            self.build_routes(&api_id).await?;
        }
        if change.action == Action::Update && change.fields.iter().any(|f| f == "tags") {
            let arn = format!("arn:aws:apigateway:{}::/restapis/{api_id}", self.region());
            apigw
                .tag_resource()
                .resource_arn(arn)
                .set_tags(Some(sdk_tags_map(want)))
                .send()
                .await
                .map_err(aws_error("tagging the API"))?;
        }
        if change.action == Action::Create || change.fields.iter().any(|f| f == "invokers") {
            for crate_name in prop_list(want, "invokers") {
                let function = self.names.function(&crate_name);
                let result = self
                    .clients
                    .lambda
                    .add_permission()
                    .function_name(&function)
                    .qualifier(ALIAS)
                    .statement_id(permission_id(&api_id))
                    .action("lambda:InvokeFunction")
                    .principal("apigateway.amazonaws.com")
                    // Only this API may invoke the function, on any stage, method and route.
                    .source_arn(format!("arn:aws:execute-api:{}:{}:{api_id}/*", self.region(), self.facts.account_id))
                    .send()
                    .await;
                match result {
                    Ok(_) => {}
                    Err(e) if e.code() == Some("ResourceConflictException") => {}
                    Err(e) => return Err(aws_error(format!("letting the API invoke {function}"))(e)),
                }
            }
        }
        Ok(())
    }

    /// Rebuilds the API's resources, methods and AWS_PROXY integrations from the route table.
    async fn build_routes(&mut self, api_id: &str) -> Result<(), DeployError> {
        let apigw = &self.clients.apigateway;
        let existing = apigw
            .get_resources()
            .rest_api_id(api_id)
            .limit(500)
            .send()
            .await
            .map_err(aws_error("reading the API's resources"))?;
        let root =
            existing.items().iter().find(|r| r.path() == Some("/")).and_then(|r| r.id()).unwrap_or_default().to_owned();
        for top in existing.items().iter().filter(|r| r.parent_id() == Some(root.as_str())) {
            apigw
                .delete_resource()
                .rest_api_id(api_id)
                .resource_id(top.id().unwrap_or_default())
                .send()
                .await
                .map_err(aws_error("removing an old API resource"))?;
        }
        let mut ids: BTreeMap<String, String> = BTreeMap::from([("".to_owned(), root)]);
        for route in promo_core::routes::ROUTES {
            let mut path = String::new();
            for part in route.path.trim_start_matches('/').split('/') {
                let parent = ids[&path].clone();
                path = format!("{path}/{part}");
                if !ids.contains_key(&path) {
                    let created = apigw
                        .create_resource()
                        .rest_api_id(api_id)
                        .parent_id(parent)
                        .path_part(part)
                        .send()
                        .await
                        .map_err(aws_error(format!("creating API resource {path}")))?;
                    ids.insert(path.clone(), created.id().unwrap_or_default().to_owned());
                }
            }
            let resource_id = ids[&path].clone();
            // Authentication is the functions' job (JWT verification in promo_core::auth).
            apigw
                .put_method()
                .rest_api_id(api_id)
                .resource_id(&resource_id)
                .http_method(route.method)
                .authorization_type("NONE")
                .send()
                .await
                .map_err(aws_error(format!("creating {} {}", route.method, route.path)))?;
            let function = self.names.function(route.function.name());
            let target = alias_arn(self.region(), &self.facts.account_id, &function);
            apigw
                .put_integration()
                .rest_api_id(api_id)
                .resource_id(&resource_id)
                .http_method(route.method)
                .r#type(IntegrationType::AwsProxy)
                .integration_http_method("POST")
                .uri(format!(
                    "arn:aws:apigateway:{}:lambda:path/2015-03-31/functions/{target}/invocations",
                    self.region()
                ))
                .send()
                .await
                .map_err(aws_error(format!("integrating {} {}", route.method, route.path)))?;
        }
        Ok(())
    }

    async fn stage(&mut self, change: &Change, want: &Resource) -> Result<(), DeployError> {
        let apigw = &self.clients.apigateway;
        let api_id =
            self.facts.api_id.clone().ok_or_else(|| DeployError::Refused("the REST API does not exist".into()))?;
        let changed = |field: &str| change.action == Action::Create || change.fields.iter().any(|f| f == field);
        let deployment = if changed("deployment") {
            let created = apigw
                .create_deployment()
                .rest_api_id(&api_id)
                .description(prop_str(want, "deployment"))
                .send()
                .await
                .map_err(aws_error("deploying the API"))?;
            created.id().map(str::to_owned)
        } else {
            None
        };
        if change.action == Action::Create {
            apigw
                .create_stage()
                .rest_api_id(&api_id)
                .stage_name(&want.name)
                .set_deployment_id(deployment.clone())
                .set_tags(Some(sdk_tags_map(want)))
                .send()
                .await
                .map_err(aws_error(format!("creating stage {}", want.name)))?;
        }
        let mut patches = Vec::new();
        if let (Action::Update, Some(id)) = (change.action, &deployment) {
            patches.push(PatchOperation::builder().op(Op::Replace).path("/deploymentId").value(id).build());
        }
        if changed("rate_limit") || changed("burst_limit") {
            let rate = want.props.get("rate_limit").map(Value::to_string).unwrap_or_default();
            let burst = want.props.get("burst_limit").map(Value::to_string).unwrap_or_default();
            patches
                .push(PatchOperation::builder().op(Op::Replace).path("/*/*/throttling/rateLimit").value(rate).build());
            patches.push(
                PatchOperation::builder().op(Op::Replace).path("/*/*/throttling/burstLimit").value(burst).build(),
            );
        }
        if !patches.is_empty() {
            apigw
                .update_stage()
                .rest_api_id(&api_id)
                .stage_name(&want.name)
                .set_patch_operations(Some(patches))
                .send()
                .await
                .map_err(aws_error(format!("updating stage {}", want.name)))?;
        }
        if change.action == Action::Update && changed("tags") {
            // Tags of a stage live on the stage's ARN, not on the API's.
            let arn = format!("arn:aws:apigateway:{}::/restapis/{api_id}/stages/{}", self.region(), want.name);
            apigw
                .tag_resource()
                .resource_arn(arn)
                .set_tags(Some(sdk_tags_map(want)))
                .send()
                .await
                .map_err(aws_error("tagging the stage"))?;
        }
        Ok(())
    }

    /// Invokes one version (or the alias) of migrate; says which migration versions the
    /// database then has.
    async fn migrate(&mut self, qualifier: &str) -> Result<String, DeployError> {
        let function = self.names.function("migrate");
        let out = self
            .clients
            .lambda
            .invoke()
            .function_name(&function)
            .qualifier(qualifier)
            .payload(Blob::new("{}"))
            .send()
            .await
            .map_err(aws_error("invoking migrate"))?;
        if let Some(error) = out.function_error() {
            let payload = out.payload().map(|p| String::from_utf8_lossy(p.as_ref()).into_owned()).unwrap_or_default();
            return Err(DeployError::Refused(format!("migrate failed ({error}): {payload}")));
        }
        let payload: Option<Value> = out.payload().and_then(|p| serde_json::from_slice(p.as_ref()).ok());
        let applied = payload
            .as_ref()
            .and_then(|p| p.get("applied"))
            .and_then(Value::as_array)
            .map(|versions| versions.iter().map(Value::to_string).collect::<Vec<_>>().join(", "));
        Ok(match applied {
            Some(versions) => format!("migration versions {versions}"),
            None => "invoked migrate (it reported no versions)".to_owned(),
        })
    }

    async fn delete(&mut self, change: &Change) -> Result<(), DeployError> {
        use aws_sdk_rds::client::Waiters;
        let name = &change.name;
        match change.kind {
            Kind::Stage => {
                if let Some(api) = &self.facts.api_id {
                    let result = self.clients.apigateway.delete_stage().rest_api_id(api).stage_name(name).send().await;
                    if let Err(e) = result
                        && e.code() != Some("NotFoundException")
                    {
                        return Err(aws_error(format!("deleting stage {name}"))(e));
                    }
                }
            }
            Kind::RestApi => {
                if let Some(api) = self.facts.api_id.clone() {
                    self.clients
                        .apigateway
                        .delete_rest_api()
                        .rest_api_id(api)
                        .send()
                        .await
                        .map_err(aws_error("deleting the REST API"))?;
                    self.facts.api_id = None;
                }
            }
            Kind::Function => {
                self.clients
                    .lambda
                    .delete_function()
                    .function_name(name)
                    .send()
                    .await
                    .map_err(aws_error(format!("deleting {name}")))?;
            }
            Kind::Role => {
                let iam = &self.clients.iam;
                let attached = iam
                    .list_attached_role_policies()
                    .role_name(name)
                    .send()
                    .await
                    .map_err(aws_error("reading role policies"))?;
                for policy in attached.attached_policies() {
                    iam.detach_role_policy()
                        .role_name(name)
                        .policy_arn(policy.policy_arn().unwrap_or_default())
                        .send()
                        .await
                        .map_err(aws_error(format!("detaching a policy from {name}")))?;
                }
                let _ = iam.delete_role_policy().role_name(name).policy_name(INLINE_POLICY).send().await;
                iam.delete_role().role_name(name).send().await.map_err(aws_error(format!("deleting role {name}")))?;
            }
            Kind::DbInstance => {
                self.clients
                    .rds
                    .delete_db_instance()
                    .db_instance_identifier(name)
                    .send()
                    .await
                    .map_err(aws_error(format!("deleting {name}")))?;
                self.clients
                    .rds
                    .wait_until_db_instance_deleted()
                    .db_instance_identifier(name)
                    .wait(DB_WAIT)
                    .await
                    .map_err(aws_error(format!("waiting for {name} to go")))?;
            }
            Kind::DbCluster => {
                if self.spec.database.deletion_protection {
                    return Err(DeployError::Refused(format!(
                        "aurora cluster {name} has deletion protection: set database.deletion_protection: false and deploy before destroying"
                    )));
                }
                self.clients
                    .rds
                    .delete_db_cluster()
                    .db_cluster_identifier(name)
                    .skip_final_snapshot(true)
                    .send()
                    .await
                    .map_err(aws_error(format!("deleting {name}")))?;
                self.clients
                    .rds
                    .wait_until_db_cluster_deleted()
                    .db_cluster_identifier(name)
                    .wait(DB_WAIT)
                    .await
                    .map_err(aws_error(format!("waiting for {name} to go")))?;
            }
            Kind::DbSubnetGroup => {
                self.clients
                    .rds
                    .delete_db_subnet_group()
                    .db_subnet_group_name(name)
                    .send()
                    .await
                    .map_err(aws_error(format!("deleting {name}")))?;
            }
        }
        Ok(())
    }
}
