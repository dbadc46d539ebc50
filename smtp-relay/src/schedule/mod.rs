//! The relay's scheduler: decides when and where each queued message is attempted, and what
//! becomes of it, as a sans-IO state machine.
//!
//! Messages with their per-recipient state go in ([`Scheduler::handle_enqueue`]), with route
//! answers, delivery reports, record-write and notification confirmations, operator commands
//! and the time; [`Action`]s come out: resolve a domain, deliver a batch, persist a record,
//! queue a notification, complete (remove) a message. The retry policy and the per-destination
//! connection limit are data ([`ScheduleConfig`]); jitter draws from a generator seeded by the
//! caller.
//!
//! # Guarantees
//!
//! - **Persist before acting.** An outcome changes the in-memory state and a
//!   [`Action::Persist`] goes out; only after [`Scheduler::handle_persisted`] does the message
//!   move on (rescheduled, notified, completed).
//! - **Notify before marking bounced.** A failure notification ([`Action::Bounce`]) is queued
//!   and confirmed ([`Scheduler::handle_bounce_queued`]) *before* a record marks its
//!   recipients bounced, and [`Action::Complete`] comes only after both: a crash gives at worst
//!   a duplicate notification, never a lost one.
//! - **Expiry wherever a message waits**: a message's due time is never later than its expiry
//!   (`max_age`, `bounce_max_age` for the null sender), and it is checked before every attempt.
//!   A held message is neither attempted nor expired.
//! - A next hop that keeps refusing connections is marked down for `down_time`; messages for
//!   it wait without burning attempts. Nothing is ever sent to the null sender.
//!
//! What it does not do: no I/O, no clock reads, no DNS, no SMTP, no DSN formatting, no NOTIFY
//! or RET interpretation (the DSN generator's), no connection pooling (the client engine's).
//! It decides *when* and *where*; the engine decides *which connection*.

mod message;
mod types;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_crash;
#[cfg(test)]
mod tests_reload;

use std::collections::{BTreeSet, HashMap, VecDeque};

use smtp_spool::QueueId;

use crate::retry::SplitMix64;
use crate::state::{Status, Timestamp};

use message::{Awaiting, Message, Reason};
pub use types::{
    Action, AttemptId, AttemptReport, BounceKind, BounceRecipient, Destination, MessageMeta,
    NextHop, RecipientOutcome, RouteAnswer, ScheduleConfig, ScheduleError, Selection, Verdict,
};

/// A destination's attempts: how many are out, and batches waiting for a slot.
#[derive(Debug, Default)]
struct DestinationSlots {
    active: usize,
    waiting: VecDeque<(QueueId, Vec<u32>)>,
}

/// What is known of one next hop's connections.
#[derive(Debug, Default)]
struct HopHealth {
    refusals: u32,
    down_until: Option<Timestamp>,
}

