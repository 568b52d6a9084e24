//! Live events: everything the engine observes goes to one broadcast, fanned out to every
//! `GET /api/v1/events` subscriber as typed server-sent events with ids. A short backlog lets a
//! client that reconnects with `Last-Event-ID` catch up; one that missed more gets a snapshot.
//!
//! With one process (SQLite) the hub numbers events itself. With several replicas on PostgreSQL
//! the events about deployments, stacks and the pause go through the database instead
//! (the `live_relay` module): numbered there, read back by every replica in order, so a viewer on
//! any replica sees every deployment and can resume on any replica; new builds found by one
//! replica go the same way (each bucket notification reaches one replica only). The Jenkins
//! panel, which every replica polls itself, stays local and carries no id.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::deployment::{Deployment, LiveEvent};
use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use crate::error::AppError;

/// How many events a reconnecting client can catch up on.
pub const BACKLOG: usize = 2_048;
/// How many event streams may be open at once; one more is refused with a clear answer rather
/// than slowing every viewer down.
pub const MAX_SUBSCRIBERS: usize = 5_000;
/// How many event streams one person may hold open (tabs, `deployctl --wait`s, their tokens'
/// scripts together): one identity cannot take every place of [`MAX_SUBSCRIBERS`].
pub const STREAMS_PER_PERSON: usize = 20;

#[derive(Clone, Debug)]
pub struct Envelope {
    /// `None` for an event only this replica's viewers get (not resumable, not in the backlog).
    pub id: Option<u64>,
    pub event: LiveEvent,
}

pub struct Hub {
    tx: broadcast::Sender<Arc<Envelope>>,
    backlog: Mutex<VecDeque<Arc<Envelope>>>,
    next_id: AtomicU64,
    /// Set at shutdown: every stream ends, so that a graceful shutdown is not held open by
    /// subscribers (browsers reconnect, to the next deployer).
    closed: tokio::sync::watch::Sender<bool>,
    subscribers: Arc<Subscribers>,
    /// With several replicas: where shared events go to be numbered by the database and read back
    /// by every replica (the `live_relay` module); `None` with one process.
    outbox: Mutex<Option<tokio::sync::mpsc::UnboundedSender<LiveEvent>>>,
}

/// Whether every replica's viewers must see the event (it comes from the shared store's state,
/// or from a bucket notification only one replica got), rather than only this replica's (the
/// Jenkins panel, which each replica polls itself).
fn shared(event: &LiveEvent) -> bool {
    matches!(
        event,
        LiveEvent::Deployment(_) | LiveEvent::Stack(_) | LiveEvent::Pause(_) | LiveEvent::Builds(_)
    )
}

/// The open event streams: how many, and how many each person holds.
#[derive(Default)]
struct Subscribers {
    total: std::sync::atomic::AtomicUsize,
    /// Person id → streams open; changed together with `total`, under this lock.
    by_person: Mutex<std::collections::HashMap<String, usize>>,
}

/// Why a stream was not admitted.
#[derive(Debug, PartialEq, Eq)]
enum Full {
    /// [`MAX_SUBSCRIBERS`] streams are open.
    Everyone,
    /// The person holds [`STREAMS_PER_PERSON`] streams.
    Person,
}

