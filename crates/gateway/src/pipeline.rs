//! The gateway's MCP handler: every request a client sends passes here.
//!
//! A tool call passes the stages of DESIGN.md in order: route (federation), authorize
//! (access rules, withheld definitions: pins, poisoning, look-alike names), limit
//! ([`crate::limits`], the loop breaker, toxic flows), inspect (`forward_inspected`: arguments
//! out, sampling in between, results back, [`crate::inspect`]), forward (through the upstream's
//! circuit breaker), and record: `handle` wraps every request and turns what the stages noted
//! into one audit event and its metrics ([`crate::audit`], [`crate::metrics`]).

use crate::audit::{self, Decision, Ending, Event, Recorder};
use crate::breaker::Admit;
use crate::federation::{Federation, List, Listing, Member, VirtualServer};
use crate::flows::{self, FlowAction, Taints};
use crate::inspect::{caller_of, guarded_peer, inspect_message, Subject, ToolOf, Verdict};
use crate::limits;
use crate::loops::{self, LoopBreaker};
use crate::metrics::Metrics;
use crate::pins::definition::PinKind;
use crate::screen::Shadows;
use crate::traces;
use crate::traces::Traces;
use arc_swap::ArcSwap;
use futures::future::join_all;
use opentelemetry::KeyValue;
use portcullis_core::Principal;
use portcullis_guard::Direction;
use portcullis_mcp::client::UpstreamError;
use portcullis_mcp::federation::{decode_cursor, encode_cursor};
use portcullis_mcp::jsonrpc::{
    empty_object, to_raw, Notification, Request, RpcError, INVALID_PARAMS, METHOD_NOT_FOUND, UPSTREAM_ERROR,
};
use portcullis_mcp::object::RawObject;
use portcullis_mcp::peer::{Outcome, Peer};
use portcullis_mcp::protocol::{era_of, Era};
use portcullis_mcp::server::{modern, Handler, RequestContext, SessionInfo, Streams};
use portcullis_mcp::trace_context::TraceContext;
use portcullis_policy::{Facts, Kind, Verdict as AccessVerdict};
use serde_json::json;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::sync::Arc;
use tracing::Instrument;

/// The gateway: the current federation (swapped on config reload) and the MCP logic.
pub struct Gateway {
    federation: ArcSwap<Federation>,
    streams: Arc<Streams>,
    /// What each session has taken in (toxic flows); kept across reloads.
    taints: Taints,
    /// Each session's recent calls, for the loop breaker.
    loops: LoopBreaker,
    /// The counters of the `limits` rules; kept across reloads.
    limiter: limits::Counters,
    /// For webhook guards.
    http: reqwest::Client,
    /// The record stage: one audit event per exchange, counted in the metrics.
    audit: Recorder,
    metrics: Option<Arc<Metrics>>,
    traces: Traces,
}

/// A routed tool call or prompt request: the upstream, its own name for the item, and the
/// name the client used.
struct Call<'a> {
    fed: &'a Federation,
    member: &'a Member,
    name: &'a str,
    shown: &'a str,
    what: &'static str,
}

/// What one endpoint exposes: everything, or a virtual server's subset.
enum View<'a> {
    All,
    Virtual(&'a VirtualServer),
}

impl Gateway {
    pub fn new(
        federation: Federation,
        streams: Arc<Streams>,
        http: reqwest::Client,
        taints: Taints,
        (audit, metrics, traces): (Recorder, Option<Arc<Metrics>>, Traces),
    ) -> Self {
        let federation = ArcSwap::from_pointee(federation);
        let (loops, limiter) = (LoopBreaker::default(), limits::Counters::new(federation.load().config.redis.as_ref()));
        Gateway { federation, streams, http, taints, loops, limiter, audit, metrics, traces }
    }

    /// The tracer (its last spans are sent on shutdown).
    pub fn traces(&self) -> &Traces {
        &self.traces
    }

    /// The audit recorder (flushed on shutdown; its counters feed metrics).
    pub fn audit(&self) -> &Recorder {
        &self.audit
    }

    /// Records an exchange that never reached the pipeline (a caller the front door refused).
    pub async fn record_refusal(&self, event: Event) {
        if let Some(metrics) = &self.metrics {
            metrics.observe(&event);
        }
        self.audit.record(event, &self.federation().guard).await;
    }