/// The queue manager's brain, sans-IO.
///
/// # The driver's call order
///
/// 1. [`Scheduler::new`] with the [`ScheduleConfig`]. At start, for every message in the
///    spool: read its state record; a record that does not decode goes to quarantine with its
///    message ([`crate::state::MessageState::decode`] fails), never here; then
///    [`handle_enqueue(id, meta, now)`](Scheduler::handle_enqueue) with the decoded state, or
///    [`MessageState::new`](crate::state::MessageState::new) when it had no record. New mail
///    is enqueued the same way when the spool commits it.
/// 2. Each turn, read the clock once and call [`handle_timeout(now)`](Scheduler::handle_timeout)
///    first (it also sets the time the other inputs are judged by), then feed what arrived, in
///    any order:
///    - [`handle_route(domain, answer)`](Scheduler::handle_route) for each answered
///      [`Action::Resolve`];
///    - [`handle_outcome(attempt, report)`](Scheduler::handle_outcome) for each finished
///      [`Action::Deliver`];
///    - [`handle_persisted(id)`](Scheduler::handle_persisted) once a [`Action::Persist`]'s
///      record is durable (`Spool::write_state` returned `Ok`);
///    - [`handle_bounce_queued(id)`](Scheduler::handle_bounce_queued) once the notification
///      of an [`Action::Bounce`] is committed to the spool (enqueue it too, as new mail);
///    - operator commands: [`handle_flush`](Scheduler::handle_flush),
///      [`handle_hold`](Scheduler::handle_hold), [`handle_release`](Scheduler::handle_release),
///      [`handle_delete`](Scheduler::handle_delete), [`handle_bounce`](Scheduler::handle_bounce).
/// 3. `while let Some(action) = s.poll_action()`, carry each out **in order** (a Persist
///    before the Complete that follows it). A failed record write is retried, never skipped:
///    the message waits for its `handle_persisted`.
/// 4. Sleep until [`poll_timeout`](Scheduler::poll_timeout) or the next input, whichever comes
///    first, then go back to step 2.
/// 5. To stop: [`handle_shutdown`](Scheduler::handle_shutdown) (nothing new is resolved or
///    delivered), keep feeding reports and confirmations until
///    [`is_quiescent`](Scheduler::is_quiescent) (or give up: at worst an in-flight message is
///    delivered again after the restart), then drop it.
#[derive(Debug)]
pub struct Scheduler {
    config: ScheduleConfig,
    rng: SplitMix64,
    now: Timestamp,
    messages: HashMap<QueueId, Message>,
    due: BTreeSet<(Timestamp, QueueId)>,
    resolving: HashMap<String, Vec<QueueId>>,
    in_flight: HashMap<AttemptId, (QueueId, Destination, Vec<u32>)>,
    slots: HashMap<Destination, DestinationSlots>,
    hops: HashMap<NextHop, HopHealth>,
    actions: VecDeque<Action>,
    next_attempt_id: u64,
    shut_down: bool,
}

impl Scheduler {
    /// An empty scheduler.
    pub fn new(config: ScheduleConfig) -> Scheduler {
        Scheduler {
            rng: SplitMix64::new(config.seed),
            config,
            now: Timestamp(0),
            messages: HashMap::new(),
            due: BTreeSet::new(),
            resolving: HashMap::new(),
            in_flight: HashMap::new(),
            slots: HashMap::new(),
            hops: HashMap::new(),
            actions: VecDeque::new(),
            next_attempt_id: 0,
            shut_down: false,
        }
    }

    /// Takes a message: new mail, or one reloaded at start with its state record.
    ///
    /// Refused (nothing changes) when the id is queued already, when the scheduler is shut
    /// down, or when its state could not be recorded (it fails
    /// [`validate`](crate::state::MessageState::validate), or could outgrow the spool's record
    /// limit).
    pub fn handle_enqueue(
        &mut self,
        id: QueueId,
        meta: MessageMeta,
        now: Timestamp,
    ) -> Result<(), ScheduleError> {
        self.now = now;
        if self.shut_down {
            return Err(ScheduleError::ShutDown);
        }
        if self.messages.contains_key(&id) {
            return Err(ScheduleError::Duplicate(id));
        }
        meta.state
            .validate()
            .map_err(|e| ScheduleError::State(id, e))?;
        let worst = meta.state.max_encoded_len();
        if worst > smtp_spool::MAX_STATE_LEN {
            let e = crate::state::StateError::TooLarge(worst);
            return Err(ScheduleError::State(id, e));
        }
        let message = Message::new(meta.sender.is_empty(), meta.state);
        self.messages.insert(id, message);
        self.settle(id);
        Ok(())
    }

