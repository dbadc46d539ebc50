//! The loop's deadlines: a heap of (instant, connection) entries, earliest first, where a
//! re-armed deadline leaves its old entry behind to be dropped when it comes up (the
//! connection says which deadline it armed).
//!
//! It knows no connection: whether an entry that comes up is still armed is the loop's
//! question to the connection.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::server::common::ConnKey;

/// Entries beyond `4 × connections + SLACK` are rebuilt from the armed deadlines.
const SLACK: usize = 1024;

/// The deadline heap.
#[derive(Debug, Default)]
pub(super) struct Deadlines {
    heap: BinaryHeap<Reverse<(Instant, ConnKey)>>,
}

impl Deadlines {
    /// Arms `at` for `key` (an earlier entry for the same connection stays, stale).
    pub(super) fn arm(&mut self, at: Instant, key: ConnKey) {
        self.heap.push(Reverse((at, key)));
    }

    /// The earliest entry's instant.
    pub(super) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((t, _))| *t)
    }

    /// Takes the earliest entry if it is due at `now`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<(Instant, ConnKey)> {
        match self.heap.peek() {
            Some(Reverse((t, _))) if *t <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// When stale entries pile up (more than `4 × connections + 1024`), rebuilds the heap
    /// from the deadlines armed now.
    pub(super) fn compact(
        &mut self,
        connections: usize,
        armed: impl FnOnce() -> Vec<(Instant, ConnKey)>,
    ) {
        if self.heap.len() > 4 * connections + SLACK {
            self.heap = armed().into_iter().map(Reverse).collect();
        }
    }

    /// Entries in the heap, stale ones included.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn key(slot: usize, serial: u64) -> ConnKey {
        ConnKey { slot, serial }
    }

    #[test]
    fn the_earliest_due_entry_comes_first() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        assert_eq!(d.next(), None);
        d.arm(t0 + Duration::from_secs(3), key(0, 1));
        d.arm(t0 + Duration::from_secs(1), key(1, 2));
        d.arm(t0 + Duration::from_secs(2), key(0, 1));
        assert_eq!(d.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(d.pop_due(t0), None, "nothing due yet");
        let now = t0 + Duration::from_secs(2);
        assert_eq!(
            d.pop_due(now),
            Some((t0 + Duration::from_secs(1), key(1, 2)))
        );
        assert_eq!(
            d.pop_due(now),
            Some((t0 + Duration::from_secs(2), key(0, 1)))
        );
        assert_eq!(d.pop_due(now), None);
        assert_eq!(d.next(), Some(t0 + Duration::from_secs(3)));
    }

    #[test]
    fn stale_entries_are_rebuilt_away_only_when_they_pile_up() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        for i in 0..(SLACK + 4) {
            d.arm(t0 + Duration::from_millis(i as u64), key(0, 1));
        }
        d.compact(1, || panic!("not yet"));
        d.arm(t0, key(0, 1));
        let live = t0 + Duration::from_secs(9);
        d.compact(1, || vec![(live, key(0, 1))]);
        assert_eq!(d.len(), 1);
        assert_eq!(d.next(), Some(live));
    }
}
