//! Rate limits, quotas and concurrency caps on tool calls (`limits`): each rule says which
//! calls it counts (servers, tools, labels such as `sensitive`) and whose calls share a
//! budget (`per: user`, `[user, tool]`, `team`, `app`, `key`, `server`, ...). A call over any
//! rule is refused with `-32029` and a `retryAfter` hint (HTTP 429 with `Retry-After`).
//!
//! Counting is per process ([`Local`]: token buckets (`governor`), per-day counters and
//! in-flight counts in memory), or shared by every replica through Redis ([`shared`]) when
//! `redis` is configured.

pub mod shared;

use globset::{Glob, GlobSet, GlobSetBuilder};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use portcullis_core::Principal;
use portcullis_mcp::peer::lock;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use shared::{RedisConfig, Shared};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One `limits` rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitRule {
    /// Names the rule in refusals, audit events and metrics.
    pub id: String,
    /// Whose calls share one budget: any of `caller` (each user, app or key), `user`, `team`,
    /// `app`, `key`, `server`, `tool`; `[]` is one budget for everyone. Default `caller`.
    #[serde(default = "per_caller", deserialize_with = "one_or_many")]
    #[schemars(with = "Vec<Per>")]
    pub per: Vec<Per>,
    /// Only calls to these servers (default: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
    /// Only these tools, by the name clients use (globs: `github__*`, `*delete*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// Only tools with one of these labels (`servers.X.labels`), e.g. `[sensitive]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Sustained rate: `10/s`, `100/m`, `500/h` (a bare number is per second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub rate: Option<Rate>,
    /// Calls allowed at once before the rate applies (default: the rate's count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// Calls per UTC day (a budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_day: Option<u64>,
    /// Calls in flight at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent: Option<u32>,
}

/// A part of the key that separates budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    Caller,
    User,
    Team,
    App,
    Key,
    Server,
    Tool,
}

fn per_caller() -> Vec<Per> {
    vec![Per::Caller]
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Per>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(Per),
        Many(Vec<Per>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(p) => vec![p],
        OneOrMany::Many(v) => v,
    })
}

/// `count` calls per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub period: Duration,
}

impl Rate {
    pub fn parse(text: &str) -> Option<Rate> {
        let (count, unit) = text.split_once('/').unwrap_or((text, "s"));
        let count: u32 = count.trim().parse().ok().filter(|c| *c > 0)?;
        let unit = unit.trim();
        let (secs, ..) = UNITS.iter().find(|(_, short, long, alias)| [*short, *long, *alias].contains(&unit))?;
        Some(Rate { count, period: Duration::from_secs(*secs) })
    }

    /// The period's short and long names (`s`, `second`).
    fn unit(&self) -> (&'static str, &'static str) {
        let secs = self.period.as_secs();
        let (_, short, long, _) = UNITS.iter().find(|(s, ..)| *s == secs).unwrap_or(&UNITS[3]);
        (short, long)
    }
}

/// The periods a rate may have: seconds, short name, long name, another accepted name
/// (none for hours and days: the short name again).
const UNITS: [(u64, &str, &str, &str); 4] =
    [(1, "s", "second", "sec"), (60, "m", "minute", "min"), (3600, "h", "hour", "h"), (86_400, "d", "day", "d")];

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} per {}", calls(u64::from(self.count)), self.unit().1)
    }
}

/// `1 call`, `2 calls`.
fn calls(n: u64) -> String {
    if n == 1 {
        "1 call".into()
    } else {
        format!("{n} calls")
    }
}

impl Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}/{}", self.count, self.unit().0))
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Rate, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Text {
            Number(u32),
            Text(String),
        }
        let text = match Text::deserialize(d)? {
            Text::Number(n) => n.to_string(),
            Text::Text(t) => t,
        };
        Rate::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("`{text}` is not a rate; write it like 10/s, 100/m or 500/h"))
        })
    }
}

/// A rule ready to match calls.
struct Compiled {
    rule: LimitRule,
    servers: Option<GlobSet>,
    tools: Option<GlobSet>,
}

/// The compiled `limits` section.
#[derive(Default)]
pub struct LimitPolicy {
    rules: Vec<Compiled>,
}