    /// The time moved on to `now`: due messages are expired, warned about or attempted.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.now = now;
        while let Some(&(at, id)) = self.due.first() {
            if at > now {
                break;
            }
            self.due.pop_first();
            if let Some(m) = self.messages.get_mut(&id) {
                m.due = None;
            }
            self.settle(id);
        }
    }

    /// The answer to an [`Action::Resolve`] for `domain`.
    pub fn handle_route(&mut self, domain: &str, answer: RouteAnswer) {
        let Some(waiting) = self.resolving.remove(domain) else {
            return;
        };
        for id in waiting {
            let Some(m) = self.messages.get_mut(&id) else {
                continue;
            };
            let Awaiting::Work(busy) = &mut m.work else {
                continue;
            };
            let Some(at) = busy.routing.iter().position(|(d, _)| d == domain) else {
                continue;
            };
            let (_, mut recipients) = busy.routing.swap_remove(at);
            let failure = match &answer {
                RouteAnswer::Hops(hops) => {
                    let routed = std::mem::take(&mut recipients);
                    match busy.batches.iter_mut().find(|(d, _)| d == hops) {
                        Some((_, list)) => list.extend(routed),
                        None => busy.batches.push((hops.clone(), routed)),
                    }
                    None
                }
                RouteAnswer::NoSuchDomain => Some((
                    Reason::NoSuchDomain,
                    format!("550 5.1.2 domain {domain} does not exist"),
                )),
                RouteAnswer::NullMx => Some((
                    Reason::NullMx,
                    format!("556 5.1.10 domain {domain} accepts no mail (null MX)"),
                )),
                RouteAnswer::MxLoop => Some((
                    Reason::MxLoop,
                    format!("554 5.4.6 mail for {domain} loops back to myself"),
                )),
                RouteAnswer::Refused(reply) => Some((Reason::Remote, reply.clone())),
                RouteAnswer::Temporary(text) => {
                    for &i in &recipients {
                        let r = &mut m.state.recipients[i as usize];
                        let wait = self.config.retry.delay(r.attempts, &mut self.rng);
                        r.status = Status::Deferred;
                        r.next_attempt = self.now.after(wait);
                        r.set_reply(text);
                    }
                    m.dirty = true;
                    None
                }
            };
            if let Some((reason, reply)) = failure {
                for i in recipients {
                    m.fail(i, reason, &reply);
                }
            }
            self.routes_answered(id);
        }
    }

    /// The report of an [`Action::Deliver`]. Reports of unknown attempts (a message deleted
    /// meanwhile) only free the destination's slot.
    pub fn handle_outcome(&mut self, attempt: AttemptId, report: AttemptReport) {
        let Some((id, dest, recipients)) = self.in_flight.remove(&attempt) else {
            return;
        };
        self.note_hops(&report);
        self.release_slot(&dest);
        let now = self.now;
        let Some(m) = self.messages.get_mut(&id) else {
            return;
        };
        m.last_hops = Some(dest);
        for (k, &i) in recipients.iter().enumerate() {
            let missing;
            let outcome = match report.outcomes.get(k) {
                Some(o) => o,
                None => {
                    missing = RecipientOutcome::LocalFailure("no outcome reported".into());
                    &missing
                }
            };
            let Some(r) = m.state.recipients.get_mut(i as usize) else {
                continue;
            };
            if r.status.is_final() {
                continue;
            }
            r.attempts = r.attempts.saturating_add(1);
            r.set_reply(outcome.text());
            match outcome.verdict() {
                Verdict::Sent => {
                    r.status = Status::Delivered;
                    r.next_attempt = Timestamp(0);
                    r.relayed_owed = matches!(outcome, RecipientOutcome::Relayed(_));
                }
                Verdict::Deferred { .. } => {
                    let wait = self.config.retry.delay(r.attempts, &mut self.rng);
                    r.status = Status::Deferred;
                    r.next_attempt = now.after(wait);
                }
                Verdict::Bounced => {
                    let reply = r.last_reply.clone();
                    m.fail(i, Reason::Remote, &reply);
                }
            }
        }
        m.dirty = true;
        if let Awaiting::Work(busy) = &mut m.work {
            busy.attempts = busy.attempts.saturating_sub(1);
        }
        self.persist(id);
    }

    /// The record of an [`Action::Persist`] for `id` is durable.
    pub fn handle_persisted(&mut self, id: QueueId) {
        let Some(m) = self.messages.get_mut(&id) else {
            return;
        };
        if let Awaiting::Work(busy) = &mut m.work {
            busy.persists = busy.persists.saturating_sub(1);
            if busy.is_idle() {
                self.settle(id);
            }
        }
    }

    /// The notification of an [`Action::Bounce`] for `id` is committed to the spool.
    pub fn handle_bounce_queued(&mut self, id: QueueId) {
        let Some(m) = self.messages.get_mut(&id) else {
            return;
        };
        if let Awaiting::BounceQueued(kind) = m.work {
            m.notification_queued(kind);
            m.work = Awaiting::Due;
            self.settle(id);
        }
    }

    /// Operator `flush`: the selected messages that wait are attempted now, and the down marks
    /// of their next hops (all of them, for [`Selection::All`]) are cleared. Held messages stay
    /// held. Returns how many messages were made due.
    pub fn handle_flush(&mut self, selection: &Selection) -> usize {
        if *selection == Selection::All {
            self.hops.clear();
        }
        let mut flushed = 0;
        for id in self.select(selection) {
            let Some(m) = self.messages.get_mut(&id) else {
                continue;
            };
            if let Some(hops) = &m.last_hops {
                for hop in hops.iter() {
                    self.hops.remove(hop);
                }
            }
            if !matches!(m.work, Awaiting::Due) || m.state.held {
                continue;
            }
            m.wait_until = None;
            for r in &mut m.state.recipients {
                if !r.status.is_final() {
                    r.next_attempt = r.next_attempt.min(self.now);
                }
            }
            self.unindex(id);
            self.settle(id);
            flushed += 1;
        }
        flushed
    }

    /// Operator `hold`: the selected messages are no longer attempted nor expired (the flag is
    /// persisted; an attempt under way finishes). Returns how many were not held before.
    pub fn handle_hold(&mut self, selection: &Selection) -> usize {
        self.set_held(selection, true)
    }

    /// Operator `release`: held messages go back to their schedule (expired at once if they
    /// are past their age). Returns how many were held.
    pub fn handle_release(&mut self, selection: &Selection) -> usize {
        self.set_held(selection, false)
    }

    /// Operator `delete`: the selected messages leave the queue without a notification
    /// ([`Action::Complete`] at once; a late report of theirs is ignored). Returns how many.
    pub fn handle_delete(&mut self, selection: &Selection) -> usize {
        let ids = self.select(selection);
        for &id in &ids {
            self.unindex(id);
            self.messages.remove(&id);
            self.actions.push_back(Action::Complete { id });
        }
        ids.len()
    }

    /// Operator `bounce`: every open recipient of the selected messages fails now with
    /// `5.0.0` (once an attempt under way is reported). Returns how many messages.
    pub fn handle_bounce(&mut self, selection: &Selection) -> usize {
        let ids = self.select(selection);
        for &id in &ids {
            if let Some(m) = self.messages.get_mut(&id) {
                m.bounce_requested = true;
                if matches!(m.work, Awaiting::Due) {
                    self.unindex(id);
                    self.settle(id);
                }
            }
        }
        ids.len()
    }

    /// Stops resolving and delivering: batches waiting for a connection slot are dropped
    /// (their recipients stay as recorded), and nothing is due any more. Reports,
    /// confirmations and operator commands are still taken.
    pub fn handle_shutdown(&mut self) {
        self.shut_down = true;
        self.due.clear();
        let waiting: Vec<QueueId> = self
            .slots
            .values_mut()
            .flat_map(|s| s.waiting.drain(..).map(|(id, _)| id))
            .collect();
        for id in waiting {
            self.attempt_finished_without_report(id);
        }
        for m in self.messages.values_mut() {
            m.due = None;
        }
    }

    /// The next thing to do, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called: the earliest due
    /// message. `None` when nothing is due (or after shutdown).
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.due.first().map(|&(t, _)| t)
    }

    /// Whether nothing is outstanding: no action queued, no route, attempt, record write or
    /// notification awaited.
    pub fn is_quiescent(&self) -> bool {
        self.actions.is_empty()
            && self
                .messages
                .values()
                .all(|m| matches!(m.work, Awaiting::Due))
    }

    /// The state of a queued message (for `impulse queue list` and `show`).
    pub fn message(&self, id: QueueId) -> Option<&crate::state::MessageState> {
        self.messages.get(&id).map(|m| &m.state)
    }

    /// Every queued message's state, in no particular order (for a metrics snapshot).
    pub fn messages(&self) -> impl Iterator<Item = &crate::state::MessageState> {
        self.messages.values().map(|m| &m.state)
    }

    /// New settings (a reload): the retry policy applies from each recipient's next failure
    /// on (a time already set stays) and expiry at each message's next check; the
    /// connection limit to each new attempt. The jitter generator and its seed stay.
    pub fn set_config(&mut self, config: ScheduleConfig) {
        self.config = ScheduleConfig {
            seed: self.config.seed,
            ..config
        };
    }

    /// How many messages are queued.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether no message is queued.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

mod settle;
