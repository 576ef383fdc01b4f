//! Sealed session ids: the session's state travels inside its id, encrypted and
//! authenticated with a key the replicas share, so any replica can serve any session
//! without a shared store.

use super::SessionInfo;
use crate::peer::ClientCapabilities;
use crate::seal::Sealer;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seals and opens session ids.
pub struct SessionCodec {
    sealer: Sealer,
    /// Ids ended with DELETE on this replica (a sealed id cannot be revoked otherwise),
    /// with when they were issued: an entry can go once the id would have expired anyway.
    ended: Mutex<HashMap<String, u64>>,
    max_age_secs: u64,
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    v: String,
    s: bool,
    e: bool,
    r: bool,
    n: String,
    p: String,
    /// The owner (who opened the session).
    #[serde(default)]
    o: String,
    /// Issued at (seconds since the epoch).
    t: u64,
}

/// Why a presented session id is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRejection {
    /// Not a session this gateway (or its key) issued.
    Unknown,
    /// It was ended with DELETE.
    Ended,
    /// Older than the configured maximum age.
    Expired,
}

impl SessionCodec {
    /// A codec from a 32-byte key shared by every replica.
    pub fn new(key: &[u8; 32], max_age_secs: u64) -> Self {
        SessionCodec { sealer: Sealer::new(key), ended: Mutex::default(), max_age_secs }
    }

    /// A codec with a random key: sessions only survive on this process.
    pub fn ephemeral(max_age_secs: u64) -> Self {
        SessionCodec { sealer: Sealer::random(), ended: Mutex::default(), max_age_secs }
    }

    /// Creates the id for a new session.
    pub fn seal(&self, info: &SessionInfo) -> String {
        let body = Sealed {
            v: info.protocol_version.clone(),
            s: info.capabilities.sampling,
            e: info.capabilities.elicitation,
            r: info.capabilities.roots,
            n: info.client_name.clone(),
            p: info.endpoint.clone(),
            o: info.owner.clone(),
            t: now(),
        };
        self.sealer.seal(&serde_json::to_vec(&body).unwrap_or_default())
    }

    /// Recovers the session behind an id.
    pub fn open(&self, id: &str) -> Result<SessionInfo, SessionRejection> {
        if crate::peer::lock(&self.ended).contains_key(id) {
            return Err(SessionRejection::Ended);
        }
        let body = self.unseal(id)?;
        if self.max_age_secs > 0 && now().saturating_sub(body.t) > self.max_age_secs {
            return Err(SessionRejection::Expired);
        }
        Ok(SessionInfo {
            id: id.to_owned(),
            protocol_version: body.v,
            capabilities: ClientCapabilities { sampling: body.s, elicitation: body.e, roots: body.r },
            client_name: body.n,
            endpoint: body.p,
            owner: body.o,
        })
    }

    /// Ends a session on this replica. The list of ended ids stays bounded: an id is
    /// dropped from it once it would have expired anyway, and the oldest go first at the cap.
    pub fn end(&self, id: &str) {
        let Ok(body) = self.unseal(id) else { return };
        let mut ended = crate::peer::lock(&self.ended);
        if self.max_age_secs > 0 {
            let now = now();
            ended.retain(|_, issued| now.saturating_sub(*issued) <= self.max_age_secs);
        }
        if ended.len() >= MAX_ENDED {
            if let Some(oldest) = ended.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone()) {
                ended.remove(&oldest);
            }
        }
        ended.insert(id.to_owned(), body.t);
    }

    fn unseal(&self, id: &str) -> Result<Sealed, SessionRejection> {
        let plain = self.sealer.open(id).ok_or(SessionRejection::Unknown)?;
        serde_json::from_slice(&plain).map_err(|_| SessionRejection::Unknown)
    }
}

/// Most ended session ids remembered per replica.
const MAX_ENDED: usize = 100_000;

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> SessionInfo {
        SessionInfo {
            id: String::new(),
            protocol_version: "2025-06-18".into(),
            capabilities: ClientCapabilities { sampling: true, elicitation: false, roots: true },
            client_name: "test".into(),
            endpoint: String::new(),
            owner: "user:alice".into(),
        }
    }

    #[test]
    fn a_sealed_id_opens_on_another_replica_with_the_same_key() {
        let a = SessionCodec::new(&[7; 32], 0);
        let b = SessionCodec::new(&[7; 32], 0);
        let id = a.seal(&info());
        assert!(id.bytes().all(|c| (0x21..=0x7e).contains(&c)), "ids must be visible ASCII");
        let opened = b.open(&id).unwrap();
        assert_eq!(opened.protocol_version, "2025-06-18");
        assert!(opened.capabilities.sampling && opened.capabilities.roots && !opened.capabilities.elicitation);
    }

    #[test]
    fn forged_tampered_and_ended_ids_are_rejected() {
        let a = SessionCodec::new(&[7; 32], 0);
        let other = SessionCodec::new(&[8; 32], 0);
        let id = a.seal(&info());
        assert_eq!(other.open(&id), Err(SessionRejection::Unknown));
        let mut tampered = id.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(a.open(&String::from_utf8(tampered).unwrap()), Err(SessionRejection::Unknown));
        assert_eq!(a.open("not-a-session"), Err(SessionRejection::Unknown));
        a.end(&id);
        assert_eq!(a.open(&id), Err(SessionRejection::Ended));
    }
}
