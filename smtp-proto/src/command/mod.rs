//! SMTP commands: framing, parsing and serialization (RFC 5321 §4.1 and ESMTP extensions).
//!
//! A server reads bytes into a buffer and calls, in this order:
//!
//! 1. [`frame_line`] to find the end of the next command line. [`Frame::Incomplete`] means
//!    "read more", not an error. On [`Frame::TooLong`] it calls [`discard_line`] on this and
//!    later input until it returns [`Discard::Through`], then answers
//!    [`CommandError::LineTooLong`]'s reply (`500 5.5.2`) so replies stay in order with
//!    pipelined commands (Postfix does the same: it reads on to the LF).
//! 2. [`Command::parse`] on the complete line, CRLF included. The result borrows from the
//!    buffer; [`Command::into_owned`] detaches it.
//! 3. On error, [`CommandError::reply`] is the reply the RFCs ask for.
//!
//! A client builds a [`Command`] and calls [`Command::write_to`].
//!
//! Parsing is strict by default; every tolerated deviation is a named [`Leniency`] switch.
//! A line is terminated by the first LF: strictly it must be preceded by CR, otherwise the line
//! is [`CommandError::BareLf`] (`550 5.5.2`, what Postfix answers with
//! `smtpd_forbid_bare_newline = reject`, after which it disconnects). Framing on LF in both
//! modes keeps the server in step with the client whatever it sends.
//!
//! What this module does not do: keep session state (which commands are allowed when), apply
//! policy to addresses or parameters, or decode AUTH payloads (see `sasl`).

use std::borrow::Cow;

use crate::address::{AddressError, AddressRole, Domain, ForwardPath, Path};
use crate::limits::Limits;
use crate::params::{ParamError, Params};
use crate::status::{EnhancedStatus, ErrorReply};

mod parse;
mod write;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

/// One SMTP command, borrowing its strings from the input line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Command<'a> {
    /// `HELO domain` (RFC 5321 §4.1.1.1): a domain name, not an address literal.
    Helo {
        /// The client's claimed name.
        domain: Domain<'a>,
    },
    /// `EHLO domain` or `EHLO [address-literal]`.
    Ehlo {
        /// The client's claimed name or address.
        domain: Domain<'a>,
    },
    /// `MAIL FROM:<reverse-path> [params]`.
    Mail {
        /// The reverse-path; UTF-8 only with the `SMTPUTF8` parameter.
        from: Path<'a>,
        /// The ESMTP parameters.
        params: Params<'a>,
    },
    /// `RCPT TO:<forward-path> [params]`.
    Rcpt {
        /// The forward-path; UTF-8 only when [`ParseOptions::smtputf8`] is set.
        to: ForwardPath<'a>,
        /// The ESMTP parameters.
        params: Params<'a>,
    },
    /// `DATA`.
    Data,
    /// `BDAT size [LAST]` (RFC 3030).
    Bdat {
        /// The chunk size in octets.
        size: u64,
        /// Whether this is the last chunk.
        last: bool,
    },
    /// `RSET`.
    Rset,
    /// `VRFY string`.
    Vrfy {
        /// The argument as sent; [`crate::address::Mailbox::parse`] reads a mailbox from it.
        arg: Cow<'a, str>,
    },
    /// `EXPN string`.
    Expn {
        /// The argument as sent.
        arg: Cow<'a, str>,
    },
    /// `HELP [string]`.
    Help {
        /// The topic, if any.
        arg: Option<Cow<'a, str>>,
    },
    /// `NOOP [string]`.
    Noop {
        /// The ignored argument, if any.
        arg: Option<Cow<'a, str>>,
    },
    /// `QUIT`.
    Quit,
    /// `STARTTLS` (RFC 3207).
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954).
    Auth {
        /// The SASL mechanism name as sent (compare case-insensitively).
        mechanism: Cow<'a, str>,
        /// The base64 initial response, not decoded; `Some("")` is the empty response `=`.
        initial_response: Option<Cow<'a, str>>,
    },
    /// Any other syntactically valid verb, for extensions (`XCLIENT`, `ETRN`, plugins...).
    Other {
        /// The verb as sent; written upper-cased.
        verb: Cow<'a, str>,
        /// Everything after the space following the verb.
        args: Option<Cow<'a, str>>,
    },
}

