//! A test token issuer: real RSA and P-256 keys made here, their JWKS served over HTTP on
//! loopback, and tokens signed with them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::rand_core::OsRng;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub const ISSUER: &str = "https://issuer.example.test/";
pub const AUDIENCE: &str = "promo-codes";
pub const RSA_KID: &str = "rsa-1";
pub const EC_KID: &str = "ec-1";

/// One RSA key per test binary: generating 2048-bit keys is the slow part.
fn rsa_key(slot: usize) -> &'static rsa::RsaPrivateKey {
    static KEYS: OnceLock<Vec<rsa::RsaPrivateKey>> = OnceLock::new();
    &KEYS.get_or_init(|| (0..2).map(|_| rsa::RsaPrivateKey::new(&mut OsRng, 2048).expect("rsa key")).collect())[slot]
}

pub fn rsa_encoding_key(slot: usize) -> EncodingKey {
    EncodingKey::from_rsa_der(rsa_key(slot).to_pkcs1_der().expect("der").as_bytes())
}

pub fn rsa_public_pem() -> String {
    rsa_key(0).to_public_key().to_public_key_pem(LineEnding::LF).expect("pem")
}

pub fn new_ec_key() -> EncodingKey {
    let secret = p256::SecretKey::random(&mut OsRng);
    EncodingKey::from_ec_der(secret.to_pkcs8_der().expect("pkcs8").as_bytes())
}

pub fn jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(key, alg).expect("jwk");
    jwk.common.key_id = Some(kid.to_owned());
    jwk
}

/// An identity provider: its keys and the JWKS endpoint it serves on loopback.
pub struct Issuer {
    pub rsa: EncodingKey,
    pub ec: EncodingKey,
    pub jwks_url: String,
    jwks: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
}

impl Issuer {
    /// Starts serving the JWKS (RSA key `rsa-1`, P-256 key `ec-1`) on the current runtime.
    pub async fn start() -> Issuer {
        let rsa = rsa_encoding_key(0);
        let ec = new_ec_key();
        let set = JwkSet { keys: vec![jwk(&rsa, Algorithm::RS256, RSA_KID), jwk(&ec, Algorithm::ES256, EC_KID)] };
        let jwks = Arc::new(Mutex::new(serde_json::to_string(&set).expect("jwks json")));
        let fetches = Arc::new(AtomicUsize::new(0));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind jwks server");
        let jwks_url = format!("http://{}/.well-known/jwks.json", listener.local_addr().expect("addr"));
        let (body, count) = (jwks.clone(), fetches.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let body = body.lock().expect("jwks lock").clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Issuer { rsa, ec, jwks_url, jwks, fetches }
    }

    /// How many times the JWKS has been fetched.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Replaces the served key set.
    pub fn serve(&self, set: &JwkSet) {
        *self.jwks.lock().expect("jwks lock") = serde_json::to_string(set).expect("jwks json");
    }

    /// An RS256 token for `claims`, signed with the served RSA key.
    pub fn token(&self, claims: &Value) -> String {
        sign(Algorithm::RS256, Some(RSA_KID), claims, &self.rsa)
    }

    pub fn es256_token(&self, claims: &Value) -> String {
        sign(Algorithm::ES256, Some(EC_KID), claims, &self.ec)
    }

    pub fn user(&self, sub: &str) -> String {
        self.token(&claims(sub, false))
    }

    pub fn admin(&self) -> String {
        self.token(&claims("back-office", true))
    }
}

pub fn sign(alg: Algorithm, kid: Option<&str>, claims: &Value, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("sign token")
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Valid claims for `sub`, with the admin scope when `admin`.
pub fn claims(sub: &str, admin: bool) -> Value {
    let mut claims = json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "iat": now(),
        "exp": now() + 300,
    });
    if admin {
        claims["scope"] = json!("openid promo:admin");
    }
    claims
}
