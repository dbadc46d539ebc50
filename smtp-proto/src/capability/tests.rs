//! Tests for EHLO capability parsing and advertising.

use super::*;
use crate::reply::ReplyParser;
use proptest::prelude::*;

fn caps(wire: &[u8]) -> Capabilities {
    let (reply, used) = ReplyParser::new().parse(wire).unwrap().unwrap();
    assert_eq!(used, wire.len());
    parse_capabilities(&reply)
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

#[test]
fn rfc5321_d1_ehlo() {
    let c =
        caps(b"250-foo.com greets bar.com\r\n250-8BITMIME\r\n250-SIZE\r\n250-DSN\r\n250 HELP\r\n");
    assert_eq!(c.domain(), "foo.com");
    assert_eq!(c.greeting(), "greets bar.com");
    assert!(c.has(Keyword::EightBitMime) && c.has(Keyword::Dsn) && c.has(Keyword::Size));
    assert_eq!(c.size(), Some(0));
    assert_eq!(c.get("help"), Some(&[][..]));
    assert!(!c.has(Keyword::Pipelining) && !c.has(Keyword::Auth));
    assert_eq!(c.len(), 4);
}

#[test]
fn rfc1870_size() {
    let c = caps(b"250-dbc.mtview.ca.us says hello\r\n250 SIZE 1000000\r\n");
    assert_eq!(c.domain(), "dbc.mtview.ca.us");
    assert_eq!(c.size(), Some(1_000_000));
    assert_eq!(caps(b"250-x\r\n250 SIZE 0\r\n").size(), Some(0));
    assert_eq!(caps(b"250 x\r\n").size(), None);
}

#[test]
fn rfc2920_pipelining() {
    let c = caps(b"250-innosoft.com\r\n250 PIPELINING\r\n");
    assert_eq!((c.domain(), c.greeting()), ("innosoft.com", ""));
    assert!(c.has(Keyword::Pipelining));
}

#[test]
fn rfc4954_auth_and_legacy_form() {
    let c = caps(
        b"250-smtp.example.com Hello client.example.com\r\n250-AUTH GSSAPI DIGEST-MD5\r\n\
          250-ENHANCEDSTATUSCODES\r\n250 STARTTLS\r\n",
    );
    assert_eq!(c.auth_mechanisms(), strings(&["GSSAPI", "DIGEST-MD5"]));
    assert!(c.supports_auth("digest-md5") && !c.supports_auth("PLAIN"));
    assert!(c.has(Keyword::EnhancedStatusCodes) && c.has(Keyword::StartTls));

    let c = caps(
        b"250-mx\r\n250-AUTH=LOGIN PLAIN\r\n250-AUTH PLAIN LOGIN CRAM-MD5\r\n250 8BITMIME\r\n",
    );
    assert_eq!(
        c.auth_mechanisms(),
        strings(&["LOGIN", "PLAIN", "CRAM-MD5"])
    );
    assert_eq!(c.len(), 2);
    let c = caps(b"250-mx\r\n250-auth plain\r\n250 Auth=xoauth2\r\n");
    assert_eq!(c.auth_mechanisms(), strings(&["PLAIN", "XOAUTH2"]));
    assert!(caps(b"250-mx\r\n250 AUTH\r\n").has(Keyword::Auth));
    assert!(caps(b"250-mx\r\n250 AUTH=\r\n")
        .auth_mechanisms()
        .is_empty());
}

#[test]
fn xclient_and_flags() {
    let c = caps(
        b"250-mx\r\n250-XCLIENT NAME ADDR PROTO HELO\r\n250-CHUNKING\r\n250-BINARYMIME\r\n\
          250-SMTPUTF8\r\n250-REQUIRETLS\r\n250 pipelining IGNORED PARAMS\r\n",
    );
    assert_eq!(
        c.xclient_attributes(),
        strings(&["NAME", "ADDR", "PROTO", "HELO"])
    );
    for k in [
        Keyword::Chunking,
        Keyword::BinaryMime,
        Keyword::SmtpUtf8,
        Keyword::RequireTls,
    ] {
        assert!(c.has(k), "{k:?}");
    }
    assert!(c.has(Keyword::Pipelining));
    assert_eq!(c.get("PIPELINING"), None);
    assert!(!c.has(Keyword::Dsn));
    assert!(
        c.xclient_attributes().len() == 4 && caps(b"250 x\r\n").xclient_attributes().is_empty()
    );
}

#[test]
fn unknown_keywords_kept_in_order() {
    let c = caps(b"250-mx hi\r\n250-X-FOO a  b\r\n250-ETRN\r\n250-\r\n250-x-foo c\r\n250 VRFY\r\n");
    let items: Vec<_> = c.iter().cloned().collect();
    assert_eq!(
        items,
        vec![
            Capability::Other {
                keyword: "X-FOO".into(),
                params: strings(&["a", "b"])
            },
            Capability::Other {
                keyword: "ETRN".into(),
                params: vec![]
            },
            Capability::Other {
                keyword: "x-foo".into(),
                params: strings(&["c"])
            },
            Capability::Other {
                keyword: "VRFY".into(),
                params: vec![]
            },
        ]
    );
    assert_eq!(c.get("x-Foo"), Some(&strings(&["a", "b"])[..]));
    assert_eq!(c.get("NOPE"), None);
}

#[test]
fn malformed_parameters_do_not_fail_the_parse() {
    for bad in [
        "SIZE abc",
        "SIZE 1 2",
        "SIZE +5",
        "SIZE 99999999999999999999999",
        "SIZE -1",
    ] {
        let wire = format!("250-mx\r\n250-{bad}\r\n250 PIPELINING\r\n");
        let c = caps(wire.as_bytes());
        assert!(!c.has(Keyword::Size), "{bad}");
        assert_eq!(c.size(), None);
        assert!(c.get("size").is_some_and(|p| !p.is_empty()), "{bad}");
        assert!(c.has(Keyword::Pipelining));
    }
    let c = caps("250-mx\r\n250-AUTHé x\r\n250 Ünïcode ü\r\n".as_bytes());
    assert_eq!(c.get("AUTHé"), Some(&strings(&["x"])[..]));
    assert_eq!(c.get("ünïcode"), None); // only ASCII case folding
}

#[test]
fn later_size_wins_and_duplicates_merge() {
    let c = caps(b"250-mx\r\n250-SIZE 10\r\n250-PIPELINING\r\n250-SIZE 20\r\n250 PIPELINING\r\n");
    assert_eq!(c.size(), Some(20));
    assert_eq!(
        c.iter().cloned().collect::<Vec<_>>(),
        vec![Capability::Size(20), Capability::Pipelining]
    );
}

#[test]
fn non_success_reply_advertises_nothing() {
    let c = caps(b"550-mx.example go away\r\n550 STARTTLS\r\n");
    assert!(c.is_empty());
    assert_eq!(c.domain(), "mx.example");
}

#[test]
fn server_builds_its_ehlo_reply() {
    let c: Capabilities = [
        Capability::Pipelining,
        Capability::Size(1000),
        Capability::Auth(strings(&["plain"])),
        Capability::Other {
            keyword: "auth".into(),
            params: strings(&["LOGIN", "PLAIN"]),
        },
        Capability::StartTls,
    ]
    .into_iter()
    .collect();
    let reply = c.to_reply("mx.example.com", "Hello client");
    assert_eq!(
        reply.to_bytes(),
        b"250-mx.example.com Hello client\r\n250-PIPELINING\r\n250-SIZE 1000\r\n\
          250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n"
    );
    let mut c = c;
    assert!(c.remove(Keyword::StartTls) && !c.remove(Keyword::StartTls));
    c.insert(Capability::Size(0));
    c.insert(Capability::Other {
        keyword: "size".into(),
        params: strings(&["42"]),
    });
    assert_eq!(c.size(), Some(42));
    assert_eq!(
        Capabilities::new().to_reply("mx", "").to_bytes(),
        b"250 mx\r\n"
    );
    assert_eq!(Capability::Size(0).to_line(), "SIZE");
    assert_eq!(Keyword::from_name("8bitmime"), Some(Keyword::EightBitMime));
}

#[test]
fn greeting_cannot_inject_capabilities() {
    let c = Capabilities::new().to_reply("mx\r\n250-AUTH PLAIN", "hi\n250-STARTTLS\r\n");
    let parsed = caps(&c.to_bytes());
    assert!(parsed.is_empty());
    assert_eq!(c.lines().len(), 1);
    assert_eq!(parsed.domain(), "mx");
}

fn word() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9._=+-]{0,12}"
}

