//! The relay's figures for a metrics endpoint: counters the relay's threads keep
//! ([`RelayStats`]: deliveries by outcome, failures by bounce class, route lookups by
//! result, state record writes, notifications queued) and the queue as it stands
//! ([`QueueSnapshot`]: messages and recipients by status, recipients by destination domain),
//! taken from the scheduler only when a scrape asks for it ([`QueueProbe`]).
//!
//! Counting is a relaxed atomic add on the thread where the thing happened (the relay
//! thread, a DNS thread); no lock is taken per message. A bounce class seen for the first
//! time registers its counter under a mutex, once per class (a bounded set). The queue is
//! never counted as it changes: a snapshot walks the scheduler's messages on the relay thread
//! when asked (one pass, a few milliseconds for 100,000 messages), at most once per
//! [`SNAPSHOT_MAX_AGE`] whatever the number of scrapes and series, and only the
//! [`TOP_DESTINATIONS`] largest destination domains get a series of their own (the rest are
//! summed under `_other`), so the label cardinality stays bounded.
//!
//! What it does not do: render anything (the embedder registers these as read-at-scrape
//! metrics, `src/cli/relay_metrics.rs` for `impulse serve`), or keep history.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::schedule::{RouteAnswer, Verdict};
use crate::state::{MessageState, Status};

/// Destination domains with a series of their own in a snapshot; the others are summed.
pub const TOP_DESTINATIONS: usize = 20;

/// The label value of the destinations beyond [`TOP_DESTINATIONS`].
pub const OTHER_DESTINATIONS: &str = "_other";

/// How long a snapshot answers scrapes before a new one is taken.
pub const SNAPSHOT_MAX_AGE: Duration = Duration::from_secs(1);

/// How long a scrape waits for the relay thread before it gives the last snapshot.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(2);

/// Delivery outcome words, as the log line's `status=`.
pub const OUTCOMES: [&str; 4] = ["sent", "deferred", "bounced", "expired"];

/// Route lookup results.
pub const LOOKUP_RESULTS: [&str; 6] = [
    "hops",
    "temporary",
    "no_such_domain",
    "null_mx",
    "mx_loop",
    "refused",
];

/// Notification kinds counted (`failed`, `delayed`, `relayed`).
pub const NOTIFICATIONS: [&str; 3] = ["failed", "delayed", "relayed"];

#[derive(Debug, Default)]
struct Counts {
    outcomes: [AtomicU64; 4],
    lookups: [AtomicU64; 6],
    records_ok: AtomicU64,
    records_failed: AtomicU64,
    notifications: [AtomicU64; 3],
    /// Failed recipients (deferred or bounced) by outcome and bounce class id; one entry
    /// per pair seen.
    classes: Mutex<Vec<(ClassKey, Arc<AtomicU64>)>>,
}

/// The relay's counters; cheap to clone (every clone counts into the same ones).
#[derive(Debug, Clone, Default)]
pub struct RelayStats {
    counts: Arc<Counts>,
}

/// A failed recipient's outcome and bounce class id.
pub type ClassKey = (OutcomeWord, u16);

/// The counters of [`ClassKey`]s one thread has counted before.
pub type ClassesSeen = HashMap<ClassKey, Arc<AtomicU64>>;

/// A delivery outcome, for [`RelayStats::delivery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutcomeWord {
    /// Accepted by a next hop.
    Sent,
    /// Failed temporarily.
    Deferred,
    /// Failed permanently.
    Bounced,
    /// Given up after `max_age`.
    Expired,
}

impl OutcomeWord {
    fn index(self) -> usize {
        self as usize
    }

