//! Tests for replies: RFC examples, leniency, limits, incremental feeding, round trips.

use super::*;
use crate::limits::Limits;
use proptest::prelude::*;

fn parse_all(buf: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
    ReplyParser::new().parse(buf)
}

fn one(buf: &[u8]) -> Reply {
    let (reply, used) = parse_all(buf).unwrap().expect("complete");
    assert_eq!(used, buf.len());
    reply
}

/// Feeds `buf` as a growing buffer, one more byte per call, draining complete replies.
fn feed_bytewise(buf: &[u8]) -> Result<Vec<Reply>, ReplyError> {
    let mut parser = ReplyParser::new();
    let mut replies = Vec::new();
    let mut start = 0;
    for end in 0..=buf.len() {
        while let Some((reply, used)) = parser.parse(&buf[start..end])? {
            replies.push(reply);
            start += used;
        }
    }
    Ok(replies)
}

#[test]
fn rfc5321_d1_session_replies() {
    let ehlo = b"250-foo.com greets bar.com\r\n250-8BITMIME\r\n250-SIZE\r\n250-DSN\r\n250 HELP\r\n";
    let r = one(ehlo);
    assert_eq!(r.code(), 250);
    assert_eq!(r.status(), None);
    assert_eq!(
        r.lines(),
        ["foo.com greets bar.com", "8BITMIME", "SIZE", "DSN", "HELP"]
    );
    assert_eq!(
        r.text(),
        "foo.com greets bar.com\n8BITMIME\nSIZE\nDSN\nHELP"
    );
    assert!(r.is_positive_completion() && !r.is_intermediate());

    let r = one(b"354 Start mail input; end with <CRLF>.<CRLF>\r\n");
    assert!(r.is_intermediate());
    assert_eq!(r.lines(), ["Start mail input; end with <CRLF>.<CRLF>"]);
    let r = one(b"220 foo.com Simple Mail Transfer Service Ready\r\n");
    assert_eq!((r.code(), r.lines().len()), (220, 1));
}

#[test]
fn bare_code_and_empty_text_lines() {
    let r = one(b"250\r\n");
    assert_eq!((r.code(), r.lines()), (250, &[String::new()][..]));
    let r = one(b"250-\r\n250 last\r\n");
    assert_eq!(r.lines(), ["", "last"]);
    let r = one(b"250-first\r\n250\r\n");
    assert_eq!(r.lines(), ["first", ""]);
    assert_eq!(one(b"250 \r\n").lines(), [""]);
    assert_eq!(one(b"250  two\r\n").lines(), [" two"]);
}

#[test]
fn bare_lf_is_lenient_by_default_and_switchable() {
    let r = one(b"250-a\n250 b\n");
    assert_eq!(r.lines(), ["a", "b"]);
    let mut strict = ReplyParser::new().accept_bare_lf(false);
    assert_eq!(
        strict.parse(b"250-a\n"),
        Err(ReplyError::BareLf { line: 1 })
    );
    let mut strict = ReplyParser::new().accept_bare_lf(false);
    assert!(strict.parse(b"250-a\r\n250 b\r\n").unwrap().is_some());
}

#[test]
fn rejects_garbage() {
    use ReplyError::*;
    let cases: &[(&[u8], ReplyError)] = &[
        (
            b"250-a\r\n251 b\r\n",
            MixedCodes {
                line: 2,
                expected: 250,
                found: 251,
            },
        ),
        (b"2x0 ok\r\n", InvalidCode { line: 1 }),
        (b"abc\r\n", InvalidCode { line: 1 }),
        (b"25\r\n", InvalidCode { line: 1 }),
        (b"\r\n", InvalidCode { line: 1 }),
        (b"600 no\r\n", InvalidCode { line: 1 }),
        (b"199 no\r\n", InvalidCode { line: 1 }),
        (b"260 no\r\n", InvalidCode { line: 1 }),
        (b"250x\r\n", InvalidSeparator { line: 1 }),
        (b"250\tok\r\n", InvalidSeparator { line: 1 }),
        (b"250-a\r\n250+b\r\n", InvalidSeparator { line: 2 }),
        (b"250 a\rb\r\n", BareCr { line: 1 }),
        (b"250\r\r\n", BareCr { line: 1 }),
        (b"250 a\0\r\n", NulByte { line: 1 }),
    ];
    for (input, expected) in cases {
        assert_eq!(
            parse_all(input),
            Err(*expected),
            "{:?}",
            String::from_utf8_lossy(input)
        );
        assert_eq!(feed_bytewise(input), Err(*expected), "bytewise {input:?}");
    }
}

