//! Tests of the parent module: RFC examples, every error, and property tests.

use super::*;
use proptest::prelude::*;

fn mail(s: &str) -> Result<Params<'_>, ParamError> {
    Params::parse(s.as_bytes(), ParamKind::Mail, false)
}

fn rcpt(s: &str) -> Result<Params<'_>, ParamError> {
    Params::parse(s.as_bytes(), ParamKind::Rcpt, false)
}

fn wire(p: &Params<'_>) -> String {
    p.to_string()
}

#[test]
fn known_mail_params() {
    let p =
        mail("SIZE=1000 body=8bitmime SMTPUTF8 RET=hdrs ENVID=QQ+2B314 AUTH=e+3Dmc2@x").unwrap();
    assert_eq!(p.size, Some(1000));
    assert_eq!(p.body, Some(Body::EightBitMime));
    assert!(p.smtputf8);
    assert_eq!(p.ret, Some(Ret::Hdrs));
    assert_eq!(p.envid.as_deref(), Some("QQ+314"));
    assert_eq!(p.auth, Some(AuthParam::Mailbox("e=mc2@x".into())));
    assert!(p.unknown.is_empty());
    assert_eq!(
        wire(&p),
        " SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=QQ+2B314 AUTH=e+3Dmc2@x"
    );
    assert_eq!(mail("AUTH=<>").unwrap().auth, Some(AuthParam::Null));
    assert_eq!(mail("BODY=7BIT").unwrap().body, Some(Body::SevenBit));
    assert_eq!(
        mail("BODY=BINARYMIME").unwrap().body,
        Some(Body::BinaryMime)
    );
    assert_eq!(mail("").unwrap(), Params::default());
    assert!(mail("").unwrap().is_empty());
}

#[test]
fn known_rcpt_params() {
    // RFC 3461 §4.2 example.
    let p = rcpt("NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob@Example.COM").unwrap();
    assert_eq!(
        p.notify,
        Some(Notify {
            success: true,
            failure: true,
            delay: false
        })
    );
    let orcpt = p.orcpt.as_ref().unwrap();
    assert_eq!(
        (&*orcpt.addr_type, &*orcpt.addr),
        ("rfc822", "Bob@Example.COM")
    );
    assert_eq!(
        wire(&p),
        " NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob@Example.COM"
    );
    assert_eq!(rcpt("notify=never").unwrap().notify, Some(Notify::NEVER));
    assert_eq!(
        wire(&rcpt("NOTIFY=DELAY,SUCCESS").unwrap()),
        " NOTIFY=SUCCESS,DELAY"
    );
    // A parameter of the other command is unknown, not an error.
    let p = rcpt("SIZE=10").unwrap();
    assert_eq!(p.size, None);
    assert_eq!(p.unknown[0].keyword, "SIZE");
    assert_eq!(mail("NOTIFY=NEVER").unwrap().unknown.len(), 1);
}

#[test]
fn unknown_params_are_kept() {
    let p = mail("X-Foo=bar HOLDFOR=60 REQUIRETLS").unwrap();
    let kv: Vec<_> = p
        .unknown
        .iter()
        .map(|u| (&*u.keyword, u.value.as_deref()))
        .collect();
    assert_eq!(
        kv,
        [
            ("X-Foo", Some("bar")),
            ("HOLDFOR", Some("60")),
            ("REQUIRETLS", None)
        ]
    );
    assert_eq!(wire(&p), " X-Foo=bar HOLDFOR=60 REQUIRETLS");
    assert_eq!(p.reject_unknown(), Err(ParamError::Unrecognized));
    assert_eq!(mail("SIZE=1").unwrap().reject_unknown(), Ok(()));
    // UTF-8 values only under SMTPUTF8.
    assert_eq!(mail("X=\u{e9}"), Err(ParamError::Syntax));
    assert!(Params::parse("X=\u{e9}".as_bytes(), ParamKind::Mail, true).is_ok());
}

