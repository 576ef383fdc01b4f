//! Upstreams over HTTP: Streamable HTTP (one POST per message, the answer as JSON or an
//! SSE stream) and the legacy HTTP+SSE transport (one long GET stream, POSTs to the
//! endpoint it announces).

use super::credential::{authorize, Credential};
use super::router::{Origin, Router};
use super::spec::HttpSpec;
use super::{UpstreamError, UpstreamOptions};
use crate::jsonrpc::Message;
use crate::trace_context::TraceContext;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub(crate) const SESSION_HEADER: &str = "mcp-session-id";
/// How long delivering one notification or reply to an upstream may take.
const OUTBOUND_TIMEOUT: Duration = Duration::from_secs(30);
const VERSION_HEADER: &str = "mcp-protocol-version";

/// State shared by the requests of one Streamable HTTP connection.
pub(crate) struct HttpWire {
    server: Arc<str>,
    client: reqwest::Client,
    url: reqwest::Url,
    headers: HeaderMap,
    credential: Option<Arc<dyn Credential>>,
    session: Mutex<Option<HeaderValue>>,
    version: Mutex<Option<HeaderValue>>,
    pub(crate) closed: CancellationToken,
    max_message: usize,
}

pub(crate) fn static_headers(spec: &HttpSpec) -> Result<HeaderMap, UpstreamError> {
    let mut headers = HeaderMap::new();
    for (k, v) in &spec.headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| UpstreamError::Config(format!("header name `{k}` is not a valid HTTP header name")))?;
        let value = HeaderValue::from_str(v)
            .map_err(|_| UpstreamError::Config(format!("the value of header `{k}` is not valid in HTTP")))?;
        headers.insert(name, value);
    }
    Ok(headers)
}

pub(crate) fn parse_url(spec: &HttpSpec) -> Result<reqwest::Url, UpstreamError> {
    reqwest::Url::parse(&spec.url).map_err(|e| UpstreamError::Config(format!("`{}` is not a valid URL: {e}", spec.url)))
}

impl HttpWire {
    pub(crate) fn new(
        server: Arc<str>,
        client: reqwest::Client,
        spec: &HttpSpec,
        credential: Option<Arc<dyn Credential>>,
        closed: CancellationToken,
        max_message: usize,
    ) -> Result<Self, UpstreamError> {
        Ok(HttpWire {
            server,
            client,
            url: parse_url(spec)?,
            headers: static_headers(spec)?,
            credential,
            session: Mutex::new(None),
            version: Mutex::new(None),
            closed,
            max_message,
        })
    }

    pub(crate) fn set_version(&self, version: Option<&str>) {
        *crate::peer::lock(&self.version) = version.and_then(|v| HeaderValue::from_str(v).ok());
    }

    /// The headers of the next request, with a current `Authorization` when a credential
    /// supplies it.
    async fn request_headers(&self) -> Result<HeaderMap, UpstreamError> {
        let mut h = self.headers.clone();
        h.insert(ACCEPT, HeaderValue::from_static("application/json, text/event-stream"));
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(s) = crate::peer::lock(&self.session).clone() {
            h.insert(SESSION_HEADER, s);
        }
        if let Some(v) = crate::peer::lock(&self.version).clone() {
            h.insert(VERSION_HEADER, v);
        }
        authorize(&mut h, self.credential.as_ref()).await?;
        Ok(h)
    }

    /// POSTs one message. For a request (`origin` = its id), reads the answer, JSON or
    /// SSE, and dispatches every message in it; returns once the body ends.
    pub(crate) async fn post(&self, body: String, router: &Router, origin: Option<u64>) -> Result<(), UpstreamError> {
        self.post_routed(body, router, origin, None, None).await
    }

