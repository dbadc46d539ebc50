//! Unit tests: RFC 5321 examples, every error and its reply, leniencies, framing.

use std::borrow::Cow;

use super::*;
use crate::address::{AddressLiteral, Mailbox};
use crate::params::{Body, Keyword};

fn strict() -> ParseOptions {
    ParseOptions::default()
}

fn lenient() -> ParseOptions {
    ParseOptions {
        leniency: Leniency::PERMISSIVE,
        ..ParseOptions::default()
    }
}

fn parse(line: &str) -> Result<Command<'_>, CommandError> {
    Command::parse(line.as_bytes(), &strict())
}

fn mailbox(local: &str, domain: &str) -> Mailbox<'static> {
    Mailbox {
        local_part: local.to_owned().into(),
        domain: Domain::Name(domain.to_owned().into()),
    }
}

fn name(d: &str) -> Domain<'static> {
    Domain::Name(d.to_owned().into())
}

fn wire(c: &Command<'_>) -> String {
    String::from_utf8(c.to_bytes()).unwrap()
}

/// RFC 5321 appendix D scenarios, and the canonical form they serialize to.
#[test]
fn rfc5321_scenarios() {
    let cases: Vec<(&str, Command<'static>)> = vec![
        (
            "EHLO bar.com\r\n",
            Command::Ehlo {
                domain: name("bar.com"),
            },
        ),
        (
            "HELO bar.com\r\n",
            Command::Helo {
                domain: name("bar.com"),
            },
        ),
        (
            "MAIL FROM:<Smith@bar.com>\r\n",
            Command::Mail {
                from: Path::Mailbox(mailbox("Smith", "bar.com")),
                params: Params::default(),
            },
        ),
        (
            "RCPT TO:<Jones@foo.com>\r\n",
            Command::Rcpt {
                to: ForwardPath::Mailbox(mailbox("Jones", "foo.com")),
                params: Params::default(),
            },
        ),
        ("DATA\r\n", Command::Data),
        ("QUIT\r\n", Command::Quit),
        ("RSET\r\n", Command::Rset),
        (
            "VRFY Crispin\r\n",
            Command::Vrfy {
                arg: "Crispin".into(),
            },
        ),
        (
            "EXPN Example-People\r\n",
            Command::Expn {
                arg: "Example-People".into(),
            },
        ),
        ("NOOP\r\n", Command::Noop { arg: None }),
        ("HELP\r\n", Command::Help { arg: None }),
        (
            "HELP MAIL\r\n",
            Command::Help {
                arg: Some("MAIL".into()),
            },
        ),
        ("STARTTLS\r\n", Command::StartTls),
        (
            "BDAT 86 LAST\r\n",
            Command::Bdat {
                size: 86,
                last: true,
            },
        ),
        (
            "BDAT 0\r\n",
            Command::Bdat {
                size: 0,
                last: false,
            },
        ),
        (
            "AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=\r\n",
            Command::Auth {
                mechanism: "PLAIN".into(),
                initial_response: Some("dGVzdAB0ZXN0ADEyMzQ=".into()),
            },
        ),
        (
            "AUTH PLAIN =\r\n",
            Command::Auth {
                mechanism: "PLAIN".into(),
                initial_response: Some("".into()),
            },
        ),
        (
            "AUTH LOGIN\r\n",
            Command::Auth {
                mechanism: "LOGIN".into(),
                initial_response: None,
            },
        ),
        (
            "MAIL FROM:<>\r\n",
            Command::Mail {
                from: Path::Null,
                params: Params::default(),
            },
        ),
        (
            "RCPT TO:<Postmaster>\r\n",
            Command::Rcpt {
                to: ForwardPath::Postmaster,
                params: Params::default(),
            },
        ),
        (
            "EHLO [IPv6:2001:db8::1]\r\n",
            Command::Ehlo {
                domain: Domain::Literal(AddressLiteral::Ipv6("2001:db8::1".parse().unwrap())),
            },
        ),
        (
            "ETRN example.com\r\n",
            Command::Other {
                verb: "ETRN".into(),
                args: Some("example.com".into()),
            },
        ),
        (
            "X-PING\r\n",
            Command::Other {
                verb: "X-PING".into(),
                args: None,
            },
        ),
    ];
    for (line, expected) in cases {
        assert_eq!(parse(line), Ok(expected.clone()), "{line:?}");
        assert_eq!(wire(&expected), line, "{line:?}");
    }
}

