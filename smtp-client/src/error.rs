//! The client's error type.
//!
//! A 4xx/5xx reply is data (a [`RecipientOutcome`](crate::RecipientOutcome)), not an
//! [`Error`]. An `Error` ends the session: it sticks, and every message not yet finished gets
//! the temporary failure [`Error::reply`] describes, so it is retried later.

use std::time::Duration;

use smtp_proto::{EnhancedStatus, Reply, ReplyError};

/// What a session was waiting for when it timed out, or a command was being answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The server's greeting (banner).
    Greeting,
    /// A reply to EHLO, HELO, AUTH, STARTTLS, RSET, QUIT or a custom state's command, or
    /// the TLS handshake after STARTTLS.
    Command,
    /// A reply to MAIL FROM.
    Mail,
    /// A reply to RCPT TO.
    Rcpt,
    /// The `354` reply to DATA.
    DataInit,
    /// Writing one block of the message body (the driver's write timeout).
    DataBlock,
    /// The reply to the end-of-data dot.
    Final,
}

impl Stage {
    /// A lower-case name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Greeting => "greeting",
            Stage::Command => "command",
            Stage::Mail => "MAIL",
            Stage::Rcpt => "RCPT",
            Stage::DataInit => "DATA",
            Stage::DataBlock => "data block",
            Stage::Final => "end of data",
        }
    }
}

/// Why a session ended before its work was done. Errors stick: once a session has one,
/// every later input is ignored and [`Session::error`](crate::Session::error) keeps
/// returning it.
///
/// Variants are grouped by who is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // --- The peer sent garbage or too much. ---
    /// The server's bytes are not a reply, or a reply is beyond the limits (a 100,000-line
    /// reply, a 1 MiB line without LF).
    #[error("invalid reply from the server: {0}")]
    InvalidReply(ReplyError),
    // --- The peer broke the sequence. ---
    /// The server sent bytes when no reply was due (more replies than commands while
    /// pipelining, or data ahead of a command it had not seen yet).
    #[error("the server sent data when no reply was due")]
    Unsolicited,
    /// The server sent bytes after its `220` to STARTTLS, before the TLS handshake: a
    /// response injection (the bytes would otherwise be read as replies under TLS). Nothing
    /// more is sent.
    #[error("the server sent data after its STARTTLS reply (response injection)")]
    ResponseInjection,
    /// The server closed the connection while replies were due.
    #[error("the server closed the connection")]
    PeerClosed,
    /// No reply within the policy's time limit.
    #[error("timed out after {after:?} waiting for the {} reply", stage.as_str())]
    Timeout {
        /// What the session was waiting for.
        stage: Stage,
        /// The limit that passed.
        after: Duration,
    },
    // --- The peer refused the session (a reply, kept for its classification). ---
    /// The session could not be set up: the greeting, EHLO/HELO, STARTTLS or AUTH was
    /// refused, or a custom state failed it.
    #[error("session refused: {} {}", .0.code(), .0.text())]
    Refused(Reply),
    // --- Unsupported. ---
    /// The policy requires TLS, and the driver cannot provide it, or the server does not
    /// offer STARTTLS or refused it.
    #[error("TLS required but not available: {0}")]
    TlsUnavailable(&'static str),
    // --- TLS. ---
    /// The TLS handshake after STARTTLS failed, including a server certificate that did not
    /// verify. The connection cannot go on in plaintext.
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    // --- Our caller misused the API. ---
    /// A call that is not valid in the session's current state.
    #[error("API misuse: {0}")]
    Misuse(&'static str),
    // --- I/O (drivers only). ---
    /// A socket error, as text (drivers keep the `io::Error` kind in the message).
    #[error("I/O error: {0}")]
    Io(String),
}

impl Error {
    /// The reply recorded for every unfinished recipient when this error ends a session.
    /// Always temporary except for a refusal, which keeps the server's reply.
    pub fn reply(&self) -> Reply {
        match self {
            Error::InvalidReply(e) => e.reply().into(),
            Error::Unsolicited => Reply::new(
                451,
                Some(EnhancedStatus::new(4, 5, 0)),
                "Remote server sent data out of sequence",
            ),
            Error::ResponseInjection => Reply::new(
                451,
                Some(EnhancedStatus::new(4, 7, 0)),
                "Remote server sent data after its STARTTLS reply (response injection)",
            ),
            Error::PeerClosed => Reply::new(
                451,
                Some(EnhancedStatus::new(4, 4, 2)),
                "Connection closed by remote server",
            ),
            Error::Timeout { stage, .. } => Reply::new(
                451,
                Some(EnhancedStatus::new(4, 4, 2)),
                &format!("Timeout waiting for the {} reply", stage.as_str()),
            ),
            Error::Refused(reply) => reply.clone(),
            Error::TlsUnavailable(why) => Reply::new(
                454,
                Some(EnhancedStatus::new(4, 7, 0)),
                &format!("TLS not available: {why}"),
            ),
            Error::Tls(why) => Reply::new(
                451,
                Some(EnhancedStatus::new(4, 7, 5)),
                &format!("TLS handshake failed: {why}"),
            ),
            Error::Misuse(_) => Reply::new(
                451,
                Some(EnhancedStatus::new(4, 3, 0)),
                "Local error in processing",
            ),
            Error::Io(_) => Reply::new(
                451,
                Some(EnhancedStatus::new(4, 4, 2)),
                "Connection to remote server failed",
            ),
        }
    }

    /// `true` when the server is at fault (garbage, sequence, refusal, timeout).
    pub fn is_peer_fault(&self) -> bool {
        matches!(
            self,
            Error::InvalidReply(_)
                | Error::Unsolicited
                | Error::ResponseInjection
                | Error::PeerClosed
                | Error::Timeout { .. }
                | Error::Refused(_)
        )
    }
}
