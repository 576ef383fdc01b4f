//! Fuzzes the JSON-RPC envelope parser and the field rewriting every message passes
//! through: no input may panic, and whatever parses must survive a round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_mcp::jsonrpc::{encode_notification, encode_request, encode_response, salvage_id, Message};
use portcullis_mcp::object::RawObject;

fuzz_target!(|data: &[u8]| {
    let _ = salvage_id(data);
    let Ok(message) = Message::parse(data) else { return };
    match message {
        Message::Request(req) => {
            let text = encode_request(&req.id, &req.method, req.params.as_deref());
            match Message::parse(text.as_bytes()) {
                Ok(Message::Request(again)) => {
                    assert_eq!(again.id, req.id);
                    assert_eq!(again.method, req.method);
                }
                other => panic!("a request did not round-trip: {other:?}"),
            }
            if let Ok(mut params) = RawObject::parse_params(req.params.as_deref()) {
                params.set("name", "prefix__name");
                let rewritten = params.to_raw();
                let back = RawObject::parse(&rewritten, "params").expect("rewritten params parse");
                assert_eq!(back.get_str("name").as_deref(), Some("prefix__name"));
            }
        }
        Message::Notification(n) => {
            let text = encode_notification(&n.method, n.params.as_deref());
            assert!(matches!(Message::parse(text.as_bytes()), Ok(Message::Notification(_))));
        }
        Message::Response(r) => {
            let text = encode_response(Some(&r.id), r.outcome.as_deref().map_err(|e| &**e));
            assert!(matches!(Message::parse(text.as_bytes()), Ok(Message::Response(_))));
        }
    }
});