    /// The word, as in [`OUTCOMES`].
    pub fn as_str(self) -> &'static str {
        OUTCOMES[self.index()]
    }

    /// The word of a scheduler verdict.
    pub fn of(verdict: Verdict) -> OutcomeWord {
        match verdict {
            Verdict::Sent => OutcomeWord::Sent,
            Verdict::Deferred { .. } => OutcomeWord::Deferred,
            Verdict::Bounced => OutcomeWord::Bounced,
        }
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

fn read(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

impl RelayStats {
    /// Counts one recipient's outcome (one log line).
    pub fn delivery(&self, outcome: OutcomeWord) {
        bump(&self.counts.outcomes[outcome.index()]);
    }

    /// Recipients by outcome so far, in the order of [`OUTCOMES`].
    pub fn deliveries(&self) -> [u64; 4] {
        self.counts.outcomes.each_ref().map(read)
    }

    /// Counts a failed recipient's bounce class. `seen` is the caller's own map of the
    /// classes it has counted before (so that only a new pair takes the mutex).
    pub fn failure_class(&self, key: ClassKey, seen: &mut ClassesSeen) {
        let counter = seen.entry(key).or_insert_with(|| {
            let mut classes = self
                .counts
                .classes
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match classes.iter().find(|(k, _)| *k == key) {
                Some((_, c)) => c.clone(),
                None => {
                    let c = Arc::new(AtomicU64::new(0));
                    classes.push((key, c.clone()));
                    c
                }
            }
        });
        bump(counter);
    }

    /// Failed recipients by outcome and bounce class so far, in key order.
    pub fn failure_classes(&self) -> Vec<(ClassKey, u64)> {
        let classes = self
            .counts
            .classes
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<(ClassKey, u64)> = classes.iter().map(|(k, c)| (*k, read(c))).collect();
        out.sort_unstable();
        out
    }

    /// Counts a route lookup's answer.
    pub fn lookup(&self, answer: &RouteAnswer) {
        let i = match answer {
            RouteAnswer::Hops(_) => 0,
            RouteAnswer::Temporary(_) => 1,
            RouteAnswer::NoSuchDomain => 2,
            RouteAnswer::NullMx => 3,
            RouteAnswer::MxLoop => 4,
            RouteAnswer::Refused(_) => 5,
        };
        bump(&self.counts.lookups[i]);
    }

    /// Route lookups by result so far, in the order of [`LOOKUP_RESULTS`].
    pub fn lookups(&self) -> [u64; 6] {
        self.counts.lookups.each_ref().map(read)
    }

    /// Counts a state record write that came back.
    pub fn record_written(&self, ok: bool) {
        bump(if ok {
            &self.counts.records_ok
        } else {
            &self.counts.records_failed
        });
    }

    /// State record writes so far: (durable, failed).
    pub fn records(&self) -> (u64, u64) {
        (
            read(&self.counts.records_ok),
            read(&self.counts.records_failed),
        )
    }

    /// Counts a notification committed to the spool.
    pub fn notification(&self, kind: crate::schedule::BounceKind) {
        use crate::schedule::BounceKind;
        let i = match kind {
            BounceKind::Failed => 0,
            BounceKind::Delayed => 1,
            BounceKind::Relayed => 2,
        };
        bump(&self.counts.notifications[i]);
    }

    /// Notifications queued so far, in the order of [`NOTIFICATIONS`].
    pub fn notifications(&self) -> [u64; 3] {
        self.counts.notifications.each_ref().map(read)
    }
}

/// The queue as it stood at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueSnapshot {
    /// Messages queued by status: `held`, else `deferred` when any open recipient is,
    /// else `pending` (`[pending, deferred, held]`).
    pub messages: [u64; 3],
    /// Recipients by status (`[pending, deferred, held]`; finished recipients of a message
    /// still queued are not counted).
    pub recipients: [u64; 3],
    /// Open recipients by destination domain (lowercase): the [`TOP_DESTINATIONS`] largest,
    /// then [`OTHER_DESTINATIONS`] with the rest when there is any; largest first.
    pub destinations: Vec<(String, u64)>,
}

/// Status labels of [`QueueSnapshot::messages`] and [`QueueSnapshot::recipients`].
pub const QUEUE_STATUSES: [&str; 3] = ["pending", "deferred", "held"];

impl QueueSnapshot {
    /// Counts `messages` (the scheduler's).
    pub fn of<'a>(messages: impl Iterator<Item = &'a MessageState>) -> QueueSnapshot {
        let mut snap = QueueSnapshot::default();
        let mut domains: HashMap<String, u64> = HashMap::new();
        for m in messages {
            let mut deferred = false;
            let mut open = false;
            for r in &m.recipients {
                let i = match (r.status, m.held) {
                    (Status::Delivered | Status::Bounced, _) => continue,
                    (_, true) => 2,
                    (Status::Deferred, false) => {
                        deferred = true;
                        1
                    }
                    (Status::Pending, false) => 0,
                };
                open = true;
                snap.recipients[i] += 1;
                let domain = r.address.rsplit_once('@').map_or("", |(_, d)| d);
                if domain.bytes().any(|b| b.is_ascii_uppercase()) {
                    *domains.entry(domain.to_ascii_lowercase()).or_default() += 1;
                } else if let Some(n) = domains.get_mut(domain) {
                    *n += 1;
                } else {
                    domains.insert(domain.to_owned(), 1);
                }
            }
            if open || m.recipients.is_empty() {
                let i = if m.held {
                    2
                } else if deferred {
                    1
                } else {
                    0
                };
                snap.messages[i] += 1;
            }
        }
        let mut list: Vec<(String, u64)> = domains.into_iter().collect();
        list.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        if list.len() > TOP_DESTINATIONS {
            let rest: u64 = list[TOP_DESTINATIONS..].iter().map(|(_, n)| n).sum();
            list.truncate(TOP_DESTINATIONS);
            list.push((OTHER_DESTINATIONS.to_owned(), rest));
        }
        snap.destinations = list;
        snap
    }
}

