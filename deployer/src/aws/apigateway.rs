//! API Gateway: the REST API built from the route table (resources, methods, AWS_PROXY
//! integrations to each function's `live` alias, the permissions that let it invoke them) and
//! its stage (a deployment, throttling).

use std::collections::{BTreeMap, HashMap};

use aws_sdk_apigateway::types::{
    EndpointConfiguration, EndpointType, GatewayResponseType, IntegrationType, Op, PatchOperation,
};
use promo_shared::routes::Function;

use crate::apply::Context;
use crate::desired::{GatewayResponseSpec, RestApiSpec, StageSpec, api_methods};
use crate::error::{DeployError, aws};
use crate::names::{ALIAS, APP, Names};
use crate::plan::{Action, Change};
use crate::tags::{TagChanges, Tags};

use super::retry;

/// The environment's API and its stages, as API Gateway holds them.
#[derive(Debug, Clone, Default)]
pub struct Api {
    pub apis: Vec<RestApiSpec>,
    pub stages: Vec<StageSpec>,
    pub api_id: Option<String>,
}

/// The statement id of the permission that lets one API invoke a function's alias.
pub fn permission_id(api_id: &str) -> String {
    format!("apigateway-{api_id}")
}

/// REST API names are not unique: the environment's API is the one with its name *and* its
/// tags; another of the same name is someone else's, and never planned.
pub async fn observe(names: &Names, clients: &crate::aws::Clients) -> Result<Api, DeployError> {
    let apigw = &clients.apigateway;
    let pause = clients.timing.throttle_pause;
    let mut ours = Vec::new();
    let mut position = None;
    loop {
        let page = retry::throttled(pause, || apigw.get_rest_apis().limit(500).set_position(position.take()).send())
            .await
            .map_err(aws("listing REST APIs"))?;
        position = page.position().map(str::to_owned);
        for api in page.items().iter().filter(|a| a.name() == Some(names.api().as_str())) {
            let tags = Tags::observed(api.tags().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str())));
            if tags.belong_to(names.env()) {
                ours.push((api.id().unwrap_or_default().to_owned(), tags));
            }
        }
        if position.is_none() {
            break;
        }
    }
    let (api_id, tags) = match ours.len() {
        0 => return Ok(Api::default()),
        1 => ours.remove(0),
        _ => {
            let ids: Vec<&str> = ours.iter().map(|(id, _)| id.as_str()).collect();
            return Err(DeployError::Refused(format!(
                "REST APIs {} are all named {} and tagged as environment {}: delete all but one",
                ids.join(", "),
                names.api(),
                names.env()
            )));
        }
    };

    let mut routes = Vec::new();
    let mut position = None;
    loop {
        let page = retry::throttled(pause, || {
            apigw.get_resources().rest_api_id(&api_id).embed("methods").limit(500).set_position(position.take()).send()
        })
        .await
        .map_err(aws("reading the API's resources"))?;
        position = page.position().map(str::to_owned);
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
        if position.is_none() {
            break;
        }
    }
    routes.sort();

    let mut invokers = Vec::new();
    for crate_name in Function::ALL.map(|f| f.name()) {
        let function = names.function(crate_name);
        match clients.lambda.get_policy().function_name(&function).qualifier(ALIAS).send().await {
            Ok(policy) => {
                if policy.policy().unwrap_or_default().contains(&permission_id(&api_id)) {
                    invokers.push(crate_name.to_owned());
                }
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {}
            Err(e) => return Err(aws(format!("reading the permissions of {function}"))(e)),
        }
    }
    invokers.sort();

    let mut stages = Vec::new();
    let out = retry::throttled(pause, || apigw.get_stages().rest_api_id(&api_id).send())
        .await
        .map_err(aws("reading the API's stages"))?;
    for stage in out.item() {
        let tags = Tags::observed(stage.tags().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str())));
        // A stage someone added by hand is theirs: never planned.
        if !tags.belong_to(names.env()) {
            continue;
        }
        let deployment = match stage.deployment_id() {
            Some(id) => {
                retry::throttled(pause, || apigw.get_deployment().rest_api_id(&api_id).deployment_id(id).send())
                    .await
                    .map_err(aws("reading the stage's deployment"))?
                    .description()
                    .map(str::to_owned)
            }
            None => None,
        };
        let settings = stage.method_settings().and_then(|m| m.get("*/*"));
        stages.push(StageSpec {
            name: stage.stage_name().unwrap_or_default().to_owned(),
            deployment,
            rate_limit: settings.map(|s| s.throttling_rate_limit()).unwrap_or_default(),
            burst_limit: settings.map(|s| s.throttling_burst_limit()).unwrap_or_default(),
            tags,
        });
    }
    let gateway_responses = observe_gateway_responses(clients, &api_id).await?;
    let api = RestApiSpec { name: names.api(), routes, invokers, gateway_responses, tags };
    Ok(Api { apis: vec![api], stages, api_id: Some(api_id) })
}

