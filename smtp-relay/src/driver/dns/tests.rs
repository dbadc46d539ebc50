//! The stub resolver against resolv.conf text, and against a real DNS responder on loopback
//! (test-support's `dns`): records and TTLs, NXDOMAIN and NODATA, failures and the next
//! nameserver, TCP after truncation, query ids, and forged answers that must be ignored.
#![allow(clippy::disallowed_methods)] // a test measures how long a lookup took

use std::time::Instant;

use impulse_test_support::dns::{
    Behaviour, DnsServer, Forgery, RecordType, FORGED_A, FORGED_AAAA, FORGED_MX,
};

use super::*;

const TIMEOUT: Duration = Duration::from_millis(300);

fn resolver(servers: &[&DnsServer]) -> StubResolver {
    StubResolver::new(servers.iter().map(|s| s.addr).collect(), TIMEOUT)
}

fn records<T>(lookup: Lookup<T>) -> Vec<Record<T>> {
    match lookup {
        Lookup::Records(r) => r,
        other => panic!("expected records, got {:?}", other.ttl(Duration::ZERO)),
    }
}

#[test]
fn resolv_conf_nameservers_are_read_in_order() {
    let text = "# comment\nsearch example\nnameserver 127.0.0.53\nnameserver ::1\n\
                nameserver fe80::1%eth0\nnameserver bogus\noptions edns0\n";
    let got = parse_resolv_conf(text);
    assert_eq!(
        got,
        vec![
            "127.0.0.53:53".parse().unwrap(),
            "[::1]:53".parse().unwrap(),
            "[fe80::1]:53".parse().unwrap()
        ]
    );
}

#[test]
fn no_nameserver_is_a_temporary_failure_not_a_missing_domain() {
    let mut r = StubResolver::new(Vec::new(), Duration::from_secs(1));
    assert!(matches!(r.mx("example.test"), Lookup::TempFail(_)));
}

