//! Tests of the parent module: RFC examples, every error, and property tests.

use super::*;
use proptest::prelude::*;

const STRICT: AddressOptions = AddressOptions {
    smtputf8: false,
    limits: LIMITS,
};
const UTF8: AddressOptions = AddressOptions {
    smtputf8: true,
    limits: LIMITS,
};
const LIMITS: Limits = Limits {
    command_line: crate::limits::MAX_COMMAND_LINE,
    auth_line: crate::limits::MAX_AUTH_LINE,
    reply_line: crate::limits::MAX_REPLY_LINE,
    reply_lines: crate::limits::MAX_REPLY_LINES,
    reply_bytes: crate::limits::MAX_REPLY_BYTES,
    local_part: crate::limits::MAX_LOCAL_PART,
    domain: crate::limits::MAX_DOMAIN,
    path: crate::limits::MAX_PATH,
};

fn mb(local: &str, domain: &str) -> Mailbox<'static> {
    Mailbox {
        local_part: local.to_owned().into(),
        domain: Domain::Name(domain.to_owned().into()),
    }
}

fn path(s: &str) -> Result<Path<'_>, AddressError> {
    Path::parse(s.as_bytes(), &STRICT)
}

fn fwd(s: &str) -> Result<ForwardPath<'_>, AddressError> {
    ForwardPath::parse(s.as_bytes(), &STRICT)
}

#[test]
fn rfc5321_examples() {
    assert_eq!(path("<>"), Ok(Path::Null));
    assert_eq!(
        path("<Smith@bar.com>"),
        Ok(Path::Mailbox(mb("Smith", "bar.com")))
    );
    // §C / §4.1.2: source routes are accepted and ignored.
    assert_eq!(
        fwd("<@hosta.int,@jkl.org:userc@d.bar.org>"),
        Ok(ForwardPath::Mailbox(mb("userc", "d.bar.org")))
    );
    assert_eq!(fwd("<Postmaster>"), Ok(ForwardPath::Postmaster));
    assert_eq!(fwd("<postMASTER>"), Ok(ForwardPath::Postmaster));
    assert_eq!(
        fwd("<Postmaster@example.com>"),
        Ok(ForwardPath::Mailbox(mb("Postmaster", "example.com")))
    );
    assert_eq!(fwd("<>"), Err(AddressError::Syntax));
    assert_eq!(path("<Postmaster>"), Err(AddressError::Syntax));
}

