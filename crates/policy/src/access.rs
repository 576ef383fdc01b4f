//! What a caller may do: simple YAML rules (`access:`) compiled into Cedar policies, plus
//! raw Cedar for the rest, decided by the Cedar authorizer.
//!
//! The model: the principal is the caller (`Caller::"user:alice"` with attributes `user`,
//! `team`, `app`, `roles`, `method`); the resource a tool (`Tool::"fs__read_file"` with
//! `name` and `server`); the context the call's arguments (`context.args`, every value a
//! string: text as is, absolute paths normalized, anything else as compact JSON), the
//! client (`context.client`, the name it gave in `initialize`), the target's labels
//! (`context.labels`, from the server's `labels` config) and the time (`context.time` with
//! `unix`, `hour` and `weekday`, in UTC). Two
//! actions: `Action::"call_tool"` decides a call, `Action::"list_tool"` whether the tool
//! appears in the caller's `tools/list`. Cedar denies unless a policy permits, and a
//! `forbid` beats any `permit`. With no rules at all, everything is allowed.

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, Policy, PolicyId, PolicySet,
    Request, RestrictedExpression,
};
use portcullis_core::Principal;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

/// One rule: `allow` or `deny`, for whom, on which tools, under which argument conditions.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessRuleConfig {
    /// A name for the rule in errors and logs (default `access[N]`).
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub allow: Option<RuleBody>,
    #[serde(default)]
    pub deny: Option<RuleBody>,
}

/// Who and what a rule covers. Every field given must match; lists match any element. A
/// rule naming none of `tools`, `prompts` and `resources` covers all three; naming some, it
/// covers only those.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RuleBody {
    pub user: Option<Names>,
    pub team: Option<Names>,
    pub app: Option<Names>,
    pub role: Option<Names>,
    /// Server names (globs with `*`).
    pub servers: Option<Names>,
    /// Federated tool names (globs with `*`), e.g. `fs__read_*`.
    pub tools: Option<Names>,
    /// Federated prompt names (globs).
    pub prompts: Option<Names>,
    /// Federated resource URIs (globs), e.g. `fs+file:///workspace/*`.
    pub resources: Option<Names>,
    /// Labels of the target (any of them), from the server's `labels`, e.g. `destructive`.
    pub labels: Option<Names>,
    /// Client names (globs), as clients give them in `initialize`, e.g. `cursor*`.
    pub clients: Option<Names>,
    /// Conditions on the call's arguments (all must hold).
    pub when: Option<Conditions>,
}

/// What a decision may look at besides who and what: the call's arguments, the client and
/// the target's labels (the time is read when deciding).
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    pub args: Option<&'a Value>,
    pub client: &'a str,
    pub labels: &'a [String],
}

/// One name or a list.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Names {
    One(String),
    Many(Vec<String>),
}

impl Names {
    fn list(&self) -> Vec<&str> {
        match self {
            Names::One(s) => vec![s.as_str()],
            Names::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// One condition or a list of them.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Conditions {
    One(Condition),
    Many(Vec<Condition>),
}

/// A test of one argument. Absolute paths are normalized first (`/a/../b` is `/b`), so
/// `starts_with: /workspace/` cannot be escaped with `..`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The argument's name (top level of the tool's arguments).
    pub arg: String,
    #[serde(default)]
    pub starts_with: Option<String>,
    #[serde(default)]
    pub equals: Option<String>,
    #[serde(default)]
    pub one_of: Option<Vec<String>>,
}

impl Conditions {
    pub fn list(&self) -> Vec<&Condition> {
        match self {
            Conditions::One(c) => vec![c],
            Conditions::Many(v) => v.iter().collect(),
        }
    }

    /// Whether every condition holds for these arguments (evaluated directly, for the
    /// gateway's own rules; access rules compile them to Cedar instead).
    pub fn hold(&self, args: Option<&Value>) -> bool {
        self.list().iter().all(|c| c.holds(args))
    }
}

impl Condition {
    /// Whether the argument passes every test given (none given: it only has to be there).
    /// Strings that are absolute paths are normalized first, like the prefix.
    pub fn holds(&self, args: Option<&Value>) -> bool {
        let Some(value) = args.and_then(|a| a.get(&self.arg)) else { return false };
        let text = match value {
            Value::String(s) if s.starts_with('/') => normalize_path(s),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let prefix_ok = self.starts_with.as_ref().is_none_or(|p| {
            let p = if p.starts_with('/') { normalize_path(p) } else { p.clone() };
            text.starts_with(&p)
        });
        prefix_ok
            && self.equals.as_ref().is_none_or(|e| *e == text)
            && self.one_of.as_ref().is_none_or(|set| set.contains(&text))
    }
}

/// A rule that cannot be compiled, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct AccessError {
    pub path: String,
    pub message: String,
}

/// The decision on one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Denied by the named rule (a `deny` or `forbid`), or by no rule allowing it.
    Denied {
        rule: Option<String>,
    },
}

