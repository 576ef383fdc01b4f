//! Limits shared by every gateway on one Redis: the checks and the counting of one call run
//! as a single Lua script, so two replicas cannot both take the last place. Rates are GCRA
//! (the theoretical arrival time per budget), day budgets and in-flight counts are counters.
//! Time comes from Redis (`TIME`), so replicas with skewed clocks agree.
//!
//! While Redis cannot be reached, each gateway counts on its own ([`super::Local`]) and says
//! so in its log: limits stay in force, per replica, rather than failing every call.

use super::{refusal, until_tomorrow, who, CallFacts, LimitRule, Refusal, DAY_MS};
use portcullis_store::now_ms;
use redis::aio::ConnectionManager;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The `redis` section: the Redis that replicas share limits through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[:password@]host:port/db`. Prefer `url_env` when it holds a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The environment variable holding the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_env: Option<String>,
    /// Prepended to every key, so several deployments can share one Redis.
    #[serde(default = "default_prefix")]
    pub prefix: String,
}

fn default_prefix() -> String {
    "portcullis".into()
}

impl RedisConfig {
    /// Problems with the section: (field, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        match (&self.url, &self.url_env) {
            (Some(url), None) => {
                if let Err(why) = check_url(url) {
                    out.push(("redis.url".into(), why));
                }
            }
            (None, Some(_)) => {}
            _ => out.push(("redis".into(), "set exactly one of `url` and `url_env`".into())),
        }
        out
    }

    fn url(&self) -> Result<String, String> {
        match (&self.url, &self.url_env) {
            (Some(url), _) => Ok(url.clone()),
            (None, Some(var)) => std::env::var(var).map_err(|_| format!("${var} (redis.url_env) is not set")),
            (None, None) => Err("no redis.url".into()),
        }
    }
}

/// Only plain `redis://` and `unix://` URLs: a TLS connection needs a build with TLS for Redis.
fn check_url(url: &str) -> Result<(), String> {
    match url.split_once("://").map(|(scheme, _)| scheme) {
        Some("redis" | "unix") => Ok(()),
        Some("rediss") => {
            Err("TLS to Redis (`rediss://`) is not supported yet; use a local stunnel or a private network".into())
        }
        _ => Err("not a Redis URL; write it like redis://127.0.0.1:6379/0".into()),
    }
}

/// How long a call waits for Redis before counting locally.
const TIMEOUT: Duration = Duration::from_millis(500);
/// In-flight counts of a crashed gateway are forgotten after this long without calls.
const INFLIGHT_TTL_MS: u64 = 600_000;

/// The script: checks every rule first, and counts the call only if all admit it.
/// KEYS: per rule, its in-flight, day and rate keys. ARGV: the number of rules, then per rule
/// the in-flight cap, the day budget, the rate's interval and burst tolerance (µs), and the
/// day key's lifetime (s); 0 means "not set". Returns {rule (1-based; 0 = admitted), limit
/// (1 in flight, 2 day, 3 rate), µs to wait}.
const ADMIT: &str = r#"
local n = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i = 1, n do
  local a, k = 1 + (i - 1) * 5, (i - 1) * 3
  local cap, day, interval, tau = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  if cap > 0 and tonumber(redis.call('GET', KEYS[k + 1]) or '0') >= cap then return {i, 1, 1000000} end
  if day > 0 and tonumber(redis.call('GET', KEYS[k + 2]) or '0') >= day then return {i, 2, 0} end
  if interval > 0 then
    local tat = math.max(tonumber(redis.call('GET', KEYS[k + 3]) or '0'), now)
    if now < tat - tau then return {i, 3, tat - tau - now} end
  end
