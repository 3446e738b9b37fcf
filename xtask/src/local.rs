//! The local environment: `environments/local.yaml`, the local issuer's key under `target/dev/`,
//! and how `AUTH_*` variables already set override them.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey};
use p256::pkcs8::EncodePrivateKey;
use promo_core::auth::{AuthConfig, KeySource};
use promo_core::cors::Cors;
use rand::Rng;
use serde::Deserialize;

use crate::workspace_root;

pub const LOCAL_KID: &str = "local-1";

/// `environments/local.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalConfig {
    pub port: u16,
    pub database: String,
    pub auth: LocalAuth,
    #[serde(default)]
    pub cors: LocalCors,
}

/// The origins a back office served on this machine may call the local API from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalCors {
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalAuth {
    pub issuer: String,
    pub audience: String,
    pub admin_scope: String,
}

impl LocalConfig {
    /// The allowed origins: `CORS_ALLOWED_ORIGINS` when it is set, as for the `AUTH_*` variables,
    /// else local.yaml's.
    pub fn cors(&self) -> anyhow::Result<Cors> {
        let cors = match std::env::var_os(promo_core::cors::ORIGINS_VARIABLE) {
            Some(_) => Cors::from_env(),
            None => Cors::new(&self.cors.allowed_origins),
        };
        cors.context("environments/local.yaml: cors.allowed_origins")
    }

    pub fn load() -> anyhow::Result<LocalConfig> {
        let path = workspace_root().join("environments/local.yaml");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_yaml::from_str(&text).map_err(|e| {
            let at = e.location().map(|l| format!(":{}:{}", l.line(), l.column())).unwrap_or_default();
            anyhow::anyhow!("{}{at}: {e}", path.display())
        })
    }
}

/// Where `cargo xtask dev` keeps its state: the database and the issuer key. `PROMO_DEV_DIR`
/// moves it (the end-to-end test uses a directory of its own).
pub fn dev_dir() -> PathBuf {
    std::env::var_os("PROMO_DEV_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target/dev"))
}

/// The local issuer's ES256 key, made on first use and kept (owner-only) under the dev dir.
pub fn issuer_key() -> anyhow::Result<EncodingKey> {
    let dir = dev_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("issuer-key.p8.der");
    if !path.exists() {
        write_new_key(&path)?;
    }
    let der = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(EncodingKey::from_ec_der(&der))
}

fn write_new_key(path: &Path) -> anyhow::Result<()> {
    let mut rng = rand::rng();
    let secret = loop {
        let mut bytes = [0u8; 32];
        rng.fill(&mut bytes);
        // Almost every 32-byte string is a valid P-256 scalar; retry the rare one that is not.
        if let Ok(secret) = p256::SecretKey::from_slice(&bytes) {
            break secret;
        }
    };
    let der = secret.to_pkcs8_der().context("encoding the local issuer key")?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    std::io::Write::write_all(&mut file, der.as_bytes())?;
    Ok(())
}

/// The JWKS the dev server publishes for the local issuer.
pub fn local_jwks() -> anyhow::Result<JwkSet> {
    let mut jwk = Jwk::from_encoding_key(&issuer_key()?, Algorithm::ES256)?;
    jwk.common.key_id = Some(LOCAL_KID.to_owned());
    Ok(JwkSet { keys: vec![jwk] })
}

/// The verifier's configuration for `cargo xtask dev`: each `AUTH_*` variable in the
/// environment wins; a key source in the environment replaces the local issuer.
pub fn auth_config(local: &LocalConfig, jwks_url: &str) -> anyhow::Result<AuthConfig> {
    auth_config_from(local, jwks_url, |name| std::env::var(name).ok())
}

