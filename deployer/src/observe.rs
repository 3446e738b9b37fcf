//! Reads what an environment has in AWS: only reads (Get*, List*, Describe*), in parallel
//! where they do not depend on each other. "Not found" is an answer here, not a failure.

use std::collections::BTreeMap;

use aws_sdk_lambda::error::ProvideErrorMetadata;
use serde_json::{Value, json};

use crate::aws::{Clients, DeployError, aws_error};
use crate::config::{EnvName, EnvironmentSpec};
use crate::desired::{ALIAS, Facts, Kind, Names, Resource};

pub const INLINE_POLICY: &str = "promo-codes";

/// What AWS holds of one environment, and the facts desired values depend on.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub resources: Vec<Resource>,
    pub facts: Facts,
}

/// IAM path of an environment's roles: listing it finds exactly this environment's roles.
pub fn role_path(env: &EnvName) -> String {
    format!("/promo-codes/{env}/")
}

fn not_found(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "NoSuchEntity"
                | "ResourceNotFoundException"
                | "NotFoundException"
                | "DBClusterNotFoundFault"
                | "DBInstanceNotFound"
                | "DBSubnetGroupNotFoundFault"
        )
    )
}

pub async fn observe(clients: &Clients, env: &EnvName, spec: &EnvironmentSpec) -> Result<Observed, DeployError> {
    let names = Names::new(env);
    let identity = clients.sts.get_caller_identity().send().await.map_err(aws_error("reading the account"))?;
    let account_id = identity.account().unwrap_or_default().to_owned();
    if let Some(expected) = &spec.account_id
        && expected.as_str() != account_id
    {
        return Err(DeployError::Refused(format!(
            "these credentials are for account {account_id}, but environment {env} lives in {}: refusing to touch it",
            expected.as_str()
        )));
    }

    let (roles, database, functions, api) = futures::join!(
        roles(clients, env),
        database(clients, &names),
        functions(clients, &names),
        api(clients, &names),
    );
    let (mut resources, (db_endpoint, db_secret_arn)) = database?;
    resources.extend(roles?);
    resources.extend(functions?);
    let (api_resources, api_id) = api?;
    resources.extend(api_resources);
    Ok(Observed { resources, facts: Facts { account_id, db_endpoint, db_secret_arn, api_id } })
}

fn tags_json<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Value {
    json!(pairs.map(|(k, v)| (k.to_owned(), v.to_owned())).collect::<BTreeMap<_, _>>())
}

async fn roles(clients: &Clients, env: &EnvName) -> Result<Vec<Resource>, DeployError> {
    let mut found = Vec::new();
    let mut pages = clients.iam.list_roles().path_prefix(role_path(env)).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws_error("listing roles"))?;
        for role in page.roles() {
            found.push(role.role_name().to_owned());
        }
    }
    let mut resources = Vec::new();
    for name in found {
        let attached = clients
            .iam
            .list_attached_role_policies()
            .role_name(&name)
            .send()
            .await
            .map_err(aws_error(format!("reading the policies of role {name}")))?;
        let mut managed: Vec<String> =
            attached.attached_policies().iter().filter_map(|p| p.policy_arn().map(str::to_owned)).collect();
        managed.sort();
        let inline = match clients.iam.get_role_policy().role_name(&name).policy_name(INLINE_POLICY).send().await {
            Ok(out) => {
                let decoded = percent_encoding::percent_decode_str(out.policy_document()).decode_utf8_lossy();
                serde_json::from_str(&decoded).unwrap_or(Value::Null)
            }
            Err(e) if not_found(e.code()) => Value::Null,
            Err(e) => return Err(aws_error(format!("reading the policy of role {name}"))(e)),
        };
        let tags =
            clients.iam.list_role_tags().role_name(&name).send().await.map_err(aws_error("reading role tags"))?;
        let tags = tags_json(tags.tags().iter().map(|t| (t.key(), t.value())));
        resources.push(Resource {
            kind: Kind::Role,
            name,
            props: [("managed_policies", json!(managed)), ("inline_policy", inline), ("tags", tags)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        });
    }
    Ok(resources)
}

