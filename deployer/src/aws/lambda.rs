//! Lambda: the environment's functions (one per crate), their published versions and `live`
//! aliases. Reads, create, update and delete side by side.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_lambda::operation::create_function::CreateFunctionError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Architecture, Environment, FunctionCode, FunctionConfiguration, LogFormat, LoggingConfig, Runtime, VpcConfig,
};
use promo_shared::routes::FUNCTION_CRATES;

use crate::apply::Context;
use crate::desired::{FunctionSpec, Known, LiveAlias, sorted};
use crate::error::{DeployError, aws, io};
use crate::names::{ALIAS, Names};
use crate::plan::{Action, Change};
use crate::release::Move;
use crate::tags::Tags;

use super::retry;
use super::wait::{self, Check};

const FUNCTION_WAIT: Duration = Duration::from_secs(5 * 60);
const LATEST: &str = "$LATEST";
/// How long IAM may take before Lambda can assume a new role (terraform-provider-aws waits as long).
const ROLE_PROPAGATION: Duration = Duration::from_secs(5 * 60);

/// The messages of `InvalidParameterValueException` that mean "IAM has not caught up yet":
/// the only ones worth retrying.
const NOT_YET: [&str; 2] = [
    "The role defined for the function cannot be assumed by Lambda",
    "The provided execution role does not have permissions to call CreateNetworkInterface on EC2",
];

/// Whether CreateFunction failed only because IAM has not caught up with a new role.
fn role_not_ready(error: Option<&CreateFunctionError>) -> bool {
    match error {
        Some(CreateFunctionError::InvalidParameterValueException(e)) => {
            e.message().is_some_and(|text| NOT_YET.iter().any(|m| text.contains(m)))
        }
        _ => false,
    }
}

/// The environment's functions as Lambda holds them: exactly the names it derives.
pub async fn observe(ctx_names: &Names, lambda: &aws_sdk_lambda::Client) -> Result<Vec<FunctionSpec>, DeployError> {
    let mut found = Vec::new();
    for crate_name in FUNCTION_CRATES {
        let name = ctx_names.function(crate_name);
        let out = match lambda.get_function().function_name(&name).send().await {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => continue,
            Err(e) => return Err(aws(format!("reading function {name}"))(e)),
        };
        if let Some(error) = out.tags_error() {
            // Without lambda:ListTags, GetFunction answers without tags: that is not "no tags".
            return Err(DeployError::Refused(format!(
                "cannot read the tags of function {name} ({}: {}): allow lambda:ListTags to the deployer",
                error.error_code(),
                error.message()
            )));
        }
        let Some(config) = out.configuration() else { continue };
        let live = live_alias(lambda, &name, config).await?;
        found.push(FunctionSpec {
            name: name.clone(),
            crate_name: crate_name.to_string(),
            role: config.role().and_then(|r| r.rsplit('/').next()).unwrap_or_default().to_owned(),
            runtime: config.runtime().map(|r| r.as_str().to_owned()).unwrap_or_default(),
            handler: config.handler().unwrap_or_default().to_owned(),
            architecture: config.architectures().first().map(|a| a.as_str().to_owned()).unwrap_or_default(),
            memory_mb: config.memory_size().unwrap_or_default(),
            timeout_seconds: config.timeout().unwrap_or_default(),
            reserved_concurrency: out.concurrency().and_then(|c| c.reserved_concurrent_executions()),
            env: environment(config).into_iter().map(|(k, v)| (k, Known::Value(v))).collect(),
            subnet_ids: sorted(config.vpc_config().map(|v| v.subnet_ids()).unwrap_or_default()),
            security_group_ids: sorted(config.vpc_config().map(|v| v.security_group_ids()).unwrap_or_default()),
            code_sha256: config.code_sha256().unwrap_or_default().to_owned(),
            live,
            tags: Tags::observed(out.tags().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str()))),
        });
    }
    Ok(found)
}

fn environment(config: &FunctionConfiguration) -> BTreeMap<String, String> {
    config.environment().and_then(|e| e.variables()).map(|v| v.clone().into_iter().collect()).unwrap_or_default()
}

/// What a version runs: every managed field but tags and concurrency, which are not versioned.
#[derive(PartialEq)]
struct Runs<'a> {
    role: Option<&'a str>,
    runtime: Option<&'a str>,
    handler: Option<&'a str>,
    architectures: Vec<&'a str>,
    memory: Option<i32>,
    timeout: Option<i32>,
    env: BTreeMap<String, String>,
    subnets: Vec<String>,
    groups: Vec<String>,
    code: Option<&'a str>,
}

fn runs(config: &FunctionConfiguration) -> Runs<'_> {
    Runs {
        role: config.role(),
        runtime: config.runtime().map(|r| r.as_str()),
        handler: config.handler(),
        architectures: config.architectures().iter().map(|a| a.as_str()).collect(),
        memory: config.memory_size(),
        timeout: config.timeout(),
        env: environment(config),
        subnets: sorted(config.vpc_config().map(|v| v.subnet_ids()).unwrap_or_default()),
        groups: sorted(config.vpc_config().map(|v| v.security_group_ids()).unwrap_or_default()),
        code: config.code_sha256(),
    }
}

