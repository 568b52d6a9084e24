//! Bounds on what one person may ask of AWS at once: a preview makes (and deletes) a change set
//! in the environment's account — macros run, and CloudFormation's own rate is shared by every
//! tool in the account — so each person gets a few at a time and a few a minute, whatever
//! tokens or sessions they use.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::error::AppError;
use crate::person::Person;

/// Per person: at most `concurrent` at once and `per_window` within `window`.
pub struct PerPerson {
    what: &'static str,
    concurrent: usize,
    per_window: usize,
    window: Duration,
    state: Arc<Mutex<HashMap<String, Usage>>>,
}

#[derive(Default)]
struct Usage {
    running: usize,
    started: VecDeque<Instant>,
}

/// Held while the work runs; dropping it frees the person's slot.
pub struct Slot {
    person: String,
    state: Arc<Mutex<HashMap<String, Usage>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(usage) = state.get_mut(&self.person) {
            usage.running = usage.running.saturating_sub(1);
        }
    }
}

impl PerPerson {
    pub fn new(
        what: &'static str,
        concurrent: usize,
        per_window: usize,
        window: Duration,
    ) -> PerPerson {
        PerPerson {
            what,
            concurrent,
            per_window,
            window,
            state: Arc::default(),
        }
    }

    /// A slot for this person, or 429 saying which bound was reached and when to try again.
    pub fn take(&self, person: &Person) -> Result<Slot, AppError> {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // Forget people with nothing running and nothing recent: the map stays small.
        state.retain(|_, u| {
            while u.started.front().is_some_and(|t| now - *t >= self.window) {
                u.started.pop_front();
            }
            u.running > 0 || !u.started.is_empty()
        });
        let usage = state.entry(person.id.clone()).or_default();
        if usage.running >= self.concurrent {
            return Err(AppError::TooMany(format!(
                "{} already has {} {} running; wait for one to finish",
                person.name, usage.running, self.what
            )));
        }
        if usage.started.len() >= self.per_window {
            let wait = usage
                .started
                .front()
                .map_or(self.window, |t| self.window.saturating_sub(now - *t));
            return Err(AppError::TooMany(format!(
                "{} asked for {} {} in the last {} s; try again in {} s",
                person.name,
                usage.started.len(),
                self.what,
                self.window.as_secs(),
                wait.as_secs().max(1)
            )));
        }
        usage.running += 1;
        usage.started.push_back(now);
        Ok(Slot {
            person: person.id.clone(),
            state: self.state.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(id: &str) -> Person {
        Person {
            id: id.into(),
            name: id.into(),
        }
    }

    #[test]
    fn a_person_gets_a_few_at_once_and_a_few_a_window_others_are_not_held_back() {
        let limits = PerPerson::new("previews", 2, 3, Duration::from_secs(60));
        let (alice, bob) = (person("alice"), person("bob"));
        let first = limits.take(&alice).unwrap();
        let _second = limits.take(&alice).unwrap();
        let third = limits
            .take(&alice)
            .err()
            .expect("a third at once is refused");
        assert!(
            matches!(&third, AppError::TooMany(m) if m.contains("already has 2")),
            "{third}"
        );
        let _bob = limits.take(&bob).expect("another person is not held back");
        drop(first);
        let _again = limits.take(&alice).expect("a slot freed is taken again");
        drop(_again);
        let fourth = limits.take(&alice).err().expect("three a minute at most");
        assert!(
            matches!(&fourth, AppError::TooMany(m) if m.contains("try again in")),
            "{fourth}"
        );
    }
}