    /// Where limits are counted: `shared` (Redis), `connecting` or `local`.
    pub fn limits_state(&self) -> &'static str {
        self.limiter.state()
    }

    /// The metrics, unless `metrics.enabled` is off.
    pub fn metrics(&self) -> Option<&Metrics> {
        self.metrics.as_deref()
    }

    pub fn federation(&self) -> Arc<Federation> {
        self.federation.load_full()
    }

    /// Installs a new federation (config reload); requests in flight keep the old one.
    pub fn replace(&self, federation: Federation) -> Arc<Federation> {
        self.federation.swap(Arc::new(federation))
    }

    fn view<'a>(fed: &'a Federation, session: &SessionInfo) -> Result<View<'a>, RpcError> {
        if session.endpoint.is_empty() {
            return Ok(View::All);
        }
        fed.virtual_servers.get(&session.endpoint).map(View::Virtual).ok_or_else(|| {
            RpcError::new(INVALID_PARAMS, format!("virtual server `{}` is no longer configured", session.endpoint))
        })
    }

    async fn dispatch(
        &self,
        req: &Request,
        params: RawObject,
        ctx: &RequestContext,
    ) -> Result<Box<RawValue>, ErrorOut> {
        let fed = self.federation();
        let view = Self::view(&fed, &ctx.session)?;
        match req.method.as_str() {
            "initialize" => Ok(to_raw(&initialize_result(&fed, &view, &ctx.session))),
            "server/discover" => Ok(to_raw(&modern::discover_result(
                capabilities(&view),
                Some(&instructions(&fed)),
                SERVER_NAME,
                env!("CARGO_PKG_VERSION"),
            ))),
            "ping" => Ok(empty_object()),
            "tools/list" => self.list(&fed, &view, List::Tools, &params, ctx).await,
            "prompts/list" | "resources/list" | "resources/templates/list" if matches!(view, View::Virtual(_)) => {
                let list = list_of(&req.method);
                Ok(to_raw(&json!({ list.field(): [] })))
            }
            "prompts/list" => self.list(&fed, &view, List::Prompts, &params, ctx).await,
            "resources/list" => self.list(&fed, &view, List::Resources, &params, ctx).await,
            "resources/templates/list" => self.list(&fed, &view, List::Templates, &params, ctx).await,
            "tools/call" => {
                let shown = params.require_str("name")?;
                let federated = match &view {
                    View::All => Some(shown.clone()),
                    View::Virtual(vs) => vs.resolve(&shown),
                };
                let routed = federated.as_deref().and_then(|f| fed.route_name(f));
                let Some((member, name)) = routed else {
                    return Err(RpcError::new(INVALID_PARAMS, format!("Unknown tool: {shown}")).into());
                };
                audit::routed(&member.name);
                if ctx.session.era() == Era::Modern {
                    check_mirrored_arguments(member, name, &params, &ctx.param_headers, &ctx.principal).await?;
                }
                authorize(&fed, ctx, Kind::Tool, member, federated.as_deref().unwrap_or(&shown), &shown, &params)?;
                let listed = refuse_withheld(&fed, ctx, member, List::Tools, name, &shown).await?;
                // Held until the call ends: it counts against concurrency caps meanwhile.
                let _permit = self.limit(&fed, ctx, member, name, &shown).await?;
                self.break_loops(&fed, ctx, &shown, &params)?;
                let definition = listed.as_ref().map(|(listing, i)| &listing.items[*i]);
                let labels = flow_labels(&fed, member, name, definition, &params);
                self.refuse_toxic_flow(&fed, ctx, &labels, &shown).await?;
                let mut params = params;
                params.set("name", name);
                let call = Call { fed: &fed, member, name, shown: &shown, what: "tool" };
                let result = self.forward_inspected(call, "tools/call", params, ctx).await;
                if result.is_ok() {
                    let caller = ctx.principal.subject();
                    self.taints.record(&fed.flows, &caller, &ctx.session.id, &labels, &shown).await;
                }
                result
            }
            "prompts/get" => {
                let shown = params.require_str("name")?;
                let routed = matches!(view, View::All).then(|| fed.route_name(&shown)).flatten();
                let Some((member, name)) = routed else {
                    return Err(RpcError::new(INVALID_PARAMS, format!("Unknown prompt: {shown}")).into());
                };
                audit::routed(&member.name);
                authorize(&fed, ctx, Kind::Prompt, member, &shown, &shown, &params)?;
                refuse_withheld(&fed, ctx, member, List::Prompts, name, &shown).await?;
                let mut params = params;
                params.set("name", name);
                let call = Call { fed: &fed, member, name, shown: &shown, what: "prompt" };
                self.forward_inspected(call, "prompts/get", params, ctx).await
            }
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                let uri = params.require_str("uri")?;
                let routed = matches!(view, View::All).then(|| fed.route_uri(&uri)).flatten();
                let Some((member, upstream_uri)) = routed else {
                    return Err(RpcError::new(INVALID_PARAMS, "Resource not found")
                        .with_data(json!({ "uri": uri }))
                        .into());
                };
                audit::routed(&member.name);
                if req.method != "resources/unsubscribe" {
                    authorize(&fed, ctx, Kind::Resource, member, &uri, &uri, &params)?;
                    refuse_quarantined(member, &fed.guard.mask(&uri))?;
                }
                let member = member.clone();
                let mut params = params;
                params.set("uri", upstream_uri);
                match req.method.as_str() {
                    "resources/read" => {
                        let result = self.forward(&member, "resources/read", params, &ctx.peer, &ctx.principal).await?;
                        let profile =
                            fed.guard.profile_for(&member.name, Some(upstream_uri), &caller_of(&ctx.principal));
                        let shown = fed.guard.mask(&uri);
                        let subject = Subject { server: &member.name, name: &shown, what: "resource" };
                        let verdict =
                            inspect_message(&self.http, &fed.guard, profile, Direction::Response, &result, &subject)
                                .await;
                        let result = map_contents_uris(&member, inspected(verdict, result)?);
                        let labels = member.labels_of(upstream_uri);
                        self.taints
                            .record(&fed.flows, &ctx.principal.subject(), &ctx.session.id, &labels, &shown)
                            .await;
                        Ok(result)
                    }
                    "resources/subscribe" => self.subscribe(&member, &uri, params, ctx).await,
                    _ => {
                        self.unsubscribe(&member, &uri, &ctx.session.id, params).await;
                        Ok(empty_object())
                    }
                }
            }
            "completion/complete" => {
                let mut reference = params
                    .get_object("ref")
                    .ok_or_else(|| RpcError::new(INVALID_PARAMS, "invalid params: \"ref\" must be an object"))?;
                let routed = match reference.get_str("type").as_deref() {
                    Some("ref/prompt") => {
                        let name = reference.require_str("name")?;
                        fed.route_name(&name).map(|(m, n)| (m.clone(), "name", n.to_owned()))
                    }
                    Some("ref/resource") => {
                        let uri = reference.require_str("uri")?;
                        fed.route_uri(&uri).map(|(m, u)| (m.clone(), "uri", u.to_owned()))
                    }
                    _ => return Err(RpcError::new(INVALID_PARAMS, "invalid params: unknown \"ref.type\"").into()),
                };
                let Some((member, field, value)) = routed.filter(|_| matches!(view, View::All)) else {
                    return Err(RpcError::new(INVALID_PARAMS, "nothing to complete: unknown prompt or resource").into());
                };
                refuse_quarantined(&member, &value)?;
                reference.set(field, &value);
                let mut params = params;
                params.set_raw("ref", reference.to_raw());
                self.forward(&member, "completion/complete", params, &ctx.peer, &ctx.principal).await
            }
            "logging/setLevel" => {
                let raw = params.to_raw();
                let sends = fed.members.iter().map(|m| {
                    let raw = raw.clone();
                    async move {
                        if let Err(e) = m.upstream.request("logging/setLevel", Some(raw), None).await {
                            tracing::debug!(server = %m.name, error = %e, "logging/setLevel not forwarded");
                        }
                    }
                });
                join_all(sends).await;
                Ok(empty_object())
            }
            other => Err(RpcError::new(METHOD_NOT_FOUND, format!("Method not found: {other}")).into()),
        }
    }

    /// The limit stage: the `limits` rules that count this call admit it, or it is refused
    /// with a retry hint.
    async fn limit(
        &self,
        fed: &Federation,
        ctx: &RequestContext,
        member: &Member,
        name: &str,
        shown: &str,
    ) -> Result<Option<limits::Permit>, RpcError> {
        if fed.limits.is_empty() {
            return Ok(None);
        }
        let stage = traces::stage("limits");
        let labels = member.labels_of(name);
        let call = limits::CallFacts { principal: &ctx.principal, server: &member.name, tool: shown, labels: &labels };
        match self.limiter.admit(&fed.limits, &call).await {
            Ok(permit) => Ok(Some(permit)),
            Err(refused) => {
                stage.fail(format!("limit `{}` reached", refused.rule));
                tracing::warn!(caller = %ctx.principal.subject(), tool = %shown, rule = %refused.rule,
                    limit = refused.limit, "a limit refused a call");
                let retry_after = refused.retry_after.as_secs_f64().ceil().max(1.0) as u64;
                Err(RpcError::new(LIMITED, refused.message).with_data(json!({
                    "policy": "limits", "rule": refused.rule, "limit": refused.limit, "retryAfter": retry_after
                })))
            }
        }
    }

    /// The loop breaker: refuses a call that goes round a loop too often in this session.
    fn break_loops(
        &self,
        fed: &Federation,
        ctx: &RequestContext,
        shown: &str,
        params: &RawObject,
    ) -> Result<(), RpcError> {
        let config = &fed.config.loops;
        if !config.enabled {
            return Ok(());
        }
        let arguments: Option<serde_json::Value> =
            params.get("arguments").and_then(|a| serde_json::from_str(a.get()).ok());
        let caller = ctx.principal.subject();
        let Some(tripped) = self.loops.check(config, &caller, &ctx.session.id, shown, arguments.as_ref()) else {
            return Ok(());
        };
        tracing::warn!(caller = %caller, tool = %shown, period = tripped.period, turns = tripped.turns,
            "the loop breaker refused a call");
        let retry_after = tripped.retry_after.as_secs().max(1);
        Err(RpcError::new(LIMITED, loops::explain(&tripped, shown, config)).with_data(json!({
            "policy": "limits", "rule": "loop-breaker", "period": tripped.period, "turns": tripped.turns,
            "retryAfter": retry_after
        })))
    }

    /// The flow stage: refuses a call that would close a toxic flow in this session, or asks
    /// the user first (`ask`); a flagging rule only logs it. The refusal tells the agent what
    /// the session took in and from where, so it can explain it to the user.
    async fn refuse_toxic_flow(
        &self,
        fed: &Federation,
        ctx: &RequestContext,
        labels: &[String],
        shown: &str,
    ) -> Result<(), RpcError> {
        let caller = ctx.principal.subject();
        let Some(verdict) = self.taints.check(&fed.flows, &caller, &ctx.session.id, labels).await else {
            return Ok(());
        };
        let sources: serde_json::Map<String, serde_json::Value> =
            verdict.sources.iter().map(|(label, from)| (label.clone(), json!(from))).collect();
        let took_in = serde_json::Value::Object(sources.clone());
        let why = match verdict.action {
            FlowAction::Flag => {
                audit::note(Decision::new("flow", Some(&verdict.rule), "flag").with_detail(took_in.clone()));
                tracing::warn!(caller = %caller, tool = %shown, rule = %verdict.rule, sink = %verdict.sink,
                    took_in = %took_in, "flagged a call that closes a toxic flow");
                return Ok(());
            }
            FlowAction::Block => None,
            FlowAction::Ask => match ask_user(ctx, &flows::question(&verdict, shown)).await {
                Ok(()) => {
                    audit::note(Decision::new("flow", Some(&verdict.rule), "asked").with_detail(took_in.clone()));
                    tracing::warn!(caller = %caller, tool = %shown, rule = %verdict.rule, took_in = %took_in,
                        "the user allowed a call that closes a toxic flow");
                    return Ok(());
                }
                Err(why) => Some(why),
            },
        };
        tracing::warn!(caller = %caller, tool = %shown, rule = %verdict.rule, sink = %verdict.sink,
            took_in = %took_in, "refused a call that would close a toxic flow");
        Err(RpcError::new(ACCESS_DENIED, flows::explain(&verdict, shown, why.as_deref())).with_data(json!({
            "policy": "flow", "rule": verdict.rule, "took_in": sources, "sink": verdict.sink
        })))
    }

    /// Many clients share one upstream session, so the upstream is asked to watch a resource
    /// when its first subscriber arrives and told to stop when the last one leaves.
    async fn subscribe(
        &self,
        member: &Member,
        uri: &str,
        params: RawObject,
        ctx: &RequestContext,
    ) -> Result<Box<RawValue>, ErrorOut> {
        let Some(new) = self.streams.subscribe(&ctx.session.id, uri) else {
            let limit = portcullis_mcp::server::MAX_SUBSCRIPTIONS;
            return Err(RpcError::new(INVALID_PARAMS, format!("at most {limit} subscriptions per session")).into());
        };
        let upstream_uri = params.get_str("uri").unwrap_or_default();
        if !new || member.watch(&upstream_uri, 1) > 1 {
            return Ok(empty_object());
        }
        // Subscriptions live on the shared connection, where updates arrive for everyone.
        let result = match member.upstream.request("resources/subscribe", Some(params.to_raw()), None).await {
            Ok(outcome) => outcome.map_err(ErrorOut::Verbatim),
            Err(e) => Err(e.to_rpc().into()),
        };
        if result.is_err() {
            self.streams.unsubscribe(&ctx.session.id, uri);
            member.watch(&upstream_uri, -1);
        }
        result
    }

    async fn unsubscribe(&self, member: &Member, uri: &str, session: &str, params: RawObject) {
        let upstream_uri = params.get_str("uri").unwrap_or_default();
        if self.streams.unsubscribe(session, uri) && member.watch(&upstream_uri, -1) == 0 {
            if let Err(e) = member.upstream.request("resources/unsubscribe", Some(params.to_raw()), None).await {
                tracing::debug!(server = %member.name, error = %e, "resources/unsubscribe not forwarded");
            }
        }
    }

    /// A tool call or prompt request through the inspect stage: its `arguments` on the way
    /// out, the sampling requests it causes, and its result on the way back.
    async fn forward_inspected(
        &self,
        call: Call<'_>,
        method: &str,
        mut params: RawObject,
        ctx: &RequestContext,
    ) -> Result<Box<RawValue>, ErrorOut> {
        let Call { fed, member, name, shown, what } = call;
        let profile = fed.guard.profile_for(&member.name, Some(name), &caller_of(&ctx.principal));
        let subject = Subject { server: &member.name, name: shown, what };
        if let Some(arguments) = params.get("arguments") {
            match inspect_message(&self.http, &fed.guard, profile, Direction::Request, arguments, &subject).await {
                Verdict::Pass => {}
                Verdict::Replace(redacted) => params.set_raw("arguments", redacted),
                Verdict::Block(e) => return Err(e.into()),
            }
        }
        let tool = ToolOf { server: &member.name, name, shown };
        let peer = guarded_peer(&fed.guard, &tool, &ctx.principal, &ctx.peer);
        let result = self.forward(member, method, params, &peer, &ctx.principal).await?;
        let verdict = inspect_message(&self.http, &fed.guard, profile, Direction::Response, &result, &subject).await;
        inspected(verdict, result)
    }

    /// Sends a caller's request to an upstream (through the caller's own connection when
    /// the server acts for each caller); its result or error comes back verbatim.
    async fn forward(
        &self,
        member: &Member,
        method: &str,
        params: RawObject,
        peer: &Peer,
        caller: &Principal,
    ) -> Result<Box<RawValue>, ErrorOut> {
        let breaker = &self.federation().config.breaker;
        if let Admit::Refuse(wait) = member.breaker.admit(breaker) {
            let retry_after = wait.as_secs_f64().ceil().max(1.0) as u64;
            return Err(RpcError::new(
                UPSTREAM_ERROR,
                format!("server `{}` is failing: calls to it fail at once for now; retry in {retry_after} s", member.name),
            )
            .with_data(json!({ "kind": "circuit_open", "policy": "breaker", "rule": "circuit-open", "retryAfter": retry_after }))
            .into());
        }
        let upstream = member.upstream_for(caller)?;
        let (stage, trace) = traces::upstream(&member.name, method);
        let mut params = params;
        if let Some(trace) = &trace {
            traces::put_in_meta(&mut params, trace);
        }
        let sent = upstream.request(method, Some(params.to_raw()), Some(peer.clone())).await;
        match &sent {
            Err(e) => stage.fail(e.to_string()),
            Ok(Err(_)) => stage.fail("the upstream answered with an error"),
            Ok(Ok(_)) => {}
        }
        // An answer, even an error, means the upstream works; a missing credential is ours.
        let failed = matches!(&sent, Err(e) if !matches!(e, UpstreamError::Config(_)));
        if member.breaker.record(breaker, failed) {
            tracing::warn!(server = %member.name, failures = breaker.failures, open_for = ?breaker.open_for,
                "circuit opened: calls to this server fail fast until a probe succeeds");
        }
        sent.map_err(|e| e.to_rpc())?.map_err(ErrorOut::Verbatim)
    }

    /// A merged, prefixed, filtered page of one list across every upstream.
    async fn list(
        &self,
        fed: &Federation,
        view: &View<'_>,
        list: List,
        params: &RawObject,
        ctx: &RequestContext,
    ) -> Result<Box<RawValue>, ErrorOut> {
        let offset = match params.get_str("cursor") {
            Some(c) => decode_cursor(&c)?,
            None => 0,
        };
        let caller = &ctx.principal;
        let lists = join_all(fed.members.iter().map(|m| async move { (m, m.list(list, caller).await) })).await;
        // Every server's tool names, for the shadowing checks of the others' names and definitions.
        let names = if list == List::Tools { tool_names(&lists) } else { Vec::new() };
        let shadows = if list == List::Tools { shadowed_tools(fed, &lists) } else { Default::default() };
        let mut merged = Vec::new();
        for (member, listing) in &lists {
            let listing = match listing {
                Ok(listing) => listing,
                Err(e) => {
                    // One broken upstream must not hide the others' tools.
                    tracing::warn!(server = %member.name, error = %e, "left out of {}", list.method());
                    continue;
                }
            };
            if let Some(w) = member.quarantined() {
                tracing::debug!(server = %member.name, rule = w.rule, "left out of {}: {}", list.method(), w.reason);
                continue;
            }
            let others: Vec<&str> =
                names.iter().filter(|(server, _, _)| *server != member.name).map(|(_, n, _)| n.as_str()).collect();
            for (i, item) in listing.items.iter().enumerate() {
                // A changed definition waits for approval; a poisoned one never reaches the model.
                if member.withheld(list, listing, i).is_some() {
                    continue;
                }
                if list == List::Tools && screen(fed, ctx, member, item, &others).withheld() {
                    continue;
                }
                let name = item.get_str("name");
                if let Some(why) = name.and_then(|n| shadows.get(&member.name)?.get(&n)) {
                    tracing::info!(server = %member.name, "a tool is left out of tools/list: {why}");
                    continue;
                }
                // What the caller may not use is not in their lists.
                if !fed.access.is_open() && !visible(fed, ctx, member, list, item) {
                    continue;
                }
                if let Some(item) = federate_item(member, view, list, item) {
                    merged.push(item);
                }
            }
        }
        let page_size = fed.config.http.page_size;
        let (page, next) = if page_size == 0 {
            (&merged[..], None)
        } else {
            let start = offset.min(merged.len());
            let end = start.saturating_add(page_size).min(merged.len());
            (&merged[start..end], (end < merged.len()).then(|| encode_cursor(end)))
        };
        let mut result = RawObject::default();
        result.set(list.field(), page);
        if let Some(next) = next {
            result.set("nextCursor", &next);
        }
        Ok(result.to_raw())
    }
}

