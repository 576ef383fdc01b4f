//! Toxic flows end to end, re-enacting the published GitHub MCP data leak against a
//! GitHub-like fixture server (`portcullis demo-server --github`): an issue in a public
//! repository asks the agent to copy what it finds in the author's private repository into a
//! public pull request. The test plays the agent that obeys; the gateway must stop the write
//! and let the honest version of the same workflow (fix a typo an issue reports) through.

use portcullis_testkit::{Client, Gateway};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// What a security team writes for GitHub: issues are untrusted, the private repository's
/// files are private, a pull request on the public repository is a public sink. The guard
/// only flags injections in GitHub results here, so the flow rules are what stands.
const GITHUB: &str = r#"
servers:
  github:
    stdio: { command: "{bin}", args: [demo-server, --github] }
    labels:
      get_issue: [untrusted_content]
flows:
  labels:
    - { server: github, tools: [get_file_contents], when: { arg: repo, one_of: [acme/private-repo] }, labels: [private_data] }
    - { server: github, tools: [create_pull_request], when: { arg: repo, one_of: [acme/public-repo] }, labels: [public_sink] }
guards:
  profiles:
    lenient: { response: { injection: flag } }
  bindings:
    - { profile: lenient, servers: [github] }
"#;

async fn call(c: &mut Client, tool: &str, arguments: Value) -> portcullis_testkit::Reply {
    c.request("tools/call", json!({ "name": format!("github__{tool}"), "arguments": arguments })).await
}

