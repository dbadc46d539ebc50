//! The byte format of a state record payload (docs/SPOOL.md, "Relay state records").
//!
//! Fixed-width little-endian integers and length-prefixed UTF-8 strings, so that every state
//! has exactly one encoding and `encode(decode(b)) == b` for every accepted `b`. Does not frame
//! or checksum (the spool does) and does not read files.

use super::{MessageState, RecipientState, Status, Timestamp};
use super::{MAX_FIELD_LEN, MAX_RECIPIENTS, MAX_REPLY_LEN};

/// The version byte this build writes and the only one it reads.
pub const STATE_FORMAT_VERSION: u8 = 1;

const MSG_HELD: u8 = 1 << 0;
const MSG_DELAY_WARNED: u8 = 1 << 1;
const MSG_FLAGS: u8 = MSG_HELD | MSG_DELAY_WARNED;
const RCPT_RELAYED_OWED: u8 = 1 << 0;
const HEADER_LEN: usize = 1 + 1 + 8 + 4;
const RCPT_FIXED_LEN: usize = 1 + 1 + 4 + 8 + 2 + 2 + 2;

/// Why a record payload (or a state about to be written) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The payload ended inside a field.
    #[error("state record truncated at byte {0}")]
    Truncated(usize),
    /// Bytes after the last recipient.
    #[error("{0} bytes after the end of the state record")]
    TrailingBytes(usize),
    /// A version byte other than [`STATE_FORMAT_VERSION`].
    #[error("unsupported state record version {0}")]
    Version(u8),
    /// Flag bits this version does not define.
    #[error("unknown flag bits {0:#04x} in the state record")]
    Flags(u8),
    /// A status byte other than 0 to 3.
    #[error("unknown recipient status {0}")]
    UnknownStatus(u8),
    /// No recipients, or more than [`MAX_RECIPIENTS`].
    #[error("{0} recipients in a state record (1 to {MAX_RECIPIENTS} allowed)")]
    RecipientCount(usize),
    /// A string that is too long, empty where it must not be, or not UTF-8.
    #[error("recipient {index}: bad {field}")]
    Field {
        /// The recipient's position.
        index: usize,
        /// Which field.
        field: &'static str,
    },
    /// Fields that contradict each other (a final status with a next attempt, a `relayed`
    /// notification owed by a recipient that was not delivered).
    #[error("recipient {0}: inconsistent state")]
    Inconsistent(usize),
    /// The whole record is larger than the spool's payload limit.
    #[error("state record of {0} bytes exceeds the spool's limit")]
    TooLarge(usize),
}

fn status_byte(s: Status) -> u8 {
    match s {
        Status::Pending => 0,
        Status::Deferred => 1,
        Status::Delivered => 2,
        Status::Bounced => 3,
    }
}

fn encoded_len(state: &MessageState) -> usize {
    HEADER_LEN
        + state
            .recipients
            .iter()
            .map(|r| RCPT_FIXED_LEN + r.address.len() + r.params.len() + r.last_reply.len())
            .sum::<usize>()
}

