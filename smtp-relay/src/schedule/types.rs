//! The scheduler's vocabulary: what goes in (route answers, delivery reports, operator
//! selections) and what comes out ([`Action`]). Plain data; no behaviour beyond classifying a
//! recipient's outcome into a [`Verdict`].

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use smtp_spool::QueueId;

use crate::retry::RetryPolicy;
use crate::state::{MessageState, Timestamp};

/// One delivery attempt handed out by a [`Action::Deliver`]; its report comes back with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptId(pub u64);

impl fmt::Display for AttemptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "attempt {}", self.0)
    }
}

/// A host to connect to: its name (for SNI, certificate checks and logs) and its address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NextHop {
    /// The host name (an MX target, a static host, or the address as text).
    pub host: Arc<str>,
    /// Where to connect.
    pub addr: SocketAddr,
}

/// A destination: the next hops of a route, in the order they are tried. Recipients of one
/// message whose domains resolve to the same destination go out in one batch.
pub type Destination = Arc<[NextHop]>;

/// The answer to an [`Action::Resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteAnswer {
    /// The next hops, in order (static hosts, or MX targets by preference).
    Hops(Destination),
    /// The domain does not exist (NXDOMAIN): bounce `5.1.2`.
    NoSuchDomain,
    /// The domain publishes a null MX (RFC 7505): bounce `5.1.10`, no attempt.
    NullMx,
    /// Every MX names this host: bounce `5.4.6`.
    MxLoop,
    /// SERVFAIL, a timeout, no usable address for now: defer with this text.
    Temporary(String),
    /// Refused by policy (a plugin's route hook) with this 5xx reply: bounce the domain's
    /// recipients with it, no attempt.
    Refused(String),
}

/// How one recipient of an attempt fared, as the client engine reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientOutcome {
    /// The next hop accepted it (2xx to DATA, or to its RCPT under LMTP-like reporting).
    Delivered(String),
    /// Accepted by a next hop that does not offer DSN while `NOTIFY=SUCCESS` was asked: a
    /// `relayed` notification is owed.
    Relayed(String),
    /// A temporary failure (4xx).
    Deferred(String),
    /// A 5xx reply; `at_rcpt` when it answered RCPT (a 552 there is temporary, RFC 5321
    /// §4.5.3.1.10).
    Bounced {
        /// The reply text.
        reply: String,
        /// Whether the reply answered RCPT TO.
        at_rcpt: bool,
    },
    /// No next hop could be reached (refused, timed out, TLS required and failed).
    ConnectionFailed(String),
    /// Our own side failed (a plugin state, our policy, a spool read): deferred, classified
    /// as local, never as a remote block.
    LocalFailure(String),
}

/// What an outcome means for the recipient (also the log line's `status=` word).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// `status=sent`.
    Sent,
    /// `status=deferred`; `local` when our own side failed.
    Deferred {
        /// The failure was ours, not the next hop's.
        local: bool,
    },
    /// `status=bounced`.
    Bounced,
}

impl RecipientOutcome {
    /// The verdict: 2xx sent, 4xx (and 552 to RCPT) and connection failures deferred, local
    /// failures deferred as local, other 5xx bounced.
    pub fn verdict(&self) -> Verdict {
        match self {
            RecipientOutcome::Delivered(_) | RecipientOutcome::Relayed(_) => Verdict::Sent,
            RecipientOutcome::Deferred(_) | RecipientOutcome::ConnectionFailed(_) => {
                Verdict::Deferred { local: false }
            }
            RecipientOutcome::LocalFailure(_) => Verdict::Deferred { local: true },
            RecipientOutcome::Bounced { reply, at_rcpt } => {
                if *at_rcpt && reply.trim_start().starts_with("552") {
                    Verdict::Deferred { local: false }
                } else {
                    Verdict::Bounced
                }
            }
        }
    }

    /// The reply or error text.
    pub fn text(&self) -> &str {
        match self {
            RecipientOutcome::Delivered(t)
            | RecipientOutcome::Relayed(t)
            | RecipientOutcome::Deferred(t)
            | RecipientOutcome::ConnectionFailed(t)
            | RecipientOutcome::LocalFailure(t) => t,
            RecipientOutcome::Bounced { reply, .. } => reply,
        }
    }
}