/// Deviations from RFC 5321 that a parser may tolerate. [`Default`] is strict: all `false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Leniency {
    /// Accept spaces between `FROM:`/`TO:` and the path: `MAIL FROM: <a@b>`.
    pub space_after_colon: bool,
    /// Accept a path without angle brackets: `MAIL FROM:a@b`, `RCPT TO:postmaster`. Source
    /// routes and the null path still need brackets.
    pub missing_angle_brackets: bool,
    /// Accept a line ending in LF alone (Postfix's `smtpd_forbid_bare_newline = normalize`).
    /// A CR anywhere but before the final LF is still an error.
    pub bare_lf_line_ending: bool,
    /// Ignore spaces and tabs before the line ending.
    pub trailing_whitespace: bool,
}

impl Leniency {
    /// Nothing tolerated: RFC 5321 grammar only.
    pub const STRICT: Leniency = Leniency {
        space_after_colon: false,
        missing_angle_brackets: false,
        bare_lf_line_ending: false,
        trailing_whitespace: false,
    };

    /// Everything tolerated, like many deployed servers.
    pub const PERMISSIVE: Leniency = Leniency {
        space_after_colon: true,
        missing_angle_brackets: true,
        bare_lf_line_ending: true,
        trailing_whitespace: true,
    };
}

/// How to parse a command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParseOptions {
    /// Length limits: `command_line` for the line, the address limits for paths.
    pub limits: Limits,
    /// The current transaction is SMTPUTF8 (its `MAIL` had the `SMTPUTF8` parameter): permits
    /// UTF-8 in `RCPT` addresses and parameter values. `MAIL` itself decides from its own
    /// parameters and ignores this flag.
    pub smtputf8: bool,
    /// The deviations tolerated; strict by default.
    pub leniency: Leniency,
}

/// Why a command line was rejected. Every variant is the peer's fault except
/// [`CommandError::Unterminated`], which is the caller's; [`CommandError::reply`] gives the
/// reply to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    // The line itself.
    /// The line is longer than [`Limits::command_line`].
    #[error("command line too long")]
    LineTooLong,
    /// The line ends in (or contains) LF without CR and [`Leniency::bare_lf_line_ending`] is off.
    #[error("bare LF received")]
    BareLf,
    /// The line contains a CR not followed by LF.
    #[error("bare CR received")]
    BareCr,
    // The verb.
    /// The verb is empty or not made of letters, digits and hyphens.
    #[error("invalid command verb")]
    InvalidVerb,
    // The arguments.
    /// A command that takes no arguments got some (`DATA x`).
    #[error("command takes no arguments")]
    UnexpectedArguments,
    /// A command that needs arguments got none (`MAIL`, `VRFY`).
    #[error("missing arguments")]
    MissingArguments,
    /// Malformed arguments: `MAIL` without `FROM:`, a bad `BDAT` size, control characters,
    /// invalid UTF-8, stray spaces.
    #[error("invalid arguments")]
    InvalidArguments,
    /// The `HELO`/`EHLO` argument is not a domain (or, for `EHLO`, an address literal).
    #[error("invalid HELO/EHLO domain")]
    InvalidDomain,
    /// The `MAIL` reverse-path is invalid.
    #[error("bad sender address: {0}")]
    Sender(AddressError),
    /// The `RCPT` forward-path is invalid.
    #[error("bad recipient address: {0}")]
    Recipient(AddressError),
    /// A `MAIL`/`RCPT` parameter is invalid (or unrecognized, when the server says so).
    #[error("bad parameter: {0}")]
    Parameter(ParamError),
    /// The AUTH mechanism name is not 1 to 20 letters, digits, hyphens or underscores.
    #[error("invalid AUTH mechanism name")]
    AuthMechanism,
    /// The AUTH initial response is neither `=` nor base64.
    #[error("AUTH initial response is not base64")]
    AuthInitialResponse,
    // The caller.
    /// The caller passed a line without its LF: use [`frame_line`] first.
    #[error("line passed without its line ending")]
    Unterminated,
}