/// The screening verdict on a tool definition of `member` for this caller's profile.
fn screen(
    fed: &Federation,
    ctx: &RequestContext,
    member: &Member,
    tool: &RawObject,
    others: &[&str],
) -> crate::screen::Screened {
    let name = tool.get_str("name");
    let profile = fed.guard.profile_for(&member.name, name.as_deref(), &caller_of(&ctx.principal));
    fed.screen.check(&fed.guard, profile, &member.name, tool, others)
}

/// Refuses a call to a tool or prompt that is withheld from lists: its server is
/// quarantined, its definition is not the approved one ([`crate::pins`]), or (tools) it
/// carries instructions for the model ([`crate::screen`]). Returns where the definition is
/// in the server's list, if it is listed.
async fn refuse_withheld(
    fed: &Federation,
    ctx: &RequestContext,
    member: &Member,
    list: List,
    name: &str,
    shown: &str,
) -> Result<Option<(Arc<Listing>, usize)>, RpcError> {
    refuse_quarantined(member, shown)?;
    let listing = member.list(list, &ctx.principal).await?;
    let Some(i) = listing.items.iter().position(|t| t.get_str("name").as_deref() == Some(name)) else {
        return Ok(None);
    };
    if let Some(w) = member.withheld(list, &listing, i) {
        return Err(withheld(shown, w));
    }
    if list != List::Tools {
        return Ok(Some((listing, i)));
    }
    if fed.members.len() > 1 {
        let lists = join_all(fed.members.iter().map(|m| async move { (m, m.list(List::Tools, &ctx.principal).await) }));
        let lists = lists.await;
        if let Some(why) = shadowed_tools(fed, &lists).get(&member.name).and_then(|m| m.get(name)) {
            tracing::warn!(server = %member.name, "refused a call: {why}");
            return Err(RpcError::new(ACCESS_DENIED, format!("tool `{shown}` is withheld: {why}"))
                .with_data(json!({ "policy": "guard", "rule": "tool-shadowing" })));
        }
    }
    let verdict = screen(fed, ctx, member, &listing.items[i], &[]);
    if !verdict.withheld() {
        return Ok(Some((listing, i)));
    }
    Err(RpcError::new(
        ACCESS_DENIED,
        format!(
            "tool `{shown}` is withheld: its definition carries instructions aimed at the model ({})",
            verdict.findings.join(", ")
        ),
    )
    .with_data(json!({ "policy": "guard", "rule": "tool-poisoning", "findings": verdict.findings })))
}