#[test]
fn errors() {
    use Keyword as K;
    use ParamError::{Duplicate, InvalidValue, Syntax};
    let cases: &[(&str, ParamError)] = &[
        ("SIZE=1 size=2", Duplicate),
        ("X=1 x=2", Duplicate),
        ("SMTPUTF8 SMTPUTF8", Duplicate),
        ("SIZE=1  BODY=7BIT", Syntax),
        (" SIZE=1", Syntax),
        ("SIZE=1 ", Syntax),
        ("-X=1", Syntax),
        ("X_Y=1", Syntax),
        ("X=", Syntax),
        ("X=a=b", Syntax),
        ("X=a\tb", Syntax),
        ("=1", Syntax),
        ("SIZE", InvalidValue(K::Size)),
        ("SIZE=-1", InvalidValue(K::Size)),
        ("SIZE=+1", InvalidValue(K::Size)),
        ("SIZE=1k", InvalidValue(K::Size)),
        ("SIZE=18446744073709551616", InvalidValue(K::Size)),
        ("BODY=8BIT", InvalidValue(K::Body)),
        ("SMTPUTF8=YES", InvalidValue(K::SmtpUtf8)),
        ("RET=ALL", InvalidValue(K::Ret)),
        ("ENVID=a+2", InvalidValue(K::Envid)),
        ("ENVID=a+2b", InvalidValue(K::Envid)),
        ("ENVID=+FF", InvalidValue(K::Envid)),
        ("AUTH", InvalidValue(K::Auth)),
        ("AUTH=a+", InvalidValue(K::Auth)),
    ];
    for (input, err) in cases {
        assert_eq!(mail(input), Err(*err), "{input}");
    }
    let long_envid = format!("ENVID={}", "a".repeat(101));
    assert_eq!(mail(&long_envid), Err(InvalidValue(K::Envid)));
    assert!(mail(&long_envid[..106]).is_ok());
    let rcpt_cases: &[(&str, ParamError)] = &[
        ("NOTIFY=NEVER,SUCCESS", InvalidValue(K::Notify)),
        ("NOTIFY=SUCCESS,SUCCESS", InvalidValue(K::Notify)),
        ("NOTIFY=SUCCESS,", InvalidValue(K::Notify)),
        ("NOTIFY=ALWAYS", InvalidValue(K::Notify)),
        ("ORCPT=rfc822", InvalidValue(K::Orcpt)),
        ("ORCPT=;a@b", InvalidValue(K::Orcpt)),
        ("ORCPT=rfc822;", InvalidValue(K::Orcpt)),
        ("ORCPT=rfc(822);a@b", InvalidValue(K::Orcpt)),
        ("NOTIFY=NEVER notify=never", Duplicate),
    ];
    for (input, err) in rcpt_cases {
        assert_eq!(rcpt(input), Err(*err), "{input}");
    }
    let long_orcpt = format!("ORCPT=rfc822;{}", "a".repeat(501));
    assert_eq!(rcpt(&long_orcpt), Err(InvalidValue(K::Orcpt)));
    assert!(rcpt(&long_orcpt[..long_orcpt.len() - 1]).is_ok());
}

#[test]
fn replies() {
    let r = |e: ParamError| (e.reply().code, e.reply().status.to_string());
    assert_eq!(r(ParamError::Syntax), (501, "5.5.4".into()));
    assert_eq!(r(ParamError::Duplicate), (501, "5.5.4".into()));
    assert_eq!(
        r(ParamError::InvalidValue(Keyword::Size)),
        (501, "5.5.4".into())
    );
    assert_eq!(r(ParamError::Unrecognized), (555, "5.5.4".into()));
}

#[test]
fn xtext() {
    assert_eq!(xtext_encode("a+b=c d\u{e9}"), "a+2Bb+3Dc+20d+C3+A9");
    assert!(matches!(xtext_encode("plain@x"), Cow::Borrowed(_)));
    assert_eq!(
        xtext_decode(b"a+2Bb+3Dc+20d+C3+A9").unwrap(),
        "a+b=c d\u{e9}"
    );
    assert!(matches!(
        xtext_decode(b"plain@x"),
        Ok(Cow::Borrowed("plain@x"))
    ));
    assert_eq!(xtext_decode(b"+41"), Ok(Cow::Borrowed("A")));
    for bad in [
        &b"+"[..],
        b"+4",
        b"+4g",
        b"+2b",
        b"a=b",
        b"a b",
        b"\x7f",
        b"+FF",
        b"\xc3\xa9",
    ] {
        assert_eq!(xtext_decode(bad), Err(XtextError), "{bad:?}");
    }
}

