//! Toxic flows: a session that has taken in untrusted content and private data must not be
//! steered into sending that data out (the pattern of the published GitHub MCP leak: a
//! public issue tells the agent to copy a private repository into a public pull request).
//!
//! Tools (and resources) carry labels: from `servers.X.labels`, from `flows.labels` (which
//! may depend on the call's arguments: the same tool reads a private or a public repository)
//! and, unless turned off, from what a tool says of itself (its MCP annotations, its name's
//! leading verb). What a successful call takes
//! in marks the session (per caller and session); rules then refuse calls that would close a
//! toxic flow. By default: after untrusted content and private data, no public sink; after
//! untrusted content, nothing destructive.

use globset::{Glob, GlobSet, GlobSetBuilder};
use portcullis_mcp::object::RawObject;
use portcullis_mcp::peer::lock;
use portcullis_policy::access::Conditions;
use portcullis_store::{now_ms, Store};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Reads content anyone can write (issues, web pages, email).
pub const UNTRUSTED: &str = "untrusted_content";
/// Reads data that must not leave (private repositories, databases, mail boxes).
pub const PRIVATE: &str = "private_data";
/// Can send data where others read it (public pull requests, posts, email out).
pub const SINK: &str = "public_sink";
/// Deletes or overwrites.
pub const DESTRUCTIVE: &str = "destructive";

/// The `flows` section.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FlowsConfig {
    /// Track sessions and enforce the rules (default true).
    pub enabled: bool,
    /// Labels from what tools say of themselves: MCP annotations (`destructiveHint` →
    /// destructive; `openWorldHint` with `readOnlyHint: true` → untrusted_content, with
    /// `readOnlyHint: false` → public_sink) and names (`delete_*`, `remove_*`, `drop_*`, ... →
    /// destructive; `fetch*`, `browse*`, `scrape*`, `*web_search*` → untrusted_content).
    pub heuristics: bool,
    /// Labels that depend on the call: a server, tool globs, conditions on the arguments.
    pub labels: Vec<FlowLabelConfig>,
    /// The rules; default: `untrusted-data-to-sink` and `untrusted-to-destructive`.
    pub rules: Option<Vec<FlowRuleConfig>>,
}

impl Default for FlowsConfig {
    fn default() -> Self {
        FlowsConfig { enabled: true, heuristics: true, labels: Vec::new(), rules: None }
    }
}

/// Labels for some tools of one server, when the arguments say so.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowLabelConfig {
    pub server: String,
    /// Globs over the server's own tool names (default: all).
    #[serde(default)]
    pub tools: Vec<String>,
    /// Conditions on the call's arguments (all must hold), as in access rules.
    #[serde(default)]
    pub when: Option<Conditions>,
    pub labels: Vec<String>,
}

/// One rule: once every label of `after` has entered the session, calls to tools with any
/// label of `deny` are refused (`block`), need the user's yes (`ask`: the gateway asks through
/// the client, MCP elicitation; refused when the client cannot ask or the user says no), or
/// are only logged (`flag`).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowRuleConfig {
    pub id: String,
    pub after: Vec<String>,
    pub deny: Vec<String>,
    #[serde(default)]
    pub action: FlowAction,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FlowAction {
    #[default]
    Block,
    Ask,
    Flag,
}

fn default_rules() -> Vec<FlowRuleConfig> {
    vec![
        FlowRuleConfig {
            id: "untrusted-data-to-sink".into(),
            after: vec![UNTRUSTED.into(), PRIVATE.into()],
            deny: vec![SINK.into()],
            action: FlowAction::Block,
        },
        FlowRuleConfig {
            id: "untrusted-to-destructive".into(),
            after: vec![UNTRUSTED.into()],
            deny: vec![DESTRUCTIVE.into()],
            action: FlowAction::Block,
        },
    ]
}

struct LabelRule {
    server: String,
    tools: Option<GlobSet>,
    when: Option<Conditions>,
    labels: Vec<String>,
}

/// The compiled `flows` section.
pub struct FlowPolicy {
    enabled: bool,
    heuristics: bool,
    labels: Vec<LabelRule>,
    rules: Vec<FlowRuleConfig>,
}

/// A problem in the `flows` section, with its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowError {
    pub path: String,
    pub message: String,
}