/// How long the user has to answer the gateway's question.
const ASK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Asks the user, through the client (MCP elicitation), to allow a call; `Err` says why it
/// is not allowed (the user said no, or the client cannot ask).
async fn ask_user(ctx: &RequestContext, question: &str) -> Result<(), String> {
    let params = json!({
        "message": question,
        "requestedSchema": { "type": "object", "properties": {
            "allow": { "type": "boolean", "title": "Allow this call", "default": false } }, "required": ["allow"] }
    });
    let answer = match ctx.peer.request("elicitation/create", Some(&to_raw(&params)), ASK_TIMEOUT).await {
        Ok(raw) => serde_json::from_str::<serde_json::Value>(raw.get()).unwrap_or_default(),
        Err(e) => {
            tracing::debug!(error = %e.get(), "could not ask the user");
            return Err(
                "It needs the user's approval, and the client could not ask them (no elicitation support)".into()
            );
        }
    };
    if answer["action"] == "accept" && answer["content"]["allow"] == json!(true) {
        Ok(())
    } else {
        Err("The user did not allow it".into())
    }
}

/// The flow labels of a tool call (none when no flow rule is in force).
fn flow_labels(
    fed: &Federation,
    member: &Member,
    name: &str,
    definition: Option<&RawObject>,
    params: &RawObject,
) -> Vec<String> {
    if !fed.flows.active() {
        return Vec::new();
    }
    // Arguments are parsed only when a label of this server depends on them.
    let args: Option<serde_json::Value> = fed
        .flows
        .reads_arguments(&member.name)
        .then(|| params.get("arguments").and_then(|a| serde_json::from_str(a.get()).ok()))
        .flatten();
    fed.flows.labels_of(&member.name, name, member.labels_of(name), definition, args.as_ref())
}

