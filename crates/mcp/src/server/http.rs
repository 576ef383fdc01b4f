//! The Streamable HTTP transport, server side.
//!
//! `POST` carries one JSON-RPC message. A request is answered with `application/json`
//! unless the handler sends related messages first (progress, logs, sampling...), in
//! which case the answer switches to an SSE stream that carries them and then the
//! response. `GET` opens the session's stream for unrelated notifications; `DELETE` ends
//! the session. Dropping a response (the client went away) drops the handler's future,
//! which cancels the work all the way to the upstream.

use super::session::{SessionCodec, SessionRejection};
use super::{deferred, modern, session_from_initialize, Handler, RequestContext, SessionInfo, Streams};
use crate::jsonrpc::{
    encode_error, encode_response, salvage_id, Id, Message, Request, RpcError, INVALID_REQUEST, RATE_LIMITED,
    REQUEST_CANCELLED,
};
use crate::peer::{lock, Outcome, Peer, PendingRequests};
use crate::protocol::{era_of, Era};
use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, StreamExt};
use portcullis_core::Principal;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

pub const SESSION_HEADER: &str = "mcp-session-id";
pub const VERSION_HEADER: &str = "mcp-protocol-version";

/// Limits and checks of the HTTP front door.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// `Origin` values accepted besides loopback ones (e.g. `https://app.example.com`);
    /// shared so a config reload can change them.
    pub allowed_origins: Arc<arc_swap::ArcSwap<Vec<String>>>,
    /// Interval of SSE keep-alive comments on long streams.
    pub keep_alive: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions { allowed_origins: Arc::default(), keep_alive: Duration::from_secs(15) }
    }
}

/// One MCP endpoint served over Streamable HTTP.
pub struct McpService<H> {
    handler: Arc<H>,
    codec: Arc<SessionCodec>,
    streams: Arc<Streams>,
    options: HttpOptions,
    /// Server→client requests waiting for an answer, per session.
    pending: Mutex<HashMap<String, Weak<PendingRequests>>>,
    /// Requests being handled, per (session, request id), so `notifications/cancelled` can stop them.
    running: Arc<Mutex<HashMap<(String, Id), CancellationToken>>>,
    /// 2026-07-28 requests waiting for the client's answers to `input_required`.
    lot: Arc<deferred::ParkingLot>,
}

type BoxedOutcome = Pin<Box<dyn Future<Output = Outcome> + Send>>;

impl<H: Handler> McpService<H> {
    pub fn new(handler: Arc<H>, codec: Arc<SessionCodec>, streams: Arc<Streams>, options: HttpOptions) -> Self {
        McpService {
            handler,
            codec,
            streams,
            options,
            pending: Mutex::new(HashMap::new()),
            running: Default::default(),
            lot: Arc::new(deferred::ParkingLot::new(Duration::from_secs(300))),
        }
    }

    /// `POST /mcp`: one JSON-RPC message from `caller`.
    pub async fn post(
        self: Arc<Self>,
        endpoint: Option<Arc<str>>,
        caller: Arc<Principal>,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        if let Err(rejection) = self.check_origin(&headers) {
            return rejection.into_response();
        }
        let message = match Message::parse(&body) {
            Ok(m) => m,
            Err(e) => return json_error(StatusCode::BAD_REQUEST, salvage_id(&body).as_ref(), &e),
        };
        if is_modern(&headers, &message) {
            return self.modern(endpoint, caller, &headers, message).await;
        }
        match message {
            Message::Request(req) if req.method == "initialize" => self.initialize(endpoint, caller, req).await,
            message => {
                let session = match self.session(&headers, endpoint.as_deref(), &caller) {
                    Ok(s) => s,
                    Err(rejection) => return rejection.into_response(),
                };
                match message {
                    Message::Request(req) => self.request(session, caller, req, &headers, Shape::Legacy).await,
                    Message::Notification(n) => {
                        match n.method.as_str() {
                            "notifications/initialized" => {}
                            "notifications/cancelled" => self.cancel(&session.id, n.params.as_deref()),
                            _ => self.handler.notification(n, &session),
                        }
                        StatusCode::ACCEPTED.into_response()
                    }
                    Message::Response(resp) => {
                        if let Some(p) = self.pending_existing(&session.id) {
                            p.resolve(resp);
                        }
                        StatusCode::ACCEPTED.into_response()
                    }
                }
            }
        }
    }

