//! The stdio transport: newline-delimited JSON-RPC on stdin/stdout, with every line checked
//! by [`crate::jsonrpc::check`]. Unlike rmcp's own stdio transport, which skips a line that is
//! not JSON without a word, a line that cannot be answered normally gets its JSON-RPC error
//! (`-32700` with `"id": null` for one that is not JSON) and the server keeps reading.

use std::future::Future;
use std::sync::Arc;

use rmcp::RoleServer;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::Transport;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};
use tokio::sync::Mutex;

use crate::jsonrpc::{self, INVALID_REQUEST};

/// The longest line read (as rmcp's stdio transport); a longer one is skipped and answered
/// with an error instead of being buffered without end.
pub(crate) const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// Newline-delimited JSON-RPC over a reader and a writer (stdin and stdout in production).
pub(crate) struct LineTransport<R, W> {
    read: BufReader<R>,
    /// The line being read; kept across cancelled `receive` calls (rmcp polls `receive` in a
    /// `select!`), so a line is never lost halfway.
    line: Vec<u8>,
    /// Skipping the rest of an overlong line.
    discarding: bool,
    /// `None` once closed. Each message is written whole under the lock.
    write: Arc<Mutex<Option<W>>>,
}

impl<R, W> LineTransport<R, W>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    pub(crate) fn new(read: R, write: W) -> Self {
        LineTransport {
            read: BufReader::new(read),
            line: Vec::new(),
            discarding: false,
            write: Arc::new(Mutex::new(Some(write))),
        }
    }

    /// Reads up to the next newline into `self.line` without letting it grow past
    /// [`MAX_LINE_BYTES`]. Cancel-safe: bytes are moved from the reader's buffer into `line`
    /// with no await in between.
    async fn read_line(&mut self) -> std::io::Result<Line> {
        loop {
            let (used, step) = {
                let available = self.read.fill_buf().await?;
                if available.is_empty() {
                    return Ok(Line::Eof);
                }
                let newline = available.iter().position(|b| *b == b'\n');
                let take = newline.map_or(available.len(), |i| i + 1);
                if self.discarding {
                    if newline.is_some() {
                        self.discarding = false;
                    }
                    (take, None)
                } else if self.line.len() + take > MAX_LINE_BYTES {
                    self.line.clear();
                    self.discarding = newline.is_none();
                    (take, Some(Line::Overlong))
                } else {
                    self.line.extend_from_slice(&available[..take]);
                    (take, newline.map(|_| Line::Complete))
                }
            };
            self.read.consume(used);
            if let Some(step) = step {
                return Ok(step);
            }
        }
    }

    /// Answers a line that does not reach the handler. The write runs on its own task, so a
    /// cancelled `receive` cannot leave half a line on the output.
    fn answer(&self, answer: serde_json::Value) {
        let write = self.write.clone();
        tokio::spawn(async move {
            let mut line = answer.to_string().into_bytes();
            line.push(b'\n');
            if let Err(e) = write_line(&write, &line).await {
                tracing::debug!(error = %e, "could not answer a refused message");
            }
        });
    }
}

enum Line {
    Complete,
    Overlong,
    Eof,
}

async fn write_line<W: AsyncWrite + Unpin>(
    write: &Mutex<Option<W>>,
    line: &[u8],
) -> std::io::Result<()> {
    let mut guard = write.lock().await;
    let Some(write) = guard.as_mut() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            "the transport is closed",
        ));
    };
    write.write_all(line).await?;
    write.flush().await
}

impl<R, W> Transport<RoleServer> for LineTransport<R, W>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), std::io::Error>> + Send + 'static {
        let write = self.write.clone();
        async move {
            let mut line = serde_json::to_vec(&item).map_err(std::io::Error::other)?;
            line.push(b'\n');
            write_line(&write, &line).await
        }
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        loop {
            match self.read_line().await {
                Ok(Line::Complete) => {}
                Ok(Line::Overlong) => {
                    tracing::warn!(max = MAX_LINE_BYTES, "skipped an overlong stdin line");
                    self.answer(serde_json::json!({
                        "jsonrpc": "2.0",
                        "id": null,
                        "error": {
                            "code": INVALID_REQUEST,
                            "message": format!(
                                "Invalid Request: the message is longer than {MAX_LINE_BYTES} bytes"
                            ),
                        },
                    }));
                    continue;
                }
                Ok(Line::Eof) => return None,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read stdin");
                    return None;
                }
            }
            let checked = {
                let text = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
                let text = text.strip_suffix(b"\r").unwrap_or(text);
                (!text.iter().all(u8::is_ascii_whitespace)).then(|| jsonrpc::check(text))
            };
            self.line.clear();
            match checked {
                None => {}
                Some(Ok(message)) => return Some(message),
                Some(Err(refusal)) => {
                    tracing::debug!(code = refusal.code, message = %refusal.message, "refused a message");
                    self.answer(refusal.to_json());
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), std::io::Error> {
        let mut guard = self.write.lock().await;
        if let Some(mut write) = guard.take() {
            write.flush().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[tokio::test]
    async fn a_bad_line_is_answered_and_the_next_one_read() {
        let (mut client, server_in) = tokio::io::duplex(1 << 16);
        let (server_out, client_out) = tokio::io::duplex(1 << 16);
        let mut transport = LineTransport::new(server_in, server_out);
        client
            .write_all(b"{not json\n\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\r\n")
            .await
            .unwrap();
        let message = transport.receive().await.expect("the valid line");
        assert!(matches!(message, ClientJsonRpcMessage::Request(_)));
        let mut lines = tokio::io::BufReader::new(client_out).lines();
        let answer: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap())
            .expect("a JSON answer");
        assert_eq!(answer["id"], Value::Null);
        assert_eq!(answer["error"]["code"], -32700);
        drop(client);
        assert!(transport.receive().await.is_none());
    }
}
