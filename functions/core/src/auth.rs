//! JWT verification: tokens from an external issuer, checked exactly as CONTRACT.md section 3
//! says, turned into the `Caller` the handlers act for.
//!
//! Only the key source decides the algorithm: a JWKS URL allows RS256 and ES256 (each key only
//! with its own algorithm), a shared secret allows HS256. Headers that carry their own key
//! (`jwk`, `jku`, `x5u`, `x5c`) are refused outright: a token never chooses the key that
//! verifies it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::domain::Owner;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECS: u64 = 30;
/// How long a fetched key set is trusted before it is fetched again.
const JWKS_TTL: Duration = Duration::from_secs(600);
/// How long keys stay usable when the issuer cannot be reached to refresh them: an issuer
/// outage shorter than this is invisible to callers; after it every token is refused.
const JWKS_MAX_KEY_AGE: Duration = Duration::from_secs(3600);
/// An unknown `kid` triggers at most one refetch per this period, so a flood of tokens with
/// made-up key ids cannot turn us into a load generator against the issuer.
const JWKS_REFETCH_MIN_INTERVAL: Duration = Duration::from_secs(30);
const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// A key set larger than this is not a key set.
const JWKS_MAX_BYTES: u64 = 256 * 1024;
const MIN_SECRET_BYTES: usize = 32;
/// How many verified tokens an instance remembers. A Lambda instance serves one request at a
/// time, so this is far more than the tokens it sees within their lifetimes.
const VERIFIED_TOKENS_MAX: usize = 1024;
pub use promo_shared::DEFAULT_ADMIN_SCOPE;

/// Who is calling: the token's subject, and whether it holds the admin scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub sub: Owner,
    pub admin: bool,
}

/// Why a request was not authenticated. Every variant answers 401; the text is for logs and
/// for the `message` of the error body, and never contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("the Authorization header must be `Bearer <token>`")]
    NotBearer,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("the token's signing key is unknown")]
    UnknownKey,
    /// The key set could not be fetched: still a 401 for the caller, but logged as an outage.
    #[error("the issuer's keys could not be fetched: {0}")]
    KeysUnavailable(String),
}

/// A configuration that cannot work: the function refuses to start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("set exactly one of AUTH_JWKS_URL and AUTH_HS256_SECRET, not both")]
    BothKeySources,
    #[error("set one of AUTH_JWKS_URL and AUTH_HS256_SECRET")]
    NoKeySource,
    #[error("AUTH_HS256_SECRET must be at least {MIN_SECRET_BYTES} bytes long")]
    SecretTooShort,
    #[error("AUTH_JWKS_URL must be an https:// URL (http:// only on loopback)")]
    BadJwksUrl,
    #[error("{0} must not be empty")]
    Empty(&'static str),
}

/// Where verification keys come from.
#[derive(Clone)]
pub enum KeySource {
    JwksUrl(String),
    /// Never printed: `Debug` below redacts it.
    Hs256Secret(Vec<u8>),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::JwksUrl(url) => f.debug_tuple("JwksUrl").field(url).finish(),
            KeySource::Hs256Secret(_) => f.write_str("Hs256Secret(<redacted>)"),
        }
    }
}

/// What the verifier checks tokens against.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub issuer: String,
    pub audience: String,
    pub keys: KeySource,
    pub admin_scope: String,
}

