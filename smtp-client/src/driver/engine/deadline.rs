//! A heap of deadlines keyed by an id, with lazy invalidation: the engine's timers (connect,
//! reply and idle timeouts) without a scan over every connection.
//!
//! Each key has at most one *armed* deadline. [`DeadlineHeap::schedule`] arms a key (an
//! earlier time replaces the armed one; a later one is ignored, since the key is woken early
//! and its owner re-arms it with what is then due); [`DeadlineHeap::cancel`] disarms it.
//! Replaced and cancelled entries stay in the heap until they reach its top, where
//! [`DeadlineHeap::pop_due`] and [`DeadlineHeap::next`] drop them; the heap is rebuilt when
//! such entries outnumber the armed ones, so it stays within a constant factor of the keys.
//!
//! It does not read the clock, and it does not know what a deadline means: a popped key is
//! a hint to check that key's state against `now`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::time::Instant;

/// Entries beyond `2 × armed + SLACK` trigger a rebuild.
const SLACK: usize = 64;

/// Deadlines of many keys; the earliest one in `O(log n)`.
#[derive(Debug)]
pub(crate) struct DeadlineHeap<K> {
    heap: BinaryHeap<Reverse<(Instant, K)>>,
    armed: HashMap<K, Instant>,
}

impl<K: Copy + Ord + Hash> Default for DeadlineHeap<K> {
    fn default() -> Self {
        DeadlineHeap {
            heap: BinaryHeap::new(),
            armed: HashMap::new(),
        }
    }
}

impl<K: Copy + Ord + Hash> DeadlineHeap<K> {
    /// Wakes `key` at `at` at the latest: arms it, or moves its armed deadline earlier. A
    /// later `at` than the armed one changes nothing (the key wakes early: re-arm it then).
    pub(crate) fn schedule(&mut self, key: K, at: Instant) {
        if self.armed.get(&key).is_some_and(|&armed| armed <= at) {
            return;
        }
        self.armed.insert(key, at);
        self.heap.push(Reverse((at, key)));
        if self.heap.len() > 2 * self.armed.len() + SLACK {
            self.rebuild();
        }
    }

    /// Disarms `key` (it is gone, or has nothing to wait for).
    pub(crate) fn cancel(&mut self, key: K) {
        self.armed.remove(&key);
    }

    /// The earliest armed deadline.
    pub(crate) fn next(&mut self) -> Option<Instant> {
        self.drop_stale();
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// The next key whose armed deadline is at or before `now`, disarmed.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<K> {
        self.drop_stale();
        let Reverse((at, key)) = *self.heap.peek()?;
        if at > now {
            return None;
        }
        self.heap.pop();
        self.armed.remove(&key);
        Some(key)
    }

    /// How many keys are armed.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.armed.len()
    }

    fn is_armed(&self, at: Instant, key: K) -> bool {
        self.armed.get(&key) == Some(&at)
    }

    fn drop_stale(&mut self) {
        while let Some(&Reverse((at, key))) = self.heap.peek() {
            if self.is_armed(at, key) {
                return;
            }
            self.heap.pop();
        }
    }

    fn rebuild(&mut self) {
        self.heap = self
            .armed
            .iter()
            .map(|(&key, &at)| Reverse((at, key)))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::DeadlineHeap;
    use std::time::{Duration, Instant};

    fn secs(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    #[test]
    fn keys_come_out_in_deadline_order_once() {
        let t0 = Instant::now();
        let mut h = DeadlineHeap::default();
        h.schedule(3, secs(t0, 30));
        h.schedule(1, secs(t0, 10));
        h.schedule(2, secs(t0, 20));
        assert_eq!(h.next(), Some(secs(t0, 10)));
        assert_eq!(h.pop_due(secs(t0, 5)), None, "nothing due yet");
        assert_eq!(h.pop_due(secs(t0, 25)), Some(1));
        assert_eq!(h.pop_due(secs(t0, 25)), Some(2));
        assert_eq!(h.pop_due(secs(t0, 25)), None);
        assert_eq!(h.next(), Some(secs(t0, 30)));
        assert_eq!(h.pop_due(secs(t0, 99)), Some(3));
        assert_eq!(h.next(), None);
    }

    #[test]
    fn an_earlier_deadline_replaces_a_later_one_is_ignored_cancel_disarms() {
        let t0 = Instant::now();
        let mut h = DeadlineHeap::default();
        h.schedule(7, secs(t0, 20));
        h.schedule(7, secs(t0, 10));
        h.schedule(7, secs(t0, 40));
        assert_eq!(h.len(), 1);
        assert_eq!(h.next(), Some(secs(t0, 10)));
        assert_eq!(h.pop_due(secs(t0, 50)), Some(7));
        assert_eq!(h.pop_due(secs(t0, 50)), None, "the replaced entry is stale");
        h.schedule(8, secs(t0, 5));
        h.cancel(8);
        assert_eq!(h.next(), None);
        assert_eq!(h.pop_due(secs(t0, 50)), None);
        // A key re-armed after it was cancelled wakes at its new time only.
        h.schedule(8, secs(t0, 60));
        assert_eq!(h.pop_due(secs(t0, 50)), None);
        assert_eq!(h.pop_due(secs(t0, 60)), Some(8));
    }

    #[test]
    fn stale_entries_do_not_pile_up() {
        let t0 = Instant::now();
        let mut h = DeadlineHeap::default();
        for i in 0..10_000u64 {
            // Every key moved earlier again and again: one stale entry each time.
            h.schedule(i % 10, secs(t0, 1_000_000 - i));
        }
        assert_eq!(h.len(), 10);
        assert!(
            h.heap.len() <= 2 * 10 + super::SLACK + 1,
            "{}",
            h.heap.len()
        );
        let mut due = Vec::new();
        while let Some(k) = h.pop_due(secs(t0, 2_000_000)) {
            due.push(k);
        }
        due.sort_unstable();
        assert_eq!(due, (0..10).collect::<Vec<_>>());
    }
}
