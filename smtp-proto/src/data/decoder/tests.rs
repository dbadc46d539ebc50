//! Tests of the DATA decoder: smuggling variants, first-line handling, policies, limits and a
//! byte-by-byte reference decoder checked against the streaming one under arbitrary splits.

use super::*;
use proptest::prelude::*;

/// The result of decoding a whole input split into chunks.
#[derive(Debug, PartialEq)]
struct Outcome {
    message: Vec<u8>,
    consumed: usize,
    complete: bool,
    stats: DataStats,
}

/// Feeds `input` to `decoder` in chunks cut at `points` (sorted, in range), stopping at
/// completion as a server would.
fn feed(mut decoder: DataDecoder, input: &[u8], points: &[usize]) -> Outcome {
    let mut message = Vec::new();
    let mut consumed = 0;
    let mut start = 0;
    for &end in points.iter().chain(std::iter::once(&input.len())) {
        let chunk = &input[start..end];
        start = end;
        let progress = decoder.decode(chunk, &mut message);
        assert!(progress.consumed <= chunk.len());
        consumed += progress.consumed;
        if progress.complete {
            assert!(decoder.is_complete());
            break;
        }
        assert_eq!(progress.consumed, chunk.len(), "partial means all consumed");
    }
    Outcome {
        message,
        consumed,
        complete: decoder.is_complete(),
        stats: *decoder.stats(),
    }
}

/// Decodes `input` whole, split at every position, split at every pair of positions and
/// one byte at a time; asserts every way agrees and returns the outcome.
fn decode_every_way(decoder: &DataDecoder, input: &[u8]) -> Outcome {
    let whole = feed(decoder.clone(), input, &[]);
    for a in 0..=input.len() {
        assert_eq!(
            feed(decoder.clone(), input, &[a]),
            whole,
            "cut {a}: {input:?}"
        );
        for b in a..=input.len() {
            assert_eq!(feed(decoder.clone(), input, &[a, b]), whole, "cuts {a},{b}");
        }
    }
    let bytewise: Vec<usize> = (1..input.len()).collect();
    assert_eq!(feed(decoder.clone(), input, &bytewise), whole, "bytewise");
    whole
}

