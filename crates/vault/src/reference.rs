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

/// The vault name of one user's value of secret `name` (`portcullis secrets set NAME
/// --user USER`): `NAME@USER`. Plain names cannot hold `@`, so the two never collide.
pub fn user_secret(name: &str, user: &str) -> String {
    format!("{name}@{user}")
}

/// The vault name of secret `name`, or of one user's value of it.
pub fn stored_name(name: &str, user: Option<&str>) -> String {
    user.map_or_else(|| name.to_owned(), |u| user_secret(name, u))
}

/// A stored name's secret and user (`NAME@USER`, or a plain `NAME`).
pub fn split_stored(stored: &str) -> (&str, Option<&str>) {
    stored.split_once('@').map_or((stored, None), |(name, user)| (name, Some(user)))
}

/// A stored name: a plain secret name, or [`user_secret`]'s `NAME@USER`.
pub fn check_stored_name(stored: &str) -> Result<(), String> {
    let (name, Some(user)) = split_stored(stored) else { return check_name(stored) };
    check_name(name)?;
    if user.is_empty() || user.len() > 256 || user.chars().any(char::is_control) {
        return Err(format!("`{user}` is not a user name (1 to 256 characters, no control characters)"));
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
        assert_eq!(user_secret("github", "alice@example.com"), "github@alice@example.com");
        assert!(check_stored_name("github@alice").is_ok() && check_stored_name("github").is_ok());
        assert!(check_stored_name(&user_secret("github", "alice@example.com")).is_ok());
        assert_eq!(split_stored("github@alice@example.com"), ("github", Some("alice@example.com")));
        assert_eq!(split_stored(&stored_name("gh", None)), ("gh", None));
        assert!(check_stored_name("github@").is_err() && check_stored_name("gh b@alice").is_err());
    }
}
