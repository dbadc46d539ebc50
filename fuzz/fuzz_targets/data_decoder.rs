//! Fuzzes the streaming end-of-data decoder: arbitrary bytes, split into chunks the fuzzer
//! chooses, must decode exactly as the same bytes fed in one piece, never consume more than was
//! given, and only ever end right after `CRLF.CRLF` (or `.CRLF` at the very start).
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_proto::data::{dot_stuff, BareLineEndings, DataDecoder};

fuzz_target!(|input: &[u8]| {
    // The first two bytes steer the split size and the bare line-ending policy.
    let (steer, body) = match input {
        [a, b, rest @ ..] => ((*a, *b), rest),
        _ => return,
    };
    let policy = match steer.1 % 3 {
        0 => BareLineEndings::Keep,
        1 => BareLineEndings::Normalize,
        _ => BareLineEndings::Reject,
    };
    let chunk = usize::from(steer.0 % 17) + 1;

    let mut whole = DataDecoder::new().with_bare_line_endings(policy);
    let mut whole_out = Vec::new();
    let progress = whole.decode(body, &mut whole_out);
    assert!(progress.consumed <= body.len());
    if progress.complete {
        let end = &body[..progress.consumed];
        assert!(
            end == b".\r\n" || end.ends_with(b"\r\n.\r\n"),
            "ended on {end:?}"
        );
    } else {
        assert_eq!(progress.consumed, body.len());
    }

    let mut split = DataDecoder::new().with_bare_line_endings(policy);
    let mut split_out = Vec::new();
    let mut consumed = 0;
    for piece in body.chunks(chunk) {
        let p = split.decode(piece, &mut split_out);
        consumed += p.consumed;
        if p.complete {
            break;
        }
    }
    assert_eq!(split_out, whole_out);
    assert_eq!(consumed, progress.consumed);
    assert_eq!(split.is_complete(), whole.is_complete());
    assert_eq!(split.stats(), whole.stats());

    // Whatever the body, the encoder's output decodes back to one complete message.
    let wire = dot_stuff(body);
    let mut decoder = DataDecoder::new();
    let mut out = Vec::new();
    let p = decoder.decode(&wire, &mut out);
    assert!(p.complete);
    assert_eq!(p.consumed, wire.len());
});
