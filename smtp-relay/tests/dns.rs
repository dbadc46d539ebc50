//! The relay's DNS rules end to end (issue 11, Routing): domains without a static route go to
//! their MX as a loopback DNS responder (test-support's `dns`) answers, and the MX hosts'
//! addresses are two recording sinks on 127.0.0.1 and 127.0.0.2 at one port (`[relay] port`),
//! so a test sees which MX host got the mail. The system resolver is never asked.
//!
//! Proven here: MX by preference and the worse one when the better refuses connections, the
//! implicit MX on A, null MX and NXDOMAIN bounced (5.1.10, 5.1.2) without an attempt, SERVFAIL
//! and timeouts deferred with the reason recorded, an MX naming this host (5.4.6, and the
//! worse records dropped), answers cached for their TTL, a truncated answer fetched over TCP,
//! new nameservers taken at a reload.
#![allow(clippy::disallowed_methods)] // a test plays the clock and the peers

mod common;

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::time::Duration;

use common::{commit, first_deferred, state, until, WAIT};
use impulse_test_support::dns::{Behaviour, DnsServer, RecordType};
use impulse_test_support::sink::{Received, Sink};
use smtp_relay::driver::{Relay, RelaySettings};
use smtp_relay::route::{LocalHost, RouteTable};
use smtp_relay::Status;
use smtp_spool::Spool;

const FIRST: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const SECOND: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// Nothing listens here: connections are refused.
const DEAD: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
/// An address this host listens on (as `LocalHost` is told).
const SELF: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 9);

/// A responder, two sinks on one port, a spool.
struct World {
    dns: DnsServer,
    first: Sink,
    second: Sink,
    port: u16,
    spool: Spool,
    _dir: tempfile::TempDir,
}

/// Two sinks on 127.0.0.1 and 127.0.0.2 with the same port.
fn sinks() -> (Sink, Sink, u16) {
    for _ in 0..50 {
        let one = TcpListener::bind((FIRST, 0)).unwrap();
        let port = one.local_addr().unwrap().port();
        if let Ok(two) = TcpListener::bind((SECOND, port)) {
            return (Sink::on(one, |_| None), Sink::on(two, |_| None), port);
        }
    }
    panic!("no port free on both 127.0.0.1 and 127.0.0.2");
}

fn world() -> World {
    let (first, second, port) = sinks();
    let dns = DnsServer::start();
    // The senders' domain, where notifications go: the first sink.
    dns.mx("sender.test", 300, &[(10, "mx.sender.test")])
        .a("mx.sender.test", 300, &[FIRST]);
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    World {
        dns,
        first,
        second,
        port,
        spool,
        _dir: dir,
    }
}

impl World {
    /// A relay with no static route, asking only the responder, `relay.test` on `SELF`.
    fn relay(&self) -> Relay {
        Relay::start(self.spool.clone(), self.settings()).unwrap()
    }

    /// The settings of [`relay`](World::relay).
    fn settings(&self) -> RelaySettings {
        let routes = RouteTable::new(Vec::new(), Some(self.port));
        let mut s = RelaySettings::new(routes, "relay.test");
        s.nameservers = vec![self.dns.addr];
        s.dns_timeout = Duration::from_millis(300);
        s.local = LocalHost::new(&["relay.test"], &[IpAddr::V4(SELF)]);
        s.schedule.retry.intervals = vec![Duration::from_secs(3600)];
        s.shutdown_grace = Duration::from_secs(2);
        s
    }

    fn send(&self, to: &str) -> smtp_spool::QueueId {
        let body = format!("Subject: to {to}\r\nMessage-ID: <{to}>\r\n\r\nhello\r\n");
        commit(&self.spool, "a@sender.test", &[to], &body)
    }

    fn drained(&self) -> bool {
        common::drained(&self.spool)
    }
}

/// The notification among `got` that reports on `rcpt`.
fn notification<'a>(got: &'a [Received], rcpt: &str) -> &'a Received {
    let line = format!("Final-Recipient: rfc822; {rcpt}");
    got.iter()
        .find(|m| m.from.is_empty() && m.data.contains(&line))
        .unwrap_or_else(|| panic!("no notification about {rcpt} in {got:#?}"))
}

fn assert_bounced(n: &Received, status: &str) {
    assert_eq!(n.to, vec!["a@sender.test"], "to the envelope sender");
    for want in ["Action: failed", &format!("Status: {status}")] {
        assert!(n.data.contains(want), "{want:?} missing from\n{}", n.data);
    }
}

