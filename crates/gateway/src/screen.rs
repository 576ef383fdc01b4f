//! Poisoned tools are withheld. A tool whose definition carries instructions for the model
//! (the guard's tool inspection: hidden instructions, requests for credentials or dotfiles,
//! side-channel parameters, mentions of other servers' tools, every injection detector) is
//! left out of `tools/list` and its calls are refused when the caller's guard profile blocks
//! the finding (the default for `poisoning` and `injection`); a profile that flags lists it
//! and logs it. The poisoned text never reaches the model.
//!
//! Verdicts are cached per profile, server and tool, and recomputed when the definition
//! changes (a hash of its JSON), so a list costs one hash per tool once screened.
//!
//! Names are screened across servers too ([`shadowed`]): a tool named like another
//! server's tool without being it (`read_fіle` beside `read_file`) is withheld.

use portcullis_guard::tool::{confusable_names, is_plain_name};
use portcullis_guard::{Action, Guard, Profile};
use portcullis_mcp::object::RawObject;
use portcullis_mcp::peer::lock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What screening decided for one tool definition.
#[derive(Debug, Clone)]
pub struct Screened {
    /// The profile's action for the worst finding (monitor mode already applied).
    pub action: Action,
    /// `detector in field` for each finding acted on.
    pub findings: Vec<String>,
}

impl Screened {
    pub fn withheld(&self) -> bool {
        self.action >= Action::Block
    }
}

/// (profile, server, tool)
type Key = (String, String, String);

/// Server -> tool -> why it is withheld as a look-alike.
pub type Shadows = HashMap<String, HashMap<String, String>>;

#[derive(Default)]
pub struct ToolScreen {
    /// The verdict on each tool, with the hash of the definition it was made on.
    cache: Mutex<HashMap<Key, (u64, Screened)>>,
    /// The look-alike names last found, with the lists (their serial numbers) and the pins
    /// version they were found in: a call costs a comparison, not a pass over every name.
    shadows: Mutex<Option<FoundShadows>>,
}

/// Look-alikes found in the lists with these serial numbers, under this pins version.
type FoundShadows = (Vec<u64>, i64, Arc<Shadows>);

impl ToolScreen {
    /// The look-alike names among lists identified by `lists` (serial numbers) under pins
    /// `version`, from cache or from `find`.
    pub fn shadows(&self, lists: Vec<u64>, version: i64, find: impl FnOnce() -> Shadows) -> Arc<Shadows> {
        let mut cached = lock(&self.shadows);
        if let Some((key, v, shadows)) = cached.as_ref() {
            if *key == lists && *v == version {
                return shadows.clone();
            }
        }
        let shadows = Arc::new(find());
        *cached = Some((lists, version, shadows.clone()));
        shadows
    }

    /// The verdict on `tool` of `server` under `profile`; `others` are other servers' tool
    /// names (a description that mentions them shadows them).
    pub fn check(&self, guard: &Guard, profile: &Profile, server: &str, tool: &RawObject, others: &[&str]) -> Screened {
        let hash = tool.fingerprint();
        let name = tool.get_str("name").unwrap_or_default();
        let key = (profile.name.clone(), server.to_owned(), name.clone());
        if let Some((h, verdict)) = lock(&self.cache).get(&key) {
            if *h == hash {
                return verdict.clone();
            }
        }
        let definition: serde_json::Value = serde_json::from_str(tool.to_raw().get()).unwrap_or_default();
        let inspection = guard.inspect_tool(profile, &definition, others);
        let mut findings: Vec<String> = inspection
            .decisions
            .iter()
            .map(|(f, _)| format!("{} in {}", f.finding.detector.as_str(), f.field))
            .collect();
        findings.dedup();
        let verdict = Screened { action: inspection.enforced, findings };
        if inspection.action >= Action::Flag {
            tracing::warn!(
                server = %server,
                tool = %name,
                action = ?verdict.action,
                findings = %verdict.findings.join(", "),
                "tool definition carries instructions for the model"
            );
        }
        lock(&self.cache).insert(key, (hash, verdict.clone()));
        verdict
    }
}

