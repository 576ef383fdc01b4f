//! Rewriting single fields of a JSON object while every other field stays byte-exact.
//!
//! The gateway must change a handful of fields (a tool's `name`, a resource `uri`, a
//! `cursor`, a `progressToken`); everything else in the object is kept as the raw text
//! the peer sent, in its original order.

use crate::jsonrpc::{to_raw, RpcError, INVALID_PARAMS};
use indexmap::IndexMap;
use serde::Serialize;
use serde_json::value::RawValue;

/// A JSON object whose values are kept as raw JSON text.
#[derive(Debug, Default, Clone)]
pub struct RawObject(pub IndexMap<String, Box<RawValue>>);

impl RawObject {
    /// Parses a raw JSON object; `what` names it in the error (e.g. "params").
    pub fn parse(raw: &RawValue, what: &str) -> Result<Self, RpcError> {
        serde_json::from_str(raw.get())
            .map(RawObject)
            .map_err(|e| RpcError::new(INVALID_PARAMS, format!("invalid params: {what} must be an object ({e})")))
    }

    /// Parses optional params; absent params are an empty object.
    pub fn parse_params(raw: Option<&RawValue>) -> Result<Self, RpcError> {
        match raw {
            Some(raw) => Self::parse(raw, "params"),
            None => Ok(Self::default()),
        }
    }

    pub fn get(&self, key: &str) -> Option<&RawValue> {
        self.0.get(key).map(|b| &**b)
    }

    /// The field as a string, if it is one.
    pub fn get_str(&self, key: &str) -> Option<String> {
        self.get(key).and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
    }

    /// The field as a string; an error naming the field if it is missing or not a string.
    pub fn require_str(&self, key: &str) -> Result<String, RpcError> {
        self.get_str(key)
            .ok_or_else(|| RpcError::new(INVALID_PARAMS, format!("invalid params: \"{key}\" must be a string")))
    }

    /// The field as a nested raw object.
    pub fn get_object(&self, key: &str) -> Option<RawObject> {
        self.get(key).and_then(|raw| serde_json::from_str(raw.get()).ok().map(RawObject))
    }

    /// Replaces (or adds) a field, keeping its position if it existed.
    pub fn set<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) {
        self.0.insert(key.to_owned(), to_raw(value));
    }

    pub fn set_raw(&mut self, key: &str, value: Box<RawValue>) {
        self.0.insert(key.to_owned(), value);
    }

    pub fn remove(&mut self, key: &str) -> Option<Box<RawValue>> {
        self.0.shift_remove(key)
    }

    /// A hash of the object's keys and raw values, without serializing it: tells one
    /// version of a definition from another.
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for (k, v) in &self.0 {
            k.hash(&mut h);
            v.get().hash(&mut h);
        }
        h.finish()
    }

    pub fn to_raw(&self) -> Box<RawValue> {
        to_raw(&self.0)
    }

    /// Parses the array under `key` into raw objects (e.g. the `tools` of a list result).
    pub fn get_array(&self, key: &str) -> Result<Vec<RawObject>, RpcError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(raw) => serde_json::from_str::<Vec<IndexMap<String, Box<RawValue>>>>(raw.get())
                .map(|v| v.into_iter().map(RawObject).collect())
                .map_err(|e| RpcError::new(INVALID_PARAMS, format!("\"{key}\" must be an array of objects ({e})"))),
        }
    }
}

impl Serialize for RawObject {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_one_field_and_keeps_the_rest_verbatim() {
        let raw =
            RawValue::from_string(r#"{"name":"echo","arguments":{"b" : 2,"a":1.50},"x-vendor":[1, 2]}"#.to_owned())
                .unwrap();
        let mut obj = RawObject::parse(&raw, "params").unwrap();
        assert_eq!(obj.get_str("name").as_deref(), Some("echo"));
        obj.set("name", "demo__echo");
        assert_eq!(obj.to_raw().get(), r#"{"name":"demo__echo","arguments":{"b" : 2,"a":1.50},"x-vendor":[1, 2]}"#);
    }

    #[test]
    fn missing_params_are_an_empty_object_and_bad_ones_an_error() {
        assert!(RawObject::parse_params(None).unwrap().0.is_empty());
        let raw = RawValue::from_string("[1]".to_owned()).unwrap();
        assert_eq!(RawObject::parse_params(Some(&raw)).unwrap_err().code, INVALID_PARAMS);
        let raw = RawValue::from_string(r#"{"name":5}"#.to_owned()).unwrap();
        let obj = RawObject::parse(&raw, "params").unwrap();
        assert!(obj.require_str("name").unwrap_err().message.contains("\"name\""));
    }
}