/// A smuggling variant: name, wire bytes, decoded bytes, bare CRs, bare LFs.
type Variant = (&'static str, &'static [u8], &'static [u8], u64, u64);

/// Smuggling variants. None of them ends the data. A dot at a CR LF line start is un-stuffed; any other dot is content.
const SMUGGLING: &[Variant] = &[
    ("LF.LF", b"\n.\n", b"\n.\n", 0, 2),
    ("LF.CRLF", b"\n.\r\n", b"\n.\r\n", 0, 1),
    ("CRLF.LF", b"\r\n.\n", b"\r\n\n", 0, 1),
    ("CR.CR", b"\r.\r", b"\r.\r", 2, 0),
    ("CR.LF", b"\r.\n", b"\r.\n", 1, 1),
    ("LF.CR", b"\n.\r", b"\n.\r", 1, 1),
    ("CR.CRLF", b"\r.\r\n", b"\r.\r\n", 1, 0),
    ("CRLF.CR", b"\r\n.\r", b"\r\n\r", 1, 0),
    ("CRLF.CRCRLF", b"\r\n.\r\r\n", b"\r\n\r\r\n", 1, 0),
    ("CRCRLF.CRCRLF", b"\r\r\n.\r\r\n", b"\r\r\n\r\r\n", 2, 0),
    ("CRLF CR.CRLF", b"\r\n\r.\r\n", b"\r\n\r.\r\n", 1, 0),
    ("CRLF LF.CRLF", b"\r\n\n.\r\n", b"\r\n\n.\r\n", 0, 1),
    ("LF LF.LF LF", b"\n\n.\n\n", b"\n\n.\n\n", 0, 4),
    ("CRLF NUL.CRLF", b"\r\n\0.\r\n", b"\r\n\0.\r\n", 0, 0),
    ("CRLF.NUL CRLF", b"\r\n.\0\r\n", b"\r\n\0\r\n", 0, 0),
    ("CRLF SP.CRLF", b"\r\n .\r\n", b"\r\n .\r\n", 0, 0),
    ("CRLF.SP CRLF", b"\r\n. \r\n", b"\r\n \r\n", 0, 0),
    ("CRLF..LF", b"\r\n..\n", b"\r\n.\n", 0, 1),
];

#[test]
fn smuggling_variants_are_content() {
    let contexts: &[(&[u8], &[u8], &[u8])] = &[
        // (before, after incl. the real end, decoded after)
        (
            b"Subject: t\r\n\r\nA",
            b"B\r\ntail\r\n.\r\n",
            b"B\r\ntail\r\n",
        ),
        (b"", b"B\r\ntail\r\n.\r\n", b"B\r\ntail\r\n"),
        (b"A", b"\r\n.\r\n", b"\r\n"),
        (b"", b"\r\n.\r\n", b"\r\n"),
    ];
    for &(name, wire, decoded, bare_cr, bare_lf) in SMUGGLING {
        for &(before, after, decoded_after) in contexts {
            let input = [before, wire, after, b"QUIT\r\n"].concat();
            let expected = [before, decoded, decoded_after].concat();
            let outcome = decode_every_way(&DataDecoder::new(), &input);
            assert!(outcome.complete, "{name}");
            assert_eq!(outcome.consumed, input.len() - 6, "{name}: terminator");
            assert_eq!(outcome.message, expected, "{name}: content");
            assert_eq!(outcome.stats.bare_cr, bare_cr, "{name}");
            assert_eq!(outcome.stats.bare_lf, bare_lf, "{name}");
            assert_eq!(outcome.stats.size, expected.len() as u64, "{name}");
        }
    }
}

#[test]
fn first_line_dot_ends_an_empty_message() {
    let outcome = decode_every_way(&DataDecoder::new(), b".\r\nQUIT\r\n");
    assert!(outcome.complete);
    assert_eq!(outcome.consumed, 3);
    assert_eq!(outcome.message, b"");
    assert_eq!(outcome.stats, DataStats::default());
}

#[test]
fn unstuffs_every_line_including_the_first() {
    let cases: &[(&[u8], &[u8])] = &[
        (b"..x\r\n.\r\n", b".x\r\n"),
        (b"..\r\n.\r\n", b".\r\n"),
        (b"\r\n..\r\n.\r\n", b"\r\n.\r\n"),
        (b"a\r\n...\r\nb\r\n.\r\n", b"a\r\n..\r\nb\r\n"),
        (b"a.b\r\n.\r\n", b"a.b\r\n"),
        (b"\r\r\n.\r\n", b"\r\r\n"),
    ];
    for (input, message) in cases {
        let outcome = decode_every_way(&DataDecoder::new(), input);
        assert!(outcome.complete, "{input:?}");
        assert_eq!(outcome.consumed, input.len(), "{input:?}");
        assert_eq!(outcome.message, *message, "{input:?}");
    }
}

#[test]
fn leaves_pipelined_bytes_unconsumed() {
    let input = b"hi\r\n.\r\nMAIL FROM:<>\r\n";
    let outcome = decode_every_way(&DataDecoder::new(), input);
    assert_eq!(outcome.consumed, 7);
    assert_eq!(outcome.message, b"hi\r\n");

    let mut decoder = DataDecoder::new();
    let mut out = Vec::new();
    let progress = decoder.decode(input, &mut out);
    assert_eq!((progress.consumed, progress.complete), (7, true));
    let again = decoder.decode(b"more", &mut out);
    assert_eq!((again.consumed, again.complete), (0, true));
    assert_eq!(out, b"hi\r\n");
}

#[test]
fn partial_input_is_not_complete() {
    for input in [
        &b""[..],
        b".",
        b".\r",
        b"a\r\n.",
        b"a\r\n.\r",
        b"a\n.\n",
        b"a\r",
    ] {
        let outcome = decode_every_way(&DataDecoder::new(), input);
        assert!(!outcome.complete, "{input:?}");
        assert_eq!(outcome.consumed, input.len());
    }
    // The CR of `.` CR is held back until the next byte decides.
    let mut decoder = DataDecoder::new();
    let mut out = Vec::new();
    let _ = decoder.decode(b"a\r\n.\r", &mut out);
    assert_eq!(out, b"a\r\n");
    let _ = decoder.decode(b"b\r\n.\r\n", &mut out);
    assert_eq!(out, b"a\r\n\rb\r\n");
}

#[test]
fn policies() {
    let input = b"a\n.b\rc\r\n.\r\r\n.\n\r\n.\r\n";
    let keep = decode_every_way(&DataDecoder::new(), input);
    assert_eq!(keep.message, b"a\n.b\rc\r\n\r\r\n\n\r\n");
    assert_eq!((keep.stats.bare_cr, keep.stats.bare_lf), (2, 2));

    let normalize = DataDecoder::new().with_bare_line_endings(BareLineEndings::Normalize);
    let normalized = decode_every_way(&normalize, input);
    assert_eq!(normalized.message, b"a\r\n.b\r\nc\r\n\r\n\r\n\r\n\r\n");
    assert_eq!(normalized.stats.bare_cr, 2);
    assert_eq!(normalize.error_reply(), None);

    let mut reject = DataDecoder::new().with_bare_line_endings(BareLineEndings::Reject);
    let mut out = Vec::new();
    assert!(reject.decode(input, &mut out).complete);
    assert_eq!(out, keep.message);
    assert_eq!(reject.error_reply(), Some(REPLY_BARE_LINE_ENDING));
    assert_eq!(
        REPLY_BARE_LINE_ENDING.to_string(),
        "550 5.5.2 Message contains bare CR or LF"
    );

    let mut keep = DataDecoder::new();
    assert!(keep.decode(input, &mut Vec::new()).complete);
    assert_eq!(keep.error_reply(), None);
}

#[test]
fn size_limit_reads_to_the_end_but_stops_output() {
    let input = b"0123456789\r\n..abc\r\n.\r\nQUIT\r\n";
    let decoded = b"0123456789\r\n.abc\r\n";
    for limit in [0, 1, 5, 12, 13, 17, 18, 19, 100] {
        let decoder = DataDecoder::new().with_max_size(limit);
        let outcome = decode_every_way(&decoder, input);
        assert!(outcome.complete);
        assert_eq!(outcome.consumed, input.len() - 6);
        let kept = decoded.len().min(limit as usize);
        assert_eq!(outcome.message, &decoded[..kept], "limit {limit}");
        assert_eq!(outcome.stats.size, decoded.len() as u64);
        let exceeded = decoded.len() as u64 > limit;
        assert_eq!(outcome.stats.size_exceeded, exceeded, "limit {limit}");

        let mut decoder = decoder;
        let _ = decoder.decode(input, &mut Vec::new());
        let reply = decoder.error_reply();
        assert_eq!(reply, exceeded.then_some(REPLY_SIZE_EXCEEDED));
    }
    assert_eq!(
        REPLY_SIZE_EXCEEDED.to_string(),
        "552 5.3.4 Message size exceeds fixed maximum message size"
    );
}

#[test]
fn line_statistics() {
    let long = vec![b'x'; 999];
    let input = [b"short\r\n", &long[..], b"\r\n.", &long[..], b"\r\n.\r\n"].concat();
    let outcome = feed(DataDecoder::new(), &input, &[]);
    assert_eq!(outcome.stats.lines, 3);
    // 999 + CR LF; the transparency dot does not count.
    assert_eq!(outcome.stats.longest_line, 1001);
    assert_eq!(outcome.stats.long_lines, 2);
    let outcome = feed(DataDecoder::new().with_max_line(1001), &input, &[]);
    assert_eq!(outcome.stats.long_lines, 0);

    // An unfinished line shows in `longest_line` before it ends.
    let mut decoder = DataDecoder::new();
    let _ = decoder.decode(&long, &mut Vec::new());
    assert_eq!(decoder.stats().longest_line, 999);
    assert_eq!(decoder.stats().lines, 0);
}

#[test]
fn sink_gets_runs_not_bytes() {
    let mut calls = 0;
    let mut decoder = DataDecoder::new();
    let body = b"Subject: hi\r\n\r\nline one\r\nline two\r\n.\r\n";
    let progress = decoder.decode_with(body, |_| calls += 1);
    assert!(progress.complete);
    assert_eq!(calls, 1);
}

/// An obviously correct whole-input decoder, byte by byte, to check the streaming one.
/// Returns `None` when `input` has no end of data.
fn reference(input: &[u8], normalize: bool, max_line: u64) -> Option<(Vec<u8>, usize, DataStats)> {
    let mut out = Vec::new();
    let mut stats = DataStats::default();
    let mut line_len = 0u64;
    let mut line_start = true;
    let mut i = 0;
    let end_line = |stats: &mut DataStats, line_len: &mut u64| {
        stats.lines += 1;
        stats.longest_line = stats.longest_line.max(*line_len);
        stats.long_lines += u64::from(*line_len > max_line);
        *line_len = 0;
    };
    while i < input.len() {
        if line_start {
            line_start = false;
            if input[i..].starts_with(b".\r\n") {
                stats.size = out.len() as u64;
                return Some((out, i + 3, stats));
            }
            if input[i] == b'.' {
                i += 1;
                continue;
            }
        }
        match input[i] {
            b'\r' if input.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                line_len += 2;
                end_line(&mut stats, &mut line_len);
                line_start = true;
                i += 2;
                continue;
            }
            b'\r' => {
                stats.bare_cr += 1;
                out.extend_from_slice(if normalize { b"\r\n" } else { b"\r" });
            }
            b'\n' => {
                stats.bare_lf += 1;
                out.extend_from_slice(if normalize { b"\r\n" } else { b"\n" });
            }
            b => out.push(b),
        }
        line_len += 1;
        stats.longest_line = stats.longest_line.max(line_len);
        i += 1;
    }
    None
}