/// What a limit needs to know about a call.
pub struct CallFacts<'a> {
    pub principal: &'a Principal,
    pub server: &'a str,
    /// The tool as clients name it.
    pub tool: &'a str,
    pub labels: &'a [String],
}

impl LimitPolicy {
    /// Checks and compiles the rules; `Err` is (path, problem).
    pub fn compile(rules: &[LimitRule]) -> Result<LimitPolicy, (String, String)> {
        let mut compiled = Vec::new();
        let mut ids = std::collections::HashSet::new();
        for (i, rule) in rules.iter().enumerate() {
            let at = format!("limits[{i}]");
            if rule.id.is_empty() || !ids.insert(rule.id.as_str()) {
                return Err((format!("{at}.id"), "give each rule its own non-empty id".into()));
            }
            if rule.rate.is_none() && rule.per_day.is_none() && rule.concurrent.is_none() {
                return Err((at, "set at least one of `rate`, `per_day`, `concurrent`".into()));
            }
            if rule.burst.is_some_and(|b| b == 0) || rule.concurrent.is_some_and(|c| c == 0) {
                return Err((at, "`burst` and `concurrent` must be at least 1".into()));
            }
            if rule.burst.is_some() && rule.rate.is_none() {
                return Err((format!("{at}.burst"), "`burst` goes with a `rate`".into()));
            }
            let globs = |field: &str, patterns: &[String]| -> Result<Option<GlobSet>, (String, String)> {
                if patterns.is_empty() {
                    return Ok(None);
                }
                let mut set = GlobSetBuilder::new();
                for (j, p) in patterns.iter().enumerate() {
                    set.add(Glob::new(p).map_err(|e| (format!("{at}.{field}[{j}]"), format!("invalid glob: {e}")))?);
                }
                set.build().map(Some).map_err(|e| (format!("{at}.{field}"), e.to_string()))
            };
            let servers = globs("servers", &rule.servers)?;
            let tools = globs("tools", &rule.tools)?;
            compiled.push(Compiled { rule: rule.clone(), servers, tools });
        }
        Ok(LimitPolicy { rules: compiled })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules that count this call, each with the budget key of the call.
    fn matching(&self, call: &CallFacts<'_>) -> Vec<(&LimitRule, String)> {
        self.rules
            .iter()
            .filter_map(|c| {
                let applies = c.servers.as_ref().is_none_or(|s| s.is_match(call.server))
                    && c.tools.as_ref().is_none_or(|t| t.is_match(call.tool))
                    && (c.rule.labels.is_empty() || c.rule.labels.iter().any(|l| call.labels.contains(l)));
                if !applies {
                    return None;
                }
                budget_key(&c.rule.per, call).map(|key| (&c.rule, key))
            })
            .collect()
    }
}

/// The key of the budget a call draws from under `per`; `None` when the caller has no such
/// part (a rule `per: team` does not count callers without a team).
fn budget_key(per: &[Per], call: &CallFacts<'_>) -> Option<String> {
    let p = call.principal;
    let mut key = String::new();
    for part in per {
        let value = match part {
            Per::Caller => p.subject(),
            Per::User => p.user.clone()?,
            Per::Team => p.team.clone()?,
            Per::App => p.app.clone()?,
            Per::Key => p.key_id.clone()?,
            Per::Server => call.server.to_owned(),
            Per::Tool => call.tool.to_owned(),
        };
        key.push_str(&value);
        key.push('\u{1f}');
    }
    Some(key)
}

/// A refused call: which rule, which of its limits, and when to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub rule: String,
    /// `rate`, `per_day` or `concurrent`.
    pub limit: &'static str,
    pub retry_after: Duration,
    pub message: String,
}

/// A call admitted under the concurrency caps; dropping it frees its places.
#[must_use]
pub struct Permit {
    held: Vec<(Arc<Local>, (String, String))>,
    shared: Option<(Arc<Shared>, Vec<String>)>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        for (local, slot) in self.held.drain(..) {
            local.release(&slot);
        }
        if let Some((shared, keys)) = self.shared.take().filter(|(_, keys)| !keys.is_empty()) {
            shared.release(keys);
        }
    }
}

/// Where a gateway counts: in Redis when configured (and reachable), else in this process.
#[derive(Default)]
pub struct Counters {
    local: Arc<Local>,
    shared: Option<Arc<Shared>>,
}

