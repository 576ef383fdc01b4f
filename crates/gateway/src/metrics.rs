//! Prometheus metrics at `/metrics` (OpenMetrics text), on by default: requests by server,
//! tool, method, outcome and decision; latency histograms; guard findings by detector and
//! action; refusals by policy and rule (limit rejections among them); upstream health and
//! restarts; the audit queue. Counted from the same [`Event`] the audit log records, so the
//! two never disagree.

use crate::audit::{Event, Recorder};
use crate::federation::Federation;
use portcullis_mcp::client::Health;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Mutex;

/// The `metrics` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `/metrics` (without authentication, like `/healthz`).
    pub enabled: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { enabled: true }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    server: String,
    tool: String,
    method: String,
    outcome: &'static str,
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    server: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    detector: String,
    action: String,
    direction: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    policy: String,
    rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabels {
    server: String,
}

type Latency = Family<LatencyLabels, Histogram, fn() -> Histogram>;

/// Distinct tools given their own label, at most: a client calling made-up names must not
/// grow the metrics without bound; the rest are counted as `other`.
const MAX_TOOLS: usize = 2_000;

/// The gateway's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Latency,
    findings: Family<FindingLabels, Counter>,
    refusals: Family<RefusalLabels, Counter>,
    limited: Family<RefusalLabels, Counter>,
    upstream_up: Family<ServerLabels, Gauge>,
    upstream_restarts: Family<ServerLabels, Gauge>,
    circuit_open: Family<ServerLabels, Gauge>,
    audit_queue: Gauge,
    audit_lost: Gauge,
    tools: Mutex<HashSet<String>>,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms to about 8 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("portcullis");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("requests", "Requests by server, tool, method, outcome and decision", requests.clone());
        let latency: Latency = Family::new_with_constructor(latency_histogram);
        registry.register(
            "request_duration_seconds",
            "Time to answer a request, gateway and upstream",
            latency.clone(),
        );
        let findings = Family::<FindingLabels, Counter>::default();
        registry.register("guard_findings", "Guard findings by detector, action and direction", findings.clone());
        let refusals = Family::<RefusalLabels, Counter>::default();
        registry.register("refusals", "Requests refused by a gateway policy, by policy and rule", refusals.clone());
        let limited = Family::<RefusalLabels, Counter>::default();
        registry.register("limit_rejections", "Requests refused by a limit, by rule", limited.clone());
        let upstream_up = Family::<ServerLabels, Gauge>::default();
        registry.register("upstream_up", "1 when the upstream is connected, 0 when it is down", upstream_up.clone());
        let upstream_restarts = Family::<ServerLabels, Gauge>::default();
        registry.register(
            "upstream_restarts",
            "Times the upstream was restarted or reconnected",
            upstream_restarts.clone(),
        );
        let circuit_open = Family::<ServerLabels, Gauge>::default();
        registry.register(
            "upstream_circuit_open",
            "1 while the upstream's circuit breaker fails calls fast (open or probing)",
            circuit_open.clone(),
        );
        let audit_queue = Gauge::default();
        registry.register("audit_queue_depth", "Audit events waiting to be written", audit_queue.clone());
        let audit_lost = Gauge::default();
        registry.register("audit_events_lost", "Audit events dropped or unwritable since start", audit_lost.clone());
        Metrics {
            registry,
            requests,
            latency,
            findings,
            refusals,
            limited,
            upstream_up,
            upstream_restarts,
            circuit_open,
            audit_queue,
            audit_lost,
            tools: Mutex::default(),
        }
    }
}

impl Metrics {
    /// Counts one exchange.
    pub fn observe(&self, event: &Event) {
        let server = event.server.clone().unwrap_or_default();
        let tool = match &event.target {
            Some(t) if event.method == "tools/call" || event.method == "prompts/get" => self.tool_label(t),
            _ => String::new(),
        };
        let labels = RequestLabels {
            server: server.clone(),
            tool,
            method: event.method.clone(),
            outcome: event.outcome,
            decision: event.decision,
        };
        self.requests.get_or_create(&labels).inc();
        let latency = LatencyLabels { server, method: event.method.clone() };
        self.latency.get_or_create(&latency).observe(event.latency_ms / 1e3);
        for d in &event.decisions {
            if d.policy == "guard" {
                let direction = d.detail.get("direction").and_then(Value::as_str).unwrap_or("").to_owned();
                for detector in d.detail.get("detectors").and_then(Value::as_array).into_iter().flatten() {
                    let detector = detector.as_str().unwrap_or("").to_owned();
                    let labels = FindingLabels { detector, action: d.action.clone(), direction: direction.clone() };
                    self.findings.get_or_create(&labels).inc();
                }
            }
            if d.action == "deny" {
                let labels = RefusalLabels { policy: d.policy.clone(), rule: d.rule.clone().unwrap_or_default() };
                if d.policy == "limits" {
                    self.limited.get_or_create(&labels).inc();
                }
                self.refusals.get_or_create(&labels).inc();
            }
        }
    }

    fn tool_label(&self, tool: &str) -> String {
        let mut tools = portcullis_mcp::peer::lock(&self.tools);
        if tools.contains(tool) {
            return tool.to_owned();
        }
        if tools.len() < MAX_TOOLS {
            tools.insert(tool.to_owned());
            return tool.to_owned();
        }
        "other".to_owned()
    }

    /// The metrics in OpenMetrics text, with upstream health and the audit queue as they are now.
    pub fn render(&self, fed: &Federation, audit: &Recorder) -> String {
        for m in &fed.members {
            let up = matches!(m.upstream.health(), Health::Ready | Health::Degraded(_)) || m.per_user_only();
            let labels = ServerLabels { server: m.name.clone() };
            self.upstream_up.get_or_create(&labels).set(i64::from(up));
            self.circuit_open.get_or_create(&labels).set(i64::from(m.breaker.state() != "closed"));
            self.upstream_restarts.get_or_create(&labels).set(i64::try_from(m.upstream.restarts()).unwrap_or(i64::MAX));
        }
        self.audit_queue.set(i64::try_from(audit.queue_depth()).unwrap_or(i64::MAX));
        self.audit_lost.set(i64::try_from(audit.lost()).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