#[test]
fn known_verbs_are_case_insensitive_and_written_upper_case() {
    let c = parse("mail from:<a@b> size=10\r\n").unwrap();
    assert_eq!(wire(&c), "MAIL FROM:<a@b> SIZE=10\r\n");
    assert_eq!(parse("StartTLS\r\n"), Ok(Command::StartTls));
    assert_eq!(
        wire(&parse("rcpt To:<postmaster>\r\n").unwrap()),
        "RCPT TO:<Postmaster>\r\n"
    );
    // An unknown verb keeps its case both ways, so what parsed writes back the same.
    let other = parse("xclient NAME=x\r\n").unwrap();
    assert_eq!(other.verb(), "xclient");
    assert_eq!(wire(&other), "xclient NAME=x\r\n");
    assert_eq!(wire(&parse("bdat 5 last\r\n").unwrap()), "BDAT 5 LAST\r\n");
}

#[test]
fn mail_and_rcpt_details() {
    // A source route is accepted and dropped (RFC 5321 appendix C).
    let c = parse("RCPT TO:<@hosta.int,@jkl.org:userc@d.bar.org>\r\n").unwrap();
    assert_eq!(wire(&c), "RCPT TO:<userc@d.bar.org>\r\n");
    let c = parse("MAIL FROM:<\"a b\"@x> BODY=8BITMIME SIZE=12\r\n").unwrap();
    let Command::Mail {
        from: Path::Mailbox(m),
        params,
    } = &c
    else {
        panic!("{c:?}")
    };
    assert_eq!(m.local_part, "a b");
    assert_eq!(
        (params.size, params.body),
        (Some(12), Some(Body::EightBitMime))
    );
    assert_eq!(wire(&c), "MAIL FROM:<\"a b\"@x> SIZE=12 BODY=8BITMIME\r\n");
    // Unknown parameters are kept for the server to judge.
    let c = parse("RCPT TO:<a@b> NOTIFY=NEVER X-PRIO=1\r\n").unwrap();
    let Command::Rcpt { params, .. } = &c else {
        panic!()
    };
    assert_eq!(params.unknown.len(), 1);
    assert_eq!(
        CommandError::from(params.reject_unknown().unwrap_err())
            .reply()
            .code,
        555
    );
    // A quoted `>` does not end the path.
    let c = parse("MAIL FROM:<\"a>b\"@x>\r\n").unwrap();
    assert_eq!(wire(&c), "MAIL FROM:<\"a>b\"@x>\r\n");
}

#[test]
fn smtputf8() {
    let utf8 = "MAIL FROM:<j\u{f6}rg@example.com>\r\n";
    assert_eq!(
        parse(utf8),
        Err(CommandError::Sender(AddressError::Utf8NotPermitted))
    );
    assert_eq!(
        parse(utf8).unwrap_err().reply().to_string(),
        "553 5.6.7 Non-ASCII address requires SMTPUTF8"
    );
    let with = "MAIL FROM:<j\u{f6}rg@example.com> SMTPUTF8\r\n";
    let c = parse(with).unwrap();
    assert_eq!(wire(&c), with);
    let rcpt = "RCPT TO:<\u{7528}\u{6237}@\u{4f8b}\u{5b50}.\u{5e7f}\u{544a}>\r\n";
    assert_eq!(
        parse(rcpt),
        Err(CommandError::Recipient(AddressError::Utf8NotPermitted))
    );
    let opts = ParseOptions {
        smtputf8: true,
        ..strict()
    };
    assert!(Command::parse(rcpt.as_bytes(), &opts).is_ok());
    // EHLO takes ASCII (or A-labels) even in an SMTPUTF8 session.
    let ehlo = "EHLO b\u{fc}cher.example\r\n";
    assert_eq!(
        Command::parse(ehlo.as_bytes(), &opts),
        Err(CommandError::InvalidDomain)
    );
}

