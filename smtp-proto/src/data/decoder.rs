//! The server side of DATA: end-of-data detection and un-stuffing.

use crate::limits::{MAX_MESSAGE_SIZE, MAX_TEXT_LINE};
use crate::status::{EnhancedStatus, ErrorReply};

/// The reply for a message refused because it contains a bare CR or bare LF (the
/// [`BareLineEndings::Reject`] policy). Send it after the real end of data, never before.
pub const REPLY_BARE_LINE_ENDING: ErrorReply = ErrorReply::new(
    550,
    EnhancedStatus::new(5, 5, 2),
    "Message contains bare CR or LF",
);

/// The reply for a message larger than the decoder's size limit (RFC 1870 §6.3 and RFC 3463
/// `5.3.4`). Send it after the real end of data so the session stays in sync.
pub const REPLY_SIZE_EXCEEDED: ErrorReply = ErrorReply::new(
    552,
    EnhancedStatus::new(5, 3, 4),
    "Message size exceeds fixed maximum message size",
);

/// What the decoder does with a bare CR (not followed by LF) or bare LF (not preceded by CR)
/// in the message. In every policy they are counted in [`DataStats`] and never end the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BareLineEndings {
    /// Keep them byte-exact in the output (the default). The server may still look at
    /// [`DataStats::has_bare_line_endings`] and decide.
    #[default]
    Keep,
    /// Write each bare CR and bare LF as CR LF in the output. Only the output changes: line
    /// starts, un-stuffing and the terminator still follow the wire's CR LF pairs.
    Normalize,
    /// Keep them byte-exact, and have [`DataDecoder::error_reply`] answer
    /// [`REPLY_BARE_LINE_ENDING`] when the message had any.
    Reject,
}

/// What one call to [`DataDecoder::decode`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct DataProgress {
    /// Input bytes used. Less than the input length only when `complete` is true: the bytes
    /// after the end-of-data line belong to the next (pipelined) command.
    pub consumed: usize,
    /// The end-of-data line (`.` CR LF at a line start) has been read, in this call or earlier.
    pub complete: bool,
}

/// What the decoder saw, for the server's policy and its log line. Lines are counted in the
/// wire's sense: only CR LF ends a line, and a line's length includes its CR LF but not a
/// transparency dot. The end-of-data line is not a line of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DataStats {
    /// Message bytes decoded (after un-stuffing and any normalisation), counted on past the
    /// size limit: the real size, for the log.
    pub size: u64,
    /// `size` went over the size limit; output stopped at the limit.
    pub size_exceeded: bool,
    /// Bare CRs seen (CR not followed by LF).
    pub bare_cr: u64,
    /// Bare LFs seen (LF not preceded by CR).
    pub bare_lf: u64,
    /// Complete (CR LF-terminated) lines.
    pub lines: u64,
    /// Length of the longest line, including an unfinished one.
    pub longest_line: u64,
    /// Lines longer than the decoder's line limit (default [`MAX_TEXT_LINE`], RFC 5321
    /// §4.5.3.1.6), which are nevertheless kept byte-exact.
    pub long_lines: u64,
}

impl DataStats {
    /// Whether the message had any bare CR or bare LF.
    pub const fn has_bare_line_endings(&self) -> bool {
        self.bare_cr != 0 || self.bare_lf != 0
    }
}

/// Where the decoder is, relative to the wire's lines. Holds at most one unemitted byte (the CR
/// in `DotCr`), so memory stays constant whatever the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At a line start: the start of the data or right after CR LF.
    LineStart,
    /// Read a `.` at a line start; it has been dropped (stuffing or terminator).
    Dot,
    /// Read `.` CR at a line start; the CR is held back until we know whether LF follows.
    DotCr,
    /// Inside a line.
    Text,
    /// Read a CR inside a line (already passed on); an LF would make it a CR LF.
    Cr,
    /// Read the end-of-data line.
    Done,
}

