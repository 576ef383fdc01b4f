//! Fixtures for 2026-07-28 multi-round-trip requests (`input_required` results): tools and a
//! prompt that ask the client for input by returning `inputRequests`, then finish when the
//! client retries with `inputResponses` (and the `requestState` it was given, sealed here so a
//! client cannot forge or alter it).

use portcullis_mcp::jsonrpc::{RpcError, INVALID_PARAMS};
use portcullis_mcp::object::RawObject;
use portcullis_mcp::seal::Sealer;
use serde_json::{json, Value};

/// Seals `requestState` so only this process can read it and any change is detected.
pub struct StateSealer {
    sealer: Sealer,
}

impl StateSealer {
    pub fn new() -> Self {
        StateSealer { sealer: Sealer::random() }
    }

    fn seal(&self, state: &Value) -> String {
        self.sealer.seal(state.to_string().as_bytes())
    }

    fn open(&self, blob: &str) -> Result<Value, RpcError> {
        let invalid = || {
            RpcError::new(INVALID_PARAMS, "Invalid or expired requestState")
                .with_data(json!({ "reason": "invalid_request_state" }))
        };
        let plain = self.sealer.open(blob).ok_or_else(invalid)?;
        serde_json::from_slice(&plain).map_err(|_| invalid())
    }
}

impl Default for StateSealer {
    fn default() -> Self {
        Self::new()
    }
}

/// What a retried request brought back.
struct Round {
    responses: serde_json::Map<String, Value>,
    state: Option<Value>,
}

impl Round {
    fn read(params: &RawObject, sealer: &StateSealer) -> Result<Round, RpcError> {
        let responses = params
            .get("inputResponses")
            .and_then(|r| serde_json::from_str::<Value>(r.get()).ok())
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default();
        let state = match params.get_str("requestState") {
            Some(blob) => Some(sealer.open(&blob)?),
            None => None,
        };
        Ok(Round { responses, state })
    }

    /// An accepted elicitation answer's content under `key`.
    fn elicited(&self, key: &str) -> Option<&serde_json::Map<String, Value>> {
        let answer = self.responses.get(key)?.as_object()?;
        (answer.get("action")? == "accept").then(|| answer.get("content")?.as_object()).flatten()
    }

    fn sampled(&self, key: &str) -> Option<String> {
        self.responses.get(key)?.pointer("/content/text")?.as_str().map(str::to_owned)
    }

    fn roots(&self, key: &str) -> Option<&Vec<Value>> {
        self.responses.get(key)?.get("roots")?.as_array()
    }

    fn step(&self) -> Option<u64> {
        self.state.as_ref()?.get("step")?.as_u64()
    }
}

fn elicit(message: &str, field: &str, kind: &str) -> Value {
    json!({ "method": "elicitation/create", "params": { "mode": "form", "message": message,
        "requestedSchema": { "type": "object", "properties": { field: { "type": kind } }, "required": [field] } } })
}

fn sample(text: &str, max_tokens: u32) -> Value {
    json!({ "method": "sampling/createMessage", "params": {
        "messages": [{ "role": "user", "content": { "type": "text", "text": text } }], "maxTokens": max_tokens } })
}

fn roots() -> Value {
    json!({ "method": "roots/list", "params": {} })
}

fn input_required(requests: Value, state: Option<String>) -> Value {
    let mut result = json!({ "resultType": "input_required", "inputRequests": requests });
    if let Some(s) = state {
        result["requestState"] = json!(s);
    }
    result
}

fn done(text: &str) -> Value {
    json!({ "resultType": "complete", "content": [{ "type": "text", "text": text }] })
}

/// The `_meta` client capabilities a request declared (the gateway passes `_meta` through).
fn declared(params: &RawObject) -> Value {
    params
        .get_object("_meta")
        .and_then(|m| m.get("io.modelcontextprotocol/clientCapabilities").map(|c| c.get().to_owned()))
        .and_then(|c| serde_json::from_str(&c).ok())
        .unwrap_or_else(|| json!({}))
}

