//! The validated values of an environment file: each type holds only what AWS accepts.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The share of traffic a canary gets: 1 to 99 percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(try_from = "u32", into = "u32")]
#[schemars(with = "u32")]
pub struct CanaryPercent(u32);

impl TryFrom<u32> for CanaryPercent {
    type Error = String;

    fn try_from(value: u32) -> Result<Self, String> {
        if (1..=99).contains(&value) {
            Ok(CanaryPercent(value))
        } else {
            Err(format!("canary_percent must be 1 to 99, got {value}"))
        }
    }
}

impl From<CanaryPercent> for u32 {
    fn from(p: CanaryPercent) -> u32 {
        p.0
    }
}

impl CanaryPercent {
    /// The alias routing weight: the share as a fraction of 1.
    pub fn weight(self) -> f64 {
        f64::from(self.0) / 100.0
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// How long a canary runs before all traffic moves: 0 to 3600 seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(try_from = "u32", into = "u32")]
#[schemars(with = "u32")]
pub struct BakeSeconds(u32);

impl TryFrom<u32> for BakeSeconds {
    type Error = String;

    fn try_from(value: u32) -> Result<Self, String> {
        if value <= 3600 { Ok(BakeSeconds(value)) } else { Err(format!("bake_seconds must be 0 to 3600, got {value}")) }
    }
}

impl From<BakeSeconds> for u32 {
    fn from(b: BakeSeconds) -> u32 {
        b.0
    }
}

impl BakeSeconds {
    pub fn duration(self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.0))
    }
}

/// A 12-digit AWS account id.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct AccountId(String);

impl TryFrom<String> for AccountId {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
            Ok(AccountId(value))
        } else {
            Err(format!("account_id must be 12 digits, in quotes, got {value:?}"))
        }
    }
}

impl From<AccountId> for String {
    fn from(id: AccountId) -> String {
        id.0
    }
}

impl AccountId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Aurora Serverless v2 capacity in ACUs: 0 to 256, in steps of 0.5.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Deserialize, Serialize, JsonSchema)]
#[serde(try_from = "f64", into = "f64")]
#[schemars(with = "f64")]
pub struct Capacity(f64);

impl TryFrom<f64> for Capacity {
    type Error = String;

    fn try_from(value: f64) -> Result<Self, String> {
        if (0.0..=256.0).contains(&value) && (value * 2.0).fract() == 0.0 {
            Ok(Capacity(value))
        } else {
            Err(format!("capacity must be 0 to 256 ACUs in steps of 0.5, got {value}"))
        }
    }
}

impl From<Capacity> for f64 {
    fn from(c: Capacity) -> f64 {
        c.0
    }
}

impl Capacity {
    pub fn acus(self) -> f64 {
        self.0
    }
}

/// Days of automated backups: 1 to 35.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(try_from = "u32", into = "u32")]
#[schemars(with = "u32")]
pub struct BackupDays(u32);

impl TryFrom<u32> for BackupDays {
    type Error = String;

    fn try_from(value: u32) -> Result<Self, String> {
        if (1..=35).contains(&value) {
            Ok(BackupDays(value))
        } else {
            Err(format!("backup_retention_days must be 1 to 35, got {value}"))
        }
    }
}

impl From<BackupDays> for u32 {
    fn from(d: BackupDays) -> u32 {
        d.0
    }
}

/// A week: RDS's own default for automated backups.
impl Default for BackupDays {
    fn default() -> Self {
        BackupDays(7)
    }
}

impl BackupDays {
    pub fn get(self) -> u32 {
        self.0
    }
}

/// Lambda memory: 128 to 10240 MB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(try_from = "u32", into = "u32")]
#[schemars(with = "u32")]
pub struct MemoryMb(u32);

impl TryFrom<u32> for MemoryMb {
    type Error = String;

    fn try_from(value: u32) -> Result<Self, String> {
        if (128..=10240).contains(&value) {
            Ok(MemoryMb(value))
        } else {
            Err(format!("memory_mb must be 128 to 10240, got {value}"))
        }
    }
}

impl From<MemoryMb> for u32 {
    fn from(m: MemoryMb) -> u32 {
        m.0
    }
}

impl MemoryMb {
    pub fn get(self) -> u32 {
        self.0
    }
}

/// Lambda timeout: 1 to 900 seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(try_from = "u32", into = "u32")]
#[schemars(with = "u32")]
pub struct TimeoutSeconds(u32);

impl TryFrom<u32> for TimeoutSeconds {
    type Error = String;