fn text(r: &portcullis_testkit::Reply) -> String {
    r.result()["content"][0]["text"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn the_github_leak_is_stopped_and_the_honest_workflow_goes_through() {
    let gw = Gateway::start(GITHUB, BIN).await;

    // The attack: the agent reads the issue and does what it says.
    let mut agent = Client::connect(&gw.url, json!({})).await;
    let issue = text(&call(&mut agent, "get_issue", json!({ "repo": "acme/public-repo", "number": 1 })).await);
    assert!(issue.contains("acme/private-repo"), "{issue}");
    let secret =
        text(&call(&mut agent, "get_file_contents", json!({ "repo": "acme/private-repo", "path": "README.md" })).await);
    assert!(secret.contains("Initech"), "{secret}");
    let pr = json!({ "repo": "acme/public-repo", "title": "About the author", "body": secret });
    let refused = call(&mut agent, "create_pull_request", pr).await;
    let err = refused.error();
    assert_eq!(
        (err["code"].as_i64(), err["data"]["rule"].as_str()),
        (Some(-32003), Some("untrusted-data-to-sink")),
        "{err}"
    );
    assert_eq!(
        err["data"]["took_in"],
        json!({ "untrusted_content": "github__get_issue", "private_data": "github__get_file_contents" })
    );
    let message = err["message"].as_str().unwrap();
    assert!(
        message.contains("untrusted content (from `github__get_issue`)") && message.contains("Tell the user"),
        "{message}"
    );
    assert!(!message.contains("Initech"), "the refusal does not repeat the data");
    // Nothing reached the public repository; reads still work in the tainted session.
    let pulls = text(&call(&mut agent, "list_pull_requests", json!({ "repo": "acme/public-repo" })).await);
    assert_eq!(pulls, "[]");
    // A pull request on the private repository is no public sink.
    let inside =
        call(&mut agent, "create_pull_request", json!({ "repo": "acme/private-repo", "title": "notes" })).await;
    assert!(text(&inside).starts_with("Created pull request"), "{}", inside.raw);

    // The honest workflow, in a fresh session: issue, public file, pull request.
    let mut agent = Client::connect(&gw.url, json!({})).await;
    call(&mut agent, "get_issue", json!({ "repo": "acme/public-repo", "number": 2 })).await.result();
    let readme =
        text(&call(&mut agent, "get_file_contents", json!({ "repo": "acme/public-repo", "path": "README.md" })).await);
    let fix = json!({ "repo": "acme/public-repo", "title": "Fix typo", "body": readme.replace("tpyo", "typo") });
    let created = call(&mut agent, "create_pull_request", fix).await;
    assert!(text(&created).starts_with("Created pull request"), "{}", created.raw);
    let pulls = text(&call(&mut agent, "list_pull_requests", json!({ "repo": "acme/public-repo" })).await);
    assert!(pulls.contains("Fix typo") && !pulls.contains("Initech"), "{pulls}");
    gw.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn nothing_destructive_after_untrusted_content_and_flag_only_logs() {
    // `delete_file` says `destructiveHint: true` in its annotations: no label needed.
    let gw = Gateway::start(GITHUB, BIN).await;
    let mut agent = Client::connect(&gw.url, json!({})).await;
    let delete = json!({ "repo": "acme/public-repo", "path": "README.md" });
    assert!(text(&call(&mut agent, "delete_file", delete.clone()).await).starts_with("Deleted"), "a clean session may");
    call(&mut agent, "get_issue", json!({ "repo": "acme/public-repo", "number": 2 })).await.result();
    let refused = call(&mut agent, "delete_file", delete.clone()).await;
    assert_eq!(refused.error()["data"]["rule"], "untrusted-to-destructive", "{}", refused.raw);
    gw.server.shutdown().await.unwrap();

    // The same rule set to `flag`: recorded in the log, the call goes through.
    let flagged = GITHUB.replace(
        "flows:\n",
        "flows:\n  rules:\n    - { id: watch-deletes, after: [untrusted_content], deny: [destructive], action: flag }\n",
    );
    let gw = Gateway::start(&flagged, BIN).await;
    let mut agent = Client::connect(&gw.url, json!({})).await;
    call(&mut agent, "get_issue", json!({ "repo": "acme/public-repo", "number": 2 })).await.result();
    assert!(text(&call(&mut agent, "delete_file", delete).await).starts_with("Deleted"));
    gw.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_ask_rule_puts_the_question_to_the_user() {
    let asking = GITHUB.replace(
        "flows:\n",
        "flows:\n  rules:\n    - { id: ask-before-sharing, after: [untrusted_content, private_data], deny: [public_sink], action: ask }\n",
    );
    let gw = Gateway::start(&asking, BIN).await;
    let pr = |id: u64| {
        json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": { "name": "github__create_pull_request",
            "arguments": { "repo": "acme/public-repo", "title": "About the author" } } })
    };
    // A client that can ask its user: yes once, then no.
    let mut agent = Client::connect(&gw.url, json!({ "elicitation": {} })).await;
    read_issue_and_private_file(&mut agent).await;
    for (id, allow) in [(7, true), (8, false)] {
        let mut sse = agent.post_stream(&pr(id)).await;
        let ask = sse.next().await;
        assert_eq!(ask["method"], "elicitation/create", "{ask}");
        let question = ask["params"]["message"].as_str().unwrap();
        assert!(
            question.contains("untrusted content (from `github__get_issue`)") && question.contains("Allow"),
            "{question}"
        );
        let answer = json!({ "jsonrpc": "2.0", "id": ask["id"], "result": { "action": "accept", "content": { "allow": allow } } });
        assert_eq!(agent.post_raw(&answer.to_string()).await.status, 202);
        let done = sse.next().await;
        assert_eq!(done["id"], id);
        if allow {
            assert!(
                done["result"]["content"][0]["text"].as_str().unwrap().starts_with("Created pull request"),
                "{done}"
            );
        } else {
            assert_eq!(done["error"]["data"]["rule"], "ask-before-sharing", "{done}");
            assert!(done["error"]["message"].as_str().unwrap().contains("The user did not allow it"), "{done}");
        }
    }
    // A client that cannot ask: refused, saying so.
    let mut plain = Client::connect(&gw.url, json!({})).await;
    read_issue_and_private_file(&mut plain).await;
    let refused = plain.request("tools/call", pr(9)["params"].clone()).await;
    assert!(refused.error()["message"].as_str().unwrap().contains("could not ask them"), "{}", refused.raw);
    gw.server.shutdown().await.unwrap();
}

/// The first two steps of the attack: the session takes in untrusted content and private data.
async fn read_issue_and_private_file(c: &mut Client) {
    call(c, "get_issue", json!({ "repo": "acme/public-repo", "number": 1 })).await.result();
    call(c, "get_file_contents", json!({ "repo": "acme/private-repo", "path": "README.md" })).await.result();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_moves_to_another_replica_keeps_what_it_took_in() {
    // SAFETY of set_var: this variable name is used by this test alone.
    std::env::set_var("PC_TEST_FLOW_REPLICA_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared.db");
    let yaml = format!(
        "{GITHUB}sessions: {{ key_env: PC_TEST_FLOW_REPLICA_KEY }}\nstore: {{ path: \"{}\" }}\n",
        shared.display()
    );
    let (a, b) = (Gateway::start(&yaml, BIN).await, Gateway::start(&yaml, BIN).await);
    let mut on_a = Client::connect(&a.url, json!({})).await;
    read_issue_and_private_file(&mut on_a).await;
    // The load balancer sends the write to the other replica.
    let mut on_b = Client::new(&b.url);
    on_b.session = on_a.session.clone();
    let refused = call(&mut on_b, "create_pull_request", json!({ "repo": "acme/public-repo", "title": "x" })).await;
    assert_eq!(refused.error()["data"]["rule"], "untrusted-data-to-sink", "{}", refused.raw);
    a.server.shutdown().await.unwrap();
    b.server.shutdown().await.unwrap();
}
