//! Token verification through a real handler: the attack table of the functions issue, each
//! answered 401 `unauthorized` with `WWW-Authenticate: Bearer`, and the tokens that must pass.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use promo_core::api::App;
use promo_core::auth::{AuthConfig, KeySource, Verifier};
use promo_core::cors::Cors;
use promo_core::routes::Function;
use promo_core::store::GuessLimit;
use serde_json::{Value, json};

use crate::events::{Answer, Event, app, call};
use crate::helpers::fresh_store;
use crate::tokens::{self, AUDIENCE, EC_KID, ISSUER, Issuer, RSA_KID, claims, jwk, now, rsa_encoding_key, sign};

async fn list_with(app: &App, authorization: Option<&str>) -> Answer {
    let mut event = Event::fixture("list").without_header("Authorization");
    if let Some(value) = authorization {
        event = event.header("Authorization", value);
    }
    call(app, Function::List, &event).await
}

fn assert_unauthorized(answer: &Answer, case: &str) {
    assert_eq!(answer.status, 401, "{case}: {}", answer.body);
    assert_eq!(answer.error_code(), "unauthorized", "{case}");
    assert_eq!(answer.header("www-authenticate"), Some("Bearer"), "{case}");
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

#[tokio::test]
async fn every_attack_on_the_token_is_answered_401() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    let admin = claims("back-office", true);
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());

    let valid = issuer.token(&admin);
    let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
    parts[1] = b64(&with(admin.clone(), "sub", json!("root")));
    let tampered = parts.join(".");

    let alg_none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&admin));
    let hs256_with_public_key =
        sign(Algorithm::HS256, Some(RSA_KID), &admin, &EncodingKey::from_secret(tokens::rsa_public_pem().as_bytes()));
    let other_key = sign(Algorithm::RS256, Some(RSA_KID), &admin, &rsa_encoding_key(1));
    let rs256_with_ec_kid = sign(Algorithm::RS256, Some(EC_KID), &admin, &issuer.rsa);

    let attacker = rsa_encoding_key(1);
    let mut embedded = Header::new(Algorithm::RS256);
    embedded.kid = Some(RSA_KID.into());
    embedded.jwk = Some(jwk(&attacker, Algorithm::RS256, RSA_KID));
    let embedded_jwk = jsonwebtoken::encode(&embedded, &admin, &attacker).unwrap();
    let mut remote = Header::new(Algorithm::RS256);
    remote.kid = Some(RSA_KID.into());
    remote.jku = Some("https://attacker.example/jwks.json".into());
    let jku = jsonwebtoken::encode(&remote, &admin, &issuer.rsa).unwrap();

    // The valid token is verified first, so it sits in the cache of verified tokens while every
    // attack below is tried: being cached must not help a token that differs from it.
    assert_eq!(list_with(&app, Some(&format!("Bearer {valid}"))).await.status, 200);

    let cases: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("empty bearer", Some("Bearer ".into())),
        ("not bearer", Some(format!("Basic {valid}"))),
        ("garbage", Some("Bearer not.a.token".into())),
        ("alg none", Some(format!("Bearer {alg_none}"))),
        ("HS256 signed with the RSA public key", Some(format!("Bearer {hs256_with_public_key}"))),
        ("signed by another key", Some(format!("Bearer {other_key}"))),
        ("RS256 naming the EC key", Some(format!("Bearer {rs256_with_ec_kid}"))),
        ("expired", Some(format!("Bearer {}", issuer.token(&with(admin.clone(), "exp", json!(now() - 60)))))),
        ("nbf ahead", Some(format!("Bearer {}", issuer.token(&with(admin.clone(), "nbf", json!(now() + 120)))))),
        (
            "wrong iss",
            Some(format!("Bearer {}", issuer.token(&with(admin.clone(), "iss", json!("https://evil.example/"))))),
        ),
        ("wrong aud", Some(format!("Bearer {}", issuer.token(&with(admin.clone(), "aud", json!("other-api")))))),
        ("missing sub", Some(format!("Bearer {}", issuer.token(&without(admin.clone(), "sub"))))),
        ("empty sub", Some(format!("Bearer {}", issuer.token(&with(admin.clone(), "sub", json!("")))))),
        ("missing exp", Some(format!("Bearer {}", issuer.token(&without(admin.clone(), "exp"))))),
        ("missing iss", Some(format!("Bearer {}", issuer.token(&without(admin.clone(), "iss"))))),
        ("missing aud", Some(format!("Bearer {}", issuer.token(&without(admin.clone(), "aud"))))),
        ("unknown kid", Some(format!("Bearer {}", sign(Algorithm::RS256, Some("rotated-away"), &admin, &issuer.rsa)))),
        ("no kid", Some(format!("Bearer {}", sign(Algorithm::RS256, None, &admin, &issuer.rsa)))),
        ("embedded jwk", Some(format!("Bearer {embedded_jwk}"))),
        ("jku header", Some(format!("Bearer {jku}"))),
        ("tampered payload", Some(format!("Bearer {tampered}"))),
    ];
    for (case, header) in &cases {
        let answer = list_with(&app, header.as_deref()).await;
        assert_unauthorized(&answer, case);
        // The token never comes back in the answer.
        if let Some(h) = header {
            let token = h.trim_start_matches("Bearer ").trim_start_matches("Basic ");
            if token.len() > 10 {
                assert!(!answer.body.to_string().contains(token), "{case}: token echoed");
            }
        }
    }
    // The same valid token passes: the table above fails for its own reason only.
    assert_eq!(list_with(&app, Some(&format!("Bearer {valid}"))).await.status, 200);
}