/// One open event stream, counted (for its person too) while it lives.
struct Subscription {
    subscribers: Arc<Subscribers>,
    person: String,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut by_person = self
            .subscribers
            .by_person
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = by_person.get_mut(&self.person) {
            *n -= 1;
            if *n == 0 {
                by_person.remove(&self.person);
            }
        }
        self.subscribers.total.fetch_sub(1, Ordering::SeqCst);
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
            subscribers: Arc::default(),
            outbox: Mutex::new(None),
        }
    }

    /// Switches to shared events: from now on shared events go to the returned receiver (the
    /// relay writes them to the database), and [`Hub::deliver`] numbers what viewers get from
    /// `after` + 1 on.
    pub fn start_relay(&self, after: u64) -> tokio::sync::mpsc::UnboundedReceiver<LiveEvent> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut backlog = self
            .backlog
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        backlog.clear();
        self.next_id.store(after + 1, Ordering::SeqCst);
        *self
            .outbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(tx);
        rx
    }

    fn relayed(&self) -> bool {
        self.outbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some()
    }

    /// A shared event as numbered by the database, read back in order: to this replica's viewers
    /// and its backlog. An id already delivered is ignored.
    pub fn deliver(&self, id: u64, event: LiveEvent) {
        let mut backlog = self
            .backlog
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if id < self.next_id.load(Ordering::SeqCst) {
            return;
        }
        self.next_id.store(id + 1, Ordering::SeqCst);
        let envelope = Arc::new(Envelope {
            id: Some(id),
            event,
        });
        backlog.push_back(envelope.clone());
        while backlog.len() > BACKLOG {
            backlog.pop_front();
        }
        let _ = self.tx.send(envelope);
    }

    /// An event for this replica's viewers only, without an id (a shared event the database
    /// could not take is shown here rather than not at all).
    pub fn deliver_unnumbered(&self, event: LiveEvent) {
        let _ = self.tx.send(Arc::new(Envelope { id: None, event }));
    }

    /// Event streams open now.
    pub fn subscribers(&self) -> usize {
        self.subscribers.total.load(Ordering::SeqCst)
    }

    /// Counts one more stream for `person`, unless the deployer or the person is at the bound.
    fn admit(&self, person: &str) -> Result<Subscription, Full> {
        let mut by_person = self
            .subscribers
            .by_person
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.subscribers.total.load(Ordering::SeqCst) >= MAX_SUBSCRIBERS {
            return Err(Full::Everyone);
        }
        let held = by_person.entry(person.to_owned()).or_default();
        if *held >= STREAMS_PER_PERSON {
            return Err(Full::Person);
        }
        *held += 1;
        self.subscribers.total.fetch_add(1, Ordering::SeqCst);
        Ok(Subscription {
            subscribers: self.subscribers.clone(),
            person: person.to_owned(),
        })
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
        let event = if shared(&event) {
            let outbox = self
                .outbox
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            match outbox {
                Some(out) => match out.send(event) {
                    Ok(()) => return,
                    // The relay is gone (shutting down): this replica's viewers still see it.
                    Err(unsent) => return self.deliver_unnumbered(unsent.0),
                },
                None => event,
            }
        } else if self.relayed() {
            return self.deliver_unnumbered(event);
        } else {
            event
        };
        let mut backlog = self
            .backlog
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Ids are taken under the lock so the backlog and the broadcast see them in order.
        let envelope = Arc::new(Envelope {
            id: Some(self.next_id.fetch_add(1, Ordering::SeqCst)),
            event,
        });
        backlog.push_back(envelope.clone());
        while backlog.len() > BACKLOG {
            backlog.pop_front();
        }
        let _ = self.tx.send(envelope);
    }

    /// Events after `last_id` ([`Hub::subscribe_from`]; `None` for the backlog part: the client
    /// needs a snapshot), then everything new.
    pub fn subscribe(
        &self,
        last_id: Option<u64>,
    ) -> (
        Option<Vec<Arc<Envelope>>>,
        broadcast::Receiver<Arc<Envelope>>,
    ) {
        let Subscribed { start, rx } = self.subscribe_from(last_id, None);
        match start {
            Start::Resume { missed, .. } => (Some(missed), rx),
            Start::Snapshot { .. } => (None, rx),
        }
    }

    /// Whether `last_id` is past everything this replica has delivered, with several replicas
    /// (the caller then asks the shared store for its newest id: the browser may have read a
    /// little further on another replica, or hold an id the store never gave out).
    pub fn is_ahead(&self, last_id: u64) -> bool {
        self.relayed() && last_id >= self.next_id.load(Ordering::SeqCst)
    }

    /// Subscribes: events after `last_id` (when the backlog still has them all), then
    /// everything new. A `last_id` this replica cannot vouch for — before its backlog, or ahead
    /// of the newest id it gave out (a clock step between two processes on SQLite, a restored
    /// database) — gets a snapshot instead. With several replicas an id ahead of this one's is
    /// still resumed when the shared store has it (`newest_shared`, its newest id).
    pub fn subscribe_from(&self, last_id: Option<u64>, newest_shared: Option<u64>) -> Subscribed {
        let backlog = self
            .backlog
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let rx = self.tx.subscribe();
        let next = self.next_id.load(Ordering::SeqCst);
        let newest = next.saturating_sub(1);
        let start = match last_id {
            None => Start::Resume {
                missed: Vec::new(),
                seen: newest,
            },
            Some(last) => {
                let oldest = backlog.front().and_then(|e| e.id).unwrap_or(next);
                if last + 1 >= oldest && last < next {
                    Start::Resume {
                        missed: backlog
                            .iter()
                            .filter(|e| e.id.is_some_and(|id| id > last))
                            .cloned()
                            .collect(),
                        seen: newest,
                    }
                } else if self.relayed() && last >= next && newest_shared.is_some_and(|n| last <= n)
                {
                    // The browser read a little further on another replica: this one delivers
                    // from there on (the stream skips what it already has).
                    Start::Resume {
                        missed: Vec::new(),
                        seen: last,
                    }
                } else {
                    Start::Snapshot { at: newest }
                }
            }
        };
        Subscribed { start, rx }
    }
}

