//! Time spent in each detector family, for the gateway's traces: what a slow inspection
//! spent its time on. Collected only when asked for ([`crate::Guard::inspect_timed`]).

use crate::Finding;
use std::time::{Duration, Instant};

/// The detector families, in the order the guard runs them.
pub const FAMILIES: [&str; 7] = ["secret", "pii", "injection", "exfil", "url", "code", "topic"];

/// Indexes into [`FAMILIES`].
pub(crate) mod family {
    pub const SECRET: usize = 0;
    pub const PII: usize = 1;
    pub const INJECTION: usize = 2;
    pub const EXFIL: usize = 3;
    pub const URL: usize = 4;
    pub const CODE: usize = 5;
    pub const TOPIC: usize = 6;
}

/// Per family: total time, findings, and texts scanned, summed over every text of a message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FamilyTimes {
    spent: [(Duration, u32, u32); FAMILIES.len()],
}

impl FamilyTimes {
    /// Each family that ran: (name, time, findings, texts).
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, Duration, u32, u32)> + '_ {
        FAMILIES.iter().zip(&self.spent).filter(|(_, s)| s.2 > 0).map(|(name, s)| (*name, s.0, s.1, s.2))
    }

    /// Runs one family's scan into `out`, timing it and counting what it found (before the
    /// profile's minimum score is applied).
    pub(crate) fn run(
        times: &mut Option<&mut FamilyTimes>,
        family: usize,
        out: &mut Vec<Finding>,
        scan: impl FnOnce(&mut Vec<Finding>),
    ) {
        let Some(times) = times else { return scan(out) };
        let (start, before) = (Instant::now(), out.len());
        scan(out);
        let spent = &mut times.spent[family];
        spent.0 += start.elapsed();
        spent.1 += u32::try_from(out.len() - before).unwrap_or(u32::MAX);
        spent.2 += 1;
    }
}
