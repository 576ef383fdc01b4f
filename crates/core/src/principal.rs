//! Who is calling: established once at the door (API key, JWT, or nobody), then carried
//! with every request through authorization, limits, guards and the audit record.

use serde::Serialize;
use std::sync::Arc;

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// No credential: a loopback-only gateway without `auth`, or `auth.anonymous: true`.
    Anonymous,
    /// A Portcullis API key (`Authorization: Bearer pcs_…`).
    ApiKey,
    /// A JWT from the configured identity provider.
    Jwt,
}

/// The caller of one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub method: AuthMethod,
    /// The user the credential belongs to, if any.
    pub user: Option<String>,
    pub team: Option<String>,
    /// The application (a service, a CI job, an agent) the credential belongs to, if any.
    pub app: Option<String>,
    pub roles: Vec<String>,
    /// The id of the API key used (never the key itself).
    pub key_id: Option<String>,
    /// The token a JWT caller presented, kept only to exchange it for an upstream token on
    /// the caller's behalf (RFC 8693). Never serialized, never printed.
    #[serde(skip)]
    pub presented: Option<PresentedToken>,
}

/// A caller's bearer token: shown as `<redacted>`, never serialized.
#[derive(Clone, PartialEq, Eq)]
pub struct PresentedToken(Arc<str>);

impl PresentedToken {
    pub fn new(token: &str) -> PresentedToken {
        PresentedToken(token.into())
    }

    /// The token itself, for the token exchange request and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PresentedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PresentedToken(<redacted>)")
    }
}

impl Principal {
    pub fn anonymous() -> Principal {
        Principal {
            method: AuthMethod::Anonymous,
            user: None,
            team: None,
            app: None,
            roles: Vec::new(),
            key_id: None,
            presented: None,
        }
    }

    /// A short name for logs and errors: `user:alice`, `app:ci`, `anonymous`.
    pub fn subject(&self) -> String {
        match (&self.user, &self.app) {
            (Some(user), _) => format!("user:{user}"),
            (None, Some(app)) => format!("app:{app}"),
            (None, None) => match &self.key_id {
                Some(id) => format!("key:{id}"),
                None => "anonymous".to_owned(),
            },
        }
    }
}

impl Default for Principal {
    fn default() -> Self {
        Principal::anonymous()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_name_the_user_first_then_the_app() {
        assert_eq!(Principal::anonymous().subject(), "anonymous");
        let mut p = Principal { app: Some("ci".into()), ..Principal::anonymous() };
        assert_eq!(p.subject(), "app:ci");
        p.user = Some("alice".into());
        assert_eq!(p.subject(), "user:alice");
    }
}
