//! MCP protocol revisions and the two eras the gateway speaks.

/// Revisions that use `initialize` and `Mcp-Session-Id` (oldest first).
pub const LEGACY_VERSIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// The newest legacy revision; what the gateway offers upstreams and legacy clients by default.
pub const LATEST_LEGACY: &str = "2025-11-25";
/// The stateless revision: no `initialize`, `server/discover`, per-request metadata.
pub const MODERN_VERSION: &str = "2026-07-28";

/// Which family of revisions a peer speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    Legacy,
    Modern,
}

/// The era of a revision string, if the gateway knows it.
pub fn era_of(version: &str) -> Option<Era> {
    if version == MODERN_VERSION {
        Some(Era::Modern)
    } else if LEGACY_VERSIONS.contains(&version) {
        Some(Era::Legacy)
    } else {
        None
    }
}

/// Picks the legacy revision to answer an `initialize` with: the client's own if we
/// support it, otherwise our newest (the client then decides whether to continue).
pub fn negotiate_legacy(requested: Option<&str>) -> &'static str {
    requested.and_then(|r| LEGACY_VERSIONS.iter().find(|v| **v == r)).copied().unwrap_or(LATEST_LEGACY)
}

/// Every revision the gateway accepts, newest first (for error data and discovery).
pub fn supported_versions() -> Vec<&'static str> {
    std::iter::once(MODERN_VERSION).chain(LEGACY_VERSIONS.iter().rev().copied()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_versions() {
        assert_eq!(negotiate_legacy(Some("2025-03-26")), "2025-03-26");
        assert_eq!(negotiate_legacy(Some("1999-01-01")), LATEST_LEGACY);
        assert_eq!(negotiate_legacy(None), LATEST_LEGACY);
        assert_eq!(era_of(MODERN_VERSION), Some(Era::Modern));
        assert_eq!(era_of("2024-11-05"), Some(Era::Legacy));
        assert_eq!(era_of("nope"), None);
    }
}
