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
/// How many event streams may be open at once; one more is refused with a clear answer rather
/// than slowing every viewer down.
pub const MAX_SUBSCRIBERS: usize = 5_000;

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
    subscribers: Arc<std::sync::atomic::AtomicUsize>,
}

/// One open event stream, counted while it lives.
struct Subscription(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Subscription {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
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
            subscribers: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        }
    }

    /// Event streams open now.
    pub fn subscribers(&self) -> usize {
        self.subscribers.load(Ordering::SeqCst)
    }

    fn admit(&self) -> Option<Subscription> {
        let admitted = self
            .subscribers
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < MAX_SUBSCRIBERS).then_some(n + 1)
            })
            .is_ok();
        admitted.then(|| Subscription(self.subscribers.clone()))
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
/// `None` when [`MAX_SUBSCRIBERS`] streams are already open.
pub fn stream(
    hub: &Hub,
    last_id: Option<u64>,
    active: Vec<Deployment>,
) -> Option<Sse<impl Stream<Item = Result<Event, Infallible>> + use<>>> {
    let subscription = hub.admit()?;
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
            // This subscriber fell behind the broadcast: say so, and that it must re-read
            // (never an empty "active" list, which would claim nothing is running).
            Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(missed)) => {
                Some(Ok(Event::default()
                    .event("resync")
                    .data(format!("{{\"missed\":{missed}}}"))))
            }
        };
        let _alive = &subscription;
        futures::future::ready(out)
    });
    let stream = futures::stream::iter(head.into_iter().map(Ok))
        .chain(live)
        .take_until(hub.until_closed());
    Some(
        Sse::new(stream).keep_alive(
            KeepAlive::new()
                .interval(Duration::from_secs(15))
                .text("keep-alive"),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::pause::PauseStatus;
    use axum::response::IntoResponse;

    fn pause_event() -> LiveEvent {
        LiveEvent::Pause(PauseStatus {
            paused: false,
            reason: None,
            actor: None,
            since: None,
            all: false,
            environments: Vec::new(),
            pauses: Vec::new(),
        })
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told_to_resync_not_that_nothing_runs() {
        let hub = Hub::new();
        let sse = stream(&hub, None, Vec::new()).unwrap();
        for _ in 0..1_100 {
            hub.publish(pause_event());
        }
        let mut body = sse.into_response().into_body().into_data_stream();
        let mut text = String::new();
        while !text.contains("event: resync") {
            let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
                .await
                .expect("the stream said it fell behind")
                .unwrap()
                .unwrap();
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(text.contains("missed"), "{text}");
        assert!(!text.contains("event: snapshot"), "no empty snapshot");
    }

    #[test]
    fn the_number_of_event_streams_is_bounded() {
        let hub = Hub::new();
        let mut open: Vec<Subscription> = (0..MAX_SUBSCRIBERS)
            .map(|_| hub.admit().expect("below the bound"))
            .collect();
        assert!(hub.admit().is_none(), "one more is refused");
        open.pop();
        assert!(hub.admit().is_some(), "a closed stream frees its place");
        assert_eq!(hub.subscribers(), MAX_SUBSCRIBERS - 1);
    }
}