/// Decodes the bytes a client sends after `354`, streaming: finds the one true end of data
/// (CR LF `.` CR LF, or `.` CR LF as the first line), removes transparency dots on every line
/// including the first, and leaves every smuggling variant in the message as content. See the
/// [module documentation](super) for the exact rules.
///
/// Order of calls: create one at `354` (configured with the `with_*` methods), pass each read
/// to [`decode`](Self::decode) or [`decode_with`](Self::decode_with) until
/// [`DataProgress::complete`], writing the output to the spool as it comes; then answer
/// [`error_reply`](Self::error_reply) if it is `Some` (else commit and answer `250`), and hand
/// the input bytes after [`DataProgress::consumed`] to the command parser.
///
/// ```
/// use smtp_proto::data::DataDecoder;
///
/// let mut decoder = DataDecoder::new();
/// let mut message = Vec::new();
/// let input = b"..hi\r\n.\r\nQUIT\r\n";
/// let progress = decoder.decode(&input[..7], &mut message);
/// assert!(!progress.complete);
/// let progress = decoder.decode(&input[7..], &mut message);
/// assert!(progress.complete);
/// assert_eq!(&input[7 + progress.consumed..], b"QUIT\r\n");
/// assert_eq!(message, b".hi\r\n");
/// assert_eq!(decoder.error_reply(), None);
/// ```
#[derive(Debug, Clone)]
pub struct DataDecoder {
    state: State,
    policy: BareLineEndings,
    max_size: u64,
    max_line: u64,
    /// Length of the current line so far.
    line_len: u64,
    stats: DataStats,
}

impl Default for DataDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl DataDecoder {
    /// Creates a decoder at the start of the data: bare line endings kept, size limit
    /// [`MAX_MESSAGE_SIZE`], line limit [`MAX_TEXT_LINE`].
    pub const fn new() -> Self {
        DataDecoder {
            state: State::LineStart,
            policy: BareLineEndings::Keep,
            max_size: MAX_MESSAGE_SIZE,
            max_line: MAX_TEXT_LINE as u64,
            line_len: 0,
            stats: DataStats {
                size: 0,
                size_exceeded: false,
                bare_cr: 0,
                bare_lf: 0,
                lines: 0,
                longest_line: 0,
                long_lines: 0,
            },
        }
    }

    /// Sets the most message bytes passed to the output (use the value advertised in SIZE;
    /// `u64::MAX` for none). Past it the decoder still reads to the end of data but outputs
    /// nothing more and sets [`DataStats::size_exceeded`].
    pub const fn with_max_size(mut self, max_size: u64) -> Self {
        self.max_size = max_size;
        self
    }

    /// Sets the policy for bare CR and bare LF.
    pub const fn with_bare_line_endings(mut self, policy: BareLineEndings) -> Self {
        self.policy = policy;
        self
    }

    /// Sets the line length, CR LF included, above which a line counts in
    /// [`DataStats::long_lines`].
    pub const fn with_max_line(mut self, max_line: usize) -> Self {
        self.max_line = max_line as u64;
        self
    }

