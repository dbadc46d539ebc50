//! Fuzzes the incremental reply parser: the input fed whole and fed in two pieces split at a
//! fuzzer-chosen point must give the same reply and the same consumed count; whatever parses
//! must serialize and parse back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_proto::reply::ReplyParser;
use smtp_proto::Limits;

fuzz_target!(|input: &[u8]| {
    let Some((&steer, data)) = input.split_first() else {
        return;
    };
    let whole = ReplyParser::new().parse(data);
    if let Ok(Some((_, used))) = &whole {
        assert!(*used <= data.len());
    }

    // Feed a prefix first, then the whole buffer, as a client does while bytes arrive.
    let cut = usize::from(steer) * data.len() / 256;
    let mut parser = ReplyParser::new();
    let first = parser.parse(&data[..cut]);
    let split = match first {
        Ok(None) => parser.parse(data),
        other => other,
    };
    // A reply that is complete in the whole input is found the same way when fed in pieces.
    if let Ok(Some(found)) = &whole {
        assert_eq!(split.as_ref().ok().and_then(|s| s.as_ref()), Some(found));
    }

    if let Ok(Some((reply, _))) = whole {
        let wire = reply.to_bytes();
        // Invalid UTF-8 is decoded lossily (U+FFFD is three bytes), so a reply that fit the
        // line limit may not once re-serialized: re-parse without the peer-facing caps.
        let roomy = Limits {
            reply_line: usize::MAX,
            reply_lines: usize::MAX,
            reply_bytes: usize::MAX,
            ..Limits::default()
        };
        let (again, used) = ReplyParser::with_limits(roomy)
            .parse(&wire)
            .expect("a serialized reply parses")
            .expect("a serialized reply is complete");
        assert_eq!(used, wire.len());
        assert_eq!(again, reply);
    }
});
