//! What is wrong with a configured server: plaintext secrets, unpinned packages, remote
//! servers over plain HTTP, servers not behind the gateway. A finding says where (file,
//! server, key), never the secret itself.

use super::clients::Server;
use portcullis_guard::secrets::SecretScanner;

/// How bad a finding is (SARIF levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Note,
    Warning,
    Error,
}

/// The rules, with what each means (SARIF rule descriptions and `--json`).
pub const RULES: &[(&str, Level, &str)] = &[
    ("plaintext-secret", Level::Error, "A credential is written in the client's config file in plain text"),
    (
        "unpinned-package",
        Level::Warning,
        "The server's package is fetched without a version: whatever is published next runs",
    ),
    ("plain-http", Level::Warning, "A remote server is reached over plain HTTP"),
    ("not-behind-gateway", Level::Note, "The client talks to the server directly, not through the Portcullis gateway"),
    ("poisoned-tool", Level::Error, "A tool's definition carries instructions aimed at the model (--connect)"),
    ("unreachable", Level::Note, "The server could not be started or reached to list its tools (--connect)"),
];

#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub level: Level,
    /// Index into the scanned servers.
    #[serde(skip)]
    pub server: usize,
    pub message: String,
}

pub(super) fn level(rule: &str) -> Level {
    RULES.iter().find(|(id, _, _)| *id == rule).map_or(Level::Note, |(_, l, _)| *l)
}

/// Names that say "this holds a credential".
const SECRET_WORDS: &[&str] =
    &["TOKEN", "SECRET", "PASSWORD", "PASSWD", "APIKEY", "API_KEY", "ACCESS_KEY", "PRIVATE_KEY", "AUTH", "CREDENTIAL"];

/// A value that points at a secret instead of holding it: `${VAR}`, `$VAR`, `env:`, a
/// `secret:` reference, a 1Password `op://` reference, a `{{ template }}`, or the name of
/// an environment variable (`--token-env GITHUB_TOKEN`).
fn is_reference(value: &str) -> bool {
    let v = value.trim();
    let variable_name = v.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    v.is_empty()
        || variable_name
        || v.starts_with('$')
        || v.starts_with("env:")
        || v.starts_with("secret:")
        || v.starts_with("op://")
        || (v.starts_with("{{") && v.ends_with("}}"))
        || v.starts_with("${input:")
}

/// What the secret scanner sees in `value`, by detector, or a credential-named key with a
/// literal value.
pub fn secret_in(scanner: &SecretScanner, key: Option<&str>, value: &str) -> Option<String> {
    let mut found = Vec::new();
    scanner.scan(value, &mut found);
    if let Some(f) = found.first() {
        return Some(f.detector.as_str().to_owned());
    }
    let named = key.is_some_and(|k| {
        let k = k.to_ascii_uppercase().replace('-', "_");
        SECRET_WORDS.iter().any(|w| k.contains(w))
    });
    (named && !is_reference(value) && value.len() >= 8)
        .then(|| "a credential-named key with a literal value".to_owned())
}

/// Package runners that fetch what they run, and how a pinned spec looks for each.
fn unpinned_package(command: &str, args: &[String]) -> Option<String> {
    let program = std::path::Path::new(command).file_name().and_then(|p| p.to_str()).unwrap_or(command);
    let program = program.trim_end_matches(".cmd").trim_end_matches(".exe");
    let positional = |skip: usize| args.iter().skip(skip).find(|a| !a.starts_with('-')).cloned();
    let (package, pinned) = match program {
        "npx" | "bunx" => {
            let p = positional(0)?;
            // `@scope/name@1.2.3` or `name@1.2.3`; a leading `@` is the scope, not a version.
            let pinned = p.trim_start_matches('@').contains('@') && !p.ends_with("@latest");
            (p, pinned)
        }
        "pnpm" | "yarn" if args.first().is_some_and(|a| a == "dlx") => {
            let p = positional(1)?;
            let pinned = p.trim_start_matches('@').contains('@') && !p.ends_with("@latest");
            (p, pinned)
        }
        "uvx" | "pipx" => {
            let from = args.iter().position(|a| a == "--from").and_then(|i| args.get(i + 1)).cloned();
            let skip = usize::from(program == "pipx" && args.first().is_some_and(|a| a == "run"));
            let p = from.or_else(|| positional(skip))?;
            let pinned = p.contains("==") || p.contains('@');
            (p, pinned)
        }
        "docker" | "podman" if args.first().is_some_and(|a| a == "run") => {
            // The image: the first positional after `run` that is not an option's value.
            let mut image = None;
            let mut i = 1;
            while i < args.len() {
                let a = &args[i];
                if a.starts_with('-') {
                    // Options with a separate value.
                    if matches!(a.as_str(), "-e" | "--env" | "-v" | "--volume" | "-p" | "--name" | "--network" | "-w") {
                        i += 1;
                    }
                } else {
                    image = Some(a.clone());
                    break;
                }
                i += 1;
            }
            let p = image?;
            let last = p.rsplit('/').next().unwrap_or(&p);
            let pinned = p.contains("@sha256:") || (last.contains(':') && !last.ends_with(":latest"));
            (p, pinned)
        }
        _ => return None,
    };
    (!pinned).then_some(package)
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Argument `n` as (`--flag` of `--flag=value`, the value, the key naming the value): the
/// flag itself, or the previous argument when it is a `--flag` taking this one.
pub fn arg_parts(args: &[String], n: usize) -> (Option<&str>, &str, Option<&str>) {
    let arg = &args[n];
    let (flag, value) = arg.split_once('=').map_or((None, arg.as_str()), |(f, v)| (Some(f), v));
    let previous = n.checked_sub(1).and_then(|p| args.get(p)).filter(|p| p.starts_with('-'));
    let key = flag.or(previous.map(String::as_str)).map(|k| k.trim_start_matches('-'));
    (flag, value, key)
}

/// The server's arguments as they may be shown: a secret-bearing one as `<redacted>`.
pub fn shown_args(scanner: &SecretScanner, server: &Server) -> Vec<String> {
    server
        .args
        .iter()
        .enumerate()
        .map(|(n, arg)| {
            let (flag, value, key) = arg_parts(&server.args, n);
            match (secret_in(scanner, key, value), flag) {
                (None, _) => arg.clone(),
                (Some(_), Some(flag)) => format!("{flag}=<redacted>"),
                (Some(_), None) => "<redacted>".to_owned(),
            }
        })
        .collect()
}

/// A URL as it may be shown: no user info, no query values.
pub fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            if u.query().is_some() {
                u.set_query(Some("…"));
            }
            u.to_string()
        }
        Err(_) => "<not a URL>".to_owned(),
    }
}