    /// Decodes the next chunk of input, appending message bytes to `out`. `out` grows by at
    /// most twice the chunk's length, so a reused buffer drained to the spool after each call
    /// keeps memory bounded by the read size.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> DataProgress {
        self.decode_with(input, |bytes| out.extend_from_slice(bytes))
    }

    /// Decodes the next chunk of input, passing message bytes to `sink` as slices (mostly
    /// borrowed from `input`: one call per run of ordinary bytes, not per byte). After
    /// completion it consumes nothing.
    pub fn decode_with<F: FnMut(&[u8])>(&mut self, input: &[u8], mut sink: F) -> DataProgress {
        let normalize = self.policy == BareLineEndings::Normalize;
        let mut i = 0;
        // `input[run..i]` is passed on verbatim at the next deletion, insertion or the end.
        let mut run = 0;
        while i < input.len() {
            match self.state {
                State::Done => break,
                State::LineStart => {
                    if input[i] == b'.' {
                        self.emit(&mut sink, &input[run..i]);
                        i += 1;
                        run = i;
                        self.state = State::Dot;
                    } else {
                        self.state = State::Text;
                    }
                }
                State::Dot => {
                    if input[i] == b'\r' {
                        // Nothing was passed since the dot: `run == i`. Hold the CR back.
                        i += 1;
                        run = i;
                        self.state = State::DotCr;
                    } else {
                        // The dot was transparency; this byte is ordinary line content.
                        self.state = State::Text;
                    }
                }
                State::DotCr => {
                    if input[i] == b'\n' {
                        i += 1;
                        run = i;
                        self.state = State::Done;
                        break;
                    }
                    // `.` CR without LF: the held CR is a bare CR of the content (`run == i`).
                    self.stats.bare_cr += 1;
                    self.line_len += 1;
                    self.emit(&mut sink, if normalize { b"\r\n" } else { b"\r" });
                    self.state = State::Text;
                }
                State::Cr => {
                    if input[i] == b'\n' {
                        i += 1;
                        self.line_len += 1;
                        self.end_line();
                        self.state = State::LineStart;
                    } else {
                        self.stats.bare_cr += 1;
                        if normalize {
                            self.emit(&mut sink, &input[run..i]);
                            self.emit(&mut sink, b"\n");
                            run = i;
                        }
                        self.state = State::Text;
                    }
                }
                State::Text => {
                    let rest = &input[i..];
                    // Line text is most of a message: find its end with `memchr2`, which
                    // scans many bytes per step.
                    match memchr::memchr2(b'\r', b'\n', rest) {
                        None => {
                            self.line_len += rest.len() as u64;
                            i = input.len();
                        }
                        Some(p) => {
                            self.line_len += p as u64 + 1;
                            let at = i + p;
                            i = at + 1;
                            if input[at] == b'\r' {
                                if input.get(i) == Some(&b'\n') {
                                    // The usual CR LF, both in this chunk: end the line here
                                    // rather than pass through `State::Cr` (what that state
                                    // would do with this LF).
                                    i += 1;
                                    self.line_len += 1;
                                    self.end_line();
                                    self.state = State::LineStart;
                                } else {
                                    self.state = State::Cr;
                                }
                            } else {
                                self.stats.bare_lf += 1;
                                if normalize {
                                    self.emit(&mut sink, &input[run..at]);
                                    self.emit(&mut sink, b"\r");
                                    run = at;
                                }
                            }
                        }
                    }
                }
            }
        }
        self.emit(&mut sink, &input[run..i]);
        self.stats.longest_line = self.stats.longest_line.max(self.line_len);
        DataProgress {
            consumed: i,
            complete: self.state == State::Done,
        }
    }

    /// Whether the end-of-data line has been read.
    pub fn is_complete(&self) -> bool {
        self.state == State::Done
    }

    /// What the decoder has seen so far; final once [`is_complete`](Self::is_complete).
    pub const fn stats(&self) -> &DataStats {
        &self.stats
    }

    /// The error reply the message deserves under this decoder's settings, to send after the
    /// end of data instead of committing it: [`REPLY_SIZE_EXCEEDED`] if it was too large, else
    /// [`REPLY_BARE_LINE_ENDING`] under [`BareLineEndings::Reject`] if it had a bare CR or LF,
    /// else `None`.
    pub const fn error_reply(&self) -> Option<ErrorReply> {
        if self.stats.size_exceeded {
            Some(REPLY_SIZE_EXCEEDED)
        } else if matches!(self.policy, BareLineEndings::Reject)
            && self.stats.has_bare_line_endings()
        {
            Some(REPLY_BARE_LINE_ENDING)
        } else {
            None
        }
    }

    /// Passes `bytes` on, within the size limit, and counts them.
    fn emit<F: FnMut(&[u8])>(&mut self, sink: &mut F, bytes: &[u8]) {
        emit_within(&mut self.stats, self.max_size, sink, bytes);
    }

    /// Records the end of a CR LF-terminated line.
    fn end_line(&mut self) {
        end_line(&mut self.stats, &mut self.line_len, self.max_line);
    }
}

#[cfg(test)]
mod tests;

/// Passes `bytes` to `sink` while `stats.size` stays within `max_size` (cutting the piece that
/// crosses it), and counts them in `stats.size` either way. Shared by the DATA decoder and the
/// BDAT scanner ([`super::RawScanner`]).
pub(super) fn emit_within<F: FnMut(&[u8])>(
    stats: &mut DataStats,
    max_size: u64,
    sink: &mut F,
    bytes: &[u8],
) {
    if bytes.is_empty() {
        return;
    }
    let len = bytes.len() as u64;
    let room = max_size.saturating_sub(stats.size);
    stats.size = stats.size.saturating_add(len);
    if len <= room {
        sink(bytes);
    } else {
        stats.size_exceeded = true;
        if room > 0 {
            // `room < len`, so it fits in usize.
            sink(&bytes[..room as usize]);
        }
    }
}

/// Counts a finished line of `line_len` bytes (its CR LF included) and starts the next.
pub(super) fn end_line(stats: &mut DataStats, line_len: &mut u64, max_line: u64) {
    stats.lines += 1;
    stats.longest_line = stats.longest_line.max(*line_len);
    if *line_len > max_line {
        stats.long_lines += 1;
    }
    *line_len = 0;
}
