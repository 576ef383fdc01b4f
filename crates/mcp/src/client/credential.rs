//! Credentials an HTTP upstream connection obtains at request time, such as an OAuth access
//! token the gateway fetched for itself. The value changes between requests (it expires, the
//! upstream refuses it), so the HTTP transports ask for it on every request rather than
//! holding it in their static headers.

use super::UpstreamError;
use futures::future::BoxFuture;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use std::sync::Arc;

/// A source of `Authorization` values for one upstream.
pub trait Credential: Send + Sync + std::fmt::Debug {
    /// The value for the next request (cached by the implementation as it sees fit).
    fn authorization(&self) -> BoxFuture<'_, Result<HeaderValue, UpstreamError>>;

    /// The upstream answered HTTP 401 to `value`: forget it, so the next request gets a
    /// fresh one.
    fn refused(&self, value: &HeaderValue);
}

/// Sets `Authorization` from the credential, if there is one; returns the value set.
pub(crate) async fn authorize(
    headers: &mut HeaderMap,
    credential: Option<&Arc<dyn Credential>>,
) -> Result<Option<HeaderValue>, UpstreamError> {
    let Some(credential) = credential else { return Ok(None) };
    let mut value = credential.authorization().await?;
    value.set_sensitive(true);
    headers.insert(AUTHORIZATION, value.clone());
    Ok(Some(value))
}
