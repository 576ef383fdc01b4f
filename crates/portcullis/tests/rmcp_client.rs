//! rmcp, the official Rust MCP SDK, as a client of the gateway: over Streamable HTTP in
//! both protocol eras, and over stdio (`portcullis serve --stdio`).

use portcullis_testkit::Gateway;
use rmcp::model::{CallToolRequestParams, ProtocolVersion, ReadResourceRequestParams};
use rmcp::service::{ClientLifecycleMode, RunningService};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientServiceExt, RoleClient};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const CONFIG: &str = "servers:\n  demo:\n    stdio: { command: \"{bin}\", args: [demo-server] }\n";

/// What a user of the SDK checks: the federated tools, a call, a resource read.
async fn exercise(client: &RunningService<RoleClient, ()>) {
    let tools = client.list_all_tools().await.expect("tools/list");
    assert!(tools.iter().any(|t| t.name == "demo__echo"), "{:?}", tools.iter().map(|t| &t.name).collect::<Vec<_>>());
    let args = serde_json::json!({ "message": "from rmcp" }).as_object().cloned().unwrap();
    let result =
        client.call_tool(CallToolRequestParams::new("demo__echo").with_arguments(args)).await.expect("tools/call");
    let text = serde_json::to_value(&result.content[0]).unwrap();
    assert_eq!(text["text"], "from rmcp");
    let read =
        client.read_resource(ReadResourceRequestParams::new("demo+test://static-text")).await.expect("resources/read");
    let first = serde_json::to_value(&read.contents[0]).unwrap();
    assert_eq!(first["text"], "This is the content of the static text resource.");
}

#[tokio::test]
async fn rmcp_client_over_streamable_http_in_both_eras() {
    let gw = Gateway::start(CONFIG, BIN).await;
    let modes = [
        (ClientLifecycleMode::Initialize, ProtocolVersion::V_2025_11_25),
        (
            ClientLifecycleMode::Discover { preferred_versions: vec![ProtocolVersion::V_2026_07_28] },
            ProtocolVersion::V_2026_07_28,
        ),
    ];
    for (mode, version) in modes {
        let transport = StreamableHttpClientTransport::from_uri(gw.url.clone());
        let client = ().serve_with_lifecycle(transport, mode).await.expect("connect");
        assert_eq!(client.peer_info().map(|i| i.protocol_version.clone()), Some(version));
        exercise(&client).await;
        client.cancel().await.ok();
    }
    gw.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn rmcp_client_over_stdio() {
    let dir = std::env::temp_dir().join(format!("portcullis-rmcp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("portcullis.yaml");
    std::fs::write(&config, CONFIG.replace("{bin}", BIN)).unwrap();
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(["serve", "--stdio", "--config"]).arg(&config);
    let transport = TokioChildProcess::new(cmd).expect("spawn the gateway");
    let client = ().serve_with_lifecycle(transport, ClientLifecycleMode::Initialize).await.expect("connect");
    exercise(&client).await;
    client.cancel().await.ok();
    let _ = std::fs::remove_dir_all(dir);
}
