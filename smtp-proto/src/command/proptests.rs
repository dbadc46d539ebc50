//! Property tests: every valid command round-trips, and no input makes the parser panic.

use std::borrow::Cow;

use proptest::prelude::*;

use super::*;
use crate::params::ParamKind;

fn strict() -> ParseOptions {
    ParseOptions::default()
}

fn lenient() -> ParseOptions {
    ParseOptions {
        leniency: Leniency::PERMISSIVE,
        ..ParseOptions::default()
    }
}

fn free_text() -> impl Strategy<Value = Cow<'static, str>> {
    "[!-~]([ -~]{0,20}[!-~])?".prop_map(Cow::Owned)
}

fn command() -> impl Strategy<Value = Command<'static>> {
    use crate::address::tests::{domain, domain_name, mailbox};
    use crate::params::tests::params;
    let known = [
        "HELO", "EHLO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "VRFY", "EXPN", "HELP", "NOOP",
        "QUIT", "STARTTLS", "AUTH",
    ];
    prop_oneof![
        domain_name().prop_map(|n| Command::Helo {
            domain: Domain::Name(n.into())
        }),
        domain().prop_map(|domain| Command::Ehlo { domain }),
        (
            any::<bool>(),
            params(ParamKind::Mail),
            prop::option::of(mailbox(true))
        )
            .prop_map(|(utf8, mut params, m)| {
                let from = match m {
                    Some(m) => {
                        params.smtputf8 |= !m.to_string().is_ascii() || utf8;
                        Path::Mailbox(m)
                    }
                    None => Path::Null,
                };
                Command::Mail { from, params }
            }),
        (params(ParamKind::Rcpt), prop::option::of(mailbox(true))).prop_map(|(params, m)| {
            let to = m.map_or(ForwardPath::Postmaster, ForwardPath::Mailbox);
            Command::Rcpt { to, params }
        }),
        Just(Command::Data),
        (any::<u64>(), any::<bool>()).prop_map(|(size, last)| Command::Bdat { size, last }),
        Just(Command::Rset),
        free_text().prop_map(|arg| Command::Vrfy { arg }),
        free_text().prop_map(|arg| Command::Expn { arg }),
        prop::option::of(free_text()).prop_map(|arg| Command::Help { arg }),
        prop::option::of(free_text()).prop_map(|arg| Command::Noop { arg }),
        Just(Command::Quit),
        Just(Command::StartTls),
        (
            "[A-Z0-9_-]{1,20}",
            prop::option::of(prop_oneof![
                Just(String::new()),
                prop::collection::vec(any::<u8>(), 1..40).prop_map(|b| {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD.encode(b)
                })
            ])
        )
            .prop_map(|(m, r)| Command::Auth {
                mechanism: m.into(),
                initial_response: r.map(Into::into)
            }),
        ("[A-Z][A-Z0-9-]{0,11}", prop::option::of(free_text()))
            .prop_filter("known verb", move |(v, _)| !known.contains(&v.as_str()))
            .prop_map(|(verb, args)| Command::Other {
                verb: verb.into(),
                args
            }),
    ]
}

proptest! {
    #[test]
    fn round_trip(c in command()) {
        let bytes = c.to_bytes();
        prop_assert!(bytes.len() <= crate::limits::MAX_COMMAND_LINE);
        prop_assert_eq!(frame_line(&bytes, crate::limits::MAX_COMMAND_LINE), Frame::Complete(bytes.len()));
        let opts = ParseOptions { smtputf8: true, ..strict() };
        let parsed = Command::parse(&bytes, &opts).map(Command::into_owned);
        prop_assert_eq!(parsed, Ok(c.clone()));
        // The lenient parser accepts everything the strict one does, identically.
        let opts = ParseOptions { smtputf8: true, ..lenient() };
        prop_assert_eq!(Command::parse(&bytes, &opts).map(Command::into_owned), Ok(c));
    }

    #[test]
    fn never_panics(input in prop::collection::vec(any::<u8>(), 0..300), utf8: bool) {
        for leniency in [Leniency::STRICT, Leniency::PERMISSIVE] {
            let opts = ParseOptions { smtputf8: utf8, leniency, ..ParseOptions::default() };
            if let Ok(c) = Command::parse(&input, &opts) {
                // Whatever parses serializes to one line that parses back the same.
                let bytes = c.to_bytes();
                let again = Command::parse(&bytes, &ParseOptions { smtputf8: true, ..opts });
                prop_assert_eq!(again, Ok(c));
            }
        }
        match frame_line(&input, 64) {
            Frame::Complete(n) => prop_assert!(n <= 64 && input[n - 1] == b'\n'),
            Frame::TooLong => prop_assert!(input.len() >= 64),
            Frame::Incomplete => prop_assert!(input.len() < 64 && !input.contains(&b'\n')),
        }
        match discard_line(&input) {
            Discard::Through(n) => prop_assert_eq!(input[n - 1], b'\n'),
            Discard::All(n) => prop_assert_eq!(n, input.len()),
        }
    }

    #[test]
    fn never_panics_on_commandlike(
        verb in prop_oneof![Just("MAIL FROM:"), Just("RCPT TO:"), Just("AUTH "), Just("BDAT "),
                            Just("EHLO "), Just("HELO "), Just("VRFY ")],
        rest in "[<>@\\[\\]\"\\\\.:;,=+ a-zA-Z0-9\u{e9}\t\r\n-]{0,60}",
    ) {
        let line = format!("{verb}{rest}\r\n");
        for leniency in [Leniency::STRICT, Leniency::PERMISSIVE] {
            let opts = ParseOptions { leniency, ..ParseOptions::default() };
            if let Ok(c) = Command::parse(line.as_bytes(), &opts) {
                let bytes = c.to_bytes();
                let again = Command::parse(&bytes, &ParseOptions { smtputf8: true, ..opts });
                prop_assert_eq!(again, Ok(c));
            }
        }
    }
}

/// Found by `never_panics`: an unknown verb in lower case, ended by a bare LF (permissive),
/// must write back as it was parsed.
#[test]
fn an_unknown_lower_case_verb_round_trips() {
    let opts = ParseOptions {
        leniency: Leniency::PERMISSIVE,
        ..ParseOptions::default()
    };
    let c = Command::parse(b"a\n", &opts).unwrap();
    assert_eq!(Command::parse(&c.to_bytes(), &opts), Ok(c));
}