/// The gateway responses configured on the API (not API Gateway's defaults), sorted by type.
async fn observe_gateway_responses(
    clients: &crate::aws::Clients,
    api_id: &str,
) -> Result<Vec<GatewayResponseSpec>, DeployError> {
    let pause = clients.timing.throttle_pause;
    let out =
        retry::throttled(pause, || clients.apigateway.get_gateway_responses().rest_api_id(api_id).limit(500).send())
            .await
            .map_err(aws("reading the API's gateway responses"))?;
    let mut answers: Vec<GatewayResponseSpec> = out
        .items()
        .iter()
        .filter(|r| !r.default_response())
        .map(|r| GatewayResponseSpec {
            response_type: r.response_type().map(|t| t.as_str().to_owned()).unwrap_or_default(),
            status: r.status_code().map(str::to_owned),
            template: r.response_templates().and_then(|t| t.get(JSON)).cloned().unwrap_or_default(),
            headers: r
                .response_parameters()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.strip_prefix(HEADER)?.to_owned(), v.trim_matches('\'').to_owned())))
                .collect(),
        })
        .collect();
    answers.sort();
    Ok(answers)
}

const JSON: &str = "application/json";
const HEADER: &str = "gatewayresponse.header.";

/// Puts the desired gateway responses and deletes any other configured on the API.
async fn put_gateway_responses(
    ctx: &Context<'_>,
    api_id: &str,
    want: &[GatewayResponseSpec],
    have: &[GatewayResponseSpec],
) -> Result<(), DeployError> {
    let apigw = &ctx.clients.apigateway;
    let pause = ctx.clients.timing.throttle_pause;
    for answer in want.iter().filter(|a| !have.contains(a)) {
        let parameters: HashMap<String, String> =
            answer.headers.iter().map(|(k, v)| (format!("{HEADER}{k}"), format!("'{v}'"))).collect();
        retry::throttled(pause, || {
            apigw
                .put_gateway_response()
                .rest_api_id(api_id)
                .response_type(GatewayResponseType::from(answer.response_type.as_str()))
                .set_status_code(answer.status.clone())
                .response_templates(JSON, &answer.template)
                .set_response_parameters(Some(parameters.clone()).filter(|p| !p.is_empty()))
                .send()
        })
        .await
        .map_err(aws(format!("setting the API's {} answer", answer.response_type)))?;
    }
    for answer in have.iter().filter(|a| !want.iter().any(|w| w.response_type == a.response_type)) {
        retry::throttled(pause, || {
            apigw
                .delete_gateway_response()
                .rest_api_id(api_id)
                .response_type(GatewayResponseType::from(answer.response_type.as_str()))
                .send()
        })
        .await
        .map_err(aws(format!("removing the API's {} answer", answer.response_type)))?;
    }
    Ok(())
}

/// Tags and untags any API Gateway resource by its ARN.
async fn retag(ctx: &Context<'_>, arn: &str, changes: TagChanges) -> Result<(), DeployError> {
    let apigw = &ctx.clients.apigateway;
    let pause = ctx.clients.timing.throttle_pause;
    if !changes.remove.is_empty() {
        retry::throttled(pause, || {
            apigw.untag_resource().resource_arn(arn).set_tag_keys(Some(changes.remove.clone())).send()
        })
        .await
        .map_err(aws(format!("untagging {arn}")))?;
    }
    if !changes.set.is_empty() {
        retry::throttled(pause, || apigw.tag_resource().resource_arn(arn).set_tags(Some(changes.set_map())).send())
            .await
            .map_err(aws(format!("tagging {arn}")))?;
    }
    Ok(())
}