    /// `GET /mcp`: the session's stream of notifications not tied to a request.
    pub async fn get(
        self: Arc<Self>,
        endpoint: Option<Arc<str>>,
        caller: Arc<Principal>,
        headers: HeaderMap,
    ) -> Response {
        if let Err(rejection) = self.check_origin(&headers) {
            return rejection.into_response();
        }
        let accepts_sse = header_str(&headers, "accept").is_some_and(|a| a.contains("text/event-stream"));
        if !accepts_sse {
            return plain(StatusCode::NOT_ACCEPTABLE, "GET opens an SSE stream: send `Accept: text/event-stream`");
        }
        let session = match self.session(&headers, endpoint.as_deref(), &caller) {
            Ok(s) => s,
            Err(rejection) => return rejection.into_response(),
        };
        let (tx, rx) = mpsc::unbounded_channel::<(u64, String)>();
        let last_event_id = header_str(&headers, "last-event-id").and_then(|v| v.trim().parse().ok());
        self.streams.attach_resumable(&session.id, tx, last_event_id);
        let events = tokio_stream::wrappers::UnboundedReceiverStream::new(rx)
            .map(|(id, msg)| Ok::<_, Infallible>(Event::default().id(id.to_string()).data(msg)));
        Sse::new(events).keep_alive(KeepAlive::new().interval(self.options.keep_alive)).into_response()
    }

    /// `DELETE /mcp`: the client ends its session.
    pub async fn delete(
        self: Arc<Self>,
        endpoint: Option<Arc<str>>,
        caller: Arc<Principal>,
        headers: HeaderMap,
    ) -> Response {
        if let Err(rejection) = self.check_origin(&headers) {
            return rejection.into_response();
        }
        let session = match self.session(&headers, endpoint.as_deref(), &caller) {
            Ok(s) => s,
            Err(rejection) => return rejection.into_response(),
        };
        self.codec.end(&session.id);
        self.streams.detach(&session.id);
        lock(&self.pending).remove(&session.id);
        self.handler.session_closed(&session);
        StatusCode::OK.into_response()
    }

    async fn initialize(self: Arc<Self>, endpoint: Option<Arc<str>>, caller: Arc<Principal>, req: Request) -> Response {
        let mut info = session_from_initialize(req.params.as_deref());
        info.endpoint = endpoint.map(|e| e.to_string()).unwrap_or_default();
        info.owner = caller.subject();
        info.id = self.codec.seal(&info);
        let id = info.id.clone();
        let mut resp = self.request(Arc::new(info), caller, req, &HeaderMap::new(), Shape::Legacy).await;
        if let Ok(v) = HeaderValue::from_str(&id) {
            resp.headers_mut().insert(SESSION_HEADER, v);
        }
        resp
    }

    /// A 2026-07-28 request: validated against its headers, answered statelessly.
    async fn modern(
        self: Arc<Self>,
        endpoint: Option<Arc<str>>,
        caller: Arc<Principal>,
        headers: &HeaderMap,
        message: Message,
    ) -> Response {
        let req = match message {
            Message::Request(req) => req,
            // Client notifications have no meaning in 2026-07-28 over HTTP; accept and drop them.
            Message::Notification(_) => return StatusCode::ACCEPTED.into_response(),
            Message::Response(_) => {
                let err = RpcError::new(
                    INVALID_REQUEST,
                    "2026-07-28 clients do not send responses: answer input_required by retrying the request",
                );
                return json_error(StatusCode::BAD_REQUEST, None, &err);
            }
        };
        let route = modern::Headers {
            version: header_str(headers, VERSION_HEADER),
            method: header_str(headers, "mcp-method"),
            name: header_str(headers, "mcp-name"),
        };
        let envelope = match modern::validate(&req, Some(&route)) {
            Ok(e) => e,
            Err(e) => return json_error(status(modern::status_of(e.code)), Some(&req.id), &e),
        };
        let mut session = envelope.session;
        session.endpoint = endpoint.map(|e| e.to_string()).unwrap_or_default();
        if req.method == "subscriptions/listen" {
            return self.listen(req, headers);
        }
        if deferred::may_resume(&req.method, req.params.as_deref()) {
            let params = crate::object::RawObject::parse_params(req.params.as_deref()).unwrap_or_default();
            match self.lot.resume(&req.method, &params) {
                None => {}
                Some(Err(e)) => return json_error(status(modern::status_of(e.code)), Some(&req.id), &e),
                Some(Ok((work, inputs, waiting))) => {
                    let outcome = self.lot.clone().drive(&req.method, work, inputs, waiting).await;
                    return answer(true, &req.id, outcome.as_deref().map_err(|e| &**e));
                }
            }
        }
        let shape = Shape::Modern { method: req.method.clone(), wants_logs: envelope.wants_logs };
        self.request(Arc::new(session), caller, req, headers, shape).await
    }