/// Answers one of the MRTR fixture tools, or `None` if `name` is not one.
pub fn call_tool(name: &str, params: &RawObject, sealer: &StateSealer) -> Option<Result<Value, RpcError>> {
    if !name.starts_with("test_input_required_result_") {
        return None;
    }
    let round = match Round::read(params, sealer) {
        Ok(r) => r,
        Err(e) => return Some(Err(e)),
    };
    let seal = |v: Value| Some(sealer.seal(&v));
    let result = match name {
        "test_input_required_result_elicitation" => match round.elicited("user_name").and_then(|c| c.get("name")) {
            Some(n) => done(&format!("Hello, {}!", n.as_str().unwrap_or("stranger"))),
            None => input_required(json!({ "user_name": elicit("What is your name?", "name", "string") }), None),
        },
        "test_input_required_result_sampling" => match round.sampled("capital_question") {
            Some(answer) => done(&format!("The model answered: {answer}")),
            None => input_required(json!({ "capital_question": sample("What is the capital of France?", 100) }), None),
        },
        "test_input_required_result_list_roots" => match round.roots("client_roots") {
            Some(r) => done(&format!("The client has {} root(s)", r.len())),
            None => input_required(json!({ "client_roots": roots() }), None),
        },
        "test_input_required_result_request_state" | "test_input_required_result_tampered_state" => {
            match (round.step(), round.elicited("confirm")) {
                (Some(1), Some(_)) => done("state-ok: confirmed"),
                _ => input_required(
                    json!({ "confirm": elicit("Please confirm", "ok", "boolean") }),
                    seal(json!({ "tool": name, "step": 1 })),
                ),
            }
        }
        "test_input_required_result_multiple_inputs" => {
            let name = round.elicited("user_name").and_then(|c| c.get("name")).and_then(Value::as_str);
            match (round.step(), name, round.sampled("greeting"), round.roots("client_roots")) {
                (Some(1), Some(n), Some(g), Some(r)) => done(&format!("{g} {n} ({} roots)", r.len())),
                _ => input_required(
                    json!({
                        "user_name": elicit("What is your name?", "name", "string"),
                        "greeting": sample("Generate a greeting", 50),
                        "client_roots": roots(),
                    }),
                    seal(json!({ "tool": name, "step": 1 })),
                ),
            }
        }
        "test_input_required_result_multi_round" => match round.step() {
            Some(1) if round.elicited("step1").is_some() => {
                let who = round.elicited("step1").and_then(|c| c.get("name")).cloned().unwrap_or(Value::Null);
                input_required(
                    json!({ "step2": elicit("Step 2: What is your favorite color?", "color", "string") }),
                    seal(json!({ "step": 2, "name": who })),
                )
            }
            Some(2) if round.elicited("step2").is_some() => {
                let who = round.state.as_ref().and_then(|s| s.get("name")).and_then(Value::as_str).unwrap_or("someone");
                let color = round.elicited("step2").and_then(|c| c.get("color")).and_then(Value::as_str).unwrap_or("?");
                done(&format!("{who} likes {color}"))
            }
            _ => input_required(
                json!({ "step1": elicit("Step 1: What is your name?", "name", "string") }),
                seal(json!({ "step": 1 })),
            ),
        },
        "test_input_required_result_capabilities" => {
            let caps = declared(params);
            if round.responses.is_empty() {
                let mut requests = serde_json::Map::new();
                if caps.get("elicitation").is_some() {
                    requests.insert("user_name".into(), elicit("What is your name?", "name", "string"));
                }
                if caps.get("sampling").is_some() {
                    requests.insert("greeting".into(), sample("Generate a greeting", 50));
                }
                if caps.get("roots").is_some() {
                    requests.insert("client_roots".into(), roots());
                }
                if requests.is_empty() {
                    done("the client declared no capability to ask with")
                } else {
                    input_required(Value::Object(requests), None)
                }
            } else {
                done(&format!("received {} answer(s)", round.responses.len()))
            }
        }
        _ => return None,
    };
    Some(Ok(result))
}

/// `prompts/get` of the MRTR fixture prompt, or `None` for other prompts.
pub fn get_prompt(name: &str, params: &RawObject, sealer: &StateSealer) -> Option<Result<Value, RpcError>> {
    if name != "test_input_required_result_prompt" {
        return None;
    }
    let round = match Round::read(params, sealer) {
        Ok(r) => r,
        Err(e) => return Some(Err(e)),
    };
    Some(Ok(match round.elicited("user_context").and_then(|c| c.get("context")).and_then(Value::as_str) {
        Some(context) => json!({ "resultType": "complete", "messages": [{ "role": "user",
            "content": { "type": "text", "text": format!("Use this context: {context}") } }] }),
        None => input_required(
            json!({ "user_context": elicit("What context should the prompt use?", "context", "string") }),
            None,
        ),
    }))
}

/// Listings for the MRTR fixtures.
pub fn tools() -> Vec<Value> {
    let no_args = json!({ "type": "object", "properties": {} });
    [
        ("test_input_required_result_elicitation", "Asks the user's name through input_required"),
        ("test_input_required_result_sampling", "Asks the client's model through input_required"),
        ("test_input_required_result_list_roots", "Asks the client's roots through input_required"),
        ("test_input_required_result_request_state", "Carries sealed requestState across rounds"),
        ("test_input_required_result_multiple_inputs", "Asks for elicitation, sampling and roots at once"),
        ("test_input_required_result_multi_round", "Takes two rounds of input"),
        ("test_input_required_result_tampered_state", "Rejects an altered requestState"),
        ("test_input_required_result_capabilities", "Asks only with the capabilities the client declared"),
    ]
    .into_iter()
    .map(|(name, description)| json!({ "name": name, "description": description, "inputSchema": no_args }))
    .collect()
}

pub fn prompt() -> Value {
    json!({ "name": "test_input_required_result_prompt", "description": "A prompt that asks for context first" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;

    fn params(v: Value) -> RawObject {
        RawObject::parse(&RawValue::from_string(v.to_string()).unwrap(), "params").unwrap()
    }

    #[test]
    fn request_state_survives_a_round_and_tampering_is_rejected() {
        let sealer = StateSealer::new();
        let first =
            call_tool("test_input_required_result_request_state", &params(json!({})), &sealer).unwrap().unwrap();
        let state = first["requestState"].as_str().unwrap().to_owned();
        let answer = json!({ "confirm": { "action": "accept", "content": { "ok": true } } });
        let second = call_tool(
            "test_input_required_result_request_state",
            &params(json!({ "inputResponses": answer, "requestState": state })),
            &sealer,
        )
        .unwrap()
        .unwrap();
        assert_eq!(second["resultType"], "complete");
        let tampered = format!("{state}-TAMPERED");
        let err = call_tool(
            "test_input_required_result_tampered_state",
            &params(json!({ "inputResponses": answer, "requestState": tampered })),
            &sealer,
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(err.code, INVALID_PARAMS);
    }
}