/// Creates or updates the REST API; returns its id.
pub async fn apply_api(
    ctx: &Context<'_>,
    change: &Change,
    want: &RestApiSpec,
    have: Option<&RestApiSpec>,
) -> Result<String, DeployError> {
    let apigw = &ctx.clients.apigateway;
    let pause = ctx.clients.timing.throttle_pause;
    let api_id = match (&ctx.facts.api_id, change.action) {
        (Some(id), Action::Update) => id.clone(),
        _ => {
            let created = retry::throttled(pause, || {
                apigw
                    .create_rest_api()
                    .name(&want.name)
                    .description(format!("{APP} {}: routes from promo_shared::routes", ctx.names.env()))
                    .endpoint_configuration(EndpointConfiguration::builder().types(EndpointType::Regional).build())
                    .set_tags(Some(want.tags.to_map()))
                    .send()
            })
            .await
            .map_err(aws(format!("creating REST API {}", want.name)))?;
            created.id().unwrap_or_default().to_owned()
        }
    };
    if change.changes("routes") {
        build_routes(ctx, &api_id).await?;
    }
    if change.changes("gateway_responses") {
        let have = have.map(|h| h.gateway_responses.as_slice()).unwrap_or_default();
        put_gateway_responses(ctx, &api_id, &want.gateway_responses, have).await?;
    }
    if let (true, Some(have)) = (change.action == Action::Update && change.changes("tags"), have) {
        retag(ctx, &ctx.facts.arns.rest_api(&api_id), want.tags.changes_from(&have.tags)).await?;
    }
    if change.changes("invokers") {
        for crate_name in &want.invokers {
            let function = ctx.names.function(crate_name);
            let result = ctx
                .clients
                .lambda
                .add_permission()
                .function_name(&function)
                .qualifier(ALIAS)
                .statement_id(permission_id(&api_id))
                .action("lambda:InvokeFunction")
                .principal("apigateway.amazonaws.com")
                // Only this API may invoke the function, on any stage, method and route.
                .source_arn(ctx.facts.arns.execute_api(&api_id))
                .send()
                .await;
            match result {
                Ok(_) => {}
                // The statement is there already (a run cut short after adding it).
                Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_conflict_exception()) => {}
                Err(e) => return Err(aws(format!("letting the API invoke {function}"))(e)),
            }
        }
    }
    Ok(api_id)
}

/// Rebuilds the API's resources, methods and AWS_PROXY integrations from the route table.
async fn build_routes(ctx: &Context<'_>, api_id: &str) -> Result<(), DeployError> {
    let apigw = &ctx.clients.apigateway;
    let pause = ctx.clients.timing.throttle_pause;
    let existing = retry::throttled(pause, || apigw.get_resources().rest_api_id(api_id).limit(500).send())
        .await
        .map_err(aws("reading the API's resources"))?;
    let root = existing
        .items()
        .iter()
        .find(|r| r.path() == Some("/"))
        .and_then(|r| r.id())
        .ok_or_else(|| DeployError::Refused(format!("REST API {api_id} has no root resource")))?
        .to_owned();
    for top in existing.items().iter().filter(|r| r.parent_id() == Some(root.as_str())) {
        retry::throttled(pause, || {
            apigw.delete_resource().rest_api_id(api_id).resource_id(top.id().unwrap_or_default()).send()
        })
        .await
        .map_err(aws("removing an old API resource"))?;
    }
    let mut ids: BTreeMap<String, String> = BTreeMap::from([(String::new(), root)]);
    for (method, route_path, route_function) in api_methods() {
        let mut path = String::new();
        for part in route_path.trim_start_matches('/').split('/') {
            let parent = ids[&path].clone();
            path = format!("{path}/{part}");
            if !ids.contains_key(&path) {
                let created = retry::throttled(pause, || {
                    apigw.create_resource().rest_api_id(api_id).parent_id(&parent).path_part(part).send()
                })
                .await
                .map_err(aws(format!("creating API resource {path}")))?;
                ids.insert(path.clone(), created.id().unwrap_or_default().to_owned());
            }
        }
        let resource_id = ids[&path].clone();
        // Authentication is the functions' job (JWT verification in promo_core::auth).
        retry::throttled(pause, || {
            apigw
                .put_method()
                .rest_api_id(api_id)
                .resource_id(&resource_id)
                .http_method(method)
                .authorization_type("NONE")
                .send()
        })
        .await
        .map_err(aws(format!("creating {} {}", method, route_path)))?;
        let function = ctx.names.function(route_function.name());
        retry::throttled(pause, || {
            apigw
                .put_integration()
                .rest_api_id(api_id)
                .resource_id(&resource_id)
                .http_method(method)
                .r#type(IntegrationType::AwsProxy)
                .integration_http_method("POST")
                .uri(ctx.facts.arns.integration_uri(&function))
                .send()
        })
        .await
        .map_err(aws(format!("integrating {} {}", method, route_path)))?;
    }
    Ok(())
}