    /// `subscriptions/listen`: a long-lived SSE stream of the notifications asked for,
    /// opened by an acknowledgement and each stamped with the listen request's id.
    fn listen(&self, req: Request, headers: &HeaderMap) -> Response {
        if !header_str(headers, "accept").is_some_and(|a| a.contains("text/event-stream")) {
            return plain(
                StatusCode::NOT_ACCEPTABLE,
                "subscriptions/listen answers with SSE: accept text/event-stream",
            );
        }
        let (filter, id_raw, ack) = modern::acknowledge(&req);
        let (tx, rx) = mpsc::unbounded_channel::<String>();
        let _ = tx.send(ack);
        let key = format!("listen-{}", LISTEN_KEYS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let uris = filter.resource_uris.clone();
        self.handler.watch_resources(&uris, true);
        self.streams.attach_listen(&key, tx, filter, id_raw);
        // When the client closes the stream, the listen ends: stop watching for it.
        let guard = ListenGuard { handler: self.handler.clone(), streams: self.streams.clone(), key, uris };
        let events = tokio_stream::wrappers::UnboundedReceiverStream::new(rx).map(move |msg| {
            let _keep = &guard;
            Ok::<_, Infallible>(Event::default().data(msg))
        });
        Sse::new(events).keep_alive(KeepAlive::new().interval(self.options.keep_alive)).into_response()
    }

    async fn request(
        self: &Arc<Self>,
        session: Arc<SessionInfo>,
        principal: Arc<Principal>,
        req: Request,
        headers: &HeaderMap,
        shape: Shape,
    ) -> Response {
        let (tx, mut related) = mpsc::unbounded_channel::<String>();
        let mut peer = Peer::new(tx, self.pending_for(&session.id), Arc::new(session.capabilities.clone()));
        let mut questions = None;
        if let Shape::Modern { wants_logs, method } = &shape {
            peer = peer.modern(*wants_logs);
            if deferred::may_defer(method) {
                let (ask, asked) = mpsc::unbounded_channel();
                peer = peer.with_deferred(ask);
                questions = Some((method.clone(), asked));
            }
        }
        let id = req.id.clone();
        let cancel = CancellationToken::new();
        let key = (session.id.clone(), id.clone());
        lock(&self.running).insert(key.clone(), cancel.clone());
        let running = self.running.clone();
        let handler = self.handler.clone();
        let param_headers = match &shape {
            Shape::Legacy => Vec::new(),
            Shape::Modern { .. } => headers
                .iter()
                .filter_map(|(k, v)| {
                    let suffix = k.as_str().strip_prefix("mcp-param-")?;
                    Some((suffix.to_owned(), v.to_str().ok()?.to_owned()))
                })
                .collect(),
        };
        let trace = crate::trace_context::TraceContext::from_headers(headers);
        let ctx = RequestContext { session, peer, param_headers, principal, trace };
        let finish = shape.clone();
        let work: BoxedOutcome = Box::pin(async move {
            let _unregister = Unregister { running, key };
            let outcome = tokio::select! {
                outcome = handler.handle(req, ctx) => outcome,
                _ = cancel.cancelled() => Err(RpcError::new(REQUEST_CANCELLED, "request cancelled by the client").to_raw()),
            };
            match &finish {
                Shape::Legacy => outcome,
                Shape::Modern { method, .. } => outcome.map(|r| modern::stamp_result(method, r)),
            }
        });
        let mut work = match questions {
            None => work,
            // The work runs on its own so it can outlive this POST while parked.
            Some((method, asked)) => {
                let lot = self.lot.clone();
                let running = AbortOnDropHandle::new(tokio::spawn(work));
                Box::pin(async move { lot.drive(&method, running, asked, HashMap::new()).await })
            }
        };
        let sse_ok = header_str(headers, "accept").is_none_or(|a| a.contains("text/event-stream") || a.contains("*/*"));
        // Answer with plain JSON unless the handler has something to say first.
        let first = tokio::select! {
            biased;
            Some(msg) = related.recv(), if sse_ok => msg,
            outcome = &mut work => {
                let modern = matches!(shape, Shape::Modern { .. });
                return answer(modern, &id, outcome.as_deref().map_err(|e| &**e));
            }
        };
        let state = SseState { first: Some(first), related, work: Some(work), id };
        let events = stream::unfold(state, SseState::next);
        Sse::new(events).keep_alive(KeepAlive::new().interval(self.options.keep_alive)).into_response()
    }

    fn cancel(&self, session: &str, params: Option<&serde_json::value::RawValue>) {
        let Some(id) = crate::jsonrpc::cancelled_request_id(params) else { return };
        if let Some(token) = lock(&self.running).get(&(session.to_owned(), id)) {
            token.cancel();
        }
    }

    /// The session named by the `Mcp-Session-Id` header, if `caller` opened it.
    fn session(
        &self,
        headers: &HeaderMap,
        endpoint: Option<&str>,
        caller: &Principal,
    ) -> Result<Arc<SessionInfo>, Rejection> {
        let id = header_str(headers, SESSION_HEADER).ok_or(Rejection::NoSession)?;
        let info = self.codec.open(id).map_err(Rejection::Session)?;
        if info.endpoint != endpoint.unwrap_or_default() {
            return Err(Rejection::OtherEndpoint);
        }
        // A session id is not a credential: it only continues what its owner started.
        if info.owner != caller.subject() {
            return Err(Rejection::OtherOwner);
        }
        Ok(Arc::new(info))
    }

    fn pending_for(&self, session: &str) -> Arc<PendingRequests> {
        let mut map = lock(&self.pending);
        if let Some(p) = map.get(session).and_then(Weak::upgrade) {
            return p;
        }
        if map.len() > 1024 {
            map.retain(|_, w| w.strong_count() > 0);
        }
        let p = Arc::new(PendingRequests::default());
        map.insert(session.to_owned(), Arc::downgrade(&p));
        p
    }

    fn pending_existing(&self, session: &str) -> Option<Arc<PendingRequests>> {
        lock(&self.pending).get(session).and_then(Weak::upgrade)
    }

    /// Rejects browsers on other sites (DNS rebinding, CSRF): a present `Origin` must be
    /// a loopback origin or one of the configured ones.
    fn check_origin(&self, headers: &HeaderMap) -> Result<(), Rejection> {
        let Some(origin) = header_str(headers, "origin") else { return Ok(()) };
        if origin_is_loopback(origin) || self.options.allowed_origins.load().iter().any(|o| o == origin) {
            return Ok(());
        }
        Err(Rejection::Origin)
    }
}

/// Which named endpoints (`/mcp/{endpoint}`) exist right now; asked on every request so
/// configuration reloads take effect.
pub type Endpoints = Arc<dyn Fn(&str) -> bool + Send + Sync>;

struct Mount<H> {
    service: Arc<McpService<H>>,
    endpoints: Endpoints,
}

impl<H: Handler> Mount<H> {
    /// The endpoint named in the path (`None` for `/mcp`), if it exists.
    fn endpoint(&self, path: Option<axum::extract::Path<String>>) -> Result<Option<Arc<str>>, Rejection> {
        match path {
            None => Ok(None),
            Some(axum::extract::Path(name)) if (self.endpoints)(&name) => Ok(Some(name.into())),
            Some(_) => Err(Rejection::UnknownEndpoint),
        }
    }
}

/// Mounts an [`McpService`] at `/mcp` (the whole server) and `/mcp/{endpoint}` (a named
/// subset, e.g. a virtual server), with the request body limited to `max_body` bytes.
pub fn routes<H: Handler>(service: Arc<McpService<H>>, max_body: usize, endpoints: Endpoints) -> axum::Router {
    use axum::extract::{DefaultBodyLimit, Path, State};
    use axum::routing::post;
    type S<H> = State<Arc<Mount<H>>>;
    // The caller: set by an authentication layer in front of these routes (the gateway's
    // door); without one, everyone is anonymous.
    type Caller = Option<axum::Extension<Arc<Principal>>>;
    fn caller(c: Caller) -> Arc<Principal> {
        c.map_or_else(|| Arc::new(Principal::anonymous()), |axum::Extension(p)| p)
    }
    async fn post_at<H: Handler>(
        State(m): S<H>,
        p: Option<Path<String>>,
        c: Caller,
        h: HeaderMap,
        body: Bytes,
    ) -> Response {
        match m.endpoint(p) {
            Ok(e) => m.service.clone().post(e, caller(c), h, body).await,
            Err(rejection) => rejection.into_response(),
        }
    }
    async fn get_at<H: Handler>(State(m): S<H>, p: Option<Path<String>>, c: Caller, h: HeaderMap) -> Response {
        match m.endpoint(p) {
            Ok(e) => m.service.clone().get(e, caller(c), h).await,
            Err(rejection) => rejection.into_response(),
        }
    }
    async fn delete_at<H: Handler>(State(m): S<H>, p: Option<Path<String>>, c: Caller, h: HeaderMap) -> Response {
        match m.endpoint(p) {
            Ok(e) => m.service.clone().delete(e, caller(c), h).await,
            Err(rejection) => rejection.into_response(),
        }
    }
    let methods = || post(post_at::<H>).get(get_at::<H>).delete(delete_at::<H>);
    axum::Router::new()
        .route("/mcp", methods())
        .route("/mcp/{endpoint}", methods())
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(Arc::new(Mount { service, endpoints }))
}

/// Ends a listen's watches when its stream is dropped.
struct ListenGuard<H: Handler> {
    handler: Arc<H>,
    streams: Arc<Streams>,
    key: String,
    uris: Vec<String>,
}

impl<H: Handler> Drop for ListenGuard<H> {
    fn drop(&mut self) {
        self.streams.detach(&self.key);
        self.handler.watch_resources(&self.uris, false);
    }
}

/// Which revision's rules shape the answer.
#[derive(Clone)]
enum Shape {
    Legacy,
    Modern { method: String, wants_logs: bool },
}

static LISTEN_KEYS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A request is modern if its version header names a non-legacy revision, or, without
/// the header, if its `_meta` carries the 2026-07-28 envelope (and it is not `initialize`).
fn is_modern(headers: &HeaderMap, message: &Message) -> bool {
    match header_str(headers, VERSION_HEADER) {
        Some(v) => era_of(v) != Some(Era::Legacy),
        None => {
            matches!(message, Message::Request(r) if r.method != "initialize" && modern::has_envelope(r.params.as_deref()))
        }
    }
}

fn error_code(error: &serde_json::value::RawValue) -> i64 {
    #[derive(serde::Deserialize)]
    struct Code {
        code: i64,
    }
    serde_json::from_str::<Code>(error.get()).map(|c| c.code).unwrap_or(0)
}

/// The JSON answer to a request. A refusal by a limit is `429 Too Many Requests` with
/// `Retry-After` in both eras, so HTTP clients and proxies back off; other errors of the
/// 2026-07-28 era get their status, of the legacy era 200.
fn answer(modern: bool, id: &Id, outcome: Result<&RawValue, &RawValue>) -> Response {
    let text = encode_response(Some(id), outcome);
    let Err(error) = outcome else { return json(StatusCode::OK, text) };
    if let Some(retry_after) = retry_after(error) {
        let mut response = json(StatusCode::TOO_MANY_REQUESTS, text);
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        return response;
    }
    json(if modern { status(modern::status_of(error_code(error))) } else { StatusCode::OK }, text)
}

/// The seconds to wait, if `error` is a refusal by a limit ([`RATE_LIMITED`]).
fn retry_after(error: &RawValue) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Limited {
        code: i64,
        #[serde(default)]
        data: Option<Data>,
    }
    #[derive(serde::Deserialize)]
    struct Data {
        #[serde(rename = "retryAfter")]
        retry_after: Option<u64>,
    }
    let limited: Limited = serde_json::from_str(error.get()).ok()?;
    (limited.code == RATE_LIMITED).then(|| limited.data.and_then(|d| d.retry_after).unwrap_or(1).max(1))
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::OK)
}

