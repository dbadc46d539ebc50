//! What the scheduler does with a message that has nothing outstanding (`settle`), and the
//! bookkeeping around it: the due index, attempts and their connection slots, next hops'
//! health, record writes. No public items; the inputs are in `mod.rs`.

use smtp_spool::QueueId;

use super::message::{Awaiting, Busy, Reason};
use super::types::{earliest, Action, AttemptId, AttemptReport, Destination, NextHop, Selection};
use super::Scheduler;
use crate::state::Timestamp;

impl Scheduler {
    /// Moves a message with nothing outstanding on, in this order: an operator's bounce is
    /// applied; unrecorded changes are persisted (and it waits for that); an owed notification
    /// goes out (or, for the null sender, is dropped); a finished message completes; a held
    /// one waits; an expired one fails its open recipients (`4.4.7`); a delay warning falls
    /// due; otherwise it is attempted when due, or indexed at its due time.
    pub(super) fn settle(&mut self, id: QueueId) {
        let now = self.now;
        loop {
            let Some(m) = self.messages.get_mut(&id) else {
                return;
            };
            match &m.work {
                Awaiting::Due => {}
                Awaiting::Work(busy) if busy.is_idle() => m.work = Awaiting::Due,
                _ => return,
            }
            if std::mem::take(&mut m.bounce_requested) {
                m.fail_open(Reason::Operator);
            }
            if m.dirty {
                self.persist(id);
                return;
            }
            if let Some(kind) = m.owed_notification() {
                if m.null_sender {
                    m.drop_notifications();
                    continue;
                }
                let recipients = m.bounce_recipients(kind);
                m.work = Awaiting::BounceQueued(kind);
                self.unindex(id);
                self.actions.push_back(Action::Bounce {
                    id,
                    kind,
                    recipients,
                });
                return;
            }
            if m.state.is_done() {
                self.unindex(id);
                self.messages.remove(&id);
                self.actions.push_back(Action::Complete { id });
                return;
            }
            if m.state.held || self.shut_down {
                self.unindex(id);
                return;
            }
            let policy = &self.config.retry;
            let expires = m.state.arrival.after(policy.max_age_for(m.null_sender));
            if now >= expires {
                m.fail_open(Reason::Expired);
                continue;
            }
            let warn_at = policy
                .delay_warning
                .filter(|_| !m.state.delay_warned && !m.null_sender)
                .map(|w| m.state.arrival.after(w));
            if warn_at.is_some_and(|t| now >= t) {
                m.delay_owed = true;
                continue;
            }
            let due = earliest(earliest(m.next_attempt(), Some(expires)), warn_at);
            let due = due.unwrap_or(expires);
            if due > now {
                self.index(id, due);
            } else {
                self.start_attempt(id);
            }
            return;
        }
    }

    /// Emits a Persist of the message's current state; it then waits for `handle_persisted`.
    pub(super) fn persist(&mut self, id: QueueId) {
        self.unindex(id);
        let Some(m) = self.messages.get_mut(&id) else {
            return;
        };
        m.dirty = false;
        let record = m.state.encode();
        match &mut m.work {
            Awaiting::Work(busy) => busy.persists += 1,
            _ => {
                m.work = Awaiting::Work(Box::new(Busy {
                    persists: 1,
                    ..Busy::default()
                }))
            }
        }
        self.actions.push_back(Action::Persist { id, record });
    }

    /// Asks for the routes of the due recipients' domains (one Resolve per domain however
    /// many messages wait for it).
    fn start_attempt(&mut self, id: QueueId) {
        let now = self.now;
        let Some(m) = self.messages.get_mut(&id) else {
            return;
        };
        m.wait_until = None;
        let mut routing: Vec<(String, Vec<u32>)> = Vec::new();
        for (i, r) in m.open() {
            if r.next_attempt > now {
                continue;
            }
            let domain = r.domain();
            match routing.iter_mut().find(|(d, _)| *d == domain) {
                Some((_, list)) => list.push(i),
                None => routing.push((domain, vec![i])),
            }
        }
        if routing.is_empty() {
            // Not reached (settle only starts a due message); never lose it.
            self.index(id, now.after(std::time::Duration::from_secs(1)));
            return;
        }
        for (domain, _) in &routing {
            let waiters = self.resolving.entry(domain.clone()).or_default();
            if waiters.is_empty() {
                self.actions.push_back(Action::Resolve {
                    domain: domain.clone(),
                });
            }
            waiters.push(id);
        }
        m.work = Awaiting::Work(Box::new(Busy {
            routing,
            ..Busy::default()
        }));
    }

