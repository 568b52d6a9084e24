//! `--wait` and `watch`: follow one deployment until it ends. The event stream (`GET /events`)
//! brings its changes as they happen; the deployment is read once after subscribing (so nothing
//! between the two is missed), again when the stream says it missed too much (`snapshot`), and
//! every few seconds while the stream is quiet or down, so a broken stream only slows it down.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::client::{Client, Failure};
use crate::{Console, text};

/// What the stream tells the follower.
enum Heard {
    /// A deployment changed: `{"deployment", "step", "new_events"}`.
    Update(Value),
    /// Read the deployment again (the stream missed events, or reconnected).
    Resync,
}

/// How long a quiet stream is trusted before the deployment is read again.
const QUIET: Duration = Duration::from_secs(10);
/// How long the stream may bring nothing before it is taken for dead and opened again: three
/// of the server's keep-alives (every 15 s, `server/src/live.rs`), so a slow one is no reason.
const IDLE: Duration = Duration::from_secs(45);

pub async fn follow(client: &Client, console: &mut Console, id: &str) -> Result<Value, Failure> {
    let (tx, mut rx) = mpsc::channel(1024);
    let listener = tokio::spawn(listen(client.clone(), tx));
    let path = format!("/deployments/{}", crate::seg(id));
    let mut view = View::new(console.tty);
    let first = client.get(&path, &[]).await;
    let mut detail = match first {
        Ok(detail) => detail,
        Err(e) => {
            listener.abort();
            return Err(e);
        }
    };
    view.detail(console, &detail);
    // Whether `detail` is a whole read (not an earlier one with the stream's updates merged in).
    let mut whole = true;
    let mut stream_up = true;
    while !ended(&detail) {
        let heard = match stream_up {
            true => tokio::time::timeout(QUIET, rx.recv()).await.ok(),
            false => {
                tokio::time::sleep(Duration::from_secs(2)).await;
                None
            }
        };
        match heard {
            Some(Some(Heard::Update(update))) => {
                if update["deployment"]["id"].as_str() != Some(id) {
                    continue;
                }
                view.update(console, &update);
                merge(&mut detail, &update);
                whole = false;
            }
            Some(None) => stream_up = false,
            Some(Some(Heard::Resync)) | None => match client.get(&path, &[]).await {
                Ok(fresh) => {
                    view.detail(console, &fresh);
                    detail = fresh;
                    whole = true;
                }
                // A blip while following: keep following; the next read may work.
                Err(e) if e.exit == crate::exit::USAGE => view.note(console, &e.message),
                Err(e) => {
                    listener.abort();
                    return Err(e);
                }
            },
        }
    }
    listener.abort();
    view.done();
    if whole {
        return Ok(detail);
    }
    // The stream's updates carry the deployment's own fields only: its steps, events and change
    // set are read again now that it has ended, so what is printed is what the API has.
    match client.get(&path, &[]).await {
        Ok(last) => Ok(last),
        Err(e) => {
            console.err(format!(
                "could not read the deployment's end ({}); printing it as followed",
                e.message
            ));
            Ok(detail)
        }
    }
}

fn ended(detail: &Value) -> bool {
    matches!(
        detail["status"].as_str(),
        Some("succeeded" | "failed" | "cancelled" | "refused")
    )
}

/// The detail's deployment fields replaced by the update's.
fn merge(detail: &mut Value, update: &Value) {
    if let (Some(detail), Some(deployment)) =
        (detail.as_object_mut(), update["deployment"].as_object())
    {
        for (k, v) in deployment {
            detail.insert(k.clone(), v.clone());
        }
    }
}