/// A client validating several codes with one token pays for one signature check; a token
/// verified once is not trusted past its `exp` plus the leeway.
#[tokio::test]
async fn one_token_for_several_requests_costs_one_signature_check_and_no_more_than_its_lifetime() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    let token = format!("Bearer {}", issuer.es256_token(&claims("back-office", true)));
    for _ in 0..4 {
        assert_eq!(list_with(&app, Some(&token)).await.status, 200);
    }
    assert_eq!(app.verifier.signature_checks(), 1);

    // Accepted within the 30 s leeway after its exp (2 s of it left), refused once that has passed.
    let ending = format!("Bearer {}", issuer.token(&with(claims("back-office", true), "exp", json!(now() - 28))));
    assert_eq!(list_with(&app, Some(&ending)).await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    assert_unauthorized(&list_with(&app, Some(&ending)).await, "past exp and leeway, after being accepted once");
}

#[tokio::test]
async fn expiry_and_nbf_allow_30_seconds_of_clock_skew_and_no_more() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    let admin = claims("back-office", true);
    let just_expired = issuer.token(&with(admin.clone(), "exp", json!(now() - 10)));
    let nbf_soon = issuer.token(&with(admin.clone(), "nbf", json!(now() + 10)));
    assert_eq!(list_with(&app, Some(&format!("Bearer {just_expired}"))).await.status, 200);
    assert_eq!(list_with(&app, Some(&format!("Bearer {nbf_soon}"))).await.status, 200);
    let long_expired = issuer.token(&with(admin, "exp", json!(now() - 45)));
    assert_eq!(list_with(&app, Some(&format!("Bearer {long_expired}"))).await.status, 401);
}

