//! The loop breaker: an agent that calls the same tool with the same (or nearly the same)
//! arguments again and again, or goes round a short cycle of calls, is stopped for that
//! session before it runs up cost or closes 500 tickets. On by default: the 11th identical
//! call within 60 s in one session is refused, and so is each further turn of the loop until
//! the window has passed.

use portcullis_mcp::peer::lock;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The `loops` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LoopsConfig {
    pub enabled: bool,
    /// How many turns of a loop are allowed within the window (10: the 11th is refused).
    pub repeats: usize,
    /// The window the turns are counted in.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub window: Duration,
    /// Also catch cycles of two or three different calls (A, B, A, B, ...).
    pub cycles: bool,
}

impl Default for LoopsConfig {
    fn default() -> Self {
        LoopsConfig { enabled: true, repeats: 10, window: Duration::from_secs(60), cycles: true }
    }
}

/// A loop the breaker stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tripped {
    /// The calls in one turn of the loop (1: the same call again).
    pub period: usize,
    pub turns: usize,
    /// When the oldest call of the loop leaves the window.
    pub retry_after: Duration,
}

/// The longest cycle looked for.
const MAX_PERIOD: usize = 3;
/// Sessions forgotten after this long without a call; at most this many are tracked.
const IDLE: Duration = Duration::from_secs(3600);
const MAX_SESSIONS: usize = 100_000;

/// One session's recent calls: (when, fingerprint of tool and arguments).
type Calls = VecDeque<(Instant, u64)>;

/// Each session's recent calls, by (caller, session).
#[derive(Default)]
pub struct LoopBreaker {
    sessions: Mutex<HashMap<(String, String), Calls>>,
}

impl LoopBreaker {
    /// Records a call of `tool` with `arguments` in the session; `Some` when it continues a
    /// loop past the allowed turns (the call is then refused; it still counts).
    pub fn check(
        &self,
        config: &LoopsConfig,
        caller: &str,
        session: &str,
        tool: &str,
        arguments: Option<&Value>,
    ) -> Option<Tripped> {
        if !config.enabled || config.repeats == 0 {
            return None;
        }
        let now = Instant::now();
        let print = fingerprint(tool, arguments);
        let mut sessions = lock(&self.sessions);
        if sessions.len() >= MAX_SESSIONS {
            sessions.retain(|_, calls| calls.back().is_some_and(|(at, _)| now.duration_since(*at) < IDLE));
        }
        let calls = sessions.entry((caller.to_owned(), session.to_owned())).or_default();
        while calls.front().is_some_and(|(at, _)| now.duration_since(*at) > config.window) {
            calls.pop_front();
        }
        calls.push_back((now, print));
        let keep = (config.repeats + 1) * MAX_PERIOD;
        while calls.len() > keep {
            calls.pop_front();
        }
        let periods = if config.cycles { MAX_PERIOD } else { 1 };
        (1..=periods).find_map(|period| {
            // `repeats` full turns, and the first call of one more.
            let span = config.repeats * period + 1;
            if calls.len() < span {
                return None;
            }
            let recent: Vec<u64> = calls.iter().skip(calls.len() - span).map(|(_, p)| *p).collect();
            // A true cycle of this length: not a shorter one, and every turn the same.
            let distinct = recent[..period].iter().collect::<std::collections::HashSet<_>>().len() == period;
            let repeats = recent.iter().enumerate().all(|(i, p)| *p == recent[i % period]);
            (distinct && repeats).then(|| {
                let oldest = calls[calls.len() - span].0;
                Tripped { period, turns: config.repeats, retry_after: config.window.saturating_sub(now - oldest) }
            })
        })
    }

    /// Forgets a closed session.
    pub fn forget(&self, session: &str) {
        if !session.is_empty() {
            lock(&self.sessions).retain(|(_, s), _| s != session);
        }
    }
}

