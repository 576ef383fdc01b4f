//! OpenTelemetry traces over OTLP (gRPC or HTTP): a server span per exchange, child spans for
//! the pipeline's stages (authorization, limits, each guard family, the upstream call), and the
//! W3C trace context carried through: a caller's `traceparent` (HTTP header or `_meta`) is the
//! parent of the exchange, and the upstream call's context goes to the upstream in `_meta`
//! and, over HTTP, in the `traceparent` header.
//!
//! The exchange's context lives in a task-local, so stages start their spans with a call
//! and no plumbing; outside an exchange (or with traces off) they cost a task-local lookup.

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use portcullis_guard::timing::FamilyTimes;
use portcullis_mcp::object::RawObject;
use portcullis_mcp::trace_context::TraceContext;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

/// The `traces` section. Traces are off until an endpoint is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TracesConfig {
    /// The OTLP receiver: `http://collector:4317` for gRPC, `http://collector:4318` for HTTP
    /// (`/v1/traces` is added when the path is empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    pub protocol: OtlpProtocol,
    /// The share of new traces kept, 0 to 1; a caller's own sampling decision is followed.
    pub sample: f64,
    /// `service.name` of the spans.
    pub service_name: String,
    /// Sent with every export (e.g. the collector's API key).
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub headers: HashMap<String, String>,
    /// How long one export may take.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub timeout: Duration,
}

impl Default for TracesConfig {
    fn default() -> Self {
        TracesConfig {
            endpoint: None,
            protocol: OtlpProtocol::Grpc,
            sample: 1.0,
            service_name: "portcullis".into(),
            headers: HashMap::new(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// OTLP's two transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OtlpProtocol {
    /// OTLP/gRPC (port 4317).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (port 4318).
    Http,
}

impl TracesConfig {
    /// Problems with the section: (field, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(endpoint) = &self.endpoint {
            match url::Url::parse(endpoint) {
                Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
                Ok(u) => out.push(("traces.endpoint".into(), format!("scheme `{}` is not http or https", u.scheme()))),
                Err(e) => out.push(("traces.endpoint".into(), format!("`{endpoint}` is not a valid URL ({e})"))),
            }
        }
        if !(0.0..=1.0).contains(&self.sample) {
            out.push(("traces.sample".into(), "must be between 0 and 1 (the share of traces kept)".into()));
        }
        if self.timeout.is_zero() {
            out.push(("traces.timeout".into(), "must be more than 0s".into()));
        }
        out
    }
}

/// The gateway's tracer; off without an endpoint.
pub struct Traces {
    provider: Option<SdkTracerProvider>,
    tracer: Option<SdkTracer>,
}

impl Traces {
    pub fn off() -> Traces {
        Traces { provider: None, tracer: None }
    }

    /// Starts exporting to the configured endpoint (from inside the runtime: exports run on
    /// it). A bad endpoint is a config error; an unreachable one only loses spans (logged by
    /// the exporter), never calls.
    pub fn start(config: &TracesConfig, instance: &str) -> Result<Traces, String> {
        let Some(endpoint) = &config.endpoint else { return Ok(Traces::off()) };
        let exporter = match config.protocol {
            OtlpProtocol::Grpc => {
                let mut metadata = tonic::metadata::MetadataMap::new();
                for (k, v) in &config.headers {
                    let key = tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
                        .map_err(|_| format!("traces.headers: `{k}` is not a valid header name"))?;
                    let value = v.parse().map_err(|_| format!("traces.headers: the value of `{k}` is not valid"))?;
                    metadata.insert(key, value);
                }
                opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(endpoint)
                    .with_timeout(config.timeout)
                    .with_metadata(metadata)
                    .build()
            }
            OtlpProtocol::Http => {
                let mut url = url::Url::parse(endpoint).map_err(|e| format!("traces.endpoint: {e}"))?;
                if url.path() == "/" || url.path().is_empty() {
                    url.set_path("/v1/traces");
                }
                let client = reqwest::Client::builder().timeout(config.timeout).build().unwrap_or_default();
                opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_endpoint(url.as_str())
                    .with_timeout(config.timeout)
                    .with_http_client(client)
                    .with_headers(config.headers.clone())
                    .build()
            }
        }
        .map_err(|e| format!("cannot export traces to {endpoint}: {e}"))?;
        let processor = opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
            exporter,
            opentelemetry_sdk::runtime::Tokio,
        )
        .build();
        let resource = Resource::builder()
            .with_service_name(config.service_name.clone())
            .with_attributes([
                KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
                KeyValue::new("service.instance.id", instance.to_owned()),
            ])
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sample))))
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("portcullis");
        Ok(Traces { provider: Some(provider), tracer: Some(tracer) })
    }

    /// Starts an exchange's server span, a child of the caller's context when it sent one;
    /// `describe` (its name and attributes) runs only when traces are on.
    pub fn exchange(
        &self,
        caller: Option<TraceContext>,
        describe: impl FnOnce() -> (String, Vec<KeyValue>),
    ) -> Exchange {
        let Some(tracer) = &self.tracer else { return Exchange { cx: None, caller } };
        let (name, attributes) = describe();
        let parent = caller.as_ref().map(extract).unwrap_or_default();
        let span = tracer
            .span_builder(name)
            .with_kind(SpanKind::Server)
            .with_attributes(attributes)
            .start_with_context(tracer, &parent);
        Exchange { cx: Some((tracer.clone(), parent.with_span(span))), caller: None }
    }

    /// Sends the spans still queued and stops exporting.
    pub async fn shutdown(&self) {
        if let Some(provider) = self.provider.clone() {
            // The batch processor's shutdown waits on its task: not from a runtime thread.
            let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            if let Ok(Err(e)) = done {
                tracing::warn!(error = %e, "traces: the last spans could not be sent");
            }
        }
    }
}