impl FlowPolicy {
    pub fn compile(config: &FlowsConfig) -> Result<FlowPolicy, FlowError> {
        let err = |path: String, message: &str| FlowError { path, message: message.to_owned() };
        let mut labels = Vec::new();
        for (i, l) in config.labels.iter().enumerate() {
            let at = format!("flows.labels[{i}]");
            if l.labels.is_empty() {
                return Err(err(format!("{at}.labels"), "name at least one label, e.g. [private_data]"));
            }
            let tools = if l.tools.is_empty() {
                None
            } else {
                let mut set = GlobSetBuilder::new();
                for (j, g) in l.tools.iter().enumerate() {
                    let glob = Glob::new(g).map_err(|e| err(format!("{at}.tools[{j}]"), &e.to_string()))?;
                    set.add(glob);
                }
                Some(set.build().map_err(|e| err(format!("{at}.tools"), &e.to_string()))?)
            };
            for (j, c) in l.when.as_ref().map(Conditions::list).unwrap_or_default().iter().enumerate() {
                let tests = [c.starts_with.is_some(), c.equals.is_some(), c.one_of.is_some()];
                if c.arg.is_empty() || tests.iter().filter(|t| **t).count() != 1 {
                    return Err(err(
                        format!("{at}.when[{j}]"),
                        "name the `arg` and exactly one of `starts_with`, `equals`, `one_of`",
                    ));
                }
            }
            labels.push(LabelRule { server: l.server.clone(), tools, when: l.when.clone(), labels: l.labels.clone() });
        }
        let rules = config.rules.clone().unwrap_or_else(default_rules);
        let mut ids = std::collections::HashSet::new();
        for (i, r) in rules.iter().enumerate() {
            let at = format!("flows.rules[{i}]");
            if r.id.is_empty() || !ids.insert(r.id.as_str()) {
                return Err(err(format!("{at}.id"), "give each rule its own non-empty id"));
            }
            if r.after.is_empty() || r.deny.is_empty() {
                return Err(err(at, "a rule needs labels in both `after` and `deny`"));
            }
        }
        Ok(FlowPolicy { enabled: config.enabled, heuristics: config.heuristics, labels, rules })
    }

    /// Whether calls need their labels at all.
    pub fn active(&self) -> bool {
        self.enabled && !self.rules.is_empty()
    }

    /// The labels of a call: configured for the tool (`configured`, from `servers.X.labels`),
    /// from `flows.labels` for these arguments, and from the definition's annotations and name.
    pub fn labels_of(
        &self,
        server: &str,
        tool: &str,
        configured: Vec<String>,
        definition: Option<&RawObject>,
        args: Option<&Value>,
    ) -> Vec<String> {
        let mut out = configured;
        let mut add = |label: &str| {
            if !out.iter().any(|l| l == label) {
                out.push(label.to_owned());
            }
        };
        for rule in self.labels.iter().filter(|r| r.server == server) {
            let tool_ok = rule.tools.as_ref().is_none_or(|g| g.is_match(tool));
            if tool_ok && rule.when.as_ref().is_none_or(|w| w.hold(args)) {
                rule.labels.iter().for_each(|l| add(l));
            }
        }
        if self.heuristics {
            let hints = definition
                .and_then(|d| d.get("annotations"))
                .and_then(|a| serde_json::from_str::<Value>(a.get()).ok())
                .unwrap_or_default();
            let hint = |name: &str| hints.get(name).and_then(Value::as_bool);
            let read_only = hint("readOnlyHint") == Some(true);
            let verb = leading_verb(tool);
            if !read_only && (hint("destructiveHint") == Some(true) || DESTRUCTIVE_VERBS.contains(&verb.as_str())) {
                add(DESTRUCTIVE);
            }
            let lower = tool.to_ascii_lowercase();
            if UNTRUSTED_VERBS.contains(&verb.as_str()) || lower.contains("web_search") || lower.contains("search_web")
            {
                add(UNTRUSTED);
            }
            match (hint("openWorldHint"), hint("readOnlyHint")) {
                (Some(true), Some(true)) => add(UNTRUSTED),
                (Some(true), Some(false)) => add(SINK),
                _ => {}
            }
        }
        out
    }

