//! Relay control: an outside client cannot relay by any path; trusted ones can; the table.

use super::*;

const OUTSIDE: &str = "203.0.113.9";

fn policy() -> RelayPolicy {
    RelayPolicy::new(
        &["example.org", ".sub.example.org", "bücher.example"],
        None,
        None,
    )
    .unwrap()
}

fn outside() -> Client {
    Client::at(OUTSIDE.parse().unwrap())
}

/// Relay control for `path`. The address parser refuses a trailing dot on the wire, so a
/// path ending in `.>` is built by hand, as another front end (or a later parser) might.
fn check(policy: &RelayPolicy, path: &str, client: &Client) -> Decision {
    let rcpt = match path.strip_suffix(".>") {
        Some(dotted) => {
            let (local, domain) = dotted.trim_start_matches('<').rsplit_once('@').unwrap();
            let mailbox = Mailbox {
                local_part: local.to_string().into(),
                domain: Domain::Name(format!("{domain}.").into()),
            };
            RcptPath::new(ForwardPath::Mailbox(mailbox), false)
        }
        None => RcptPath::parse(path.as_bytes(), true).unwrap(),
    };
    check_recipient(policy, &rcpt, client)
}

fn refused_code(decision: Decision) -> (u16, String) {
    match decision {
        Decision::Refuse(reply) => (reply.code(), reply.to_bytes().escape_ascii().to_string()),
        Decision::Accept(a) => panic!("accepted ({a:?})"),
        Decision::Verify => panic!("left to verification"),
    }
}

#[track_caller]
fn assert_relay_denied(decision: Decision) {
    let (code, text) = refused_code(decision);
    assert_eq!(code, 554, "{text}");
    assert!(text.starts_with("554 5.7.1 <"), "{text}");
    assert!(text.ends_with(">: Relay access denied\\r\\n"), "{text}");
}

#[test]
fn the_denial_reply_is_the_documented_one() {
    let Decision::Refuse(reply) = check(&policy(), "<user@other.test>", &outside()) else {
        panic!("accepted");
    };
    assert_eq!(
        reply.to_bytes(),
        b"554 5.7.1 <user@other.test>: Relay access denied\r\n"
    );
}

#[test]
fn an_outside_client_may_send_to_relay_domains_only() {
    let p = policy();
    let ok = Decision::Accept(Acceptance::RelayDomain);
    assert_eq!(check(&p, "<user@example.org>", &outside()), ok);
    assert_eq!(check(&p, "<user@a.sub.example.org>", &outside()), ok);
    assert_relay_denied(check(&p, "<user@other.test>", &outside()));
    assert_relay_denied(check(&p, "<user@sub.example.org>", &outside()));
    assert_relay_denied(check(&p, "<user@evilexample.org>", &outside()));
    assert_relay_denied(check(&p, "<user@example.org.evil.test>", &outside()));
    assert_relay_denied(check(&p, "<user@[192.0.2.1]>", &outside()));
    assert_relay_denied(check(&p, "<user@[IPv6:2001:db8::1]>", &outside()));
}

#[test]
fn case_and_trailing_dot_do_not_matter_but_cannot_be_abused() {
    let p = policy();
    let ok = Decision::Accept(Acceptance::RelayDomain);
    assert_eq!(check(&p, "<user@EXAMPLE.ORG>", &outside()), ok);
    assert_eq!(check(&p, "<user@Example.Org.>", &outside()), ok);
    assert_eq!(check(&p, "<user@X.SUB.Example.org>", &outside()), ok);
    assert_relay_denied(check(&p, "<user@OTHER.TEST.>", &outside()));
    // A trailing dot on a name that only looks like ours after case folding or trimming.
    assert_relay_denied(check(&p, "<user@example.org.other.test.>", &outside()));
}

