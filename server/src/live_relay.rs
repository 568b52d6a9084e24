//! Live events shared by replicas through PostgreSQL. A replica's shared events (deployments,
//! stacks, the pause) are appended to `live_events` and announced with `NOTIFY`; every replica —
//! the writer too — reads them back in id order and hands them to its hub, numbered by the
//! database. A missed notification costs at most [`POLL`]: the reader also looks every so often.

use std::sync::Arc;
use std::time::Duration;

use app::deployment::LiveEvent;
use tokio::sync::{Notify, mpsc};

use crate::live::Hub;
use crate::stack_events::StackSignals;
use crate::store::{LIVE_EVENTS_CHANNEL, STACK_EVENTS_CHANNEL, Store};

/// How often a replica reads the shared events without being notified.
const POLL: Duration = Duration::from_secs(2);
/// How many events the table keeps (a browser away longer gets a snapshot).
const KEEP: u32 = 10_000;
/// How often old events are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(300);
/// Events read per query.
const PAGE: u32 = 500;

/// Starts relaying: listens, loads the newest events into the hub's backlog (so a browser
/// resuming here finds them), then writes and reads for as long as the process runs.
/// Stack events another replica heard (and forwarded) wake this one's deployments.
pub async fn spawn(
    hub: Arc<Hub>,
    store: Store,
    url: &str,
    signals: Arc<StackSignals>,
) -> anyhow::Result<()> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener
        .listen_all([LIVE_EVENTS_CHANNEL, STACK_EVENTS_CHANNEL])
        .await?;
    let start = store
        .live_events_start(u32::try_from(crate::live::BACKLOG).unwrap_or(PAGE))
        .await?;
    let outbox = hub.start_relay(start);
    let last = catch_up(&hub, &store, start).await;

    let notified = Arc::new(Notify::new());
    let wake = notified.clone();
    tokio::spawn(async move {
        loop {
            match listener.recv().await {
                Ok(n) if n.channel() == STACK_EVENTS_CHANNEL => {
                    if let Some((environment, stack)) = n.payload().split_once('/') {
                        signals.notify(environment, stack);
                    }
                }
                Ok(_) => wake.notify_one(),
                Err(e) => {
                    tracing::warn!(error = %e, "lost the live events notifications; reconnecting");
                    // Whatever was announced meanwhile is read on the next look.
                    wake.notify_one();
                    tokio::time::sleep(crate::backoff::jitter(Duration::from_secs(1))).await;
                }
            }
        }
    });
    tokio::spawn(write(hub.clone(), store.clone(), outbox));
    tokio::spawn(read(hub, store, notified, last));
    Ok(())
}

/// Appends this replica's shared events in the order they were published.
async fn write(hub: Arc<Hub>, store: Store, mut outbox: mpsc::UnboundedReceiver<LiveEvent>) {
    while let Some(event) = outbox.recv().await {
        let Ok(body) = serde_json::to_string(&event) else {
            continue;
        };
        let mut tries = 0;
        loop {
            match store.append_live_event(&body).await {
                Ok(_) => break,
                Err(e) if tries < 3 => {
                    tries += 1;
                    tracing::warn!(error = %e, tries, "could not share a live event; trying again");
                    tokio::time::sleep(crate::backoff::jitter(Duration::from_millis(200 * tries)))
                        .await;
                }
                Err(e) => {
                    tracing::error!(
                        error = %e,
                        event = event.name(),
                        "could not share a live event: only this replica's viewers see it"
                    );
                    hub.deliver_unnumbered(event);
                    break;
                }
            }
        }
    }
}

async fn read(hub: Arc<Hub>, store: Store, notified: Arc<Notify>, mut last: u64) {
    let mut pruned = tokio::time::Instant::now();
    loop {
        let _ = tokio::time::timeout(POLL, notified.notified()).await;
        last = catch_up(&hub, &store, last).await;
        if pruned.elapsed() >= PRUNE_EVERY {
            pruned = tokio::time::Instant::now();
            if let Err(e) = store.prune_live_events(KEEP).await {
                tracing::warn!(error = %e, "could not prune old live events");
            }
        }
    }
}

/// Hands every event after `last` to the hub, in order; the id of the last one.
async fn catch_up(hub: &Hub, store: &Store, mut last: u64) -> u64 {
    loop {
        let rows = match store.live_events_after(last, PAGE).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the shared live events");
                return last;
            }
        };
        let full = rows.len() == PAGE as usize;
        for (id, body) in rows {
            match serde_json::from_str::<LiveEvent>(&body) {
                Ok(event) => hub.deliver(id, event),
                // E.g. written by a newer replica during a rolling update: skipped, not fatal.
                Err(e) => tracing::warn!(id, error = %e, "a live event this version cannot read"),
            }
            last = id;
        }
        if !full {
            return last;
        }
    }
}
