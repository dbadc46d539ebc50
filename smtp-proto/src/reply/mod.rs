//! SMTP replies: the [`Reply`] value, its serializer, and the incremental [`ReplyParser`]
//! (the core of the client's `read_smtp`).
//!
//! # Wire format
//!
//! RFC 5321 §4.2: `*( code "-" [text] CRLF ) code [ SP text ] CRLF`. Every line of one reply
//! carries the same three-digit code; a final line may be the bare code (`250\r\n`).
//!
//! # Enhanced status codes
//!
//! With ENHANCEDSTATUSCODES (RFC 2034, RFC 3463) a server prefixes the text of every line
//! with the same status, followed by one or more spaces. A [`Reply`] keeps **one** status:
//! the one on its first line, recognised only when its class agrees with the reply code's
//! first digit (RFC 2034 §4; so never on 3xx). It is stripped, with the spaces after it,
//! from every line that carries the same status; when a status is present, leading spaces
//! of the other lines are dropped as well, because on the wire they would merge with the
//! separator. [`Reply::write_to`] writes the status on every line. With these rules every
//! [`Reply`] this module produces serializes and parses back to itself.
//!
//! # What this module does not do
//!
//! No I/O and no timeouts: the caller reads bytes, feeds them to [`ReplyParser::parse`] and
//! drains what it consumed. Whether a code is *expected* at a given step is the client
//! state machine's business ([`Reply::matches`] helps).

mod error;
mod parser;
#[cfg(test)]
mod tests;

pub use error::ReplyError;
pub use parser::ReplyParser;

use crate::status::{EnhancedStatus, ErrorReply};

/// One complete SMTP reply: a code, an optional enhanced status and one or more text lines.
///
/// Invariants, upheld by every constructor and by the parser: the code is valid (see
/// [`Reply::try_new`]); the status, if any, has the code's class; there is at least one
/// line; no line contains CR, LF or NUL; with a status, no line starts with a space or tab.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reply {
    code: u16,
    status: Option<EnhancedStatus>,
    lines: Vec<String>,
}

impl Reply {
    /// Builds a reply, splitting `text` into lines on `'\n'` (a `'\r'` before it is dropped;
    /// any other CR or NUL becomes a space, so text can never inject a line).
    ///
    /// When `status` is `None` and the first line starts with an enhanced status of the
    /// reply's class, that status is taken as the reply's, exactly as the wire form would be
    /// read back. With a status, leading spaces and tabs of each line are dropped.
    ///
    /// # Panics
    ///
    /// When the code or the status is invalid; use [`Reply::try_new`] for codes that do not
    /// come from the program itself.
    pub fn new(code: u16, status: Option<EnhancedStatus>, text: &str) -> Reply {
        match Reply::try_new(code, status, text) {
            Ok(reply) => reply,
            Err(e) => panic!("Reply::new: {e}"),
        }
    }

    /// Like [`Reply::new`], but returns [`ReplyError::InvalidReplyCode`] when `code` is not
    /// three digits with the first 2..=5 and the second 0..=5, and
    /// [`ReplyError::StatusMismatch`] when the status class differs from the code's first
    /// digit.
    pub fn try_new(
        code: u16,
        status: Option<EnhancedStatus>,
        text: &str,
    ) -> Result<Reply, ReplyError> {
        if !is_valid_code(code) {
            return Err(ReplyError::InvalidReplyCode { code });
        }
        if let Some(status) = status {
            if u16::from(status.class) != code / 100 {
                return Err(ReplyError::StatusMismatch { code, status });
            }
        }
        let class = (code / 100) as u8;
        let mut normalizer = LineNormalizer::new(class, status);
        let lines = text
            .split('\n')
            .map(|raw| {
                let raw = raw.strip_suffix('\r').unwrap_or(raw);
                let clean = raw.replace(['\r', '\0'], " ");
                let text = normalizer.line(clean.as_bytes(), status.is_none());
                String::from_utf8_lossy(text).into_owned()
            })
            .collect::<Vec<_>>();
        Ok(Reply {
            code,
            status: normalizer.status,
            lines,
        })
    }

    /// Builds a reply of a valid `code` from lines, read as the text after the code on the
    /// wire (as [`Reply::try_new`] with no status). CR, LF and NUL become spaces.
    pub(crate) fn from_lines(code: u16, lines: Vec<String>) -> Reply {
        debug_assert!(is_valid_code(code));
        let mut normalizer = LineNormalizer::new((code / 100) as u8, None);
        let mut lines: Vec<String> = lines
            .iter()
            .map(|line| {
                let clean = line.replace(['\r', '\n', '\0'], " ");
                String::from_utf8_lossy(normalizer.line(clean.as_bytes(), true)).into_owned()
            })
            .collect();
        if lines.is_empty() {
            lines.push(String::new());
        }
        Reply {
            code,
            status: normalizer.status,
            lines,
        }
    }