impl Counters {
    /// Counters shared through `redis` (connecting in the background), or local ones.
    pub fn new(redis: Option<&RedisConfig>) -> Counters {
        let shared = redis.and_then(|config| match Shared::connect(config) {
            Ok(shared) => Some(shared),
            Err(why) => {
                tracing::error!("limits are not shared: {why}");
                None
            }
        });
        Counters { local: Arc::default(), shared }
    }

    /// `shared` (counting in Redis), `connecting` (to Redis; counting locally meanwhile) or
    /// `local`, for `/readyz`.
    pub fn state(&self) -> &'static str {
        match &self.shared {
            Some(shared) if shared.connected() => "shared",
            Some(_) => "connecting",
            None => "local",
        }
    }

    /// Admits a call under every rule that counts it, or says which refuses it.
    pub async fn admit(&self, policy: &LimitPolicy, call: &CallFacts<'_>) -> Result<Permit, Refusal> {
        if let Some(shared) = &self.shared {
            let matching = policy.matching(call);
            if matching.is_empty() {
                return Ok(Permit { held: Vec::new(), shared: None });
            }
            if let Some(answer) = shared.admit(&matching, call).await {
                return answer.map(|keys| Permit { held: Vec::new(), shared: Some((shared.clone(), keys)) });
            }
        }
        self.local.admit(policy, call)
    }
}

/// The counters of one process; they outlive config reloads (a rule keeps its counts while
/// its id and limits stay the same).
#[derive(Default)]
pub struct Local {
    buckets: Mutex<HashMap<BucketId, Arc<DefaultKeyedRateLimiter<String>>>>,
    days: Mutex<HashMap<(String, String), (i64, u64)>>,
    inflight: Mutex<HashMap<(String, String), u32>>,
    checks: AtomicU64,
}

/// A rule's token buckets: its id, count, period (ms) and burst.
type BucketId = (String, u32, u64, u32);

/// How many checks pass between sweeps of idle keys.
const SWEEP_EVERY: u64 = 4_096;

impl Local {
    /// Checks every rule that counts this call; on success the call holds its concurrency
    /// places until the permit is dropped.
    pub fn admit(self: &Arc<Self>, policy: &LimitPolicy, call: &CallFacts<'_>) -> Result<Permit, Refusal> {
        let mut permit = Permit { held: Vec::new(), shared: None };
        let matching = policy.matching(call);
        // Cheap refusals first, so a refused call uses up no tokens or quota.
        for (rule, key) in &matching {
            if let Some(max) = rule.concurrent {
                let slot = (rule.id.clone(), key.clone());
                if !self.acquire(&slot, max) {
                    return Err(refusal(rule, "concurrent", Duration::from_secs(1), who(call, rule)));
                }
                permit.held.push((self.clone(), slot));
            }
        }
        let today = portcullis_store::now_ms().div_euclid(DAY_MS);
        let used_today = |rule: &LimitRule, key: &String| {
            let days = lock(&self.days);
            days.get(&(rule.id.clone(), key.clone())).filter(|(day, _)| *day == today).map_or(0, |(_, n)| *n)
        };
        for (rule, key) in &matching {
            if rule.per_day.is_some_and(|max| used_today(rule, key) >= max) {
                return Err(refusal(rule, "per_day", until_tomorrow(), who(call, rule)));
            }
        }
        self.sweep(today);
        for (rule, key) in &matching {
            if let Some(rate) = rule.rate {
                let limiter = self.bucket(rule, rate);
                if let Err(not_until) = limiter.check_key(key) {
                    let wait = not_until.wait_time_from(DefaultClock::default().now());
                    return Err(refusal(rule, "rate", wait, who(call, rule)));
                }
            }
        }
        // Only an admitted call uses up quota.
        let mut days = lock(&self.days);
        for (rule, key) in matching.iter().filter(|(rule, _)| rule.per_day.is_some()) {
            let entry = days.entry((rule.id.clone(), key.clone())).or_insert((today, 0));
            if entry.0 != today {
                *entry = (today, 0);
            }
            entry.1 += 1;
        }
        Ok(permit)
    }

