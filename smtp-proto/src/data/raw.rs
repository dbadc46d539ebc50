//! The scan of a body received raw (BDAT, RFC 3030): no dot-stuffing to undo, the same
//! bare CR/LF policy and size and line accounting as the DATA decoder
//! ([`DataDecoder`](super::DataDecoder)), so a message that came in by BDAT and leaves by DATA
//! cannot carry a second message.

use crate::limits::MAX_TEXT_LINE;

use super::{BareLineEndings, DataStats};

/// The line-ending scan of a body that arrives raw (BDAT chunks, RFC 3030: no dot-stuffing): counts bare CR and bare LF across chunk boundaries,
/// writes them as CR LF under [`BareLineEndings::Normalize`], and caps the output at the size
/// limit as the DATA decoder does. A few bytes of state whatever the message size.
#[derive(Debug)]
pub struct RawScanner {
    policy: BareLineEndings,
    max_size: u64,
    /// The last byte was a CR (already passed on): an LF next makes it a CR LF.
    after_cr: bool,
    line_len: u64,
    stats: DataStats,
}

impl RawScanner {
    /// A scanner under `policy` that passes on at most `max_size` bytes (counting on past it).
    pub fn new(policy: BareLineEndings, max_size: u64) -> RawScanner {
        RawScanner {
            policy,
            max_size,
            after_cr: false,
            line_len: 0,
            stats: DataStats::default(),
        }
    }

    /// Passes `input` on to `sink`, with bare line endings handled by the policy.
    pub fn feed(&mut self, input: &[u8], sink: &mut impl FnMut(&[u8])) {
        let normalize = self.policy == BareLineEndings::Normalize;
        let (mut i, mut run) = (0, 0);
        while i < input.len() {
            if self.after_cr {
                self.after_cr = false;
                if input[i] == b'\n' {
                    i += 1;
                    self.line_len += 1;
                    self.end_line();
                    continue;
                }
                self.stats.bare_cr += 1;
                if normalize {
                    self.emit(sink, &input[run..i]);
                    self.emit(sink, b"\n");
                    run = i;
                }
                continue;
            }
            match memchr::memchr2(b'\r', b'\n', &input[i..]) {
                None => {
                    self.line_len += (input.len() - i) as u64;
                    i = input.len();
                }
                Some(p) => {
                    let at = i + p;
                    self.line_len += p as u64 + 1;
                    i = at + 1;
                    if input[at] == b'\r' {
                        self.after_cr = true;
                    } else {
                        self.stats.bare_lf += 1;
                        if normalize {
                            self.emit(sink, &input[run..at]);
                            self.emit(sink, b"\r");
                            run = at;
                        }
                    }
                }
            }
        }
        self.emit(sink, &input[run..i]);
        self.stats.longest_line = self.stats.longest_line.max(self.line_len);
    }

    /// The last chunk ended: a CR at its very end is a bare CR.
    pub fn finish(&mut self, sink: &mut impl FnMut(&[u8])) {
        if std::mem::take(&mut self.after_cr) {
            self.stats.bare_cr += 1;
            if self.policy == BareLineEndings::Normalize {
                self.emit(sink, b"\n");
            }
        }
    }

    /// What it has seen so far: size, bare CRs and LFs, lines.
    pub const fn stats(&self) -> &DataStats {
        &self.stats
    }

    fn emit(&mut self, sink: &mut impl FnMut(&[u8]), bytes: &[u8]) {
        super::decoder::emit_within(&mut self.stats, self.max_size, sink, bytes);
    }

    fn end_line(&mut self) {
        super::decoder::end_line(&mut self.stats, &mut self.line_len, MAX_TEXT_LINE as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(policy: BareLineEndings, chunks: &[&[u8]]) -> (Vec<u8>, DataStats) {
        let mut s = RawScanner::new(policy, u64::MAX);
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, &mut |b: &[u8]| out.extend_from_slice(b));
        }
        s.finish(&mut |b: &[u8]| out.extend_from_slice(b));
        (out, *s.stats())
    }

    #[test]
    fn bare_line_endings_are_normalised_across_chunks() {
        let input: &[u8] = b"a\r\nb\nc\rd\r\n.\n.\r";
        let want: &[u8] = b"a\r\nb\r\nc\r\nd\r\n.\r\n.\r\n";
        for cut in 0..=input.len() {
            let (out, stats) = scan(BareLineEndings::Normalize, &[&input[..cut], &input[cut..]]);
            assert_eq!(out, want, "cut at {cut}");
            assert_eq!((stats.bare_cr, stats.bare_lf), (2, 2), "cut at {cut}");
            assert_eq!(stats.size, want.len() as u64);
        }
        let (out, stats) = scan(BareLineEndings::Keep, &[input]);
        assert_eq!(out, input);
        assert!(stats.has_bare_line_endings());
        let (out, stats) = scan(BareLineEndings::Keep, &[b"x\r", b"\ny\r\n"]);
        assert_eq!(out, b"x\r\ny\r\n");
        assert!(!stats.has_bare_line_endings());
        assert_eq!(stats.lines, 2);
    }

    #[test]
    fn output_stops_at_the_size_limit() {
        let mut s = RawScanner::new(BareLineEndings::Keep, 4);
        let mut out = Vec::new();
        s.feed(b"abcdef", &mut |b: &[u8]| out.extend_from_slice(b));
        assert_eq!(out, b"abcd");
        assert!(s.stats().size_exceeded);
        assert_eq!(s.stats().size, 6);
    }
}