#[test]
fn quoted_local_parts() {
    let p = path(r#"<"John \"Doe\" \\x"@example.com>"#).unwrap();
    let Path::Mailbox(m) = p else { panic!() };
    assert_eq!(m.local_part, r#"John "Doe" \x"#);
    assert_eq!(m.to_string(), r#""John \"Doe\" \\x"@example.com"#);
    // Without quoted-pairs the local part borrows from the input.
    let m = Mailbox::parse(br#""a b"@x"#, &STRICT).unwrap();
    assert!(matches!(m.local_part, Cow::Borrowed("a b")));
    assert_eq!(m.to_string(), r#""a b"@x"#);
    // A quoted dot-string is written back unquoted.
    assert_eq!(
        Mailbox::parse(br#""ab"@x"#, &STRICT).unwrap().to_string(),
        "ab@x"
    );
    assert_eq!(
        Mailbox::parse(br#"""@x"#, &STRICT).unwrap().to_string(),
        r#"""@x"#
    );
    assert_eq!(
        Mailbox::parse(br#"".a"@x"#, &STRICT).unwrap().to_string(),
        r#"".a"@x"#
    );
}

#[test]
fn address_literals() {
    let lit = |s: &str| match Domain::parse(s.as_bytes(), &STRICT) {
        Ok(Domain::Literal(l)) => Ok(l.into_owned()),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e),
    };
    assert_eq!(
        lit("[192.0.2.1]"),
        Ok(AddressLiteral::Ipv4(Ipv4Addr::new(192, 0, 2, 1)))
    );
    assert_eq!(
        lit("[IPv6:2001:db8::1]"),
        Ok(AddressLiteral::Ipv6("2001:db8::1".parse().unwrap()))
    );
    assert_eq!(
        lit("[ipv6:::1]"),
        Ok(AddressLiteral::Ipv6(Ipv6Addr::LOCALHOST))
    );
    assert_eq!(
        lit("[x-tag:some!thing]"),
        Ok(AddressLiteral::General {
            tag: "x-tag".into(),
            content: "some!thing".into()
        })
    );
    for bad in [
        "[256.0.0.1]",
        "[1.2.3]",
        "[IPv6:2001:db8::g]",
        "[IPv6:1.2.3.4]",
        "[x-:a]",
        "[x:]",
        "[x:a\\b]",
        "[x:a b]",
        "[]",
        "[1.2.3.4",
    ] {
        assert_eq!(lit(bad), Err(AddressError::Syntax), "{bad}");
    }
    let m = Mailbox::parse(b"a@[IPv6:0:0::1]", &STRICT).unwrap();
    assert_eq!(m.to_string(), "a@[IPv6:::1]");
}

#[test]
fn syntax_errors() {
    for bad in [
        "<a@b",
        "a@b",
        "<.a@b>",
        "<a.@b>",
        "<a..b@c>",
        "<a@-b.c>",
        "<a@b-.c>",
        "<a@b..c>",
        "<a@b.>",
        "<a@>",
        "<@b>",
        "<a b@c>",
        "<a@b c>",
        "<a(b)@c>",
        "<\"a@b>",
        "<\"a\\\"@b>",
        "<\"a\x01\"@b>",
        "<a@b_c.d>",
        "<@a.b:>",
        "<@a.b>",
        "<@:a@b>",
        "<@a,b:c@d>",
        "<a@b>x",
        "<<a@b>>",
        "<a@b@c>",
    ] {
        assert_eq!(path(bad), Err(AddressError::Syntax), "{bad}");
    }
}

#[test]
fn length_limits() {
    let local = "a".repeat(64);
    assert!(path(&format!("<{local}@b>")).is_ok());
    assert_eq!(
        path(&format!("<{local}a@b>")),
        Err(AddressError::LocalPartTooLong)
    );
    let quoted = format!("\"{}\"", "a".repeat(62));
    assert!(path(&format!("<{quoted}@b>")).is_ok());
    assert_eq!(
        path(&format!("<\"{local}\"@b>")),
        Err(AddressError::LocalPartTooLong)
    );
    let label = "a".repeat(63);
    assert!(path(&format!("<a@{label}>")).is_ok());
    assert_eq!(path(&format!("<a@{label}a>")), Err(AddressError::Syntax));
    let domain = [label.as_str(); 4].join(".");
    assert_eq!(domain.len(), 255);
    assert!(path(&format!("<a@{domain}>")).is_ok());
    assert_eq!(
        path(&format!("<a@{domain}a>")),
        Err(AddressError::DomainTooLong)
    );
    let route = format!("@{domain},").repeat(4);
    assert_eq!(
        path(&format!("<{route}@a:a@b>")),
        Err(AddressError::PathTooLong)
    );
    let small = AddressOptions {
        limits: Limits {
            path: 5,
            ..STRICT.limits
        },
        ..STRICT
    };
    assert_eq!(
        Path::parse(b"<abc@cd>", &small),
        Err(AddressError::PathTooLong)
    );
    assert_eq!(Mailbox::parse(b"ab@cd", &small), Ok(mb("ab", "cd")));
}

#[test]
fn utf8_needs_smtputf8() {
    for s in [
        "<j\u{f6}rg@example.com>",
        "<a@b\u{fc}cher.example>",
        "<\"\u{e9}\"@x>",
    ] {
        assert_eq!(path(s), Err(AddressError::Utf8NotPermitted), "{s}");
        assert!(Path::parse(s.as_bytes(), &UTF8).is_ok(), "{s}");
    }
    assert_eq!(Path::parse(b"<\xff@b>", &UTF8), Err(AddressError::Syntax));
    assert_eq!(
        Path::parse(b"<\xff@b>", &STRICT),
        Err(AddressError::Utf8NotPermitted)
    );
    assert_eq!(
        Domain::parse("[IPv6:\u{e9}]".as_bytes(), &UTF8),
        Err(AddressError::Syntax)
    );
    let m = Mailbox::parse("用户@例子.广告".as_bytes(), &UTF8).unwrap();
    assert_eq!(m.to_string(), "用户@例子.广告");
}

#[test]
fn replies() {
    let r = |e: AddressError, role| {
        let r = e.reply(role);
        (r.code, r.status.to_string())
    };
    use AddressRole::{Recipient, Sender};
    for e in [
        AddressError::Syntax,
        AddressError::LocalPartTooLong,
        AddressError::DomainTooLong,
        AddressError::PathTooLong,
    ] {
        assert_eq!(r(e, Sender), (501, "5.1.7".into()));
        assert_eq!(r(e, Recipient), (501, "5.1.3".into()));
    }
    assert_eq!(
        r(AddressError::Utf8NotPermitted, Sender),
        (553, "5.6.7".into())
    );
    assert_eq!(
        r(AddressError::Utf8NotPermitted, Recipient),
        (553, "5.6.7".into())
    );
}

#[test]
fn token_lengths() {
    assert_eq!(token_len(b"<a@b> SIZE=1"), 5);
    assert_eq!(token_len(b"<\"a>b\"@c> X"), 9);
    assert_eq!(token_len(b"<a@[x:>]> X"), 9);
    assert_eq!(token_len(b"<a@b"), 4);
    assert_eq!(token_len(b"a@b SIZE=1"), 3);
    assert_eq!(token_len(b"\"a b\"@c X"), 7);
    assert_eq!(token_len(b""), 0);
}

/// A domain name of 1 to 3 labels.
pub(crate) fn domain_name() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?", 1..4)
        .prop_map(|labels| labels.join("."))
}

/// Any domain: names and the three kinds of address literal.
pub(crate) fn domain() -> impl Strategy<Value = Domain<'static>> {
    prop_oneof![
        domain_name().prop_map(|n| Domain::Name(n.into())),
        any::<[u8; 4]>().prop_map(|o| Domain::Literal(AddressLiteral::Ipv4(o.into()))),
        any::<[u16; 8]>().prop_map(|s| Domain::Literal(AddressLiteral::Ipv6(s.into()))),
        (
            "[a-zA-Z0-9]([a-zA-Z0-9-]{0,5}[a-zA-Z0-9])?",
            "[!-Z^-~]{1,12}"
        )
            .prop_filter("IPv6 is not a general tag", |(t, _)| {
                !t.eq_ignore_ascii_case("ipv6")
            })
            .prop_map(|(tag, content)| {
                Domain::Literal(AddressLiteral::General {
                    tag: tag.into(),
                    content: content.into(),
                })
            }),
    ]
}

/// A mailbox with a dot-string or quoted local part; non-ASCII ones when `utf8`.
pub(crate) fn mailbox(utf8: bool) -> BoxedStrategy<Mailbox<'static>> {
    let ascii = prop_oneof![
        "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{1,8}(\\.[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{1,8}){0,2}",
        "[ -~]{0,20}",
    ];
    let local = if utf8 {
        prop_oneof![
            ascii,
            "[a-z\u{e9}\u{65e5}\u{672c}]{1,8}",
            "[ -~\u{e9}]{0,8}"
        ]
        .boxed()
    } else {
        ascii.boxed()
    };
    (local, domain())
        .prop_map(|(l, domain)| Mailbox {
            local_part: l.into(),
            domain,
        })
        .boxed()
}

proptest! {
    #[test]
    fn mailbox_round_trip(m in mailbox(true)) {
        let wire = format!("<{m}>");
        let parsed = Path::parse(wire.as_bytes(), &UTF8).map(Path::into_owned);
        prop_assert_eq!(parsed, Ok(Path::Mailbox(m)));
    }

    #[test]
    fn never_panics(input in prop::collection::vec(any::<u8>(), 0..80)) {
        for opts in [STRICT, UTF8] {
            let _ = Path::parse(&input, &opts);
            let _ = ForwardPath::parse(&input, &opts);
            let _ = Mailbox::parse(&input, &opts);
            let _ = Domain::parse(&input, &opts);
            prop_assert!(token_len(&input) <= input.len());
        }
    }

    #[test]
    fn never_panics_on_addresslike(input in "[<>@\\[\\]\"\\\\.:,a-z0-9 \u{e9}-]{0,30}") {
        for opts in [STRICT, UTF8] {
            let _ = Path::parse(input.as_bytes(), &opts);
            let _ = ForwardPath::parse(input.as_bytes(), &opts);
            let _ = Mailbox::parse(input.as_bytes(), &opts);
        }
    }
}

#[test]
fn simple_form_edges() {
    // The one-pass fast path and the general parser must agree at every edge of the form.
    let limits = Limits {
        local_part: 3,
        domain: 5,
        ..LIMITS
    };
    let small = AddressOptions {
        smtputf8: false,
        limits,
    };
    assert_eq!(path("<abc@a.bcd>"), Ok(Path::Mailbox(mb("abc", "a.bcd"))));
    assert_eq!(
        Path::parse(b"<abcd@a.b>", &small),
        Err(AddressError::LocalPartTooLong)
    );
    assert_eq!(
        Path::parse(b"<abc@a.bcde>", &small),
        Err(AddressError::DomainTooLong)
    );
    assert_eq!(
        Path::parse(b"<abc@a.bcd>", &small),
        Ok(Path::Mailbox(mb("abc", "a.bcd")))
    );
    let label = "a".repeat(63);
    assert_eq!(
        path(&format!("<x@{label}.com>")),
        Ok(Path::Mailbox(mb("x", &format!("{label}.com"))))
    );
    assert_eq!(
        path(&format!("<x@{label}a.com>")),
        Err(AddressError::Syntax)
    );
    for bad in [
        "<.a@b>", "<a.@b>", "<a..b@c>", "<@b>", "<a@>", "<a@.b>", "<a@b.>", "<a@b..c>", "<a@-b>",
        "<a@b->", "<a@b.-c>", "<a@b@c>", "<a b@c>",
    ] {
        assert_eq!(path(bad), Err(AddressError::Syntax), "{bad}");
    }
    assert_eq!(path("<a@b-c.d>"), Ok(Path::Mailbox(mb("a", "b-c.d"))));
    assert_eq!(
        Path::parse("<é@b>".as_bytes(), &UTF8),
        Ok(Path::Mailbox(mb("é", "b")))
    );
}