#[test]
fn idn_forms_match_on_the_a_label() {
    let p = policy();
    let ok = Decision::Accept(Acceptance::RelayDomain);
    assert_eq!(check(&p, "<user@bücher.example>", &outside()), ok);
    assert_eq!(check(&p, "<user@BÜCHER.example>", &outside()), ok);
    assert_eq!(check(&p, "<user@xn--bcher-kva.example>", &outside()), ok);
    assert_eq!(check(&p, "<user@XN--BCHER-KVA.EXAMPLE.>", &outside()), ok);
    // Another U-label (bucher without the umlaut) is another domain.
    assert_relay_denied(check(&p, "<user@bucher.example>", &outside()));
    assert_relay_denied(check(&p, "<user@bücher.other>", &outside()));
}

#[test]
fn percent_hack_bang_path_and_source_route_are_refused_from_outside() {
    let p = policy();
    assert_relay_denied(check(&p, "<victim%other.test@example.org>", &outside()));
    assert_relay_denied(check(&p, "<other.test!victim@example.org>", &outside()));
    assert_relay_denied(check(&p, "<\"victim@other.test\"@other.test>", &outside()));
    assert_relay_denied(check(&p, "<@example.org:victim@other.test>", &outside()));
    assert_relay_denied(check(
        &p,
        "<@example.org,@a.sub.example.org:user@example.org>",
        &outside(),
    ));
    assert_relay_denied(check(&p, "<\"victim%other.test\"@example.org>", &outside()));
}

#[test]
fn the_quoted_form_of_a_routed_address_is_still_refused() {
    let p = policy();
    let Decision::Refuse(reply) = check(&p, "<\"a!b\"@example.org>", &outside()) else {
        panic!("accepted");
    };
    assert_eq!(reply.code(), 554);
}

#[test]
fn trusted_clients_may_relay_anywhere_including_routed_forms() {
    let p = policy();
    let ok = Decision::Accept(Acceptance::TrustedClient);
    for client in [
        Client::at("127.0.0.1".parse().unwrap()),
        Client::at("::1".parse().unwrap()),
    ] {
        assert_eq!(check(&p, "<user@other.test>", &client), ok);
        assert_eq!(check(&p, "<a%b@other.test>", &client), ok);
        assert_eq!(check(&p, "<@x.test:user@other.test>", &client), ok);
        assert_eq!(
            check(&p, "<user@example.org>", &client),
            Decision::Accept(Acceptance::RelayDomain)
        );
    }
    let authed = Client {
        addr: OUTSIDE.parse().unwrap(),
        authenticated: true,
    };
    assert_eq!(check(&p, "<user@other.test>", &authed), ok);
    assert_eq!(check(&p, "<a!b@other.test>", &authed), ok);
}

#[test]
fn default_networks_are_loopback_only() {
    let p = policy();
    for addr in ["127.1.2.3", "::1", "::ffff:127.0.0.1"] {
        assert!(p.trusts(&Client::at(addr.parse().unwrap())), "{addr}");
    }
    for addr in [
        "10.0.0.1",
        "192.168.1.1",
        "::2",
        "0.0.0.0",
        "::",
        "::ffff:10.0.0.1",
    ] {
        assert!(!p.trusts(&Client::at(addr.parse().unwrap())), "{addr}");
    }
}

#[test]
fn an_ipv4_mapped_ipv6_client_matches_ipv4_networks_only_by_its_address() {
    let p = RelayPolicy::new(&["example.org"], Some(&["192.0.2.0/24"]), None).unwrap();
    let mapped = Client::at("::ffff:192.0.2.77".parse().unwrap());
    assert_eq!(
        check(&p, "<user@other.test>", &mapped),
        Decision::Accept(Acceptance::TrustedClient)
    );
    let outside_mapped = Client::at("::ffff:198.51.100.1".parse().unwrap());
    assert_relay_denied(check(&p, "<user@other.test>", &outside_mapped));
    // Loopback is no longer trusted once networks are given.
    assert_relay_denied(check(
        &p,
        "<user@other.test>",
        &Client::at("127.0.0.1".parse().unwrap()),
    ));
    // An IPv6 network written in mapped form matches the IPv4 client too.
    let p6 = RelayPolicy::new(&["example.org"], Some(&["::ffff:192.0.2.0/120"]), None).unwrap();
    assert!(p6.trusts(&Client::at("192.0.2.5".parse().unwrap())));
    assert!(!p6.trusts(&Client::at("192.0.3.5".parse().unwrap())));
}