/// Where `live` stands: current when it points at a version equal to `$LATEST` in what it runs.
async fn live_alias(
    lambda: &aws_sdk_lambda::Client,
    name: &str,
    latest: &FunctionConfiguration,
) -> Result<LiveAlias, DeployError> {
    let alias = match lambda.get_alias().function_name(name).name(ALIAS).send().await {
        Ok(alias) => alias,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
            return Ok(LiveAlias::Missing);
        }
        Err(e) => return Err(aws(format!("reading the live alias of {name}"))(e)),
    };
    // A canary that never finished (an interrupted deploy) is not a finished release.
    if canary_weights(&alias).is_some() {
        return Ok(LiveAlias::Canary);
    }
    let version = alias.function_version().unwrap_or_default();
    let published = lambda
        .get_function()
        .function_name(name)
        .qualifier(version)
        .send()
        .await
        .map_err(aws(format!("reading the live version of {name}")))?;
    let same = published.configuration().is_some_and(|p| runs(p) == runs(latest));
    Ok(if same { LiveAlias::Current } else { LiveAlias::Stale })
}

/// The version a `live` alias sends a share of its traffic to, and that share, while a canary runs.
pub fn canary_weights(alias: &aws_sdk_lambda::operation::get_alias::GetAliasOutput) -> Option<(String, f64)> {
    alias
        .routing_config()
        .and_then(|r| r.additional_version_weights())
        .and_then(|weights| weights.iter().next())
        .map(|(version, weight)| (version.clone(), *weight))
}

/// Creates or updates a function, publishes a version when what it runs changed, and says how
/// its `live` alias is to move (after the migrations). A new function's alias is made at once.
pub async fn apply(
    ctx: &Context<'_>,
    change: &Change,
    want: &FunctionSpec,
    have: Option<&FunctionSpec>,
) -> Result<Option<Move>, DeployError> {
    let lambda = &ctx.clients.lambda;
    let every = ctx.clients.timing.lambda_poll;
    let name = &want.name;
    let role_arn = ctx.facts.arns.role(&ctx.names.role_path(), &want.role);
    let mut variables = std::collections::HashMap::new();
    for (key, value) in &want.env {
        variables.insert(key.clone(), value.get(&format!("{name}'s {key}"))?.clone());
    }
    let environment = Environment::builder().set_variables(Some(variables)).build();
    let vpc = VpcConfig::builder()
        .set_subnet_ids(Some(want.subnet_ids.clone()))
        .set_security_group_ids(Some(want.security_group_ids.clone()))
        .build();
    let architecture = Architecture::from(want.architecture.as_str());
    // JSON log lines for CloudWatch: Lambda then sets AWS_LAMBDA_LOG_FORMAT, which the
    // functions' tracing follows. Not part of the diff: moto does not report it back.
    let logging = LoggingConfig::builder().log_format(LogFormat::Json).build();
    let zip = || -> Result<Vec<u8>, DeployError> {
        let zip = ctx
            .zips
            .get(&want.crate_name)
            .ok_or_else(|| DeployError::Internal(format!("no zip built for {}", want.crate_name)))?;
        std::fs::read(&zip.path).map_err(io(format!("reading {}", zip.path.display())))
    };

    if change.action == Action::Create {
        let code = FunctionCode::builder().zip_file(Blob::new(zip()?)).build();
        let create = lambda
            .create_function()
            .function_name(name)
            .role(&role_arn)
            .runtime(Runtime::from(want.runtime.as_str()))
            .handler(&want.handler)
            .architectures(architecture.clone())
            .memory_size(want.memory_mb)
            .timeout(want.timeout_seconds)
            .environment(environment.clone())
            .logging_config(logging.clone())
            .set_vpc_config((!want.subnet_ids.is_empty()).then(|| vpc.clone()))
            .code(code)
            .set_tags(Some(want.tags.to_map()));
        // A role created seconds ago may not be assumable by Lambda yet: IAM is eventually
        // consistent. Retry exactly the errors that mean that, never another invalid parameter.
        let started = std::time::Instant::now();
        loop {
            match create.clone().send().await {
                Ok(_) => break,
                Err(e) if role_not_ready(e.as_service_error()) && started.elapsed() < ROLE_PROPAGATION => {
                    tokio::time::sleep(ctx.clients.timing.role_retry).await;
                }
                Err(e) => return Err(aws(format!("creating function {name}"))(e)),
            }
        }
        wait_ready(ctx, name, LATEST).await?;
    } else {
        let config_fields =
            ["role", "runtime", "handler", "memory_mb", "timeout_seconds", "env", "subnet_ids", "security_group_ids"];
        if config_fields.iter().any(|f| change.changes(f)) {
            let update = lambda
                .update_function_configuration()
                .function_name(name)
                .role(&role_arn)
                .runtime(Runtime::from(want.runtime.as_str()))
                .handler(&want.handler)
                .memory_size(want.memory_mb)
                .timeout(want.timeout_seconds)
                .environment(environment)
                .logging_config(logging)
                .vpc_config(vpc);
            retry::unless_busy(every, || update.clone().send())
                .await
                .map_err(aws(format!("updating the configuration of {name}")))?;
            wait_ready(ctx, name, LATEST).await?;
        }
        // Code goes up only when its SHA-256 differs from the function's CodeSha256.
        if change.changes("code_sha256") || change.changes("architecture") {
            let upload = lambda
                .update_function_code()
                .function_name(name)
                .zip_file(Blob::new(zip()?))
                .architectures(architecture);
            retry::unless_busy(every, || upload.clone().send())
                .await
                .map_err(aws(format!("uploading the code of {name}")))?;
            wait_ready(ctx, name, LATEST).await?;
        }
        if let (true, Some(have)) = (change.changes("tags"), have) {
            retag(ctx, name, &want.tags, &have.tags).await?;
        }
    }
    if change.changes("reserved_concurrency") {
        match want.reserved_concurrency {
            Some(n) => {
                lambda
                    .put_function_concurrency()
                    .function_name(name)
                    .reserved_concurrent_executions(n)
                    .send()
                    .await
                    .map_err(aws(format!("reserving concurrency of {name}")))?;
            }
            None if change.action == Action::Update => {
                lambda
                    .delete_function_concurrency()
                    .function_name(name)
                    .send()
                    .await
                    .map_err(aws(format!("releasing concurrency of {name}")))?;
            }
            None => {}
        }
    }

    // Publish a version and move `live` only when what it runs differs.
    if !FunctionSpec::RUNTIME_FIELDS.iter().any(|f| change.changes(f)) {
        return Ok(None);
    }
    let publish = lambda.publish_version().function_name(name).code_sha256(&want.code_sha256);
    let version = retry::unless_busy(every, || publish.clone().send())
        .await
        .map_err(aws(format!("publishing a version of {name}")))?
        .version()
        .unwrap_or_default()
        .to_owned();
    // A new version is Pending for a moment: nothing may invoke it before it is Active.
    wait_ready(ctx, name, &version).await?;
    match lambda.get_alias().function_name(name).name(ALIAS).send().await {
        Ok(alias) => {
            let from = alias.function_version().unwrap_or_default().to_owned();
            Ok(Some(Move { function: name.clone(), from, to: version }))
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
            // A new function: nothing serves yet, so there is nothing to shift from.
            lambda
                .create_alias()
                .function_name(name)
                .name(ALIAS)
                .function_version(&version)
                .send()
                .await
                .map_err(aws(format!("creating the live alias of {name}")))?;
            Ok(None)
        }
        Err(e) => Err(aws(format!("reading the live alias of {name}"))(e)),
    }
}