impl AuthConfig {
    /// Reads the contract's `AUTH_*` variables through `lookup` (the process environment in a
    /// function; a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<AuthConfig, ConfigError> {
        let required = |name: &'static str| -> Result<String, ConfigError> {
            let value = lookup(name).ok_or(ConfigError::Missing(name))?;
            if value.trim().is_empty() {
                return Err(ConfigError::Empty(name));
            }
            Ok(value)
        };
        let issuer = required("AUTH_ISSUER")?;
        let audience = required("AUTH_AUDIENCE")?;
        let keys = match (lookup("AUTH_JWKS_URL"), lookup("AUTH_HS256_SECRET")) {
            (Some(_), Some(_)) => return Err(ConfigError::BothKeySources),
            (None, None) => return Err(ConfigError::NoKeySource),
            (Some(url), None) => {
                if !promo_shared::jwks::is_allowed_jwks_url(&url) {
                    return Err(ConfigError::BadJwksUrl);
                }
                KeySource::JwksUrl(url)
            }
            (None, Some(secret)) => {
                if secret.len() < MIN_SECRET_BYTES {
                    return Err(ConfigError::SecretTooShort);
                }
                KeySource::Hs256Secret(secret.into_bytes())
            }
        };
        let admin_scope = match lookup("AUTH_ADMIN_SCOPE") {
            Some(scope) if scope.trim().is_empty() => return Err(ConfigError::Empty("AUTH_ADMIN_SCOPE")),
            Some(scope) => scope,
            None => DEFAULT_ADMIN_SCOPE.to_owned(),
        };
        Ok(AuthConfig { issuer, audience, keys, admin_scope })
    }

    pub fn from_env() -> Result<AuthConfig, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

/// The claims we read. `sub`, `iss`, `aud` and `exp` are also enforced by `Validation`.
#[derive(Deserialize)]
struct Claims {
    sub: String,
    /// Seconds since the epoch; a JSON number, which RFC 7519 allows to have a fraction.
    /// `Validation` requires it; the default only serves claims read without it (tests), and a
    /// token with `exp` 0 is never served from the cache.
    #[serde(default)]
    exp: f64,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scp: Option<Scopes>,
}

/// `scp` is an array in most issuers and a space-separated string in some.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scopes {
    List(Vec<String>),
    Text(String),
}

/// Verifies bearer tokens. Built once per Lambda instance; cheap to share.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<VerifierInner>,
}

struct VerifierInner {
    config: AuthConfig,
    keys: Keys,
    verified: VerifiedTokens,
    /// Signatures checked since the instance started: what the cache saves shows here.
    signature_checks: AtomicU64,
}

enum Keys {
    Secret(DecodingKey),
    Jwks(JwksCache),
}

impl Verifier {
    pub fn new(config: AuthConfig) -> Verifier {
        let keys = match &config.keys {
            KeySource::Hs256Secret(secret) => Keys::Secret(DecodingKey::from_secret(secret)),
            KeySource::JwksUrl(url) => Keys::Jwks(JwksCache::new(url.clone())),
        };
        let inner =
            VerifierInner { config, keys, verified: VerifiedTokens::default(), signature_checks: AtomicU64::new(0) };
        Verifier { inner: Arc::new(inner) }
    }

    /// How many token signatures this verifier has checked: a token served from the cache of
    /// verified tokens costs none.
    pub fn signature_checks(&self) -> u64 {
        self.inner.signature_checks.load(Ordering::Relaxed)
    }

    /// Verifies the value of an `Authorization` header.
    ///
    /// A token this instance verified before is answered from a cache, keyed by the token's
    /// SHA-256: the same bytes passed every check then, and only time and the key set can have
    /// changed since. So an entry serves only before the token's `exp` (the leeway is left to
    /// the full check), and only while the key set it was verified against is unchanged: when
    /// a refetch changes the JWKS, or the keys grow too old to trust, every entry verified
    /// against the old set is checked again in full (and refused if its key left).
    pub async fn verify(&self, authorization: Option<&str>) -> Result<Caller, AuthError> {
        let header = authorization.ok_or(AuthError::Missing)?;
        let token = bearer_token(header)?;
        let digest: TokenDigest = Sha256::digest(token.as_bytes()).into();
        let now = unix_now();
        if let Some(hit) = self.inner.verified.get(&digest, now) {
            if self.key_set_unchanged(&hit).await {
                return Ok(hit.caller);
            }
            self.inner.verified.remove(&digest);
        }
        let (caller, exp, key_set) = self.verify_in_full(token).await?;
        // A token accepted within the leeway after its `exp` is never served from the cache.
        if now < exp {
            self.inner.verified.insert(digest, Verified { caller: caller.clone(), exp, key_set }, now);
        }
        Ok(caller)
    }