fn cut_points(cuts: &[usize], len: usize) -> Vec<usize> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (len + 1)).collect();
    points.sort_unstable();
    points
}

fn smtp_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            3 => any::<u8>(),
            3 => Just(b'.'),
            3 => Just(b'\r'),
            3 => Just(b'\n'),
            1 => Just(0u8),
        ],
        0..max,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn matches_the_reference_however_split(
        body in smtp_bytes(200),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
        normalize in any::<bool>(),
        max_size in 0u64..300,
    ) {
        let input = [&body[..], b"\r\n.\r\nQUIT\r\n"].concat();
        let (message, consumed, mut stats) =
            reference(&input, normalize, 8).expect("the input has an end of data");
        let policy = if normalize { BareLineEndings::Normalize } else { BareLineEndings::Keep };
        let decoder = DataDecoder::new()
            .with_bare_line_endings(policy)
            .with_max_line(8)
            .with_max_size(max_size);
        let outcome = feed(decoder, &input, &cut_points(&cuts, input.len()));
        prop_assert!(outcome.complete);
        prop_assert_eq!(outcome.consumed, consumed);
        let kept = message.len().min(max_size as usize);
        prop_assert_eq!(&outcome.message[..], &message[..kept]);
        stats.size_exceeded = message.len() as u64 > max_size;
        prop_assert_eq!(outcome.stats, stats);
    }

    #[test]
    fn arbitrary_input_never_panics_and_splits_agree(
        input in smtp_bytes(300),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        let whole = feed(DataDecoder::new(), &input, &[]);
        prop_assert!(whole.consumed <= input.len());
        let split = feed(DataDecoder::new(), &input, &cut_points(&cuts, input.len()));
        prop_assert_eq!(&split, &whole);
        if let Some((message, consumed, _)) = reference(&input, false, MAX_TEXT_LINE as u64) {
            prop_assert!(whole.complete);
            prop_assert_eq!(whole.consumed, consumed);
            prop_assert_eq!(whole.message, message);
        } else {
            prop_assert!(!whole.complete);
            prop_assert_eq!(whole.consumed, input.len());
        }
    }
}