/// A new subscriber's start: what it gets before the live events.
#[derive(Debug)]
pub enum Start {
    /// It resumes: the events it missed, then live events with ids above `seen` (and those
    /// without an id).
    Resume {
        missed: Vec<Arc<Envelope>>,
        seen: u64,
    },
    /// It cannot resume here: a snapshot (carrying the id `at`, the newest given out when it
    /// subscribed, so that a reconnect from it resumes), then every live event after `at`.
    Snapshot { at: u64 },
}

/// A subscription just made: where it starts, and the live events from the moment it was made.
pub struct Subscribed {
    pub start: Start,
    pub rx: broadcast::Receiver<Arc<Envelope>>,
}

fn to_sse(envelope: &Envelope) -> Event {
    let event = Event::default()
        .event(envelope.event.name())
        .data(envelope.event.data());
    match envelope.id {
        Some(id) => event.id(id.to_string()),
        None => event,
    }
}

/// An open event stream, as axum sends it.
pub type EventStream = Sse<KeepAliveStream<BoxStream<'static, Result<Event, Infallible>>>>;

/// The SSE stream for one subscriber. `snapshot` reads the active deployments, for a client that
/// cannot resume (read after subscribing, and only then). `newest_shared`: the shared store's newest id, when the client's id is ahead of
/// this replica ([`Hub::is_ahead`]). Refused when [`MAX_SUBSCRIBERS`] streams are already open
/// (503), or `person` (the actor's person id) holds [`STREAMS_PER_PERSON`] (429). The stream
/// ends when `ends` resolves (its credentials are no longer valid) or the hub closes.
pub async fn stream(
    hub: &Hub,
    person: &str,
    last_id: Option<u64>,
    newest_shared: Option<u64>,
    snapshot: impl Future<Output = Result<Vec<Deployment>, AppError>>,
    ends: BoxFuture<'static, ()>,
) -> Result<EventStream, AppError> {
    let subscription = hub.admit(person).map_err(|full| match full {
        Full::Everyone => AppError::Unavailable(format!(
            "{MAX_SUBSCRIBERS} event streams are open, the most this deployer serves; try again shortly"
        )),
        Full::Person => AppError::TooMany(format!(
            "you have {STREAMS_PER_PERSON} event streams open (pages, `deployctl --wait`, your \
             tokens' scripts), the most one person may; close one and try again"
        )),
    })?;
    // Subscribed before the snapshot is read: what changes while it is read (a deployment that
    // ends) comes after it, never lost between the two.
    let Subscribed { start, rx } = hub.subscribe_from(last_id, newest_shared);
    let (head, seen): (Vec<Event>, u64) = match start {
        Start::Resume { missed, seen } => (missed.iter().map(|e| to_sse(e)).collect(), seen),
        Start::Snapshot { at } => (
            vec![
                Event::default().event("snapshot").id(at.to_string()).data(
                    LiveEvent::Snapshot {
                        active: snapshot.await?,
                    }
                    .data(),
                ),
            ],
            at,
        ),
    };
    let live = BroadcastStream::new(rx).filter_map(move |item| {
        let out = match item {
            Ok(envelope) if envelope.id.is_none_or(|id| id > seen) => Some(Ok(to_sse(&envelope))),
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
        .take_until(futures::future::select(hub.until_closed().boxed(), ends));
    Ok(Sse::new(stream.boxed()).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("keep-alive"),
    ))
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
    async fn relayed_shared_events_are_numbered_by_the_store_and_local_ones_carry_no_id() {
        let hub = Hub::new();
        let mut outbox = hub.start_relay(40);
        let mut rx = hub.subscribe(None).1;
        // A shared event goes to the relay, not straight to viewers.
        hub.publish(pause_event());
        assert_eq!(outbox.recv().await, Some(pause_event()));
        assert!(rx.try_recv().is_err());
        // Read back from the store with its id: to viewers and the backlog.
        hub.deliver(41, pause_event());
        hub.deliver(41, pause_event());
        assert_eq!(rx.try_recv().unwrap().id, Some(41));
        assert!(rx.try_recv().is_err(), "an id is delivered once");
        // What this replica polls itself (the Jenkins panel) is its viewers' only, without an id.
        let panel = LiveEvent::Jenkins(app::jenkins::JenkinsBuilds::not_configured());
        hub.publish(panel.clone());
        assert!(outbox.try_recv().is_err());
        let local = rx.try_recv().unwrap();
        assert_eq!((local.id, &local.event), (None, &panel));
        // New builds are shared: a bucket notification reaches one replica only.
        let builds = LiveEvent::Builds(app::jenkins::BuildsChanged {
            project: "web".into(),
            added: vec!["web-master-2".into()],
            count: 2,
        });
        hub.publish(builds.clone());
        assert_eq!(outbox.recv().await, Some(builds));
        // Resuming: from the backlog; ahead of this replica but not of the store (read on
        // another replica): nothing yet, no snapshot; ahead of the store, or before the
        // backlog: a snapshot.
        let missed = |start: Start| match start {
            Start::Resume { missed, .. } => Some(missed.len()),
            Start::Snapshot { .. } => None,
        };
        assert_eq!(missed(hub.subscribe_from(Some(40), None).start), Some(1));
        assert!(hub.is_ahead(45));
        assert_eq!(
            missed(hub.subscribe_from(Some(45), Some(46)).start),
            Some(0)
        );
        assert_eq!(missed(hub.subscribe_from(Some(45), Some(44)).start), None);
        assert_eq!(missed(hub.subscribe_from(Some(45), None).start), None);
        assert_eq!(
            missed(hub.subscribe_from(Some(1_000_000), Some(50)).start),
            None
        );
        assert_eq!(missed(hub.subscribe_from(Some(3), Some(50)).start), None);
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told_to_resync_not_that_nothing_runs() {
        let hub = Hub::new();
        let sse = stream(
            &hub,
            "p",
            None,
            None,
            async { Ok(Vec::new()) },
            std::future::pending().boxed(),
        )
        .await
        .unwrap();
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

    /// Reads a stream's events (name and data) until `stop` holds for one, at most 5 s.
    async fn read_events(
        sse: EventStream,
        mut stop: impl FnMut(&str, &serde_json::Value) -> bool,
    ) -> Vec<(String, serde_json::Value)> {
        let mut body = sse.into_response().into_body().into_data_stream();
        let (mut text, mut out) = (String::new(), Vec::new());
        loop {
            let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
                .await
                .unwrap_or_else(|_| panic!("no more events after {out:?}"))
                .expect("the stream goes on")
                .unwrap();
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let block: String = text.drain(..end + 2).collect();
                let name = block.lines().find_map(|l| l.strip_prefix("event: "));
                let data = block.lines().find_map(|l| l.strip_prefix("data: "));
                if let (Some(name), Some(data)) = (name, data) {
                    let data = serde_json::from_str(data).unwrap_or_default();
                    let done = stop(name, &data);
                    out.push((name.to_owned(), data));
                    if done {
                        return out;
                    }
                }
            }
        }
    }

    fn deployment(status: &str) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "id": "d-1", "project": "web", "environment": "DEV", "stack_name": "DEV-WEB",
            "build": "web-master-1", "status": status, "operation": null, "step": null,
            "actor": "tester", "started_at": "2026-01-01T00:00:00Z", "finished_at": null,
            "message": null, "rolled_back": false, "waiting_for_aws": false,
            "resources_total": null, "resources_done": 0,
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn a_deployment_that_ends_while_the_snapshot_is_read_is_seen_to_end() {
        let hub = Hub::new();
        // The snapshot is read as running; the deployment ends before the read answers.
        let snapshot = async {
            let active = vec![deployment("running")];
            hub.publish(LiveEvent::Deployment(app::deployment::DeploymentUpdate {
                deployment: deployment("succeeded"),
                step: None,
                new_events: Vec::new(),
            }));
            Ok(active)
        };
        let sse = stream(
            &hub,
            "p",
            Some(1),
            None,
            snapshot,
            std::future::pending().boxed(),
        )
        .await
        .unwrap();
        let events = read_events(sse, |name, _| name == "deployment").await;
        let seen: Vec<(&str, &serde_json::Value)> = events
            .iter()
            .map(|(name, data)| match name.as_str() {
                "snapshot" => (name.as_str(), &data["active"][0]["status"]),
                _ => (name.as_str(), &data["deployment"]["status"]),
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("snapshot", &serde_json::json!("running")),
                ("deployment", &serde_json::json!("succeeded"))
            ],
            "the snapshot, then the end it may have missed"
        );
    }

    #[test]
    fn the_number_of_event_streams_is_bounded() {
        let hub = Hub::new();
        let mut open: Vec<Subscription> = (0..MAX_SUBSCRIBERS)
            .map(|i| hub.admit(&format!("p{i}")).expect("below the bound"))
            .collect();
        assert_eq!(hub.admit("someone").err(), Some(Full::Everyone));
        open.pop();
        assert!(
            hub.admit("someone").is_ok(),
            "a closed stream frees its place"
        );
        assert_eq!(hub.subscribers(), MAX_SUBSCRIBERS - 1);
    }

    #[test]
    fn one_person_holds_at_most_their_share_of_the_streams() {
        let hub = Hub::new();
        let mut theirs: Vec<Subscription> = (0..STREAMS_PER_PERSON)
            .map(|_| hub.admit("sub:a").expect("below their share"))
            .collect();
        assert_eq!(hub.admit("sub:a").err(), Some(Full::Person));
        assert!(
            hub.admit("sub:b").is_ok(),
            "another person is not held back"
        );
        theirs.pop();
        assert!(
            hub.admit("sub:a").is_ok(),
            "a closed stream gives its place back"
        );
    }
}
