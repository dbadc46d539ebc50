//! Routing over static DNS answers: every case of RFC 5321 §5 and RFC 7505.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;
use crate::route::resolver::{RecordType, StaticResolver};
use crate::route::table::Route;

fn v4(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, last)
}

fn no_routes() -> RouteTable {
    RouteTable::new(Vec::new(), Some(2525))
}

fn me() -> LocalHost {
    LocalHost::new(&["MX.Self.Test"], &["198.51.100.1".parse().unwrap()])
}

fn resolve(domain: &str, resolver: &mut StaticResolver, seed: u64) -> RouteOutcome {
    resolve_domain(domain, &no_routes(), &me(), resolver, seed)
}

fn hops(outcome: RouteOutcome) -> Vec<(String, SocketAddr)> {
    match outcome {
        RouteOutcome::Hops(h) => h.into_iter().map(|h| (h.name, h.addr)).collect(),
        other => panic!("no hops: {other:?}"),
    }
}

fn permanent(outcome: RouteOutcome) -> String {
    match outcome {
        RouteOutcome::Permanent(r) => String::from_utf8(r.to_bytes()).unwrap(),
        other => panic!("not permanent: {other:?}"),
    }
}

fn temporary(outcome: RouteOutcome) -> String {
    match outcome {
        RouteOutcome::Temporary(r) => String::from_utf8(r.to_bytes()).unwrap(),
        other => panic!("not temporary: {other:?}"),
    }
}

fn sa(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(ip), port)
}

#[test]
fn mx_records_are_tried_by_preference_on_the_relay_port() {
    let mut r = StaticResolver::new()
        .with_mx("a.test", &[(20, "mx2.a.test"), (10, "MX1.a.test.")])
        .with_a("mx1.a.test", &[v4(1)])
        .with_a("mx2.a.test", &[v4(2)]);
    let got = hops(resolve("A.Test", &mut r, 7));
    assert_eq!(
        got,
        vec![
            ("mx1.a.test".into(), sa(v4(1), 2525)),
            ("mx2.a.test".into(), sa(v4(2), 2525))
        ]
    );
}

#[test]
fn equal_preferences_are_shuffled_by_the_seed_and_only_within_the_preference() {
    let names = ["m1", "m2", "m3", "m4"];
    let mut r = StaticResolver::new().with_mx(
        "a.test",
        &[
            (10, "m1"),
            (10, "m2"),
            (10, "m3"),
            (10, "m4"),
            (5, "first"),
            (30, "last"),
        ],
    );
    for n in names.iter().chain(&["first", "last"]) {
        r = r.with_a(n, &[v4(1)]);
    }
    let mut orders = std::collections::HashSet::new();
    for seed in 0..32 {
        let got = hops(resolve("a.test", &mut r, seed));
        let got: Vec<String> = got.into_iter().map(|(n, _)| n).collect();
        assert_eq!(got.len(), MAX_ADDRESSES);
        assert_eq!(got[0], "first", "seed {seed}");
        let mut middle = got[1..5].to_vec();
        middle.sort();
        assert_eq!(middle, names, "seed {seed}");
        orders.insert(got);
        // The same seed gives the same order.
        let again: Vec<String> = hops(resolve("a.test", &mut r, seed))
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert!(orders.contains(&again));
    }
    assert!(
        orders.len() > 4,
        "the seed changes the order ({} orders)",
        orders.len()
    );
}

#[test]
fn no_mx_means_the_domain_itself_is_the_implicit_mx() {
    let mut r = StaticResolver::new()
        .with_a("a.test", &[v4(9)])
        .with_aaaa("a.test", &[Ipv6Addr::LOCALHOST]);
    let got = hops(resolve("a.test", &mut r, 0));
    assert_eq!(got[0], ("a.test".into(), sa(v4(9), 2525)));
    assert_eq!(
        got[1].1,
        SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 2525)
    );
    // No MX and no address: the domain cannot take mail.
    let mut r = StaticResolver::new().with_mx("empty.test", &[]);
    assert!(permanent(resolve("empty.test", &mut r, 0)).starts_with("550 5.1.2 "));
}

