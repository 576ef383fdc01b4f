//! OpenTelemetry traces, received by a real OTLP collector in the test (the official protobuf
//! service over gRPC, and OTLP/HTTP): a caller's trace continues through the gateway, each
//! exchange has its stage spans (authorize, limits, guard per direction and family, the
//! upstream call), the upstream receives the context in its `traceparent` header and in
//! `_meta`, refusals are error spans, and the audit event names the trace.

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode, Span};
use portcullis_demo::{http_app, DemoOptions};
use portcullis_testkit::{Client, Gateway};
use prost::Message;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// Spans as the collector received them, with their resource's `service.name`.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<(String, Span)>>>);

impl Collector {
    fn take(&self, request: ExportTraceServiceRequest) {
        let mut spans = self.0.lock().unwrap();
        for resource in request.resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
                    AnyValue::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for scope in resource.scope_spans {
                spans.extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
            }
        }
    }

    fn spans(&self) -> Vec<(String, Span)> {
        self.0.lock().unwrap().clone()
    }
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.take(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

async fn listener() -> (tokio::net::TcpListener, u16) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

async fn grpc_collector(collector: Collector) -> u16 {
    let (listener, port) = listener().await;
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let server = tonic::transport::Server::builder().add_service(TraceServiceServer::new(collector));
    tokio::spawn(server.serve_with_incoming(incoming));
    port
}

async fn http_collector(collector: Collector) -> u16 {
    let (listener, port) = listener().await;
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| async move {
            collector.take(ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body"));
            ([("content-type", "application/x-protobuf")], ExportTraceServiceResponse::default().encode_to_vec())
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// What the upstream (the demo server over HTTP) received: each request's `traceparent`
/// header and JSON body.
type Seen = Arc<Mutex<Vec<(Option<String>, Value)>>>;

async fn upstream(seen: Seen) -> u16 {
    let record = move |request: axum::extract::Request, next: axum::middleware::Next| {
        let seen = seen.clone();
        async move {
            let (parts, body) = request.into_parts();
            let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
            let header = parts.headers.get("traceparent").map(|v| v.to_str().unwrap().to_owned());
            seen.lock().unwrap().push((header, serde_json::from_slice(&bytes).unwrap_or(Value::Null)));
            next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))).await
        }
    };
    let app = http_app(&DemoOptions::default()).layer(axum::middleware::from_fn(record));
    let (listener, port) = listener().await;
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

fn config(upstream: u16, endpoint: &str, protocol: &str) -> String {
    format!(
        r#"
traces: {{ endpoint: "{endpoint}", protocol: {protocol} }}
servers:
  demo:
    http: {{ url: "http://127.0.0.1:{upstream}/mcp" }}
access:
  - allow: {{ tools: "demo__*" }}
limits:
  - {{ id: per-caller, rate: 100/s }}
"#
    )
}

fn named<'a>(spans: &'a [(String, Span)], name: &str) -> Vec<&'a Span> {
    spans.iter().map(|(_, s)| s).filter(|s| s.name == name).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| match a.value.as_ref()?.value.as_ref()? {
        AnyValue::StringValue(s) => Some(s.clone()),
        AnyValue::IntValue(i) => Some(i.to_string()),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_trace_continues_through_every_stage_to_the_upstream_over_grpc() {
    let collector = Collector::default();
    let grpc = grpc_collector(collector.clone()).await;
    let seen: Seen = Arc::default();
    let upstream_port = upstream(seen.clone()).await;
    let (gw, path) =
        Gateway::start_file(&config(upstream_port, &format!("http://127.0.0.1:{grpc}"), "grpc"), BIN).await;

    // The caller's context arrives as an HTTP header.
    let mut c = Client::new(&gw.url);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("traceparent", format!("00-{TRACE}-{PARENT}-01").parse().unwrap());
    c.http = reqwest::Client::builder().default_headers(headers).build().unwrap();
    let mut c = c.initialized(json!({})).await;
    let call = json!({ "name": "demo__echo", "arguments": { "message": "hello" } });
    let reply = c.request("tools/call", call).await;
    assert_eq!(reply.result()["content"][0]["text"], "hello", "{}", reply.raw);
    // A secret in the arguments: the guard blocks the call.
    let secret = json!({ "name": "demo__echo", "arguments": { "message": "deploy with ghp_R4nd0mT0k3nV4lu3F0rT35t1ngPurp0s3s12" } });
    let blocked = c.request("tools/call", secret).await;
    assert!(blocked.raw.contains("-32002"), "{}", blocked.raw);
    gw.server.shutdown().await.unwrap();

    let spans = collector.spans();
    assert!(spans.iter().all(|(service, _)| service == "portcullis"));
    let exchanges = named(&spans, "tools/call demo__echo");
    assert_eq!(exchanges.len(), 2, "{:?}", spans.iter().map(|(_, s)| &s.name).collect::<Vec<_>>());
    let (ok, refused) = if exchanges[0].status.as_ref().is_none_or(|s| s.code != StatusCode::Error as i32) {
        (exchanges[0], exchanges[1])
    } else {
        (exchanges[1], exchanges[0])
    };
    for exchange in [ok, refused] {
        assert_eq!((hex(&exchange.trace_id), hex(&exchange.parent_span_id)), (TRACE.to_owned(), PARENT.to_owned()));
        assert_eq!(exchange.kind, SpanKind::Server as i32);
        assert_eq!(attribute(exchange, "gen_ai.tool.name").as_deref(), Some("demo__echo"));
    }
    assert_eq!(attribute(refused, "rpc.jsonrpc.error_code").as_deref(), Some("-32002"));
    assert_eq!(attribute(ok, "portcullis.server").as_deref(), Some("demo"));

    // The stages of the call that went through, each a child of its exchange.
    let children = |parent: &Span| -> Vec<&Span> {
        spans.iter().map(|(_, s)| s).filter(|s| s.parent_span_id == parent.span_id).collect()
    };
    let mut stages: Vec<&str> = children(ok).iter().map(|s| s.name.as_str()).collect();
    stages.sort_unstable();
    assert_eq!(stages, ["authorize", "guard request", "guard response", "limits", "tools/call demo"]);
    let guard_request = children(ok).into_iter().find(|s| s.name == "guard request").unwrap();
    let families: Vec<&str> = children(guard_request).iter().map(|s| s.name.as_str()).collect();
    for family in ["guard.secret", "guard.pii", "guard.injection"] {
        assert!(families.contains(&family), "{families:?}");
    }
    let blocked_guard = children(refused).into_iter().find(|s| s.name == "guard request").unwrap();
    assert_eq!(blocked_guard.status.as_ref().map(|s| s.code), Some(StatusCode::Error as i32));
    let secret_family = children(blocked_guard).into_iter().find(|s| s.name == "guard.secret").unwrap();
    assert_eq!(attribute(secret_family, "portcullis.guard.findings").as_deref(), Some("1"));
    assert!(!children(refused).iter().any(|s| s.name == "tools/call demo"), "a blocked call never goes upstream");

    // The upstream got the upstream span's context, in the header and in `_meta`.
    let upstream_span = children(ok).into_iter().find(|s| s.name == "tools/call demo").unwrap();
    assert_eq!(upstream_span.kind, SpanKind::Client as i32);
    let want = format!("00-{TRACE}-{}-01", hex(&upstream_span.span_id));
    let seen = seen.lock().unwrap().clone();
    let (header, body) = seen.iter().find(|(_, b)| b["method"] == "tools/call").expect("the call reached the upstream");
    assert_eq!(header.as_deref(), Some(want.as_str()));
    assert_eq!(body["params"]["_meta"]["traceparent"], want);

    // The audit event names the trace.
    let out = std::process::Command::new(BIN)
        .args(["audit", "--json", "--tool", "demo__echo", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let events: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e["trace_id"] == TRACE), "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_over_http_and_a_context_in_meta_and_unsampled_traces_are_passed_on_not_sent() {
    let collector = Collector::default();
    let port = http_collector(collector.clone()).await;
    let seen: Seen = Arc::default();
    let upstream_port = upstream(seen.clone()).await;
    let gw = Gateway::start(&config(upstream_port, &format!("http://127.0.0.1:{port}"), "http"), BIN).await;
    let mut c = Client::connect(&gw.url, json!({})).await;
    // The context in `_meta`, as MCP clients without HTTP headers (stdio) send it.
    let sampled = json!({ "name": "demo__echo", "arguments": { "message": "one" },
        "_meta": { "traceparent": format!("00-{TRACE}-{PARENT}-01") } });
    assert_eq!(c.request("tools/call", sampled).await.result()["content"][0]["text"], "one");
    // The caller decided not to sample this trace: nothing is exported, the context still
    // goes upstream.
    let other = "0af7651916cd43dd8448eb211c80319c";
    let unsampled = json!({ "name": "demo__echo", "arguments": { "message": "two" },
        "_meta": { "traceparent": format!("00-{other}-b7ad6b7169203331-00") } });
    assert_eq!(c.request("tools/call", unsampled).await.result()["content"][0]["text"], "two");
    gw.server.shutdown().await.unwrap();

    let spans = collector.spans();
    let exchange = named(&spans, "tools/call demo__echo");
    assert_eq!(exchange.len(), 1, "only the sampled trace is exported");
    assert_eq!((hex(&exchange[0].trace_id), hex(&exchange[0].parent_span_id)), (TRACE.to_owned(), PARENT.to_owned()));
    assert!(spans.iter().all(|(_, s)| hex(&s.trace_id) == TRACE || s.parent_span_id.is_empty()));
    let seen = seen.lock().unwrap().clone();
    let calls: Vec<&(Option<String>, Value)> = seen.iter().filter(|(_, b)| b["method"] == "tools/call").collect();
    assert_eq!(calls.len(), 2);
    let unsampled_header = calls[1].0.as_deref().unwrap();
    assert!(
        unsampled_header.starts_with(&format!("00-{other}-")) && unsampled_header.ends_with("-00"),
        "{unsampled_header}"
    );
}