/// One server's list as fetched for a client.
type Fetched<'a> = (&'a Arc<Member>, Result<Arc<Listing>, RpcError>);

/// Each server's tool names: (server, upstream name, federated name).
fn tool_names<'a>(lists: &'a [Fetched<'a>]) -> Vec<(&'a str, String, String)> {
    let mut out = Vec::new();
    for (member, listing) in lists {
        let Ok(listing) = listing else { continue };
        for item in &listing.items {
            if let Some(name) = item.get_str("name") {
                let federated = Federation::name_of(member, &name);
                out.push((member.name.as_str(), name, federated));
            }
        }
    }
    out
}

/// The tools withheld for a look-alike of another server's tool name (see
/// [`crate::screen::shadowed`]), found again only when a list or a pin changed.
fn shadowed_tools(fed: &Federation, lists: &[Fetched<'_>]) -> Arc<Shadows> {
    if fed.members.len() < 2 {
        return Arc::default();
    }
    let serials = lists.iter().map(|(_, l)| l.as_ref().map_or(0, |l| l.serial)).collect();
    fed.screen.shadows(serials, fed.pins.version(), || {
        let names = tool_names(lists);
        let mut out = Shadows::new();
        let found = crate::screen::shadowed(&names, |server, name| fed.pins.approved_at(server, PinKind::Tool, name));
        for ((server, name), why) in found {
            out.entry(server.to_owned()).or_default().insert(name.to_owned(), why);
        }
        out
    })
}

/// Refuses anything of a quarantined server.
fn refuse_quarantined(member: &Member, shown: &str) -> Result<(), RpcError> {
    member.quarantined().map_or(Ok(()), |w| Err(withheld(shown, w)))
}

fn withheld(shown: &str, w: crate::pins::Withheld) -> RpcError {
    tracing::info!(target = %shown, rule = w.rule, "refused: {}", w.reason);
    RpcError::new(ACCESS_DENIED, format!("`{shown}` is withheld by the gateway: {}", w.reason))
        .with_data(json!({ "policy": "pinning", "rule": w.rule }))
}

/// Whether a list item (a tool, prompt or resource; templates always) is visible to the caller.
fn visible(fed: &Federation, ctx: &RequestContext, member: &Member, list: List, item: &RawObject) -> bool {
    let (kind, federated) = match list {
        List::Tools => (Kind::Tool, Federation::name_of(member, &item.get_str("name").unwrap_or_default())),
        List::Prompts => (Kind::Prompt, Federation::name_of(member, &item.get_str("name").unwrap_or_default())),
        List::Resources => (Kind::Resource, Federation::uri_of(member, &item.get_str("uri").unwrap_or_default())),
        // A template is no resource yet: reading what it names is decided per URI.
        List::Templates => return true,
    };
    let upstream_name = match list {
        List::Resources => item.get_str("uri"),
        _ => item.get_str("name"),
    };
    let labels = upstream_name.map(|n| member.labels_of(&n)).unwrap_or_default();
    let facts = Facts { args: None, client: &ctx.session.client_name, labels: &labels };
    fed.access.may_see(kind, &ctx.principal, &member.name, &federated, &facts)
}

/// The JSON-RPC error code of a call denied by the access rules.
pub const ACCESS_DENIED: i64 = -32003;

/// The JSON-RPC error code of a call refused by a limit (rate, quota, concurrency, the loop
/// breaker); `data.retryAfter` says in how many seconds it may pass.
pub const LIMITED: i64 = portcullis_mcp::jsonrpc::RATE_LIMITED;

/// The authorize stage: the access rules on caller, target (tool, prompt or resource) and
/// arguments. A denial names the rule that decided it (or that none allowed it), never
/// other targets, and is logged with the caller.
fn authorize(
    fed: &Federation,
    ctx: &RequestContext,
    kind: Kind,
    member: &Member,
    federated: &str,
    shown: &str,
    params: &RawObject,
) -> Result<(), RpcError> {
    if fed.access.is_open() {
        return Ok(());
    }
    let stage = traces::stage("authorize");
    let arguments: Option<serde_json::Value> = params.get("arguments").and_then(|a| serde_json::from_str(a.get()).ok());
    let labels = member.labels_of_federated(federated, kind == Kind::Resource);
    let facts = Facts { args: arguments.as_ref(), client: &ctx.session.client_name, labels: &labels };
    match fed.access.may_use(kind, &ctx.principal, &member.name, federated, &facts) {
        AccessVerdict::Allowed => {
            audit::note(Decision::new("access", None, "allow"));
            Ok(())
        }
        AccessVerdict::Denied { rule } => {
            stage.fail(format!("denied by access rule `{}`", rule.as_deref().unwrap_or("(none allows it)")));
            let caller = ctx.principal.subject();
            // A resource URI can carry a credential: masked like everywhere else.
            let shown = if kind == Kind::Resource { fed.guard.mask(shown) } else { Cow::Borrowed(shown) };
            tracing::info!(target = %shown, caller = %caller, rule = rule.as_deref().unwrap_or("-"), "denied by the access rules");
            let why = match &rule {
                Some(rule) => format!("denied by access rule `{rule}`"),
                None => "no access rule allows it".to_owned(),
            };
            let what = match kind {
                Kind::Tool => format!("call tool `{shown}` with these arguments"),
                Kind::Prompt => format!("get prompt `{shown}` with these arguments"),
                Kind::Resource => format!("read resource `{shown}`"),
            };
            Err(RpcError::new(ACCESS_DENIED, format!("{caller} may not {what}: {why}"))
                .with_data(json!({ "policy": "access", "rule": rule })))
        }
    }
}

/// What an audit event names: the tool, prompt or resource, and the arguments as sent.
fn audit_subject(method: &str, params: &RawObject) -> (Option<String>, Option<Box<RawValue>>) {
    let target = match method {
        "tools/call" | "prompts/get" => params.get_str("name"),
        m if m.starts_with("resources/") => params.get_str("uri"),
        _ => None,
    };
    (target, params.get("arguments").map(|a| a.to_owned()))
}

impl Gateway {
    /// The exchange's trace: a server span named for the method (and the tool or prompt),
    /// continuing the caller's trace when it sent a context (header, else `_meta`).
    fn trace_exchange(
        &self,
        request: &Request,
        params: &Result<RawObject, RpcError>,
        ctx: &RequestContext,
    ) -> traces::Exchange {
        let caller = ctx.trace.clone().or_else(|| request.params.as_deref().and_then(TraceContext::from_params));
        self.traces.exchange(caller, || {
            let named = match request.method.as_str() {
                "tools/call" | "prompts/get" => params.as_ref().ok().and_then(|p| p.get_str("name")),
                _ => None,
            };
            let mut attributes = vec![
                KeyValue::new("mcp.method.name", request.method.clone()),
                KeyValue::new("portcullis.caller", ctx.principal.subject()),
            ];
            if let Some(user) = &ctx.principal.user {
                attributes.push(KeyValue::new("enduser.id", user.clone()));
            }
            let name = match named {
                Some(named) => {
                    let key = if request.method == "tools/call" { "gen_ai.tool.name" } else { "mcp.prompt.name" };
                    attributes.push(KeyValue::new(key, named.clone()));
                    format!("{} {named}", request.method)
                }
                None => request.method.clone(),
            };
            (name, attributes)
        })
    }
}

/// The message to send on after the inspect stage.
fn inspected(verdict: Verdict, original: Box<RawValue>) -> Result<Box<RawValue>, ErrorOut> {
    match verdict {
        Verdict::Pass => Ok(original),
        Verdict::Replace(redacted) => Ok(redacted),
        Verdict::Block(e) => Err(e.into()),
    }
}

/// 2026-07-28 clients mirror arguments marked `x-mcp-header` in `Mcp-Param-*` headers,
/// which intermediaries may route on: the gateway checks they match the body.
async fn check_mirrored_arguments(
    member: &Member,
    tool: &str,
    params: &RawObject,
    headers: &[(String, String)],
    caller: &Principal,
) -> Result<(), RpcError> {
    let tools = member.list(List::Tools, caller).await?;
    let Some(schema) = tools
        .items
        .iter()
        .find(|t| t.get_str("name").as_deref() == Some(tool))
        .and_then(|t| t.get("inputSchema"))
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s.get()).ok())
    else {
        return Ok(());
    };
    let arguments =
        params.get("arguments").and_then(|a| serde_json::from_str(a.get()).ok()).unwrap_or_else(|| json!({}));
    modern::check_param_headers(&schema, &arguments, headers)
}