    /// Whether the key set a cached token was verified against is still the one trusted. For
    /// a JWKS this runs the cache's refresh rules (a stale set is refetched, a too-old one
    /// dropped), as a full check would.
    async fn key_set_unchanged(&self, hit: &Verified) -> bool {
        match (&self.inner.keys, &hit.key_set) {
            (Keys::Secret(_), None) => true,
            (Keys::Jwks(cache), Some((kid, generation))) => {
                cache.key(kid).await.is_ok_and(|current| current.generation == *generation)
            }
            _ => false,
        }
    }

    /// Every check of CONTRACT.md section 3: the caller, the token's `exp`, and the key set it
    /// was verified against (the `kid` and the JWKS generation; none for a shared secret).
    async fn verify_in_full(&self, token: &str) -> Result<(Caller, f64, Option<(String, u64)>), AuthError> {
        let jwt_header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid("malformed".into()))?;
        if jwt_header.jwk.is_some() || jwt_header.jku.is_some() || jwt_header.x5u.is_some() || jwt_header.x5c.is_some()
        {
            return Err(AuthError::Invalid("embedded or remote key headers are not accepted".into()));
        }

        let alg = jwt_header.alg;
        let (key, key_set) = match &self.inner.keys {
            Keys::Secret(key) => {
                if alg != Algorithm::HS256 {
                    return Err(AuthError::Invalid(format!("algorithm {alg:?} is not accepted")));
                }
                (key.clone(), None)
            }
            Keys::Jwks(cache) => {
                if !matches!(alg, Algorithm::RS256 | Algorithm::ES256) {
                    return Err(AuthError::Invalid(format!("algorithm {alg:?} is not accepted")));
                }
                let kid = jwt_header.kid.as_deref().ok_or_else(|| AuthError::Invalid("no kid".into()))?;
                let JwksKey { alg: key_alg, key, generation } = cache.key(kid).await?;
                if key_alg != alg {
                    return Err(AuthError::Invalid(format!("key {kid} is not a {alg:?} key")));
                }
                (key, Some((kid.to_owned(), generation)))
            }
        };

        let config = &self.inner.config;
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.leeway = LEEWAY_SECS;

        self.inner.signature_checks.fetch_add(1, Ordering::Relaxed);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| AuthError::Invalid(describe(e.kind())))?;
        let claims = data.claims;
        let sub = Owner::parse_as("sub", &claims.sub).map_err(|_| AuthError::Invalid("unusable sub".into()))?;
        let admin = has_scope(&claims, &config.admin_scope);
        Ok((Caller { sub, admin }, claims.exp, key_set))
    }
}

type TokenDigest = [u8; 32];

/// A token that passed every check: who it names, until when, and against which key set.
#[derive(Clone)]
struct Verified {
    caller: Caller,
    exp: f64,
    /// The `kid` and the JWKS generation it was verified against; `None` for a shared secret.
    key_set: Option<(String, u64)>,
}

/// The tokens this instance verified, by the SHA-256 of the token. Bounded: when full, expired
/// entries go first, and if none has expired the cache starts over (each token then costs one
/// more signature check, never a wrong answer).
#[derive(Default)]
struct VerifiedTokens {
    entries: Mutex<HashMap<TokenDigest, Verified>>,
}

impl VerifiedTokens {
    /// The entry for `digest` if its token has not reached its `exp` at `now`.
    fn get(&self, digest: &TokenDigest, now: f64) -> Option<Verified> {
        let entries = self.entries.lock().ok()?;
        entries.get(digest).filter(|v| now < v.exp).cloned()
    }

    fn insert(&self, digest: TokenDigest, verified: Verified, now: f64) {
        let Ok(mut entries) = self.entries.lock() else { return };
        if entries.len() >= VERIFIED_TOKENS_MAX {
            entries.retain(|_, v| now < v.exp);
            if entries.len() >= VERIFIED_TOKENS_MAX {
                entries.clear();
            }
        }
        entries.insert(digest, verified);
    }