#[test]
fn mx_records_exclude_the_domains_own_addresses() {
    let mut r = StaticResolver::new()
        .with_mx("a.test", &[(10, "mx.a.test")])
        .with_a("a.test", &[v4(99)])
        .with_a("mx.a.test", &[v4(1)]);
    assert_eq!(
        hops(resolve("a.test", &mut r, 0)),
        vec![("mx.a.test".into(), sa(v4(1), 2525))]
    );
}

#[test]
fn a_null_mx_is_a_permanent_5_1_10_without_address_lookups() {
    let mut r = StaticResolver::new()
        .with_mx("null.test", &[(0, ".")])
        .with_a("null.test", &[v4(1)]);
    let reply = permanent(resolve("null.test", &mut r, 0));
    assert!(reply.starts_with("556 5.1.10 "), "{reply}");
    assert_eq!(r.lookups(), 1, "only the MX lookup");
    // A root exchange among other records is not a null MX: it is skipped.
    let mut r = StaticResolver::new()
        .with_mx("mixed.test", &[(0, "."), (10, "mx.mixed.test")])
        .with_a("mx.mixed.test", &[v4(3)]);
    assert_eq!(hops(resolve("mixed.test", &mut r, 0)).len(), 1);
}

#[test]
fn nxdomain_is_permanent_and_servfail_temporary() {
    let mut r = StaticResolver::new().with_failure("fail.test", RecordType::Mx);
    assert!(permanent(resolve("nowhere.test", &mut r, 0)).starts_with("550 5.1.2 "));
    assert!(temporary(resolve("fail.test", &mut r, 0)).starts_with("451 4.4.3 "));
}

#[test]
fn an_mx_host_without_addresses_is_skipped() {
    let mut r = StaticResolver::new()
        .with_mx("a.test", &[(10, "dead.a.test"), (20, "mx.a.test")])
        .with_a("mx.a.test", &[v4(2)]);
    assert_eq!(
        hops(resolve("a.test", &mut r, 0)),
        vec![("mx.a.test".into(), sa(v4(2), 2525))]
    );
    // None with addresses: permanent, unless a lookup failed temporarily.
    let mut r = StaticResolver::new().with_mx("b.test", &[(10, "dead.b.test")]);
    assert!(permanent(resolve("b.test", &mut r, 0)).starts_with("550 5.4.4 "));
    let mut r = StaticResolver::new()
        .with_mx("c.test", &[(10, "flaky.c.test")])
        .with_failure("flaky.c.test", RecordType::A);
    assert!(temporary(resolve("c.test", &mut r, 0)).starts_with("451 4.4.3 "));
}

#[test]
fn at_most_five_addresses_from_at_least_two_hosts() {
    let many: Vec<Ipv4Addr> = (1..=8).map(v4).collect();
    let mut r = StaticResolver::new()
        .with_mx("a.test", &[(10, "big.a.test"), (20, "small.a.test")])
        .with_a("big.a.test", &many)
        .with_a("small.a.test", &[v4(100)]);
    let got = hops(resolve("a.test", &mut r, 0));
    assert_eq!(got.len(), MAX_ADDRESSES);
    assert!(got[..4].iter().all(|(n, _)| n == "big.a.test"));
    assert_eq!(got[4], ("small.a.test".into(), sa(v4(100), 2525)));
    // One host alone may use every slot.
    let mut r = StaticResolver::new()
        .with_mx("one.test", &[(10, "big")])
        .with_a("big", &many);
    assert_eq!(hops(resolve("one.test", &mut r, 0)).len(), MAX_ADDRESSES);
    // Two hosts with one address each: both.
    let mut r = StaticResolver::new()
        .with_mx("two.test", &[(10, "x"), (20, "y")])
        .with_a("x", &[v4(1)])
        .with_a("y", &[v4(2)]);
    assert_eq!(hops(resolve("two.test", &mut r, 0)).len(), 2);
}

