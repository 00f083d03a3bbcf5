//! A small OTLP/HTTP receiver on loopback: it accepts `POST /v1/traces` (protobuf, as the
//! server exports) and keeps every span, for the fleet check to read back.

use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context as _, Result};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One received span, reduced to what the checks read.
#[derive(Debug, Clone)]
pub(crate) struct Span {
    pub(crate) name: String,
    pub(crate) trace_id: String,
    pub(crate) span_id: String,
    pub(crate) parent_span_id: String,
    /// OTLP `SpanKind`: 2 server, 3 client.
    pub(crate) kind: i32,
}

/// The receiver; spans accumulate until it is dropped.
pub(crate) struct Receiver {
    spans: Arc<Mutex<Vec<Span>>>,
    task: tokio::task::JoinHandle<()>,
    /// `http://127.0.0.1:PORT`, the endpoint to configure.
    pub(crate) endpoint: String,
}

impl Receiver {
    pub(crate) async fn start() -> Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let spans = Arc::new(Mutex::new(Vec::new()));
        let sink = spans.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sink = sink.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, sink).await;
                });
            }
        });
        Ok(Receiver {
            spans,
            task,
            endpoint,
        })
    }

    /// Every span received so far.
    pub(crate) fn spans(&self) -> Vec<Span> {
        self.spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answers every request of one connection (HTTP/1.1 with `Content-Length` bodies).
async fn serve(stream: TcpStream, sink: Arc<Mutex<Vec<Span>>>) -> Result<()> {
    let mut stream = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if stream.read_line(&mut request_line).await? == 0 {
            return Ok(());
        }
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            stream.read_line(&mut header).await?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().context("a bad Content-Length")?;
            }
        }
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).await?;
        if request_line.starts_with("POST /v1/traces") {
            let request = ExportTraceServiceRequest::decode(body.as_slice())?;
            let mut spans = sink.lock().unwrap_or_else(PoisonError::into_inner);
            for resource in request.resource_spans {
                for scope in resource.scope_spans {
                    for span in scope.spans {
                        spans.push(Span {
                            name: span.name,
                            trace_id: hex::encode(&span.trace_id),
                            span_id: hex::encode(&span.span_id),
                            parent_span_id: hex::encode(&span.parent_span_id),
                            kind: span.kind,
                        });
                    }
                }
            }
        }
        let answer =
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        stream.get_mut().write_all(answer.as_bytes()).await?;
    }
}