/// Why a request was refused before reaching the handler.
#[derive(Debug, Clone, Copy)]
enum Rejection {
    Origin,
    NoSession,
    Session(SessionRejection),
    OtherEndpoint,
    OtherOwner,
    UnknownEndpoint,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let not_found = |message| json_error(StatusCode::NOT_FOUND, None, &RpcError::new(INVALID_REQUEST, message));
        match self {
            Rejection::Origin => plain(
                StatusCode::FORBIDDEN,
                "Forbidden: this Origin is not allowed; add it to `http.allowed_origins` in the gateway config",
            ),
            Rejection::NoSession => json_error(
                StatusCode::BAD_REQUEST,
                None,
                &RpcError::new(
                    INVALID_REQUEST,
                    "Bad Request: the Mcp-Session-Id header is required; send `initialize` first to get one",
                ),
            ),
            Rejection::Session(SessionRejection::Unknown) => {
                not_found("Session not found: this session id was not issued by this gateway; send `initialize` again")
            }
            Rejection::Session(SessionRejection::Ended) => {
                not_found("Session not found: the session was ended; send `initialize` again")
            }
            Rejection::Session(SessionRejection::Expired) => {
                not_found("Session not found: the session expired; send `initialize` again")
            }
            Rejection::OtherEndpoint => not_found("Session not found: this session belongs to another endpoint"),
            Rejection::OtherOwner => {
                not_found("Session not found: this session was opened by another caller; send `initialize` again")
            }
            Rejection::UnknownEndpoint => plain(
                StatusCode::NOT_FOUND,
                "no such endpoint: /mcp/<name> serves the virtual servers configured under `virtual_servers`",
            ),
        }
    }
}

