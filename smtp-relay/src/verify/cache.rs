//! [`VerifyCache`]: the answers of recipient probes, each kept for the TTL of its kind, at
//! most a fixed number of entries (the one used longest ago goes first: an address mail
//! keeps arriving for stays however many others are probed). Time is passed in.
//!
//! What it does not do: probe, or lock (its owner does both).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::Answer;

/// How long each kind of answer is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttls {
    /// A recipient the next hop accepted.
    pub positive: Duration,
    /// A recipient the next hop refused (5xx).
    pub negative: Duration,
    /// A temporary failure (4xx, no next hop reachable).
    pub tempfail: Duration,
}

impl Ttls {
    /// The TTL of `answer`.
    pub fn of(&self, answer: &Answer) -> Duration {
        match answer {
            Answer::Valid => self.positive,
            Answer::Unknown(_) => self.negative,
            Answer::Unverified(_) => self.tempfail,
        }
    }
}

#[derive(Debug)]
struct Entry {
    answer: Answer,
    expires: Instant,
    seq: u64,
}

/// Probe answers by address (see the module doc).
#[derive(Debug)]
pub struct VerifyCache {
    entries: HashMap<String, Entry>,
    /// Use order (inserted or last found): sequence number → address.
    order: BTreeMap<u64, String>,
    capacity: usize,
    next: u64,
}

impl VerifyCache {
    /// A cache of at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> VerifyCache {
        VerifyCache {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            capacity: capacity.max(1),
            next: 0,
        }
    }

    /// The answer for `key` if it has not expired at `now` (an expired one is removed); a
    /// found one becomes the most recently used.
    pub fn get(&mut self, key: &str, now: Instant) -> Option<Answer> {
        let entry = self.entries.get_mut(key)?;
        let address = self.order.remove(&entry.seq);
        if entry.expires <= now {
            self.entries.remove(key);
            return None;
        }
        entry.seq = self.next;
        self.next += 1;
        if let Some(address) = address {
            self.order.insert(entry.seq, address);
        }
        Some(entry.answer.clone())
    }

    /// Keeps `answer` for `key` until `now + ttl` (a zero TTL keeps nothing), evicting the
    /// entries used longest ago beyond the capacity.
    pub fn insert(&mut self, key: &str, answer: Answer, ttl: Duration, now: Instant) {
        if let Some(old) = self.entries.remove(key) {
            self.order.remove(&old.seq);
        }
        if ttl.is_zero() {
            return;
        }
        let seq = self.next;
        self.next += 1;
        let expires = now
            .checked_add(ttl)
            .unwrap_or(now + Duration::from_secs(1 << 30));
        self.entries.insert(
            key.to_owned(),
            Entry {
                answer,
                expires,
                seq,
            },
        );
        self.order.insert(seq, key.to_owned());
        self.evict();
    }

    /// Changes the capacity (at least one), evicting the oldest entries beyond it.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
        self.evict();
    }

    /// Evicts the entries used longest ago beyond the capacity.
    fn evict(&mut self) {
        while self.entries.len() > self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
        }
    }

    /// How many entries it holds (expired ones included until looked up).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smtp_proto::Reply;

    const TTLS: Ttls = Ttls {
        positive: Duration::from_secs(100),
        negative: Duration::from_secs(50),
        tempfail: Duration::from_secs(5),
    };

    fn put(c: &mut VerifyCache, key: &str, a: Answer, now: Instant) {
        let ttl = TTLS.of(&a);
        c.insert(key, a, ttl, now);
    }

    #[test]
    fn each_kind_is_kept_for_its_own_ttl() {
        let t0 = Instant::now();
        let mut c = VerifyCache::new(10);
        let unknown = Answer::Unknown(Reply::new(550, None, "no"));
        put(&mut c, "a@x", Answer::Valid, t0);
        put(&mut c, "b@x", unknown.clone(), t0);
        put(&mut c, "c@x", Answer::Unverified("down".into()), t0);
        let at = |s| t0 + Duration::from_secs(s);
        assert_eq!(c.get("c@x", at(4)), Some(Answer::Unverified("down".into())));
        assert_eq!(
            c.get("c@x", at(5)),
            None,
            "a temporary failure expires first"
        );
        assert_eq!(c.get("b@x", at(49)), Some(unknown));
        assert_eq!(c.get("b@x", at(50)), None);
        assert_eq!(c.get("a@x", at(99)), Some(Answer::Valid));
        assert_eq!(c.get("a@x", at(100)), None);
        assert!(c.is_empty(), "expired entries are removed when looked up");
        assert_eq!(c.get("never@x", t0), None);
    }

    #[test]
    fn the_oldest_entry_goes_when_full_and_a_new_answer_replaces_the_old() {
        let t0 = Instant::now();
        let mut c = VerifyCache::new(2);
        put(&mut c, "a@x", Answer::Valid, t0);
        put(&mut c, "b@x", Answer::Valid, t0);
        // Answered again: now the newest.
        put(&mut c, "a@x", Answer::Unverified("busy".into()), t0);
        put(&mut c, "c@x", Answer::Valid, t0);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get("b@x", t0), None, "the oldest was evicted");
        assert_eq!(c.get("a@x", t0), Some(Answer::Unverified("busy".into())));
        assert_eq!(c.get("c@x", t0), Some(Answer::Valid));
        c.set_capacity(1);
        assert_eq!(c.len(), 1);
        assert_eq!(c.get("c@x", t0), Some(Answer::Valid), "the newest stays");
        c.insert("d@x", Answer::Valid, Duration::ZERO, t0);
        assert_eq!(c.get("d@x", t0), None, "a zero TTL keeps nothing");
        // Many more than the capacity: never more entries than it.
        let mut c = VerifyCache::new(3);
        for i in 0..1000 {
            put(&mut c, &format!("u{i}@x"), Answer::Valid, t0);
            assert!(c.len() <= 3);
        }
        assert_eq!(c.order.len(), 3, "the order index is bounded too");
    }

    #[test]
    fn an_address_looked_up_stays_while_new_ones_push_others_out() {
        let t0 = Instant::now();
        let mut c = VerifyCache::new(3);
        put(&mut c, "known@x", Answer::Valid, t0);
        for i in 0..100 {
            put(&mut c, &format!("junk{i}@x"), Answer::Valid, t0);
            assert_eq!(c.get("known@x", t0), Some(Answer::Valid), "after junk{i}");
        }
        assert_eq!(c.get("junk0@x", t0), None, "never looked up: evicted");
        assert_eq!((c.len(), c.order.len()), (3, 3));
    }
}