#[test]
fn mx_hosts_are_tried_by_preference_and_the_worse_one_when_the_better_refuses() {
    let w = world();
    // Listed worse first: the order is the relay's to make.
    w.dns
        .mx(
            "pref.test",
            300,
            &[(20, "mx-b.pref.test"), (10, "mx-a.pref.test")],
        )
        .a("mx-a.pref.test", 300, &[FIRST])
        .a("mx-b.pref.test", 300, &[SECOND]);
    w.dns
        .mx(
            "down.test",
            300,
            &[(20, "mx-b.down.test"), (10, "mx-dead.down.test")],
        )
        .a("mx-dead.down.test", 300, &[DEAD])
        .a("mx-b.down.test", 300, &[SECOND]);
    let relay = w.relay();
    w.send("u@pref.test");
    let got = w.first.wait_for(1, WAIT);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].to, vec!["u@pref.test"], "the preference-10 host");
    w.send("u@down.test");
    let got = w.second.wait_for(1, WAIT);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got[0].to,
        vec!["u@down.test"],
        "the preference-20 host, the 10 refusing connections"
    );
    assert_eq!(
        w.dns.queries("mx-dead.down.test", RecordType::A),
        1,
        "the better host was a candidate"
    );
    assert!(w.drained());
    assert_eq!(
        w.first.messages().len(),
        1,
        "nothing else went to the first"
    );
    relay.shutdown();
}

#[test]
fn a_domain_without_mx_is_delivered_to_its_own_address() {
    let w = world();
    w.dns.a("implicit.test", 300, &[SECOND]);
    let relay = w.relay();
    w.send("u@implicit.test");
    let got = w.second.wait_for(1, WAIT);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].to, vec!["u@implicit.test"]);
    assert!(w.drained());
    assert_eq!(w.dns.queries("implicit.test", RecordType::MX), 1);
    assert_eq!(w.dns.queries("implicit.test", RecordType::A), 1);
    relay.shutdown();
}