struct Unregister {
    running: Arc<Mutex<HashMap<(String, Id), CancellationToken>>>,
    key: (String, Id),
}

impl Drop for Unregister {
    fn drop(&mut self) {
        lock(&self.running).remove(&self.key);
    }
}

/// The SSE answer to one request: related messages, then the response.
struct SseState {
    first: Option<String>,
    related: mpsc::UnboundedReceiver<String>,
    work: Option<BoxedOutcome>,
    id: Id,
}

impl SseState {
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        if let Some(msg) = self.first.take() {
            return Some((Ok(Event::default().data(msg)), self));
        }
        let work = self.work.as_mut()?;
        let msg = tokio::select! {
            biased;
            Some(msg) = self.related.recv() => msg,
            outcome = work => {
                self.work = None;
                encode_response(Some(&self.id), outcome.as_deref().map_err(|e| &**e))
            }
        };
        Some((Ok(Event::default().data(msg)), self))
    }
}

fn origin_is_loopback(origin: &str) -> bool {
    let Ok(url) = url::Url::parse(origin) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn json_error(status: StatusCode, id: Option<&Id>, err: &RpcError) -> Response {
    json(status, encode_error(id, err))
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (status, text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_origins() {
        assert!(origin_is_loopback("http://localhost:3000"));
        assert!(origin_is_loopback("http://127.0.0.1"));
        assert!(origin_is_loopback("http://[::1]:8080"));
        assert!(!origin_is_loopback("http://evil.example.com"));
        assert!(!origin_is_loopback("http://localhost.evil.example.com"));
        assert!(!origin_is_loopback("null"));
    }
}