/// Rewrites one upstream item for the client: prefixed name or URI, virtual filter and rename.
fn federate_item(member: &Member, view: &View<'_>, list: List, item: &RawObject) -> Option<RawObject> {
    let mut item = item.clone();
    match list {
        List::Tools | List::Prompts => {
            let name = Federation::name_of(member, &item.get_str("name")?);
            let shown = match view {
                View::All => name,
                View::Virtual(vs) if list == List::Tools => vs.show(&name)?,
                View::Virtual(_) => return None,
            };
            item.set("name", &shown);
        }
        List::Resources => {
            let uri = item.get_str("uri")?;
            item.set("uri", &Federation::uri_of(member, &uri));
        }
        List::Templates => {
            let uri = item.get_str("uriTemplate")?;
            item.set("uriTemplate", &Federation::uri_of(member, &uri));
        }
    }
    Some(item)
}

/// Maps the `uri` of each item of a `resources/read` result back to the federated form.
fn map_contents_uris(member: &Member, result: Box<RawValue>) -> Box<RawValue> {
    if member.prefix.is_empty() {
        return result;
    }
    let Ok(mut obj) = RawObject::parse(&result, "result") else {
        return result;
    };
    let Ok(contents) = obj.get_array("contents") else {
        return result;
    };
    let mapped: Vec<RawObject> = contents
        .into_iter()
        .map(|mut c| {
            if let Some(uri) = c.get_str("uri") {
                c.set("uri", &Federation::uri_of(member, &uri));
            }
            c
        })
        .collect();
    obj.set("contents", &mapped);
    obj.to_raw()
}

