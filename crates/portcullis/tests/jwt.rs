//! JWT callers end to end: real ES256 tokens signed by keys generated for the test, a JWKS
//! (and an OpenID discovery document) served by a local identity provider, and a key
//! rotation at the provider in the middle of traffic.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use axum::routing::get;
use axum::Json;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use portcullis_testkit::{BearerLoad, Client, Gateway};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// A signing key of the test identity provider.
struct SigningKey {
    kid: String,
    key: EncodingKey,
    jwk: Jwk,
}

fn signing_key(kid: &str) -> SigningKey {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
    let key = EncodingKey::from_ec_der(pkcs8.as_ref());
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    SigningKey { kid: kid.to_owned(), key, jwk }
}

/// A local identity provider: `/.well-known/openid-configuration` and `/jwks`, whose key
/// set the test can change; counts JWKS fetches.
struct Idp {
    issuer: String,
    keys: Arc<Mutex<Vec<Jwk>>>,
    fetches: Arc<AtomicUsize>,
}

async fn idp(keys: Vec<Jwk>) -> Idp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let keys = Arc::new(Mutex::new(keys));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (set, count, jwks_uri) = (keys.clone(), fetches.clone(), format!("{issuer}/jwks"));
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(move || async move { Json(json!({ "jwks_uri": jwks_uri })) }))
        .route(
            "/jwks",
            get(move || async move {
                count.fetch_add(1, Ordering::SeqCst);
                Json(JwkSet { keys: set.lock().unwrap().clone() })
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Idp { issuer, keys, fetches }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn token(key: &SigningKey, claims: Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(key.kid.clone());
    encode(&header, &claims, &key.key).unwrap()
}

fn claims(issuer: &str) -> Value {
    json!({ "iss": issuer, "aud": "portcullis-test", "sub": "alice", "team": "eng", "roles": ["dev"],
            "scope": "openid mcp:tools", "exp": now() + 600, "iat": now() })
}

fn config(issuer: &str) -> String {
    // No jwks_url: found through the provider's discovery document.
    format!(
        r#"
auth:
  jwt:
    issuer: "{issuer}"
    audience: portcullis-test
    required_scopes: ["mcp:tools"]
servers:
  demo:
    stdio: {{ command: "{{bin}}", args: [demo-server] }}
"#
    )
}

fn initialize() -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
           "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
    .to_string()
}

async fn status_with(url: &str, token: &str) -> (u16, String, String) {
    let r = Client::with_bearer(url, token).post_raw(&initialize()).await;
    let challenge = r.headers.get("www-authenticate").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (r.status, challenge, r.raw)
}

#[tokio::test]
async fn tokens_from_the_identity_provider_admit_callers_and_bad_ones_say_why() {
    let k1 = signing_key("k1");
    let provider = idp(vec![k1.jwk.clone()]).await;
    let gw = Gateway::start(&config(&provider.issuer), BIN).await;

    let good = token(&k1, claims(&provider.issuer));
    let mut c = Client::connect_with_bearer(&gw.url, &good).await;
    let r = c.request("tools/call", json!({ "name": "demo__echo", "arguments": { "message": "via jwt" } })).await;
    assert_eq!(r.result()["content"][0]["text"], "via jwt");

    let mut wrong_audience = claims(&provider.issuer);
    wrong_audience["aud"] = json!("another-service");
    let mut expired = claims(&provider.issuer);
    expired["exp"] = json!(now() - 3600);
    let mut wrong_issuer = claims(&provider.issuer);
    wrong_issuer["iss"] = json!("https://evil.example.com");
    let stranger = signing_key("k1"); // same kid, a key the provider never published
    for (what, bad) in [
        ("audience", token(&k1, wrong_audience)),
        ("expired", token(&k1, expired)),
        ("issuer", token(&k1, wrong_issuer)),
        ("signature", token(&stranger, claims(&provider.issuer))),
        ("not a JWT", "eyJhbGciOi.not.a.jwt".to_owned()),
    ] {
        let (status, challenge, body) = status_with(&gw.url, &bad).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert!(challenge.contains("error=\"invalid_token\""), "{what}: {challenge}");
        assert!(!body.contains(&bad), "{what}: the token is not echoed");
    }

    // Authenticated but without the required scope: 403 with a scope challenge.
    let mut no_scope = claims(&provider.issuer);
    no_scope["scope"] = json!("openid");
    let (status, challenge, _) = status_with(&gw.url, &token(&k1, no_scope)).await;
    assert_eq!(status, 403);
    assert!(
        challenge.contains("error=\"insufficient_scope\"") && challenge.contains("scope=\"mcp:tools\""),
        "{challenge}"
    );

    let metadata: Value = reqwest::get(format!("{}/.well-known/oauth-protected-resource/mcp", gw.base()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["authorization_servers"], json!([provider.issuer]));
    assert_eq!(metadata["scopes_supported"], json!(["mcp:tools"]));
    gw.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_key_rotation_at_the_identity_provider_fails_no_request() {
    let (k1, k2) = (signing_key("k1"), signing_key("k2"));
    let provider = idp(vec![k1.jwk.clone()]).await;
    let gw = Gateway::start(&config(&provider.issuer), BIN).await;
    let fetched_at_start = provider.fetches.load(Ordering::SeqCst);
    assert!(fetched_at_start >= 1);

    let load = BearerLoad::start(&gw.url, 4, &token(&k1, claims(&provider.issuer)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The provider publishes its new key, then signs with it: the gateway has never seen
    // `k2` and fetches the key set again on the first token that names it.
    provider.keys.lock().unwrap().push(k2.jwk.clone());
    load.switch_to(&token(&k2, claims(&provider.issuer)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (ok, failures) = load.stop().await;
    assert!(failures.is_empty(), "requests failed during the key rotation: {failures:?}");
    assert!(ok > 20);
    let refetches = provider.fetches.load(Ordering::SeqCst) - fetched_at_start;
    assert!((1..=2).contains(&refetches), "one fetch for the new key, not one per request: {refetches}");
    gw.server.shutdown().await.unwrap();
}