fn xtext_value() -> impl Strategy<Value = String> {
    prop_oneof!["[!-~]{1,20}", "\\PC{1,10}"]
}

/// Parameters valid for `kind`, as the parser would produce them.
pub(crate) fn params(kind: ParamKind) -> BoxedStrategy<Params<'static>> {
    let unknown = prop::collection::vec(
        ("X-[A-Z0-9]{1,6}", prop::option::of("[!-<>-~]{1,10}")),
        0..3,
    )
    .prop_map(|v| {
        let mut seen = std::collections::HashSet::new();
        v.into_iter()
            .filter(|(k, _)| seen.insert(k.to_ascii_uppercase()))
            .map(|(k, v)| UnknownParam {
                keyword: k.into(),
                value: v.map(Into::into),
            })
            .collect::<Vec<_>>()
    });
    match kind {
        ParamKind::Mail => (
            (
                prop::option::of(any::<u64>()),
                prop::option::of(prop_oneof![
                    Just(Body::SevenBit),
                    Just(Body::EightBitMime),
                    Just(Body::BinaryMime)
                ]),
                any::<bool>(),
                prop::option::of(prop_oneof![Just(Ret::Full), Just(Ret::Hdrs)]),
            ),
            prop::option::of("[ -~]{1,100}"),
            prop::option::of(prop_oneof![
                Just(AuthParam::Null),
                xtext_value()
                    .prop_filter("not <>", |v| v != "<>")
                    .prop_map(|v| AuthParam::Mailbox(v.into()))
            ]),
            unknown,
        )
            .prop_map(
                |((size, body, smtputf8, ret), envid, auth, unknown)| Params {
                    size,
                    body,
                    smtputf8,
                    ret,
                    envid: envid.map(Into::into),
                    auth,
                    unknown,
                    ..Params::default()
                },
            )
            .boxed(),
        ParamKind::Rcpt => (
            prop::option::of(any::<(bool, bool, bool)>()),
            prop::option::of(("[a-zA-Z0-9-]{1,8}", xtext_value())),
            unknown,
        )
            .prop_map(|(notify, orcpt, unknown)| Params {
                notify: notify.map(|(success, failure, delay)| Notify {
                    success,
                    failure,
                    delay,
                }),
                orcpt: orcpt.map(|(t, a)| Orcpt {
                    addr_type: t.into(),
                    addr: a.into(),
                }),
                unknown,
                ..Params::default()
            })
            .boxed(),
    }
}

proptest! {
    #[test]
    fn xtext_round_trip(s in "\\PC*|[\\x00-\\x7f]*") {
        let encoded = xtext_encode(&s);
        prop_assert!(encoded.bytes().all(|b| (b'!'..=b'~').contains(&b) && b != b'='));
        let decoded = xtext_decode(encoded.as_bytes()).map(Cow::into_owned);
        prop_assert_eq!(decoded, Ok(s));
    }

    #[test]
    fn params_round_trip(
        (kind, p) in prop_oneof![Just(ParamKind::Mail), Just(ParamKind::Rcpt)]
            .prop_flat_map(|k| (Just(k), params(k)))
    ) {
        let mut out = Vec::new();
        p.write_to(&mut out);
        let input = out.strip_prefix(b" ").unwrap_or(&out);
        let parsed = Params::parse(input, kind, false).map(Params::into_owned);
        prop_assert_eq!(parsed, Ok(p));
    }

    #[test]
    fn never_panics(input in prop::collection::vec(any::<u8>(), 0..64), utf8: bool) {
        let _ = Params::parse(&input, ParamKind::Mail, utf8);
        let _ = Params::parse(&input, ParamKind::Rcpt, utf8);
        let _ = xtext_decode(&input);
    }
}
