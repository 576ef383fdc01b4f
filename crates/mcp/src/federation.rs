//! Naming rules that let many upstreams look like one server.
//!
//! Tool and prompt names become `<prefix>__<name>`; resource URIs become
//! `<prefix>+<uri>` (a valid URI scheme, reversible by splitting at the first `+`);
//! list cursors are the gateway's own, over the merged list.

use crate::jsonrpc::{RpcError, INVALID_PARAMS};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Separates a server's prefix from a tool or prompt name.
pub const NAME_SEPARATOR: &str = "__";
/// Separates a server's prefix from a resource URI.
pub const URI_SEPARATOR: char = '+';

/// The federated name of an upstream's tool or prompt.
pub fn prefixed_name(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}{NAME_SEPARATOR}{name}")
    }
}

/// Splits a federated name into (prefix, upstream name), if it has a prefix.
pub fn split_name(name: &str) -> Option<(&str, &str)> {
    name.split_once(NAME_SEPARATOR)
}

/// The federated form of an upstream's resource URI (or URI template).
pub fn prefixed_uri(prefix: &str, uri: &str) -> String {
    if prefix.is_empty() {
        uri.to_owned()
    } else {
        format!("{prefix}{URI_SEPARATOR}{uri}")
    }
}

/// Splits a federated URI into (prefix, upstream URI), if it has a prefix.
pub fn split_uri(uri: &str) -> Option<(&str, &str)> {
    let (prefix, rest) = uri.split_once(URI_SEPARATOR)?;
    // A prefix is a plain name: this rules out `+` inside the upstream's own scheme or path.
    prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-').then_some((prefix, rest))
}

/// A gateway-issued cursor: the offset into the merged list.
pub fn encode_cursor(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("pc1:{offset}"))
}

/// Reads a cursor this gateway issued.
pub fn decode_cursor(cursor: &str) -> Result<usize, RpcError> {
    let invalid = || RpcError::new(INVALID_PARAMS, "invalid cursor: use the nextCursor value of the previous page");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = std::str::from_utf8(&bytes).map_err(|_| invalid())?;
    text.strip_prefix("pc1:").and_then(|n| n.parse().ok()).ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_uris_round_trip() {
        assert_eq!(prefixed_name("fs", "read_file"), "fs__read_file");
        assert_eq!(split_name("fs__read__file"), Some(("fs", "read__file")));
        assert_eq!(prefixed_name("", "read_file"), "read_file");
        let uri = prefixed_uri("fs", "file:///tmp/a+b.txt");
        assert_eq!(uri, "fs+file:///tmp/a+b.txt");
        assert_eq!(split_uri(&uri), Some(("fs", "file:///tmp/a+b.txt")));
        assert_eq!(split_uri("svn+ssh://host/repo").map(|p| p.0), Some("svn"));
        assert_eq!(split_uri("test://static"), None);
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_rejected() {
        assert_eq!(decode_cursor(&encode_cursor(400)).unwrap(), 400);
        assert_eq!(decode_cursor("bogus!").unwrap_err().code, INVALID_PARAMS);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("pc1:x")).unwrap_err().code, INVALID_PARAMS);
    }
}
