//! Users connect their own account to a server (`auth.user_token` with `authorize_url`):
//! a user without a token gets an MCP URL elicitation (error -32042) pointing at
//! `/connect/<server>?ticket=...`; that page sends the browser to the provider (OAuth 2.0
//! authorization code with PKCE, RFC 7636), and `/connect/callback` trades the code for the
//! user's token and stores it in the vault. The token never passes through the MCP client.
//!
//! The ticket and the OAuth `state` are sealed (XChaCha20-Poly1305) with the sessions key,
//! bound to the server and the user, and expire after ten minutes: whoever opens the link
//! connects an account for that user only, and nobody can forge one.

use crate::credentials::Credentials;
use crate::egress::{request_token, unix_now, ResolvedUserToken};
use crate::pipeline::Gateway;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use portcullis_mcp::jsonrpc::RpcError;
use portcullis_mcp::seal::Sealer;
use rand::RngCore;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

/// How long a connect link and a login at the provider may take.
const TICKET_LIFETIME: u64 = 600;
/// The MCP error of a request that needs the user to open a URL first (2025-11-25).
pub const URL_ELICITATION_REQUIRED: i64 = -32042;

/// Issues and checks connect tickets; knows the gateway's public origin.
pub struct Connector {
    sealer: Sealer,
    origin: String,
}

/// What a ticket or an OAuth `state` carries.
#[derive(Serialize, Deserialize)]
struct Sealed {
    /// `ticket` or `state`: one cannot stand in for the other.
    purpose: String,
    server: String,
    user: String,
    expires: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verifier: Option<String>,
}

impl Connector {
    /// `origin` is where browsers reach this gateway (`https://mcp.example.com`).
    pub fn new(key: Option<&[u8; 32]>, origin: String) -> Connector {
        let sealer = key.map_or_else(Sealer::random, Sealer::new);
        Connector { sealer, origin: origin.trim_end_matches('/').to_owned() }
    }

    fn seal(&self, purpose: &str, server: &str, user: &str, verifier: Option<String>) -> String {
        let sealed = Sealed {
            purpose: purpose.into(),
            server: server.into(),
            user: user.into(),
            expires: unix_now() + TICKET_LIFETIME,
            verifier,
        };
        // A struct of strings always encodes.
        self.sealer.seal(&serde_json::to_vec(&sealed).unwrap_or_default())
    }

    fn open(&self, purpose: &str, blob: &str) -> Result<Sealed, &'static str> {
        let plain = self.sealer.open(blob).ok_or("the link is not valid (altered, or from another gateway)")?;
        let sealed: Sealed = serde_json::from_slice(&plain).map_err(|_| "the link is not valid")?;
        if sealed.purpose != purpose {
            return Err("the link is not valid");
        }
        if sealed.expires < unix_now() {
            return Err("the link has expired: call the tool again for a new one");
        }
        Ok(sealed)
    }

    fn callback_url(&self) -> String {
        format!("{}/connect/callback", self.origin)
    }

    /// The error a user without a token gets: a URL elicitation to connect their account.
    pub fn elicitation(&self, server: &str, user: &str, subject: &str) -> RpcError {
        let ticket = self.seal("ticket", server, user, None);
        let url = format!("{}/connect/{server}?ticket={ticket}", self.origin);
        let message = format!("Connect your account for server `{server}` to let the gateway act as you there");
        let mut id = [0u8; 12];
        rand::rng().fill_bytes(&mut id);
        RpcError::new(
            URL_ELICITATION_REQUIRED,
            format!("{subject} has not connected server `{server}` yet: open {url} and try again"),
        )
        .with_data(json!({ "elicitations": [{
            "mode": "url",
            "elicitationId": URL_SAFE_NO_PAD.encode(id),
            "url": url,
            "message": message,
        }] }))
    }
}

/// What the connect pages need.
#[derive(Clone)]
pub struct ConnectState {
    pub gateway: Arc<Gateway>,
    pub credentials: Arc<Credentials>,
    pub connector: Arc<Connector>,
    pub http: reqwest::Client,
}

pub fn routes(state: ConnectState) -> axum::Router {
    axum::Router::new()
        .route("/connect/callback", axum::routing::get(callback))
        .route("/connect/{server}", axum::routing::get(start))
        .with_state(state)
}

