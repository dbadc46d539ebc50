//! The relay's state record: what changes about a queued message, per recipient.
//!
//! A message file is written once; its delivery state (per recipient: status, attempts, next
//! attempt time, last reply; per message: held, arrival, notifications already queued) lives in
//! a [`MessageState`] that the relay encodes with [`MessageState::encode`] and the spool stores
//! beside the message (`Spool::write_state`, which adds the magic, length and CRC frame).
//! [`MessageState::decode`] is strict: a record that is not exactly what this build would write
//! is refused, and the caller quarantines the message with it (`Spool::quarantine`) rather than
//! start it again as "pending", which could deliver again what the record said was done.
//!
//! The byte format is specified in docs/SPOOL.md, "Relay state records".
//!
//! What this module does not do: no file I/O, no framing or checksum (the spool's), no
//! decisions about what happens next (the scheduler's), no reading of the message envelope.

mod codec;

#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Duration;

pub use codec::{StateError, STATE_FORMAT_VERSION};

/// The most recipients one record holds (the server's RCPT limits are far below it).
pub const MAX_RECIPIENTS: usize = 1000;
/// The longest address or parameter string a record holds, in bytes.
pub const MAX_FIELD_LEN: usize = 1024;
/// The longest last reply a record holds, in bytes; the scheduler cuts longer replies.
pub const MAX_REPLY_LEN: usize = 512;

/// A wall-clock time: whole seconds since the Unix epoch.
///
/// The relay's times survive restarts, so they are wall-clock times, always passed in by the
/// driver (the relay never reads a clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// This time plus `d` (whole seconds, saturating).
    pub fn after(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(d.as_secs()))
    }

    /// The time from `earlier` to this one (zero when `earlier` is later).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_secs(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where one recipient stands: the words `impulse queue list` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Not attempted yet, or being attempted now.
    Pending,
    /// An attempt failed temporarily; the next one is at `next_attempt`.
    Deferred,
    /// Accepted by a next hop. Final.
    Delivered,
    /// Failed permanently (or expired, or bounced by an operator), and its notification was
    /// queued. Final.
    Bounced,
}

impl Status {
    /// The status word: `pending`, `deferred`, `delivered` or `bounced`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Deferred => "deferred",
            Status::Delivered => "delivered",
            Status::Bounced => "bounced",
        }
    }

    /// Whether nothing more will be done for this recipient.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Delivered | Status::Bounced)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One recipient's delivery state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientState {
    /// The forward-path without angle brackets, as in the envelope.
    pub address: String,
    /// The RCPT TO parameters as received (NOTIFY, ORCPT, ...).
    pub params: String,
    /// Where it stands.
    pub status: Status,
    /// Attempts that reached a next hop or failed to connect (not waits for a next hop that
    /// is marked down, nor DNS answers).
    pub attempts: u32,
    /// When it is next due; [`Timestamp`]`(0)` for a final status.
    pub next_attempt: Timestamp,
    /// The last reply, or the connection error, or empty.
    pub last_reply: String,
    /// Delivered to a next hop without DSN although `NOTIFY=SUCCESS` was asked: a `relayed`
    /// notification is owed and not yet queued. Only on a delivered recipient.
    pub relayed_owed: bool,
}

impl RecipientState {
    /// A recipient not attempted yet, due at `due`.
    pub fn pending(address: impl Into<String>, params: impl Into<String>, due: Timestamp) -> Self {
        RecipientState {
            address: address.into(),
            params: params.into(),
            status: Status::Pending,
            attempts: 0,
            next_attempt: due,
            last_reply: String::new(),
            relayed_owed: false,
        }
    }

    /// The domain of the address (after the last `@`), lower-cased; empty when it has none.
    pub fn domain(&self) -> String {
        self.address
            .rsplit_once('@')
            .map_or(String::new(), |(_, d)| {
                d.trim_end_matches('.').to_ascii_lowercase()
            })
    }

    /// Sets the last reply, cut to [`MAX_REPLY_LEN`] bytes on a character boundary.
    pub fn set_reply(&mut self, reply: &str) {
        let mut end = reply.len().min(MAX_REPLY_LEN);
        while !reply.is_char_boundary(end) {
            end -= 1;
        }
        self.last_reply.clear();
        self.last_reply.push_str(&reply[..end]);
    }
}

/// A message's delivery state: the payload of its state record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageState {
    /// When the message was accepted.
    pub arrival: Timestamp,
    /// Held by an operator: neither attempted nor expired until released.
    pub held: bool,
    /// The delay warning was queued (it is sent once).
    pub delay_warned: bool,
    /// The recipients, in envelope order.
    pub recipients: Vec<RecipientState>,
}

impl MessageState {
    /// A newly accepted message: every recipient pending and due at arrival.
    pub fn new<'a>(
        arrival: Timestamp,
        recipients: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> MessageState {
        MessageState {
            arrival,
            held: false,
            delay_warned: false,
            recipients: recipients
                .into_iter()
                .map(|(a, p)| RecipientState::pending(a, p, arrival))
                .collect(),
        }
    }

    /// Whether every recipient is final and no notification is owed.
    pub fn is_done(&self) -> bool {
        self.recipients
            .iter()
            .all(|r| r.status.is_final() && !r.relayed_owed)
    }

    /// Checks that this state is one a record may hold (the rules `decode` enforces): between
    /// 1 and [`MAX_RECIPIENTS`] recipients, non-empty addresses, fields within their limits, a
    /// final status with no next attempt, a `relayed` notification owed only by a delivered
    /// recipient, and the whole within the spool's payload limit.
    pub fn validate(&self) -> Result<(), StateError> {
        codec::validate(self)
    }

    /// Encodes the record payload (docs/SPOOL.md). Call [`validate`](Self::validate) first
    /// for a state not built by the scheduler; an invalid state encodes to a payload that
    /// [`decode`](Self::decode) refuses.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes and validates a record payload. Never panics; refuses anything that
    /// [`encode`](Self::encode) would not have written.
    pub fn decode(bytes: &[u8]) -> Result<MessageState, StateError> {
        codec::decode(bytes)
    }
}

impl MessageState {
    /// The largest payload this message's record can grow to: every last reply at
    /// [`MAX_REPLY_LEN`]. The scheduler refuses a message for which this exceeds the spool's
    /// limit, so no later record of it can be unwritable.
    pub fn max_encoded_len(&self) -> usize {
        codec::max_encoded_len(self)
    }
}