impl From<ParamError> for CommandError {
    fn from(e: ParamError) -> Self {
        CommandError::Parameter(e)
    }
}

const fn code(code: u16, class: u8, subject: u16, detail: u16, text: &'static str) -> ErrorReply {
    ErrorReply::new(code, EnhancedStatus::new(class, subject, detail), text)
}

impl CommandError {
    /// The reply a server sends for this error (RFC 5321 §4.2, RFC 3463, RFC 4954, RFC 6531).
    pub fn reply(&self) -> ErrorReply {
        match self {
            CommandError::LineTooLong => code(500, 5, 5, 2, "Line too long"),
            CommandError::BareLf => code(550, 5, 5, 2, "Error: bare <LF> received"),
            CommandError::BareCr => code(550, 5, 5, 2, "Error: bare <CR> received"),
            CommandError::InvalidVerb => code(500, 5, 5, 2, "Syntax error, command unrecognized"),
            CommandError::UnexpectedArguments => {
                code(501, 5, 5, 4, "Syntax error, command takes no arguments")
            }
            CommandError::MissingArguments => code(501, 5, 5, 4, "Syntax error, missing argument"),
            CommandError::InvalidArguments => {
                code(501, 5, 5, 4, "Syntax error in parameters or arguments")
            }
            CommandError::InvalidDomain => code(501, 5, 5, 4, "Invalid domain name"),
            CommandError::Sender(e) => e.reply(AddressRole::Sender),
            CommandError::Recipient(e) => e.reply(AddressRole::Recipient),
            CommandError::Parameter(e) => e.reply(),
            CommandError::AuthMechanism => code(504, 5, 5, 4, "Unrecognized authentication type"),
            CommandError::AuthInitialResponse => code(501, 5, 5, 2, "Invalid base64 data"),
            CommandError::Unterminated => code(500, 5, 5, 2, "Line not terminated"),
        }
    }
}

/// Where the next command line ends, from [`frame_line`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Frame {
    /// The first this many bytes are one line, its LF included: pass them to
    /// [`Command::parse`].
    Complete(usize),
    /// No LF yet, and the line is still within the limit: read more.
    Incomplete,
    /// The line is longer than the limit: discard it with [`discard_line`].
    TooLong,
}

/// Finds the end (the first LF) of the line at the start of `buf`, allowing at most `max_len`
/// bytes with the line ending: [`Limits::command_line`] for commands, [`Limits::auth_line`]
/// for AUTH responses.
pub fn frame_line(buf: &[u8], max_len: usize) -> Frame {
    let window = buf.get(..max_len).unwrap_or(buf);
    match find_lf(window) {
        Some(lf) => Frame::Complete(lf + 1),
        None if buf.len() >= max_len => Frame::TooLong,
        None => Frame::Incomplete,
    }
}

