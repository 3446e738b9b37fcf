//! Reads what an environment has in AWS: only reads (Get*, List*, Describe*), one service's in
//! parallel with another's. An environment owns exactly the names it derives *and* carries
//! its `app` and `env` tags: a resource with one of its names but not its tags is someone
//! else's, and the run refuses before its first write.

use crate::aws::{Clients, apigateway, cloudwatch, iam, lambda, rds, secrets};
use crate::config::{EnvName, EnvironmentSpec};
use crate::desired::{Facts, State};
use crate::diff::Resource;
use crate::error::{DeployError, aws};
use crate::names::{Arns, Names, partition_of_arn, partition_of_region};

pub use crate::aws::lambda::canary_weights;

/// What AWS holds of one environment, and the facts desired values depend on.
#[derive(Debug, Clone)]
pub struct Observed {
    pub state: State,
    pub facts: Facts,
    /// The cluster and instance that exist are `available`: a run cut short while they were
    /// being created or modified waits for them before anything that needs the database.
    pub database_available: bool,
}

pub async fn observe(clients: &Clients, env: &EnvName, spec: &EnvironmentSpec) -> Result<Observed, DeployError> {
    let names = Names::new(env);
    let identity = clients.sts.get_caller_identity().send().await.map_err(aws("reading the account"))?;
    let account = identity.account().unwrap_or_default().to_owned();
    if let Some(expected) = &spec.account_id
        && expected.as_str() != account
    {
        return Err(DeployError::Refused(format!(
            "these credentials are for account {account}, but environment {env} lives in {}: refusing to touch it",
            expected.as_str()
        )));
    }
    let partition =
        identity.arn().and_then(partition_of_arn).unwrap_or_else(|| partition_of_region(&clients.region)).to_owned();
    let arns = Arns { partition, region: clients.region.clone(), account };

    // Each service's reads on the heap: together their futures are large enough to overflow a
    // test thread's stack in a debug build.
    let (roles, database, functions, api, secrets, alarms) = tokio::join!(
        Box::pin(iam::observe(&names, &clients.iam)),
        Box::pin(rds::observe(&names, &clients.rds)),
        Box::pin(lambda::observe(&names, &clients.lambda)),
        Box::pin(apigateway::observe(&names, clients)),
        Box::pin(secrets::observe(&names, &clients.secretsmanager)),
        Box::pin(cloudwatch::observe(&names, &clients.cloudwatch)),
    );
    let (database, api, secrets) = (database?, api?, secrets?);
    let state = State {
        subnet_groups: database.subnet_groups,
        clusters: database.clusters,
        instances: database.instances,
        secrets: secrets.secrets,
        roles: roles?,
        functions: functions?,
        apis: api.apis,
        stages: api.stages,
        alarms: alarms?,
    };
    refuse_foreign(&state, env)?;
    let facts = Facts {
        arns,
        db_endpoint: database.facts.endpoint.clone(),
        db_secret_arn: database.facts.secret_arn.clone(),
        app_secret_arn: secrets.app_secret_arn,
        api_id: api.api_id,
    };
    Ok(Observed { state, facts, database_available: database.facts.available })
}

/// Refuses when a resource with one of the environment's names is not tagged as its own.
fn refuse_foreign(state: &State, env: &EnvName) -> Result<(), DeployError> {
    fn foreign<R: Resource>(list: &[R], env: &EnvName, out: &mut Vec<String>) {
        for r in list.iter().filter(|r| !r.tags().belong_to(env)) {
            let tags = |key: &str| r.tags().get(key).unwrap_or("none").to_owned();
            out.push(format!("{} {} (app: {}, env: {})", R::KIND.label(), r.name(), tags("app"), tags("env")));
        }
    }
    let mut found = Vec::new();
    foreign(&state.subnet_groups, env, &mut found);
    foreign(&state.clusters, env, &mut found);
    foreign(&state.instances, env, &mut found);
    foreign(&state.secrets, env, &mut found);
    foreign(&state.roles, env, &mut found);
    foreign(&state.functions, env, &mut found);
    foreign(&state.alarms, env, &mut found);
    if found.is_empty() {
        return Ok(());
    }
    Err(DeployError::Refused(format!(
        "these resources have environment {env}'s names but are not tagged app: promo-codes, env: {env}, so they \
         are not its own and nothing was changed: {}. Remove or rename them, or tag them if they are {env}'s",
        found.join("; ")
    )))
}