/// What is being used: a tool (called), a prompt (got) or a resource (read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Tool,
    Prompt,
    Resource,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Tool, Kind::Prompt, Kind::Resource];

    fn index(self) -> usize {
        self as usize
    }

    /// The Cedar entity type.
    fn entity(self) -> &'static str {
        ["Tool", "Prompt", "Resource"][self.index()]
    }

    /// The action of using one (`call_tool`, `get_prompt`, `read_resource`).
    fn use_action(self) -> &'static str {
        ["call_tool", "get_prompt", "read_resource"][self.index()]
    }

    /// The action deciding whether it appears in lists.
    fn list_action(self) -> &'static str {
        ["list_tool", "list_prompt", "list_resource"][self.index()]
    }

    /// The attribute its globs match.
    fn attr(self) -> &'static str {
        ["name", "name", "uri"][self.index()]
    }

    fn field(self) -> &'static str {
        ["tools", "prompts", "resources"][self.index()]
    }
}

/// The compiled rules.
pub struct Access {
    /// `None`: no rules, everything allowed.
    rules: Option<Rules>,
    authorizer: Authorizer,
    callers: CallerEntities,
}

/// Callers' entities, built once per distinct caller: building one evaluates every
/// attribute, which was a fifth of a decision.
#[derive(Default)]
struct CallerEntities {
    by_hash: RwLock<HashMap<u64, (Principal, Entity)>>,
}

/// More distinct callers than this and the cache starts over (it is only a cache).
const MAX_CACHED_CALLERS: usize = 10_000;

impl CallerEntities {
    fn entity(&self, principal: &Principal, uid: EntityUid) -> Result<Entity, String> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (principal.method as u8, &principal.user, &principal.team, &principal.app, &principal.roles).hash(&mut hasher);
        let hash = hasher.finish();
        let same = |p: &Principal| {
            p.method == principal.method
                && p.user == principal.user
                && p.team == principal.team
                && p.app == principal.app
                && p.roles == principal.roles
        };
        if let Some((p, entity)) = self.by_hash.read().unwrap_or_else(PoisonError::into_inner).get(&hash) {
            if same(p) && entity.uid() == uid {
                return Ok(entity.clone());
            }
        }
        let entity = caller_entity(principal, uid)?;
        let mut cache = self.by_hash.write().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MAX_CACHED_CALLERS {
            cache.clear();
        }
        let key = Principal { presented: None, key_id: None, ..principal.clone() };
        cache.insert(hash, (key, entity.clone()));
        Ok(entity)
    }
}

/// Cedar evaluates every policy it is given, and most rules name what they cover: so each
/// tool, prompt or resource gets the policies whose globs can match it (plus all raw Cedar),
/// worked out once and cached. Cedar still checks every condition.
struct Rules {
    compiled: Vec<CompiledRule>,
    raw: Vec<Policy>,
    /// The context parts some policy looks at; building the others would be wasted time.
    needs: Needs,
    by_target: RwLock<HashMap<(Kind, String), Arc<TargetPolicies>>>,
}

struct CompiledRule {
    servers: Option<Vec<String>>,
    /// The kinds covered, each with its name globs (`None`: any name).
    kinds: Vec<(Kind, Option<Vec<String>>)>,
    /// (kind, is the list policy, policy).
    policies: Vec<(Kind, bool, Policy)>,
}

struct TargetPolicies {
    using: PolicySet,
    listing: PolicySet,
    /// The target's entity (`name` or `uri`, and `server`), built once.
    entities: Entities,
    uid: EntityUid,
}

/// Tools whose policies are kept; past this the cache starts over (a bound, not a tuning).
const MAX_CACHED_TOOLS: usize = 4096;

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access").field("rules", &self.rules.as_ref().map(|r| r.compiled.len() + r.raw.len())).finish()
    }
}

impl Access {
    /// Compiles `access` rules and raw Cedar policies (`access_policies`).
    pub fn compile(rules: &[AccessRuleConfig], cedar: Option<&str>) -> Result<Access, AccessError> {
        let authorizer = Authorizer::new();
        if rules.is_empty() && cedar.is_none_or(|c| c.trim().is_empty()) {
            return Ok(Access { rules: None, authorizer, callers: CallerEntities::default() });
        }
        let mut compiled = Vec::new();
        let mut ids = HashSet::new();
        for (i, rule) in rules.iter().enumerate() {
            let path = format!("access[{i}]");
            let id = rule.id.clone().unwrap_or_else(|| path.clone());
            if !ids.insert(id.clone()) {
                return Err(AccessError {
                    path: format!("{path}.id"),
                    message: format!("`{id}` names another rule too"),
                });
            }
            let (kinds, texts) = compile_rule(rule, &path)?;
            let mut policies = Vec::new();
            for (n, (kind, list, text)) in texts.into_iter().enumerate() {
                let policy = Policy::parse(Some(PolicyId::new(format!("{id}#{n}"))), &text)
                    .map_err(|e| AccessError { path: path.clone(), message: format!("internal: {e}") })?;
                policies.push((kind, list, policy));
            }
            let body = rule.allow.as_ref().or(rule.deny.as_ref());
            let servers =
                body.and_then(|b| b.servers.as_ref()).map(|n| n.list().into_iter().map(str::to_owned).collect());
            compiled.push(CompiledRule { servers, kinds, policies });
        }
        let mut raw = Vec::new();
        if let Some(cedar) = cedar.filter(|c| !c.trim().is_empty()) {
            let set = PolicySet::from_str(cedar)
                .map_err(|e| AccessError { path: "access_policies".into(), message: format!("{e:?}") })?;
            for (n, policy) in set.policies().enumerate() {
                let id = policy.annotation("id").map_or_else(|| format!("access_policies[{n}]"), str::to_owned);
                raw.push(policy.new_id(PolicyId::new(format!("{id}#cedar"))));
            }
        }
        // A policy that reads a missing context attribute errs and does not apply (a
        // `forbid` would fail open), so anything a policy might read is provided: the YAML
        // rules say what they test, raw Cedar is searched for the attribute names.
        let raw_mentions = |word: &str| cedar.is_some_and(|c| c.contains(word));
        let yaml_tests = |test: fn(&RuleBody) -> bool| rules.iter().any(|r| r.allow.iter().chain(&r.deny).any(test));
        let needs = Needs {
            time: raw_mentions("time"),
            labels: raw_mentions("labels") || yaml_tests(|b| b.labels.is_some()),
            client: raw_mentions("client") || yaml_tests(|b| b.clients.is_some()),
        };
        let rules = Rules { compiled, raw, needs, by_target: RwLock::default() };
        // Every policy together once, so clashing ids are a config error, not a run-time one.
        rules.policies_for(None).map_err(|message| AccessError { path: "access_policies".into(), message })?;
        Ok(Access { rules: Some(rules), authorizer, callers: CallerEntities::default() })
    }

