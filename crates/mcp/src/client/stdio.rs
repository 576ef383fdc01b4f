//! An upstream MCP server run as a child process: JSON-RPC lines over stdin/stdout,
//! stderr captured to the gateway's log.

use super::router::{Origin, Router};
use super::spec::StdioSpec;
use super::{UpstreamError, UpstreamOptions};
use crate::jsonrpc::Message;
use futures::StreamExt;
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};
use tokio_util::sync::CancellationToken;

/// Starts the child and the tasks that move its stdin, stdout and stderr.
///
/// `closed` is cancelled when stdout ends (the process exited or closed it), after every
/// open request has been failed. `garbage` is told about lines that are not JSON-RPC.
pub(crate) fn spawn(
    server: &Arc<str>,
    spec: &StdioSpec,
    router: Arc<Router>,
    mut outbound: mpsc::UnboundedReceiver<String>,
    closed: CancellationToken,
    garbage: Arc<dyn Fn(String) + Send + Sync>,
    options: &UpstreamOptions,
) -> Result<Child, UpstreamError> {
    let max_line = options.max_message_bytes;
    let program = resolve_program(&spec.command);
    let mut cmd = Command::new(&program);
    for var in &options.env_remove {
        cmd.env_remove(var);
    }
    cmd.args(&spec.args)
        .envs(&spec.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(cwd) = &spec.cwd {
        cmd.current_dir(cwd);
    }
    let mut child = cmd.spawn().map_err(|e| {
        UpstreamError::Unavailable(format!("could not start `{}`: {e} (check `command` and `cwd`)", spec.command))
    })?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(UpstreamError::Unavailable("the child's pipes could not be opened".into()));
    };

    let writer_closed = closed.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = writer_closed.cancelled() => break,
                msg = outbound.recv() => {
                    let Some(mut msg) = msg else { break };
                    msg.push('\n');
                    if stdin.write_all(msg.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
                        break;
                    }
                }
            }
        }
    });

    let name = server.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::info!(target: "portcullis::upstream", server = %name, "stderr: {line}");
        }
    });

    let name = server.clone();
    tokio::spawn(async move {
        let mut frames = FramedRead::new(stdout, LinesCodec::new_with_max_length(max_line));
        let reason = loop {
            match frames.next().await {
                None => break "the upstream process exited".to_owned(),
                Some(Ok(line)) if line.trim().is_empty() => continue,
                Some(Ok(line)) => match Message::parse(line.as_bytes()) {
                    Ok(msg) => router.dispatch(msg, Origin::Unknown),
                    Err(e) => {
                        let shown: String = line.chars().take(120).collect();
                        tracing::warn!(server = %name, error = %e, "upstream wrote a line that is not JSON-RPC: {shown}");
                        garbage(format!("wrote a line that is not JSON-RPC ({})", e.message));
                    }
                },
                Some(Err(LinesCodecError::MaxLineLengthExceeded)) => {
                    garbage(format!("wrote a message over {max_line} bytes"));
                    break format!("the upstream wrote a message over {max_line} bytes");
                }
                Some(Err(LinesCodecError::Io(e))) => break format!("reading from the upstream failed: {e}"),
            }
        };
        router.fail_all(&reason);
        closed.cancel();
    });
    Ok(child)
}

/// `portcullis` as a command means the running binary, so configs that launch the
/// built-in demo server work without the binary on `PATH`.
fn resolve_program(command: &str) -> std::ffi::OsString {
    if command == "portcullis" {
        if let Ok(me) = std::env::current_exe() {
            if me.file_stem().is_some_and(|s| s == "portcullis") {
                return me.into_os_string();
            }
        }
    }
    command.into()
}