fn auth_config_from(
    local: &LocalConfig,
    jwks_url: &str,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<AuthConfig> {
    let key_from_env = env("AUTH_JWKS_URL").is_some() || env("AUTH_HS256_SECRET").is_some();
    let config = AuthConfig::from_lookup(|name| match name {
        "AUTH_ISSUER" => env(name).or_else(|| Some(local.auth.issuer.clone())),
        "AUTH_AUDIENCE" => env(name).or_else(|| Some(local.auth.audience.clone())),
        "AUTH_ADMIN_SCOPE" => env(name).or_else(|| Some(local.auth.admin_scope.clone())),
        "AUTH_JWKS_URL" if !key_from_env => Some(jwks_url.to_owned()),
        other => env(other),
    })?;
    Ok(config)
}

/// Signs a token the local stack accepts: with the local issuer's key, or with
/// `AUTH_HS256_SECRET` when that replaces it.
pub fn sign_token(local: &LocalConfig, sub: &str, admin: bool, ttl_secs: u64) -> anyhow::Result<String> {
    let config = auth_config(local, "http://127.0.0.1/unused")?;
    let now = chrono::Utc::now().timestamp();
    let mut claims = serde_json::json!({
        "iss": config.issuer,
        "aud": config.audience,
        "sub": sub,
        "iat": now,
        "exp": now + i64::try_from(ttl_secs).context("--ttl is too large")?,
        // As identity providers do: two tokens signed in the same second are different tokens.
        "jti": format!("{:032x}", rand::random::<u128>()),
    });
    if admin {
        claims["scope"] = serde_json::json!(config.admin_scope);
    }
    let (header, key) = match &config.keys {
        KeySource::Hs256Secret(secret) => {
            (jsonwebtoken::Header::new(Algorithm::HS256), EncodingKey::from_secret(secret))
        }
        KeySource::JwksUrl(url) if std::env::var_os("AUTH_JWKS_URL").is_some() => {
            bail!("AUTH_JWKS_URL is set ({url}): tokens come from that issuer, not from cargo xtask token")
        }
        KeySource::JwksUrl(_) => {
            let mut header = jsonwebtoken::Header::new(Algorithm::ES256);
            header.kid = Some(LOCAL_KID.to_owned());
            (header, issuer_key()?)
        }
    };
    Ok(jsonwebtoken::encode(&header, &claims, &key)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> LocalConfig {
        LocalConfig {
            port: 3000,
            database: "promo_codes".into(),
            auth: LocalAuth {
                issuer: "local-iss".into(),
                audience: "local-aud".into(),
                admin_scope: "promo:admin".into(),
            },
            cors: LocalCors::default(),
        }
    }

    fn config(vars: &[(&str, &str)]) -> AuthConfig {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        auth_config_from(&local(), "http://127.0.0.1:3000/jwks", |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .unwrap()
    }

    #[test]
    fn local_yaml_and_the_local_issuer_apply_when_nothing_is_set() {
        let c = config(&[]);
        assert_eq!((c.issuer.as_str(), c.audience.as_str()), ("local-iss", "local-aud"));
        assert!(matches!(c.keys, KeySource::JwksUrl(ref url) if url == "http://127.0.0.1:3000/jwks"));
    }

    #[test]
    fn auth_variables_in_the_environment_win() {
        let c = config(&[("AUTH_ISSUER", "https://idp/"), ("AUTH_ADMIN_SCOPE", "admin")]);
        assert_eq!(
            (c.issuer.as_str(), c.audience.as_str(), c.admin_scope.as_str()),
            ("https://idp/", "local-aud", "admin")
        );
    }

    #[test]
    fn a_key_source_in_the_environment_replaces_the_local_issuer() {
        let c = config(&[("AUTH_HS256_SECRET", "0123456789abcdef0123456789abcdef")]);
        assert!(matches!(c.keys, KeySource::Hs256Secret(_)));
        let c = config(&[("AUTH_JWKS_URL", "https://idp/jwks")]);
        assert!(matches!(c.keys, KeySource::JwksUrl(ref url) if url == "https://idp/jwks"));
    }
}