    /// A route of `id` was answered; when it was the last, its batches go out.
    pub(super) fn routes_answered(&mut self, id: QueueId) {
        let Some(m) = self.messages.get_mut(&id) else {
            return;
        };
        let Awaiting::Work(busy) = &mut m.work else {
            return;
        };
        if !busy.routing.is_empty() {
            return;
        }
        let batches = std::mem::take(&mut busy.batches);
        busy.attempts += batches.len() as u32;
        if busy.is_idle() {
            self.settle(id);
            return;
        }
        for (dest, recipients) in batches {
            let slots = self.slots.entry(dest.clone()).or_default();
            if slots.active < self.config.connections_per_destination.max(1) {
                slots.active += 1;
                self.send(id, dest, recipients);
            } else {
                slots.waiting.push_back((id, recipients));
            }
        }
    }

    /// Hands one batch to the driver (its slot is taken), leaving out next hops marked down;
    /// when every next hop is down the message waits for the first to come back, its slot
    /// goes to the next waiting batch, and no attempt is counted.
    fn send(&mut self, id: QueueId, dest: Destination, recipients: Vec<u32>) {
        if !self.try_send(id, &dest, recipients) {
            self.release_slot(&dest);
            self.attempt_finished_without_report(id);
        }
    }

    /// [`Self::send`] without the slot's release when every next hop is down (`false`: the
    /// message waits for the first to come back; the caller gives the slot on and ends the
    /// attempt).
    fn try_send(&mut self, id: QueueId, dest: &Destination, recipients: Vec<u32>) -> bool {
        let now = self.now;
        let up: Vec<NextHop> = dest.iter().filter(|h| !self.is_down(h)).cloned().collect();
        if up.is_empty() {
            let back = dest
                .iter()
                .filter_map(|h| self.hops.get(h).and_then(|s| s.down_until))
                .min()
                .unwrap_or(now);
            if let Some(m) = self.messages.get_mut(&id) {
                m.wait_until = Some(m.wait_until.map_or(back, |w| w.min(back)));
                m.last_hops = Some(dest.clone());
            }
            return false;
        }
        let hops: Destination = if up.len() == dest.len() {
            dest.clone()
        } else {
            up.into()
        };
        let attempt = AttemptId(self.next_attempt_id);
        self.next_attempt_id += 1;
        self.in_flight
            .insert(attempt, (id, dest.clone(), recipients.clone()));
        self.actions.push_back(Action::Deliver {
            attempt,
            hops,
            id,
            recipients,
        });
        true
    }

    /// A slot of `dest` is free: the next waiting batch (of a message still queued) takes it.
    /// A batch whose next hops are all down gives the slot straight on, in this loop (never
    /// by recursion: a large queue for a down next hop is a long line of such batches), and
    /// its attempts end once the slot has found a batch that goes out or no batch is left.
    pub(super) fn release_slot(&mut self, dest: &Destination) {
        let mut waiting_for_hops = Vec::new();
        while let Some(slots) = self.slots.get_mut(dest) {
            slots.active = slots.active.saturating_sub(1);
            let Some((id, recipients)) = slots.waiting.pop_front() else {
                if slots.active == 0 {
                    self.slots.remove(dest);
                }
                break;
            };
            // Taken again by the waiting batch (or given back above for a deleted message or
            // one whose next hops are all down).
            slots.active += 1;
            if self.messages.contains_key(&id) {
                if self.try_send(id, dest, recipients) {
                    break;
                }
                waiting_for_hops.push(id);
            }
        }
        for id in waiting_for_hops {
            self.attempt_finished_without_report(id);
        }
    }

    /// An attempt of `id` ended without a report (its next hops were down, or shutdown).
    pub(super) fn attempt_finished_without_report(&mut self, id: QueueId) {
        let Some(m) = self.messages.get_mut(&id) else {
            return;
        };
        if let Awaiting::Work(busy) = &mut m.work {
            busy.attempts = busy.attempts.saturating_sub(1);
            if busy.is_idle() {
                self.settle(id);
            }
        }
    }

