//! What is deployed, as `cargo xtask outputs` prints it (CONTRACT.md section 1).

use serde_json::{Map, Value, json};

use crate::aws::{Clients, DeployError, aws_error};
use crate::config::{EnvName, EnvironmentSpec};
use crate::desired::{ALIAS, Names};
use crate::observe::observe;

pub async fn outputs(clients: &Clients, env: &EnvName, spec: &EnvironmentSpec) -> Result<Value, DeployError> {
    let observed = observe(clients, env, spec).await?;
    let names = Names::new(env);
    let mut functions = Map::new();
    for crate_name in promo_core::routes::FUNCTION_CRATES {
        let name = names.function(crate_name);
        let Ok(alias) = clients.lambda.get_alias().function_name(&name).name(ALIAS).send().await else { continue };
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
    let api_url =
        api_id.as_ref().map(|id| format!("https://{id}.execute-api.{}.amazonaws.com/{}", spec.region, spec.api.stage));
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
