//! The incremental multi-line reply parser.

use super::{LineNormalizer, Reply, ReplyError};
use crate::limits::Limits;

/// Incremental parser for one SMTP reply at a time (the core of the client's `read_smtp`).
///
/// # How to drive it
///
/// Keep the connection's unconsumed input in one buffer that starts at the first byte of the
/// pending reply. After every read, call [`parse`](ReplyParser::parse) with the whole buffer:
///
/// * `Ok(None)`: the reply is incomplete; read more and call again with the grown buffer.
///   The parser remembers how far it got, so every byte is examined a bounded number of
///   times however the input is split (including between CR and LF).
/// * `Ok(Some((reply, consumed)))`: drain `consumed` bytes from the front of the buffer. The
///   parser is ready for the next reply (pipelined replies may already be in the buffer).
/// * `Err(e)`: the peer sent garbage or too much. The error sticks: every later call returns
///   it until [`reset`](ReplyParser::reset). The connection cannot be resynchronised, so the
///   client should close it and treat the message as deferred ([`ReplyError::reply`]).
///
/// Between calls the caller may append to the buffer but must not change or remove bytes
/// before `consumed` (shrinking is detected and reported as [`ReplyError::InputShrunk`]).
///
/// # Limits
///
/// [`Limits::reply_line`] (CRLF included), [`Limits::reply_lines`] and
/// [`Limits::reply_bytes`] bound the reply. Each is reported as soon as the input proves it
/// crossed, without waiting for an LF: the parser never looks further than `reply_bytes`
/// into the buffer, and holds at most `reply_lines` lines. The caller should stop reading
/// once an error is returned, so its own buffer stays bounded too.
///
/// # Leniency
///
/// A line ending in a bare LF is accepted by default, as most MTAs do; switch it off with
/// [`accept_bare_lf(false)`](ReplyParser::accept_bare_lf). A CR anywhere but before LF, and
/// NUL, are always refused. A final line may be the bare code (`250\r\n`) or end in a space
/// with no text; a continuation line may be `250-\r\n`. Text that is not UTF-8 is kept
/// with U+FFFD replacing invalid sequences (a client acts on the code, not on the text).
#[derive(Debug, Clone)]
pub struct ReplyParser {
    limits: Limits,
    accept_bare_lf: bool,
    /// Offset of the current line within the buffer.
    line_start: usize,
    /// How far the search for LF has got; every byte before it, from `line_start`, is
    /// known not to be LF.
    scan: usize,
    /// The code of the first line, once known.
    code: Option<u16>,
    normalizer: Option<LineNormalizer>,
    lines: Vec<String>,
    error: Option<ReplyError>,
}

impl Default for ReplyParser {
    fn default() -> Self {
        ReplyParser::new()
    }
}

impl ReplyParser {
    /// A parser with the default [`Limits`], accepting bare LF line endings.
    pub fn new() -> Self {
        ReplyParser::with_limits(Limits::default())
    }

    /// A parser with the given limits, accepting bare LF line endings.
    pub fn with_limits(limits: Limits) -> Self {
        ReplyParser {
            limits,
            accept_bare_lf: true,
            line_start: 0,
            scan: 0,
            code: None,
            normalizer: None,
            lines: Vec::new(),
            error: None,
        }
    }

    /// Whether a line may end in LF without CR (default `true`). When `false`, such a line is
    /// [`ReplyError::BareLf`].
    pub fn accept_bare_lf(mut self, accept: bool) -> Self {
        self.accept_bare_lf = accept;
        self
    }

    /// Forgets the pending reply and any sticky error, keeping limits and options.
    pub fn reset(&mut self) {
        self.line_start = 0;
        self.scan = 0;
        self.code = None;
        self.normalizer = None;
        self.lines.clear();
        self.error = None;
    }

    /// `true` while part of a reply has been seen and not yet returned.
    pub fn is_pending(&self) -> bool {
        self.scan > 0
    }

    /// How many bytes of the buffer have been examined (test hook for the memory bound).
    #[cfg(test)]
    pub(super) fn scanned(&self) -> usize {
        self.scan
    }

    /// How many complete lines of the pending reply are held (test hook).
    #[cfg(test)]
    pub(super) fn held_lines(&self) -> usize {
        self.lines.len()
    }

    /// Feeds the buffer holding the pending reply from its first byte; see the type's doc.
    pub fn parse(&mut self, buf: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let result = self.advance(buf);
        if let Err(e) = result {
            self.error = Some(e);
        }
        result
    }