/// Every error, with an input producing it, and the reply it deserves.
#[test]
fn errors_and_replies() {
    use CommandError as E;
    let cases: &[(&[u8], E, &str)] = &[
        (b"\r\n", E::InvalidVerb, "500 5.5.2"),
        (b" NOOP\r\n", E::InvalidVerb, "500 5.5.2"),
        (b"NO_OP\r\n", E::InvalidVerb, "500 5.5.2"),
        (b"NOOP\tx\r\n", E::InvalidVerb, "500 5.5.2"),
        (b"\xc3\xa9\r\n", E::InvalidVerb, "500 5.5.2"),
        (b"NOOP\n", E::BareLf, "550 5.5.2"),
        (b"NOOP\nQUIT\r\n", E::BareLf, "550 5.5.2"),
        (b"NOOP a\rb\r\n", E::BareCr, "550 5.5.2"),
        (b"NOOP\r\r\n", E::BareCr, "550 5.5.2"),
        (b"NOOP", E::Unterminated, "500 5.5.2"),
        (b"NOOP\r", E::Unterminated, "500 5.5.2"),
        (b"DATA x\r\n", E::UnexpectedArguments, "501 5.5.4"),
        (b"DATA \r\n", E::UnexpectedArguments, "501 5.5.4"),
        (b"QUIT now\r\n", E::UnexpectedArguments, "501 5.5.4"),
        (b"RSET x\r\n", E::UnexpectedArguments, "501 5.5.4"),
        (b"STARTTLS x\r\n", E::UnexpectedArguments, "501 5.5.4"),
        (b"MAIL\r\n", E::MissingArguments, "501 5.5.4"),
        (b"RCPT\r\n", E::MissingArguments, "501 5.5.4"),
        (b"VRFY\r\n", E::MissingArguments, "501 5.5.4"),
        (b"EXPN\r\n", E::MissingArguments, "501 5.5.4"),
        (b"HELO\r\n", E::MissingArguments, "501 5.5.4"),
        (b"AUTH\r\n", E::MissingArguments, "501 5.5.4"),
        (b"BDAT\r\n", E::MissingArguments, "501 5.5.4"),
        (b"MAIL TO:<a@b>\r\n", E::InvalidArguments, "501 5.5.4"),
        (b"MAIL FROM <a@b>\r\n", E::InvalidArguments, "501 5.5.4"),
        (b"MAIL FROM:<a@b> \r\n", E::InvalidArguments, "501 5.5.4"),
        (
            b"MAIL FROM:<a@b>SIZE=1\r\n",
            E::InvalidArguments,
            "501 5.5.4",
        ),
        (b"RCPT FROM:<a@b>\r\n", E::InvalidArguments, "501 5.5.4"),
        (b"BDAT x\r\n", E::InvalidArguments, "501 5.5.4"),
        (b"BDAT -1\r\n", E::InvalidArguments, "501 5.5.4"),
        (b"BDAT 1 FIRST\r\n", E::InvalidArguments, "501 5.5.4"),
        (b"BDAT 1  LAST\r\n", E::InvalidArguments, "501 5.5.4"),
        (
            b"BDAT 99999999999999999999\r\n",
            E::InvalidArguments,
            "501 5.5.4",
        ),
        (b"NOOP \r\n", E::InvalidArguments, "501 5.5.4"),
        (b"NOOP  x\r\n", E::InvalidArguments, "501 5.5.4"),
        (b"VRFY a\x00b\r\n", E::InvalidArguments, "501 5.5.4"),
        (b"VRFY \xff\r\n", E::InvalidArguments, "501 5.5.4"),
        (b"X-FOO \x7f\r\n", E::InvalidArguments, "501 5.5.4"),
        (b"HELO [1.2.3.4]\r\n", E::InvalidDomain, "501 5.5.4"),
        (b"HELO a_b\r\n", E::InvalidDomain, "501 5.5.4"),
        (b"EHLO -a\r\n", E::InvalidDomain, "501 5.5.4"),
        (b"EHLO a b\r\n", E::InvalidDomain, "501 5.5.4"),
        (
            b"MAIL FROM:<a@@b>\r\n",
            E::Sender(AddressError::Syntax),
            "501 5.1.7",
        ),
        (
            b"MAIL FROM:a@b\r\n",
            E::Sender(AddressError::Syntax),
            "501 5.1.7",
        ),
        (
            b"MAIL FROM: <a@b>\r\n",
            E::Sender(AddressError::Syntax),
            "501 5.1.7",
        ),
        (
            b"MAIL FROM:\r\n",
            E::Sender(AddressError::Syntax),
            "501 5.1.7",
        ),
        (
            b"MAIL FROM:<a@b\r\n",
            E::Sender(AddressError::Syntax),
            "501 5.1.7",
        ),
        (
            b"MAIL FROM:<\xc3\xa9@b>\r\n",
            E::Sender(AddressError::Utf8NotPermitted),
            "553 5.6.7",
        ),
        (
            b"RCPT TO:<>\r\n",
            E::Recipient(AddressError::Syntax),
            "501 5.1.3",
        ),
        (
            b"RCPT TO:<a.@b>\r\n",
            E::Recipient(AddressError::Syntax),
            "501 5.1.3",
        ),
        (
            b"RCPT TO:Postmaster\r\n",
            E::Recipient(AddressError::Syntax),
            "501 5.1.3",
        ),
        (
            b"RCPT TO:<\xc3\xa9@b>\r\n",
            E::Recipient(AddressError::Utf8NotPermitted),
            "553 5.6.7",
        ),
        (
            b"MAIL FROM:<a@b> SIZE=x\r\n",
            E::Parameter(ParamError::InvalidValue(Keyword::Size)),
            "501 5.5.4",
        ),
        (
            b"MAIL FROM:<a@b> SIZE=1 SIZE=1\r\n",
            E::Parameter(ParamError::Duplicate),
            "501 5.5.4",
        ),
        (
            b"MAIL FROM:<a@b> SIZE=1  BODY=7BIT\r\n",
            E::Parameter(ParamError::Syntax),
            "501 5.5.4",
        ),
        (
            b"RCPT TO:<a@b> NOTIFY=NEVER,DELAY\r\n",
            E::Parameter(ParamError::InvalidValue(Keyword::Notify)),
            "501 5.5.4",
        ),
        (b"AUTH PL@IN\r\n", E::AuthMechanism, "504 5.5.4"),
        (
            b"AUTH ABCDEFGHIJKLMNOPQRSTU\r\n",
            E::AuthMechanism,
            "504 5.5.4",
        ),
        (b"AUTH PLAIN abc\r\n", E::AuthInitialResponse, "501 5.5.2"),
        (b"AUTH PLAIN ab=c\r\n", E::AuthInitialResponse, "501 5.5.2"),
        (b"AUTH PLAIN a===\r\n", E::AuthInitialResponse, "501 5.5.2"),
        (b"AUTH PLAIN \r\n", E::AuthInitialResponse, "501 5.5.2"),
        (
            b"AUTH PLAIN dGVz dA==\r\n",
            E::AuthInitialResponse,
            "501 5.5.2",
        ),
    ];
    for (line, err, reply) in cases {
        let got = Command::parse(line, &strict());
        assert_eq!(
            got,
            Err(*err),
            "{}",
            String::from_utf8_lossy(line).escape_debug()
        );
        let r = err.reply();
        assert_eq!(format!("{} {}", r.code, r.status), *reply, "{err:?}");
        assert!(!r.text.is_empty());
    }
    let long = format!("NOOP {}\r\n", "a".repeat(2048));
    assert_eq!(parse(&long), Err(E::LineTooLong));
    assert_eq!(
        E::LineTooLong.reply().to_string(),
        "500 5.5.2 Line too long"
    );
    assert_eq!(E::Parameter(ParamError::Unrecognized).reply().code, 555);
    for e in [
        AddressError::LocalPartTooLong,
        AddressError::DomainTooLong,
        AddressError::PathTooLong,
    ] {
        assert_eq!(E::Sender(e).reply().status.to_string(), "5.1.7");
        assert_eq!(E::Recipient(e).reply().status.to_string(), "5.1.3");
    }
}