fn list_of(method: &str) -> List {
    match method {
        "prompts/list" => List::Prompts,
        "resources/list" => List::Resources,
        "resources/templates/list" => List::Templates,
        _ => List::Tools,
    }
}

const SERVER_NAME: &str = "portcullis";

/// What the gateway offers on an endpoint: everything on `/mcp`, tools on a virtual server.
fn capabilities(view: &View<'_>) -> serde_json::Value {
    match view {
        View::All => json!({
            "tools": { "listChanged": true },
            "prompts": { "listChanged": true },
            "resources": { "subscribe": true, "listChanged": true },
            "logging": {},
            "completions": {}
        }),
        View::Virtual(_) => json!({ "tools": { "listChanged": true } }),
    }
}

/// The gateway's instructions followed by each upstream's own, labelled.
fn instructions(fed: &Federation) -> String {
    let mut text = String::from("Portcullis gateway. Tools and prompts are named <server>__<name>.");
    for m in &fed.members {
        if let Some(theirs) = m.upstream.server_info().and_then(|i| i.instructions) {
            text.push_str(&format!("\n\n[{}] {}", m.name, theirs));
        }
    }
    text
}

fn initialize_result(fed: &Federation, view: &View<'_>, session: &SessionInfo) -> serde_json::Value {
    json!({
        "protocolVersion": session.protocol_version,
        "capabilities": capabilities(view),
        "serverInfo": { "name": SERVER_NAME, "title": "Portcullis MCP gateway", "version": env!("CARGO_PKG_VERSION") },
        "instructions": instructions(fed),
    })
}

