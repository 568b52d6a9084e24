//! Waits between attempts of something that failed (an AWS call, the store, a webhook, Jenkins,
//! a queue): every one is jittered, so that deployments, replicas or pollers that failed together
//! do not all try again at the same instant and fail together again (a throttled account stays
//! throttled when every caller retries in lockstep).

use std::time::Duration;

use rand::Rng;

/// "Equal jitter": half of `wait` fixed, the other half random — a wait in `[wait / 2, wait]`.
pub fn jitter(wait: Duration) -> Duration {
    let half = wait / 2;
    half + half.mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
}

/// The wait before retry `retry` (0: the first): `first` doubled each retry, at most `max`,
/// then jittered ([`jitter`]).
pub fn exponential(first: Duration, retry: u32, max: Duration) -> Duration {
    jitter(first.saturating_mul(1 << retry.min(20)).min(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_is_jittered_within_its_bounds() {
        let wait = Duration::from_secs(8);
        let waits: Vec<Duration> = (0..100).map(|_| jitter(wait)).collect();
        for w in &waits {
            assert!(*w >= wait / 2 && *w <= wait, "{w:?}");
        }
        // Two computations differ (100 equal draws of a random nanosecond count: never).
        assert!(waits.iter().any(|w| *w != waits[0]), "{waits:?}");
    }

    #[test]
    fn waits_double_up_to_the_cap_and_are_jittered() {
        let (first, max) = (Duration::from_millis(100), Duration::from_secs(5));
        for (retry, cap) in [(0, 100), (1, 200), (3, 800), (6, 5_000), (40, 5_000)] {
            let cap = Duration::from_millis(cap);
            let waits: Vec<Duration> = (0..50).map(|_| exponential(first, retry, max)).collect();
            for w in &waits {
                assert!(*w >= cap / 2 && *w <= cap, "retry {retry}: {w:?}");
            }
            assert!(waits.iter().any(|w| *w != waits[0]), "retry {retry}");
        }
    }
}