#[test]
fn networks_parse_cidr_and_refuse_nonsense() {
    let n: Network = "10.1.0.0/16".parse().unwrap();
    assert!(n.contains("10.1.255.1".parse().unwrap()));
    assert!(!n.contains("10.2.0.1".parse().unwrap()));
    let n: Network = "10.1.2.3/13".parse().unwrap();
    assert!(n.contains("10.7.0.0".parse().unwrap()));
    assert!(!n.contains("10.8.0.0".parse().unwrap()));
    let n: Network = "2001:db8::/32".parse().unwrap();
    assert!(n.contains("2001:db8:ffff::1".parse().unwrap()));
    assert!(!n.contains("2001:db9::1".parse().unwrap()));
    assert!(!n.contains("32.1.13.184".parse().unwrap()));
    let host: Network = "192.0.2.1".parse().unwrap();
    assert!(host.contains("192.0.2.1".parse().unwrap()));
    assert!(!host.contains("192.0.2.2".parse().unwrap()));
    let all: Network = "0.0.0.0/0".parse().unwrap();
    assert!(all.contains("198.51.100.1".parse().unwrap()));
    for bad in [
        "10.0.0.0/33",
        "::/129",
        "10.0.0.0/+8",
        "10.0.0.0/",
        "example.org/8",
        "",
    ] {
        assert!(bad.parse::<Network>().is_err(), "{bad}");
    }
    let err = RelayPolicy::new(&["a.test"], Some(&["10.0.0.0/40"]), None).unwrap_err();
    assert!(err.to_string().contains("[relay] networks"), "{err}");
}

#[test]
fn a_wildcard_relay_domain_is_refused_naming_the_key() {
    let err = RelayPolicy::new(&["example.org", "*"], None, None).unwrap_err();
    assert_eq!(
        err,
        ConfigError::Wildcard {
            key: "[relay] domains"
        }
    );
    assert!(err.to_string().starts_with("[relay] domains"), "{err}");
    let err = RelayPolicy::new(&["bad..name"], None, None).unwrap_err();
    assert!(err.to_string().contains("[relay] domains"), "{err}");
}

#[test]
fn postmaster_is_always_accepted() {
    assert_eq!(
        check(&policy(), "<Postmaster>", &outside()),
        Decision::Accept(Acceptance::Postmaster)
    );
    assert_eq!(
        check(&policy(), "<POSTMASTER>", &outside()),
        Decision::Accept(Acceptance::Postmaster)
    );
}

const TABLE: &str = "# valid recipients\n\
                     alice@example.org\n\
                     \n\
                     Bob@Example.ORG   # trailing comment\n\
                     @a.sub.example.org\n\
                     carol@bücher.example\n";

fn table_policy() -> RelayPolicy {
    let table = RecipientTable::parse(TABLE).unwrap();
    RelayPolicy::new(
        &["example.org", ".sub.example.org", "bücher.example"],
        None,
        Some(table),
    )
    .unwrap()
}

#[test]
fn the_recipients_table_accepts_listed_addresses_and_domains() {
    let p = table_policy();
    let ok = Decision::Accept(Acceptance::RelayDomain);
    assert_eq!(check(&p, "<alice@example.org>", &outside()), ok);
    assert_eq!(check(&p, "<ALICE@EXAMPLE.ORG.>", &outside()), ok);
    assert_eq!(check(&p, "<bob@example.org>", &outside()), ok);
    assert_eq!(check(&p, "<anyone@a.sub.example.org>", &outside()), ok);
    assert_eq!(check(&p, "<carol@xn--bcher-kva.example>", &outside()), ok);
}