fn arb_capability() -> impl Strategy<Value = Capability> {
    prop_oneof![
        any::<u64>().prop_map(Capability::Size),
        Just(Capability::Pipelining),
        Just(Capability::EightBitMime),
        Just(Capability::SmtpUtf8),
        Just(Capability::StartTls),
        prop::collection::vec(word(), 0..4).prop_map(Capability::Auth),
        Just(Capability::Chunking),
        Just(Capability::BinaryMime),
        Just(Capability::Dsn),
        Just(Capability::EnhancedStatusCodes),
        Just(Capability::RequireTls),
        prop::collection::vec(word(), 0..4).prop_map(Capability::Xclient),
        (word(), prop::collection::vec(word(), 0..4))
            .prop_map(|(keyword, params)| Capability::Other { keyword, params }),
        // Anything at all: insertion must canonicalise it.
        (".{0,12}", prop::collection::vec("(?s).{0,8}", 0..3))
            .prop_map(|(keyword, params)| Capability::Other { keyword, params }),
    ]
}

proptest! {
    #[test]
    fn to_reply_parse_round_trip(
        items in prop::collection::vec(arb_capability(), 0..12),
        domain in "[a-z0-9][a-z0-9.-]{0,20}",
        greeting in "([!-~][ -~]{0,30})?",
    ) {
        prop_assume!(crate::EnhancedStatus::parse_prefix(domain.as_bytes()).is_none());
        let c: Capabilities = items.into_iter().collect();
        let reply = c.to_reply(&domain, &greeting);
        let parsed = caps(&reply.to_bytes());
        prop_assert_eq!(parsed.domain(), domain.as_str());
        prop_assert_eq!(parsed.greeting(), greeting.as_str());
        prop_assert_eq!(parsed.iter().collect::<Vec<_>>(), c.iter().collect::<Vec<_>>());
        // And the canonical form is a fixed point.
        prop_assert_eq!(parsed.to_reply(&domain, &greeting), reply);
    }

    #[test]
    fn parsing_any_reply_never_panics(code in 200u16..=559, text in "(?s).{0,300}") {
        if let Ok(reply) = Reply::try_new(code, None, &text) {
            let c = parse_capabilities(&reply);
            let _ = (c.size(), c.auth_mechanisms(), c.get("X"), c.to_reply(c.domain(), c.greeting()));
        }
    }
}

