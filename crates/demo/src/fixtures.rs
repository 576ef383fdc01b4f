//! Static fixture data: tool, resource and prompt listings and elicitation forms, with the
//! names and values the MCP conformance suite's server scenarios look for.

use portcullis_mcp::object::RawObject;
use serde_json::{json, Value};

/// A 1x1 red PNG.
pub const PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
/// A minimal WAV file.
pub const WAV: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

fn no_args() -> Value {
    json!({ "type": "object", "properties": {} })
}

fn tool(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "description": description, "inputSchema": schema })
}

fn string_args(names: &[(&str, &str)]) -> Value {
    let props: serde_json::Map<String, Value> =
        names.iter().map(|(n, d)| (n.to_string(), json!({ "type": "string", "description": d }))).collect();
    let required: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
    json!({ "type": "object", "properties": props, "required": required })
}

pub fn tools() -> Value {
    Value::Array(vec![
        // A harmless tool without arguments comes first: some scenarios call tools[0] with {}.
        tool("test_simple_text", "Returns a simple text response", no_args()),
        tool("echo", "Echoes the message back", string_args(&[("message", "Text to echo back")])),
        tool("test_image_content", "Returns an image", no_args()),
        tool("test_audio_content", "Returns an audio clip", no_args()),
        tool("test_embedded_resource", "Returns an embedded resource", no_args()),
        tool("test_multiple_content_types", "Returns text, an image and a resource", no_args()),
        tool("test_error_handling", "Always returns a tool error", no_args()),
        tool("test_tool_with_progress", "Reports progress three times", no_args()),
        tool("test_tool_with_logging", "Sends three log messages", no_args()),
        tool(
            "test_sampling",
            "Asks the client's model to answer a prompt",
            string_args(&[("prompt", "The prompt to send")]),
        ),
        tool("test_elicitation", "Asks the user for information", string_args(&[("message", "What to ask the user")])),
        tool("test_elicitation_sep1034_defaults", "Elicitation form with default values", no_args()),
        tool("test_elicitation_sep1330_enums", "Elicitation form with enum fields", no_args()),
        tool("test_reconnection", "Completes after the client reconnects", no_args()),
        tool("test_missing_capability", "Needs sampling: asks the client's model", no_args()),
        tool("test_streaming_elicitation", "Asks the user for their name", no_args()),
        tool("test_logging_tool", "Sends one log message", no_args()),
        tool("test_update_resource", "Announces an update of test://watched-resource to its subscribers", no_args()),
        tool("test_trigger_prompt_change", "Announces prompts/list_changed", no_args()),
        tool("test_trigger_tool_change", "Adds or removes dynamic_tool and announces the change", no_args()),
        tool(
            "sleep",
            "Waits before answering (for timeout and cancellation tests)",
            json!({ "type": "object", "properties": { "ms": { "type": "integer", "minimum": 0 } } }),
        ),
        tool(
            "test_header_param",
            "Echoes a message that 2026-07-28 clients mirror in the Mcp-Param-Message header",
            json!({ "type": "object", "properties": { "message": { "type": "string", "x-mcp-header": "Message" } },
                    "required": ["message"] }),
        ),
        tool("exit_process", "Exits the server process (for restart tests)", no_args()),
        tool("json_schema_2020_12_tool", "Tool with JSON Schema 2020-12 features", json_schema_2020_12()),
    ])
}

fn json_schema_2020_12() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": { "address": { "$anchor": "addressDef", "type": "object",
            "properties": { "street": { "type": "string" }, "city": { "type": "string" } } } },
        "properties": {
            "name": { "type": "string" },
            "address": { "$ref": "#/$defs/address" },
            "contactMethod": { "type": "string", "enum": ["phone", "email"] },
            "phone": { "type": "string" },
            "email": { "type": "string" }
        },
        "allOf": [{ "anyOf": [{ "required": ["phone"] }, { "required": ["email"] }] }],
        "if": { "properties": { "contactMethod": { "const": "phone" } }, "required": ["contactMethod"] },
        "then": { "required": ["phone"] },
        "else": { "required": ["email"] },
        "additionalProperties": false
    })
}

pub fn resources() -> Value {
    json!([
        { "uri": "test://static-text", "name": "static-text", "title": "Static text",
          "description": "A static text resource", "mimeType": "text/plain" },
        { "uri": "test://static-binary", "name": "static-binary", "title": "Static binary",
          "description": "A static binary resource (PNG)", "mimeType": "image/png" },
        { "uri": "test://watched-resource", "name": "watched-resource", "title": "Watched resource",
          "description": "A resource clients can subscribe to", "mimeType": "text/plain" }
    ])
}

pub fn resource_templates() -> Value {
    json!([{ "uriTemplate": "test://template/{id}/data", "name": "template-data",
             "description": "Data for an id", "mimeType": "application/json" }])
}

pub fn prompts() -> Value {
    json!([
        { "name": "test_simple_prompt", "description": "A prompt without arguments" },
        { "name": "test_prompt_with_arguments", "description": "A prompt with two required arguments",
          "arguments": [ { "name": "arg1", "description": "First argument", "required": true },
                         { "name": "arg2", "description": "Second argument", "required": true } ] },
        { "name": "test_prompt_with_embedded_resource", "description": "A prompt that embeds a resource",
          "arguments": [ { "name": "resourceUri", "description": "URI of the resource to embed", "required": true } ] },
        { "name": "test_prompt_with_image", "description": "A prompt with an image" }
    ])
}

/// Completions for `test_prompt_with_arguments`' arguments: fixed candidates by prefix.
pub fn complete(params: &RawObject) -> Value {
    const CANDIDATES: [&str; 4] = ["test", "testing", "testValue1", "testValue2"];
    let value = params.get_object("argument").and_then(|a| a.get_str("value")).unwrap_or_default();
    let values: Vec<&str> = CANDIDATES.iter().copied().filter(|c| c.starts_with(&value)).collect();
    json!({ "completion": { "values": values, "total": values.len(), "hasMore": false } })
}

pub fn sep1034_request() -> Value {
    json!({ "message": "Please review and update the form fields with defaults",
        "requestedSchema": { "type": "object", "properties": {
            "name": { "type": "string", "description": "Name", "default": "John Doe" },
            "age": { "type": "integer", "description": "Age", "default": 30 },
            "score": { "type": "number", "description": "Score", "default": 95.5 },
            "status": { "type": "string", "description": "Status", "enum": ["active", "inactive", "pending"], "default": "active" },
            "verified": { "type": "boolean", "description": "Verified", "default": true }
        }, "required": [] } })
}

pub fn sep1330_request() -> Value {
    json!({ "message": "Please select options from the enum fields",
        "requestedSchema": { "type": "object", "properties": {
            "untitledSingle": { "type": "string", "enum": ["option1", "option2", "option3"] },
            "titledSingle": { "type": "string", "oneOf": [
                { "const": "value1", "title": "First Option" },
                { "const": "value2", "title": "Second Option" },
                { "const": "value3", "title": "Third Option" } ] },
            "legacyEnum": { "type": "string", "enum": ["opt1", "opt2", "opt3"],
                "enumNames": ["Option One", "Option Two", "Option Three"] },
            "untitledMulti": { "type": "array", "minItems": 1, "maxItems": 3,
                "items": { "type": "string", "enum": ["option1", "option2", "option3"] } },
            "titledMulti": { "type": "array", "minItems": 1, "maxItems": 3, "items": { "anyOf": [
                { "const": "value1", "title": "First Choice" },
                { "const": "value2", "title": "Second Choice" },
                { "const": "value3", "title": "Third Choice" } ] } }
        }, "required": [] } })
}