#[test]
fn an_unlisted_address_of_a_relay_domain_is_user_unknown_from_any_client() {
    let p = table_policy();
    for client in [outside(), Client::at("127.0.0.1".parse().unwrap())] {
        let Decision::Refuse(reply) = check(&p, "<mallory@example.org>", &client) else {
            panic!("accepted");
        };
        assert_eq!(
            reply.to_bytes(),
            b"550 5.1.1 <mallory@example.org>: Recipient address rejected: User unknown\r\n"
        );
    }
    assert_eq!(
        refused_code(check(&p, "<x@b.sub.example.org>", &outside())).0,
        550
    );
    // Other domains are still relay control's business, not the table's.
    assert_relay_denied(check(&p, "<alice@other.test>", &outside()));
    assert_eq!(
        check(
            &p,
            "<alice@other.test>",
            &Client::at("127.0.0.1".parse().unwrap())
        ),
        Decision::Accept(Acceptance::TrustedClient)
    );
}

#[test]
fn table_parse_errors_name_the_line() {
    let err = RecipientTable::parse("alice@example.org\n# ok\nnot an address\n").unwrap_err();
    assert!(
        matches!(err, ConfigError::TableLine { line: 3, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("line 3"), "{err}");
    let err = RecipientTable::parse("\n@bad..domain\n").unwrap_err();
    assert!(
        matches!(err, ConfigError::TableLine { line: 2, .. }),
        "{err:?}"
    );
    assert!(RecipientTable::parse("").unwrap() == RecipientTable::default());
}

#[test]
fn rcpt_path_records_the_source_route() {
    let routed = RcptPath::parse(b"<@a.test,@b.test:u@c.test>", false).unwrap();
    assert!(routed.source_route);
    let plain = RcptPath::parse(b"<u@c.test>", false).unwrap();
    assert!(!plain.source_route);
    assert_eq!(routed.path(), plain.path());
    assert!(RcptPath::parse(b"<>", false).is_err());
}

#[test]
fn a_verified_route_leaves_unlisted_addresses_to_a_probe_and_keeps_every_other_rule() {
    let set = |names: &[&str]| DomainSet::parse("routes", names, true).unwrap();
    let table = RecipientTable::parse("listed@example.org\n@whole.example.org\n").unwrap();
    let routes = vec![
        // The first matching route decides: a.sub.example.org is not verified.
        (set(&["a.sub.example.org"]), false),
        (set(&["example.org", ".sub.example.org"]), true),
    ];
    let with_table = RelayPolicy::new(&["example.org", ".sub.example.org"], None, Some(table))
        .unwrap()
        .with_verification(routes.clone());
    let trusted = Client::at("127.0.0.1".parse().unwrap());
    for client in [outside(), trusted] {
        assert_eq!(
            check(&with_table, "<listed@example.org>", &client),
            Decision::Accept(Acceptance::RelayDomain),
            "a listed address needs no probe"
        );
        assert_eq!(
            check(&with_table, "<Other@EXAMPLE.org>", &client),
            Decision::Verify,
            "from any client"
        );
        assert_eq!(
            check(&with_table, "<u@x.sub.example.org>", &client),
            Decision::Verify
        );
        assert_eq!(
            check(&with_table, "<Postmaster>", &client),
            Decision::Accept(Acceptance::Postmaster)
        );
    }
    // Not verified: the table refuses as before.
    let (code, text) = refused_code(check(&with_table, "<u@a.sub.example.org>", &outside()));
    assert_eq!(code, 550, "{text}");
    // Relay denial and source routes come first.
    assert_relay_denied(check(&with_table, "<u@other.test>", &outside()));
    assert_relay_denied(check(&with_table, "<u%other.test@example.org>", &outside()));
    // Without a table every address of a verified domain is probed.
    let no_table = RelayPolicy::new(&["example.org"], None, None)
        .unwrap()
        .with_verification(routes);
    assert_eq!(
        check(&no_table, "<anyone@example.org>", &outside()),
        Decision::Verify
    );
    assert!(no_table.verifies("example.org") && !no_table.verifies("a.sub.example.org"));
}
