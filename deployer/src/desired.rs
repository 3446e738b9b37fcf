//! The desired state: pure, from the environment file, the built artifacts and the few facts
//! only AWS knows (the account and its partition, the database endpoint and secret, the API
//! id). One typed spec per resource kind; `observe` reads AWS into the very same types, so the
//! plan compares like with like, field by field.

use std::collections::BTreeMap;
use std::fmt;

use promo_shared::routes::{FUNCTION_CRATES, Function, ROUTES, preflights};
use serde_json::{Value, json};

use crate::config::{EngineVersion, EnvName, EnvironmentSpec};
use crate::error::DeployError;
pub use crate::gateway_answers::GatewayResponseSpec;
use crate::gateway_answers::gateway_responses;
use crate::names::{Arns, Names};
use crate::tags::Tags;

/// A value AWS assigns while applying (a database endpoint before the database exists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known<T> {
    Value(T),
    AfterApply,
}

impl<T> Known<T> {
    pub fn from_option(value: Option<T>) -> Known<T> {
        value.map_or(Known::AfterApply, Known::Value)
    }

    /// The value, which by the time a resource is written must be known.
    pub fn get(&self, what: &str) -> Result<&T, DeployError> {
        match self {
            Known::Value(v) => Ok(v),
            Known::AfterApply => Err(DeployError::Internal(format!("{what} is not known yet"))),
        }
    }
}

impl<T: fmt::Display> fmt::Display for Known<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Known::Value(v) => v.fmt(f),
            Known::AfterApply => f.write_str("(known after apply)"),
        }
    }
}