/// Found by the `ehlo` fuzz target: a control character in the greeting must read the same
/// after `to_reply`, which writes it as a space.
#[test]
fn greeting_control_characters_round_trip() {
    let (reply, _) = Reply::parse(b"250-mx.example.com He\x01\"o client\r\n250 8BITMIME\r\n")
        .unwrap()
        .unwrap();
    let caps = parse_capabilities(&reply);
    assert_eq!(caps.greeting(), "He \"o client");
    let again = parse_capabilities(&caps.to_reply(caps.domain(), caps.greeting()));
    assert_eq!(again, caps);
}

/// The byte test the word splitter uses agrees with the character test on every byte.
#[test]
fn separator_byte_matches_separator_char() {
    for b in 0..=u8::MAX {
        let expected = b.is_ascii() && is_separator(char::from(b));
        assert_eq!(is_separator_byte(b), expected, "byte {b:#04x}");
    }
}

#[test]
fn size_parameters() {
    let c = caps(b"250-mx\r\n250 SIZE 10\r\n");
    assert_eq!(c.size(), Some(10));
    for line in [
        "SIZE 1 2",
        "SIZE abc",
        "SIZE +1",
        "SIZE 99999999999999999999",
    ] {
        let c = caps(format!("250-mx\r\n250 {line}\r\n").as_bytes());
        assert_eq!(c.size(), None, "{line}");
        let params: Vec<&str> = line.split(' ').skip(1).collect();
        assert_eq!(c.get("size"), Some(strings(&params).as_slice()), "{line}");
    }
}
