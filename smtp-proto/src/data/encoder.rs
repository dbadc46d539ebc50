//! The client side of DATA: dot-stuffing and line-ending normalisation.

/// Turns a message body into DATA wire bytes, streaming: dot-stuffs every line, the first one
/// included, and rewrites every bare CR and bare LF as CR LF so that no bare line ending — and so
/// no smuggled end-of-data — ever leaves the client.
///
/// Feed the body with [`encode`](Self::encode) in chunks split anywhere (a CR at the end of one
/// chunk and an LF at the start of the next are one CR LF), then call
/// [`finish`](Self::finish), which ends the last line if needed and appends `.` CR LF.
/// Normalisation is not optional: sending a bare CR or LF is what outbound SMTP smuggling needs.
///
/// ```
/// use smtp_proto::data::DotStuffer;
///
/// let mut stuffer = DotStuffer::new();
/// let mut wire = Vec::new();
/// stuffer.encode(b".first\nsecond\r", &mut wire);
/// stuffer.encode(b"\nthird", &mut wire);
/// stuffer.finish(&mut wire);
/// assert_eq!(wire, b"..first\r\nsecond\r\nthird\r\n.\r\n");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotStuffer {
    /// The next body byte starts a line (start of body, or after a line ending).
    line_start: bool,
    /// The last body byte was a CR, already written; an LF must follow on the wire.
    after_cr: bool,
    /// How many bare CRs and bare LFs were rewritten as CR LF.
    normalized: u64,
}

impl Default for DotStuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl DotStuffer {
    /// Creates an encoder positioned at the start of a message body.
    pub const fn new() -> Self {
        DotStuffer {
            line_start: true,
            after_cr: false,
            normalized: 0,
        }
    }

    /// Appends the wire form of the next `chunk` of the body to `out`.
    ///
    /// Runs of ordinary bytes are copied with one `extend_from_slice`; only a stuffed dot or a
    /// repaired line ending interrupts a run.
    pub fn encode(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        out.reserve(chunk.len());
        let mut i = 0;
        // `chunk[run..i]` is copied verbatim when the next insertion (or the end) comes.
        let mut run = 0;
        while i < chunk.len() {
            if self.after_cr {
                self.after_cr = false;
                self.line_start = true;
                if chunk[i] == b'\n' {
                    i += 1;
                } else {
                    // A bare CR: complete it to CR LF.
                    out.extend_from_slice(&chunk[run..i]);
                    out.push(b'\n');
                    run = i;
                    self.normalized += 1;
                }
                continue;
            }
            if self.line_start {
                self.line_start = false;
                if chunk[i] == b'.' {
                    out.extend_from_slice(&chunk[run..i]);
                    out.push(b'.');
                    run = i;
                }
            }
            // Line text is most of a body: `memchr2` finds its end many bytes at a time.
            match memchr::memchr2(b'\r', b'\n', &chunk[i..]) {
                None => i = chunk.len(),
                Some(p) if chunk[i + p] == b'\r' => {
                    i += p + 1;
                    self.after_cr = true;
                }
                Some(p) => {
                    // A bare LF: put a CR before it.
                    let lf = i + p;
                    out.extend_from_slice(&chunk[run..lf]);
                    out.push(b'\r');
                    run = lf;
                    i = lf + 1;
                    self.line_start = true;
                    self.normalized += 1;
                }
            }
        }
        out.extend_from_slice(&chunk[run..]);
    }

    /// Ends the body: completes a pending CR, adds CR LF if the body did not end with a line
    /// ending, then appends the end-of-data line `.` CR LF. An empty body gives just `.` CR LF.
    pub fn finish(mut self, out: &mut Vec<u8>) {
        if self.after_cr {
            out.push(b'\n');
            self.normalized += 1;
        } else if !self.line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }

    /// How many bare CRs and bare LFs have been rewritten as CR LF so far (a CR still waiting
    /// for the next chunk is not counted yet). Useful for a log line.
    pub const fn normalized(&self) -> u64 {
        self.normalized
    }
}