#[test]
fn garbage_is_refused_before_its_line_ends() {
    use ReplyError::*;
    assert_eq!(parse_all(b"x"), Err(InvalidCode { line: 1 }));
    assert_eq!(parse_all(b"26"), Err(InvalidCode { line: 1 }));
    assert_eq!(parse_all(b"250?"), Err(InvalidSeparator { line: 1 }));
    assert_eq!(parse_all(b"250\rX"), Err(BareCr { line: 1 }));
    assert_eq!(
        parse_all(b"250-a\r\n251"),
        Err(MixedCodes {
            line: 2,
            expected: 250,
            found: 251
        })
    );
    assert_eq!(parse_all(b"250\r"), Ok(None));
    assert_eq!(parse_all(b"250-a\r\n25"), Ok(None));
}

#[test]
fn enhanced_status_codes() {
    let r = one(b"250-2.1.0 first\r\n250 2.1.0   last\r\n");
    assert_eq!(r.status(), Some(EnhancedStatus::new(2, 1, 0)));
    assert_eq!(r.lines(), ["first", "last"]);
    // A line with another status keeps it as text.
    let r = one(b"550-5.1.1 no such user\r\n550 5.7.1 also denied\r\n");
    assert_eq!(r.status(), Some(EnhancedStatus::new(5, 1, 1)));
    assert_eq!(r.lines(), ["no such user", "5.7.1 also denied"]);
    // The class must agree with the code (RFC 2034 §4); never on 3xx.
    let r = one(b"250 5.0.0 odd\r\n");
    assert_eq!(
        (r.status(), r.lines()),
        (None, &["5.0.0 odd".to_owned()][..])
    );
    assert_eq!(one(b"354 2.0.0 go ahead\r\n").status(), None);
    // Status only on later lines is text.
    let r = one(b"250-mx.example\r\n250 2.0.0 x\r\n");
    assert_eq!((r.status(), r.lines()[1].as_str()), (None, "2.0.0 x"));
    assert_eq!(one(b"250 2.0.0\r\n").lines(), [""]);
}

#[test]
fn serializes() {
    assert_eq!(Reply::new(250, None, "OK").to_bytes(), b"250 OK\r\n");
    assert_eq!(Reply::new(250, None, "").to_bytes(), b"250\r\n");
    assert_eq!(
        Reply::new(250, None, "first\nlast").to_bytes(),
        b"250-first\r\n250 last\r\n"
    );
    assert_eq!(
        Reply::new(250, None, "\nlast").to_bytes(),
        b"250-\r\n250 last\r\n"
    );
    let r = Reply::new(
        550,
        Some(EnhancedStatus::new(5, 1, 1)),
        "No such user\r\nhere\n",
    );
    assert_eq!(r.lines(), ["No such user", "here", ""]);
    assert_eq!(
        r.to_bytes(),
        b"550-5.1.1 No such user\r\n550-5.1.1 here\r\n550 5.1.1\r\n"
    );
    let mut out = b"prefix".to_vec();
    Reply::new(421, None, "bye").write_to(&mut out);
    assert_eq!(out, b"prefix421 bye\r\n");
}