/// A plain-text page for the user's browser.
fn page(status: StatusCode, text: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

fn settings_of(state: &ConnectState, server: &str) -> Option<ResolvedUserToken> {
    let fed = state.gateway.federation();
    let member = fed.members.iter().find(|m| m.name == server)?;
    member.user_token().filter(|u| u.authorize_url.is_some() && u.client.is_some()).cloned()
}

/// `/connect/<server>?ticket=...`: on to the provider's consent page.
async fn start(
    State(state): State<ConnectState>,
    Path(server): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let ticket = match state.connector.open("ticket", query.get("ticket").map_or("", String::as_str)) {
        Ok(t) if t.server == server => t,
        Ok(_) => return page(StatusCode::BAD_REQUEST, "The link is for another server.".into()),
        Err(why) => return page(StatusCode::BAD_REQUEST, format!("Cannot connect: {why}.")),
    };
    let Some(settings) = settings_of(&state, &server) else {
        return page(StatusCode::NOT_FOUND, format!("Server `{server}` does not connect user accounts."));
    };
    let (Some(authorize_url), Some(client)) = (&settings.authorize_url, &settings.client) else {
        return page(StatusCode::NOT_FOUND, format!("Server `{server}` does not connect user accounts."));
    };
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let verifier = URL_SAFE_NO_PAD.encode(raw);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let oauth_state = state.connector.seal("state", &server, &ticket.user, Some(verifier));
    let Ok(mut url) = url::Url::parse(authorize_url) else {
        return page(StatusCode::INTERNAL_SERVER_ERROR, "The provider's authorize_url is not a URL.".into());
    };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code");
        q.append_pair("client_id", &client.client_id);
        q.append_pair("redirect_uri", &state.connector.callback_url());
        q.append_pair("state", &oauth_state);
        q.append_pair("code_challenge", &challenge);
        q.append_pair("code_challenge_method", "S256");
        if !client.scopes.is_empty() {
            q.append_pair("scope", &client.scopes.join(" "));
        }
        if let Some(resource) = &client.resource {
            q.append_pair("resource", resource);
        }
    }
    (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
}

/// `/connect/callback?code=...&state=...`: the user's token, into the vault.
async fn callback(State(state): State<ConnectState>, Query(query): Query<HashMap<String, String>>) -> Response {
    if let Some(error) = query.get("error") {
        let error: String = error.chars().take(64).collect();
        return page(StatusCode::BAD_REQUEST, format!("The provider did not connect the account: {error}."));
    }
    let sealed = match state.connector.open("state", query.get("state").map_or("", String::as_str)) {
        Ok(s) => s,
        Err(why) => return page(StatusCode::BAD_REQUEST, format!("Cannot connect: {why}.")),
    };
    let (Some(code), Some(verifier)) = (query.get("code"), sealed.verifier.clone()) else {
        return page(StatusCode::BAD_REQUEST, "Cannot connect: the provider sent no code.".into());
    };
    let Some((secret, Some(client))) = settings_of(&state, &sealed.server).map(|s| (s.secret, s.client)) else {
        return page(StatusCode::NOT_FOUND, format!("Server `{}` does not connect user accounts.", sealed.server));
    };
    let params = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.clone()),
        ("redirect_uri", state.connector.callback_url()),
        ("code_verifier", verifier),
    ];
    let issued = match request_token(&state.http, &client, params, "auth.user_token.client").await {
        Ok(issued) => issued,
        Err(e) => {
            tracing::warn!(server = %sealed.server, user = %sealed.user, error = %e, "connecting an account failed");
            return page(StatusCode::BAD_GATEWAY, format!("The provider did not issue a token: {e}"));
        }
    };
    let token = json!({
        "access_token": issued.access_token,
        "refresh_token": issued.refresh_token,
        "expires_at": issued.expires_at,
    });
    let name = portcullis_vault::user_secret(&secret, &sealed.user);
    if let Err(e) = state.credentials.store(&name, &SecretString::from(token.to_string())).await {
        tracing::error!(server = %sealed.server, user = %sealed.user, error = %e, "cannot store a connected account's token");
        return page(StatusCode::INTERNAL_SERVER_ERROR, "The token could not be stored; see the gateway's log.".into());
    }
    tracing::info!(server = %sealed.server, user = %sealed.user, "a user connected their account");
    page(
        StatusCode::OK,
        format!("Connected: server `{}` now acts as `{}`. You can close this tab.", sealed.server, sealed.user),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_are_bound_to_their_purpose_and_expire() {
        let c = Connector::new(None, "https://gw.example.com/".into());
        let ticket = c.seal("ticket", "gh", "alice", None);
        let opened = c.open("ticket", &ticket).unwrap();
        assert_eq!((opened.server.as_str(), opened.user.as_str()), ("gh", "alice"));
        assert!(c.open("state", &ticket).is_err(), "a ticket is not a state");
        assert!(Connector::new(None, String::new()).open("ticket", &ticket).is_err(), "another gateway's key");
        let e = c.elicitation("gh", "alice", "user:alice");
        assert_eq!(e.code, URL_ELICITATION_REQUIRED);
        let url = e.data.as_ref().unwrap()["elicitations"][0]["url"].as_str().unwrap().to_owned();
        assert!(url.starts_with("https://gw.example.com/connect/gh?ticket="), "{url}");
    }
}