    /// The rule a call with `labels` would break in a session marked `taint`, if any.
    fn breaks<'a>(&'a self, taint: &Taint, labels: &[String]) -> Option<(&'a FlowRuleConfig, String)> {
        self.rules.iter().find_map(|rule| {
            let sink = labels.iter().find(|l| rule.deny.contains(l))?;
            rule.after.iter().all(|a| taint.sources.contains_key(a)).then(|| (rule, sink.clone()))
        })
    }

    /// Whether some label of `server`'s tools depends on the call's arguments.
    pub fn reads_arguments(&self, server: &str) -> bool {
        self.labels.iter().any(|r| r.server == server && r.when.is_some())
    }

    /// Whether some rule could refuse a call with these labels.
    fn denies_any(&self, labels: &[String]) -> bool {
        self.rules.iter().any(|r| labels.iter().any(|l| r.deny.contains(l)))
    }

    /// Whether a label marks a session (some rule waits for it).
    fn marks(&self, label: &str) -> bool {
        self.rules.iter().any(|r| r.after.iter().any(|a| a == label))
    }
}

/// Tool names starting with these verbs delete or overwrite.
const DESTRUCTIVE_VERBS: &[&str] = &["delete", "remove", "drop", "destroy", "purge", "wipe", "truncate", "erase"];
/// Tool names starting with these verbs bring in what anyone on the web wrote.
const UNTRUSTED_VERBS: &[&str] = &["fetch", "browse", "scrape", "crawl"];

/// The first word of a tool name, lowercased: `delete` of `delete_file`, `deleteFile`, `delete-file`.
fn leading_verb(name: &str) -> String {
    let mut chars = name.chars();
    let mut verb: String = chars.next().map(|c| c.to_ascii_lowercase()).into_iter().collect();
    verb.extend(chars.take_while(char::is_ascii_lowercase));
    verb
}

/// What has entered one session: each marking label, with the first tool that brought it.
#[derive(Debug, Clone, Default)]
struct Taint {
    sources: BTreeMap<String, String>,
    touched: Option<Instant>,
}

/// A call refused (or flagged) by a flow rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowVerdict {
    pub rule: String,
    pub action: FlowAction,
    /// `label` ← `tool that brought it`, for each label the rule waited for.
    pub sources: Vec<(String, String)>,
    /// The label of the called tool that the rule denies.
    pub sink: String,
}

/// Sessions forgotten after this long without a call.
const IDLE: Duration = Duration::from_secs(24 * 3600);
/// At most this many sessions are tracked; the idlest go first.
const MAX_SESSIONS: usize = 100_000;

/// Every session's taint, kept across config reloads: in memory, and in the store (when
/// there is one) so every replica and a restarted gateway see the same.
#[derive(Default)]
pub struct Taints {
    sessions: Mutex<HashMap<(String, String), Taint>>,
    store: Option<Store>,
    /// Labels recorded so far: every so often old sessions are dropped from the store.
    recorded: AtomicU64,
}

impl Taints {
    pub fn new(store: Option<Store>) -> Taints {
        Taints { store, ..Taints::default() }
    }

    /// The verdict on calling a tool with `labels` in `session` of `caller`, if a rule objects.
    /// Only a call some rule could object to reads the store (what other replicas recorded).
    pub async fn check(
        &self,
        policy: &FlowPolicy,
        caller: &str,
        session: &str,
        labels: &[String],
    ) -> Option<FlowVerdict> {
        if !policy.active() || !policy.denies_any(labels) {
            return None;
        }
        if let Some(verdict) = self.verdict(policy, caller, session, labels) {
            return Some(verdict);
        }
        let store = self.store.as_ref()?;
        match store.taint(caller, session).await {
            Ok(rows) if !rows.is_empty() => {
                let mut sessions = lock(&self.sessions);
                let taint = sessions.entry((caller.to_owned(), session.to_owned())).or_default();
                taint.touched = Some(Instant::now());
                for (label, source) in rows {
                    taint.sources.entry(label).or_insert(source);
                }
            }
            Ok(_) => return None,
            Err(e) => {
                // This replica's own view still holds.
                tracing::error!(error = %e, "could not read what the session took in on other replicas");
                return None;
            }
        }
        self.verdict(policy, caller, session, labels)
    }

    fn verdict(&self, policy: &FlowPolicy, caller: &str, session: &str, labels: &[String]) -> Option<FlowVerdict> {
        let sessions = lock(&self.sessions);
        let taint = sessions.get(&(caller.to_owned(), session.to_owned()))?;
        let (rule, sink) = policy.breaks(taint, labels)?;
        let sources =
            rule.after.iter().map(|a| (a.clone(), taint.sources.get(a).cloned().unwrap_or_default())).collect();
        Some(FlowVerdict { rule: rule.id.clone(), action: rule.action, sources, sink })
    }

