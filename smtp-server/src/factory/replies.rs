//! The factory's fixed replies, every one with an enhanced status code (RFC 2034, RFC 3463).
//! Texts follow Postfix where Postfix has one, so operators recognise them.

use smtp_proto::status::{EnhancedStatus, ErrorReply};

const fn r(code: u16, class: u8, subject: u16, detail: u16, text: &'static str) -> ErrorReply {
    ErrorReply::new(code, EnhancedStatus::new(class, subject, detail), text)
}

/// `250 2.0.0 Ok` (NOOP, RSET, and a message accepted without a queue id).
pub const OK: ErrorReply = r(250, 2, 0, 0, "Ok");
/// `250 2.1.0 Ok` (MAIL).
pub const MAIL_OK: ErrorReply = r(250, 2, 1, 0, "Ok");
/// `250 2.1.5 Ok` (RCPT).
pub const RCPT_OK: ErrorReply = r(250, 2, 1, 5, "Ok");
/// `354 End data with <CR><LF>.<CR><LF>` (no enhanced code: RFC 2034 gives 3xx none).
pub const START_DATA: &str = "354 End data with <CR><LF>.<CR><LF>\r\n";
/// `221 2.0.0 Bye`.
pub const BYE: ErrorReply = r(221, 2, 0, 0, "Bye");
/// `235 2.7.0 Authentication successful`.
pub const AUTH_OK: ErrorReply = r(235, 2, 7, 0, "Authentication successful");
/// `220 2.0.0 Ready to start TLS`.
pub const READY_TLS: ErrorReply = r(220, 2, 0, 0, "Ready to start TLS");
/// `252 2.5.0` (VRFY: we do not verify addresses).
pub const VRFY: ErrorReply = r(
    252,
    2,
    5,
    0,
    "Cannot VRFY user, but will accept message and attempt delivery",
);
/// `502 5.5.1` (EXPN).
pub const EXPN: ErrorReply = r(502, 5, 5, 1, "Error: EXPN not supported");
/// `502 5.5.1` (BDAT with CHUNKING off, and unhandled extension verbs).
pub const NOT_IMPLEMENTED: ErrorReply = r(502, 5, 5, 1, "Error: command not implemented");
/// `500 5.5.2 Error: command not recognized`.
pub const UNRECOGNIZED: ErrorReply = r(500, 5, 5, 2, "Error: command not recognized");
/// `500 5.5.2 Error: line too long`.
pub const LINE_TOO_LONG: ErrorReply = r(500, 5, 5, 2, "Error: line too long");
/// `503 5.5.1 Error: send HELO/EHLO first`.
pub const NEED_HELO: ErrorReply = r(503, 5, 5, 1, "Error: send HELO/EHLO first");
/// `503 5.5.1 Error: nested MAIL command`.
pub const NESTED_MAIL: ErrorReply = r(503, 5, 5, 1, "Error: nested MAIL command");
/// `503 5.5.1 Error: need MAIL command`.
pub const NEED_MAIL: ErrorReply = r(503, 5, 5, 1, "Error: need MAIL command");
/// `503 5.5.1 Error: need RCPT command`.
pub const NEED_RCPT: ErrorReply = r(503, 5, 5, 1, "Error: need RCPT command");
/// `554 5.5.1 Error: no valid recipients`.
pub const NO_VALID_RCPT: ErrorReply = r(554, 5, 5, 1, "Error: no valid recipients");
/// `503 5.5.1 Error: MAIL transaction in progress` (AUTH, STARTTLS inside a transaction).
pub const IN_TRANSACTION: ErrorReply = r(503, 5, 5, 1, "Error: MAIL transaction in progress");
/// `503 5.5.1` in a session refused at connect time (RFC 5321 §3.1).
pub const NO_SERVICE: ErrorReply = r(503, 5, 5, 1, "Error: no SMTP service here");
/// `503 5.5.1 Error: authentication not enabled`.
pub const AUTH_DISABLED: ErrorReply = r(503, 5, 5, 1, "Error: authentication not enabled");
/// `452 4.5.3 Error: too many recipients`.
pub const TOO_MANY_RCPTS: ErrorReply = r(452, 4, 5, 3, "Error: too many recipients");
/// `552 5.3.4` (SIZE parameter over the limit).
pub const SIZE_TOO_BIG: ErrorReply = r(
    552,
    5,
    3,
    4,
    "Message size exceeds fixed maximum message size",
);
/// `555 5.5.4 Unsupported parameter`.
pub const UNSUPPORTED_PARAM: ErrorReply = r(555, 5, 5, 4, "Unsupported parameter");
/// `554 5.4.6 Error: too many hops`.
pub const TOO_MANY_HOPS: ErrorReply = r(554, 5, 4, 6, "Error: too many hops");
/// `554 5.5.0 Error: SMTP protocol synchronization`.
pub const SYNC: ErrorReply = r(554, 5, 5, 0, "Error: SMTP protocol synchronization");
/// `454 4.7.0 TLS not available due to local problem`.
pub const TLS_UNAVAILABLE: ErrorReply = r(454, 4, 7, 0, "TLS not available due to local problem");
/// `554 5.5.1 Error: TLS already active`.
pub const TLS_ACTIVE: ErrorReply = r(554, 5, 5, 1, "Error: TLS already active");
/// `530 5.7.0 Must issue a STARTTLS command first`.
pub const TLS_REQUIRED: ErrorReply = r(530, 5, 7, 0, "Must issue a STARTTLS command first");
/// `535 5.7.8` when nobody accepted the credentials (a `Continue` decision fails closed).
pub const AUTH_FAILED: ErrorReply = r(535, 5, 7, 8, "Error: authentication failed");
/// `214 2.0.0` (HELP).
pub const HELP: ErrorReply = r(
    214,
    2,
    0,
    0,
    "Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP; see RFC 5321",
);

/// Appends `reply` in wire form (`code status text CRLF`).
pub(crate) fn write(out: &mut Vec<u8>, reply: &ErrorReply) {
    use std::io::Write;
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{reply}\r\n");
}

/// `451 4.3.0` for a message whose construct was destroyed while its body was read.
pub const ABORTED: ErrorReply = r(451, 4, 3, 0, "Error: message aborted");

/// `452 4.3.1 Insufficient system storage` (MAIL while the spool is short of space).
pub const NO_STORAGE: ErrorReply = r(452, 4, 3, 1, "Insufficient system storage");
/// `451 4.3.0` when the decision on MAIL, RCPT, DATA or a verb did not come in time.
pub const DECISION_TIMEOUT: ErrorReply = r(
    451,
    4,
    3,
    0,
    "Error: timeout waiting for a policy decision, try again later",
);
/// `454 4.7.0` when the decision on AUTH credentials did not come in time (RFC 4954 §6).
pub const AUTH_TIMEOUT: ErrorReply = r(454, 4, 7, 0, "Temporary authentication failure");