    fn remove(&self, digest: &TokenDigest) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(digest);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or_default()
    }
}

/// Seconds since the epoch, as `exp` counts them (and as jsonwebtoken checks them).
fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default()
}

fn bearer_token(header: &str) -> Result<&str, AuthError> {
    let (scheme, token) = header.trim().split_once(' ').ok_or(AuthError::NotBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::NotBearer);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::Missing);
    }
    Ok(token)
}

fn has_scope(claims: &Claims, wanted: &str) -> bool {
    // RFC 6749 3.3: scopes are separated by spaces (%x20) only. `split_whitespace` also splits on
    // Unicode spaces, so "profile\u{a0}promo:admin" would have counted as admin.
    let in_scope = claims.scope.as_deref().is_some_and(|s| s.split(' ').any(|s| s == wanted));
    let in_scp = match &claims.scp {
        Some(Scopes::List(list)) => list.iter().any(|s| s == wanted),
        Some(Scopes::Text(text)) => text.split(' ').any(|s| s == wanted),
        None => false,
    };
    in_scope || in_scp
}

/// A short, token-free reason for logs.
fn describe(kind: &jsonwebtoken::errors::ErrorKind) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match kind {
        K::ExpiredSignature => "expired".into(),
        K::ImmatureSignature => "not valid yet (nbf)".into(),
        K::InvalidIssuer => "wrong issuer".into(),
        K::InvalidAudience => "wrong audience".into(),
        K::InvalidSignature => "bad signature".into(),
        K::MissingRequiredClaim(claim) => format!("missing claim {claim}"),
        K::InvalidAlgorithm => "algorithm not accepted".into(),
        other => format!("{other:?}").chars().take(80).collect(),
    }
}

/// A key of the issuer's set, with the generation of the set it was read from (in one look, so
/// the two always belong together).
struct JwksKey {
    alg: Algorithm,
    key: DecodingKey,
    generation: u64,
}

/// The issuer's key set, fetched on demand and cached.
struct JwksCache {
    url: String,
    state: tokio::sync::Mutex<JwksState>,
}

#[derive(Default)]
struct JwksState {
    keys: HashMap<String, (Algorithm, DecodingKey)>,
    /// Changes whenever `keys` does (a fetch that brought a different set, or keys dropped as
    /// too old): a token verified against another generation is checked again.
    generation: u64,
    /// The SHA-256 of the last key set fetched, to tell a changed set from the same one.
    fetched_digest: Option<[u8; 32]>,
    /// When the keys were last fetched successfully: how old what we trust is.
    fetched_at: Option<Instant>,
    /// When a fetch was last tried, successful or not: what paces the next one.
    attempted_at: Option<Instant>,
}

impl JwksCache {
    fn new(url: String) -> JwksCache {
        JwksCache { url, state: tokio::sync::Mutex::new(JwksState::default()) }
    }

    async fn key(&self, kid: &str) -> Result<JwksKey, AuthError> {
        self.key_at(kid, Instant::now()).await
    }