#[test]
fn leniencies_one_by_one() {
    let with = |f: fn(&mut Leniency)| {
        let mut opts = strict();
        f(&mut opts.leniency);
        opts
    };
    let space = with(|l| l.space_after_colon = true);
    let brackets = with(|l| l.missing_angle_brackets = true);
    let bare_lf = with(|l| l.bare_lf_line_ending = true);
    let trailing = with(|l| l.trailing_whitespace = true);
    let ok =
        |line: &str, opts: &ParseOptions| Command::parse(line.as_bytes(), opts).map(|c| wire(&c));

    assert_eq!(
        ok("MAIL FROM: <a@b>\r\n", &space),
        Ok("MAIL FROM:<a@b>\r\n".into())
    );
    assert_eq!(
        ok("RCPT TO:  <a@b>\r\n", &space),
        Ok("RCPT TO:<a@b>\r\n".into())
    );
    assert!(ok("MAIL FROM:a@b\r\n", &space).is_err());

    assert_eq!(
        ok("MAIL FROM:a@b SIZE=1\r\n", &brackets),
        Ok("MAIL FROM:<a@b> SIZE=1\r\n".into())
    );
    assert_eq!(
        ok("RCPT TO:postmaster\r\n", &brackets),
        Ok("RCPT TO:<Postmaster>\r\n".into())
    );
    assert_eq!(
        ok("RCPT TO:\"a b\"@c\r\n", &brackets),
        Ok("RCPT TO:<\"a b\"@c>\r\n".into())
    );
    assert!(ok("MAIL FROM:\r\n", &brackets).is_err());
    assert!(ok("MAIL FROM: a@b\r\n", &brackets).is_err());

    assert_eq!(ok("QUIT\n", &bare_lf), Ok("QUIT\r\n".into()));
    assert_eq!(ok("QUIT\r\n", &bare_lf), Ok("QUIT\r\n".into()));
    assert_eq!(ok("QUIT\r\r\n", &bare_lf), Err(CommandError::BareCr));
    assert_eq!(ok("NOOP\nQUIT\n", &bare_lf), Err(CommandError::BareLf));

    assert_eq!(ok("DATA \t \r\n", &trailing), Ok("DATA\r\n".into()));
    assert_eq!(
        ok("MAIL FROM:<a@b> \r\n", &trailing),
        Ok("MAIL FROM:<a@b>\r\n".into())
    );
    assert_eq!(ok("NOOP x \r\n", &trailing), Ok("NOOP x\r\n".into()));

    let all = lenient();
    assert_eq!(
        ok("mail from: a@b  \n", &all),
        Ok("MAIL FROM:<a@b>\r\n".into())
    );
}

