//! How the gateway proves itself upstream: an OAuth 2.0 client credentials grant against a
//! test authorization server, the access token cached and replaced shortly before it
//! expires, a refused token replaced at once, and a bad client secret reported without the
//! secret; and per-user tokens from the vault, one upstream connection per user, renewed with
//! the provider's refresh grant.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use portcullis_demo::{http_app, DemoOptions};
use portcullis_store::Store;
use portcullis_testkit::{Client, Gateway};
use portcullis_vault::{KeySource, Vault, VaultKey};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const CLIENT_ID: &str = "portcullis-gw";
const CLIENT_SECRET: &str = "planted-client-secret-0a9f3e";
const WRONG_SECRET: &str = "planted-wrong-secret-77c1d4";
/// Seconds each access token lives: short, so the test sees a refresh.
const LIFETIME: u64 = 3;

/// The test's authorization server: issues tokens to the right client, and writes each
/// to the file the upstream accepts bearers from.
struct Idp {
    accepted: PathBuf,
    issued: Mutex<Vec<String>>,
    forms: Mutex<Vec<String>>,
}

async fn token(State(idp): State<Arc<Idp>>, headers: HeaderMap, body: String) -> Response {
    use base64::Engine;
    idp.forms.lock().unwrap().push(body.clone());
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let presented = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if presented != format!("Basic {expected}") {
        let error = json!({ "error": "invalid_client", "error_description": "client authentication failed" });
        return (StatusCode::UNAUTHORIZED, Json(error)).into_response();
    }
    let mut issued = idp.issued.lock().unwrap();
    let token = format!("at-{}-{}", issued.len() + 1, std::process::id());
    issued.push(token.clone());
    std::fs::write(&idp.accepted, issued.join("\n")).unwrap();
    Json(json!({ "access_token": token, "token_type": "Bearer", "expires_in": LIFETIME })).into_response()
}

