//! One queued message as the scheduler holds it: its persisted [`MessageState`] plus the
//! little that is only in memory (what it awaits, notifications owed, where it last went).
//!
//! Kept small (100,000 deferred messages must fit in well under 256 MB): the transient parts
//! of an attempt live in a box that exists only while the message is busy. Does not decide
//! anything about time or order; [`super::Scheduler`] does.

use smtp_proto::classify::classify_reply_text;
use smtp_proto::status::EnhancedStatus;

use super::types::{BounceKind, BounceRecipient, Destination};
use crate::state::{MessageState, RecipientState, Status, Timestamp};

/// Why a recipient is owed a failure notification (it is marked bounced once that is queued).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reason {
    /// A 5xx from a next hop: the status comes from its reply.
    Remote,
    /// Older than the maximum age: `4.4.7`.
    Expired,
    /// NXDOMAIN: `5.1.2`.
    NoSuchDomain,
    /// Null MX: `5.1.10`.
    NullMx,
    /// MX loop: `5.4.6`.
    MxLoop,
    /// An operator's bounce: `5.0.0`.
    Operator,
}

impl Reason {
    fn status(self, reply: &str) -> String {
        match self {
            Reason::Remote => status_of(reply).unwrap_or_else(|| "5.0.0".into()),
            Reason::Expired => "4.4.7".into(),
            Reason::NoSuchDomain => "5.1.2".into(),
            Reason::NullMx => "5.1.10".into(),
            Reason::MxLoop => "5.4.6".into(),
            Reason::Operator => "5.0.0".into(),
        }
    }
}

/// The enhanced status of a reply such as `550 5.1.1 user unknown`.
fn status_of(reply: &str) -> Option<String> {
    let word = reply.split_whitespace().nth(1)?;
    EnhancedStatus::parse(word).map(|s| s.to_string())
}

/// The batches of one attempt, while the message is busy.
#[derive(Debug, Default)]
pub(super) struct Busy {
    /// Routes still awaited: the domain and the recipients waiting on it.
    pub routing: Vec<(String, Vec<u32>)>,
    /// Routed recipients grouped by destination, dispatched when `routing` is empty.
    pub batches: Vec<(Destination, Vec<u32>)>,
    /// Attempts handed out (or waiting for a connection slot) and not yet reported.
    pub attempts: u32,
    /// Persist actions not yet confirmed.
    pub persists: u32,
}

impl Busy {
    pub fn is_idle(&self) -> bool {
        self.routing.is_empty() && self.attempts == 0 && self.persists == 0
    }
}

/// What a message awaits.
#[derive(Debug)]
pub(super) enum Awaiting {
    /// Its due time (it is in the due index), or a release when held, or nothing (shut down).
    Due,
    /// Routes, deliveries or record writes.
    Work(Box<Busy>),
    /// `handle_bounce_queued` for a notification of this kind.
    BounceQueued(BounceKind),
}

/// One queued message.
#[derive(Debug)]
pub(super) struct Message {
    pub null_sender: bool,
    pub state: MessageState,
    pub work: Awaiting,
    /// In-memory changes not yet in a persisted record.
    pub dirty: bool,
    /// Recipients owed a failure notification.
    pub owed: Vec<(u32, Reason)>,
    /// The delay warning is due and not yet queued.
    pub delay_owed: bool,
    /// An operator's bounce, applied once the message is no longer busy.
    pub bounce_requested: bool,
    /// Its key in the due index.
    pub due: Option<Timestamp>,
    /// Every next hop of its destination is down until then.
    pub wait_until: Option<Timestamp>,
    /// Where it last went (flush clears these hops' down marks).
    pub last_hops: Option<Destination>,
}

impl Message {
    pub fn new(null_sender: bool, state: MessageState) -> Message {
        Message {
            null_sender,
            state,
            work: Awaiting::Due,
            dirty: false,
            owed: Vec::new(),
            delay_owed: false,
            bounce_requested: false,
            due: None,
            wait_until: None,
            last_hops: None,
        }
    }

    pub fn is_owed(&self, index: u32) -> bool {
        self.owed.iter().any(|&(i, _)| i == index)
    }

    /// Recipients that are neither final nor owed a failure notification.
    pub fn open(&self) -> impl Iterator<Item = (u32, &RecipientState)> {
        self.state
            .recipients
            .iter()
            .enumerate()
            .map(|(i, r)| (i as u32, r))
            .filter(move |(i, r)| !r.status.is_final() && !self.is_owed(*i))
    }