/// One exchange's trace: its span (when traces are on), or the caller's context to pass on.
#[derive(Clone)]
pub struct Exchange {
    cx: Option<(SdkTracer, Context)>,
    caller: Option<TraceContext>,
}

impl Exchange {
    /// The trace id, when the exchange is part of a trace.
    pub fn trace_id(&self) -> Option<String> {
        let cx = match (&self.cx, &self.caller) {
            (Some((_, cx)), _) => cx.clone(),
            (None, Some(caller)) => extract(caller),
            (None, None) => return None,
        };
        let span = cx.span();
        let context = span.span_context();
        context.is_valid().then(|| context.trace_id().to_string())
    }

    /// Ends the exchange's span with its outcome: `describe` gives its last attributes and,
    /// for a failure, why (run only when traces are on).
    pub fn end(&self, describe: impl FnOnce() -> (Vec<KeyValue>, Option<String>)) {
        if let Some((_, cx)) = &self.cx {
            let (attributes, error) = describe();
            let span = cx.span();
            span.set_attributes(attributes);
            if let Some(why) = error {
                span.set_status(Status::error(why));
            }
            span.end();
        }
    }
}

tokio::task_local! {
    /// The exchange being handled on this task.
    static CURRENT: Exchange;
}

/// Runs an exchange's work with its trace as the current one.
pub async fn within<F: std::future::Future>(exchange: Exchange, work: F) -> (F::Output, Exchange) {
    CURRENT
        .scope(exchange, async {
            let out = work.await;
            (out, CURRENT.with(Exchange::clone))
        })
        .await
}

/// A stage's span, ended when dropped.
#[must_use = "the span ends when this is dropped"]
pub struct Stage(Option<Context>);

impl Stage {
    /// Marks the stage as failed (a refusal, an upstream error).
    pub fn fail(&self, why: impl Into<String>) {
        if let Some(cx) = &self.0 {
            cx.span().set_status(Status::error(why.into()));
        }
    }

    /// Sets an attribute; `value` is computed only when the span is recorded.
    pub fn set<V: Into<opentelemetry::Value>>(&self, key: &'static str, value: impl FnOnce() -> V) {
        if let Some(cx) = &self.0 {
            cx.span().set_attribute(KeyValue::new(key, value()));
        }
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        if let Some(cx) = &self.0 {
            cx.span().end();
        }
    }
}

/// Starts a child span of the current exchange (nothing when it is not being recorded).
pub fn stage(name: &'static str) -> Stage {
    stage_of_kind(SpanKind::Internal, || (name.into(), Vec::new()))
}

