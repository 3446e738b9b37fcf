//! `EnvironmentSpec`: one `environments/<name>.yaml`, parsed into validated values. A bad file
//! fails with its path, line, field and what is allowed; nothing is half-valid.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod values;
pub use values::*;

/// Why an environment file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `message` names the field and what is allowed; `line` and `column` are 1-based.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid { path: PathBuf, line: usize, column: usize, message: String },
    #[error("{path}: {message}")]
    Rule { path: PathBuf, message: String },
    #[error(
        "environment name {0:?} must be 1 to 20 characters of a-z, 0-9 and '-', starting with a letter, \
         not ending with '-' and without '--' (it names Aurora clusters, which follow RDS identifier rules)"
    )]
    BadName(String),
}

/// An environment's name: its file's name, and part of every AWS resource name it owns.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct EnvName(String);

impl EnvName {
    pub fn parse(name: &str) -> Result<EnvName, ConfigError> {
        let ok = (1..=20).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            // RDS identifiers end with a letter or digit and hold no two hyphens in a row.
            && !name.ends_with('-')
            && !name.contains("--");
        if ok { Ok(EnvName(name.to_owned())) } else { Err(ConfigError::BadName(name.to_owned())) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EnvName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One environment: everything `deploy` converges an AWS account to.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSpec {
    /// The AWS region, such as `eu-west-1`.
    pub region: String,
    /// The account this environment lives in; the deployer refuses to touch any other.
    #[serde(default)]
    #[schemars(regex(pattern = r"^[0-9]{12}$"))]
    pub account_id: Option<AccountId>,
    /// A protected environment is only deployed or destroyed with `--yes`.
    #[serde(default)]
    pub protected: bool,
    /// Tags on every resource, besides `app` and `env`, which the deployer sets itself.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Where the functions and the database run. Empty lists (the emulator): no VPC.
    #[serde(default)]
    pub network: Network,
    pub database: Database,
    pub functions: Functions,
    pub api: Api,
    pub auth: Auth,
    /// Guess protection of validate and redeem.
    #[serde(default)]
    pub guess_limit: GuessLimit,
    /// How a new version takes over the `live` alias. None: all traffic moves at once.
    #[serde(default)]
    pub release: Option<Release>,
}

/// A canary release: `canary_percent` of each function's `live` traffic goes to the new version
/// for `bake_seconds`, then all of it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Release {
    #[schemars(range(min = 1, max = 99))]
    pub canary_percent: CanaryPercent,
    #[schemars(range(min = 0, max = 3600))]
    pub bake_seconds: BakeSeconds,
    /// CloudWatch alarms on each function's errors and throttles and on the API's 5XX, owned
    /// by the environment and watched during the bake: one that fires rolls the release back.
    /// Default: on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarms: Option<bool>,
}

impl Release {
    /// Whether the environment has its release alarms: on unless the file turns them off.
    pub fn alarms(&self) -> bool {
        self.alarms.unwrap_or(true)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// Private subnets, in at least two availability zones (Aurora requires it).
    #[serde(default)]
    pub subnet_ids: Vec<String>,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// Aurora PostgreSQL engine version, such as `16.4`: a minimum. AWS upgrades minor versions
    /// by itself; a newer one in the cluster is no change, and a cluster never goes back down.
    #[schemars(regex(pattern = r"^[0-9]+\.[0-9]+(\.[0-9]+)?$"))]
    pub engine_version: EngineVersion,
    /// Minimum Aurora capacity units: 0 lets the cluster pause when idle.
    #[schemars(range(min = 0, max = 256))]
    pub min_capacity: Capacity,
    #[schemars(range(min = 1, max = 256))]
    pub max_capacity: Capacity,
    #[serde(default = "yes")]
    pub deletion_protection: bool,
    #[serde(default = "seven")]
    #[schemars(range(min = 1, max = 35))]
    pub backup_retention_days: BackupDays,
}

fn yes() -> bool {
    true
}

fn seven() -> BackupDays {
    BackupDays::default()
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Functions {
    pub defaults: FunctionSettings,
    /// Per function (`create`, `update`, `validate`, `list`, `redeem`, `migrate`): only what differs.
    #[serde(default)]
    pub overrides: BTreeMap<String, FunctionOverride>,
}

/// Lambda settings of a function.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FunctionSettings {
    #[schemars(range(min = 128, max = 10240))]
    pub memory_mb: MemoryMb,
    #[schemars(range(min = 1, max = 900))]
    pub timeout_seconds: TimeoutSeconds,
    pub architecture: Architecture,
    /// Reserved concurrency; none: the account's unreserved pool.
    #[serde(default)]
    pub reserved_concurrency: Option<u32>,
    /// Extra environment variables. Never secrets: those come from Secrets Manager.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FunctionOverride {
    #[serde(default)]
    pub memory_mb: Option<MemoryMb>,
    #[serde(default)]
    pub timeout_seconds: Option<TimeoutSeconds>,
    #[serde(default)]
    pub architecture: Option<Architecture>,
    #[serde(default)]
    pub reserved_concurrency: Option<u32>,
    /// Added to (and overriding) the defaults' variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Api {
    /// The API Gateway stage name, such as `v1`.
    pub stage: String,
    pub throttling: Throttling,
    /// Browser access: which origins may call the API (none when absent).
    #[serde(default)]
    pub cors: Cors,
}

/// CORS: a back office in a browser, served from these origins, may call the API.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cors {
    /// Origins such as `https://admin.example.com` (scheme, host and port; no path, no wildcard).
    pub allowed_origins: Vec<Origin>,
}

/// Stage-wide throttling of API Gateway.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Throttling {
    /// Steady-state requests per second.
    pub rate_limit: f64,
    /// Requests allowed in a burst.
    pub burst_limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    pub issuer: String,
    pub audience: String,
    /// The issuer's JWKS (RS256/ES256). Exactly one of `jwks_url` and `hs256_secret_arn`.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// A Secrets Manager secret holding the HS256 key (at least 32 bytes); the functions read it
    /// at init, so it never sits in an environment variable.
    #[serde(default)]
    pub hs256_secret_arn: Option<String>,
    #[serde(default = "admin_scope")]
    pub admin_scope: String,
}

fn admin_scope() -> String {
    promo_shared::DEFAULT_ADMIN_SCOPE.to_owned()
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GuessLimit {
    pub max: u32,
    pub window_seconds: u32,
}

impl Default for GuessLimit {
    fn default() -> Self {
        GuessLimit { max: 20, window_seconds: 60 }
    }
}

/// Where environment files live, relative to the repository root.
pub const ENVIRONMENTS_DIR: &str = "environments";

impl EnvironmentSpec {
    /// Reads `<dir>/<name>.yaml`.
    pub fn load(dir: &Path, name: &EnvName) -> Result<EnvironmentSpec, ConfigError> {
        let path = dir.join(format!("{name}.yaml"));
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
        Self::parse(&path, &text)
    }

    /// Parses the text of an environment file; `path` is only for messages.
    pub fn parse(path: &Path, text: &str) -> Result<EnvironmentSpec, ConfigError> {
        let spec: EnvironmentSpec = serde_yaml::from_str(text).map_err(|e| {
            let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((1, 1));
            // The path, line and column lead the message; serde_yaml repeats them at its end.
            let message = e.to_string();
            let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
            ConfigError::Invalid { path: path.to_owned(), line, column, message }
        })?;
        spec.check_rules().map_err(|message| ConfigError::Rule { path: path.to_owned(), message })?;
        Ok(spec)
    }

    /// Rules across fields, which no single field's type can hold.
    fn check_rules(&self) -> Result<(), String> {
        if self.database.min_capacity > self.database.max_capacity {
            return Err("database.min_capacity must not be above database.max_capacity".into());
        }
        if self.database.max_capacity.acus() < 1.0 {
            return Err("database.max_capacity must be at least 1 ACU".into());
        }
        match (&self.auth.jwks_url, &self.auth.hs256_secret_arn) {
            (Some(_), Some(_)) => return Err("auth: set exactly one of jwks_url and hs256_secret_arn, not both".into()),
            (None, None) => return Err("auth: set one of jwks_url and hs256_secret_arn".into()),
            (Some(url), None) if !promo_shared::jwks::is_allowed_jwks_url(url) => {
                return Err(format!("auth.jwks_url must be an https:// URL (http:// only on loopback), got {url:?}"));
            }
            // Any partition: arn:aws:..., arn:aws-cn:..., arn:aws-us-gov:...
            (None, Some(arn)) if !(arn.starts_with("arn:aws") && arn.split(':').nth(2) == Some("secretsmanager")) => {
                return Err(format!("auth.hs256_secret_arn must be a Secrets Manager ARN, got {arn:?}"));
            }
            _ => {}
        }
        let known = promo_shared::routes::FUNCTION_CRATES;
        if let Some(unknown) = self.functions.overrides.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(format!(
                "functions.overrides.{unknown}: no such function; expected one of {}",
                known.join(", ")
            ));
        }
        for (name, value) in self.all_env_overrides() {
            if name.starts_with("AUTH_")
                || name == "DATABASE_URL"
                || name.starts_with("AWS_")
                || name == promo_shared::cors::ORIGINS_VARIABLE
            {
                return Err(format!(
                    "functions: env {name} is set by the deployer (from auth, api.cors, database and the account); remove it"
                ));
            }
            if looks_secret(name, value) {
                return Err(format!("functions: env {name} looks like a secret: keep secrets in Secrets Manager"));
            }
        }
        if self.network.subnet_ids.len() == 1 {
            return Err("network.subnet_ids: Aurora needs subnets in at least two availability zones".into());
        }
        if !(1..=128).contains(&self.api.stage.len())
            || !self.api.stage.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!("api.stage must be 1 to 128 characters of A-Z a-z 0-9 _ -, got {:?}", self.api.stage));
        }
        Ok(())
    }

    fn all_env_overrides(&self) -> impl Iterator<Item = (&String, &String)> {
        self.functions.defaults.env.iter().chain(self.functions.overrides.values().flat_map(|o| o.env.iter()))
    }

    /// The settings of one function: the defaults with its override applied.
    pub fn function_settings(&self, function: &str) -> FunctionSettings {
        let mut settings = self.functions.defaults.clone();
        if let Some(o) = self.functions.overrides.get(function) {
            settings.memory_mb = o.memory_mb.unwrap_or(settings.memory_mb);
            settings.timeout_seconds = o.timeout_seconds.unwrap_or(settings.timeout_seconds);
            settings.architecture = o.architecture.unwrap_or(settings.architecture);
            settings.reserved_concurrency = o.reserved_concurrency.or(settings.reserved_concurrency);
            settings.env.extend(o.env.clone());
        }
        settings
    }
}

fn looks_secret(name: &str, value: &str) -> bool {
    let name = name.to_ascii_uppercase();
    ["SECRET", "PASSWORD", "TOKEN", "PRIVATE_KEY"].iter().any(|w| name.contains(w)) && !value.starts_with("arn:")
}

/// The JSON Schema of environment files, for editors (`environments/schema.json`).
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(EnvironmentSpec)).unwrap_or_default()
}