/// Sets the tags the file has and removes those it no longer has.
async fn retag(ctx: &Context<'_>, name: &str, want: &Tags, have: &Tags) -> Result<(), DeployError> {
    let changes = want.changes_from(have);
    let arn = ctx.facts.arns.function(name);
    let lambda = &ctx.clients.lambda;
    if !changes.remove.is_empty() {
        lambda
            .untag_resource()
            .resource(&arn)
            .set_tag_keys(Some(changes.remove.clone()))
            .send()
            .await
            .map_err(aws(format!("untagging {name}")))?;
    }
    if !changes.set.is_empty() {
        lambda
            .tag_resource()
            .resource(&arn)
            .set_tags(Some(changes.set_map()))
            .send()
            .await
            .map_err(aws(format!("tagging {name}")))?;
    }
    Ok(())
}

/// Waits until `qualifier` of function `name` (`$LATEST` or a version) is Active and its last
/// update Successful; a Failed state is an error with Lambda's reason.
pub async fn wait_ready(ctx: &Context<'_>, name: &str, qualifier: &str) -> Result<(), DeployError> {
    let lambda = &ctx.clients.lambda;
    let what =
        if qualifier == "$LATEST" { format!("function {name}") } else { format!("version {qualifier} of {name}") };
    wait::until(&what, ctx.clients.timing.lambda_poll, FUNCTION_WAIT, ctx.progress, || async {
        let config = lambda
            .get_function_configuration()
            .function_name(name)
            .qualifier(qualifier)
            .send()
            .await
            .map_err(aws(format!("reading {what}")))?;
        let state = config.state().map(|s| s.as_str()).unwrap_or("Active");
        let update = config.last_update_status().map(|s| s.as_str()).unwrap_or("Successful");
        if state == "Failed" || update == "Failed" {
            let reason = config.state_reason().or(config.last_update_status_reason()).unwrap_or("no reason given");
            return Err(DeployError::Refused(format!("{what} failed to become ready: {reason}")));
        }
        Ok(if state == "Active" && update == "Successful" {
            Check::Ready
        } else {
            Check::NotYet(format!("state {state}, last update {update}"))
        })
    })
    .await
}

pub async fn delete(ctx: &Context<'_>, have: &FunctionSpec) -> Result<(), DeployError> {
    match ctx.clients.lambda.delete_function().function_name(&have.name).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(()),
        Err(e) => Err(aws(format!("deleting {}", have.name))(e)),
    }
}
