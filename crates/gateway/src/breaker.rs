//! The circuit breaker of each upstream: after `failures` calls in a row fail (the upstream
//! is unreachable, times out or breaks the protocol), the circuit opens and calls to that
//! server fail at once for `open_for`, instead of each waiting out a timeout. Then one call
//! goes through as a probe (half-open): if it succeeds the circuit closes, if it fails it
//! opens again. An error the upstream answers with is an answer, not a failure.

use portcullis_mcp::peer::lock;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The `breaker` section (every upstream).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    pub enabled: bool,
    /// Failed calls in a row that open the circuit.
    pub failures: u32,
    /// How long an open circuit fails calls fast before letting a probe through.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig { enabled: true, failures: 5, open_for: Duration::from_secs(30) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// The open time is over and one probe is out.
    HalfOpen,
}

/// One upstream's breaker.
#[derive(Debug)]
pub struct Breaker {
    state: Mutex<State>,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker { state: Mutex::new(State::Closed { failures: 0 }) }
    }
}

/// Whether the circuit lets a call through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Pass,
    /// Failing fast; the probe may go in this long.
    Refuse(Duration),
}

impl Breaker {
    /// Asks to send a call.
    pub fn admit(&self, config: &BreakerConfig) -> Admit {
        if !config.enabled {
            return Admit::Pass;
        }
        let mut state = lock(&self.state);
        match *state {
            State::Closed { .. } => Admit::Pass,
            State::Open { until } => {
                let now = Instant::now();
                if now >= until {
                    *state = State::HalfOpen;
                    Admit::Pass
                } else {
                    Admit::Refuse(until - now)
                }
            }
            // Only the probe goes; the rest wait for its verdict.
            State::HalfOpen => Admit::Refuse(Duration::from_secs(1)),
        }
    }

    /// Records how a call that was let through ended; true when this opened the circuit.
    pub fn record(&self, config: &BreakerConfig, failed: bool) -> bool {
        if !config.enabled {
            return false;
        }
        let mut state = lock(&self.state);
        let next = match (*state, failed) {
            (_, false) => State::Closed { failures: 0 },
            (State::Closed { failures }, true) if failures + 1 < config.failures => {
                State::Closed { failures: failures + 1 }
            }
            (State::Open { until }, true) => State::Open { until },
            (State::Closed { .. } | State::HalfOpen, true) => State::Open { until: Instant::now() + config.open_for },
        };
        let opened = matches!(next, State::Open { .. }) && !matches!(*state, State::Open { .. });
        *state = next;
        opened
    }

    /// `closed`, `open` or `half_open`, for `/readyz` and metrics.
    pub fn state(&self) -> &'static str {
        match *lock(&self.state) {
            State::Closed { .. } => "closed",
            State::Open { until } if Instant::now() >= until => "half_open",
            State::Open { .. } => "open",
            State::HalfOpen => "half_open",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BreakerConfig {
        BreakerConfig { enabled: true, failures: 3, open_for: Duration::from_millis(40) }
    }

    #[test]
    fn failures_in_a_row_open_it_and_a_probe_closes_it() {
        let (b, c) = (Breaker::default(), config());
        assert!(!b.record(&c, true) && !b.record(&c, true));
        assert!(!b.record(&c, false), "a success resets the count");
        assert!(!b.record(&c, true) && !b.record(&c, true));
        assert!(b.record(&c, true), "the third failure in a row opens it");
        assert_eq!(b.state(), "open");
        assert!(matches!(b.admit(&c), Admit::Refuse(d) if d <= Duration::from_millis(40)));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(b.admit(&c), Admit::Pass, "the probe");
        assert!(matches!(b.admit(&c), Admit::Refuse(_)), "one probe at a time");
        assert!(!b.record(&c, false));
        assert_eq!((b.state(), b.admit(&c)), ("closed", Admit::Pass));
    }

    #[test]
    fn a_failed_probe_opens_it_again_and_off_means_off() {
        let (b, c) = (Breaker::default(), config());
        for _ in 0..3 {
            b.record(&c, true);
        }
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(b.admit(&c), Admit::Pass);
        assert!(b.record(&c, true), "the failed probe opens it again");
        assert!(matches!(b.admit(&c), Admit::Refuse(_)));
        let off = BreakerConfig { enabled: false, ..config() };
        assert_eq!(b.admit(&off), Admit::Pass);
    }
}