pub(super) fn validate(state: &MessageState) -> Result<(), StateError> {
    let n = state.recipients.len();
    if n == 0 || n > MAX_RECIPIENTS {
        return Err(StateError::RecipientCount(n));
    }
    for (index, r) in state.recipients.iter().enumerate() {
        let field = |field| StateError::Field { index, field };
        if r.address.is_empty() || r.address.len() > MAX_FIELD_LEN {
            return Err(field("address"));
        }
        if r.params.len() > MAX_FIELD_LEN {
            return Err(field("params"));
        }
        if r.last_reply.len() > MAX_REPLY_LEN {
            return Err(field("last reply"));
        }
        let final_with_due = r.status.is_final() && r.next_attempt != Timestamp(0);
        let relayed_not_delivered = r.relayed_owed && r.status != Status::Delivered;
        if final_with_due || relayed_not_delivered {
            return Err(StateError::Inconsistent(index));
        }
    }
    let len = encoded_len(state);
    if len > smtp_spool::MAX_STATE_LEN {
        return Err(StateError::TooLarge(len));
    }
    Ok(())
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Lengths are at most MAX_FIELD_LEN for a validated state; a longer one is cut to its
    // low 16 bits here and the record fails to decode, as `encode` documents.
    out.extend_from_slice(&(s.len() as u16).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

pub(super) fn encode(state: &MessageState) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(state));
    out.push(STATE_FORMAT_VERSION);
    let mut flags = 0;
    if state.held {
        flags |= MSG_HELD;
    }
    if state.delay_warned {
        flags |= MSG_DELAY_WARNED;
    }
    out.push(flags);
    out.extend_from_slice(&state.arrival.0.to_le_bytes());
    out.extend_from_slice(&(state.recipients.len() as u32).to_le_bytes());
    for r in &state.recipients {
        out.push(status_byte(r.status));
        out.push(if r.relayed_owed { RCPT_RELAYED_OWED } else { 0 });
        out.extend_from_slice(&r.attempts.to_le_bytes());
        out.extend_from_slice(&r.next_attempt.0.to_le_bytes());
        put_str(&mut out, &r.address);
        put_str(&mut out, &r.params);
        put_str(&mut out, &r.last_reply);
    }
    out
}

/// A cursor over the payload that reports where it ran out.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StateError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(StateError::Truncated(self.bytes.len()))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StateError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, StateError> {
        Ok(self.array::<1>()?[0])
    }

    fn string(&mut self, index: usize, field: &'static str) -> Result<String, StateError> {
        let len = u16::from_le_bytes(self.array()?) as usize;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| StateError::Field { index, field })
    }
}

pub(super) fn decode(bytes: &[u8]) -> Result<MessageState, StateError> {
    let mut r = Reader { bytes, pos: 0 };
    let version = r.u8()?;
    if version != STATE_FORMAT_VERSION {
        return Err(StateError::Version(version));
    }
    let flags = r.u8()?;
    if flags & !MSG_FLAGS != 0 {
        return Err(StateError::Flags(flags));
    }
    let arrival = Timestamp(u64::from_le_bytes(r.array()?));
    let count = u32::from_le_bytes(r.array()?) as usize;
    if count == 0 || count > MAX_RECIPIENTS {
        return Err(StateError::RecipientCount(count));
    }
    let mut recipients = Vec::with_capacity(count);
    for index in 0..count {
        let status = match r.u8()? {
            0 => Status::Pending,
            1 => Status::Deferred,
            2 => Status::Delivered,
            3 => Status::Bounced,
            other => return Err(StateError::UnknownStatus(other)),
        };
        let rflags = r.u8()?;
        if rflags & !RCPT_RELAYED_OWED != 0 {
            return Err(StateError::Flags(rflags));
        }
        let attempts = u32::from_le_bytes(r.array()?);
        let next_attempt = Timestamp(u64::from_le_bytes(r.array()?));
        recipients.push(RecipientState {
            address: r.string(index, "address")?,
            params: r.string(index, "params")?,
            last_reply: r.string(index, "last reply")?,
            status,
            attempts,
            next_attempt,
            relayed_owed: rflags & RCPT_RELAYED_OWED != 0,
        });
    }
    if r.pos != bytes.len() {
        return Err(StateError::TrailingBytes(bytes.len() - r.pos));
    }
    let state = MessageState {
        arrival,
        held: flags & MSG_HELD != 0,
        delay_warned: flags & MSG_DELAY_WARNED != 0,
        recipients,
    };
    validate(&state)?;
    Ok(state)
}

pub(super) fn max_encoded_len(state: &MessageState) -> usize {
    HEADER_LEN
        + state
            .recipients
            .iter()
            .map(|r| RCPT_FIXED_LEN + r.address.len() + r.params.len() + MAX_REPLY_LEN)
            .sum::<usize>()
}