#[tokio::test]
async fn es256_tokens_from_the_jwks_are_accepted_and_scp_arrays_grant_admin() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    let scp = with(without(claims("back-office", false), "scope"), "scp", json!(["promo:admin"]));
    let token = issuer.es256_token(&scp);
    assert_eq!(list_with(&app, Some(&format!("Bearer {token}"))).await.status, 200);
    let plain_user = issuer.es256_token(&claims("someone", false));
    assert_eq!(list_with(&app, Some(&format!("Bearer {plain_user}"))).await.status, 403);
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_jwks_at_most_once_per_30_seconds() {
    let issuer = Issuer::start().await;
    let app = app(&issuer).await;
    assert_eq!(list_with(&app, Some(&format!("Bearer {}", issuer.admin()))).await.status, 200);
    assert_eq!(issuer.fetches(), 1, "the first token fetches the key set");
    for i in 0..10 {
        let token = sign(Algorithm::RS256, Some(&format!("made-up-{i}")), &claims("x", true), &issuer.rsa);
        assert_eq!(list_with(&app, Some(&format!("Bearer {token}"))).await.status, 401);
    }
    assert_eq!(issuer.fetches(), 1, "made-up key ids must not each cost a fetch");
    assert_eq!(list_with(&app, Some(&format!("Bearer {}", issuer.admin()))).await.status, 200);
    assert_eq!(issuer.fetches(), 1, "known keys are served from the cache");
}

#[tokio::test]
async fn a_key_that_rotated_in_before_the_first_fetch_is_found() {
    let issuer = Issuer::start().await;
    let rotated = rsa_encoding_key(1);
    issuer.serve(&JwkSet { keys: vec![jwk(&rotated, Algorithm::RS256, "rsa-2")] });
    let app = app(&issuer).await;
    let token = sign(Algorithm::RS256, Some("rsa-2"), &claims("back-office", true), &rotated);
    assert_eq!(list_with(&app, Some(&format!("Bearer {token}"))).await.status, 200);
    assert_eq!(list_with(&app, Some(&format!("Bearer {}", issuer.admin()))).await.status, 401, "rsa-1 is gone");
}

#[tokio::test]
async fn hs256_with_a_shared_secret_verifies_and_refuses_other_algorithms() {
    let secret = "a-shared-secret-of-at-least-32-bytes!!";
    let config = AuthConfig {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        keys: KeySource::Hs256Secret(secret.as_bytes().to_vec()),
        admin_scope: "promo:admin".into(),
    };
    let app = App {
        store: fresh_store().await,
        verifier: Verifier::new(config),
        guess_limit: GuessLimit::default(),
        cors: Cors::default(),
    };
    let admin = claims("back-office", true);
    let good = sign(Algorithm::HS256, None, &admin, &EncodingKey::from_secret(secret.as_bytes()));
    assert_eq!(list_with(&app, Some(&format!("Bearer {good}"))).await.status, 200);
    let wrong_secret =
        sign(Algorithm::HS256, None, &admin, &EncodingKey::from_secret(b"another-secret-of-32-bytes-or-more!!"));
    assert_unauthorized(&list_with(&app, Some(&format!("Bearer {wrong_secret}"))).await, "wrong secret");
    let hs512 = sign(Algorithm::HS512, None, &admin, &EncodingKey::from_secret(secret.as_bytes()));
    assert_unauthorized(&list_with(&app, Some(&format!("Bearer {hs512}"))).await, "HS512");
    let rs256 = sign(Algorithm::RS256, Some(RSA_KID), &admin, &rsa_encoding_key(0));
    assert_unauthorized(&list_with(&app, Some(&format!("Bearer {rs256}"))).await, "RS256 in HS256 mode");
}

/// A key the issuer publishes for encryption (`use: enc`) never verifies a signature, even
/// when it is the very key that signed (RFC 7517 4.2): only `use: sig` or no `use` at all.
#[tokio::test]
async fn a_key_published_for_encryption_does_not_verify_tokens() {
    let issuer = Issuer::start().await;
    let mut enc = jwk(&issuer.rsa, Algorithm::RS256, "rsa-1");
    enc.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Encryption);
    let mut sig = jwk(&issuer.ec, Algorithm::ES256, "ec-1");
    sig.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
    issuer.serve(&JwkSet { keys: vec![enc, sig] });
    let app = app(&issuer).await;
    assert_eq!(list_with(&app, Some(&format!("Bearer {}", issuer.admin()))).await.status, 401);
    let es = issuer.es256_token(&claims("back-office", true));
    assert_eq!(list_with(&app, Some(&format!("Bearer {es}"))).await.status, 200, "a `use: sig` key verifies");
}