#[test]
fn a_null_mx_bounces_5_1_10_without_an_attempt() {
    let w = world();
    w.dns
        .mx("nullmx.test", 300, &[(0, ".")])
        .a("nullmx.test", 300, &[SECOND]);
    let relay = w.relay();
    w.send("u@nullmx.test");
    let got = w.first.wait_for(1, WAIT);
    assert_bounced(notification(&got, "u@nullmx.test"), "5.1.10");
    assert!(w.drained());
    assert_eq!(got.len(), 1, "only the notification: {got:?}");
    assert_eq!(
        w.second
            .connections
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    assert_eq!(
        w.dns.queries("nullmx.test", RecordType::A),
        0,
        "no implicit MX behind a null MX"
    );
    relay.shutdown();
}

#[test]
fn a_domain_that_does_not_exist_bounces_5_1_2() {
    let w = world();
    w.dns
        .a("gone.test", 300, &[SECOND])
        .behave("gone.test", Behaviour::NxDomain);
    let relay = w.relay();
    w.send("u@nowhere.test");
    w.send("u@gone.test");
    let got = w.first.wait_for(2, WAIT);
    assert_bounced(notification(&got, "u@nowhere.test"), "5.1.2");
    assert_bounced(notification(&got, "u@gone.test"), "5.1.2");
    assert!(w.drained());
    assert_eq!(
        w.second
            .connections
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    relay.shutdown();
}

#[test]
fn servfail_and_timeouts_defer_with_the_reason_recorded() {
    let w = world();
    w.dns
        .mx("broken.test", 300, &[(10, "mx.broken.test")])
        .behave("broken.test", Behaviour::ServFail);
    w.dns
        .mx("quiet.test", 300, &[(10, "mx.quiet.test")])
        .behave("quiet.test", Behaviour::Silent);
    // The MX answers, its host's address does not come.
    w.dns
        .mx("hostfail.test", 300, &[(10, "mx.hostfail.test")])
        .behave("mx.hostfail.test", Behaviour::ServFail);
    let relay = w.relay();
    let id = commit(
        &w.spool,
        "a@sender.test",
        &["u@broken.test", "u@quiet.test", "u@hostfail.test"],
        "Subject: later\r\n\r\nx\r\n",
    );
    let deferred = until(WAIT, || {
        state(&w.spool, id)
            .is_some_and(|s| s.recipients.iter().all(|r| r.status == Status::Deferred))
    });
    let s = state(&w.spool, id);
    assert!(deferred, "{s:?}");
    let s = s.unwrap();
    for (r, why) in s
        .recipients
        .iter()
        .zip(["SERVFAIL", "timed out", "SERVFAIL"])
    {
        assert!(
            r.last_reply.starts_with("451 4.4.3") && r.last_reply.contains(why),
            "{}: {:?}",
            r.address,
            r.last_reply
        );
        assert!(r.next_attempt > s.arrival, "{r:?}");
    }
    assert!(s.recipients[0].last_reply.contains("broken.test"));
    assert!(s.recipients[1].last_reply.contains("quiet.test"));
    assert!(s.recipients[2].last_reply.contains("mx.hostfail.test"));
    relay.shutdown();
    assert_eq!(w.spool.list().unwrap().len(), 1, "the message waits");
    assert!(
        w.first.messages().is_empty(),
        "no notification for a deferral"
    );
    assert!(w.second.messages().is_empty());
}

#[test]
fn an_mx_naming_this_host_bounces_5_4_6_and_drops_the_worse_records() {
    let w = world();
    w.dns.mx("loop.test", 300, &[(10, "RELAY.test")]);
    w.dns
        .mx("loopaddr.test", 300, &[(10, "mx.loopaddr.test")])
        .a("mx.loopaddr.test", 300, &[SELF]);
    // The better MX is another host: it gets the mail, this host's record is dropped.
    w.dns
        .mx(
            "backup.test",
            300,
            &[(20, "relay.test"), (10, "mx.backup.test")],
        )
        .a("mx.backup.test", 300, &[SECOND]);
    let relay = w.relay();
    w.send("u@loop.test");
    w.send("u@loopaddr.test");
    w.send("u@backup.test");
    let got = w.first.wait_for(2, WAIT);
    assert_bounced(notification(&got, "u@loop.test"), "5.4.6");
    assert_bounced(notification(&got, "u@loopaddr.test"), "5.4.6");
    let delivered = w.second.wait_for(1, WAIT);
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(delivered[0].to, vec!["u@backup.test"]);
    assert!(w.drained());
    relay.shutdown();
}

#[test]
fn answers_are_cached_for_their_ttl() {
    let w = world();
    w.dns
        .mx("cached.test", 300, &[(10, "mx.cached.test")])
        .a("mx.cached.test", 300, &[SECOND]);
    // TTL 0: never kept, asked again for every message.
    w.dns
        .mx("fresh.test", 0, &[(10, "mx.fresh.test")])
        .a("mx.fresh.test", 0, &[SECOND]);
    let relay = w.relay();
    for n in 1..=2 {
        w.send("u@cached.test");
        w.send("u@fresh.test");
        assert_eq!(w.second.wait_for(2 * n, WAIT).len(), 2 * n);
        assert!(w.drained());
    }
    let ask = |name, t| w.dns.queries(name, t);
    assert_eq!(ask("cached.test", RecordType::MX), 1, "within its TTL");
    assert_eq!(ask("mx.cached.test", RecordType::A), 1, "within its TTL");
    assert_eq!(
        ask("mx.cached.test", RecordType::AAAA),
        1,
        "NODATA is kept too"
    );
    assert_eq!(ask("fresh.test", RecordType::MX), 2, "TTL 0");
    assert_eq!(ask("mx.fresh.test", RecordType::A), 2, "TTL 0");
    relay.shutdown();
}

#[test]
fn a_truncated_answer_is_fetched_over_tcp() {
    let w = world();
    w.dns
        .mx("big.test", 300, &[(10, "mx.big.test")])
        .a("mx.big.test", 300, &[SECOND])
        .behave("big.test", Behaviour::TruncatedOverUdp);
    let relay = w.relay();
    w.send("u@big.test");
    let got = w.second.wait_for(1, WAIT);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].to, vec!["u@big.test"]);
    assert_eq!(w.dns.tcp_queries("big.test", RecordType::MX), 1);
    assert!(w.drained());
    relay.shutdown();
}

#[test]
fn a_reload_moves_route_lookups_to_new_nameservers() {
    let w = world();
    w.dns
        .mx("moved.test", 300, &[(10, "mx.moved.test")])
        .a("mx.moved.test", 300, &[SECOND]);
    // At first the relay asks a nameserver that never answers: the message defers.
    let silent = std::net::UdpSocket::bind((FIRST, 0)).unwrap();
    let mut settings = w.settings();
    settings.nameservers = vec![silent.local_addr().unwrap()];
    let relay = Relay::start(w.spool.clone(), settings).unwrap();
    let id = w.send("u@moved.test");
    first_deferred(&w.spool, id);
    // A reload names the responder: the next attempt asks it, with no stale answer kept.
    relay.reload(w.settings());
    use smtp_relay::driver::Command;
    use smtp_relay::schedule::Selection;
    assert_eq!(relay.command(Command::Flush(Selection::All)), Some(1));
    assert!(w.drained(), "{:?}", state(&w.spool, id));
    assert_eq!(
        w.second.messages().len(),
        1,
        "delivered to the MX the responder names"
    );
    assert_eq!(w.dns.queries("moved.test", RecordType::MX), 1);
    relay.shutdown();
}