    /// Parses one reply at the start of `buf` with the default [`Limits`](crate::Limits):
    /// `Ok(Some((reply, consumed)))`, `Ok(None)` when more bytes are needed, or an error.
    /// For a connection, keep a [`ReplyParser`] instead so growing buffers are not rescanned.
    pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
        ReplyParser::new().parse(buf)
    }

    /// The three-digit reply code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The enhanced status code of the first line, if it carried one.
    pub fn status(&self) -> Option<EnhancedStatus> {
        self.status
    }

    /// The text lines, without code, separator or the reply's enhanced status.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The text of all lines joined with `'\n'` (so `Reply::new(code, status, &r.text())`
    /// rebuilds the reply).
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// `true` for 2xx: the command succeeded.
    pub fn is_positive_completion(&self) -> bool {
        self.code / 100 == 2
    }

    /// `true` for 3xx: the server waits for more (354 after DATA, 334 during AUTH).
    pub fn is_intermediate(&self) -> bool {
        self.code / 100 == 3
    }

    /// `true` for 4xx: a temporary failure, retry later.
    pub fn is_transient(&self) -> bool {
        self.code / 100 == 4
    }

    /// `true` for 5xx: a permanent failure.
    pub fn is_permanent(&self) -> bool {
        self.code / 100 == 5
    }

    /// Momentum's `read_smtp2` test: `true` when the code is `expected` or one of `extra`.
    ///
    /// Codes are compared exactly; to accept a whole class use
    /// [`is_positive_completion`](Reply::is_positive_completion) and friends. Unlike the C
    /// API, `extra` is a slice, so it needs no terminating value.
    pub fn matches(&self, expected: u16, extra: &[u16]) -> bool {
        self.code == expected || extra.contains(&self.code)
    }

    /// Appends the wire form to `out`: `code "-" [status SP] text CRLF` for every line but
    /// the last, `code SP [status SP] text CRLF` for the last. A line without status and
    /// text is written as the bare code (`250\r\n`, `250-\r\n`).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            push_decimal(out, self.code);
            let has_body = self.status.is_some() || !line.is_empty();
            if i != last {
                out.push(b'-');
            } else if has_body {
                out.push(b' ');
            }
            if let Some(status) = self.status {
                out.push(b'0' + status.class);
                out.push(b'.');
                push_decimal(out, status.subject);
                out.push(b'.');
                push_decimal(out, status.detail);
                if !line.is_empty() {
                    out.push(b' ');
                }
            }
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The wire form as a new buffer (see [`Reply::write_to`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.lines.iter().map(|l| l.len() + 16).sum());
        self.write_to(&mut out);
        out
    }
}

impl From<ErrorReply> for Reply {
    /// The reply a server sends for an error.
    ///
    /// # Panics
    ///
    /// When the `ErrorReply` is inconsistent (invalid code, or status class differing from
    /// the code's first digit); the ones this crate defines never are.
    fn from(e: ErrorReply) -> Reply {
        Reply::new(e.code, Some(e.status), e.text)
    }
}

/// `true` for three digits with the first 2..=5 and the second 0..=5 (RFC 5321 §4.2).
pub(crate) fn is_valid_code(code: u16) -> bool {
    (200..=599).contains(&code) && (code / 10) % 10 <= 5
}

/// Applies the enhanced-status rules of the module doc to successive lines, shared by the
/// parser and [`Reply::try_new`] so both produce the same values.
#[derive(Debug, Clone)]
pub(crate) struct LineNormalizer {
    class: u8,
    status: Option<EnhancedStatus>,
    first: bool,
}

impl LineNormalizer {
    pub(crate) fn new(class: u8, status: Option<EnhancedStatus>) -> Self {
        LineNormalizer {
            class,
            status,
            first: true,
        }
    }

    /// The reply status so far.
    pub(crate) fn status(&self) -> Option<EnhancedStatus> {
        self.status
    }

    /// Returns the text of one line. `wire` says whether a status on the line belongs to
    /// the wire form (parser, or a constructor given no status) rather than to the text.
    pub(crate) fn line<'a>(&mut self, text: &'a [u8], wire: bool) -> &'a [u8] {
        let first = std::mem::replace(&mut self.first, false);
        if wire {
            if let Some((status, used)) = EnhancedStatus::parse_prefix(text) {
                let recognised = match self.status {
                    None => first && status.class == self.class,
                    Some(reply_status) => status == reply_status,
                };
                if recognised {
                    self.status = Some(status);
                    return trim_blanks(&text[used..]);
                }
            }
        }
        if self.status.is_some() {
            trim_blanks(text)
        } else {
            text
        }
    }
}

fn trim_blanks(text: &[u8]) -> &[u8] {
    let skip = text
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    &text[skip..]
}

fn push_decimal(out: &mut Vec<u8>, mut n: u16) {
    let mut digits = [0u8; 5];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}