/// An error for the client: the gateway's own, or an upstream's passed on verbatim.
enum ErrorOut {
    Gateway(RpcError),
    Verbatim(Box<RawValue>),
}

impl From<RpcError> for ErrorOut {
    fn from(e: RpcError) -> Self {
        ErrorOut::Gateway(e)
    }
}

impl Handler for Gateway {
    async fn handle(&self, request: Request, ctx: RequestContext) -> Outcome {
        // Every log line of the request names its caller (never its credential).
        let span = tracing::info_span!("request", method = %request.method, caller = %ctx.principal.subject());
        let (started, clock) = (std::time::SystemTime::now(), std::time::Instant::now());
        let params = RawObject::parse_params(request.params.as_deref());
        let recorded = (self.audit.enabled() || self.metrics.is_some()) && request.method != "ping";
        let subject = match (&params, recorded) {
            (Ok(params), true) => audit_subject(&request.method, params),
            _ => (None, None),
        };
        let exchange = self.trace_exchange(&request, &params, &ctx);
        let work = async {
            match params {
                Ok(params) => self.dispatch(&request, params, &ctx).await,
                Err(e) => Err(e.into()),
            }
        };
        let ((result, exchange), notes) = audit::observe(traces::within(exchange, work)).instrument(span).await;
        let server = notes.server.clone();
        let decision = if recorded {
            let ending = match &result {
                Ok(raw) => Ending::Answered(raw.get().len()),
                Err(ErrorOut::Gateway(e)) => Ending::Gateway(e),
                Err(ErrorOut::Verbatim(raw)) => Ending::Upstream(raw),
            };
            let mut event = Event::new(&request, subject, &ctx, notes, ending, (started, clock.elapsed()));
            event.trace_id = exchange.trace_id();
            let decision = event.decision;
            if let Some(metrics) = &self.metrics {
                metrics.observe(&event);
            }
            self.audit.record(event, &self.federation().guard).await;
            Some(decision)
        } else {
            None
        };
        exchange.end(|| {
            let failure = match &result {
                Ok(_) => None,
                Err(ErrorOut::Gateway(e)) => Some((e.code, e.message.clone())),
                Err(ErrorOut::Verbatim(_)) => Some((UPSTREAM_ERROR, "the upstream answered with an error".to_owned())),
            };
            let outcome = if failure.is_some() { "error" } else { "ok" };
            let mut ended = vec![KeyValue::new("portcullis.outcome", outcome)];
            ended.extend(server.map(|s| KeyValue::new("portcullis.server", s)));
            ended.extend(decision.map(|d| KeyValue::new("portcullis.decision", d)));
            ended.extend(failure.as_ref().map(|(code, _)| KeyValue::new("rpc.jsonrpc.error_code", *code)));
            (ended, failure.map(|(_, why)| why))
        });
        result.map_err(|e| match e {
            ErrorOut::Gateway(e) => e.to_raw(),
            ErrorOut::Verbatim(raw) => raw,
        })
    }

    fn session_closed(&self, session: &SessionInfo) {
        self.taints.forget(&session.id);
        self.loops.forget(&session.id);
        let fed = self.federation();
        for uri in self.streams.forget(&session.id) {
            let Some((member, upstream_uri)) = fed.route_uri(&uri) else { continue };
            if member.watch(upstream_uri, -1) > 0 {
                continue;
            }
            let (member, params) = (member.clone(), to_raw(&json!({ "uri": upstream_uri })));
            tokio::spawn(async move {
                let _ = member.upstream.request("resources/unsubscribe", Some(params), None).await;
            });
        }
    }

    /// A 2026-07-28 client's listen watches resources: the upstreams are asked for their
    /// updates as for a legacy client's `resources/subscribe`.
    fn watch_resources(&self, uris: &[String], watching: bool) {
        let fed = self.federation();
        for uri in uris {
            let Some((member, upstream_uri)) = fed.route_uri(uri) else { continue };
            let count = member.watch(upstream_uri, if watching { 1 } else { -1 });
            let transition = if watching { count == 1 } else { count == 0 };
            let legacy =
                member.upstream.server_info().is_some_and(|i| era_of(&i.protocol_version) == Some(Era::Legacy));
            if transition && legacy {
                let method = if watching { "resources/subscribe" } else { "resources/unsubscribe" };
                let (member, params) = (member.clone(), to_raw(&json!({ "uri": upstream_uri })));
                tokio::spawn(async move {
                    if let Err(e) = member.upstream.request(method, Some(params), None).await {
                        tracing::debug!(server = %member.name, error = %e, "{method} not forwarded");
                    }
                });
            }
        }
    }

    /// A client's roots changed: every upstream may have asked for them, so tell them all.
    fn notification(&self, notification: Notification, _session: &SessionInfo) {
        if notification.method != "notifications/roots/list_changed" {
            return;
        }
        for member in self.federation().members.clone() {
            tokio::spawn(async move {
                if let Err(e) = member.upstream.notify("notifications/roots/list_changed", None).await {
                    tracing::debug!(server = %member.name, error = %e, "roots/list_changed not forwarded");
                }
            });
        }
    }
}
