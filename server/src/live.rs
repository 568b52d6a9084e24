//! Live events: everything the engine observes goes to one broadcast, fanned out to every
//! `GET /api/v1/events` subscriber as typed server-sent events with ids. A short backlog lets a
//! client that reconnects with `Last-Event-ID` catch up; one that missed more gets a snapshot.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::deployment::{Deployment, LiveEvent};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

/// How many events a reconnecting client can catch up on.
const BACKLOG: usize = 2_048;

#[derive(Clone, Debug)]
pub struct Envelope {
    pub id: u64,
    pub event: LiveEvent,
}

pub struct Hub {
    tx: broadcast::Sender<Arc<Envelope>>,
    backlog: Mutex<VecDeque<Arc<Envelope>>>,
    next_id: AtomicU64,
    /// Set at shutdown: every stream ends, so that a graceful shutdown is not held open by
    /// subscribers (browsers reconnect, to the next deployer).
    closed: tokio::sync::watch::Sender<bool>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    pub fn new() -> Hub {
        let (tx, _) = broadcast::channel(1_024);
        // Ids start from the clock so that ids of a previous process are always "too old".
        let start = u64::try_from(chrono::Utc::now().timestamp_micros()).unwrap_or(1);
        Hub {
            tx,
            backlog: Mutex::new(VecDeque::new()),
            next_id: AtomicU64::new(start),
            closed: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Ends every event stream, now and for streams opened later.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Resolves when the hub is closed.
    fn until_closed(&self) -> impl Future<Output = ()> + Send + use<> {
        let mut closed = self.closed.subscribe();
        async move {
            let _ = closed.wait_for(|c| *c).await;
        }
    }

    pub fn publish(&self, event: LiveEvent) {
        let mut backlog = self
            .backlog
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Ids are taken under the lock so the backlog and the broadcast see them in order.
        let envelope = Arc::new(Envelope {
            id: self.next_id.fetch_add(1, Ordering::SeqCst),
            event,
        });
        backlog.push_back(envelope.clone());
        while backlog.len() > BACKLOG {
            backlog.pop_front();
        }
        let _ = self.tx.send(envelope);
    }

    /// Events after `last_id` (when the backlog still has them all), then everything new.
    /// `None` for the backlog part means the client missed too much and needs a snapshot.
    pub fn subscribe(
        &self,
        last_id: Option<u64>,
    ) -> (
        Option<Vec<Arc<Envelope>>>,
        broadcast::Receiver<Arc<Envelope>>,
    ) {
        let backlog = self
            .backlog
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let rx = self.tx.subscribe();
        let missed = match last_id {
            None => Some(Vec::new()),
            Some(last) => {
                let next = self.next_id.load(Ordering::SeqCst);
                let oldest = backlog.front().map_or(next, |e| e.id);
                if last + 1 >= oldest && last < next {
                    Some(backlog.iter().filter(|e| e.id > last).cloned().collect())
                } else {
                    None
                }
            }
        };
        (missed, rx)
    }
}

fn to_sse(envelope: &Envelope) -> Event {
    Event::default()
        .id(envelope.id.to_string())
        .event(envelope.event.name())
        .data(envelope.event.data())
}

/// The SSE stream for one subscriber. `active` gives the snapshot when the client missed too much.
pub fn stream(
    hub: &Hub,
    last_id: Option<u64>,
    active: Vec<Deployment>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<>> {
    let (missed, rx) = hub.subscribe(last_id);
    let mut seen = last_id.unwrap_or(0);
    let head: Vec<Event> = match missed {
        Some(events) => {
            if let Some(last) = events.last() {
                seen = last.id;
            }
            events.iter().map(|e| to_sse(e)).collect()
        }
        None => vec![
            Event::default()
                .event("snapshot")
                .data(LiveEvent::Snapshot { active }.data()),
        ],
    };
    let live = BroadcastStream::new(rx).filter_map(move |item| {
        let out = match item {
            Ok(envelope) if envelope.id > seen => Some(Ok(to_sse(&envelope))),
            Ok(_) => None,
            // This subscriber fell behind the broadcast: tell it to reload.
            Err(_) => Some(Ok(Event::default()
                .event("snapshot")
                .data("{\"active\":[]}"))),
        };
        futures::future::ready(out)
    });
    let stream = futures::stream::iter(head.into_iter().map(Ok))
        .chain(live)
        .take_until(hub.until_closed());
    Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("keep-alive"),
    )
}