    /// Owes every open recipient a failure notification for `reason`.
    pub fn fail_open(&mut self, reason: Reason) {
        let open: Vec<u32> = self.open().map(|(i, _)| i).collect();
        self.owed.extend(open.into_iter().map(|i| (i, reason)));
    }

    /// Owes recipient `index` a failure notification, with `reply` as its last reply.
    pub fn fail(&mut self, index: u32, reason: Reason, reply: &str) {
        if let Some(r) = self.state.recipients.get_mut(index as usize) {
            r.set_reply(reply);
            self.dirty = true;
        }
        if !self.is_owed(index) {
            self.owed.push((index, reason));
        }
    }

    /// The earliest time an open recipient may be attempted.
    pub fn next_attempt(&self) -> Option<Timestamp> {
        let wait = self.wait_until.unwrap_or_default();
        self.open().map(|(_, r)| r.next_attempt.max(wait)).min()
    }

    /// The notification owed first, if any: failures, then relayed, then the delay warning.
    pub fn owed_notification(&self) -> Option<BounceKind> {
        if !self.owed.is_empty() {
            Some(BounceKind::Failed)
        } else if self.state.recipients.iter().any(|r| r.relayed_owed) {
            Some(BounceKind::Relayed)
        } else if self.delay_owed {
            Some(BounceKind::Delayed)
        } else {
            None
        }
    }

    /// The recipients a notification of `kind` reports on.
    pub fn bounce_recipients(&self, kind: BounceKind) -> Vec<BounceRecipient> {
        let one = |index: u32, status: String| {
            let r = &self.state.recipients[index as usize];
            BounceRecipient {
                index,
                address: r.address.clone(),
                params: r.params.clone(),
                status,
                reply: r.last_reply.clone(),
                class: (!r.last_reply.is_empty()).then(|| classify_reply_text(&r.last_reply).id),
            }
        };
        let recipients = &self.state.recipients;
        match kind {
            BounceKind::Failed => self
                .owed
                .iter()
                .map(|&(i, why)| one(i, why.status(&recipients[i as usize].last_reply)))
                .collect(),
            BounceKind::Relayed => (0..recipients.len() as u32)
                .filter(|&i| recipients[i as usize].relayed_owed)
                .map(|i| {
                    let reply = &recipients[i as usize].last_reply;
                    one(i, status_of(reply).unwrap_or_else(|| "2.0.0".into()))
                })
                .collect(),
            BounceKind::Delayed => self
                .open()
                .map(|(i, r)| (i, status_of(&r.last_reply)))
                .collect::<Vec<_>>()
                .into_iter()
                .map(|(i, s)| one(i, s.unwrap_or_else(|| "4.0.0".into())))
                .collect(),
        }
    }

    /// The notification of `kind` is queued: record what it reported.
    pub fn notification_queued(&mut self, kind: BounceKind) {
        match kind {
            BounceKind::Failed => {
                for (i, _) in std::mem::take(&mut self.owed) {
                    let r = &mut self.state.recipients[i as usize];
                    r.status = Status::Bounced;
                    r.next_attempt = Timestamp(0);
                    r.relayed_owed = false;
                }
            }
            BounceKind::Relayed => {
                for r in &mut self.state.recipients {
                    r.relayed_owed = false;
                }
            }
            BounceKind::Delayed => {
                self.delay_owed = false;
                self.state.delay_warned = true;
            }
        }
        self.dirty = true;
    }

    /// For the null sender nothing is ever sent: mark what would have been reported as done.
    pub fn drop_notifications(&mut self) {
        for kind in [BounceKind::Failed, BounceKind::Relayed] {
            self.notification_queued(kind);
        }
        self.delay_owed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_statuses_come_from_the_reason_or_the_reply() {
        assert_eq!(Reason::Remote.status("550 5.1.1 no such user"), "5.1.1");
        assert_eq!(Reason::Remote.status("550 no such user"), "5.0.0");
        assert_eq!(Reason::Expired.status("451 4.2.0 later"), "4.4.7");
        assert_eq!(Reason::NullMx.status(""), "5.1.10");
        assert_eq!(Reason::NoSuchDomain.status(""), "5.1.2");
        assert_eq!(Reason::MxLoop.status(""), "5.4.6");
        assert_eq!(Reason::Operator.status(""), "5.0.0");
    }
}
