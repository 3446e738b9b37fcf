//! What is deployed, as `cargo xtask outputs` prints it (CONTRACT.md section 1).

use serde_json::{Map, Value, json};

use crate::aws::Clients;
use crate::config::{EnvName, EnvironmentSpec};
use crate::error::{DeployError, aws as aws_error};
use crate::names::{ALIAS, Names};
use crate::observe::observe;

pub async fn outputs(clients: &Clients, env: &EnvName, spec: &EnvironmentSpec) -> Result<Value, DeployError> {
    let observed = observe(clients, env, spec).await?;
    let names = Names::new(env);
    let mut functions = Map::new();
    for crate_name in promo_shared::routes::FUNCTION_CRATES {
        let name = names.function(crate_name);
        // A function not deployed (yet) has no outputs; any other failure is one.
        let alias = match clients.lambda.get_alias().function_name(&name).name(ALIAS).send().await {
            Ok(alias) => alias,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => continue,
            Err(e) => return Err(aws_error(format!("reading the live alias of {name}"))(e)),
        };
        let live = clients
            .lambda
            .get_function_configuration()
            .function_name(&name)
            .qualifier(alias.function_version().unwrap_or_default())
            .send()
            .await
            .map_err(aws_error(format!("reading the live version of {name}")))?;
        functions.insert(
            crate_name.to_owned(),
            json!({
                "function_name": name,
                "alias_arn": alias.alias_arn(),
                "code_sha256": live.code_sha256(),
            }),
        );
    }
    let api_id = observed.facts.api_id.clone();
    let api_url = api_id.as_ref().map(|id| match &clients.emulator {
        Some(emulator) => emulator_stage_url(emulator, id, &spec.api.stage),
        None => {
            format!("https://{id}.execute-api.{}.{}/{}", spec.region, observed.facts.arns.dns_suffix(), spec.api.stage)
        }
    });
    Ok(json!({
        "api_url": api_url,
        "api_id": api_id,
        "stage": spec.api.stage,
        "functions": functions,
        "database": {
            "cluster_id": observed.facts.db_endpoint.as_ref().map(|_| names.cluster()),
            "endpoint": observed.facts.db_endpoint,
        },
    }))
}

/// Where the emulator serves a deployed stage (tools/data_plane.py): under its own address, as
/// LocalStack does, since `<id>.execute-api...` resolves to AWS.
pub fn emulator_stage_url(emulator: &str, api_id: &str, stage: &str) -> String {
    format!("{}/restapis/{api_id}/{stage}/_user_request_", emulator.trim_end_matches('/'))
}