#[test]
fn framing() {
    assert_eq!(frame_line(b"", 2048), Frame::Incomplete);
    assert_eq!(frame_line(b"NOOP", 2048), Frame::Incomplete);
    assert_eq!(frame_line(b"NOOP\r", 2048), Frame::Incomplete);
    assert_eq!(frame_line(b"NOOP\r\nQUIT\r\n", 2048), Frame::Complete(6));
    assert_eq!(frame_line(b"NOOP\nQUIT\r\n", 2048), Frame::Complete(5));
    // The limit counts the line ending.
    assert_eq!(frame_line(b"NOOP\r\n", 6), Frame::Complete(6));
    assert_eq!(frame_line(b"NOOP\r\n", 5), Frame::TooLong);
    assert_eq!(frame_line(b"NOOP\r", 5), Frame::TooLong);
    assert_eq!(frame_line(b"NOOP", 5), Frame::Incomplete);

    // A too-long line is discarded through its LF, across reads.
    let mut long = vec![b'a'; 3000];
    assert_eq!(frame_line(&long, 2048), Frame::TooLong);
    assert_eq!(discard_line(&long), Discard::All(3000));
    long.truncate(10);
    long.extend_from_slice(b"\r\nQUIT\r\n");
    assert_eq!(discard_line(&long), Discard::Through(12));
    assert_eq!(frame_line(&long[12..], 2048), Frame::Complete(6));
}

#[test]
fn writer_never_injects_lines() {
    let evil = Command::Noop {
        arg: Some("x\r\nRCPT TO:<victim@x>".into()),
    };
    assert_eq!(wire(&evil), "NOOP xRCPT TO:<victim@x>\r\n");
    let evil = Command::Mail {
        from: Path::Mailbox(mailbox("a\r\nDATA", "b")),
        params: Params::default(),
    };
    let out = evil.to_bytes();
    assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
    assert!(out.ends_with(b"\r\n"));
}

#[test]
fn borrows_from_input() {
    let line = b"VRFY Crispin\r\n".to_vec();
    let c = Command::parse(&line, &strict()).unwrap();
    assert!(matches!(
        &c,
        Command::Vrfy {
            arg: Cow::Borrowed(_)
        }
    ));
    let owned: Command<'static> = c.into_owned();
    drop(line);
    assert_eq!(
        owned,
        Command::Vrfy {
            arg: "Crispin".into()
        }
    );
}

/// A CR or LF anywhere inside the line is refused, whatever its position relative to the
/// eight-byte blocks the check reads.
#[test]
fn cr_or_lf_at_every_position() {
    let options = ParseOptions::default();
    for len in 0..40 {
        for at in 0..len {
            for (byte, error) in [(b'\r', CommandError::BareCr), (b'\n', CommandError::BareLf)] {
                let mut line = vec![b'x'; len];
                line[at] = byte;
                let mut line = [b"NOOP ".as_slice(), &line].concat();
                line.extend_from_slice(b"\r\n");
                assert_eq!(Command::parse(&line, &options), Err(error), "{line:?}");
            }
        }
    }
}

#[test]
fn framing_finds_the_first_lf_wherever_it_is() {
    // The search is word-at-a-time over the first bytes, then `memchr`: try every position on
    // both sides of that boundary, with a second LF after the first.
    for lf in 0..200 {
        let mut buf = vec![b'a'; 300];
        buf[lf] = b'\n';
        buf[lf + 50] = b'\n';
        assert_eq!(
            frame_line(&buf, 2048),
            Frame::Complete(lf + 1),
            "LF at {lf}"
        );
        assert_eq!(
            frame_line(&buf[..lf], 2048),
            Frame::Incomplete,
            "LF at {lf}"
        );
        assert_eq!(frame_line(&buf, lf), Frame::TooLong, "LF at {lf}");
    }
}