#[test]
fn constructor_neutralises_and_normalises() {
    let r = Reply::new(250, None, "a\rb\0c\r\n250 injected");
    assert_eq!(r.lines(), ["a b c", "250 injected"]);
    assert_eq!(r.to_bytes(), b"250-a b c\r\n250 250 injected\r\n");
    // The wire form of a status-less text with a status prefix reads as a status.
    let r = Reply::new(250, None, "2.0.0 Ok\n2.0.0 more");
    assert_eq!(
        (r.status(), r.lines()),
        (
            Some(EnhancedStatus::new(2, 0, 0)),
            &["Ok".to_owned(), "more".to_owned()][..]
        )
    );
    let r = Reply::new(250, Some(EnhancedStatus::new(2, 0, 0)), "  Ok");
    assert_eq!(r.lines(), ["Ok"]);
    assert_eq!(
        Reply::new(250, None, &one(b"250-a\r\n250 b\r\n").text()),
        one(b"250-a\r\n250 b\r\n")
    );
}

#[test]
fn constructor_rejects_invalid_codes() {
    for code in [0, 99, 199, 260, 600, 1000, 250 + 1000] {
        assert_eq!(
            Reply::try_new(code, None, "x"),
            Err(ReplyError::InvalidReplyCode { code })
        );
    }
    let status = EnhancedStatus::new(5, 0, 0);
    assert_eq!(
        Reply::try_new(250, Some(status), "x"),
        Err(ReplyError::StatusMismatch { code: 250, status })
    );
    assert!(std::panic::catch_unwind(|| Reply::new(700, None, "x")).is_err());
}

#[test]
fn from_error_reply() {
    let e = ErrorReply::new(552, EnhancedStatus::new(5, 3, 4), "Message too big");
    let r = Reply::from(e);
    assert_eq!(r.to_bytes(), b"552 5.3.4 Message too big\r\n");
    assert!(r.is_permanent());
    let temp = Reply::from(ReplyError::TooLarge { limit: 1 }.reply());
    assert!(temp.is_transient());
    assert_eq!(
        Reply::from(ReplyError::InputShrunk { scanned: 1, len: 0 }.reply()).code(),
        451
    );
    assert!(!ReplyError::InputShrunk { scanned: 1, len: 0 }.is_peer_fault());
    assert!(ReplyError::InvalidCode { line: 1 }.is_peer_fault());
}

#[test]
fn matches_expected_and_extra_codes() {
    let r = Reply::new(251, None, "forwarded");
    assert!(r.matches(251, &[]));
    assert!(r.matches(250, &[251]));
    assert!(!r.matches(250, &[]));
    assert!(!r.matches(250, &[252, 220]));
    assert!(Reply::new(421, None, "x").is_transient());
}

#[test]
fn pipelined_replies_are_consumed_one_by_one() {
    let buf = b"250 2.1.0 Sender ok\r\n250-2.1.5 a\r\n250 2.1.5 b\r\n354 go\r\n";
    let mut parser = ReplyParser::new();
    let (r1, n1) = parser.parse(buf).unwrap().unwrap();
    let (r2, n2) = parser.parse(&buf[n1..]).unwrap().unwrap();
    let (r3, n3) = parser.parse(&buf[n1 + n2..]).unwrap().unwrap();
    assert_eq!(n1 + n2 + n3, buf.len());
    assert_eq!((r1.code(), r2.lines().len(), r3.code()), (250, 2, 354));
    assert!(!parser.is_pending());
    assert_eq!(feed_bytewise(buf).unwrap(), vec![r1, r2, r3]);
}

#[test]
fn every_split_point_gives_the_same_result() {
    let samples: &[&[u8]] = &[
        b"250-foo.com greets bar.com\r\n250-8BITMIME\r\n250-SIZE\r\n250 HELP\r\n",
        b"550-5.1.1 a\r\n550 5.1.1 b\r\n",
        b"250\r\n",
        b"250-a\n250 b\n",
        b"250-a\r\n251 b\r\n",
        b"250 a\rb\r\n",
    ];
    for &buf in samples {
        let whole = parse_all(buf);
        for split in 0..=buf.len() {
            let mut parser = ReplyParser::new();
            let first = parser.parse(&buf[..split]);
            if let Err(e) = first {
                assert_eq!(whole, Err(e), "split {split} of {buf:?}");
                continue;
            }
            if let Ok(Some(done)) = first {
                assert_eq!(whole, Ok(Some(done)), "split {split}");
                continue;
            }
            assert_eq!(parser.parse(buf), whole, "split {split} of {buf:?}");
        }
        assert_eq!(
            feed_bytewise(buf).map(|v| v.into_iter().next()),
            whole.map(|o| o.map(|(r, _)| r))
        );
    }
}