    /// No rules: everything is allowed.
    pub fn is_open(&self) -> bool {
        self.rules.is_none()
    }

    /// May `principal` call `tool` of `server` with `args` (the call's `arguments`)?
    pub fn may_call(&self, principal: &Principal, server: &str, tool: &str, args: Option<&Value>) -> Verdict {
        self.may_use(Kind::Tool, principal, server, tool, &Facts { args, ..Facts::default() })
    }

    /// Does `tool` appear in `principal`'s tool list?
    pub fn may_list(&self, principal: &Principal, server: &str, tool: &str) -> bool {
        self.may_see(Kind::Tool, principal, server, tool, &Facts::default())
    }

    /// May `principal` use (call, get, read) the named tool, prompt or resource (`name` is
    /// a resource's federated URI), given `facts`?
    pub fn may_use(&self, kind: Kind, principal: &Principal, server: &str, name: &str, facts: &Facts) -> Verdict {
        let Some(rules) = &self.rules else { return Verdict::Allowed };
        self.decide(&rules.for_target(kind, server, name), principal, kind, false, context(facts, rules.needs))
    }

    /// Does it appear in `principal`'s lists? (`facts.args` is not looked at.)
    pub fn may_see(&self, kind: Kind, principal: &Principal, server: &str, name: &str, facts: &Facts) -> bool {
        let Some(rules) = &self.rules else { return true };
        let facts = Facts { args: None, ..*facts };
        let context = context(&facts, rules.needs);
        self.decide(&rules.for_target(kind, server, name), principal, kind, true, context) == Verdict::Allowed
    }

    fn decide(
        &self,
        target: &TargetPolicies,
        principal: &Principal,
        kind: Kind,
        listing: bool,
        context: Vec<(String, RestrictedExpression)>,
    ) -> Verdict {
        let action = if listing { &TYPES.lists[kind.index()] } else { &TYPES.uses[kind.index()] };
        let caller = uid(&TYPES.caller, &principal.subject());
        let request = Context::from_pairs(context).map_err(|e| e.to_string()).and_then(|c| {
            Request::new(caller.clone(), action.clone(), target.uid.clone(), c, None).map_err(|e| e.to_string())
        });
        let entities = self
            .callers
            .entity(principal, caller)
            .and_then(|c| target.entities.clone().add_entities([c], None).map_err(|e| e.to_string()));
        let (Ok(request), Ok(entities)) = (request, entities) else {
            // Building a request from strings cannot fail; if it ever did, deny.
            return Verdict::Denied { rule: None };
        };
        let policies = if listing { &target.listing } else { &target.using };
        let response = self.authorizer.is_authorized(&request, policies, &entities);
        match response.decision() {
            Decision::Allow => Verdict::Allowed,
            Decision::Deny => {
                Verdict::Denied {
                    rule: response.diagnostics().reason().next().map(|id| {
                        id.to_string().rsplit_once('#').map_or_else(|| id.to_string(), |(r, _)| r.to_owned())
                    }),
                }
            }
        }
    }
}

impl Rules {
    /// The policies that can apply to one tool, prompt or resource of `server`.
    fn for_target(&self, kind: Kind, server: &str, name: &str) -> Arc<TargetPolicies> {
        let key = (kind, format!("{server}/{name}"));
        if let Some(found) = self.by_target.read().unwrap_or_else(PoisonError::into_inner).get(&key) {
            return found.clone();
        }
        // Ids are unique (checked at compile), so this cannot fail; if it did, no policy
        // would permit anything: deny all.
        let policies = Arc::new(self.policies_for(Some((kind, server, name))).unwrap_or_else(|_| TargetPolicies {
            using: PolicySet::new(),
            listing: PolicySet::new(),
            entities: Entities::empty(),
            uid: target_uid(kind, "", ""),
        }));
        let mut cache = self.by_target.write().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MAX_CACHED_TOOLS {
            cache.clear();
        }
        cache.insert(key, policies.clone());
        policies
    }

