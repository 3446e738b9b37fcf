//! The desired state: pure, from the environment file, the built artifacts and the few facts
//! only AWS knows (the account, the database endpoint and secret, the API id). Every resource
//! has a deterministic name under `promo-codes-<env>` and the tags `app` and `env`.

use std::collections::BTreeMap;

use promo_core::routes::{FUNCTION_CRATES, ROUTES};
use serde_json::{Value, json};

use crate::config::{EnvName, EnvironmentSpec};

pub const APP: &str = "promo-codes";
/// Shown in a plan for a value AWS assigns while applying it.
pub const UNKNOWN: &str = "(known after apply)";
pub const DATABASE_NAME: &str = "promo_codes";
pub const MASTER_USER: &str = "promo_admin";
pub const ALIAS: &str = "live";

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

/// One resource: its kind, its name, and the properties the deployer manages, as JSON values
/// so desired and observed compare field by field.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub kind: Kind,
    pub name: String,
    pub props: BTreeMap<String, Value>,
}

/// What AWS knows that the desired state depends on. `None`: not created yet.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub account_id: String,
    pub db_endpoint: Option<String>,
    pub db_secret_arn: Option<String>,
    pub api_id: Option<String>,
}

/// The zip of each function, by crate name: Lambda's `CodeSha256` (base64).
pub type Artifacts = BTreeMap<String, String>;

/// Names of everything an environment owns.
#[derive(Debug, Clone)]
pub struct Names {
    pub prefix: String,
}

impl Names {
    pub fn new(env: &EnvName) -> Names {
        Names { prefix: format!("{APP}-{env}") }
    }

    pub fn function(&self, crate_name: &str) -> String {
        format!("{}-{crate_name}", self.prefix)
    }

    pub fn role(&self, crate_name: &str) -> String {
        format!("{}-{crate_name}", self.prefix)
    }

    pub fn cluster(&self) -> String {
        self.prefix.clone()
    }

    pub fn instance(&self) -> String {
        format!("{}-1", self.prefix)
    }

    pub fn subnet_group(&self) -> String {
        self.prefix.clone()
    }

    pub fn api(&self) -> String {
        self.prefix.clone()
    }
}

/// The tags of every resource: the file's own, then `app` and `env`, which nothing overrides.
pub fn tags(env: &EnvName, spec: &EnvironmentSpec) -> BTreeMap<String, String> {
    let mut tags = spec.tags.clone();
    tags.insert("app".into(), APP.into());
    tags.insert("env".into(), env.to_string());
    tags
}

/// A Lambda function's ARN with its `live` alias.
pub fn alias_arn(region: &str, account: &str, function: &str) -> String {
    format!("arn:aws:lambda:{region}:{account}:function:{function}:{ALIAS}")
}