#[test]
fn errors_stick_until_reset() {
    let mut parser = ReplyParser::new();
    assert!(parser.parse(b"xyz").is_err());
    assert_eq!(
        parser.parse(b"250 ok\r\n"),
        Err(ReplyError::InvalidCode { line: 1 })
    );
    parser.reset();
    assert!(parser.parse(b"250 ok\r\n").unwrap().is_some());

    let mut parser = ReplyParser::new();
    assert_eq!(parser.parse(b"250-abc"), Ok(None));
    assert_eq!(
        parser.parse(b"250"),
        Err(ReplyError::InputShrunk { scanned: 7, len: 3 })
    );
}

#[test]
fn hundred_thousand_lines_stop_at_the_line_cap() {
    let line = b"250-xxxxxxxx\r\n";
    let buf: Vec<u8> = line
        .iter()
        .copied()
        .cycle()
        .take(line.len() * 100_000)
        .collect();
    let limit = Limits::default().reply_lines;

    let mut parser = ReplyParser::new();
    assert_eq!(parser.parse(&buf), Err(ReplyError::TooManyLines { limit }));
    assert_eq!(parser.held_lines(), limit);

    // Fed line by line, the error comes with the last allowed line, not later.
    let mut parser = ReplyParser::new();
    let mut fed = 0;
    let err = loop {
        fed += line.len();
        match parser.parse(&buf[..fed]) {
            Ok(None) => assert!(fed < buf.len()),
            other => break other,
        }
    };
    assert_eq!(err, Err(ReplyError::TooManyLines { limit }));
    assert_eq!(fed, limit * line.len());
}

#[test]
fn a_mebibyte_line_without_lf_stops_at_the_line_cap() {
    let limit = Limits::default().reply_line;
    let mut buf = b"250 ".to_vec();
    buf.resize(1 << 20, b'a');
    let mut parser = ReplyParser::new();
    assert_eq!(
        parser.parse(&buf),
        Err(ReplyError::LineTooLong { line: 1, limit })
    );
    assert_eq!(parser.scanned(), limit);

    let mut parser = ReplyParser::new();
    let mut fed = 0;
    let err = loop {
        fed += 1000;
        match parser.parse(&buf[..fed]) {
            Ok(None) => {}
            other => break other,
        }
    };
    assert_eq!(err, Err(ReplyError::LineTooLong { line: 1, limit }));
    assert_eq!(fed, 3000);
    // Byte by byte: exactly when the limit is reached.
    let mut parser = ReplyParser::new();
    assert_eq!(parser.parse(&buf[..limit - 1]), Ok(None));
    assert!(parser.parse(&buf[..limit]).is_err());
}

#[test]
fn line_cap_counts_crlf() {
    let limit = Limits::default().reply_line;
    let mut ok = b"250 ".to_vec();
    ok.resize(limit - 2, b'a');
    ok.extend_from_slice(b"\r\n");
    assert_eq!(one(&ok).lines()[0].len(), limit - 6);
    let mut long = b"250 ".to_vec();
    long.resize(limit - 1, b'a');
    long.extend_from_slice(b"\r\n");
    assert_eq!(
        parse_all(&long),
        Err(ReplyError::LineTooLong { line: 1, limit })
    );
    let mut lf_only = b"250 ".to_vec();
    lf_only.resize(limit - 1, b'a');
    lf_only.push(b'\n');
    assert!(parse_all(&lf_only).unwrap().is_some());
}

#[test]
fn total_bytes_cap() {
    let limits = Limits::default();
    let mut line = b"250-".to_vec();
    line.resize(2000, b'a');
    line.extend_from_slice(b"\r\n");
    let buf: Vec<u8> = line.iter().copied().cycle().take(line.len() * 40).collect();
    let mut parser = ReplyParser::new();
    assert_eq!(
        parser.parse(&buf),
        Err(ReplyError::TooLarge {
            limit: limits.reply_bytes
        })
    );
    assert_eq!(parser.scanned(), limits.reply_bytes);
}