    /// The use and list policy sets for one target (`None`: every policy).
    fn policies_for(&self, target: Option<(Kind, &str, &str)>) -> Result<TargetPolicies, String> {
        let (mut using, mut listing) = (PolicySet::new(), PolicySet::new());
        let covers = |globs: &Option<Vec<String>>, name: &str| {
            globs.as_ref().is_none_or(|g| g.iter().any(|g| wildcard(g, name)))
        };
        for rule in &self.compiled {
            if let Some((kind, server, name)) = target {
                let named = rule.kinds.iter().any(|(k, globs)| *k == kind && covers(globs, name));
                if !named || !covers(&rule.servers, server) {
                    continue;
                }
            }
            for (k, list, policy) in &rule.policies {
                if target.is_some_and(|(kind, _, _)| kind != *k) {
                    continue;
                }
                let set = if *list { &mut listing } else { &mut using };
                set.add(policy.clone()).map_err(|e| e.to_string())?;
            }
        }
        for policy in &self.raw {
            using.add(policy.clone()).map_err(|e| e.to_string())?;
            listing.add(policy.clone()).map_err(|e| e.to_string())?;
        }
        let (kind, server, name) = target.unwrap_or((Kind::Tool, "", ""));
        let uid = target_uid(kind, server, name);
        let text = |s: &str| RestrictedExpression::new_string(s.to_owned());
        let attrs = HashMap::from([(kind.attr().to_owned(), text(name)), ("server".to_owned(), text(server))]);
        let entity = Entity::new(uid.clone(), attrs, HashSet::new()).map_err(|e| e.to_string())?;
        let entities = Entities::from_entities([entity], None).map_err(|e| e.to_string())?;
        Ok(TargetPolicies { using, listing, entities, uid })
    }
}

/// `*`-only wildcard matching, as Cedar's `like` does it.
fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// The entity types and actions, parsed once (parsing a name runs Cedar's parser), indexed
/// by [`Kind`].
struct Types {
    caller: EntityTypeName,
    targets: [EntityTypeName; 3],
    uses: [EntityUid; 3],
    lists: [EntityUid; 3],
}

static TYPES: LazyLock<Types> = LazyLock::new(|| {
    // Constants of this module: they parse.
    let name = |s: &str| EntityTypeName::from_str(s).unwrap_or_else(|_| unreachable!("entity type {s} parses"));
    let action = |a: &str| EntityUid::from_type_name_and_id(name("Action"), EntityId::new(a));
    Types {
        caller: name("Caller"),
        targets: Kind::ALL.map(|k| name(k.entity())),
        uses: Kind::ALL.map(|k| action(k.use_action())),
        lists: Kind::ALL.map(|k| action(k.list_action())),
    }
});

fn uid(kind: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(kind.clone(), EntityId::new(id))
}

fn target_uid(kind: Kind, server: &str, name: &str) -> EntityUid {
    uid(&TYPES.targets[kind.index()], &format!("{server}/{name}"))
}

/// The caller as a Cedar entity: `user`, `team`, `app` when known, `roles`, `method`.
fn caller_entity(principal: &Principal, uid: EntityUid) -> Result<Entity, String> {
    let text = |s: &str| RestrictedExpression::new_string(s.to_owned());
    let mut attrs = HashMap::from([
        ("roles".to_owned(), RestrictedExpression::new_set(principal.roles.iter().map(|r| text(r)))),
        ("method".to_owned(), text(method_name(principal.method))),
    ]);
    for (name, value) in [("user", &principal.user), ("team", &principal.team), ("app", &principal.app)] {
        if let Some(value) = value {
            attrs.insert(name.to_owned(), text(value));
        }
    }
    Entity::new(uid, attrs, HashSet::new()).map_err(|e| e.to_string())
}

fn method_name(method: portcullis_core::AuthMethod) -> &'static str {
    match method {
        portcullis_core::AuthMethod::Anonymous => "anonymous",
        portcullis_core::AuthMethod::ApiKey => "api_key",
        portcullis_core::AuthMethod::Jwt => "jwt",
    }
}

/// Which optional parts of the request context some policy reads.
#[derive(Debug, Clone, Copy, Default)]
struct Needs {
    time: bool,
    labels: bool,
    client: bool,
}