    /// Now and then, forgets idle buckets and past days' counts.
    fn sweep(&self, today: i64) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY != SWEEP_EVERY - 1 {
            return;
        }
        for limiter in lock(&self.buckets).values() {
            limiter.retain_recent();
        }
        lock(&self.days).retain(|_, (day, _)| *day == today);
    }

    fn acquire(&self, slot: &(String, String), max: u32) -> bool {
        let mut inflight = lock(&self.inflight);
        let count = inflight.entry(slot.clone()).or_insert(0);
        if *count >= max {
            return false;
        }
        *count += 1;
        true
    }

    fn release(&self, slot: &(String, String)) {
        let mut inflight = lock(&self.inflight);
        if let Some(count) = inflight.get_mut(slot) {
            *count -= 1;
            if *count == 0 {
                inflight.remove(slot);
            }
        }
    }

    /// The token bucket of a rule (a changed rate is a new bucket).
    fn bucket(&self, rule: &LimitRule, rate: Rate) -> Arc<DefaultKeyedRateLimiter<String>> {
        let burst = rule.burst.unwrap_or(rate.count);
        let id = (rule.id.clone(), rate.count, rate.period.as_millis() as u64, burst);
        let mut buckets = lock(&self.buckets);
        buckets
            .entry(id)
            .or_insert_with(|| {
                let period = rate.period / rate.count;
                // `compile` checked burst >= 1 and count >= 1, so the period is above zero.
                let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
                    .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
                    .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
                Arc::new(RateLimiter::keyed(quota))
            })
            .clone()
    }
}

const DAY_MS: i64 = 86_400_000;

fn until_tomorrow() -> Duration {
    let now = portcullis_store::now_ms();
    Duration::from_millis(u64::try_from(DAY_MS - now.rem_euclid(DAY_MS)).unwrap_or(0))
}

/// Whose budget, for the message: `user:alice`, `team eng`, `everyone`.
fn who(call: &CallFacts<'_>, rule: &LimitRule) -> String {
    let p = call.principal;
    let parts: Vec<String> = rule
        .per
        .iter()
        .map(|part| match part {
            Per::Caller => p.subject(),
            Per::User => format!("user {}", p.user.as_deref().unwrap_or("-")),
            Per::Team => format!("team {}", p.team.as_deref().unwrap_or("-")),
            Per::App => format!("app {}", p.app.as_deref().unwrap_or("-")),
            Per::Key => format!("key {}", p.key_id.as_deref().unwrap_or("-")),
            Per::Server => format!("server {}", call.server),
            Per::Tool => format!("tool {}", call.tool),
        })
        .collect();
    if parts.is_empty() {
        "everyone".into()
    } else {
        parts.join(", ")
    }
}