    /// The key `kid` as of `now`. Keys are refetched once they are older than the TTL, or when
    /// an unknown `kid` arrives (at most once per refetch interval either way, so neither an
    /// outage nor made-up key ids turn every request into a fetch). While the issuer cannot be
    /// reached the keys already known stay usable, but never beyond `JWKS_MAX_KEY_AGE`: a key
    /// the issuer withdrew must not verify tokens forever because its JWKS is unreachable.
    async fn key_at(&self, kid: &str, now: Instant) -> Result<JwksKey, AuthError> {
        let mut state = self.state.lock().await;
        let since = |at: Option<Instant>| at.map(|at| now.saturating_duration_since(at));
        let stale = since(state.fetched_at).is_none_or(|age| age > JWKS_TTL);
        let may_fetch = since(state.attempted_at).is_none_or(|age| age >= JWKS_REFETCH_MIN_INTERVAL);
        let mut failure = None;
        if (stale || !state.keys.contains_key(kid)) && may_fetch {
            state.attempted_at = Some(now);
            match self.fetch().await {
                Ok((keys, digest)) => {
                    if state.fetched_digest != Some(digest) {
                        state.generation += 1;
                        state.fetched_digest = Some(digest);
                    }
                    state.keys = keys;
                    state.fetched_at = Some(now);
                }
                Err(e) => failure = Some(e),
            }
        }
        let too_old = since(state.fetched_at).is_some_and(|age| age > JWKS_MAX_KEY_AGE);
        if too_old && !state.keys.is_empty() {
            tracing::warn!(max_age_secs = JWKS_MAX_KEY_AGE.as_secs(), "the cached keys are too old to trust; dropped");
            state.keys.clear();
            state.generation += 1;
            state.fetched_digest = None;
        }
        let found =
            state.keys.get(kid).map(|(alg, key)| JwksKey { alg: *alg, key: key.clone(), generation: state.generation });
        match (found, failure) {
            (Some(key), Some(e)) => {
                tracing::warn!(error = %e, "using cached keys");
                Ok(key)
            }
            (Some(key), None) => Ok(key),
            (None, Some(e)) => Err(e),
            (None, None) if too_old || state.fetched_at.is_none() => Err(AuthError::KeysUnavailable(format!(
                "no keys fetched from the issuer in the last {} s",
                JWKS_MAX_KEY_AGE.as_secs()
            ))),
            (None, None) => Err(AuthError::UnknownKey),
        }
    }

    /// The usable keys of the issuer's set, and the SHA-256 of the set as served.
    async fn fetch(&self) -> Result<(HashMap<String, (Algorithm, DecodingKey)>, [u8; 32]), AuthError> {
        let url = self.url.clone();
        let body = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
            let agent: ureq::Agent =
                ureq::Agent::config_builder().timeout_global(Some(JWKS_FETCH_TIMEOUT)).max_redirects(0).build().into();
            let mut response = agent.get(&url).call().map_err(|e| e.to_string())?;
            response.body_mut().with_config().limit(JWKS_MAX_BYTES).read_to_vec().map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| AuthError::KeysUnavailable(e.to_string()))?
        .map_err(AuthError::KeysUnavailable)?;
        #[derive(Deserialize)]
        struct RawSet {
            keys: Vec<serde_json::Value>,
        }
        let raw: RawSet =
            serde_json::from_slice(&body).map_err(|e| AuthError::KeysUnavailable(format!("not a JWK set: {e}")))?;
        // One key of a kind we do not know must not make the whole set unusable.
        let keys = raw.keys.into_iter().filter_map(|k| serde_json::from_value(k).ok()).collect();
        Ok((usable_keys(&JwkSet { keys }), Sha256::digest(&body).into()))
    }
}

