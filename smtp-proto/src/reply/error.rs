//! The error type of the reply parser and constructors.

use crate::status::{EnhancedStatus, ErrorReply};

/// Why a reply could not be parsed or built.
///
/// Variants are grouped by who is at fault: the peer sent bytes that are not a reply, the
/// peer sent more than [`Limits`](crate::Limits) allows, or our caller misused the API.
/// Line numbers count from 1 within the reply. The error is small and `Copy`, so a
/// [`ReplyParser`](super::ReplyParser) can keep returning it (errors stick).
///
/// An SMTP 4xx/5xx reply is *not* an error: it is a [`Reply`](super::Reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    // --- The peer sent bytes that are not a reply. ---
    /// A line does not start with a reply code: three digits, the first 2 to 5, the second
    /// 0 to 5 (RFC 5321 §4.2). Lines shorter than three bytes land here too.
    #[error("reply line {line}: no valid reply code")]
    InvalidCode {
        /// The offending line.
        line: usize,
    },
    /// The byte after the reply code is neither a space, a `-` nor the end of the line.
    #[error("reply line {line}: expected ' ', '-' or end of line after the reply code")]
    InvalidSeparator {
        /// The offending line.
        line: usize,
    },
    /// A line of a multi-line reply carries another code than the first line.
    #[error("reply line {line}: code {found} differs from the reply's code {expected}")]
    MixedCodes {
        /// The offending line.
        line: usize,
        /// The code of the reply's first line.
        expected: u16,
        /// The code found on this line.
        found: u16,
    },
    /// A CR that is not immediately followed by LF.
    #[error("reply line {line}: CR not followed by LF")]
    BareCr {
        /// The offending line.
        line: usize,
    },
    /// A line ended in LF without CR while the parser was told to refuse that
    /// ([`ReplyParser::accept_bare_lf`](super::ReplyParser::accept_bare_lf)).
    #[error("reply line {line}: line ends in a bare LF")]
    BareLf {
        /// The offending line.
        line: usize,
    },
    /// A NUL byte inside a line.
    #[error("reply line {line}: NUL byte")]
    NulByte {
        /// The offending line.
        line: usize,
    },

    // --- The peer sent more than the limits allow. ---
    /// A line (CRLF included) is longer than `Limits::reply_line`. Reported as soon as that
    /// many bytes have arrived without LF.
    #[error("reply line {line} longer than {limit} bytes")]
    LineTooLong {
        /// The offending line.
        line: usize,
        /// The limit that was crossed.
        limit: usize,
    },
    /// The reply has more lines than `Limits::reply_lines`. Reported as soon as the last
    /// allowed line turns out to be a continuation line.
    #[error("reply has more than {limit} lines")]
    TooManyLines {
        /// The limit that was crossed.
        limit: usize,
    },
    /// The reply is longer than `Limits::reply_bytes`. Reported as soon as that many bytes
    /// have arrived without the reply ending.
    #[error("reply longer than {limit} bytes")]
    TooLarge {
        /// The limit that was crossed.
        limit: usize,
    },

    // --- Our caller misused the API. ---
    /// [`ReplyParser::parse`](super::ReplyParser::parse) was given a shorter buffer than
    /// it had already scanned: the caller dropped bytes of an unfinished reply.
    #[error("reply buffer shrank from {scanned} to {len} bytes while a reply was pending")]
    InputShrunk {
        /// Bytes already scanned.
        scanned: usize,
        /// Length of the buffer passed in.
        len: usize,
    },
    /// A reply was built with a code that is not three digits with the first 2 to 5 and
    /// the second 0 to 5.
    #[error("invalid reply code {code}")]
    InvalidReplyCode {
        /// The code given.
        code: u16,
    },
    /// A reply was built with an enhanced status whose class differs from the reply code's
    /// first digit (RFC 2034 §4: "a 2xx response must incorporate a 2.X.X code").
    #[error("enhanced status {status} does not agree with reply code {code}")]
    StatusMismatch {
        /// The reply code given.
        code: u16,
        /// The enhanced status given.
        status: EnhancedStatus,
    },
}

impl ReplyError {
    /// `true` when the peer is at fault (garbage or a reply beyond the limits), `false` when
    /// our caller misused the API.
    pub fn is_peer_fault(&self) -> bool {
        !matches!(
            self,
            ReplyError::InputShrunk { .. }
                | ReplyError::InvalidReplyCode { .. }
                | ReplyError::StatusMismatch { .. }
        )
    }

    /// The failure a client records for the message when this error ends a session: a
    /// temporary failure, so the message is retried later (a broken peer is no reason to
    /// bounce). Peer faults map to `451 4.5.0` (protocol error), caller faults to
    /// `451 4.3.0` (local error).
    pub fn reply(&self) -> ErrorReply {
        match self {
            ReplyError::LineTooLong { .. }
            | ReplyError::TooManyLines { .. }
            | ReplyError::TooLarge { .. } => ErrorReply::new(
                451,
                EnhancedStatus::new(4, 5, 0),
                "Remote server's reply exceeds size limits",
            ),
            e if e.is_peer_fault() => ErrorReply::new(
                451,
                EnhancedStatus::new(4, 5, 0),
                "Invalid reply from remote server",
            ),
            _ => ErrorReply::new(
                451,
                EnhancedStatus::new(4, 3, 0),
                "Local error in processing",
            ),
        }
    }
}