/// The tools that imitate another server's tool by name, with why. A look-alike name: beside
/// a plain-ASCII original, the names with other scripts' letters go; among plain look-alikes
/// (`send_ernail`, `read_fiIe`), all but the name pinned first (all of them when no pin says
/// which came first). The same federated name twice: a server without a prefix listing
/// `github__create_issue` beside the `github` server's own goes. Names are compared as the
/// upstreams give them and as clients see them (a server without a prefix can imitate a
/// prefixed name). `tools` are (server, upstream name, federated name); `pinned_at` says when
/// a server's tool was first approved.
pub fn shadowed<'a>(
    tools: &'a [(&'a str, String, String)],
    pinned_at: impl Fn(&str, &str) -> Option<i64>,
) -> HashMap<(&'a str, &'a str), String> {
    let upstream: Vec<(&str, &str)> = tools.iter().map(|(server, name, _)| (*server, name.as_str())).collect();
    let federated: Vec<(&str, &str)> = tools.iter().map(|(server, _, shown)| (*server, shown.as_str())).collect();
    let mut out = HashMap::new();
    for names in [&upstream, &federated] {
        for group in confusable_names(names) {
            for (i, why) in impostors(names, &group, tools, &pinned_at) {
                out.insert((tools[i].0, tools[i].1.as_str()), why);
            }
        }
    }
    let mut by_shown: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, (_, shown)) in federated.iter().enumerate() {
        by_shown.entry(shown).or_default().push(i);
    }
    for group in by_shown.values().filter(|g| g.len() > 1) {
        let prefixed = group.iter().copied().find(|&j| tools[j].1 != tools[j].2);
        for &i in group.iter().filter(|&&i| tools[i].1 == tools[i].2) {
            if let Some(j) = prefixed.filter(|&j| tools[j].0 != tools[i].0) {
                out.insert(
                    (tools[i].0, tools[i].1.as_str()),
                    format!("its name is that of `{}` of server `{}`", tools[j].2, tools[j].0),
                );
            }
        }
    }
    out
}

/// The members of one look-alike group that are withheld, with why.
fn impostors(
    names: &[(&str, &str)],
    group: &[usize],
    tools: &[(&str, String, String)],
    pinned_at: &impl Fn(&str, &str) -> Option<i64>,
) -> Vec<(usize, String)> {
    let plain: Vec<usize> = group.iter().copied().filter(|&i| is_plain_name(names[i].1)).collect();
    let candidates = if !plain.is_empty() && plain.len() < group.len() { plain } else { group.to_vec() };
    let first = candidates.iter().copied().filter_map(|i| Some((pinned_at(tools[i].0, &tools[i].1)?, i))).min();
    let same_name = candidates.iter().all(|&i| names[i].1 == names[candidates[0]].1);
    let original = match first {
        _ if same_name => Some(candidates[0]),
        Some((_, i)) => Some(i),
        None => None,
    };
    let mut out = Vec::new();
    for &i in group {
        let (server, name) = names[i];
        if original.is_some_and(|o| names[o].1 == name) {
            continue;
        }
        let other = original.or_else(|| group.iter().copied().find(|&j| names[j].0 != server));
        let like = other.map_or_else(String::new, |j| format!(" `{}` of server `{}`", tools[j].2, tools[j].0));
        out.push((i, format!("its name looks like{like} without being it")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools<'a>(names: &[(&'a str, &str)]) -> Vec<(&'a str, String, String)> {
        names.iter().map(|(s, n)| (*s, (*n).to_owned(), format!("{s}__{n}"))).collect()
    }

    #[test]
    fn the_look_alike_is_withheld_and_the_first_pinned_plain_name_kept() {
        let t = tools(&[("mail", "send_email"), ("evil", "send_em\u{0430}il"), ("evil", "send_ernail")]);
        // Nothing pinned: the mixed-script name is the impostor; the two plain ones are
        // confusable with each other and nothing says which came first.
        let none = shadowed(&t, |_, _| None);
        assert_eq!(none.len(), 3, "{none:?}");
        // `mail` was pinned first: only the look-alikes go.
        let pinned = shadowed(&t, |server, _| Some(if server == "mail" { 1 } else { 2 }));
        let mut withheld: Vec<_> = pinned.keys().map(|(s, n)| format!("{s}:{n}")).collect();
        withheld.sort();
        assert_eq!(withheld, ["evil:send_em\u{0430}il", "evil:send_ernail"]);
        assert!(pinned[&("evil", "send_ernail")].contains("`mail__send_email` of server `mail`"));
        let same = tools(&[("a", "search"), ("b", "search")]);
        assert!(shadowed(&same, |_, _| None).is_empty());
        // A server without a prefix names a tool like another server's federated one.
        let mut t = tools(&[("github", "create_issue")]);
        t.push(("local", "github__create_issue".into(), "github__create_issue".into()));
        t.push(("local", "g\u{0456}thub__create_issue".into(), "g\u{0456}thub__create_issue".into()));
        let found = shadowed(&t, |_, _| None);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[&("local", "github__create_issue")].contains("is that of `github__create_issue` of server `github`")
        );
    }
}