type DbFacts = (Option<String>, Option<String>);

async fn database(clients: &Clients, names: &Names) -> Result<(Vec<Resource>, DbFacts), DeployError> {
    let mut resources = Vec::new();
    match clients.rds.describe_db_subnet_groups().db_subnet_group_name(names.subnet_group()).send().await {
        Ok(out) => {
            if let Some(group) = out.db_subnet_groups().first() {
                let mut subnets: Vec<String> =
                    group.subnets().iter().filter_map(|s| s.subnet_identifier().map(str::to_owned)).collect();
                subnets.sort();
                let tags = rds_tags(clients, group.db_subnet_group_arn()).await?;
                resources.push(resource(
                    Kind::DbSubnetGroup,
                    names.subnet_group(),
                    [("subnet_ids", json!(subnets)), ("tags", tags)],
                ));
            }
        }
        Err(e) if not_found(e.code()) => {}
        Err(e) => return Err(aws_error("reading the db subnet group")(e)),
    }

    let mut facts = (None, None);
    match clients.rds.describe_db_clusters().db_cluster_identifier(names.cluster()).send().await {
        Ok(out) => {
            if let Some(cluster) = out.db_clusters().first() {
                let scaling = cluster.serverless_v2_scaling_configuration();
                let mut groups: Vec<String> = cluster
                    .vpc_security_groups()
                    .iter()
                    .filter_map(|g| g.vpc_security_group_id().map(str::to_owned))
                    .collect();
                groups.sort();
                let subnet_group = match cluster.db_subnet_group() {
                    Some(g) if g == names.subnet_group() => json!(g),
                    _ => Value::Null,
                };
                resources.push(resource(
                    Kind::DbCluster,
                    names.cluster(),
                    [
                        ("engine_version", json!(cluster.engine_version())),
                        ("min_capacity", json!(scaling.and_then(|s| s.min_capacity()))),
                        ("max_capacity", json!(scaling.and_then(|s| s.max_capacity()))),
                        ("deletion_protection", json!(cluster.deletion_protection())),
                        ("backup_retention_days", json!(cluster.backup_retention_period())),
                        ("subnet_group", subnet_group),
                        ("security_group_ids", json!(groups)),
                        (
                            "tags",
                            tags_json(
                                cluster.tag_list().iter().map(|t| (t.key().unwrap_or(""), t.value().unwrap_or(""))),
                            ),
                        ),
                    ],
                ));
                facts = (
                    cluster.endpoint().map(str::to_owned),
                    cluster.master_user_secret().and_then(|s| s.secret_arn()).map(str::to_owned),
                );
            }
        }
        Err(e) if not_found(e.code()) => {}
        Err(e) => return Err(aws_error("reading the aurora cluster")(e)),
    }

    match clients.rds.describe_db_instances().db_instance_identifier(names.instance()).send().await {
        Ok(out) => {
            if let Some(instance) = out.db_instances().first() {
                resources.push(resource(
                    Kind::DbInstance,
                    names.instance(),
                    [
                        ("cluster", json!(instance.db_cluster_identifier())),
                        ("class", json!(instance.db_instance_class())),
                        (
                            "tags",
                            tags_json(
                                instance.tag_list().iter().map(|t| (t.key().unwrap_or(""), t.value().unwrap_or(""))),
                            ),
                        ),
                    ],
                ));
            }
        }
        Err(e) if not_found(e.code()) => {}
        Err(e) => return Err(aws_error("reading the aurora instance")(e)),
    }
    Ok((resources, facts))
}

async fn rds_tags(clients: &Clients, arn: Option<&str>) -> Result<Value, DeployError> {
    let Some(arn) = arn else { return Ok(json!({})) };
    let out =
        clients.rds.list_tags_for_resource().resource_name(arn).send().await.map_err(aws_error("reading tags"))?;
    Ok(tags_json(out.tag_list().iter().map(|t| (t.key().unwrap_or(""), t.value().unwrap_or("")))))
}

fn resource<const N: usize>(kind: Kind, name: String, props: [(&str, Value); N]) -> Resource {
    Resource { kind, name, props: props.into_iter().map(|(k, v)| (k.to_owned(), v)).collect() }
}