/// Reads the event stream into `tx`, reconnecting (with `Last-Event-ID`) when it breaks. Ends
/// when the follower is gone, or when the deployer refuses the stream (the follower polls then).
async fn listen(client: Client, tx: mpsc::Sender<Heard>) {
    let mut last_id: Option<u64> = None;
    let mut pause = Duration::from_millis(500);
    loop {
        let response = match client.events(last_id).await {
            Ok(response) => response,
            // Refused (no right, too many streams): no stream; the follower polls instead.
            Err(e) if e.exit != crate::exit::USAGE => return,
            Err(_) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        pause = Duration::from_millis(500);
        if last_id.is_some() && tx.send(Heard::Resync).await.is_err() {
            return;
        }
        let mut bytes = response.bytes_stream();
        let mut decoder = Decoder::default();
        // Nothing at all (not even the keep-alive) for longer than `IDLE`: the connection is
        // half-open (a NAT or proxy dropped it silently); a new one resumes after `last_id`.
        while let Ok(Some(Ok(chunk))) = tokio::time::timeout(IDLE, bytes.next()).await {
            for (id, name, data) in decoder.push(&chunk) {
                if id.is_some() {
                    last_id = id;
                }
                let heard = match name.as_str() {
                    "deployment" => match serde_json::from_str(&data) {
                        Ok(update) => Heard::Update(update),
                        Err(_) => continue,
                    },
                    "snapshot" | "resync" => Heard::Resync,
                    _ => continue,
                };
                if tx.send(heard).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The event stream's bytes, as they come, into whole events. A chunk may end anywhere — inside
/// a line, between a line's `\r` and `\n`, inside a character of several bytes — so bytes are
/// kept until their line ends, and only whole lines are decoded.
#[derive(Default)]
struct Decoder {
    /// The bytes of a line not ended yet.
    partial: Vec<u8>,
    /// The lines of the event being read.
    lines: Vec<String>,
}

impl Decoder {
    /// The events `chunk` completes: id, name and data of each.
    fn push(&mut self, chunk: &[u8]) -> Vec<(Option<u64>, String, String)> {
        self.partial.extend_from_slice(chunk);
        let mut events = Vec::new();
        let mut start = 0;
        while let Some(n) = self.partial[start..].iter().position(|b| *b == b'\n') {
            let line = &self.partial[start..start + n];
            start += n + 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !line.is_empty() {
                self.lines.push(String::from_utf8_lossy(line).into_owned());
            } else if !self.lines.is_empty() {
                // A blank line ends the event.
                events.push(parse(&self.lines.join("\n")));
                self.lines.clear();
            }
        }
        self.partial.drain(..start);
        events
    }
}

/// One server-sent event's id, name and data.
fn parse(block: &str) -> (Option<u64>, String, String) {
    let (mut id, mut name, mut data) = (None, "message".to_owned(), Vec::new());
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("id:") {
            id = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("event:") {
            name = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
        }
    }
    (id, name, data.join("\n"))
}

/// What the person sees: a progress bar on a terminal (resources done of total, elapsed, the
/// step, the latest events above it), plain lines otherwise (CI logs).
struct View {
    bar: Option<ProgressBar>,
    seen: HashSet<String>,
    step: String,
    done: (u64, Option<u64>),
    started: Option<chrono::DateTime<chrono::Utc>>,
}

impl View {
    fn new(tty: bool) -> View {
        let bar = tty.then(|| {
            let bar = ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        View {
            bar,
            seen: HashSet::new(),
            step: String::new(),
            done: (0, None),
            started: None,
        }
    }

    /// The whole deployment, as read: steps and events not shown yet.
    fn detail(&mut self, console: &mut Console, detail: &Value) {
        self.deployment(console, detail);
        for event in detail["events"].as_array().into_iter().flatten().rev() {
            self.event(console, event);
        }
    }

    /// One `deployment` event of the stream.
    fn update(&mut self, console: &mut Console, update: &Value) {
        self.deployment(console, &update["deployment"]);
        for event in update["new_events"].as_array().into_iter().flatten() {
            self.event(console, event);
        }
    }

    fn deployment(&mut self, console: &mut Console, deployment: &Value) {
        if self.started.is_none() {
            self.started = deployment["started_at"]
                .as_str()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&chrono::Utc));
        }
        let status = text(deployment, "status");
        let step = match text(deployment, "step") {
            _ if ended(deployment) => status.clone(),
            s if s.is_empty() => status.clone(),
            s => format!("{status}: {}", s.replace('_', " ")),
        };
        let waiting = match deployment["waiting_for_aws"].as_bool() {
            Some(true) => format!(" (waiting for AWS: {})", text(deployment, "waiting_reason")),
            _ => String::new(),
        };
        let step = format!("{step}{waiting}");
        let done = (
            deployment["resources_done"].as_u64().unwrap_or(0),
            deployment["resources_total"].as_u64(),
        );
        match &self.bar {
            Some(bar) => {
                // A change with no resources to count (a parameter-only update on some clouds)
                // shows as a spinner, not an empty bar.
                if let Some(total) = done.1.filter(|t| *t > 0) {
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{spinner} {elapsed:>4} [{bar:30}] {pos}/{len} resources  {msg}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    bar.set_length(total);
                    bar.set_position(done.0);
                } else {
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                }
                bar.set_message(step.clone());
            }
            None => {
                if step != self.step {
                    let line = format!("{} {step}", self.clock());
                    console.err(line);
                }
                if done != self.done
                    && let Some(total) = done.1.filter(|t| *t > 0)
                {
                    let line = format!("{} {}/{total} resources done", self.clock(), done.0);
                    console.err(line);
                }
            }
        }
        self.step = step;
        self.done = done;
    }

    fn event(&mut self, console: &mut Console, event: &Value) {
        let id = text(event, "id");
        if !self.seen.insert(id) {
            return;
        }
        let reason = match text(event, "reason") {
            r if r.is_empty() => String::new(),
            r => format!("  {r}"),
        };
        let line = format!(
            "{}   {:<28} {:<34} {}{reason}",
            self.clock(),
            text(event, "logical_id"),
            text(event, "resource_type"),
            text(event, "status"),
        );
        match &self.bar {
            Some(bar) => bar.println(line.trim_end()),
            None => console.err(line.trim_end()),
        }
    }

    fn note(&mut self, console: &mut Console, message: &str) {
        let line = format!("{} {message}; still following", self.clock());
        match &self.bar {
            Some(bar) => bar.println(line),
            None => console.err(line),
        }
    }

    /// `[  42s]`: time since the deployment started.
    fn clock(&self) -> String {
        let seconds = self
            .started
            .map_or(0, |s| (chrono::Utc::now() - s).num_seconds().max(0));
        format!("[{:>5}]", crate::show::duration(seconds))
    }

    fn done(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_block_gives_its_id_name_and_data() {
        let (id, name, data) = parse("id: 41\nevent: deployment\ndata: {\"a\":1}\n\n");
        assert_eq!(id, Some(41));
        assert_eq!(name, "deployment");
        assert_eq!(data, "{\"a\":1}");
        let (id, name, _) = parse(": keep-alive\n\n");
        assert_eq!((id, name.as_str()), (None, "message"));
    }

    #[test]
    fn a_character_split_across_chunks_is_decoded_whole() {
        let text = "id: 7\r\nevent: deployment\r\ndata: {\"reason\":\"Résumé ✓\"}\r\n\r\n";
        let bytes = text.as_bytes();
        // Every split point, including inside "é" (2 bytes) and "✓" (3 bytes).
        for split in 1..bytes.len() {
            let mut decoder = Decoder::default();
            let mut events = decoder.push(&bytes[..split]);
            events.extend(decoder.push(&bytes[split..]));
            assert_eq!(
                events,
                [(
                    Some(7),
                    "deployment".to_owned(),
                    "{\"reason\":\"Résumé ✓\"}".to_owned()
                )],
                "split at byte {split}"
            );
        }
        // One byte at a time.
        let mut decoder = Decoder::default();
        let events: Vec<_> = bytes.iter().flat_map(|b| decoder.push(&[*b])).collect();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].2, "{\"reason\":\"Résumé ✓\"}");
    }
}