#[test]
fn custom_limits() {
    let limits = Limits {
        reply_lines: 2,
        reply_line: 16,
        reply_bytes: 24,
        ..Limits::default()
    };
    let mut p = ReplyParser::with_limits(limits);
    assert!(p.parse(b"250-a\r\n250 b\r\n").unwrap().is_some());
    let mut p = ReplyParser::with_limits(limits);
    assert_eq!(
        p.parse(b"250-a\r\n250-b\r\n"),
        Err(ReplyError::TooManyLines { limit: 2 })
    );
    let mut p = ReplyParser::with_limits(limits);
    assert_eq!(
        p.parse(b"250-0123456789ab"),
        Err(ReplyError::LineTooLong { line: 1, limit: 16 })
    );
    let mut p = ReplyParser::with_limits(limits);
    assert_eq!(
        p.parse(b"250-0123456789\r\n250 0123"),
        Err(ReplyError::TooLarge { limit: 24 })
    );
}

fn arb_code() -> impl Strategy<Value = u16> {
    (2u16..=5, 0u16..=5, 0u16..=9).prop_map(|(a, b, c)| a * 100 + b * 10 + c)
}

fn arb_reply() -> impl Strategy<Value = Reply> {
    let text = prop::collection::vec(any::<char>(), 0..60).prop_map(String::from_iter);
    let lines = prop::collection::vec(text, 1..6).prop_map(|l| l.join("\n"));
    let status = prop::option::of((0u16..1000, 0u16..1000));
    (arb_code(), status, lines, any::<bool>()).prop_map(|(code, status, text, fake)| {
        let class = (code / 100) as u8;
        let status = status
            .filter(|_| class != 3)
            .map(|(s, d)| EnhancedStatus::new(class, s, d));
        // Sometimes put a status-looking prefix into the text instead.
        let text = match (status, fake) {
            (Some(s), true) => format!("{s} {text}"),
            _ => text,
        };
        Reply::new(code, if fake { None } else { status }, &text)
    })
}

proptest! {
    #[test]
    fn serialize_parse_round_trip(reply in arb_reply(), split in any::<prop::sample::Index>()) {
        let bytes = reply.to_bytes();
        prop_assert_eq!(parse_all(&bytes), Ok(Some((reply.clone(), bytes.len()))));
        let mut parser = ReplyParser::new();
        let at = split.index(bytes.len() + 1);
        let first = parser.parse(&bytes[..at]).unwrap();
        let got = match first {
            Some(done) => done,
            None => parser.parse(&bytes).unwrap().unwrap(),
        };
        prop_assert_eq!(got, (reply.clone(), bytes.len()));
        prop_assert_eq!(Reply::new(reply.code(), reply.status(), &reply.text()), reply);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), chunk in 1usize..64) {
        let _ = parse_all(&bytes);
        let small = Limits { reply_line: 8, reply_lines: 3, reply_bytes: 20, ..Limits::default() };
        let _ = ReplyParser::with_limits(small).parse(&bytes);
        let mut parser = ReplyParser::new();
        let (mut start, mut end) = (0, 0);
        while end < bytes.len() {
            end = (end + chunk).min(bytes.len());
            match parser.parse(&bytes[start..end]) {
                Ok(Some((_, used))) => start += used,
                Ok(None) => {}
                Err(_) => break,
            }
        }
    }

    #[test]
    fn reply_like_bytes_never_panic(lines in prop::collection::vec("[245][0-9]{2}[ -]?[ -~\r\n]{0,12}\r?\n", 1..8)) {
        let bytes = lines.concat().into_bytes();
        if let Ok(Some((reply, used))) = parse_all(&bytes) {
            prop_assert!(used <= bytes.len());
            prop_assert_eq!(parse_all(&reply.to_bytes()).unwrap().unwrap().0, reply);
        }
    }
}