    fn advance(&mut self, buf: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
        if buf.len() < self.scan {
            return Err(ReplyError::InputShrunk {
                scanned: self.scan,
                len: buf.len(),
            });
        }
        loop {
            let line = self.lines.len() + 1;
            // Neither an LF at or past these offsets nor a partial line reaching them can be
            // part of a reply within the limits.
            let line_end = self.line_start.saturating_add(self.limits.reply_line);
            let reply_end = self.limits.reply_bytes;
            let window = buf.len().min(line_end).min(reply_end);
            let found = buf
                .get(self.scan..window)
                .and_then(|rest| memchr::memchr(b'\n', rest));
            let Some(i) = found else {
                self.scan = window.max(self.scan);
                self.check_partial(&buf[self.line_start..self.scan.max(self.line_start)])?;
                if window == line_end {
                    return Err(ReplyError::LineTooLong {
                        line,
                        limit: self.limits.reply_line,
                    });
                }
                if window == reply_end {
                    return Err(ReplyError::TooLarge {
                        limit: self.limits.reply_bytes,
                    });
                }
                return Ok(None);
            };
            let lf = self.scan + i;
            if self.lines.capacity() == 0 {
                // Size the line list once, from the lines already in the buffer.
                let hint = lines_hint(&buf[self.line_start..window], self.limits.reply_lines);
                self.lines.reserve_exact(hint);
            }
            let is_final = self.finish_line(&buf[self.line_start..lf], line)?;
            self.line_start = lf + 1;
            self.scan = lf + 1;
            if self.lines.len() > self.limits.reply_lines
                || (!is_final && self.lines.len() >= self.limits.reply_lines)
            {
                return Err(ReplyError::TooManyLines {
                    limit: self.limits.reply_lines,
                });
            }
            if is_final {
                let status = self.normalizer.as_ref().and_then(LineNormalizer::status);
                let code = self.code.unwrap_or_default();
                let lines = std::mem::take(&mut self.lines);
                self.reset();
                return Ok(Some((
                    Reply {
                        code,
                        status,
                        lines,
                    },
                    lf + 1,
                )));
            }
        }
    }

    /// Checks what has arrived of an unfinished line (no LF yet), so garbage is refused
    /// before its line ends. Looks at no more than five bytes.
    fn check_partial(&self, partial: &[u8]) -> Result<(), ReplyError> {
        let line = self.lines.len() + 1;
        if !code_prefix_ok(partial) {
            return Err(ReplyError::InvalidCode { line });
        }
        if let (Some(expected), Some(found)) = (self.code, partial.get(..3).map(code_value)) {
            if expected != found {
                return Err(ReplyError::MixedCodes {
                    line,
                    expected,
                    found,
                });
            }
        }
        match partial.get(3) {
            None | Some(b' ' | b'-') => Ok(()),
            Some(b'\r') if partial.len() == 4 => Ok(()),
            Some(b'\r') => Err(ReplyError::BareCr { line }),
            Some(_) => Err(ReplyError::InvalidSeparator { line }),
        }
    }

    /// Validates one complete line (without its LF), stores its text and returns whether it
    /// is the reply's last line.
    fn finish_line(&mut self, raw: &[u8], line: usize) -> Result<bool, ReplyError> {
        let content = match raw.strip_suffix(b"\r") {
            Some(content) => content,
            None if self.accept_bare_lf => raw,
            None => return Err(ReplyError::BareLf { line }),
        };
        if content.len() < 3 || !code_prefix_ok(content) {
            return Err(ReplyError::InvalidCode { line });
        }
        let found = code_value(&content[..3]);
        let expected = *self.code.get_or_insert(found);
        if expected != found {
            return Err(ReplyError::MixedCodes {
                line,
                expected,
                found,
            });
        }
        let (is_final, text) = match content.get(3) {
            None => (true, &[][..]),
            Some(b' ') => (true, &content[4..]),
            Some(b'-') => (false, &content[4..]),
            Some(b'\r') => return Err(ReplyError::BareCr { line }),
            Some(_) => return Err(ReplyError::InvalidSeparator { line }),
        };
        if let Some(bad) = memchr::memchr2(b'\r', 0, text) {
            return Err(if text[bad] == 0 {
                ReplyError::NulByte { line }
            } else {
                ReplyError::BareCr { line }
            });
        }
        let normalizer = self
            .normalizer
            .get_or_insert_with(|| LineNormalizer::new((expected / 100) as u8, None));
        let text = normalizer.line(text, true);
        self.lines.push(match std::str::from_utf8(text) {
            Ok(text) => text.to_owned(),
            Err(_) => String::from_utf8_lossy(text).into_owned(),
        });
        Ok(is_final)
    }
}

/// How many lines the reply at the start of `buf` has, as far as `buf` shows it: through its
/// final line (the first without `-` after the code), at most `max`. Only sizes the line
/// list; the lines are validated as they are parsed.
fn lines_hint(buf: &[u8], max: usize) -> usize {
    let mut count = 0;
    let mut line_start = 0;
    for lf in memchr::memchr_iter(b'\n', buf) {
        count += 1;
        if count >= max || buf.get(line_start + 3) != Some(&b'-') {
            break;
        }
        line_start = lf + 1;
    }
    count
}

/// Checks up to the first three bytes against the reply-code digit rules.
fn code_prefix_ok(bytes: &[u8]) -> bool {
    bytes.iter().take(3).enumerate().all(|(i, &b)| match i {
        0 => (b'2'..=b'5').contains(&b),
        1 => (b'0'..=b'5').contains(&b),
        _ => b.is_ascii_digit(),
    })
}

/// The value of three digits already checked by [`code_prefix_ok`].
fn code_value(digits: &[u8]) -> u16 {
    digits
        .iter()
        .fold(0u16, |n, &d| n * 10 + u16::from(d.wrapping_sub(b'0') % 10))
}