    /// Marks the session with what a successful call (of `what`, a tool or resource name as
    /// the client knows it) brought in; new marks go to the store before the call's result
    /// goes back, so the next call sees them on any replica.
    pub async fn record(&self, policy: &FlowPolicy, caller: &str, session: &str, labels: &[String], what: &str) {
        if !policy.active() || !labels.iter().any(|l| policy.marks(l)) {
            return;
        }
        let new: Vec<String> = {
            let mut sessions = lock(&self.sessions);
            if sessions.len() >= MAX_SESSIONS {
                evict(&mut sessions);
            }
            let taint = sessions.entry((caller.to_owned(), session.to_owned())).or_default();
            taint.touched = Some(Instant::now());
            let new: Vec<String> =
                labels.iter().filter(|l| policy.marks(l) && !taint.sources.contains_key(*l)).cloned().collect();
            for label in &new {
                tracing::info!(caller = %caller, label = %label, from = %what, "the session took in {label}");
                taint.sources.insert(label.clone(), what.to_owned());
            }
            new
        };
        let Some(store) = &self.store else { return };
        for label in &new {
            if let Err(e) = store.record_taint(caller, session, label, what, now_ms()).await {
                tracing::error!(error = %e, "could not share what the session took in with other replicas");
            }
        }
        if self.recorded.fetch_add(new.len() as u64, Ordering::Relaxed) % 1000 < new.len() as u64 {
            let idle = i64::try_from(IDLE.as_millis()).unwrap_or(i64::MAX);
            if let Err(e) = store.expire_taint(now_ms().saturating_sub(idle)).await {
                tracing::warn!(error = %e, "could not drop old sessions' taint");
            }
        }
    }

    /// Forgets a closed session (sessionless callers' marks expire after a day instead).
    pub fn forget(&self, session: &str) {
        if session.is_empty() {
            return;
        }
        lock(&self.sessions).retain(|(_, s), _| s != session);
        if let Some(store) = self.store.clone() {
            let session = session.to_owned();
            tokio::spawn(async move {
                if let Err(e) = store.forget_taint(&session).await {
                    tracing::warn!(error = %e, "could not forget a closed session's taint");
                }
            });
        }
    }
}

/// Drops idle sessions, or the idlest tenth when none is idle.
fn evict(sessions: &mut HashMap<(String, String), Taint>) {
    let now = Instant::now();
    sessions.retain(|_, t| t.touched.is_some_and(|at| now.duration_since(at) < IDLE));
    if sessions.len() >= MAX_SESSIONS {
        let mut ages: Vec<(Instant, (String, String))> =
            sessions.iter().map(|(k, t)| (t.touched.unwrap_or(now), k.clone())).collect();
        ages.sort();
        for (_, key) in ages.into_iter().take(MAX_SESSIONS / 10) {
            sessions.remove(&key);
        }
    }
}

/// What the session took in and from where: "untrusted content (from `gh__get_issue`) and ...".
fn took_in(verdict: &FlowVerdict) -> String {
    let took: Vec<String> =
        verdict.sources.iter().map(|(label, from)| format!("{} (from `{from}`)", label.replace('_', " "))).collect();
    took.join(" and ")
}

/// How a refusal reads to the agent (and so to the user): what entered the session, from
/// where, and why this call would close a toxic flow. `why` says why asking did not help.
pub fn explain(verdict: &FlowVerdict, tool: &str, why: Option<&str>) -> String {
    let why = why.map(|w| format!(" {w}.")).unwrap_or_default();
    format!(
        "`{tool}` is blocked by flow rule `{}`: this session has taken in {}, and `{tool}` is a {} tool.{why} \
         Tell the user what was about to happen; if they want it done, it can be done in a new session \
         that has not read that content.",
        verdict.rule,
        took_in(verdict),
        verdict.sink.replace('_', " ")
    )
}