/// Encodes a whole body at once: the dot-stuffed, CR LF-normalised wire form followed by the
/// end-of-data line, ready to send after the `354` reply. See [`DotStuffer`].
pub fn dot_stuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 32 + 5);
    let mut stuffer = DotStuffer::new();
    stuffer.encode(body, &mut out);
    stuffer.finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes `body` split at every position and one byte at a time; all must agree.
    fn encode_all_ways(body: &[u8]) -> Vec<u8> {
        let whole = dot_stuff(body);
        for cut in 0..=body.len() {
            let mut stuffer = DotStuffer::new();
            let mut out = Vec::new();
            stuffer.encode(&body[..cut], &mut out);
            stuffer.encode(&body[cut..], &mut out);
            stuffer.finish(&mut out);
            assert_eq!(out, whole, "cut at {cut} of {body:?}");
        }
        let mut stuffer = DotStuffer::new();
        let mut out = Vec::new();
        for byte in body {
            stuffer.encode(std::slice::from_ref(byte), &mut out);
            stuffer.encode(b"", &mut out);
        }
        stuffer.finish(&mut out);
        assert_eq!(out, whole, "byte by byte: {body:?}");
        whole
    }

    #[test]
    fn stuffs_every_line_including_the_first() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b".\r\n"),
            (b".", b"..\r\n.\r\n"),
            (b".\r\n", b"..\r\n.\r\n"),
            (b"..x\r\n", b"...x\r\n.\r\n"),
            (b"a\r\n.\r\nb", b"a\r\n..\r\nb\r\n.\r\n"),
            (b"a.b\r\n", b"a.b\r\n.\r\n"),
            (b"\r\n", b"\r\n.\r\n"),
            (b"\r\n.", b"\r\n..\r\n.\r\n"),
            (b"end\r\n", b"end\r\n.\r\n"),
        ];
        for (body, wire) in cases {
            assert_eq!(encode_all_ways(body), *wire, "{body:?}");
        }
    }

    #[test]
    fn neutralises_bare_line_endings() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"\n", b"\r\n.\r\n"),
            (b"\r", b"\r\n.\r\n"),
            (b"a\n.\nb", b"a\r\n..\r\nb\r\n.\r\n"),
            (b"a\r.\rb", b"a\r\n..\r\nb\r\n.\r\n"),
            (b"a\r\r\n.\r\r\n", b"a\r\n\r\n..\r\n\r\n.\r\n"),
            (b"a\n\r", b"a\r\n\r\n.\r\n"),
            (b"a\r\n.\n", b"a\r\n..\r\n.\r\n"),
            (b"\0.\r\n", b"\0.\r\n.\r\n"),
        ];
        for (body, wire) in cases {
            assert_eq!(encode_all_ways(body), *wire, "{body:?}");
        }
    }

    #[test]
    fn counts_repairs() {
        let mut stuffer = DotStuffer::new();
        let mut out = Vec::new();
        stuffer.encode(b"a\nb\r\nc\r", &mut out);
        assert_eq!(stuffer.normalized(), 1);
        stuffer.encode(b"d", &mut out);
        assert_eq!(stuffer.normalized(), 2);
        stuffer.finish(&mut out);
        assert_eq!(out, b"a\r\nb\r\nc\r\nd\r\n.\r\n");
    }

    #[test]
    fn never_emits_a_bare_line_ending_or_an_early_terminator() {
        // Every 4-byte body over a small alphabet.
        let alphabet = [b'.', b'\r', b'\n', b'x', 0];
        let mut body = [0u8; 4];
        for n in 0..alphabet.len().pow(4) {
            let mut m = n;
            for slot in &mut body {
                *slot = alphabet[m % alphabet.len()];
                m /= alphabet.len();
            }
            let wire = dot_stuff(&body);
            for (k, &b) in wire.iter().enumerate() {
                if b == b'\r' {
                    assert_eq!(wire.get(k + 1), Some(&b'\n'), "bare CR in {wire:?}");
                }
                if b == b'\n' {
                    assert_eq!(wire[k - 1], b'\r', "bare LF in {wire:?}");
                }
            }
            assert!(!wire.starts_with(b".\r\n"), "early terminator in {wire:?}");
            assert!(wire.ends_with(b"\r\n.\r\n"), "{wire:?}");
            assert!(
                !wire[..wire.len() - 1].windows(5).any(|w| w == b"\r\n.\r\n"),
                "early terminator in {wire:?}"
            );
        }
    }
}