/// The index of the first LF in `buf`. Most command lines are short, and for a few dozen
/// bytes `memchr`'s set-up (runtime CPU dispatch, alignment) costs more than the search: so
/// the first [`SHORT_SCAN`] bytes are searched eight at a time in a plain word, and only the
/// rest, if any, with `memchr`.
#[inline]
fn find_lf(buf: &[u8]) -> Option<usize> {
    const SHORT_SCAN: usize = 64;
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    const LFS: u64 = u64::from_le_bytes([b'\n'; 8]);
    let head = buf.get(..SHORT_SCAN).unwrap_or(buf);
    let mut chunks = head.chunks_exact(8);
    let mut offset = 0;
    for chunk in chunks.by_ref() {
        // `chunks_exact` makes the conversion infallible.
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8])) ^ LFS;
        // The lowest set bit marks the first zero byte (higher bits may be false positives
        // from the borrow, the lowest never is), which is the first LF: the word is read
        // little-endian, so the lowest byte is the first.
        let zeros = w.wrapping_sub(ONES) & !w & HIGHS;
        if zeros != 0 {
            return Some(offset + (zeros.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    if let Some(i) = chunks.remainder().iter().position(|&b| b == b'\n') {
        return Some(offset + i);
    }
    let rest = buf.get(SHORT_SCAN..)?;
    memchr::memchr(b'\n', rest).map(|i| SHORT_SCAN + i)
}

/// How much of a too-long line to drop, from [`discard_line`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Discard {
    /// Drop this many bytes (through the LF): the long line is gone, reply `500 5.5.2` and
    /// resume framing.
    Through(usize),
    /// Drop all these bytes (the whole buffer) and keep discarding the next input.
    All(usize),
}

/// Tells how many bytes of `buf` belong to a line already found [`Frame::TooLong`]: through
/// the next LF, or everything if there is none yet.
pub fn discard_line(buf: &[u8]) -> Discard {
    match memchr::memchr(b'\n', buf) {
        Some(lf) => Discard::Through(lf + 1),
        None => Discard::All(buf.len()),
    }
}

fn owned(c: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(c.into_owned())
}

impl Command<'_> {
    /// The canonical verb, upper-case (for [`Command::Other`], the verb as sent).
    pub fn verb(&self) -> &str {
        match self {
            Command::Helo { .. } => "HELO",
            Command::Ehlo { .. } => "EHLO",
            Command::Mail { .. } => "MAIL",
            Command::Rcpt { .. } => "RCPT",
            Command::Data => "DATA",
            Command::Bdat { .. } => "BDAT",
            Command::Rset => "RSET",
            Command::Vrfy { .. } => "VRFY",
            Command::Expn { .. } => "EXPN",
            Command::Help { .. } => "HELP",
            Command::Noop { .. } => "NOOP",
            Command::Quit => "QUIT",
            Command::StartTls => "STARTTLS",
            Command::Auth { .. } => "AUTH",
            Command::Other { verb, .. } => verb,
        }
    }

    /// Detaches the command from the input buffer.
    pub fn into_owned(self) -> Command<'static> {
        match self {
            Command::Helo { domain } => Command::Helo {
                domain: domain.into_owned(),
            },
            Command::Ehlo { domain } => Command::Ehlo {
                domain: domain.into_owned(),
            },
            Command::Mail { from, params } => Command::Mail {
                from: from.into_owned(),
                params: params.into_owned(),
            },
            Command::Rcpt { to, params } => Command::Rcpt {
                to: to.into_owned(),
                params: params.into_owned(),
            },
            Command::Data => Command::Data,
            Command::Bdat { size, last } => Command::Bdat { size, last },
            Command::Rset => Command::Rset,
            Command::Vrfy { arg } => Command::Vrfy { arg: owned(arg) },
            Command::Expn { arg } => Command::Expn { arg: owned(arg) },
            Command::Help { arg } => Command::Help {
                arg: arg.map(owned),
            },
            Command::Noop { arg } => Command::Noop {
                arg: arg.map(owned),
            },
            Command::Quit => Command::Quit,
            Command::StartTls => Command::StartTls,
            Command::Auth {
                mechanism,
                initial_response,
            } => Command::Auth {
                mechanism: owned(mechanism),
                initial_response: initial_response.map(owned),
            },
            Command::Other { verb, args } => Command::Other {
                verb: owned(verb),
                args: args.map(owned),
            },
        }
    }
}
