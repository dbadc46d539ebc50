//! Enhanced status codes (RFC 3463) and the reply an error deserves.

use std::fmt;

/// An RFC 3463 enhanced status code `class.subject.detail`, for example `5.1.1`.
///
/// `class` is 2, 4 or 5; `subject` is 0..=999 and `detail` 0..=999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnhancedStatus {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    pub class: u8,
    /// The subject (0 other, 1 addressing, 2 mailbox, 3 mail system, 4 network, 5 protocol,
    /// 6 content, 7 security).
    pub subject: u16,
    /// The detail within the subject.
    pub detail: u16,
}

impl EnhancedStatus {
    /// Builds a code from its three parts. No validation: use [`EnhancedStatus::parse`] for
    /// untrusted input.
    pub const fn new(class: u8, subject: u16, detail: u16) -> Self {
        EnhancedStatus {
            class,
            subject,
            detail,
        }
    }

    /// Parses `class.subject.detail` at the start of `input` and returns the code and the
    /// number of bytes it used. The code must be followed by the end of input or a space.
    /// Returns `None` when `input` does not start with a valid code.
    pub fn parse_prefix(input: &[u8]) -> Option<(EnhancedStatus, usize)> {
        let class = *input.first()?;
        if !matches!(class, b'2' | b'4' | b'5') || input.get(1) != Some(&b'.') {
            return None;
        }
        let mut pos = 2;
        let subject = parse_part(input, &mut pos)?;
        if input.get(pos) != Some(&b'.') {
            return None;
        }
        pos += 1;
        let detail = parse_part(input, &mut pos)?;
        match input.get(pos) {
            None | Some(b' ') | Some(b'\t') => {}
            _ => return None,
        }
        Some((EnhancedStatus::new(class - b'0', subject, detail), pos))
    }

    /// Parses a whole string such as `"5.1.1"`.
    pub fn parse(input: &str) -> Option<EnhancedStatus> {
        match Self::parse_prefix(input.as_bytes()) {
            Some((code, used)) if used == input.len() => Some(code),
            _ => None,
        }
    }
}

/// Parses 1 to 3 digits (RFC 3463: `1*3digit`).
fn parse_part(input: &[u8], pos: &mut usize) -> Option<u16> {
    let start = *pos;
    let mut value: u16 = 0;
    while let Some(&b) = input.get(*pos) {
        if !b.is_ascii_digit() || *pos - start == 3 {
            break;
        }
        value = value * 10 + u16::from(b - b'0');
        *pos += 1;
    }
    if *pos == start || input.get(*pos).is_some_and(u8::is_ascii_digit) {
        None
    } else {
        Some(value)
    }
}

impl fmt::Display for EnhancedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// The reply a server sends for an error: reply code, enhanced status code and text.
///
/// Every parse error in this crate maps to one through its `reply()` method, so the server
/// never has to decide on its own which RFC reply a bad input deserves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorReply {
    /// The three-digit reply code, for example 501.
    pub code: u16,
    /// The enhanced status code, for example 5.5.4.
    pub status: EnhancedStatus,
    /// Human-readable text, without the codes.
    pub text: &'static str,
}

impl ErrorReply {
    /// Builds an error reply.
    pub const fn new(code: u16, status: EnhancedStatus, text: &'static str) -> Self {
        ErrorReply { code, status, text }
    }
}

impl fmt::Display for ErrorReply {
    /// Formats the reply as one line without CRLF: `501 5.5.4 text`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.code, self.status, self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_codes() {
        assert_eq!(
            EnhancedStatus::parse("5.1.1"),
            Some(EnhancedStatus::new(5, 1, 1))
        );
        assert_eq!(
            EnhancedStatus::parse("2.0.0"),
            Some(EnhancedStatus::new(2, 0, 0))
        );
        assert_eq!(
            EnhancedStatus::parse("4.7.999"),
            Some(EnhancedStatus::new(4, 7, 999))
        );
        assert_eq!(
            EnhancedStatus::parse_prefix(b"5.7.1 relaying denied"),
            Some((EnhancedStatus::new(5, 7, 1), 5))
        );
    }

    #[test]
    fn rejects_bad_codes() {
        for bad in [
            "3.1.1", "5.1", "5.1.", "5..1", "5.1.1000", "5.1.1x", "51.1.1", "", "5",
        ] {
            assert_eq!(EnhancedStatus::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn displays() {
        assert_eq!(EnhancedStatus::new(5, 5, 4).to_string(), "5.5.4");
        let r = ErrorReply::new(
            501,
            EnhancedStatus::new(5, 5, 4),
            "Syntax error in parameters",
        );
        assert_eq!(r.to_string(), "501 5.5.4 Syntax error in parameters");
    }
}
