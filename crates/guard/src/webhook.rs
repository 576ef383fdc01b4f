//! Settings of webhook guards: external classifiers the gateway calls over HTTP with the
//! text of a message. The guard crate stays pure: it only holds and validates these
//! settings; the gateway makes the call (`portcullis_gateway::inspect`).
//!
//! The contract: `POST <url>` with `{"text", "direction", "server", "name"}`; the answer is
//! `{"flagged": bool, "score"?: number, "label"?: string}`. A flagged answer becomes a
//! `webhook.<name>` finding of the configured category, judged by the profile like any
//! other finding. No answer within `timeout_ms` (or an error) applies `on_error`.

use crate::finding::{Category, Direction};
use crate::ConfigError;
use schemars::JsonSchema;
use serde::Deserialize;

/// What to do when the classifier cannot answer: a security decision, so closed by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// Treat the message as flagged by the webhook (its profile action applies).
    #[default]
    FailClosed,
    /// Let the message through and log that the webhook was not consulted.
    FailOpen,
}

/// One external classifier.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http` or `https` URL that receives `POST {"text", "direction", "server", "name"}`.
    pub url: String,
    /// How long to wait for an answer, in milliseconds (default 1000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// `fail_closed` (default: an unanswered call counts as flagged) or `fail_open`.
    #[serde(default)]
    pub on_error: FailMode,
    /// Category of the findings (default `topic`), which picks the profile's action.
    #[serde(default = "default_category")]
    pub category: Category,
    /// Directions to send (default both).
    #[serde(default = "both_directions")]
    pub directions: Vec<Direction>,
    /// Name of an environment variable holding a bearer token for the classifier.
    #[serde(default)]
    pub bearer_env: Option<String>,
}

fn default_timeout_ms() -> u64 {
    1000
}

fn default_category() -> Category {
    Category::Topic
}

fn both_directions() -> Vec<Direction> {
    vec![Direction::Request, Direction::Response]
}

impl WebhookConfig {
    pub fn check(&self, path: &str) -> Result<(), ConfigError> {
        match url::Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            Ok(u) => {
                return Err(ConfigError::new(
                    format!("{path}.url"),
                    format!("scheme `{}` is not http or https", u.scheme()),
                ))
            }
            Err(e) => {
                return Err(ConfigError::new(format!("{path}.url"), format!("`{}` is not a URL ({e})", self.url)))
            }
        }
        if self.timeout_ms == 0 || self.timeout_ms > 60_000 {
            return Err(ConfigError::new(
                format!("{path}.timeout_ms"),
                format!("{} is out of range; use 1 to 60000 milliseconds", self.timeout_ms),
            ));
        }
        Ok(())
    }

    pub fn applies_to(&self, direction: Direction) -> bool {
        self.directions.contains(&direction)
    }
}
