//! A small read-through cache with single flight: per key, one load at a time however many
//! callers ask (the others wait for it and share the answer), and a value reused while it is
//! younger than the time to live. Errors are not kept: the next caller tries again.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Slot<V> = Arc<tokio::sync::Mutex<Option<(Instant, V)>>>;

pub struct TtlCache<V> {
    /// Its name in the metrics (`deployer_cache_requests_total{cache=…}`).
    name: &'static str,
    ttl: Duration,
    slots: Mutex<HashMap<String, Slot<V>>>,
}

impl<V: Clone> TtlCache<V> {
    pub fn new(name: &'static str, ttl: Duration) -> Self {
        TtlCache {
            name,
            ttl,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, key: &str) -> Slot<V> {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots.entry(key.to_owned()).or_default().clone()
    }

    /// The cached value when fresh; otherwise `load`'s, shared with every caller waiting on it.
    pub async fn get_or_load<E, Fut>(&self, key: &str, load: impl FnOnce() -> Fut) -> Result<V, E>
    where
        Fut: Future<Output = Result<V, E>>,
    {
        let slot = self.slot(key);
        let mut slot = slot.lock().await;
        if let Some((at, value)) = slot.as_ref()
            && at.elapsed() < self.ttl
        {
            crate::metrics::cache(self.name, true);
            return Ok(value.clone());
        }
        crate::metrics::cache(self.name, false);
        let value = load().await?;
        *slot = Some((Instant::now(), value.clone()));
        Ok(value)
    }

    /// Forgets a key's value, so the next caller loads it again.
    pub fn invalidate(&self, key: &str) {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots.remove(key);
    }

    /// Forgets every value (what they were read with changed: a config reload).
    pub fn clear(&self) {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// The key's value however old, without loading; `None` when there is none (or it is being
    /// loaded now).
    pub fn peek(&self, key: &str) -> Option<V> {
        let slot = self.slot(key);
        let slot = slot.try_lock().ok()?;
        slot.as_ref().map(|(_, value)| value.clone())
    }

    /// How old the key's value is; `None` when there is none (or it is being loaded now).
    pub fn age(&self, key: &str) -> Option<Duration> {
        let slot = self.slot(key);
        let slot = slot.try_lock().ok()?;
        slot.as_ref().map(|(at, _)| at.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn many_callers_at_once_share_one_load() {
        let cache = Arc::new(TtlCache::<u32>::new("test", Duration::from_secs(2)));
        let loads = Arc::new(AtomicUsize::new(0));
        let calls = (0..50).map(|_| {
            let (cache, loads) = (cache.clone(), loads.clone());
            async move {
                cache
                    .get_or_load("DEV/DEV-WEB", || async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, ()>(7)
                    })
                    .await
            }
        });
        let answers = futures::future::join_all(calls).await;
        assert!(answers.iter().all(|a| *a == Ok(7)));
        assert_eq!(
            loads.load(Ordering::SeqCst),
            1,
            "one load for fifty callers"
        );
        cache.invalidate("DEV/DEV-WEB");
        assert_eq!(cache.age("DEV/DEV-WEB"), None);
        let again = cache
            .get_or_load("DEV/DEV-WEB", || async { Ok::<_, ()>(8) })
            .await;
        assert_eq!(again, Ok(8));
    }

    #[tokio::test]
    async fn an_error_is_not_kept() {
        let cache = TtlCache::<u32>::new("test", Duration::from_secs(60));
        let first = cache
            .get_or_load("k", || async { Err::<u32, _>("down") })
            .await;
        assert_eq!(first, Err("down"));
        let second = cache.get_or_load("k", || async { Ok::<_, &str>(1) }).await;
        assert_eq!(second, Ok(1));
    }
}