    fn try_from(value: u32) -> Result<Self, String> {
        if (1..=900).contains(&value) {
            Ok(TimeoutSeconds(value))
        } else {
            Err(format!("timeout_seconds must be 1 to 900, got {value}"))
        }
    }
}

impl From<TimeoutSeconds> for u32 {
    fn from(t: TimeoutSeconds) -> u32 {
        t.0
    }
}

impl TimeoutSeconds {
    pub fn get(self) -> u32 {
        self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    X86_64,
    Arm64,
}

impl Architecture {
    pub fn name(self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86_64",
            Architecture::Arm64 => "arm64",
        }
    }
}

/// An Aurora PostgreSQL engine version, `major.minor` (such as `16.4`). In an environment file
/// it is a minimum: AWS upgrades minor versions by itself, and never goes back down.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct EngineVersion {
    text: String,
    parts: Vec<u32>,
}

/// What moving a cluster up to a newer engine version is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upgrade {
    Minor { from: String, to: String },
    Major { from: String, to: String },
}

impl std::fmt::Display for Upgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Upgrade::Minor { from, to } => write!(f, "minor version upgrade {from} -> {to}"),
            Upgrade::Major { from, to } => write!(
                f,
                "MAJOR version upgrade {from} -> {to} (the database is unavailable while it runs, and it cannot be undone)"
            ),
        }
    }
}

impl TryFrom<String> for EngineVersion {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let parts: Option<Vec<u32>> = text.split('.').map(|p| p.parse().ok()).collect();
        match parts {
            Some(parts) if (2..=3).contains(&parts.len()) => Ok(EngineVersion { text, parts }),
            _ => Err(format!("engine_version must be an Aurora PostgreSQL version such as \"16.4\", got {text:?}")),
        }
    }
}

impl From<EngineVersion> for String {
    fn from(v: EngineVersion) -> String {
        v.text
    }
}

impl EngineVersion {
    /// A version as RDS reports it; its numeric parts are compared, whatever follows them.
    pub fn observed(text: &str) -> EngineVersion {
        let parts = text.split('.').map_while(|p| p.parse().ok()).collect();
        EngineVersion { text: text.to_owned(), parts }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn major(&self) -> Option<u32> {
        self.parts.first().copied()
    }

    /// What it takes to bring a cluster running `have` up to this minimum; `None` when `have`
    /// is this version or newer (a newer minor version AWS applied is no change).
    pub fn upgrade_from(&self, have: &EngineVersion) -> Option<Upgrade> {
        if self.parts <= have.parts {
            return None;
        }
        let (from, to) = (have.text.clone(), self.text.clone());
        if self.major() == have.major() { Some(Upgrade::Minor { from, to }) } else { Some(Upgrade::Major { from, to }) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> EngineVersion {
        EngineVersion::try_from(text.to_owned()).unwrap()
    }

    #[test]
    fn a_newer_minor_version_than_the_file_asks_for_is_no_change() {
        assert_eq!(v("16.4").upgrade_from(&EngineVersion::observed("16.6")), None);
        assert_eq!(v("16.4").upgrade_from(&EngineVersion::observed("16.4")), None);
        assert_eq!(v("15.10").upgrade_from(&EngineVersion::observed("16.1")), None);
    }

    #[test]
    fn an_older_cluster_is_upgraded_and_a_major_upgrade_says_so() {
        assert!(matches!(v("16.6").upgrade_from(&EngineVersion::observed("16.4")), Some(Upgrade::Minor { .. })));
        // Numeric, not textual: 16.10 is newer than 16.9.
        assert!(matches!(v("16.10").upgrade_from(&EngineVersion::observed("16.9")), Some(Upgrade::Minor { .. })));
        let major = v("17.2").upgrade_from(&EngineVersion::observed("16.6")).unwrap();
        assert!(major.to_string().starts_with("MAJOR version upgrade 16.6 -> 17.2"), "{major}");
    }

    #[test]
    fn an_engine_version_is_numbers_and_dots() {
        for bad in ["16", "latest", "16.x", "16.4.1.2", ""] {
            assert!(EngineVersion::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }
}

/// An origin a browser back office calls the API from: `https://host` or `https://host:port`,
/// as promo_shared::cors parses it (the functions compare `Origin` headers with the same form).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct Origin(String);

impl TryFrom<String> for Origin {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        promo_shared::cors::parse_origin(&value).map(Origin)
    }
}

impl From<Origin> for String {
    fn from(o: Origin) -> String {
        o.0
    }
}

impl Origin {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