/// A child span of the current exchange; `describe` (its name and attributes) runs only when
/// the exchange is recorded.
fn stage_of_kind(kind: SpanKind, describe: impl FnOnce() -> (Cow<'static, str>, Vec<KeyValue>)) -> Stage {
    let cx = CURRENT
        .try_with(|e| {
            let (tracer, parent) = e.cx.as_ref()?;
            parent.span().is_recording().then(|| {
                let (name, attributes) = describe();
                let span = tracer
                    .span_builder(name)
                    .with_kind(kind)
                    .with_attributes(attributes)
                    .start_with_context(tracer, parent);
                parent.with_span(span)
            })
        })
        .ok()
        .flatten();
    Stage(cx)
}

/// Whether the current exchange is being recorded (worth timing the guard's families).
pub fn recording() -> bool {
    CURRENT.try_with(|e| e.cx.as_ref().is_some_and(|(_, cx)| cx.span().is_recording())).unwrap_or(false)
}

/// The span of a call to an upstream, and the trace context to send it: the call's own, or
/// (traces off) the caller's, passed on.
pub fn upstream(server: &str, method: &str) -> (Stage, Option<TraceContext>) {
    let stage = stage_of_kind(SpanKind::Client, || {
        let attributes = vec![
            KeyValue::new("mcp.method.name", method.to_owned()),
            KeyValue::new("portcullis.server", server.to_owned()),
        ];
        (format!("{method} {server}").into(), attributes)
    });
    let context = match &stage.0 {
        Some(cx) => Some(inject(cx)),
        None => CURRENT
            .try_with(|e| match &e.cx {
                Some((_, cx)) if cx.span().span_context().is_valid() => Some(inject(cx)),
                Some(_) => None,
                None => e.caller.clone(),
            })
            .ok()
            .flatten(),
    };
    (stage, context.filter(|c| !c.traceparent.is_empty()))
}

/// Sets `_meta.traceparent` (and `tracestate`) of a request's params.
pub fn put_in_meta(params: &mut RawObject, context: &TraceContext) {
    let mut meta = params.get_object("_meta").unwrap_or_default();
    meta.set("traceparent", &context.traceparent);
    match &context.tracestate {
        Some(state) => meta.set("tracestate", state),
        None => {
            meta.remove("tracestate");
        }
    }
    params.set_raw("_meta", meta.to_raw());
}

/// One span per guard family that ran, under `parent`: each family's time summed over the
/// message's texts, placed from the inspection's start.
pub fn guard_families(parent: &Stage, started: SystemTime, times: &FamilyTimes) {
    let Some(parent) = &parent.0 else { return };
    CURRENT
        .try_with(|e| {
            let Some((tracer, _)) = &e.cx else { return };
            for (family, spent, findings, texts) in times.iter() {
                let mut span = tracer
                    .span_builder(format!("guard.{family}"))
                    .with_start_time(started)
                    .with_attributes([
                        KeyValue::new("portcullis.guard.findings", i64::from(findings)),
                        KeyValue::new("portcullis.guard.texts", i64::from(texts)),
                    ])
                    .start_with_context(tracer, parent);
                span.end_with_timestamp(started + spent);
            }
        })
        .ok();
}

fn extract(caller: &TraceContext) -> Context {
    let mut carrier = HashMap::from([("traceparent".to_owned(), caller.traceparent.clone())]);
    if let Some(state) = &caller.tracestate {
        carrier.insert("tracestate".to_owned(), state.clone());
    }
    TraceContextPropagator::new().extract(&carrier)
}

fn inject(cx: &Context) -> TraceContext {
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(cx, &mut carrier);
    TraceContext {
        traceparent: carrier.remove("traceparent").unwrap_or_default(),
        tracestate: carrier.remove("tracestate").filter(|s| !s.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_are_named() {
        let config = TracesConfig { endpoint: Some("ftp://collector".into()), sample: 1.5, ..TracesConfig::default() };
        let fields: Vec<String> = config.problems().into_iter().map(|(field, _)| field).collect();
        assert_eq!(fields, ["traces.endpoint", "traces.sample"]);
        assert!(TracesConfig::default().problems().is_empty());
    }

    #[test]
    fn a_context_goes_into_meta_beside_what_is_there() {
        let mut params = RawObject::default();
        params.set("_meta", &serde_json::json!({ "progressToken": 7, "tracestate": "stale=1" }));
        let context = TraceContext {
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
            tracestate: None,
        };
        put_in_meta(&mut params, &context);
        let meta: serde_json::Value = serde_json::from_str(params.get("_meta").unwrap().get()).unwrap();
        assert_eq!(meta, serde_json::json!({ "progressToken": 7, "traceparent": context.traceparent }));
        assert_eq!(inject(&extract(&context)).traceparent, context.traceparent, "read and written back unchanged");
    }
}