fn refusal(rule: &LimitRule, limit: &'static str, retry_after: Duration, who: String) -> Refusal {
    let what = match limit {
        "rate" => format!("at most {}", rule.rate.map_or(String::new(), |r| r.to_string())),
        "per_day" => format!("at most {} a day", calls(rule.per_day.unwrap_or(0))),
        _ => format!("at most {} at once", calls(u64::from(rule.concurrent.unwrap_or(0)))),
    };
    let secs = retry_after.as_secs_f64().ceil().max(1.0);
    Refusal {
        rule: rule.id.clone(),
        limit,
        retry_after,
        message: format!(
            "limit `{}` reached: {what} for {who}. Retry in {secs:.0} s; tell the user if the task needs more.",
            rule.id
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(yaml: &str) -> LimitPolicy {
        let rules: Vec<LimitRule> = serde_yaml_ng::from_str(yaml).unwrap();
        LimitPolicy::compile(&rules).unwrap()
    }

    fn alice() -> Principal {
        Principal { user: Some("alice".into()), team: Some("eng".into()), ..Principal::anonymous() }
    }

    fn call<'a>(p: &'a Principal, tool: &'a str, labels: &'a [String]) -> CallFacts<'a> {
        CallFacts { principal: p, server: tool.split("__").next().unwrap_or(""), tool, labels }
    }

    #[test]
    fn rates_parse_and_bad_rules_are_named() {
        assert_eq!(Rate::parse("10/s"), Some(Rate { count: 10, period: Duration::from_secs(1) }));
        assert_eq!(Rate::parse("100/m"), Some(Rate { count: 100, period: Duration::from_secs(60) }));
        assert_eq!(Rate::parse("5"), Some(Rate { count: 5, period: Duration::from_secs(1) }));
        assert_eq!(Rate::parse("0/s"), None);
        assert_eq!(Rate::parse("3/fortnight"), None);
        let bad: Vec<LimitRule> = serde_yaml_ng::from_str("[{ id: x, tools: [gh__*] }]").unwrap();
        assert_eq!(LimitPolicy::compile(&bad).err().unwrap().1, "set at least one of `rate`, `per_day`, `concurrent`");
        let bad: Vec<LimitRule> = serde_yaml_ng::from_str("[{ id: x, rate: 1/s }, { id: x, per_day: 3 }]").unwrap();
        assert_eq!(LimitPolicy::compile(&bad).err().unwrap().0, "limits[1].id");
        let e = serde_yaml_ng::from_str::<Vec<LimitRule>>("[{ id: x, rate: fast }]").unwrap_err();
        assert!(e.to_string().contains("`fast` is not a rate; write it like 10/s"), "{e}");
    }

    #[test]
    fn a_rate_refuses_with_a_retry_hint_and_each_caller_has_a_bucket() {
        let policy = rules("[{ id: calm, rate: 2/m }]");
        let local = Arc::new(Local::default());
        let (alice, bob) = (alice(), Principal { user: Some("bob".into()), ..Principal::anonymous() });
        for _ in 0..2 {
            assert!(local.admit(&policy, &call(&alice, "gh__get_issue", &[])).is_ok());
        }
        let refused = local.admit(&policy, &call(&alice, "gh__get_issue", &[])).err().unwrap();
        assert_eq!((refused.rule.as_str(), refused.limit), ("calm", "rate"));
        assert!(refused.retry_after > Duration::from_secs(20) && refused.retry_after <= Duration::from_secs(30));
        assert!(refused.message.contains("at most 2 calls per minute for user:alice"), "{}", refused.message);
        assert!(local.admit(&policy, &call(&bob, "gh__get_issue", &[])).is_ok(), "bob has his own bucket");
    }

    #[test]
    fn quotas_count_only_matching_calls_and_sensitive_tools_get_stricter_caps() {
        let policy = rules(
            "[{ id: daily, per: team, per_day: 3 },
              { id: sensitive, per: [user, tool], labels: [sensitive], per_day: 1 }]",
        );
        let local = Arc::new(Local::default());
        let alice = alice();
        let sensitive = vec!["sensitive".to_owned()];
        assert!(local.admit(&policy, &call(&alice, "db__drop_table", &sensitive)).is_ok());
        let refused = local.admit(&policy, &call(&alice, "db__drop_table", &sensitive)).err().unwrap();
        assert_eq!((refused.rule.as_str(), refused.limit), ("sensitive", "per_day"));
        assert!(refused.retry_after <= Duration::from_secs(86_400));
        assert!(local.admit(&policy, &call(&alice, "db__query", &[])).is_ok());
        assert!(local.admit(&policy, &call(&alice, "db__query", &[])).is_ok(), "a refused call uses up no quota");
        let refused = local.admit(&policy, &call(&alice, "db__query", &[])).err().unwrap();
        assert_eq!(refused.rule, "daily");
        // Callers without a team are not counted by a per-team rule.
        let app = Principal { app: Some("ci".into()), ..Principal::anonymous() };
        for _ in 0..5 {
            assert!(local.admit(&policy, &call(&app, "db__query", &[])).is_ok());
        }
    }

    #[test]
    fn concurrency_places_free_up_when_calls_end() {
        let policy = rules("[{ id: one-at-a-time, per: [], tools: ['fs__*'], concurrent: 1 }]");
        let local = Arc::new(Local::default());
        let alice = alice();
        let first = local.admit(&policy, &call(&alice, "fs__write_file", &[])).unwrap();
        let refused = local.admit(&policy, &call(&alice, "fs__read_file", &[])).err().unwrap();
        assert_eq!(refused.limit, "concurrent");
        assert!(refused.message.contains("for everyone"), "{}", refused.message);
        assert!(local.admit(&policy, &call(&alice, "gh__get_issue", &[])).is_ok(), "other servers are not counted");
        drop(first);
        assert!(local.admit(&policy, &call(&alice, "fs__read_file", &[])).is_ok());
    }
}