/// The question put to the user for an `ask` rule.
pub fn question(verdict: &FlowVerdict, tool: &str) -> String {
    format!(
        "This conversation has taken in {}. The agent now wants to call `{tool}`, which is a {} tool: \
         what it read could be sent on. Allow this call?",
        took_in(verdict),
        verdict.sink.replace('_', " ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(yaml: &str) -> FlowPolicy {
        FlowPolicy::compile(&serde_yaml_ng::from_str(yaml).unwrap()).unwrap()
    }

    fn l(labels: &[&str]) -> Vec<String> {
        labels.iter().map(|s| (*s).to_owned()).collect()
    }

    #[tokio::test]
    async fn the_default_rules_need_both_untrusted_content_and_private_data_before_a_sink() {
        let p = policy("{}");
        let t = Taints::default();
        t.record(&p, "alice", "s1", &l(&[UNTRUSTED]), "gh__get_issue").await;
        assert_eq!(t.check(&p, "alice", "s1", &l(&[SINK])).await, None, "untrusted content alone may go out");
        let destructive = t.check(&p, "alice", "s1", &l(&[DESTRUCTIVE])).await.unwrap();
        assert_eq!(destructive.rule, "untrusted-to-destructive");
        t.record(&p, "alice", "s1", &l(&[PRIVATE]), "gh__get_file_contents").await;
        let v = t.check(&p, "alice", "s1", &l(&[SINK])).await.unwrap();
        assert_eq!((v.rule.as_str(), v.action, v.sink.as_str()), ("untrusted-data-to-sink", FlowAction::Block, SINK));
        let message = explain(&v, "gh__create_pull_request", None);
        assert!(
            message
                .contains("untrusted content (from `gh__get_issue`) and private data (from `gh__get_file_contents`)"),
            "{message}"
        );
        // Another session, or another caller, is clean.
        assert_eq!(t.check(&p, "alice", "s2", &l(&[SINK])).await, None);
        assert_eq!(t.check(&p, "bob", "s1", &l(&[SINK])).await, None);
        t.forget("s1");
        assert_eq!(t.check(&p, "alice", "s1", &l(&[SINK])).await, None);
    }

    #[tokio::test]
    async fn a_replica_sees_what_another_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("p.db")).await.unwrap();
        let (a, b) = (Taints::new(Some(store.clone())), Taints::new(Some(store)));
        let p = policy("{}");
        a.record(&p, "alice", "s1", &l(&[UNTRUSTED, PRIVATE]), "gh__read").await;
        let v = b.check(&p, "alice", "s1", &l(&[SINK])).await.expect("b refuses too");
        assert_eq!(
            v.sources,
            [(UNTRUSTED.to_owned(), "gh__read".to_owned()), (PRIVATE.to_owned(), "gh__read".to_owned())]
        );
    }

    #[test]
    fn labels_come_from_arguments_and_annotations() {
        let p = policy(
            "labels: [{ server: gh, tools: [get_file_contents], when: { arg: repo, one_of: [acme/private] }, labels: [private_data] }]",
        );
        let private = p.labels_of("gh", "get_file_contents", vec![], None, Some(&json!({ "repo": "acme/private" })));
        assert_eq!(private, [PRIVATE]);
        assert!(p
            .labels_of("gh", "get_file_contents", vec![], None, Some(&json!({ "repo": "acme/public" })))
            .is_empty());
        let raw = serde_json::value::RawValue::from_string(
            json!({ "name": "rm", "annotations": { "destructiveHint": true, "openWorldHint": true, "readOnlyHint": false } })
                .to_string(),
        )
        .unwrap();
        let def = RawObject::parse(&raw, "tool").unwrap();
        assert_eq!(p.labels_of("gh", "rm", l(&["custom"]), Some(&def), None), ["custom", DESTRUCTIVE, SINK]);
        let off = policy("heuristics: false");
        assert!(off.labels_of("gh", "rm", vec![], Some(&def), None).is_empty());
    }

    #[test]
    fn names_say_what_tools_do() {
        let p = policy("{}");
        let labels = |tool: &str| p.labels_of("s", tool, vec![], None, None);
        assert_eq!(labels("delete_file"), [DESTRUCTIVE]);
        assert_eq!(labels("deleteRepository"), [DESTRUCTIVE]);
        assert_eq!(labels("fetch"), [UNTRUSTED]);
        assert_eq!(labels("brave_web_search"), [UNTRUSTED]);
        assert!(
            labels("deleted_items_count").is_empty() && labels("read_file").is_empty() && labels("dropdown").is_empty()
        );
    }

    #[test]
    fn bad_sections_say_where() {
        let bad = |yaml: &str| FlowPolicy::compile(&serde_yaml_ng::from_str(yaml).unwrap()).err().unwrap().path;
        assert_eq!(bad("rules: [{ id: a, after: [], deny: [public_sink] }]"), "flows.rules[0]");
        assert_eq!(bad("labels: [{ server: s, labels: [x], when: { arg: repo } }]"), "flows.labels[0].when[0]");
        assert_eq!(bad("labels: [{ server: s, labels: [] }]"), "flows.labels[0].labels");
    }
}
