//! W3C Trace Context (`traceparent`, `tracestate`) as MCP carries it: in HTTP headers, and in a
//! request's `params._meta` (which also reaches stdio servers). The gateway reads a caller's
//! context from either, and hands its own to upstreams in both.

use serde_json::value::RawValue;

/// A trace context as received or to be sent; the gateway's tracing parses and checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub traceparent: String,
    pub tracestate: Option<String>,
}

/// A trace context longer than this is not one (`traceparent` is 55 characters; `tracestate`
/// at most 32 entries of up to 256).
const MAX_LEN: usize = 8 * 1024;

impl TraceContext {
    /// From the HTTP headers of a request (`traceparent` and, with it, `tracestate`).
    pub fn from_headers(headers: &axum::http::HeaderMap) -> Option<TraceContext> {
        let text = |name| headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| v.len() <= MAX_LEN);
        Some(TraceContext {
            traceparent: text("traceparent")?.to_owned(),
            tracestate: text("tracestate").map(str::to_owned),
        })
    }

    /// From `params._meta.traceparent` / `tracestate` of a JSON-RPC request.
    pub fn from_params(params: &RawValue) -> Option<TraceContext> {
        // Most requests carry none: skip the parse unless the name appears at all.
        if !params.get().contains("traceparent") {
            return None;
        }
        #[derive(serde::Deserialize)]
        struct Params {
            #[serde(rename = "_meta")]
            meta: Option<Meta>,
        }
        #[derive(serde::Deserialize)]
        struct Meta {
            traceparent: Option<String>,
            tracestate: Option<String>,
        }
        let meta = serde_json::from_str::<Params>(params.get()).ok()?.meta?;
        let traceparent = meta.traceparent.filter(|t| t.len() <= MAX_LEN)?;
        Some(TraceContext { traceparent, tracestate: meta.tracestate.filter(|t| t.len() <= MAX_LEN) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_from_headers_and_meta() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut headers = axum::http::HeaderMap::new();
        assert_eq!(TraceContext::from_headers(&headers), None);
        headers.insert("traceparent", tp.parse().unwrap());
        headers.insert("tracestate", "vendor=x".parse().unwrap());
        let want = TraceContext { traceparent: tp.into(), tracestate: Some("vendor=x".into()) };
        assert_eq!(TraceContext::from_headers(&headers), Some(want.clone()));
        let params = RawValue::from_string(format!(
            r#"{{"name":"x","_meta":{{"traceparent":"{tp}","tracestate":"vendor=x"}}}}"#
        ))
        .unwrap();
        assert_eq!(TraceContext::from_params(&params), Some(want));
        let params = RawValue::from_string(r#"{"arguments":{"q":"traceparent"}}"#.into()).unwrap();
        assert_eq!(TraceContext::from_params(&params), None);
    }
}
