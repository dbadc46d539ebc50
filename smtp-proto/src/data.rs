//! DATA transparency (RFC 5321 §4.5.2): a streaming dot-stuffing encoder for the client and a
//! smuggling-safe end-of-data decoder for the server.
//!
//! Both sides are sans-IO and streaming: they take the message in chunks split anywhere, keep a
//! few bytes of state between chunks, copy runs of ordinary bytes in bulk and never buffer the
//! message. This module does not do BDAT (RFC 3030 chunks need no transparency), does not parse
//! headers, and does not decide policy: the decoder reports what it saw in [`DataStats`] and the
//! server decides.
//!
//! # The wire rules, exactly
//!
//! - **Line start** is the first byte after the `354` reply (the start of the data) or the byte
//!   right after a CR LF pair. Nothing else starts a line: a bare CR or a bare LF does not.
//! - **End of data** is `.` CR LF at a line start, and nothing else. The CR LF that ends the last
//!   line belongs to the message, so `"hi\r\n.\r\n"` decodes to `"hi\r\n"`, and `".\r\n"` as the
//!   very first line ends an empty message. `LF.LF`, `LF.CRLF`, `CRLF.LF`, `CR.CR`, `CR.LF`,
//!   `LF.CR`, `CR.CRLF`, `CRLF.CR`, `CR CR LF` folding, a NUL before the dot and every other
//!   variant are message content, however the bytes are split across reads (CVE-2023-51764,
//!   CVE-2023-51765, CVE-2023-51766).
//! - **Un-stuffing**: a `.` at a line start that is not the terminator is deleted (RFC 5321
//!   §4.5.2: "if the first character is a period and there are other characters on the line, the
//!   first character is deleted") — on every line, the first one included. So `"..x"` becomes
//!   `".x"`, and a line `.` followed by a bare CR or bare LF loses its dot like any other. A dot
//!   anywhere else (after a bare CR, a bare LF, a NUL, ...) is content and is kept.
//! - **Bare CR** is a CR not followed by LF; **bare LF** is an LF not preceded by CR. The decoder
//!   keeps them byte-exact by default and counts them; the encoder never lets one reach the wire
//!   (each becomes CR LF).
//!
//! # Round trip
//!
//! `decode(encode(body))` is `body` with every bare CR and bare LF replaced by CR LF, followed by
//! CR LF when the body is not empty and does not already end with CR LF. A body that uses only
//! CR LF line endings and ends with one comes back byte for byte.

mod decoder;
mod encoder;
mod raw;

pub use decoder::{
    BareLineEndings, DataDecoder, DataProgress, DataStats, REPLY_BARE_LINE_ENDING,
    REPLY_SIZE_EXCEEDED,
};
pub use encoder::{dot_stuff, DotStuffer};
pub use raw::RawScanner;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The encoder's line-ending normalisation, byte by byte: bare CR and bare LF become CR LF.
    fn normalize(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len() * 2);
        let mut i = 0;
        while i < body.len() {
            match body[i] {
                b'\r' if body.get(i + 1) == Some(&b'\n') => {
                    out.extend_from_slice(b"\r\n");
                    i += 2;
                    continue;
                }
                b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
                b => out.push(b),
            }
            i += 1;
        }
        out
    }

    /// What the receiver stores for `body`: normalised, with a final CR LF added when missing.
    fn expected_message(body: &[u8]) -> Vec<u8> {
        let mut message = normalize(body);
        if !message.is_empty() && !message.ends_with(b"\r\n") {
            message.extend_from_slice(b"\r\n");
        }
        message
    }

    /// Splits `wire` at `cuts` (positions modulo the length), decodes with a fresh decoder and
    /// returns the message, the total bytes consumed and the decoder.
    fn decode_split(wire: &[u8], cuts: &[usize]) -> (Vec<u8>, usize, DataDecoder) {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
        points.push(0);
        points.push(wire.len());
        points.sort_unstable();
        let mut decoder = DataDecoder::new().with_max_size(u64::MAX);
        let mut out = Vec::new();
        let mut consumed = 0;
        for pair in points.windows(2) {
            let chunk = &wire[pair[0]..pair[1]];
            let progress = decoder.decode(chunk, &mut out);
            assert!(progress.consumed <= chunk.len());
            consumed += progress.consumed;
            if progress.complete {
                break;
            }
            assert_eq!(
                progress.consumed,
                chunk.len(),
                "a partial chunk is consumed whole"
            );
        }
        (out, consumed, decoder)
    }

    #[test]
    fn round_trip_examples() {
        let bodies: &[&[u8]] = &[
            b"",
            b".",
            b"..",
            b".\r\n",
            b"\r\n.\r\n",
            b"\n.\n",
            b"\r.\r",
            b"a\r\n.\r\nb",
            b"Subject: x\r\n\r\n.hidden\r\n..\r\n.\r\nend",
            b"\r",
            b"\n",
            b"\r\r\n.\r\r\n",
        ];
        for body in bodies {
            let wire = dot_stuff(body);
            let (message, consumed, decoder) = decode_split(&wire, &[]);
            assert!(decoder.is_complete(), "{body:?}");
            assert_eq!(consumed, wire.len(), "{body:?}");
            assert_eq!(message, expected_message(body), "{body:?}");
            assert!(!decoder.stats().has_bare_line_endings(), "{body:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn round_trip_arbitrary_bytes(
            body in proptest::collection::vec(
                prop_oneof![
                    4 => any::<u8>(),
                    2 => Just(b'.'),
                    2 => Just(b'\r'),
                    2 => Just(b'\n'),
                ],
                0..300,
            ),
            encode_cuts in proptest::collection::vec(any::<usize>(), 0..8),
            decode_cuts in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            // Encode in chunks too: the stuffer's state must carry across chunks.
            let mut points: Vec<usize> =
                encode_cuts.iter().map(|c| c % (body.len() + 1)).collect();
            points.push(0);
            points.push(body.len());
            points.sort_unstable();
            let mut stuffer = DotStuffer::new();
            let mut wire = Vec::new();
            for pair in points.windows(2) {
                stuffer.encode(&body[pair[0]..pair[1]], &mut wire);
            }
            stuffer.finish(&mut wire);
            prop_assert_eq!(&wire, &dot_stuff(&body));

            let mut piped = wire.clone();
            piped.extend_from_slice(b"QUIT\r\n");
            let (message, consumed, decoder) = decode_split(&piped, &decode_cuts);
            prop_assert!(decoder.is_complete());
            prop_assert_eq!(consumed, wire.len());
            prop_assert_eq!(&message, &expected_message(&body));
            prop_assert!(!decoder.stats().has_bare_line_endings());
            prop_assert_eq!(decoder.stats().size, message.len() as u64);
        }

        #[test]
        fn round_trip_crlf_bodies_exactly(
            lines in proptest::collection::vec(
                proptest::collection::vec(
                    prop_oneof![4 => any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'), 1 => Just(b'.')],
                    0..40,
                ),
                0..20,
            ),
            decode_cuts in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let mut body = Vec::new();
            for line in &lines {
                body.extend_from_slice(line);
                body.extend_from_slice(b"\r\n");
            }
            let wire = dot_stuff(&body);
            let (message, consumed, _) = decode_split(&wire, &decode_cuts);
            prop_assert_eq!(consumed, wire.len());
            prop_assert_eq!(message, body);
        }
    }
}
