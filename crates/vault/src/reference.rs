//! `secret:NAME` references: how a config names a vault secret instead of holding its value.

/// What a reference starts with.
pub const PREFIX: &str = "secret:";

/// The secret a config value refers to, if it is a reference (`secret:NAME`).
pub fn reference(value: &str) -> Option<&str> {
    value.strip_prefix(PREFIX)
}

/// Secret names: letters, digits, `_`, `-` and `.`, starting with a letter or `_`, at most
/// 128 bytes, so they read the same in a config, a shell and a log line.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 128 {
        return Err("longer than 128 characters".into());
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        return Err("must start with a letter or `_`".into());
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) {
        return Err("may only use letters, digits, `_`, `-` and `.`".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_names() {
        assert_eq!(reference("secret:github_token"), Some("github_token"));
        assert_eq!(reference("plain value"), None);
        assert!(check_name("github_token").is_ok() && check_name("_x.y-z").is_ok());
        for bad in ["", "1abc", "a b", "a/b", &"a".repeat(129)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