/// A hash of the tool and its arguments, near-same arguments alike: keys in any order,
/// strings compared without case and runs of whitespace. The arguments are written out once
/// in that normal form (one buffer, no allocation per word) and hashed.
fn fingerprint(tool: &str, arguments: Option<&Value>) -> u64 {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for k in keys {
                    out.push_str(k);
                    out.push(':');
                    write(&map[k.as_str()], out);
                    out.push(',');
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for item in items {
                    write(item, out);
                    out.push(',');
                }
                out.push(']');
            }
            // Strings as their words, lower case, one space apart. ASCII text (nearly every
            // argument) splits on `char::is_whitespace`'s ASCII characters (vertical tab
            // included) and lowers each word in place: 10 µs for 4 KiB, where lowering char by
            // char (the next arm, for other text) took 42 µs on every call.
            Value::String(s) if s.is_ascii() => {
                out.push('"');
                let words = s.split(|c: char| c.is_ascii_whitespace() || c == '\u{b}').filter(|w| !w.is_empty());
                for (i, word) in words.enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    let start = out.len();
                    out.push_str(word);
                    out[start..].make_ascii_lowercase();
                }
                out.push('"');
            }
            Value::String(s) => {
                out.push('"');
                for (i, word) in s.split_whitespace().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.extend(word.chars().flat_map(char::to_lowercase));
                }
                out.push('"');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut normal = String::with_capacity(256);
    normal.push_str(tool);
    normal.push('\0');
    if let Some(args) = arguments {
        write(args, &mut normal);
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    normal.hash(&mut h);
    h.finish()
}

/// How a refusal reads to the agent.
pub fn explain(tripped: &Tripped, tool: &str, config: &LoopsConfig) -> String {
    let what = if tripped.period == 1 {
        format!("`{tool}` was called {} times with the same arguments", tripped.turns)
    } else {
        format!("the same {} calls (the last `{tool}`) went round {} times", tripped.period, tripped.turns)
    };
    format!(
        "{what} within {}s in this session: the loop breaker stopped it. Try another approach or ask the user; \
         it lets the call through again in {}s.",
        config.window.as_secs(),
        tripped.retry_after.as_secs().max(1)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_eleventh_identical_call_trips_and_near_same_arguments_count() {
        let (b, c) = (LoopBreaker::default(), LoopsConfig::default());
        for i in 0..10 {
            // Key order, case and spacing do not make a call different.
            let args = if i % 2 == 0 {
                json!({ "q": "Open tickets", "n": 5 })
            } else {
                json!({ "n": 5, "q": "open  TICKETS" })
            };
            assert_eq!(b.check(&c, "alice", "s", "jira__search", Some(&args)), None, "call {}", i + 1);
        }
        let t = b.check(&c, "alice", "s", "jira__search", Some(&json!({ "q": "open tickets", "n": 5 }))).unwrap();
        assert_eq!((t.period, t.turns), (1, 10));
        assert!(t.retry_after <= Duration::from_secs(60));
        assert_eq!(b.check(&c, "alice", "s", "jira__search", Some(&json!({ "q": "closed", "n": 5 }))), None);
        assert_eq!(b.check(&c, "alice", "other", "jira__search", Some(&json!({ "q": "open tickets", "n": 5 }))), None);
    }

    #[test]
    fn fingerprints_ignore_case_and_spacing_in_any_script() {
        let print = |s: &str| fingerprint("t", Some(&json!({ "q": s })));
        assert_eq!(print("Open  TICKETS\tnow"), print("open tickets now"));
        assert_eq!(print(" Open\u{b}TICKETS\r\n"), print("open tickets"));
        // ASCII and non-ASCII text take different paths to the same normal form.
        assert_eq!(print("OPEN tickets\u{2003}now"), print("open  tickets now"));
        assert_eq!(print(" ÉCOLE Straße "), print("école straße"));
        assert_eq!(print("Ärger ABC"), print("ärger abc"));
        assert_ne!(print("open tickets"), print("open ticket"));
        assert_ne!(print("école"), print("ecole"));
    }

    #[test]
    fn a_cycle_of_two_calls_trips_and_varied_work_does_not() {
        let (b, c) = (LoopBreaker::default(), LoopsConfig::default());
        let (a, z) = (json!({ "id": 1 }), json!({ "id": 2 }));
        for i in 0..21 {
            let args = if i % 2 == 0 { &a } else { &z };
            let tripped = b.check(&c, "bob", "s", "t", Some(args));
            assert_eq!(tripped.is_some(), i == 20, "call {}", i + 1);
        }
        let b = LoopBreaker::default();
        for i in 0..100 {
            assert_eq!(b.check(&c, "bob", "s", "t", Some(&json!({ "id": i }))), None);
        }
        let off = LoopsConfig { cycles: false, ..c };
        let b = LoopBreaker::default();
        for i in 0..30 {
            assert_eq!(b.check(&off, "bob", "s", "t", Some(if i % 2 == 0 { &a } else { &z })), None);
        }
    }
}