    /// [`Self::post`] with the 2026-07-28 routing headers (`Mcp-Method`, `Mcp-Name`).
    pub(crate) async fn post_routed(
        &self,
        body: String,
        router: &Router,
        origin: Option<u64>,
        routing: Option<(&str, Option<String>)>,
        trace: Option<&TraceContext>,
    ) -> Result<(), UpstreamError> {
        // Without a request of ours, whatever comes back is tied to no client's request.
        let origin_id = origin;
        let origin = origin.map_or(Origin::Unrelated, Origin::Request);
        let mut headers = self.request_headers().await?;
        if let Some((method, name)) = routing {
            if let Ok(v) = HeaderValue::from_str(method) {
                headers.insert("mcp-method", v);
            }
            if let Some(v) = name.and_then(|n| HeaderValue::from_str(&n).ok()) {
                headers.insert("mcp-name", v);
            }
        }
        // The request's trace context goes in the headers too, where HTTP servers and
        // proxies look for it.
        if let Some(trace) = trace {
            if let Ok(v) = HeaderValue::from_str(&trace.traceparent) {
                headers.insert("traceparent", v);
                if let Some(v) = trace.tracestate.as_deref().and_then(|s| HeaderValue::from_str(s).ok()) {
                    headers.insert("tracestate", v);
                }
            }
        }
        let send =
            |headers: HeaderMap, body: String| self.client.post(self.url.clone()).headers(headers).body(body).send();
        let resp = match &self.credential {
            None => send(headers, body).await.map_err(|e| self.transport_error(e))?,
            Some(credential) => {
                let first = send(headers.clone(), body.clone()).await.map_err(|e| self.transport_error(e))?;
                if first.status() != StatusCode::UNAUTHORIZED {
                    first
                } else {
                    // The token was revoked or expired early: one more try with a fresh one.
                    if let Some(refused) = headers.get(AUTHORIZATION) {
                        credential.refused(refused);
                    }
                    authorize(&mut headers, Some(credential)).await?;
                    send(headers, body).await.map_err(|e| self.transport_error(e))?
                }
            }
        };
        if let Some(s) = resp.headers().get(SESSION_HEADER) {
            let mut session = crate::peer::lock(&self.session);
            if session.as_ref() != Some(s) {
                *session = Some(s.clone());
            }
        }
        let status = resp.status();
        if status == StatusCode::NOT_FOUND && crate::peer::lock(&self.session).is_some() {
            // The upstream forgot our session (it restarted): reconnect.
            self.closed.cancel();
            return Err(UpstreamError::Unavailable("the upstream ended the session; reconnecting".into()));
        }
        if status == StatusCode::ACCEPTED || status == StatusCode::NO_CONTENT {
            return Ok(());
        }
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            // An error status may still carry a JSON-RPC error for our request.
            if let Ok(msg) = Message::parse(text.as_bytes()) {
                router.dispatch(msg, origin);
                return Ok(());
            }
            // The body stays in the debug log: errors reach clients and /readyz.
            let shown: String = text.chars().take(200).collect();
            tracing::debug!(server = %self.server, %status, body = %shown, "upstream refused a message");
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                return Err(UpstreamError::Unavailable(format!(
                    "{}: HTTP {status}: the upstream refused the gateway's credential; check the server's `auth` and `headers` (and the vault secrets they name)",
                    self.server
                )));
            }
            return Err(UpstreamError::Protocol(format!("{}: HTTP {status}", self.server)));
        }
        let content_type =
            resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
        if content_type.starts_with("text/event-stream") {
            let mut events = resp.bytes_stream().eventsource();
            while let Some(event) = events.next().await {
                let event = event.map_err(|e| UpstreamError::Protocol(format!("broken SSE stream: {e}")))?;
                if event.data.is_empty() {
                    continue;
                }
                if event.data.len() > self.max_message {
                    return Err(UpstreamError::Protocol(format!("a message over {} bytes", self.max_message)));
                }
                match Message::parse(event.data.as_bytes()) {
                    Ok(msg) => {
                        let ours = matches!(&msg, Message::Response(r) if r.id.as_u64() == origin_id);
                        router.dispatch(msg, origin);
                        if ours {
                            break;
                        }
                    }
                    Err(e) => return Err(UpstreamError::Protocol(format!("invalid JSON-RPC in SSE event: {e}"))),
                }
            }
            Ok(())
        } else {
            let bytes = resp.bytes().await.map_err(|e| self.transport_error(e))?;
            if bytes.len() > self.max_message {
                return Err(UpstreamError::Protocol(format!("a message over {} bytes", self.max_message)));
            }
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(());
            }
            let msg = Message::parse(&bytes).map_err(|e| UpstreamError::Protocol(format!("invalid JSON-RPC: {e}")))?;
            router.dispatch(msg, origin);
            Ok(())
        }
    }

    fn transport_error(&self, e: reqwest::Error) -> UpstreamError {
        if e.is_connect() {
            // The server is gone; a fresh connection (and `initialize`) is needed.
            self.closed.cancel();
        }
        UpstreamError::Unavailable(format!("{}: {}", self.server, without_url(&e)))
    }

    /// Keeps the optional GET stream open for messages not tied to a request
    /// (`list_changed`, resource updates), resuming with `Last-Event-ID`.
    pub(crate) async fn listen(self: Arc<Self>, router: Arc<Router>) {
        let mut last_event_id: Option<String> = None;
        let mut failures = 0u32;
        while !self.closed.is_cancelled() {
            let sent = match self.request_headers().await {
                Ok(mut headers) => {
                    headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
                    headers.remove(CONTENT_TYPE);
                    if let Some(id) = last_event_id.as_deref().and_then(|id| HeaderValue::from_str(id).ok()) {
                        headers.insert("last-event-id", id);
                    }
                    tokio::select! {
                        _ = self.closed.cancelled() => return,
                        r = self.client.get(self.url.clone()).headers(headers.clone()).send() => r.map(|r| (r, headers)),
                    }
                }
                Err(e) => {
                    tracing::debug!(server = %self.server, error = %e, "no credential for the listen stream");
                    failures += 1;
                    continue_after(&self.closed, failures).await;
                    continue;
                }
            };
            if let (Ok((resp, headers)), Some(credential)) = (&sent, &self.credential) {
                if let (StatusCode::UNAUTHORIZED, Some(refused)) = (resp.status(), headers.get(AUTHORIZATION)) {
                    credential.refused(refused);
                }
            }
            let sent = sent.map(|(resp, _)| resp);
            match sent {
                Ok(resp) if resp.status() == StatusCode::METHOD_NOT_ALLOWED => return,
                Ok(resp) if resp.status().is_success() => {
                    failures = 0;
                    let mut events = resp.bytes_stream().eventsource();
                    loop {
                        let next = tokio::select! {
                            _ = self.closed.cancelled() => return,
                            n = events.next() => n,
                        };
                        let Some(Ok(event)) = next else { break };
                        if !event.id.is_empty() {
                            last_event_id = Some(event.id.clone());
                        }
                        if let Ok(msg) = Message::parse(event.data.as_bytes()) {
                            router.dispatch(msg, Origin::Unrelated);
                        }
                    }
                }
                Ok(resp) if resp.status() == StatusCode::NOT_FOUND => {
                    self.closed.cancel();
                    return;
                }
                _ => failures += 1,
            }
            continue_after(&self.closed, failures).await;
        }
    }

    /// Keeps a 2026-07-28 `subscriptions/listen` stream open for list changes,
    /// re-listening with backoff when it ends.
    pub(crate) async fn subscribe(
        self: Arc<Self>,
        router: Arc<Router>,
        mut resources: tokio::sync::watch::Receiver<Vec<String>>,
    ) {
        let mut failures = 0u32;
        while !self.closed.is_cancelled() {
            let params = super::modern::listen_params(&resources.borrow_and_update());
            let body = crate::jsonrpc::encode_request(
                &super::router::wire_id(router.next_id()),
                "subscriptions/listen",
                Some(&params),
            );
            let listen = self.post_routed(body, &router, None, Some(("subscriptions/listen", None)), None);
            // A change in the watched resources ends this listen (closing it) and opens a new one.
            let ended = tokio::select! {
                _ = self.closed.cancelled() => return,
                _ = resources.changed() => continue,
                r = listen => r,
            };
            failures = if ended.is_ok() { 0 } else { failures + 1 };
            let delay = Duration::from_millis(500 * u64::from(failures.min(20)).max(1));
            tokio::select! {
                _ = self.closed.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// Tells the upstream the session is over (best effort, on shutdown).
    pub(crate) async fn terminate(&self) {
        if crate::peer::lock(&self.session).is_some() {
            if let Ok(headers) = self.request_headers().await {
                let _ = self.client.delete(self.url.clone()).headers(headers).send().await;
            }
        }
    }
}

/// Waits before the listen stream's next attempt: longer after each failure, up to 10 s.
async fn continue_after(closed: &CancellationToken, failures: u32) {
    let delay = Duration::from_millis(500 * u64::from(failures.min(20)).max(1));
    tokio::select! {
        _ = closed.cancelled() => {}
        _ = tokio::time::sleep(delay) => {}
    }
}

/// Sends queued messages (notifications, replies to the upstream's requests) one POST each.
pub(crate) fn spawn_outbound(wire: Arc<HttpWire>, router: Arc<Router>, mut rx: mpsc::UnboundedReceiver<String>) {
    tokio::spawn(async move {
        loop {
            let msg = tokio::select! {
                _ = wire.closed.cancelled() => return,
                m = rx.recv() => m,
            };
            let Some(msg) = msg else { return };
            // One stuck POST must not hold up every later reply and cancellation.
            match tokio::time::timeout(OUTBOUND_TIMEOUT, wire.post(msg, &router, None)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(server = %wire.server, error = %e, "could not deliver a message upstream")
                }
                Err(_) => {
                    tracing::warn!(server = %wire.server, "the upstream did not accept a message within {OUTBOUND_TIMEOUT:?}")
                }
            }
        }
    });
}

/// The legacy HTTP+SSE transport (protocol 2024-11-05): opens the stream, waits for the
/// `endpoint` event, then POSTs every outbound message there. Answers arrive on the stream.
pub(crate) async fn connect_sse(
    server: Arc<str>,
    client: reqwest::Client,
    spec: &HttpSpec,
    options: &UpstreamOptions,
    router: Arc<Router>,
    mut outbound: mpsc::UnboundedReceiver<String>,
    closed: CancellationToken,
) -> Result<(), UpstreamError> {
    let (credential, connect_timeout) = (options.credential.clone(), options.connect_timeout);
    let url = parse_url(spec)?;
    let headers = static_headers(spec)?;
    let mut get_headers = headers.clone();
    get_headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
    authorize(&mut get_headers, credential.as_ref()).await?;
    let resp = client
        .get(url.clone())
        .headers(get_headers.clone())
        .send()
        .await
        .map_err(|e| UpstreamError::Unavailable(format!("{server}: {}", without_url(&e))))?;
    if !resp.status().is_success() {
        if let (StatusCode::UNAUTHORIZED, Some(credential), Some(refused)) =
            (resp.status(), &credential, get_headers.get(AUTHORIZATION))
        {
            credential.refused(refused);
        }
        return Err(UpstreamError::Unavailable(format!("{server}: the SSE stream answered HTTP {}", resp.status())));
    }
    let mut events = resp.bytes_stream().eventsource();
    let endpoint = tokio::time::timeout(connect_timeout, async {
        while let Some(event) = events.next().await {
            let event = event.map_err(|e| UpstreamError::Protocol(format!("broken SSE stream: {e}")))?;
            if event.event == "endpoint" {
                let endpoint = url
                    .join(event.data.trim())
                    .map_err(|e| UpstreamError::Protocol(format!("bad endpoint `{}`: {e}", event.data)))?;
                // Messages (and the configured headers with them) go only to the server we connected to.
                if endpoint.origin() != url.origin() {
                    return Err(UpstreamError::Protocol(format!(
                        "{server}: the SSE endpoint is on another origin ({}); refusing to send there",
                        endpoint.origin().ascii_serialization()
                    )));
                }
                return Ok(endpoint);
            }
        }
        Err(UpstreamError::Unavailable(format!("{server}: the SSE stream ended before announcing its endpoint")))
    })
    .await
    .map_err(|_| UpstreamError::Timeout(format!("{server}: no `endpoint` event within {connect_timeout:?}")))??;

    let reader_router = router.clone();
    let reader_closed = closed.clone();
    let name = server.clone();
    tokio::spawn(async move {
        let reason = loop {
            let next = tokio::select! {
                _ = reader_closed.cancelled() => break "the connection was closed".to_owned(),
                n = events.next() => n,
            };
            match next {
                None => break "the upstream closed its SSE stream".to_owned(),
                Some(Err(e)) => break format!("broken SSE stream: {e}"),
                Some(Ok(event)) if event.event == "message" || event.event.is_empty() => {
                    match Message::parse(event.data.as_bytes()) {
                        Ok(msg) => reader_router.dispatch(msg, Origin::Unknown),
                        Err(e) => {
                            tracing::warn!(server = %name, error = %e, "invalid JSON-RPC on the SSE stream")
                        }
                    }
                }
                Some(Ok(_)) => {}
            }
        };
        reader_router.fail_all(&reason);
        reader_closed.cancel();
    });

    let name = server;
    tokio::spawn(async move {
        loop {
            let msg = tokio::select! {
                _ = closed.cancelled() => return,
                m = outbound.recv() => m,
            };
            let Some(msg) = msg else { return };
            let mut h = headers.clone();
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            if let Err(e) = authorize(&mut h, credential.as_ref()).await {
                tracing::warn!(server = %name, error = %e, "no credential for a message to the SSE endpoint");
                router.fail_all("the gateway has no credential for the upstream");
                closed.cancel();
                return;
            }
            match client.post(endpoint.clone()).headers(h.clone()).body(msg).send().await {
                Ok(r) if r.status() == StatusCode::UNAUTHORIZED => {
                    if let (Some(credential), Some(refused)) = (&credential, h.get(AUTHORIZATION)) {
                        credential.refused(refused);
                    }
                    tracing::warn!(server = %name, "the SSE endpoint refused the gateway's credential")
                }
                Ok(r) if r.status().is_success() => {}
                Ok(r) => {
                    tracing::warn!(server = %name, status = %r.status(), "the SSE endpoint refused a message")
                }
                Err(e) => {
                    tracing::warn!(server = %name, error = %without_url(&e), "could not POST to the SSE endpoint");
                    router.fail_all("the upstream's message endpoint is unreachable");
                    closed.cancel();
                    return;
                }
            }
        }
    });
    Ok(())
}

/// A reqwest error without the URL, which may carry credentials in its query.
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(url) = e.url() {
        s = s.replace(url.as_str(), "<upstream>");
    }
    s
}
