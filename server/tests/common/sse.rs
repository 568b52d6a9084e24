//! Reading an event stream as a browser does: events split across chunks, keep-alives skipped.

use std::time::Duration;

use futures::StreamExt;

/// One server-sent event as a client sees it.
#[derive(Debug, Clone)]
pub struct Sse {
    pub id: Option<u64>,
    pub event: String,
    pub data: serde_json::Value,
}

/// Splits an event stream's bytes into events, across chunk boundaries. Keep-alive comments
/// (blocks without data) are skipped.
#[derive(Default)]
pub struct SseParser {
    buffer: String,
}

impl SseParser {
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Sse> {
        self.buffer.push_str(&String::from_utf8_lossy(chunk));
        let mut out = Vec::new();
        while let Some(end) = self.buffer.find("\n\n") {
            let block: String = self.buffer.drain(..end + 2).collect();
            let (mut id, mut event, mut data) = (None, String::from("message"), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                }
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_owned();
                }
                if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if data.is_empty() {
                continue;
            }
            out.push(Sse {
                id,
                event,
                data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
            });
        }
        out
    }
}

/// Reads events from the stream until `stop` says so (or 30 s pass).
pub async fn read_until(
    response: reqwest::Response,
    mut stop: impl FnMut(&Sse) -> bool,
) -> Vec<Sse> {
    let mut body = response.bytes_stream();
    let mut parser = SseParser::default();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, body.next()).await {
        for sse in parser.push(&chunk) {
            let done = stop(&sse);
            out.push(sse);
            if done {
                return out;
            }
        }
    }
    out
}