/// Whether the client reaches this server through Portcullis: `portcullis serve`, or a URL
/// under one of `gateways`.
pub fn behind_gateway(server: &Server, gateways: &[String]) -> bool {
    match (&server.command, &server.url) {
        (_, Some(url)) => gateways.iter().any(|g| url.starts_with(g.as_str())),
        (Some(command), None) => {
            let program = std::path::Path::new(command).file_name().and_then(|p| p.to_str()).unwrap_or("");
            program.trim_end_matches(".exe") == "portcullis" && server.args.iter().any(|a| a == "serve")
        }
        (None, None) => false,
    }
}

/// Every finding for `servers`; `gateways` are URLs (prefixes) of Portcullis gateways.
pub fn check(servers: &[Server], gateways: &[String]) -> Vec<Finding> {
    let scanner = SecretScanner::new();
    let mut out = Vec::new();
    for (i, s) in servers.iter().enumerate() {
        let mut add =
            |rule: &'static str, message: String| out.push(Finding { rule, level: level(rule), server: i, message });
        for (key, value) in &s.env {
            if let Some(what) = secret_in(&scanner, Some(key), value) {
                add(
                    "plaintext-secret",
                    format!("env `{key}` holds a plaintext secret ({what}); move it into the gateway's vault"),
                );
            }
        }
        for (key, value) in &s.headers {
            if let Some(what) = secret_in(&scanner, Some(key), value) {
                add("plaintext-secret", format!("header `{key}` holds a plaintext secret ({what})"));
            }
        }
        for n in 0..s.args.len() {
            // `--api-key=...` or `--token VALUE`: the flag names the value.
            let (_, value, key) = arg_parts(&s.args, n);
            if let Some(what) = secret_in(&scanner, key, value) {
                add("plaintext-secret", format!("argument {} holds a plaintext secret ({what})", n + 1));
            }
        }
        if let Some(url) = &s.url {
            if let Some(what) = secret_in(&scanner, None, url) {
                add("plaintext-secret", format!("the URL holds a plaintext secret ({what})"));
            }
            match url::Url::parse(url) {
                Ok(u) if u.scheme() == "http" && !is_loopback(&u) => {
                    add("plain-http", format!("reached over plain HTTP at {}", u.host_str().unwrap_or("?")))
                }
                Ok(u) if !u.username().is_empty() || u.password().is_some() => {
                    add("plaintext-secret", "the URL carries credentials (user:password@)".into())
                }
                _ => {}
            }
        }
        if let Some(command) = &s.command {
            if let Some(package) = unpinned_package(command, &s.args) {
                add("unpinned-package", format!("`{package}` has no version: pin it (e.g. `{package}@1.2.3`)"));
            }
        }
        if !behind_gateway(s, gateways) {
            add(
                "not-behind-gateway",
                "not behind the gateway: add it to the gateway's `servers` and point the client at the gateway".into(),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_runners_pinned_and_not() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            unpinned_package("npx", &a(&["-y", "@modelcontextprotocol/server-github"])).as_deref(),
            Some("@modelcontextprotocol/server-github")
        );
        assert_eq!(unpinned_package("npx", &a(&["-y", "@modelcontextprotocol/server-github@2025.4.8"])), None);
        assert!(unpinned_package("npx", &a(&["mcp-remote@latest", "https://x"])).is_some());
        assert!(unpinned_package("uvx", &a(&["mcp-server-fetch"])).is_some());
        assert_eq!(unpinned_package("uvx", &a(&["mcp-server-fetch==2025.1.1"])), None);
        assert_eq!(unpinned_package("uvx", &a(&["--from", "git+https://x@v1", "srv"])), None);
        assert!(unpinned_package(
            "docker",
            &a(&["run", "-i", "--rm", "-e", "TOKEN", "ghcr.io/github/github-mcp-server"])
        )
        .is_some());
        assert_eq!(unpinned_package("docker", &a(&["run", "-i", "ghcr.io/github/github-mcp-server:v0.5.0"])), None);
        assert_eq!(unpinned_package("node", &a(&["server.js"])), None);
    }

    #[test]
    fn references_are_not_secrets() {
        let s = SecretScanner::new();
        assert!(secret_in(&s, Some("GITHUB_TOKEN"), "${GITHUB_TOKEN}").is_none());
        assert!(secret_in(&s, Some("API_KEY"), "secret:api").is_none());
        assert!(secret_in(&s, Some("API_KEY"), "sk-live-0123456789abcdef").is_some());
        assert!(secret_in(&s, Some("MODE"), "production-mode").is_none());
        assert!(secret_in(&s, Some("credential-env"), "GITHUB_TOKEN").is_none(), "a variable's name");
    }
}