/// The kinds of resource, in the order they are created (and reversed, deleted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    DbSubnetGroup,
    DbCluster,
    DbInstance,
    // Roles follow the database: their policy names the secret the cluster creates.
    Role,
    Function,
    RestApi,
    Stage,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::DbSubnetGroup,
        Kind::DbCluster,
        Kind::DbInstance,
        Kind::Role,
        Kind::Function,
        Kind::RestApi,
        Kind::Stage,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Kind::Role => "iam role",
            Kind::DbSubnetGroup => "db subnet group",
            Kind::DbCluster => "aurora cluster",
            Kind::DbInstance => "aurora instance",
            Kind::Function => "lambda function",
            Kind::RestApi => "rest api",
            Kind::Stage => "api stage",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SubnetGroupSpec {
    pub name: String,
    pub subnet_ids: Vec<String>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSpec {
    pub name: String,
    /// Desired: the minimum. AWS upgrades minor versions by itself; that is no change.
    pub engine_version: EngineVersion,
    pub min_capacity: Option<f64>,
    pub max_capacity: Option<f64>,
    pub deletion_protection: bool,
    pub backup_retention_days: i32,
    pub subnet_group: Option<String>,
    pub security_group_ids: Vec<String>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSpec {
    pub name: String,
    pub cluster: String,
    pub class: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RoleSpec {
    pub name: String,
    pub managed_policies: Vec<String>,
    /// Names the database secret: known once the cluster exists.
    pub inline_policy: Known<Value>,
    pub tags: Tags,
}

/// Where a function's `live` alias stands against its latest code and configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveAlias {
    /// Points at a version equal to `$LATEST` in every managed field.
    Current,
    /// Points at an older version.
    Stale,
    /// Still splits traffic: a canary that never finished.
    Canary,
    Missing,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FunctionSpec {
    pub name: String,
    /// The crate under `functions/` whose zip this function runs.
    pub crate_name: String,
    pub role: String,
    pub runtime: String,
    pub handler: String,
    pub architecture: String,
    pub memory_mb: i32,
    pub timeout_seconds: i32,
    pub reserved_concurrency: Option<i32>,
    pub env: BTreeMap<String, Known<String>>,
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
    /// Lambda's `CodeSha256`: base64 of the zip's SHA-256.
    pub code_sha256: String,
    pub live: LiveAlias,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RestApiSpec {
    pub name: String,
    /// `"<METHOD> <path> -> <function>"`, sorted.
    pub routes: Vec<String>,
    /// The function crates this API may invoke, sorted.
    pub invokers: Vec<String>,
    /// API Gateway's own answers, in the contract's error shape, sorted by type.
    pub gateway_responses: Vec<GatewayResponseSpec>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StageSpec {
    pub name: String,
    /// The fingerprint of the API (routes and gateway responses) the stage's deployment serves.
    pub deployment: Option<String>,
    pub rate_limit: f64,
    pub burst_limit: i32,
    pub tags: Tags,
}

/// What AWS knows that the desired state depends on. `None`: not created yet.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub arns: Arns,
    pub db_endpoint: Option<String>,
    pub db_secret_arn: Option<String>,
    pub api_id: Option<String>,
}

/// The zip of each function, by crate name: Lambda's `CodeSha256` (base64).
pub type Artifacts = BTreeMap<String, String>;

/// Everything an environment has, or should have, of each kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    pub subnet_groups: Vec<SubnetGroupSpec>,
    pub clusters: Vec<ClusterSpec>,
    pub instances: Vec<InstanceSpec>,
    pub roles: Vec<RoleSpec>,
    pub functions: Vec<FunctionSpec>,
    pub apis: Vec<RestApiSpec>,
    pub stages: Vec<StageSpec>,
}

impl State {
    pub fn is_empty(&self) -> bool {
        self == &State::default()
    }

    /// How many resources, of every kind.
    pub fn len(&self) -> usize {
        self.subnet_groups.len()
            + self.clusters.len()
            + self.instances.len()
            + self.roles.len()
            + self.functions.len()
            + self.apis.len()
            + self.stages.len()
    }
}

const BASIC_EXECUTION: &str = "AWSLambdaBasicExecutionRole";
const VPC_ACCESS: &str = "AWSLambdaVPCAccessExecutionRole";

/// The desired state of environment `env`.
pub fn desired(env: &EnvName, spec: &EnvironmentSpec, artifacts: &Artifacts, facts: &Facts) -> State {
    let names = Names::new(env);
    let tags = Tags::for_env(env, &spec.tags);
    let vpc = !spec.network.subnet_ids.is_empty();
    let secret = Known::from_option(facts.db_secret_arn.clone());
    let db = &spec.database;

    let subnet_groups = if vpc {
        vec![SubnetGroupSpec {
            name: names.subnet_group(),
            subnet_ids: sorted(&spec.network.subnet_ids),
            tags: tags.clone(),
        }]
    } else {
        Vec::new()
    };
    let cluster = ClusterSpec {
        name: names.cluster(),
        engine_version: db.engine_version.clone(),
        min_capacity: Some(db.min_capacity.acus()),
        max_capacity: Some(db.max_capacity.acus()),
        deletion_protection: db.deletion_protection,
        backup_retention_days: db.backup_retention_days.get() as i32,
        subnet_group: vpc.then(|| names.subnet_group()),
        security_group_ids: sorted(&spec.network.security_group_ids),
        tags: tags.clone(),
    };
    let instance = InstanceSpec {
        name: names.instance(),
        cluster: names.cluster(),
        class: "db.serverless".into(),
        tags: tags.clone(),
    };

    let mut managed = vec![facts.arns.managed_policy(BASIC_EXECUTION)];
    if vpc {
        managed.push(facts.arns.managed_policy(VPC_ACCESS));
    }
    managed.sort();
    let roles = FUNCTION_CRATES
        .iter()
        .map(|function| RoleSpec {
            name: names.role(function),
            managed_policies: managed.clone(),
            inline_policy: match &secret {
                Known::Value(arn) => Known::Value(secrets_policy(arn, spec.auth.hs256_secret_arn.as_deref())),
                Known::AfterApply => Known::AfterApply,
            },
            tags: tags.clone(),
        })
        .collect();

    let functions = FUNCTION_CRATES
        .iter()
        .map(|function| {
            let settings = spec.function_settings(function);
            let mut env_vars: BTreeMap<String, Known<String>> =
                settings.env.iter().map(|(k, v)| (k.clone(), Known::Value(v.clone()))).collect();
            let mut set = |name: &str, value: Known<String>| {
                env_vars.insert(name.to_owned(), value);
            };
            set("AUTH_ISSUER", Known::Value(spec.auth.issuer.clone()));
            set("AUTH_AUDIENCE", Known::Value(spec.auth.audience.clone()));
            set("AUTH_ADMIN_SCOPE", Known::Value(spec.auth.admin_scope.clone()));
            if let Some(url) = &spec.auth.jwks_url {
                set("AUTH_JWKS_URL", Known::Value(url.clone()));
            }
            if let Some(arn) = &spec.auth.hs256_secret_arn {
                set("AUTH_HS256_SECRET_ARN", Known::Value(arn.clone()));
            }
            // Where the database is and which secret holds its credentials: never the password.
            set("DB_HOST", Known::from_option(facts.db_endpoint.clone()));
            set("DB_NAME", Known::Value(crate::names::DATABASE_NAME.into()));
            set("DB_SECRET_ARN", secret.clone());
            set("GUESS_LIMIT", Known::Value(spec.guess_limit.max.to_string()));
            set("GUESS_WINDOW_SECONDS", Known::Value(spec.guess_limit.window_seconds.to_string()));
            let origins = &spec.api.cors.allowed_origins;
            if !origins.is_empty() {
                let list: Vec<&str> = origins.iter().map(|o| o.as_str()).collect();
                set(promo_shared::cors::ORIGINS_VARIABLE, Known::Value(list.join(",")));
            }
            FunctionSpec {
                name: names.function(function),
                crate_name: function.to_string(),
                role: names.role(function),
                runtime: "provided.al2023".into(),
                handler: "bootstrap".into(),
                architecture: settings.architecture.name().into(),
                memory_mb: settings.memory_mb.get() as i32,
                timeout_seconds: settings.timeout_seconds.get() as i32,
                reserved_concurrency: settings.reserved_concurrency.map(|n| n as i32),
                env: env_vars,
                subnet_ids: sorted(&spec.network.subnet_ids),
                security_group_ids: sorted(&spec.network.security_group_ids),
                code_sha256: artifacts.get(*function).cloned().unwrap_or_default(),
                live: LiveAlias::Current,
                tags: tags.clone(),
            }
        })
        .collect();

    let routes = routes(&names);
    let gateway_responses = gateway_responses(&spec.api.cors.allowed_origins);
    let stage = StageSpec {
        name: spec.api.stage.clone(),
        deployment: Some(api_fingerprint(&routes, &gateway_responses)),
        rate_limit: spec.api.throttling.rate_limit,
        burst_limit: spec.api.throttling.burst_limit as i32,
        tags: tags.clone(),
    };
    let api = RestApiSpec { name: names.api(), routes, invokers: invokers(), gateway_responses, tags };
    State {
        subnet_groups,
        clusters: vec![cluster],
        instances: vec![instance],
        roles,
        functions,
        apis: vec![api],
        stages: vec![stage],
    }
}

/// Least privilege: the one secret that holds the database credentials, and the HS256 key
/// when the environment uses one. Logs and VPC networking come from the managed policies.
fn secrets_policy(db_secret: &str, hs256_secret: Option<&str>) -> Value {
    let mut secrets = vec![db_secret];
    secrets.extend(hs256_secret);
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secrets}],
    })
}

