//! JWT callers end to end: real ES256 tokens signed by keys generated for the test, a JWKS
//! (and an OpenID discovery document) served by a local identity provider, a key
//! rotation at the provider in the middle of traffic, and token exchange (RFC 8693) so an
//! upstream sees each caller without ever seeing their token.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

/// The token endpoint of the test identity provider: client credentials for the gateway's
/// own token, token exchange (RFC 8693) for a caller's. Every issued token is written to
/// the file the upstream accepts bearers from.
#[derive(Default)]
struct TokenEndpoint {
    accepted: std::path::PathBuf,
    issued: Mutex<Vec<(String, String)>>,
    /// (subject, the subject_token presented, audience) per exchange.
    exchanges: Mutex<Vec<(String, String, String)>>,
}

impl TokenEndpoint {
    fn exchanges_for(&self, sub: &str) -> usize {
        self.exchanges.lock().unwrap().iter().filter(|(s, _, _)| s == sub).count()
    }

    fn revoke_issued_to(&self, sub: &str) {
        let mut issued = self.issued.lock().unwrap();
        issued.retain(|(who, _)| who != sub);
        let lines: Vec<&str> = issued.iter().map(|(_, t)| t.as_str()).collect();
        std::fs::write(&self.accepted, lines.join("\n")).unwrap();
    }
}

async fn token_endpoint(
    axum::extract::State(te): axum::extract::State<Arc<TokenEndpoint>>,
    body: String,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let who = match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => "gateway".to_owned(),
        Some("urn:ietf:params:oauth:grant-type:token-exchange") => {
            let subject = form.get("subject_token").cloned().unwrap_or_default();
            // The test provider reads the subject from the token's payload (it signed it).
            let payload = subject.split('.').nth(1).unwrap_or_default();
            use base64::Engine;
            let claims: Value = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            let sub = claims["sub"].as_str().unwrap_or("?").to_owned();
            let audience = form.get("audience").cloned().unwrap_or_default();
            te.exchanges.lock().unwrap().push((sub.clone(), subject, audience));
            sub
        }
        _ => {
            return (axum::http::StatusCode::BAD_REQUEST, Json(json!({ "error": "unsupported_grant_type" })))
                .into_response()
        }
    };
    let mut issued = te.issued.lock().unwrap();
    let token = format!("{who}-token-{}", issued.len() + 1);
    issued.push((who, token.clone()));
    let lines: Vec<&str> = issued.iter().map(|(_, t)| t.as_str()).collect();
    std::fs::write(&te.accepted, lines.join("\n")).unwrap();
    Json(json!({ "access_token": token, "token_type": "Bearer", "expires_in": 3600,
                 "issued_token_type": "urn:ietf:params:oauth:token-type:access_token" }))
    .into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_sees_each_caller_through_token_exchange_never_their_own_token() {
    let dir = tempfile::tempdir().unwrap();
    let k1 = signing_key("k1");
    let provider = idp(vec![k1.jwk.clone()]).await;
    let accepted = dir.path().join("accepted");
    std::fs::write(&accepted, "").unwrap();
    let te = Arc::new(TokenEndpoint { accepted: accepted.clone(), ..TokenEndpoint::default() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let token_url = format!("http://{}/token", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/token", axum::routing::post(token_endpoint)).with_state(te.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let options = portcullis_demo::DemoOptions { bearer_file: Some(accepted.clone()), ..Default::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let app = portcullis_demo::http_app(&options);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let key = portcullis_vault::VaultKey::from_bytes([5; 32], portcullis_vault::KeySource::Env("unused".into()));
    let store = portcullis_store::Store::open(&dir.path().join("p.db")).await.unwrap();
    let vault = portcullis_vault::Vault::open(store, &key).await.unwrap();
    vault.set("exchange_client", &"client-secret-value".into()).await.unwrap();
    std::fs::write(dir.path().join("vault.key"), "BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU=").unwrap();
    let yaml = format!(
        r#"
auth:
  jwt: {{ issuer: "{issuer}", audience: portcullis-test }}
  api_keys: {{}}
store: {{ path: "{db}" }}
vault: {{ key_file: "{key}" }}
servers:
  api:
    http: {{ url: "{api_url}" }}
    auth:
      token_exchange:
        token_url: "{token_url}"
        client_id: portcullis-gw
        client_secret: "secret:exchange_client"
        audience: api
"#,
        issuer = provider.issuer,
        db = dir.path().join("p.db").display(),
        key = dir.path().join("vault.key").display(),
    );
    let config_file = dir.path().join("portcullis.yaml");
    std::fs::write(&config_file, &yaml).unwrap();
    let gw = Gateway::start(&yaml, BIN).await;

    let jwt_of = |sub: &str| {
        let mut c = claims(&provider.issuer);
        c["sub"] = json!(sub);
        token(&k1, c)
    };
    let (alice_jwt, bob_jwt) = (jwt_of("alice"), jwt_of("bob"));
    let echo = json!({ "name": "api__echo", "arguments": { "message": "hi" } });
    let mut alice = Client::connect_with_bearer(&gw.url, &alice_jwt).await;
    let mut bob = Client::connect_with_bearer(&gw.url, &bob_jwt).await;
    let tools = alice.request("tools/list", json!({})).await;
    assert!(tools.raw.contains("api__echo"), "lists come through the gateway's own token: {}", tools.raw);
    for who in ["alice", "bob", "alice"] {
        let c = if who == "alice" { &mut alice } else { &mut bob };
        let r = c.request("tools/call", echo.clone()).await;
        assert_eq!(r.result()["content"][0]["text"], "hi", "{who}: {}", r.raw);
    }
    // Each caller's own token was exchanged once (cached after), for the configured audience;
    // the upstream accepted only exchanged tokens, so it never saw a caller's JWT.
    assert_eq!((te.exchanges_for("alice"), te.exchanges_for("bob")), (1, 1));
    let exchanges = te.exchanges.lock().unwrap().clone();
    assert!(exchanges.iter().any(|(s, t, a)| s == "alice" && *t == alice_jwt && a == "api"), "{exchanges:?}");
    assert!(exchanges.iter().any(|(s, t, _)| s == "bob" && *t == bob_jwt));
    let accepted_now = std::fs::read_to_string(&accepted).unwrap();
    assert!(!accepted_now.contains(&alice_jwt) && !accepted_now.contains(&bob_jwt));

    // The provider revokes alice's upstream token: her next call gets a new one; bob's stays.
    te.revoke_issued_to("alice");
    let r = alice.request("tools/call", echo.clone()).await;
    assert_eq!(r.result()["content"][0]["text"], "hi", "{}", r.raw);
    let r = bob.request("tools/call", echo.clone()).await;
    assert_eq!(r.result()["content"][0]["text"], "hi", "{}", r.raw);
    assert_eq!((te.exchanges_for("alice"), te.exchanges_for("bob")), (2, 1));

    // An API key caller has no identity-provider token to exchange: a clear refusal.
    let out = std::process::Command::new(BIN)
        .args(["keys", "create", "--user", "carol", "--json", "--config"])
        .arg(&config_file)
        .output()
        .unwrap();
    let created: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    let mut carol = Client::connect_with_bearer(&gw.url, created["key"].as_str().unwrap()).await;
    let r = carol.request("tools/call", echo).await;
    assert_eq!(r.error()["code"], -32003, "{}", r.raw);
    assert!(r.error()["message"].as_str().unwrap().contains("API keys cannot be exchanged"), "{}", r.raw);
    gw.server.shutdown().await.unwrap();
}