#[test]
fn an_mx_naming_this_host_drops_that_preference_and_worse() {
    let mut r = StaticResolver::new()
        .with_mx(
            "a.test",
            &[
                (10, "primary.a.test"),
                (20, "mx.self.test"),
                (20, "peer.a.test"),
                (30, "backup.a.test"),
            ],
        )
        .with_a("primary.a.test", &[v4(1)])
        .with_a("mx.self.test", &[v4(50)])
        .with_a("peer.a.test", &[v4(2)])
        .with_a("backup.a.test", &[v4(3)]);
    assert_eq!(
        hops(resolve("a.test", &mut r, 0)),
        vec![("primary.a.test".into(), sa(v4(1), 2525))]
    );
}

#[test]
fn an_mx_resolving_to_a_listen_address_is_a_loop_too() {
    let mut r = StaticResolver::new()
        .with_mx("a.test", &[(10, "alias.a.test")])
        .with_a("alias.a.test", &["198.51.100.1".parse().unwrap()]);
    let reply = permanent(resolve("a.test", &mut r, 0));
    assert!(reply.starts_with("554 5.4.6 "), "{reply}");
    // The implicit MX of a domain that is this host loops as well.
    let mut r = StaticResolver::new().with_a("self.test", &["198.51.100.1".parse().unwrap()]);
    assert!(permanent(resolve("self.test", &mut r, 0)).starts_with("554 5.4.6 "));
    // This host as the best MX: nothing left.
    let mut r = StaticResolver::new()
        .with_mx("b.test", &[(5, "mx.self.test"), (10, "other.b.test")])
        .with_a("mx.self.test", &[v4(1)])
        .with_a("other.b.test", &[v4(2)]);
    assert!(permanent(resolve("b.test", &mut r, 0)).starts_with("554 5.4.6 "));
}

#[test]
fn static_routes_resolve_names_through_a_and_aaaa_never_mx() {
    let route = Route::new(
        &["target.test", ".target.test"],
        &[
            "127.0.0.1:30025",
            "[::1]:30025",
            "mx.example.net",
            "gone.example.net",
        ],
        Some("verify"),
    )
    .unwrap();
    let table = RouteTable::new(vec![route], None);
    let mut r = StaticResolver::new()
        .with_mx("mx.example.net", &[(10, "wrong.example.net")])
        .with_a("mx.example.net", &[v4(7)]);
    let RouteOutcome::Hops(got) = resolve_domain("X.Target.Test", &table, &me(), &mut r, 0) else {
        panic!("no hops");
    };
    let got: Vec<(String, SocketAddr, TlsPolicy)> =
        got.into_iter().map(|h| (h.name, h.addr, h.tls)).collect();
    assert_eq!(
        got,
        vec![
            (
                "127.0.0.1".into(),
                "127.0.0.1:30025".parse().unwrap(),
                TlsPolicy::Verify
            ),
            (
                "::1".into(),
                "[::1]:30025".parse().unwrap(),
                TlsPolicy::Verify
            ),
            ("mx.example.net".into(), sa(v4(7), 25), TlsPolicy::Verify),
        ]
    );
    // A route whose hosts do not resolve defers (configuration, not the recipient's fault).
    let table = RouteTable::new(
        vec![Route::new(&["t.test"], &["gone.test"], None).unwrap()],
        None,
    );
    let outcome = resolve_domain("t.test", &table, &me(), &mut StaticResolver::new(), 0);
    assert!(temporary(outcome).starts_with("451 4.4.4 "));
}

#[test]
fn order_mx_is_deterministic_per_seed() {
    let recs = vec![
        MxRecord::new(1, "a"),
        MxRecord::new(1, "b"),
        MxRecord::new(0, "c"),
    ];
    assert_eq!(order_mx(recs.clone(), 3), order_mx(recs.clone(), 3));
    assert_eq!(order_mx(recs, 3)[0].exchange, "c");
    assert!(is_null_mx(&[MxRecord::new(0, ".")]));
    assert!(!is_null_mx(&[MxRecord::new(0, "."), MxRecord::new(1, "a")]));
    assert!(!is_null_mx(&[]));
}