/// The request context (see the module doc): `args`, every top-level argument as a
/// string; and, when some policy reads them, `client`, `labels` and `time`.
fn context(facts: &Facts, needs: Needs) -> Vec<(String, RestrictedExpression)> {
    let fields: Vec<(String, RestrictedExpression)> = facts
        .args
        .and_then(Value::as_object)
        .map(|args| {
            args.iter()
                .map(|(k, v)| {
                    let s = match v {
                        Value::String(s) if s.starts_with('/') => normalize_path(s),
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), RestrictedExpression::new_string(s))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut context =
        vec![("args".to_owned(), RestrictedExpression::new_record(fields).unwrap_or_else(|_| empty_record()))];
    if needs.client {
        context.push(("client".to_owned(), RestrictedExpression::new_string(facts.client.to_owned())));
    }
    if needs.labels {
        let labels = facts.labels.iter().map(|l| RestrictedExpression::new_string(l.clone()));
        context.push(("labels".to_owned(), RestrictedExpression::new_set(labels)));
    }
    if needs.time {
        context.push(("time".to_owned(), time_now()));
    }
    context
}

/// `context.time`: `unix` seconds, the UTC `hour` (0-23) and `weekday` (`mon` ... `sun`).
fn time_now() -> RestrictedExpression {
    let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let unix = i64::try_from(unix).unwrap_or(i64::MAX);
    let days = unix.div_euclid(86_400);
    // 1970-01-01 was a Thursday.
    let weekday = ["thu", "fri", "sat", "sun", "mon", "tue", "wed"][usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    RestrictedExpression::new_record([
        ("unix".to_owned(), RestrictedExpression::new_long(unix)),
        ("hour".to_owned(), RestrictedExpression::new_long(unix.rem_euclid(86_400) / 3600)),
        ("weekday".to_owned(), RestrictedExpression::new_string(weekday.to_owned())),
    ])
    .unwrap_or_else(|_| empty_record())
}

fn empty_record() -> RestrictedExpression {
    RestrictedExpression::new_record(Vec::<(String, RestrictedExpression)>::new())
        .unwrap_or_else(|_| unreachable!("an empty record is valid"))
}

/// Lexically resolves `.`, `..` and repeated slashes of an absolute path; `..` never goes
/// above the root. A trailing slash is kept (`/workspace/` stays a directory).
pub fn normalize_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut out = format!("/{}", parts.join("/"));
    let ends_as_dir = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    if ends_as_dir && out != "/" {
        out.push('/');
    }
    out
}

/// The kinds one rule covers (with their name globs) and its Cedar policies: for each kind,
/// a use policy and (unless it is a deny that depends on the arguments) a list policy.
#[allow(clippy::type_complexity)]
fn compile_rule(
    rule: &AccessRuleConfig,
    path: &str,
) -> Result<(Vec<(Kind, Option<Vec<String>>)>, Vec<(Kind, bool, String)>), AccessError> {
    let err = |field: &str, message: String| AccessError { path: format!("{path}{field}"), message };
    let (effect, body, key) = match (&rule.allow, &rule.deny) {
        (Some(b), None) => ("permit", b, ".allow"),
        (None, Some(b)) => ("forbid", b, ".deny"),
        _ => return Err(err("", "give exactly one of `allow:` or `deny:`".into())),
    };
    let mut who = Vec::new();
    for (field, names) in [("user", &body.user), ("team", &body.team), ("app", &body.app)] {
        if let Some(names) = names {
            let list = literals(&names.list(), &format!("{key}.{field}"), path)?;
            who.push(format!("principal has {field} && [{list}].contains(principal.{field})"));
        }
    }
    if let Some(roles) = &body.role {
        let list = literals(&roles.list(), &format!("{key}.role"), path)?;
        who.push(format!("principal.roles.containsAny([{list}])"));
    }
    // `resource.<attr> like g1 || ...`, after checking the globs.
    let globs_test = |field: &str, attr: &str, names: &Names| -> Result<String, AccessError> {
        let globs = names.list();
        if globs.is_empty() {
            return Err(err(
                &format!("{key}.{field}"),
                "an empty list matches nothing; leave the field out to match all".into(),
            ));
        }
        let mut any = Vec::new();
        for g in globs {
            if g.contains('?') || g.contains('[') {
                return Err(err(&format!("{key}.{field}"), format!("`{g}`: only `*` is a wildcard here")));
            }
            any.push(format!("resource.{attr} like {}", like_pattern(g, true)));
        }
        Ok(format!("({})", any.join(" || ")))
    };
    let mut what = Vec::new();
    if let Some(servers) = &body.servers {
        what.push(globs_test("servers", "server", servers)?);
    }
    if let Some(labels) = &body.labels {
        let list = labels.list();
        if list.is_empty() {
            return Err(err(&format!("{key}.labels"), "name at least one label".into()));
        }
        what.push(format!("context.labels.containsAny([{}])", literals(&list, &format!("{key}.labels"), path)?));
    }
    if let Some(clients) = &body.clients {
        let list = clients.list();
        if list.is_empty() {
            return Err(err(&format!("{key}.clients"), "name at least one client".into()));
        }
        let any: Vec<String> = list.iter().map(|g| format!("context.client like {}", like_pattern(g, true))).collect();
        what.push(format!("({})", any.join(" || ")));
    }
    let named: Vec<(Kind, &Names)> = Kind::ALL
        .iter()
        .filter_map(|&k| [&body.tools, &body.prompts, &body.resources][k.index()].as_ref().map(|n| (k, n)))
        .collect();
    let kinds: Vec<(Kind, Option<&Names>)> = if named.is_empty() {
        Kind::ALL.iter().map(|&k| (k, None)).collect()
    } else {
        named.into_iter().map(|(k, n)| (k, Some(n))).collect()
    };
    let conditions: Vec<&Condition> = body.when.as_ref().map(Conditions::list).unwrap_or_default();
    let mut args = Vec::new();
    for (i, c) in conditions.iter().enumerate() {
        let at = if matches!(body.when, Some(Conditions::Many(_))) {
            format!("{key}.when[{i}]")
        } else {
            format!("{key}.when")
        };
        if c.arg.is_empty() {
            return Err(err(&format!("{at}.arg"), "name the argument".into()));
        }
        let arg = format!("context.args[{}]", literal(&c.arg));
        let has = format!("context.args has {}", literal(&c.arg));
        let test = match (&c.starts_with, &c.equals, &c.one_of) {
            (Some(prefix), None, None) => {
                let prefix = if prefix.starts_with('/') { normalize_path(prefix) } else { prefix.clone() };
                format!("{arg} like {}", like_pattern(&format!("{prefix}*"), false))
            }
            (None, Some(value), None) => format!("{arg} == {}", literal(value)),
            (None, None, Some(values)) if !values.is_empty() => {
                let list: Vec<&str> = values.iter().map(String::as_str).collect();
                format!("[{}].contains({arg})", literals(&list, &format!("{at}.one_of"), path)?)
            }
            _ => return Err(err(&at, "give exactly one of `starts_with`, `equals` or a non-empty `one_of`".into())),
        };
        args.push(format!("({has} && {test})"));
    }
    let clause =
        |parts: &[String]| if parts.is_empty() { String::new() } else { format!(" when {{ {} }}", parts.join(" && ")) };
    let mut covered = Vec::new();
    let mut out = Vec::new();
    for (kind, names) in kinds {
        let mut base = who.clone();
        base.extend(what.iter().cloned());
        if let Some(names) = names {
            base.push(globs_test(kind.field(), kind.attr(), names)?);
        }
        let mut using = base.clone();
        using.extend(args.iter().cloned());
        let (entity, act, list) = (kind.entity(), kind.use_action(), kind.list_action());
        let policy = |action: &str, parts: &[String]| {
            format!("{effect}(principal, action == Action::\"{action}\", resource is {entity}){};", clause(parts))
        };
        out.push((kind, false, policy(act, &using)));
        // It shows in lists when some rule could allow using it; a deny that depends on the
        // arguments does not hide it (other arguments may be allowed).
        if effect == "permit" || args.is_empty() {
            out.push((kind, true, policy(list, &base)));
        }
        covered.push((kind, names.map(|n| n.list().into_iter().map(str::to_owned).collect())));
    }
    Ok((covered, out))
}

fn literals(names: &[&str], field: &str, path: &str) -> Result<String, AccessError> {
    if names.is_empty() || names.iter().any(|n| n.is_empty()) {
        return Err(AccessError { path: format!("{path}{field}"), message: "names must not be empty".into() });
    }
    Ok(names.iter().map(|n| literal(n)).collect::<Vec<_>>().join(", "))
}

/// A Cedar string literal.
fn literal(s: &str) -> String {
    quoted(s, |_| "*")
}

/// A Cedar `like` pattern: `*` is a wildcard when `glob`; otherwise only the last one (the
/// one a `starts_with` prefix gets appended) is, and the rest are literal stars.
fn like_pattern(s: &str, glob: bool) -> String {
    let last = s.len().saturating_sub(1);
    quoted(s, |i| if glob || i == last { "*" } else { "\\*" })
}

/// `s` in double quotes with Cedar's escapes; `star(i)` writes the `*` at byte `i`.
fn quoted(s: &str, star: impl Fn(usize) -> &'static str) -> String {
    let mut out = String::from("\"");
    for (i, c) in s.char_indices() {
        match c {
            '*' => out.push_str(star(i)),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::AuthMethod;
    use serde_json::json;

    fn rules(yaml: Value) -> Access {
        let rules: Vec<AccessRuleConfig> = serde_json::from_value(yaml).unwrap();
        Access::compile(&rules, None).unwrap()
    }

    fn who(user: &str, team: Option<&str>) -> Principal {
        Principal {
            method: AuthMethod::ApiKey,
            user: Some(user.into()),
            team: team.map(Into::into),
            app: None,
            roles: vec!["dev".into()],
            key_id: Some("k".into()),
            presented: None,
        }
    }

    fn sketch() -> Access {
        rules(json!([
            { "allow": { "team": "eng", "tools": ["fs__read_*", "fs__list_*"] } },
            { "deny": { "tools": ["*delete*"] } },
            { "id": "workspace-writes", "allow": { "team": "eng", "tools": "fs__write_file",
                "when": { "arg": "path", "starts_with": "/workspace/" } } },
        ]))
    }

    #[test]
    fn the_issue_sketch_allows_reads_denies_deletes_and_confines_writes() {
        let a = sketch();
        let (eng, ops) = (who("alice", Some("eng")), who("bob", Some("ops")));
        assert_eq!(a.may_call(&eng, "fs", "fs__read_file", None), Verdict::Allowed);
        assert_eq!(a.may_call(&ops, "fs", "fs__read_file", None), Verdict::Denied { rule: None });
        assert_eq!(
            a.may_call(&eng, "fs", "fs__delete_file", None),
            Verdict::Denied { rule: Some("access[1]".into()) },
            "the deny names itself"
        );
        let write =
            |path: &str| a.may_call(&eng, "fs", "fs__write_file", Some(&json!({ "path": path, "content": "x" })));
        assert_eq!(write("/workspace/a.txt"), Verdict::Allowed);
        assert_eq!(write("/etc/passwd"), Verdict::Denied { rule: None });
        assert_eq!(write("/workspace/../etc/passwd"), Verdict::Denied { rule: None }, "normalized before matching");
        assert_eq!(write("/workspace//./sub/../b.txt"), Verdict::Allowed);
        assert_eq!(
            a.may_call(&eng, "fs", "fs__write_file", Some(&json!({ "content": "x" }))),
            Verdict::Denied { rule: None }
        );
        assert_eq!(
            a.may_call(&eng, "fs", "fs__write_file", Some(&json!({ "path": ["/workspace/a"] }))),
            Verdict::Denied { rule: None }
        );

        // The same user in another team (a changed claim): decided afresh, not from the
        // cached entity of the first.
        let moved = who("alice", Some("ops"));
        assert_eq!(a.may_call(&moved, "fs", "fs__read_file", None), Verdict::Denied { rule: None });
        assert_eq!(a.may_call(&eng, "fs", "fs__read_file", None), Verdict::Allowed);

        // Lists: what some call could be allowed for; never the denied.
        assert!(a.may_list(&eng, "fs", "fs__read_file") && a.may_list(&eng, "fs", "fs__write_file"));
        assert!(!a.may_list(&eng, "fs", "fs__delete_file") && !a.may_list(&ops, "fs", "fs__read_file"));
    }

    #[test]
    fn labels_clients_and_time_are_in_the_context() {
        let a = Access::compile(
            &serde_json::from_value::<Vec<AccessRuleConfig>>(json!([
                { "allow": { "team": "eng" } },
                { "id": "no-destruction-by-contractors", "deny": { "user": "carl", "labels": ["destructive"] } },
                { "id": "no-cursor-writes", "deny": { "clients": "cursor*", "labels": "writes" } },
            ]))
            .unwrap(),
            // Raw Cedar sees the time (a policy whose context is missing errs and does not apply).
            Some(concat!(
                "@id(\"time-lock\") forbid(principal, action, resource) when { resource.name == \"fs__time_locked\" && ",
                "context.time.unix > 315532800 && context.time.hour >= 0 && context.time.hour < 24 && ",
                "[\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", \"sun\"].contains(context.time.weekday) };"
            )),
        )
        .unwrap();
        let (alice, carl) = (who("alice", Some("eng")), who("carl", Some("eng")));
        let destructive = ["destructive".to_owned()];
        let facts = |client, labels| Facts { args: None, client, labels };
        let call = |p: &Principal, f: &Facts| a.may_use(Kind::Tool, p, "fs", "fs__delete_file", f);
        assert_eq!(call(&alice, &facts("claude-code", &destructive)), Verdict::Allowed);
        assert_eq!(
            call(&carl, &facts("claude-code", &destructive)),
            Verdict::Denied { rule: Some("no-destruction-by-contractors".into()) }
        );
        assert_eq!(call(&carl, &facts("claude-code", &[])), Verdict::Allowed, "unlabelled tools are not covered");
        assert!(!a.may_see(Kind::Tool, &carl, "fs", "fs__delete_file", &facts("x", &destructive)), "hidden from lists");
        let writes = ["writes".to_owned()];
        assert_eq!(
            call(&alice, &facts("cursor-vscode", &writes)),
            Verdict::Denied { rule: Some("no-cursor-writes".into()) }
        );
        assert_eq!(call(&alice, &facts("claude-code", &writes)), Verdict::Allowed);
        assert_eq!(
            a.may_use(Kind::Tool, &alice, "fs", "fs__time_locked", &Facts::default()),
            Verdict::Denied { rule: Some("time-lock".into()) }
        );
    }

    #[test]
    fn no_rules_allow_everything_and_roles_users_and_one_of_match() {
        let open = Access::compile(&[], None).unwrap();
        assert!(open.is_open() && open.may_list(&Principal::anonymous(), "s", "t"));
        let a = rules(json!([
            { "allow": { "role": ["dev"], "tools": "gh__*", "when": [{ "arg": "repo", "one_of": ["acme/api", "acme/web"] }] } },
            { "allow": { "user": ["carol"], "servers": "db" } },
        ]));
        let alice = who("alice", None);
        assert_eq!(a.may_call(&alice, "gh", "gh__create_issue", Some(&json!({"repo": "acme/api"}))), Verdict::Allowed);
        assert!(matches!(
            a.may_call(&alice, "gh", "gh__create_issue", Some(&json!({"repo": "acme/secret"}))),
            Verdict::Denied { .. }
        ));
        assert!(matches!(a.may_call(&alice, "db", "db__query", None), Verdict::Denied { .. }));
        assert_eq!(a.may_call(&who("carol", None), "db", "db__query", None), Verdict::Allowed);
        assert!(matches!(a.may_call(&Principal::anonymous(), "db", "db__query", None), Verdict::Denied { .. }));
    }

    #[test]
    fn raw_cedar_joins_the_rules_and_bad_rules_name_their_path() {
        let cedar = r#"@id("no-nights") forbid(principal, action, resource) when { principal has app && principal.app == "batch" };
                       permit(principal, action, resource is Tool) when { principal has app };"#;
        let a = Access::compile(&[], Some(cedar)).unwrap();
        let batch = Principal { app: Some("batch".into()), user: None, ..who("x", None) };
        assert_eq!(a.may_call(&batch, "s", "t", None), Verdict::Denied { rule: Some("no-nights".into()) });
        let ci = Principal { app: Some("ci".into()), user: None, ..who("x", None) };
        assert_eq!(a.may_call(&ci, "s", "t", None), Verdict::Allowed);

        let bad = |v: Value| {
            let rules: Vec<AccessRuleConfig> = serde_json::from_value(v).unwrap();
            Access::compile(&rules, None).unwrap_err()
        };
        assert_eq!(bad(json!([{ "id": "neither" }])).path, "access[0]");
        assert_eq!(bad(json!([{ "allow": { "tools": "a?" } }])).path, "access[0].allow.tools");
        assert_eq!(bad(json!([{ "allow": { "when": { "arg": "p" } } }])).path, "access[0].allow.when");
        assert!(Access::compile(&[], Some("permit(principal, action")).unwrap_err().path == "access_policies");
    }

    #[test]
    fn quotes_and_stars_in_names_stay_literal() {
        let a = rules(json!([{ "allow": { "tools": "we\"ird*", "when": { "arg": "p", "starts_with": "/a*b/" } } }]));
        let p = who("alice", None);
        assert_eq!(a.may_call(&p, "s", "we\"ird_tool", Some(&json!({"p": "/a*b/c"}))), Verdict::Allowed);
        assert!(matches!(a.may_call(&p, "s", "we\"ird_tool", Some(&json!({"p": "/aXb/c"}))), Verdict::Denied { .. }));
    }

    #[test]
    fn rules_cover_the_kinds_they_name_and_all_kinds_when_they_name_none() {
        let a = rules(json!([
            { "allow": { "team": "eng", "tools": "fs__*" } },
            { "allow": { "resources": "fs+file:///workspace/*" } },
            { "allow": { "user": "alice", "prompts": "*" } },
            { "deny": { "team": "ops" } },
        ]));
        let (alice, bob, olga) = (who("alice", Some("eng")), who("bob", Some("eng")), who("olga", Some("ops")));
        assert_eq!(a.may_use(Kind::Prompt, &alice, "fs", "fs__review", &Facts::default()), Verdict::Allowed);
        assert!(matches!(
            a.may_use(Kind::Prompt, &bob, "fs", "fs__review", &Facts::default()),
            Verdict::Denied { rule: None }
        ));
        assert_eq!(
            a.may_use(Kind::Resource, &bob, "fs", "fs+file:///workspace/a.txt", &Facts::default()),
            Verdict::Allowed
        );
        assert!(matches!(
            a.may_use(Kind::Resource, &bob, "fs", "fs+file:///etc/passwd", &Facts::default()),
            Verdict::Denied { .. }
        ));
        assert!(a.may_see(Kind::Resource, &bob, "fs", "fs+file:///workspace/a.txt", &Facts::default()));
        assert!(!a.may_see(Kind::Prompt, &bob, "fs", "fs__review", &Facts::default()));
        // The deny names no kind: it covers tools, prompts and resources.
        for kind in [Kind::Tool, Kind::Prompt, Kind::Resource] {
            let name = if kind == Kind::Resource { "fs+file:///workspace/a.txt" } else { "fs__x" };
            assert_eq!(
                a.may_use(kind, &olga, "fs", name, &Facts::default()),
                Verdict::Denied { rule: Some("access[3]".into()) }
            );
        }
    }

    #[test]
    fn wildcards_match_like_cedar() {
        for (p, t) in [
            ("fs__read_*", "fs__read_file"),
            ("*delete*", "fs__delete_file"),
            ("*", ""),
            ("a*b*c", "aXbYc"),
            ("x", "x"),
        ] {
            assert!(wildcard(p, t), "{p} {t}");
        }
        for (p, t) in [("fs__read_*", "fs__write"), ("*delete", "deleted"), ("a*b", "a"), ("x", "xy")] {
            assert!(!wildcard(p, t), "{p} {t}");
        }
    }

    #[test]
    fn paths_normalize_lexically() {
        assert_eq!(normalize_path("/workspace/../etc/passwd"), "/etc/passwd");
        let c: Conditions = serde_json::from_value(json!([{ "arg": "repo", "one_of": ["acme/private"] },
            { "arg": "path", "starts_with": "/docs/" }]))
        .unwrap();
        assert!(c.hold(Some(&json!({ "repo": "acme/private", "path": "/docs/a.md" }))));
        assert!(!c.hold(Some(&json!({ "repo": "acme/private", "path": "/docs/../etc/passwd" }))));
        assert!(!c.hold(Some(&json!({ "repo": "acme/public", "path": "/docs/a.md" }))));
        assert!(!c.hold(None));
        assert_eq!(normalize_path("/../../x"), "/x");
        assert_eq!(normalize_path("/a//b/./c/"), "/a/b/c/");
        assert_eq!(normalize_path("/"), "/");
        assert_eq!(normalize_path("/a/b/.."), "/a/");
    }
}