async fn serve(app: axum::Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// A temp dir with the vault key and the store, the vault, and a demo upstream that
/// answers only the bearers listed in the file `accepted`.
struct Fixture {
    dir: tempfile::TempDir,
    accepted: PathBuf,
    vault: Vault,
    api_port: u16,
}

impl Fixture {
    async fn new(accepted_now: &str) -> Fixture {
        use base64::Engine;
        let dir = tempfile::tempdir().unwrap();
        let accepted = dir.path().join("accepted");
        std::fs::write(&accepted, accepted_now).unwrap();
        std::fs::write(dir.path().join("vault.key"), base64::engine::general_purpose::STANDARD.encode([9u8; 32]))
            .unwrap();
        let options = DemoOptions { bearer_file: Some(accepted.clone()), ..DemoOptions::default() };
        let api_port = serve(http_app(&options)).await;
        let key = VaultKey::from_bytes([9; 32], KeySource::File(dir.path().join("vault.key")));
        let vault = Vault::open(Store::open(&dir.path().join("p.db")).await.unwrap(), &key).await.unwrap();
        Fixture { dir, accepted, vault, api_port }
    }

    /// A gateway config: this fixture's store and vault key, then `rest`.
    fn config(&self, rest: &str) -> String {
        let (db, key) = (self.dir.path().join("p.db"), self.dir.path().join("vault.key"));
        format!("store: {{ path: \"{}\" }}\nvault: {{ key_file: \"{}\" }}\n{rest}", db.display(), key.display())
    }
}

async fn echo(c: &mut Client) -> Value {
    c.request("tools/call", json!({ "name": "api__echo", "arguments": { "message": "hi" } })).await.response().clone()
}

fn said_hi(v: &Value) -> bool {
    v["result"]["content"][0]["text"] == "hi"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_tokens_are_cached_refreshed_and_replaced_when_refused() {
    let f = Fixture::new("").await;
    let idp = Arc::new(Idp { accepted: f.accepted.clone(), issued: Mutex::default(), forms: Mutex::default() });
    let idp_port = serve(axum::Router::new().route("/token", axum::routing::post(token)).with_state(idp.clone())).await;
    f.vault.set("idp_client", &CLIENT_SECRET.into()).await.unwrap();
    let api_port = f.api_port;
    let yaml = f.config(&format!(
        r#"
servers:
  api:
    http: {{ url: "http://127.0.0.1:{api_port}/mcp" }}
    auth:
      oauth:
        token_url: "http://127.0.0.1:{idp_port}/token"
        client_id: {CLIENT_ID}
        client_secret: "secret:idp_client"
        scopes: [mcp.read, mcp.write]
        resource: "http://127.0.0.1:{api_port}/mcp"
"#
    ));
    let gw = Gateway::start(&yaml, BIN).await;
    let started = Instant::now();
    let mut client = Client::connect(&gw.url, json!({})).await;
    for _ in 0..5 {
        let got = echo(&mut client).await;
        assert!(said_hi(&got), "{got}");
    }
    let issued = idp.issued.lock().unwrap().len();
    if started.elapsed() < half_life() {
        assert_eq!(issued, 1, "one token serves every request while it is fresh");
    }
    let form = idp.forms.lock().unwrap()[0].clone();
    assert!(form.contains("grant_type=client_credentials") && form.contains("scope=mcp.read+mcp.write"), "{form}");
    assert!(form.contains("resource=http%3A%2F%2F127.0.0.1"), "{form}");

    // Past the refresh point (half of a 3 s life) but before expiry: a new token is fetched.
    tokio::time::sleep(half_life() + Duration::from_millis(300)).await;
    let before = idp.issued.lock().unwrap().len();
    assert!(said_hi(&echo(&mut client).await));
    assert_eq!(idp.issued.lock().unwrap().len(), before + 1, "the token was replaced before it expired");

    // The upstream stops accepting every token (revoked at the provider): the gateway gets
    // a 401, fetches a new token and the call still succeeds.
    std::fs::write(&f.accepted, "").unwrap();
    let before = idp.issued.lock().unwrap().len();
    let got = echo(&mut client).await;
    assert!(said_hi(&got), "the call went through with a fresh token: {got}");
    assert_eq!(idp.issued.lock().unwrap().len(), before + 1);

    // A wrong client secret in the vault: the server goes down, saying what the provider
    // said, never the secret.
    f.vault.rotate("idp_client", &WRONG_SECRET.into()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ready = Value::Null;
    while Instant::now() < deadline {
        ready = reqwest::get(format!("{}/readyz", gw.base())).await.unwrap().json().await.unwrap();
        if ready["servers"]["api"]["state"] == "down" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let detail = ready["servers"]["api"]["detail"].as_str().unwrap_or_default().to_owned();
    assert!(detail.contains("invalid_client") && detail.contains("auth.oauth"), "{ready}");
    let refused = echo(&mut Client::new(&gw.url)).await;
    for text in [detail.as_str(), &refused.to_string(), &ready.to_string()] {
        assert!(!text.contains(WRONG_SECRET) && !text.contains(CLIENT_SECRET), "{text}");
    }

    // The right secret again: the server comes back without a restart.
    f.vault.rotate("idp_client", &CLIENT_SECRET.into()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut back = false;
    while Instant::now() < deadline && !back {
        let mut c = Client::connect(&gw.url, json!({})).await;
        back = said_hi(&echo(&mut c).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "the server came back once the secret was fixed");
    gw.server.shutdown().await.unwrap();
}

/// When the gateway replaces a token: half its life, for lives under two minutes.
fn half_life() -> Duration {
    Duration::from_secs(LIFETIME) / 2
}

/// The provider's refresh_token grant: `bob-r1` (once) buys a new token for bob.
async fn refresh_endpoint(State(idp): State<Arc<Idp>>, body: String) -> Response {
    idp.forms.lock().unwrap().push(body.clone());
    if !body.contains("grant_type=refresh_token") || !body.contains("refresh_token=bob-r1") {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": "invalid_grant" }))).into_response();
    }
    let mut issued = idp.issued.lock().unwrap();
    issued.push("bob-new".into());
    std::fs::write(&idp.accepted, issued.join("\n")).unwrap();
    Json(json!({ "access_token": "bob-new", "refresh_token": "bob-r2", "token_type": "Bearer", "expires_in": 3600 }))
        .into_response()
}

async fn key_for(store: &Store, user: &str) -> String {
    let holder = portcullis_policy::keyadmin::Holder::new(Some(user.into()), None, None, vec![]).unwrap();
    portcullis_policy::keyadmin::create(store, &holder, None).await.unwrap().1
}

async fn call_as(gw: &Gateway, key: &str) -> Value {
    let mut c = Client::connect_with_bearer(&gw.url, key).await;
    c.request("tools/call", json!({ "name": "gh__echo", "arguments": { "message": "hi" } })).await.response().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_user_reaches_the_upstream_with_their_own_token_from_the_vault() {
    let f = Fixture::new("alice-token").await;
    let idp = Arc::new(Idp {
        accepted: f.accepted.clone(),
        issued: Mutex::new(vec!["alice-token".into()]),
        forms: Mutex::default(),
    });
    let idp_port =
        serve(axum::Router::new().route("/token", axum::routing::post(refresh_endpoint)).with_state(idp.clone())).await;
    let vault = &f.vault;
    vault.set("gh_app", &"gh-app-secret".into()).await.unwrap();
    vault.set("github@alice", &"alice-token".into()).await.unwrap();
    let expired = json!({ "access_token": "bob-old", "refresh_token": "bob-r1", "expires_at": 1_000 });
    vault.set("github@bob", &expired.to_string().into()).await.unwrap();
    let store = vault.store().clone();
    let (alice, bob, carol) =
        (key_for(&store, "alice").await, key_for(&store, "bob").await, key_for(&store, "carol").await);
    let (accepted, api_port) = (f.accepted.clone(), f.api_port);
    let yaml = f.config(&format!(
        r#"
auth: {{ api_keys: {{}} }}
servers:
  gh:
    http: {{ url: "http://127.0.0.1:{api_port}/mcp" }}
    auth:
      user_token:
        secret: github
        client: {{ token_url: "http://127.0.0.1:{idp_port}/token", client_id: gh-app, client_secret: "secret:gh_app" }}
"#
    ));
    let gw = Gateway::start(&yaml, BIN).await;

    // Carol has no token: the tools cannot be listed through her, and a call says what to do.
    let mut c = Client::connect_with_bearer(&gw.url, &carol).await;
    let listed = c.request("tools/list", json!({})).await;
    assert!(!listed.raw.contains("gh__echo"), "{}", listed.raw);
    let refused = call_as(&gw, &carol).await;
    assert_eq!(refused["error"]["code"], -32003, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("portcullis secrets set github --user carol"), "{message}");

    // Alice's plain token works; bob's expired one is renewed first and stored back.
    let mut c = Client::connect_with_bearer(&gw.url, &alice).await;
    assert!(c.request("tools/list", json!({})).await.raw.contains("gh__echo"));
    assert!(said_hi(&call_as(&gw, &alice).await));
    let got = call_as(&gw, &bob).await;
    assert!(said_hi(&got), "{got}");
    let form = idp.forms.lock().unwrap().last().cloned().unwrap_or_default();
    assert!(form.contains("refresh_token=bob-r1"), "{form}");
    let (secrets, _) = vault.snapshot().await.unwrap();
    let stored: Value = serde_json::from_str(secrets.get("github@bob").unwrap().expose_secret()).unwrap();
    assert_eq!((stored["access_token"].as_str(), stored["refresh_token"].as_str()), (Some("bob-new"), Some("bob-r2")));
    let ready: Value = reqwest::get(format!("{}/readyz", gw.base())).await.unwrap().json().await.unwrap();
    assert_eq!(ready["servers"]["gh"]["state"], "per_user", "{ready}");
    assert_eq!(ready["servers"]["gh"]["caller_connections"], 2, "{ready}");

    // Each connection carries its own user's token: revoking alice's leaves bob working.
    std::fs::write(&accepted, "bob-new").unwrap();
    let refused = call_as(&gw, &alice).await;
    assert!(
        refused["error"]["message"].as_str().unwrap_or_default().contains("refused the gateway's credential"),
        "{refused}"
    );
    assert!(said_hi(&call_as(&gw, &bob).await));

    // Carol's token, stored while the gateway runs, works without a restart.
    std::fs::write(&accepted, "bob-new\ncarol-token").unwrap();
    vault.set("github@carol", &"carol-token".into()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = Value::Null;
    while Instant::now() < deadline && !said_hi(&got) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        got = call_as(&gw, &carol).await;
    }
    assert!(said_hi(&got), "{got}");
    gw.server.shutdown().await.unwrap();
}

/// A provider's authorization endpoint and token endpoint for the authorization code grant
/// with PKCE: it approves at once (the user is signed in there) and checks the verifier.
#[derive(Default)]
struct AuthCodeProvider {
    accepted: PathBuf,
    /// code -> (PKCE challenge, redirect_uri)
    codes: Mutex<std::collections::HashMap<String, (String, String)>>,
    authorize_queries: Mutex<Vec<std::collections::HashMap<String, String>>>,
}

async fn authorize(
    State(p): State<Arc<AuthCodeProvider>>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    p.authorize_queries.lock().unwrap().push(q.clone());
    let code = format!("code-{}", p.codes.lock().unwrap().len() + 1);
    let (challenge, redirect) = (q["code_challenge"].clone(), q["redirect_uri"].clone());
    p.codes.lock().unwrap().insert(code.clone(), (challenge, redirect.clone()));
    let state: String = url::form_urlencoded::byte_serialize(q["state"].as_bytes()).collect();
    let location = format!("{redirect}?code={code}&state={state}");
    (StatusCode::FOUND, [("location", location)]).into_response()
}

async fn code_token(State(p): State<Arc<AuthCodeProvider>>, body: String) -> Response {
    use base64::Engine;
    use sha2::Digest;
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let Some((challenge, redirect)) = form.get("code").and_then(|c| p.codes.lock().unwrap().remove(c)) else {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": "invalid_grant" }))).into_response();
    };
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    if computed != challenge
        || form.get("redirect_uri") != Some(&redirect)
        || form["grant_type"] != "authorization_code"
    {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": "invalid_grant" }))).into_response();
    }
    std::fs::write(&p.accepted, "dora-token").unwrap();
    Json(
        json!({ "access_token": "dora-token", "refresh_token": "dora-r1", "token_type": "Bearer", "expires_in": 3600 }),
    )
    .into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_connects_their_own_account_through_a_url_elicitation() {
    let f = Fixture::new("").await;
    let provider = Arc::new(AuthCodeProvider { accepted: f.accepted.clone(), ..AuthCodeProvider::default() });
    let idp_port = serve(
        axum::Router::new()
            .route("/authorize", axum::routing::get(authorize))
            .route("/token", axum::routing::post(code_token))
            .with_state(provider.clone()),
    )
    .await;
    let vault = &f.vault;
    vault.set("gh_app", &"gh-app-secret".into()).await.unwrap();
    let dora = key_for(vault.store(), "dora").await;
    let api_port = f.api_port;
    let yaml = f.config(&format!(
        r#"
auth: {{ api_keys: {{}} }}
servers:
  gh:
    http: {{ url: "http://127.0.0.1:{api_port}/mcp" }}
    auth:
      user_token:
        secret: github
        authorize_url: "http://127.0.0.1:{idp_port}/authorize"
        client: {{ token_url: "http://127.0.0.1:{idp_port}/token", client_id: gh-app, client_secret: "secret:gh_app", scopes: [repo] }}
"#
    ));
    let gw = Gateway::start(&yaml, BIN).await;

    // No token yet: a URL elicitation (MCP 2025-11-25) to connect the account.
    let asked = call_as(&gw, &dora).await;
    assert_eq!(asked["error"]["code"], -32042, "{asked}");
    let elicitation = &asked["error"]["data"]["elicitations"][0];
    assert_eq!(elicitation["mode"], "url");
    let url = elicitation["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&format!("{}/connect/gh?ticket=", gw.base())), "{url}");

    // A forged or altered ticket connects nothing.
    let forged = reqwest::get(format!("{url}x")).await.unwrap();
    assert_eq!(forged.status(), 400);
    let elsewhere = reqwest::get(url.replace("/connect/gh?", "/connect/other?")).await.unwrap();
    assert_eq!(elsewhere.status(), 400);

    // The user's browser: gateway -> provider (consent) -> gateway callback -> token stored.
    let page = reqwest::get(&url).await.unwrap();
    assert_eq!(page.status(), 200);
    let text = page.text().await.unwrap();
    assert!(text.contains("Connected") && text.contains("dora"), "{text}");
    let query = provider.authorize_queries.lock().unwrap()[0].clone();
    assert_eq!((query["client_id"].as_str(), query["code_challenge_method"].as_str()), ("gh-app", "S256"));
    assert_eq!(query["redirect_uri"], format!("{}/connect/callback", gw.base()));
    assert_eq!(query["scope"], "repo");
    assert!(!text.contains("dora-token"), "the token is not shown");

    // The account is connected: the call goes through as dora; the token is in the vault.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = call_as(&gw, &dora).await;
    while !said_hi(&got) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        got = call_as(&gw, &dora).await;
    }
    assert!(said_hi(&got), "{got}");
    let (secrets, _) = vault.snapshot().await.unwrap();
    let stored: Value = serde_json::from_str(secrets.get("github@dora").unwrap().expose_secret()).unwrap();
    assert_eq!(
        (stored["access_token"].as_str(), stored["refresh_token"].as_str()),
        (Some("dora-token"), Some("dora-r1"))
    );
    // The code is single use: replaying the callback connects nothing.
    let replay = reqwest::get(format!(
        "{}/connect/callback?code=code-1&state={}",
        gw.base(),
        url::form_urlencoded::byte_serialize(query["state"].as_bytes()).collect::<String>()
    ))
    .await
    .unwrap();
    assert_eq!(replay.status(), 502, "{}", replay.text().await.unwrap());
    gw.server.shutdown().await.unwrap();
}