/// The function settings the deployer manages, from a function's configuration.
fn function_fields(config: &aws_sdk_lambda::types::FunctionConfiguration) -> BTreeMap<String, Value> {
    let role = config.role().and_then(|r| r.rsplit('/').next()).unwrap_or_default();
    let env: BTreeMap<String, String> =
        config.environment().and_then(|e| e.variables()).map(|v| v.clone().into_iter().collect()).unwrap_or_default();
    let mut subnets: Vec<String> = config.vpc_config().map(|v| v.subnet_ids().to_vec()).unwrap_or_default();
    subnets.sort();
    let mut groups: Vec<String> = config.vpc_config().map(|v| v.security_group_ids().to_vec()).unwrap_or_default();
    groups.sort();
    [
        ("role", json!(role)),
        ("runtime", json!(config.runtime().map(|r| r.as_str()))),
        ("handler", json!(config.handler())),
        ("architecture", json!(config.architectures().first().map(|a| a.as_str()))),
        ("memory_mb", json!(config.memory_size())),
        ("timeout_seconds", json!(config.timeout())),
        ("env", json!(env)),
        ("subnet_ids", json!(subnets)),
        ("security_group_ids", json!(groups)),
        ("code_sha256", json!(config.code_sha256())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

async fn functions(clients: &Clients, names: &Names) -> Result<Vec<Resource>, DeployError> {
    let prefix = format!("{}-", names.prefix);
    let mut found = Vec::new();
    let mut pages = clients.lambda.list_functions().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws_error("listing functions"))?;
        for function in page.functions() {
            if let Some(name) = function.function_name().filter(|n| n.starts_with(&prefix)) {
                found.push(name.to_owned());
            }
        }
    }
    let mut resources = Vec::new();
    for name in found {
        let out = clients
            .lambda
            .get_function()
            .function_name(&name)
            .send()
            .await
            .map_err(aws_error(format!("reading function {name}")))?;
        let Some(config) = out.configuration() else { continue };
        let mut props = function_fields(config);
        props.insert(
            "reserved_concurrency".into(),
            json!(out.concurrency().and_then(|c| c.reserved_concurrent_executions())),
        );
        let tags: BTreeMap<String, String> = out.tags().map(|t| t.clone().into_iter().collect()).unwrap_or_default();
        props.insert("tags".into(), json!(tags));
        // `live` is current when it points at a version equal to $LATEST in every managed field.
        let live = match clients.lambda.get_alias().function_name(&name).name(ALIAS).send().await {
            Ok(alias) => {
                let version = alias.function_version().unwrap_or_default();
                let published = clients
                    .lambda
                    .get_function_configuration()
                    .function_name(&name)
                    .qualifier(version)
                    .send()
                    .await
                    .map_err(aws_error(format!("reading the live version of {name}")))?;
                let same = function_fields(&to_config(&published)) == function_fields(config);
                // A canary that never finished (an interrupted deploy) is not a finished release.
                if canary_weights(&alias).is_some() {
                    "canary"
                } else if same {
                    "current"
                } else {
                    "stale"
                }
            }
            Err(e) if not_found(e.code()) => "missing",
            Err(e) => return Err(aws_error(format!("reading the alias of {name}"))(e)),
        };
        props.insert("live_alias".into(), json!(live));
        resources.push(Resource { kind: Kind::Function, name, props });
    }
    Ok(resources)
}

/// The version a `live` alias sends a share of its traffic to, and that share, while a canary runs.
pub fn canary_weights(alias: &aws_sdk_lambda::operation::get_alias::GetAliasOutput) -> Option<(String, f64)> {
    alias
        .routing_config()
        .and_then(|r| r.additional_version_weights())
        .and_then(|weights| weights.iter().next())
        .map(|(version, weight)| (version.clone(), *weight))
}

/// GetFunctionConfiguration's output as a `FunctionConfiguration`, to compare like with like.
fn to_config(
    out: &aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput,
) -> aws_sdk_lambda::types::FunctionConfiguration {
    aws_sdk_lambda::types::FunctionConfiguration::builder()
        .set_role(out.role().map(str::to_owned))
        .set_runtime(out.runtime().cloned())
        .set_handler(out.handler().map(str::to_owned))
        .set_architectures(Some(out.architectures().to_vec()))
        .set_memory_size(out.memory_size())
        .set_timeout(out.timeout())
        .set_environment(out.environment().cloned())
        .set_logging_config(out.logging_config().cloned())
        .set_vpc_config(out.vpc_config().cloned())
        .set_code_sha256(out.code_sha256().map(str::to_owned))
        .build()
}

/// The REST API and its stages: routes, the functions that let it invoke them, throttling.
async fn api(clients: &Clients, names: &Names) -> Result<(Vec<Resource>, Option<String>), DeployError> {
    let mut api = None;
    let mut pages = clients.apigateway.get_rest_apis().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws_error("listing REST APIs"))?;
        if let Some(found) = page.items().iter().find(|a| a.name() == Some(names.api().as_str())) {
            api = Some(found.clone());
        }
    }
    let Some(api) = api else { return Ok((Vec::new(), None)) };
    let api_id = api.id().unwrap_or_default().to_owned();

    let mut routes = Vec::new();
    let mut pages = clients.apigateway.get_resources().rest_api_id(&api_id).embed("methods").into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws_error("reading the API's resources"))?;
        for item in page.items() {
            for (method, detail) in item.resource_methods().into_iter().flatten() {
                let target = detail
                    .method_integration()
                    .and_then(|i| i.uri())
                    .and_then(|uri| uri.split(":function:").nth(1))
                    .and_then(|rest| rest.split(':').next())
                    .unwrap_or("?");
                routes.push(format!("{method} {} -> {target}", item.path().unwrap_or("")));
            }
        }
    }
    routes.sort();

    let mut invokers = Vec::new();
    for crate_name in promo_core::routes::Function::ALL.map(|f| f.name()) {
        let function = format!("{}-{crate_name}", names.prefix);
        match clients.lambda.get_policy().function_name(&function).qualifier(ALIAS).send().await {
            Ok(policy) => {
                if policy.policy().unwrap_or_default().contains(&permission_id(&api_id)) {
                    invokers.push(crate_name.to_owned());
                }
            }
            Err(e) if not_found(e.code()) => {}
            Err(e) => return Err(aws_error(format!("reading the permissions of {function}"))(e)),
        }
    }
    invokers.sort();
    let tags: BTreeMap<String, String> = api.tags().map(|t| t.clone().into_iter().collect()).unwrap_or_default();
    let mut resources = vec![resource(
        Kind::RestApi,
        names.api(),
        [("routes", json!(routes)), ("invokers", json!(invokers)), ("tags", json!(tags))],
    )];

    let stages =
        clients.apigateway.get_stages().rest_api_id(&api_id).send().await.map_err(aws_error("reading stages"))?;
    for stage in stages.item() {
        let deployment = match stage.deployment_id() {
            Some(id) => clients
                .apigateway
                .get_deployment()
                .rest_api_id(&api_id)
                .deployment_id(id)
                .send()
                .await
                .map_err(aws_error("reading the deployment"))?
                .description()
                .map(str::to_owned),
            None => None,
        };
        let settings = stage.method_settings().and_then(|m| m.get("*/*"));
        let stage_tags: BTreeMap<String, String> =
            stage.tags().map(|t| t.clone().into_iter().collect()).unwrap_or_default();
        resources.push(resource(
            Kind::Stage,
            stage.stage_name().unwrap_or_default().to_owned(),
            [
                ("deployment", json!(deployment)),
                ("rate_limit", json!(settings.map(|s| s.throttling_rate_limit()))),
                ("burst_limit", json!(settings.map(|s| s.throttling_burst_limit()))),
                ("tags", json!(stage_tags)),
            ],
        ));
    }
    Ok((resources, Some(api_id)))
}

/// The statement id of the permission that lets one API invoke a function's alias.
pub fn permission_id(api_id: &str) -> String {
    format!("apigateway-{api_id}")
}