/// The keys of a set that we accept: RSA keys for RS256 and P-256 keys for ES256, each with a
/// `kid`; a key whose own `alg` says otherwise is skipped, and so is one the issuer published
/// for encryption (`use: enc`, RFC 7517 4.2): it was never meant to sign.
fn usable_keys(set: &JwkSet) -> HashMap<String, (Algorithm, DecodingKey)> {
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else { continue };
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let alg = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => Algorithm::ES256,
            _ => continue,
        };
        let declared_ok = match jwk.common.key_algorithm {
            None => true,
            Some(KeyAlgorithm::RS256) => alg == Algorithm::RS256,
            Some(KeyAlgorithm::ES256) => alg == Algorithm::ES256,
            Some(_) => false,
        };
        if !declared_ok {
            continue;
        }
        if let Ok(key) = DecodingKey::from_jwk(jwk) {
            keys.insert(kid, (alg, key));
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<AuthConfig, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        AuthConfig::from_lookup(|name| map.get(name).cloned())
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_configuration_needs_exactly_one_key_source() {
        let base = [("AUTH_ISSUER", "https://issuer"), ("AUTH_AUDIENCE", "promo")];
        assert_eq!(config(&base).unwrap_err(), ConfigError::NoKeySource);
        let both = [base[0], base[1], ("AUTH_JWKS_URL", "https://issuer/jwks"), ("AUTH_HS256_SECRET", SECRET)];
        assert_eq!(config(&both).unwrap_err(), ConfigError::BothKeySources);
        let short = [base[0], base[1], ("AUTH_HS256_SECRET", "too-short")];
        assert_eq!(config(&short).unwrap_err(), ConfigError::SecretTooShort);
        let ok = config(&[base[0], base[1], ("AUTH_HS256_SECRET", SECRET)]).unwrap();
        assert_eq!(ok.admin_scope, "promo:admin");
    }

    /// A cache that last reached its issuer at `fetched`, whose issuer is now unreachable.
    fn cache_of_an_unreachable_issuer(fetched: Instant) -> JwksCache {
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        let cache = JwksCache::new("http://127.0.0.1:1/.well-known/jwks.json".into());
        let key = (Algorithm::RS256, DecodingKey::from_rsa_components("AQAB", "AQAB").unwrap());
        *cache.state.try_lock().unwrap() = JwksState {
            keys: HashMap::from([("rsa-1".to_owned(), key)]),
            fetched_at: Some(fetched),
            attempted_at: Some(fetched),
            ..JwksState::default()
        };
        cache
    }

    #[tokio::test]
    async fn known_keys_outlive_an_issuer_outage_up_to_their_maximum_age_and_no_further() {
        let t0 = Instant::now();
        let cache = cache_of_an_unreachable_issuer(t0);
        // Past the TTL: the refetch fails, the known key still verifies.
        assert!(cache.key_at("rsa-1", t0 + JWKS_TTL + Duration::from_secs(1)).await.is_ok());
        assert!(cache.key_at("rsa-1", t0 + JWKS_MAX_KEY_AGE).await.is_ok());
        // Past the maximum age, with the issuer still down: dropped, and they stay dropped.
        let late = t0 + JWKS_MAX_KEY_AGE + Duration::from_secs(1);
        assert!(matches!(cache.key_at("rsa-1", late).await, Err(AuthError::KeysUnavailable(_))));
        let later = late + Duration::from_secs(1);
        assert!(matches!(cache.key_at("rsa-1", later).await, Err(AuthError::KeysUnavailable(_))));
        assert!(cache.state.lock().await.keys.is_empty());
    }

    #[tokio::test]
    async fn an_outage_costs_at_most_one_fetch_attempt_per_refetch_interval() {
        let t0 = Instant::now();
        let cache = cache_of_an_unreachable_issuer(t0);
        let t1 = t0 + JWKS_TTL + Duration::from_secs(1);
        assert!(cache.key_at("rsa-1", t1).await.is_ok());
        assert_eq!(cache.state.lock().await.attempted_at, Some(t1));
        assert!(cache.key_at("rsa-1", t1 + Duration::from_secs(5)).await.is_ok());
        assert_eq!(cache.state.lock().await.attempted_at, Some(t1), "no second attempt within the interval");
        let t2 = t1 + JWKS_REFETCH_MIN_INTERVAL;
        assert!(cache.key_at("rsa-1", t2).await.is_ok());
        assert_eq!(cache.state.lock().await.attempted_at, Some(t2));
    }

    #[test]
    fn a_jwks_url_is_https_or_on_loopback() {
        let base = [("AUTH_ISSUER", "https://issuer"), ("AUTH_AUDIENCE", "promo")];
        let with = |url| config(&[base[0], base[1], ("AUTH_JWKS_URL", url)]);
        assert_eq!(with("http://issuer.example/jwks").unwrap_err(), ConfigError::BadJwksUrl);
        assert!(with("https://issuer.example/jwks").is_ok());
        assert!(with("http://127.0.0.1:4000/.well-known/jwks.json").is_ok());
    }

    #[test]
    fn issuer_and_audience_are_required() {
        assert_eq!(
            config(&[("AUTH_AUDIENCE", "a"), ("AUTH_HS256_SECRET", SECRET)]).unwrap_err(),
            ConfigError::Missing("AUTH_ISSUER")
        );
        assert_eq!(
            config(&[("AUTH_ISSUER", "i"), ("AUTH_HS256_SECRET", SECRET)]).unwrap_err(),
            ConfigError::Missing("AUTH_AUDIENCE")
        );
        assert_eq!(
            config(&[("AUTH_ISSUER", " "), ("AUTH_AUDIENCE", "a"), ("AUTH_HS256_SECRET", SECRET)]).unwrap_err(),
            ConfigError::Empty("AUTH_ISSUER")
        );
    }

    #[test]
    fn the_secret_never_shows_in_debug_output() {
        let c = config(&[("AUTH_ISSUER", "i"), ("AUTH_AUDIENCE", "a"), ("AUTH_HS256_SECRET", SECRET)]).unwrap();
        assert!(!format!("{c:?}").contains(SECRET));
    }

    #[test]
    fn scopes_come_from_scope_or_scp() {
        let claims = |json: &str| serde_json::from_str::<Claims>(json).unwrap();
        assert!(has_scope(&claims(r#"{"sub":"s","scope":"read promo:admin"}"#), "promo:admin"));
        assert!(has_scope(&claims(r#"{"sub":"s","scp":["promo:admin"]}"#), "promo:admin"));
        assert!(has_scope(&claims(r#"{"sub":"s","scp":"a promo:admin"}"#), "promo:admin"));
        assert!(!has_scope(&claims(r#"{"sub":"s","scope":"promo:administrator"}"#), "promo:admin"));
        assert!(!has_scope(&claims(r#"{"sub":"s"}"#), "promo:admin"));
        // Only ASCII spaces separate scopes (RFC 6749 3.3): no other whitespace does.
        for separator in ["\\u00a0", "\\u2003", "\\t", "\\n", "\\u3000"] {
            let scope = format!(r#"{{"sub":"s","scope":"profile{separator}promo:admin"}}"#);
            assert!(!has_scope(&claims(&scope), "promo:admin"), "{separator}");
            let scp = format!(r#"{{"sub":"s","scp":"profile{separator}promo:admin"}}"#);
            assert!(!has_scope(&claims(&scp), "promo:admin"), "{separator}");
        }
        assert!(has_scope(&claims(r#"{"sub":"s","scope":"profile  promo:admin"}"#), "promo:admin"));
    }

    fn hs256_verifier() -> Verifier {
        Verifier::new(config(&[("AUTH_ISSUER", "i"), ("AUTH_AUDIENCE", "a"), ("AUTH_HS256_SECRET", SECRET)]).unwrap())
    }

    fn claims_for(sub: &str, exp_in: i64) -> serde_json::Value {
        let exp = unix_now() as i64 + exp_in;
        serde_json::json!({"iss": "i", "aud": "a", "sub": sub, "exp": exp})
    }

    fn sign(alg: Algorithm, kid: Option<&str>, claims: &serde_json::Value, key: &jsonwebtoken::EncodingKey) -> String {
        let mut header = jsonwebtoken::Header::new(alg);
        header.kid = kid.map(str::to_owned);
        format!("Bearer {}", jsonwebtoken::encode(&header, claims, key).unwrap())
    }

    #[tokio::test]
    async fn a_client_validating_several_codes_with_one_token_pays_for_one_signature_check() {
        let verifier = hs256_verifier();
        let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
        let token = sign(Algorithm::HS256, None, &claims_for("alice", 300), &key);
        for _ in 0..5 {
            assert_eq!(verifier.verify(Some(&token)).await.unwrap().sub.as_str(), "alice");
        }
        assert_eq!(verifier.signature_checks(), 1);
        let other = sign(Algorithm::HS256, None, &claims_for("bob", 300), &key);
        assert_eq!(verifier.verify(Some(&other)).await.unwrap().sub.as_str(), "bob");
        assert_eq!(verifier.signature_checks(), 2);
        // A copy of a cached token with another signature is another token: checked, refused.
        let mut forged = token.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        assert!(verifier.verify(Some(&forged)).await.is_err());
        assert_eq!(verifier.signature_checks(), 3);
        assert_eq!(verifier.inner.verified.len(), 2, "refused tokens are not cached");
    }

    #[test]
    fn a_cached_token_serves_only_before_its_exp_and_the_cache_stays_bounded() {
        let tokens = VerifiedTokens::default();
        let caller = Caller { sub: Owner::parse_as("sub", "alice").unwrap(), admin: false };
        let verified = |exp| Verified { caller: caller.clone(), exp, key_set: None };
        tokens.insert([1; 32], verified(100.0), 50.0);
        assert!(tokens.get(&[1; 32], 99.9).is_some());
        assert!(tokens.get(&[1; 32], 100.0).is_none(), "at exp the token gets the full check, leeway and all");
        for i in 0..(VERIFIED_TOKENS_MAX + 10) {
            let mut digest = [0; 32];
            digest[..8].copy_from_slice(&(i as u64).to_le_bytes());
            tokens.insert(digest, verified(1e12), 50.0);
            assert!(tokens.len() <= VERIFIED_TOKENS_MAX);
        }
    }

    #[tokio::test]
    async fn a_cached_token_is_checked_again_when_the_key_set_changes_and_refused_once_its_key_left() {
        use p256::pkcs8::EncodePrivateKey;
        let secret = p256::SecretKey::random(&mut rsa::rand_core::OsRng);
        let signing = jsonwebtoken::EncodingKey::from_ec_der(secret.to_pkcs8_der().unwrap().as_bytes());
        let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&signing, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some("ec-1".into());
        let keys = usable_keys(&JwkSet { keys: vec![jwk] });
        assert_eq!(keys.len(), 1);
        // An issuer reached a moment ago (so no refetch is due), now unreachable.
        let verifier = Verifier::new(AuthConfig {
            issuer: "i".into(),
            audience: "a".into(),
            keys: KeySource::JwksUrl("http://127.0.0.1:1/.well-known/jwks.json".into()),
            admin_scope: DEFAULT_ADMIN_SCOPE.into(),
        });
        let Keys::Jwks(cache) = &verifier.inner.keys else { unreachable!() };
        let now = Instant::now();
        *cache.state.lock().await =
            JwksState { keys, generation: 1, fetched_at: Some(now), attempted_at: Some(now), ..JwksState::default() };
        let token = sign(Algorithm::ES256, Some("ec-1"), &claims_for("alice", 300), &signing);
        assert!(verifier.verify(Some(&token)).await.is_ok());
        assert!(verifier.verify(Some(&token)).await.is_ok());
        assert_eq!(verifier.signature_checks(), 1);
        // A refetch brought a different set that still holds the key: checked again, accepted.
        cache.state.lock().await.generation = 2;
        assert!(verifier.verify(Some(&token)).await.is_ok());
        assert_eq!(verifier.signature_checks(), 2);
        // A refetch brought a set without the key: the cached token is refused and forgotten.
        {
            let mut state = cache.state.lock().await;
            state.keys.clear();
            state.generation = 3;
        }
        assert_eq!(verifier.verify(Some(&token)).await.unwrap_err(), AuthError::UnknownKey);
        assert_eq!(verifier.inner.verified.len(), 0);
    }

    #[test]
    fn the_bearer_scheme_is_required() {
        assert_eq!(bearer_token("Bearer abc"), Ok("abc"));
        assert_eq!(bearer_token("bearer  abc "), Ok("abc"));
        assert_eq!(bearer_token("Basic abc"), Err(AuthError::NotBearer));
        assert_eq!(bearer_token("abc"), Err(AuthError::NotBearer));
    }
}