pub async fn apply_stage(
    ctx: &Context<'_>,
    change: &Change,
    want: &StageSpec,
    have: Option<&StageSpec>,
) -> Result<(), DeployError> {
    let apigw = &ctx.clients.apigateway;
    let pause = ctx.clients.timing.throttle_pause;
    let api_id = ctx.facts.api_id.clone().ok_or_else(|| DeployError::Internal("the REST API does not exist".into()))?;
    let deployment = if change.changes("deployment") {
        let created = retry::throttled(pause, || {
            apigw.create_deployment().rest_api_id(&api_id).set_description(want.deployment.clone()).send()
        })
        .await
        .map_err(aws("deploying the API"))?;
        created.id().map(str::to_owned)
    } else {
        None
    };
    if change.action == Action::Create {
        retry::throttled(pause, || {
            apigw
                .create_stage()
                .rest_api_id(&api_id)
                .stage_name(&want.name)
                .set_deployment_id(deployment.clone())
                .set_tags(Some(want.tags.to_map()))
                .send()
        })
        .await
        .map_err(aws(format!("creating stage {}", want.name)))?;
    }
    let mut patches = Vec::new();
    if let (Action::Update, Some(id)) = (change.action, &deployment) {
        patches.push(PatchOperation::builder().op(Op::Replace).path("/deploymentId").value(id).build());
    }
    if change.changes("rate_limit") || change.changes("burst_limit") {
        let rate = want.rate_limit.to_string();
        let burst = want.burst_limit.to_string();
        patches.push(PatchOperation::builder().op(Op::Replace).path("/*/*/throttling/rateLimit").value(rate).build());
        patches.push(PatchOperation::builder().op(Op::Replace).path("/*/*/throttling/burstLimit").value(burst).build());
    }
    if !patches.is_empty() {
        retry::throttled(pause, || {
            apigw
                .update_stage()
                .rest_api_id(&api_id)
                .stage_name(&want.name)
                .set_patch_operations(Some(patches.clone()))
                .send()
        })
        .await
        .map_err(aws(format!("updating stage {}", want.name)))?;
    }
    if let (true, Some(have)) = (change.action == Action::Update && change.changes("tags"), have) {
        // A stage's tags live on the stage's ARN, not on the API's.
        retag(ctx, &ctx.facts.arns.stage(&api_id, &want.name), want.tags.changes_from(&have.tags)).await?;
    }
    Ok(())
}

pub async fn delete_stage(ctx: &Context<'_>, have: &StageSpec) -> Result<(), DeployError> {
    let pause = ctx.clients.timing.throttle_pause;
    let Some(api_id) = &ctx.facts.api_id else { return Ok(()) };
    match retry::throttled(pause, || {
        ctx.clients.apigateway.delete_stage().rest_api_id(api_id).stage_name(&have.name).send()
    })
    .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => Ok(()),
        Err(e) => Err(aws(format!("deleting stage {}", have.name))(e)),
    }
}

pub async fn delete_api(ctx: &Context<'_>) -> Result<(), DeployError> {
    let pause = ctx.clients.timing.throttle_pause;
    let Some(api_id) = &ctx.facts.api_id else { return Ok(()) };
    match retry::throttled(pause, || ctx.clients.apigateway.delete_rest_api().rest_api_id(api_id).send()).await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => Ok(()),
        Err(e) => Err(aws("deleting the REST API")(e)),
    }
}