end
for i = 1, n do
  local a, k = 1 + (i - 1) * 5, (i - 1) * 3
  local cap, day, interval = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  if cap > 0 then
    redis.call('INCR', KEYS[k + 1])
    redis.call('PEXPIRE', KEYS[k + 1], ARGV[#ARGV])
  end
  if day > 0 then
    redis.call('INCR', KEYS[k + 2])
    redis.call('EXPIRE', KEYS[k + 2], ARGV[a + 5])
  end
  if interval > 0 then
    local tat = math.max(tonumber(redis.call('GET', KEYS[k + 3]) or '0'), now) + interval
    redis.call('SET', KEYS[k + 3], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
  end
end
return {0, 0, 0}
"#;

/// The counters in Redis.
pub struct Shared {
    connection: Arc<OnceLock<ConnectionManager>>,
    prefix: String,
    script: redis::Script,
    failures: AtomicU64,
}

impl Shared {
    /// Starts connecting to Redis in the background; calls are counted locally until then.
    pub fn connect(config: &RedisConfig) -> Result<Arc<Shared>, String> {
        let url = config.url()?;
        check_url(&url)?;
        let client = redis::Client::open(url.as_str()).map_err(|e| format!("redis.url is not valid: {e}"))?;
        let connection: Arc<OnceLock<ConnectionManager>> = Arc::default();
        let slot = connection.clone();
        tokio::spawn(async move {
            let mut wait = Duration::from_millis(250);
            loop {
                match ConnectionManager::new(client.clone()).await {
                    Ok(manager) => {
                        tracing::info!("limits are shared through Redis");
                        let _ = slot.set(manager);
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot reach Redis yet: limits are counted by this gateway alone");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(10));
                    }
                }
            }
        });
        let prefix = format!("{}:{{limits}}", config.prefix);
        Ok(Arc::new(Shared { connection, prefix, script: redis::Script::new(ADMIT), failures: AtomicU64::new(0) }))
    }

    pub fn connected(&self) -> bool {
        self.connection.get().is_some()
    }

    /// Admits or refuses a call under the `matching` rules; `None` when Redis could not
    /// answer (the caller counts locally instead).
    pub(super) async fn admit(
        &self,
        matching: &[(&LimitRule, String)],
        call: &CallFacts<'_>,
    ) -> Option<Result<Vec<String>, Refusal>> {
        let mut connection = self.connection.get()?.clone();
        let day = now_ms().div_euclid(DAY_MS);
        let mut invocation = self.script.prepare_invoke();
        invocation.arg(matching.len());
        let mut inflight = Vec::new();
        for (rule, key) in matching {
            let key = key.replace('\u{1f}', "|");
            let cap_key = format!("{}:inflight:{}:{key}", self.prefix, rule.id);
            invocation.key(&cap_key);
            invocation.key(format!("{}:day:{}:{day}:{key}", self.prefix, rule.id));
            invocation.key(format!("{}:rate:{}:{key}", self.prefix, rule.id));
            let (interval, tau) = match rule.rate {
                Some(rate) => {
                    let interval = (rate.period.as_micros() as u64 / u64::from(rate.count)).max(1);
                    (interval, interval * u64::from(rule.burst.unwrap_or(rate.count).saturating_sub(1)))
                }
                None => (0, 0),
            };
            invocation.arg(rule.concurrent.unwrap_or(0)).arg(rule.per_day.unwrap_or(0)).arg(interval).arg(tau);
            invocation.arg(2 * DAY_MS / 1000);
            if rule.concurrent.is_some() {
                inflight.push(cap_key);
            }
        }
        invocation.arg(INFLIGHT_TTL_MS);
        let answer = tokio::time::timeout(TIMEOUT, invocation.invoke_async::<Vec<i64>>(&mut connection)).await;
        let answer = match answer {
            Ok(Ok(answer)) if answer.len() == 3 => answer,
            Ok(Ok(_)) => return self.failed("the limits script answered in an unexpected shape"),
            Ok(Err(e)) => return self.failed(&e.to_string()),
            Err(_) => return self.failed("no answer within 500 ms"),
        };
        let Some(i) = usize::try_from(answer[0]).ok().filter(|i| *i > 0) else {
            return Some(Ok(inflight));
        };
        let rule = matching.get(i - 1)?.0;
        let wait = Duration::from_micros(u64::try_from(answer[2]).unwrap_or(0));
        let refused = match answer[1] {
            1 => refusal(rule, "concurrent", Duration::from_secs(1), who(call, rule)),
            2 => refusal(rule, "per_day", until_tomorrow(), who(call, rule)),
            _ => refusal(rule, "rate", wait, who(call, rule)),
        };
        Some(Err(refused))
    }

    fn failed<T>(&self, why: &str) -> Option<T> {
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures.is_power_of_two() {
            tracing::warn!(failures, error = why, "Redis did not answer: this call's limits were counted locally");
        }
        None
    }

    /// Frees the in-flight places of a finished call.
    pub(super) fn release(&self, keys: Vec<String>) {
        let Some(mut connection) = self.connection.get().cloned() else { return };
        tokio::spawn(async move {
            for key in keys {
                let done: redis::RedisResult<i64> = redis::cmd("DECR").arg(&key).query_async(&mut connection).await;
                if let Err(e) = done {
                    tracing::warn!(error = %e, "could not free an in-flight place in Redis (it expires by itself)");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_names_its_problems() {
        let config = |url: Option<&str>, env: Option<&str>| RedisConfig {
            url: url.map(str::to_owned),
            url_env: env.map(str::to_owned),
            prefix: default_prefix(),
        };
        assert!(config(Some("redis://127.0.0.1:6379/0"), None).problems().is_empty());
        assert!(config(None, Some("REDIS_URL")).problems().is_empty());
        assert_eq!(config(None, None).problems()[0].1, "set exactly one of `url` and `url_env`");
        assert!(config(Some("rediss://h"), None).problems()[0].1.contains("not supported yet"));
        assert!(config(Some("127.0.0.1:6379"), None).problems()[0].1.contains("redis://127.0.0.1:6379/0"));
    }
}
