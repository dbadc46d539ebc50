//! Fuzzes command framing and parsing, strict and lenient: never panics, framing never reports
//! more than it was given, and every accepted command serializes and parses back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_proto::command::{frame_line, Command, Frame, Leniency, ParseOptions};
use smtp_proto::Limits;

fuzz_target!(|input: &[u8]| {
    let Some((&steer, data)) = input.split_first() else {
        return;
    };
    let options = ParseOptions {
        limits: Limits::default(),
        smtputf8: steer & 1 != 0,
        leniency: if steer & 2 != 0 {
            Leniency::PERMISSIVE
        } else {
            Leniency::STRICT
        },
    };
    let line = match frame_line(data, options.limits.command_line) {
        Frame::Complete(n) => {
            assert!(n <= data.len() && n <= options.limits.command_line);
            assert_eq!(data[n - 1], b'\n');
            &data[..n]
        }
        Frame::Incomplete => {
            assert!(data.len() < options.limits.command_line);
            return;
        }
        Frame::TooLong => return,
    };
    if let Ok(command) = Command::parse(line, &options) {
        // Re-parse strictly, as the peer receiving our serialization would.
        let wire = command.to_bytes();
        let strict = ParseOptions {
            leniency: Leniency::STRICT,
            ..options
        };
        let again = Command::parse(&wire, &strict).expect("a serialized command parses");
        assert_eq!(again.to_bytes(), wire, "serialization is stable");
        match (&again, &command) {
            // Extension verbs are kept as sent and written upper-cased: compare them as the
            // case-insensitive keywords they are.
            (Command::Other { verb: a, args: x }, Command::Other { verb: b, args: y }) => {
                assert!(a.eq_ignore_ascii_case(b) && x == y)
            }
            _ => assert_eq!(again, command),
        }
    }
});