#[test]
fn a_silent_nameserver_times_out_as_a_temporary_failure() {
    // A bound socket that never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let mut r = StubResolver::new(vec![addr], Duration::from_millis(100));
    match r.a("example.test") {
        Lookup::TempFail(e) => assert!(e.contains("timed out"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn records_come_back_with_their_ttls() {
    let dns = DnsServer::start();
    dns.mx("d.test", 600, &[(20, "mx2.d.test"), (10, "MX1.d.test.")])
        .a("mx1.d.test", 60, &[Ipv4Addr::new(127, 0, 0, 2)])
        .aaaa("mx1.d.test", 30, &["::1".parse().unwrap()])
        .mx("null.test", 300, &[(0, ".")]);
    let mut r = resolver(&[&dns]);
    let mx = records(r.mx("d.test"));
    let got: Vec<_> = mx.iter().map(|m| (m.value.clone(), m.ttl)).collect();
    assert_eq!(
        got,
        vec![
            (MxRecord::new(20, "mx2.d.test"), Duration::from_secs(600)),
            (MxRecord::new(10, "MX1.d.test"), Duration::from_secs(600)),
        ],
        "in answer order (sorting is routing's), names as answered without the root dot"
    );
    let a = records(r.a("mx1.d.test"));
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].value, Ipv4Addr::new(127, 0, 0, 2));
    assert_eq!(a[0].ttl, Duration::from_secs(60));
    let aaaa = records(r.aaaa("mx1.d.test"));
    assert_eq!(aaaa[0].value, Ipv6Addr::LOCALHOST);
    assert_eq!(aaaa[0].ttl, Duration::from_secs(30));
    let null = records(r.mx("null.test"));
    assert!(
        crate::route::mx::is_null_mx(&[null[0].value.clone()]),
        "{null:?}"
    );
    assert_eq!(r.queries, 4);
    assert_eq!(dns.queries("d.test", RecordType::MX), 1);
}

#[test]
fn nxdomain_and_nodata_are_answers_not_failures() {
    let dns = DnsServer::start();
    dns.a("host.test", 60, &[Ipv4Addr::LOCALHOST])
        .a("gone.test", 60, &[Ipv4Addr::LOCALHOST])
        .behave("gone.test", Behaviour::NxDomain);
    let mut r = resolver(&[&dns]);
    assert_eq!(r.mx("host.test"), Lookup::Records(vec![]), "NODATA");
    assert_eq!(r.aaaa("host.test"), Lookup::Records(vec![]), "NODATA");
    assert_eq!(r.mx("gone.test"), Lookup::NxDomain);
    assert_eq!(r.a("unknown.test"), Lookup::NxDomain);
}

#[test]
fn servfail_and_silence_are_temporary_and_the_next_nameserver_is_asked() {
    let broken = DnsServer::start();
    broken
        .behave("d.test", Behaviour::ServFail)
        .behave("quiet.test", Behaviour::Silent);
    let good = DnsServer::start();
    good.a("d.test", 60, &[Ipv4Addr::new(127, 0, 0, 2)]).a(
        "quiet.test",
        60,
        &[Ipv4Addr::new(127, 0, 0, 3)],
    );
    let mut alone = resolver(&[&broken]);
    match alone.a("d.test") {
        Lookup::TempFail(e) => assert!(e.contains("SERVFAIL"), "{e}"),
        other => panic!("{other:?}"),
    }
    let start = Instant::now();
    match alone.a("quiet.test") {
        Lookup::TempFail(e) => assert!(e.contains("timed out"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(start.elapsed() < TIMEOUT * 3, "{:?}", start.elapsed());
    let mut both = resolver(&[&broken, &good]);
    assert_eq!(
        records(both.a("d.test"))[0].value,
        Ipv4Addr::new(127, 0, 0, 2)
    );
    assert_eq!(
        records(both.a("quiet.test"))[0].value,
        Ipv4Addr::new(127, 0, 0, 3)
    );
    assert_eq!(broken.queries("quiet.test", RecordType::A), 2);
    assert_eq!(good.queries("quiet.test", RecordType::A), 1);
}

#[test]
fn a_closed_port_fails_at_once_and_the_next_nameserver_answers() {
    let closed = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let good = DnsServer::start();
    good.a("d.test", 60, &[Ipv4Addr::new(127, 0, 0, 2)]);
    let mut r = StubResolver::new(vec![closed, good.addr], Duration::from_secs(5));
    let start = Instant::now();
    assert_eq!(records(r.a("d.test"))[0].value, Ipv4Addr::new(127, 0, 0, 2));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "the ICMP refusal ends the wait: {:?}",
        start.elapsed()
    );
    assert_eq!(r.queries, 2);
}

#[test]
fn a_truncated_answer_is_asked_again_over_tcp() {
    let dns = DnsServer::start();
    dns.mx("big.test", 300, &[(10, "mx.big.test")])
        .behave("big.test", Behaviour::TruncatedOverUdp);
    // Forty addresses do not fit in 512 bytes: the responder truncates on its own.
    let many: Vec<Ipv4Addr> = (1..=40).map(|i| Ipv4Addr::new(127, 0, 1, i)).collect();
    dns.a("many.test", 300, &many);
    let mut r = resolver(&[&dns]);
    let mx = records(r.mx("big.test"));
    assert_eq!(mx[0].value, MxRecord::new(10, "mx.big.test"));
    assert_eq!(dns.queries("big.test", RecordType::MX), 2, "UDP, then TCP");
    assert_eq!(dns.tcp_queries("big.test", RecordType::MX), 1);
    assert_eq!(records(r.a("many.test")).len(), 40);
    assert_eq!(dns.tcp_queries("many.test", RecordType::A), 1);
}

#[test]
fn every_query_has_its_own_id() {
    let dns = DnsServer::start();
    dns.a("host.test", 60, &[Ipv4Addr::LOCALHOST]);
    let mut r = resolver(&[&dns]);
    for _ in 0..32 {
        records(r.a("host.test"));
    }
    let mut ids: Vec<u16> = dns.seen().iter().map(|s| s.id).collect();
    assert_eq!(ids.len(), 32);
    ids.sort_unstable();
    ids.dedup();
    assert!(ids.len() >= 28, "ids repeat: {ids:?}");
}

#[test]
fn forged_answers_are_ignored_and_the_true_one_is_taken() {
    let dns = DnsServer::start();
    for (name, forgery) in [
        ("id.test", Forgery::WrongId),
        ("question.test", Forgery::WrongQuestion),
        ("query.test", Forgery::NotAResponse),
    ] {
        dns.a(name, 60, &[Ipv4Addr::new(127, 0, 0, 2)])
            .aaaa(name, 60, &[Ipv6Addr::LOCALHOST])
            .mx(name, 60, &[(10, "mx.true.test")])
            .behave(name, Behaviour::ForgedFirst(forgery));
    }
    let mut r = resolver(&[&dns]);
    for name in ["id.test", "question.test", "query.test"] {
        let a = records(r.a(name));
        assert_eq!(a.len(), 1, "{name}: {a:?}");
        assert_ne!(a[0].value, FORGED_A, "{name}");
        let aaaa = records(r.aaaa(name));
        assert_eq!(aaaa.len(), 1, "{name}: {aaaa:?}");
        assert_ne!(aaaa[0].value, FORGED_AAAA, "{name}");
        let mx = records(r.mx(name));
        assert_eq!(
            mx,
            vec![Record {
                value: MxRecord::new(10, "mx.true.test"),
                ttl: Duration::from_secs(60)
            }]
        );
        assert!(mx.iter().all(|m| m.value.exchange != FORGED_MX));
    }
}

#[test]
fn a_flood_of_forged_answers_does_not_stretch_the_timeout() {
    let dns = DnsServer::start();
    dns.behave(
        "flood.test",
        Behaviour::ForgedFlood {
            count: 60,
            every: Duration::from_millis(50),
        },
    );
    let mut r = resolver(&[&dns]);
    let start = Instant::now();
    match r.a("flood.test") {
        Lookup::TempFail(e) => assert!(e.contains("timed out"), "{e}"),
        other => panic!("{other:?}"),
    }
    let took = start.elapsed();
    // The flood lasts 3 s; the timeout is 0.3 s (the margin is for a loaded machine).
    assert!(
        took < TIMEOUT * 5,
        "a forged datagram restarted the wait: {took:?}"
    );
}

#[test]
fn ttls_are_capped_and_the_top_bit_counts_as_zero() {
    assert_eq!(ttl(300), Duration::from_secs(300));
    assert_eq!(ttl(2_000_000_000), MAX_TTL);
    assert_eq!(ttl(0x8000_0001), Duration::ZERO, "RFC 2181 §8");
    let dns = DnsServer::start();
    dns.a("long.test", 2_000_000_000, &[Ipv4Addr::new(127, 0, 0, 3)]);
    let mut r = resolver(&[&dns]);
    assert_eq!(records(r.a("long.test"))[0].ttl, MAX_TTL);
}

#[test]
fn an_answer_trickled_over_tcp_cannot_stretch_the_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        // The length says 64 bytes; they come one every 100 ms.
        let _ = s.write_all(&64u16.to_be_bytes());
        for _ in 0..64 {
            std::thread::sleep(Duration::from_millis(100));
            if s.write_all(b"x").is_err() {
                return;
            }
        }
    });
    let mut tcp = TcpStream::connect(addr).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let left = || time_left(deadline);
    let start = Instant::now();
    let mut len = [0u8; 2];
    read_within(&mut tcp, &mut len, &left).unwrap();
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    let err = read_within(&mut tcp, &mut body, &left).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(start.elapsed() < TIMEOUT * 3, "{:?}", start.elapsed());
}