/// The report of one attempt: an outcome per recipient of the batch, in the batch's order,
/// and what was learnt about the next hops.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttemptReport {
    /// One outcome per recipient of the [`Action::Deliver`], same order. Recipients with no
    /// outcome (a short list) are deferred as a local failure.
    pub outcomes: Vec<RecipientOutcome>,
    /// Next hops that refused (or never answered) a connection during the attempt.
    pub refused: Vec<NextHop>,
    /// The next hop that took the connection, if one did.
    pub connected: Option<NextHop>,
}

/// A message given to the scheduler: new mail, or one reloaded at start with its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    /// The envelope sender; empty for the null sender (never notified).
    pub sender: String,
    /// The message size in bytes.
    pub size: u64,
    /// Its delivery state: [`MessageState::new`] for new mail, the decoded record otherwise.
    pub state: MessageState,
}

/// Which messages an operator command applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every queued message.
    All,
    /// These messages (unknown ids are skipped and not counted).
    Ids(Vec<QueueId>),
}

/// What kind of notification a [`Action::Bounce`] asks for (RFC 3464 `Action:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BounceKind {
    /// `Action: failed`: permanent failure, expiry or an operator's bounce.
    Failed,
    /// `Action: delayed`: the delay warning.
    Delayed,
    /// `Action: relayed`: delivered to a next hop without DSN although SUCCESS was asked.
    Relayed,
}

/// One recipient of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BounceRecipient {
    /// Its position in the envelope.
    pub index: u32,
    /// The address.
    pub address: String,
    /// The RCPT parameters as received (NOTIFY, ORCPT), for the DSN generator.
    pub params: String,
    /// The enhanced status for `Status:` (`4.4.7` for an expiry, `5.1.10` for a null MX, ...).
    pub status: String,
    /// The last reply (`Diagnostic-Code: smtp; ...`), possibly empty.
    pub reply: String,
    /// The bounce class of the reply (`smtp_proto::classify`), when there is a reply.
    pub class: Option<u16>,
}

/// What the scheduler asks its driver to do ([`Scheduler::poll_action`](super::Scheduler::poll_action)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Resolve the next hops of a domain; answer with `handle_route`.
    Resolve {
        /// The recipient domain, lower-case.
        domain: String,
    },
    /// Deliver these recipients of one message to one destination; answer with
    /// `handle_outcome(attempt, report)`.
    Deliver {
        /// Names this attempt in the report.
        attempt: AttemptId,
        /// The next hops to try, in order (those marked down left out).
        hops: Destination,
        /// The message.
        id: QueueId,
        /// The recipients' positions in the envelope.
        recipients: Vec<u32>,
    },
    /// Write this record payload durably (`Spool::write_state`); then `handle_persisted(id)`.
    Persist {
        /// The message.
        id: QueueId,
        /// The encoded [`MessageState`].
        record: Vec<u8>,
    },
    /// Queue a notification to the message's sender; once committed to the spool,
    /// `handle_bounce_queued(id)`. (NOTIFY and RET are the DSN generator's to honour.)
    Bounce {
        /// The message reported on.
        id: QueueId,
        /// What happened.
        kind: BounceKind,
        /// The recipients reported on.
        recipients: Vec<BounceRecipient>,
    },
    /// Every recipient is done: remove the message and its record from the spool.
    Complete {
        /// The message.
        id: QueueId,
    },
}

/// The scheduler's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleConfig {
    /// Retry intervals, expiry, delay warning, jitter, down time.
    pub retry: RetryPolicy,
    /// At most this many attempts to one destination at once; more batches wait their turn.
    pub connections_per_destination: usize,
    /// The seed of the jitter generator.
    pub seed: u64,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            retry: RetryPolicy::default(),
            connections_per_destination: 20,
            seed: 0,
        }
    }
}

/// A caller's misuse of the scheduler (protocol outcomes are [`Action`]s, not errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The id is already queued.
    #[error("message {0} is already queued")]
    Duplicate(QueueId),
    /// The state cannot be recorded (see [`crate::state::StateError`]).
    #[error("message {0}: {1}")]
    State(QueueId, crate::state::StateError),
    /// The scheduler was shut down.
    #[error("the scheduler is shut down")]
    ShutDown,
}

/// The time of the next due message, a convenience for drivers' poll timeouts.
pub(super) fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