    /// Counts refused connections (a next hop is down after `down_after` in a row) and clears
    /// the record of a next hop that took one.
    pub(super) fn note_hops(&mut self, report: &AttemptReport) {
        let policy = &self.config.retry;
        for hop in &report.refused {
            let health = self.hops.entry(hop.clone()).or_default();
            health.refusals = health.refusals.saturating_add(1);
            if health.refusals >= policy.down_after.max(1) {
                health.down_until = Some(self.now.after(policy.down_time));
            }
        }
        if let Some(hop) = &report.connected {
            self.hops.remove(hop);
        }
    }

    fn is_down(&self, hop: &NextHop) -> bool {
        self.hops
            .get(hop)
            .and_then(|h| h.down_until)
            .is_some_and(|t| t > self.now)
    }

    pub(super) fn select(&self, selection: &Selection) -> Vec<QueueId> {
        let mut ids: Vec<QueueId> = match selection {
            Selection::All => self.messages.keys().copied().collect(),
            Selection::Ids(ids) => ids
                .iter()
                .copied()
                .filter(|id| self.messages.contains_key(id))
                .collect(),
        };
        ids.sort();
        ids.dedup();
        ids
    }

    pub(super) fn set_held(&mut self, selection: &Selection, held: bool) -> usize {
        let mut changed = 0;
        for id in self.select(selection) {
            let Some(m) = self.messages.get_mut(&id) else {
                continue;
            };
            if m.state.held == held {
                continue;
            }
            m.state.held = held;
            m.dirty = true;
            changed += 1;
            if matches!(m.work, Awaiting::Due) {
                self.settle(id);
            }
        }
        changed
    }

    pub(super) fn index(&mut self, id: QueueId, at: Timestamp) {
        let Some(m) = self.messages.get_mut(&id) else {
            return;
        };
        if let Some(old) = m.due.replace(at) {
            self.due.remove(&(old, id));
        }
        self.due.insert((at, id));
    }

    pub(super) fn unindex(&mut self, id: QueueId) {
        if let Some(old) = self.messages.get_mut(&id).and_then(|m| m.due.take()) {
            self.due.remove(&(old, id));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::tests::{dest, hop, meta, qid, Driver, T0};
    use super::super::{Action, AttemptReport, RecipientOutcome, RouteAnswer, Scheduler};
    use crate::schedule::ScheduleConfig;

    fn refused() -> AttemptReport {
        AttemptReport {
            outcomes: vec![RecipientOutcome::ConnectionFailed(
                "connection refused".into(),
            )],
            refused: vec![hop(25)],
            connected: None,
        }
    }

    /// 100,000 messages wait for one destination's slots when its next hop goes down: each
    /// waiting batch finds it down and gives its slot to the next one, in a loop, not one
    /// stack frame per waiting message (which overflowed the relay thread's stack on the
    /// restart of a server with a large deferred queue).
    #[test]
    fn a_next_hop_going_down_before_a_long_line_of_waiting_batches_does_not_recurse() {
        const N: u64 = 100_000;
        let mut s = Scheduler::new(ScheduleConfig::default());
        let mut d = Driver::default();
        for n in 1..=N {
            s.handle_enqueue(qid(n), meta("s@x.test", &["b@target.test"], T0), T0)
                .unwrap();
        }
        d.run(&mut s);
        s.handle_route("target.test", RouteAnswer::Hops(dest(&[25])));
        let attempts: Vec<_> = d
            .run(&mut s)
            .iter()
            .filter_map(|a| match a {
                Action::Deliver { attempt, .. } => Some(*attempt),
                _ => None,
            })
            .collect();
        assert_eq!(attempts.len(), 20, "connections_per_destination");
        for a in attempts {
            s.handle_outcome(a, refused());
            let after = d.run(&mut s);
            assert!(
                !after.iter().any(|a| matches!(a, Action::Deliver { .. })),
                "no Deliver to a down next hop"
            );
        }
        // Every message is still queued, waiting for the down time, none attempted twice.
        assert!((1..=N).all(|n| s.message(qid(n)).is_some()));
        assert_eq!(s.message(qid(N)).unwrap().recipients[0].attempts, 0);
        assert_eq!(s.poll_timeout(), Some(T0.after(Duration::from_secs(300))));
    }
}