/// A request for a snapshot, answered by the relay thread.
pub(crate) type SnapshotRequest = Sender<Arc<QueueSnapshot>>;

/// Asks a running relay for its queue snapshot (from a scrape); cheap to clone.
#[derive(Clone)]
pub struct QueueProbe {
    ask: Arc<dyn Fn(SnapshotRequest) -> bool + Send + Sync>,
    last: Arc<Mutex<Option<Taken>>>,
}

/// A snapshot and when it was taken.
type Taken = (Instant, Arc<QueueSnapshot>);

impl std::fmt::Debug for QueueProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueProbe").finish_non_exhaustive()
    }
}

impl QueueProbe {
    pub(crate) fn new(ask: impl Fn(SnapshotRequest) -> bool + Send + Sync + 'static) -> Self {
        QueueProbe {
            ask: Arc::new(ask),
            last: Arc::new(Mutex::new(None)),
        }
    }

    /// The queue now, or as it was at most [`SNAPSHOT_MAX_AGE`] ago. When the relay does not
    /// answer within two seconds (or has stopped), the last snapshot it gave (empty before
    /// the first).
    pub fn snapshot(&self) -> Arc<QueueSnapshot> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, snap)) = &*last {
            if at.elapsed() < SNAPSHOT_MAX_AGE {
                return snap.clone();
            }
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let fresh = if (self.ask)(tx) {
            rx.recv_timeout(SNAPSHOT_WAIT).ok()
        } else {
            None
        };
        match fresh {
            Some(snap) => {
                *last = Some((Instant::now(), snap.clone()));
                snap
            }
            None => last.as_ref().map(|(_, s)| s.clone()).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Timestamp;

    fn message(held: bool, rcpts: &[(&str, Status)]) -> MessageState {
        let mut m = MessageState::new(Timestamp(1), rcpts.iter().map(|(a, _)| (*a, "")));
        m.held = held;
        for (r, (_, s)) in m.recipients.iter_mut().zip(rcpts) {
            r.status = *s;
        }
        m
    }

    #[test]
    fn a_snapshot_counts_open_recipients_by_status_and_domain() {
        let ms = [
            message(
                false,
                &[
                    ("a@x.test", Status::Pending),
                    ("b@X.test", Status::Deferred),
                    ("c@y.test", Status::Delivered),
                ],
            ),
            message(true, &[("d@y.test", Status::Pending)]),
            message(false, &[("e@z.test", Status::Pending)]),
        ];
        let s = QueueSnapshot::of(ms.iter());
        assert_eq!(s.messages, [1, 1, 1]);
        assert_eq!(s.recipients, [2, 1, 1]);
        assert_eq!(
            s.destinations,
            vec![
                ("x.test".to_owned(), 2),
                ("y.test".to_owned(), 1),
                ("z.test".to_owned(), 1)
            ]
        );
    }

    #[test]
    fn destinations_beyond_the_top_are_summed() {
        let addrs: Vec<String> = (0..TOP_DESTINATIONS + 5)
            .map(|i| format!("u@d{i:02}.test"))
            .collect();
        let mut ms: Vec<MessageState> = addrs
            .iter()
            .map(|a| message(false, &[(a.as_str(), Status::Pending)]))
            .collect();
        ms.push(message(false, &[("v@d00.test", Status::Pending)]));
        let s = QueueSnapshot::of(ms.iter());
        assert_eq!(s.destinations.len(), TOP_DESTINATIONS + 1);
        assert_eq!(s.destinations[0], ("d00.test".to_owned(), 2));
        assert_eq!(
            s.destinations.last().unwrap(),
            &(OTHER_DESTINATIONS.to_owned(), 5)
        );
    }

    #[test]
    fn classes_are_counted_per_id() {
        let stats = RelayStats::default();
        let mut seen = HashMap::new();
        let deferred = OutcomeWord::Deferred;
        stats.failure_class((deferred, 50), &mut seen);
        stats.failure_class((deferred, 50), &mut seen);
        stats.failure_class((OutcomeWord::Bounced, 10), &mut HashMap::new());
        stats.failure_class((deferred, 10), &mut seen);
        assert_eq!(
            stats.failure_classes(),
            vec![
                ((deferred, 10), 1),
                ((deferred, 50), 2),
                ((OutcomeWord::Bounced, 10), 1)
            ]
        );
        stats.delivery(OutcomeWord::Expired);
        assert_eq!(stats.deliveries(), [0, 0, 0, 1]);
    }
}