/// The routes as the plan compares them: `"<METHOD> <path> -> <function name>"`, sorted.
fn routes(names: &Names) -> Vec<String> {
    let mut routes: Vec<String> = api_methods()
        .into_iter()
        .map(|(method, path, function)| format!("{method} {path} -> {}", names.function(function.name())))
        .collect();
    routes.sort();
    routes
}

/// Every method the API has: the route table's, and an `OPTIONS` per resource path for a
/// browser's preflight, integrated with a function of that path (`promo_shared::routes::preflight`).
pub fn api_methods() -> Vec<(&'static str, &'static str, Function)> {
    ROUTES
        .iter()
        .map(|r| (r.method, r.path, r.function))
        .chain(preflights().into_iter().map(|p| ("OPTIONS", p.path, p.function)))
        .collect()
}

/// The function crates API Gateway invokes, sorted.
fn invokers() -> Vec<String> {
    let mut names: Vec<String> = Function::ALL.iter().map(|f| f.name().to_owned()).collect();
    names.sort();
    names
}

/// What a deployment of the API is: a short digest of its routes, their functions and its
/// gateway responses (API Gateway serves a change to either only once the stage is deployed
/// again), kept in the deployment's description so a stage serving an older API is seen as stale.
pub fn api_fingerprint(routes: &[String], gateway_responses: &[GatewayResponseSpec]) -> String {
    let mut text = routes.join("\n");
    for answer in gateway_responses {
        text.push('\n');
        text.push_str(&answer.to_string());
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("routes-{hash:016x}")
}

/// A list whose order AWS does not keep, in one order, so that two of them compare.
pub(crate) fn sorted(list: &[String]) -> Vec<String> {
    let mut list = list.to_vec();
    list.sort();
    list
}