/// The desired state, in creation order.
pub fn desired(env: &EnvName, spec: &EnvironmentSpec, artifacts: &Artifacts, facts: &Facts) -> Vec<Resource> {
    let names = Names::new(env);
    let tags = json!(tags(env, spec));
    let vpc = !spec.network.subnet_ids.is_empty();
    let secret = facts.db_secret_arn.clone().unwrap_or_else(|| UNKNOWN.into());
    let mut resources = Vec::new();
    let mut roles = Vec::new();

    for function in FUNCTION_CRATES {
        let mut managed = vec!["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"];
        if vpc {
            managed.push("arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole");
        }
        // Least privilege: the one secret that holds the database credentials, and the HS256
        // key when the environment uses one. Logs and VPC networking come from the managed policies.
        let mut secrets = vec![secret.clone()];
        if let Some(arn) = &spec.auth.hs256_secret_arn {
            secrets.push(arn.clone());
        }
        let policy = json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secrets}],
        });
        roles.push(Resource {
            kind: Kind::Role,
            name: names.role(function),
            props: props([("managed_policies", json!(managed)), ("inline_policy", policy), ("tags", tags.clone())]),
        });
    }

    if vpc {
        resources.push(Resource {
            kind: Kind::DbSubnetGroup,
            name: names.subnet_group(),
            props: props([("subnet_ids", json!(sorted(&spec.network.subnet_ids))), ("tags", tags.clone())]),
        });
    }
    let db = &spec.database;
    resources.push(Resource {
        kind: Kind::DbCluster,
        name: names.cluster(),
        props: props([
            ("engine_version", json!(db.engine_version)),
            ("min_capacity", json!(db.min_capacity.acus())),
            ("max_capacity", json!(db.max_capacity.acus())),
            ("deletion_protection", json!(db.deletion_protection)),
            ("backup_retention_days", json!(db.backup_retention_days.get())),
            ("subnet_group", if vpc { json!(names.subnet_group()) } else { Value::Null }),
            ("security_group_ids", json!(sorted(&spec.network.security_group_ids))),
            ("tags", tags.clone()),
        ]),
    });
    resources.push(Resource {
        kind: Kind::DbInstance,
        name: names.instance(),
        props: props([("cluster", json!(names.cluster())), ("class", json!("db.serverless")), ("tags", tags.clone())]),
    });
    resources.extend(roles);

    for function in FUNCTION_CRATES {
        let settings = spec.function_settings(function);
        let mut env_vars: BTreeMap<String, String> = settings.env.clone();
        env_vars.insert("AUTH_ISSUER".into(), spec.auth.issuer.clone());
        env_vars.insert("AUTH_AUDIENCE".into(), spec.auth.audience.clone());
        env_vars.insert("AUTH_ADMIN_SCOPE".into(), spec.auth.admin_scope.clone());
        if let Some(url) = &spec.auth.jwks_url {
            env_vars.insert("AUTH_JWKS_URL".into(), url.clone());
        }
        if let Some(arn) = &spec.auth.hs256_secret_arn {
            env_vars.insert("AUTH_HS256_SECRET_ARN".into(), arn.clone());
        }
        // Where the database is and which secret holds its credentials: never the password.
        env_vars.insert("DB_HOST".into(), facts.db_endpoint.clone().unwrap_or_else(|| UNKNOWN.into()));
        env_vars.insert("DB_NAME".into(), DATABASE_NAME.into());
        env_vars.insert("DB_SECRET_ARN".into(), secret.clone());
        env_vars.insert("GUESS_LIMIT".into(), spec.guess_limit.max.to_string());
        env_vars.insert("GUESS_WINDOW_SECONDS".into(), spec.guess_limit.window_seconds.to_string());
        resources.push(Resource {
            kind: Kind::Function,
            name: names.function(function),
            props: props([
                ("role", json!(names.role(function))),
                ("runtime", json!("provided.al2023")),
                ("handler", json!("bootstrap")),
                ("architecture", json!(settings.architecture.name())),
                ("memory_mb", json!(settings.memory_mb.get())),
                ("timeout_seconds", json!(settings.timeout_seconds.get())),
                ("reserved_concurrency", json!(settings.reserved_concurrency)),
                ("env", json!(env_vars)),
                ("subnet_ids", json!(sorted(&spec.network.subnet_ids))),
                ("security_group_ids", json!(sorted(&spec.network.security_group_ids))),
                ("code_sha256", json!(artifacts.get(function).cloned().unwrap_or_else(|| UNKNOWN.into()))),
                // The `live` alias points at a published version equal to all of the above.
                ("live_alias", json!("current")),
                ("tags", tags.clone()),
            ]),
        });
    }

    let mut routes: Vec<String> =
        ROUTES.iter().map(|r| format!("{} {} -> {}", r.method, r.path, names.function(r.function.name()))).collect();
    routes.sort();
    let routes: Vec<Value> = routes.into_iter().map(Value::String).collect();
    let invokers: Vec<String> = {
        let mut names: Vec<String> = ROUTES.iter().map(|r| r.function.name().to_owned()).collect();
        names.sort();
        names.dedup();
        names
    };
    resources.push(Resource {
        kind: Kind::RestApi,
        name: names.api(),
        props: props([("routes", json!(routes)), ("invokers", json!(invokers)), ("tags", tags.clone())]),
    });
    let fingerprint = routes_fingerprint(&routes);
    resources.push(Resource {
        kind: Kind::Stage,
        name: spec.api.stage.clone(),
        props: props([
            ("deployment", json!(fingerprint)),
            ("rate_limit", json!(spec.api.throttling.rate_limit)),
            ("burst_limit", json!(spec.api.throttling.burst_limit)),
            ("tags", tags),
        ]),
    });
    resources
}

/// What a deployment of the API is: a short digest of its routes and their functions, kept in
/// the deployment's description so a stage serving an older API is seen as stale.
pub fn routes_fingerprint(routes: &[Value]) -> String {
    let text: Vec<String> = routes.iter().map(|r| r.as_str().unwrap_or_default().to_owned()).collect();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.join("\n").bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("routes-{hash:016x}")
}

fn props<const N: usize>(entries: [(&str, Value); N]) -> BTreeMap<String, Value> {
    entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn sorted(list: &[String]) -> Vec<String> {
    let mut list = list.to_vec();
    list.sort();
    list
}
