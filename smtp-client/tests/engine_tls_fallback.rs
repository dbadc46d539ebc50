//! RFC 7435 through the mio engine over real sockets: under opportunistic TLS a STARTTLS
//! handshake that fails (garbage from the server, a TLS alert, a close) is followed by a
//! second connection to the same next hop that goes on in plaintext without STARTTLS, and
//! the messages are delivered with no failed set-up counted; under required TLS the same
//! failure defers the messages and nothing is sent in plaintext.
// Socket tests run real peers on threads and wait on the real clock.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::Duration;

use impulse_test_support::tls::{certs, FakeServer, Script};
use smtp_client::driver::engine::{Delivery, Destination, Engine, EngineBuilder, NextHop};
use smtp_client::{Message, OutcomeKind, SessionConfig, TlsMode};

/// Not TLS at all: what a server that does not really speak TLS might send.
const GARBAGE: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\r\n";
/// A TLS 1.2 record: a fatal `handshake_failure` alert.
const ALERT: &[u8] = &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28];

fn builder(addr: SocketAddr, mode: TlsMode) -> EngineBuilder {
    let mut session = SessionConfig::new("client.test");
    session.policy.tls = mode;
    session.policy.command_retries = 0;
    // One set-up failure would be enough to defer: the fallback must not count as one.
    Engine::builder(addr)
        .connections(1)
        .attempts(1)
        .session(session)
        .connect_timeout(Duration::from_secs(5))
}

fn body(n: usize) -> Vec<u8> {
    format!("Subject: fallback {n}\r\n\r\nmessage {n}\r\n").into_bytes()
}

/// Submits `n` messages (to `destination`, else the builder's), and returns the deliveries
/// in ticket order with the engine's counters.
fn run(
    engine: Engine,
    destination: Option<Destination>,
    n: usize,
) -> (Vec<Delivery>, smtp_client::Stats) {
    let rx = engine.deliveries();
    for i in 0..n {
        let m = Message::new("a@x.test", ["b@y.test"], body(i));
        match &destination {
            Some(d) => engine.submit_to(d.clone(), m).unwrap(),
            None => engine.submit(m).unwrap(),
        };
    }
    let mut out: Vec<Delivery> = (0..n)
        .map(|_| {
            rx.recv_timeout(Duration::from_secs(30))
                .expect("a delivery for every message")
        })
        .collect();
    let stats = engine.stats();
    engine.shutdown();
    assert!(rx.try_recv().is_err(), "one delivery per message");
    out.sort_by_key(|d| d.ticket);
    (out, stats)
}

#[test]
fn a_failed_opportunistic_handshake_goes_on_in_plaintext_on_the_same_next_hop() {
    let certs = certs();
    for (what, bytes, own_destination) in [
        ("garbage", GARBAGE, false),
        ("an alert", ALERT, true),
        ("a close", &[][..], false),
    ] {
        let server =
            FakeServer::start_many(Script::FailHandshake(bytes), certs.server_config.clone(), 2);
        let hop = NextHop::named(server.addr, "localhost");
        let (engine, destination) = if own_destination {
            // A destination of its own asks for opportunistic TLS; the builder's has none.
            let d = Destination::new([hop.clone()]).tls(TlsMode::Opportunistic);
            (builder(server.addr, TlsMode::Disabled), Some(d))
        } else {
            (builder(server.addr, TlsMode::Opportunistic), None)
        };
        let (deliveries, stats) = run(engine.build().unwrap(), destination, 2);
        for d in &deliveries {
            assert!(d.is_delivered(), "{what}: {:?}", d.outcomes);
            assert_eq!(d.attempts, 1, "{what}");
            assert_eq!(d.next_hop.as_ref().map(|h| h.addr), Some(hop.addr));
        }
        assert_eq!(stats.connections_opened, 2, "{what}: {stats:?}");
        assert_eq!(stats.connections_failed, 0, "{what}: no failed set-up");
        let records = server.finish_all();
        assert_eq!(records.len(), 2);
        assert_eq!(
            records[0].plain_text(),
            "EHLO client.test\r\nSTARTTLS\r\n",
            "{what}: nothing after the failed handshake"
        );
        assert!(records[0].messages.is_empty() && records[0].tls.is_empty());
        let plain = records[1].plain_text();
        assert!(
            plain.starts_with("EHLO client.test\r\nMAIL FROM:<a@x.test>"),
            "{what}: {plain}"
        );
        assert!(
            !plain.contains("STARTTLS"),
            "{what}: not STARTTLS again: {plain}"
        );
        assert!(plain.ends_with("QUIT\r\n"), "{what}: {plain}");
        assert_eq!(records[1].messages, [body(0), body(1)], "{what}");
    }
}

#[test]
fn a_failed_handshake_under_required_tls_defers_and_sends_nothing_in_plaintext() {
    let certs = certs();
    let server = FakeServer::start_many(
        Script::FailHandshake(GARBAGE),
        certs.server_config.clone(),
        2,
    );
    let engine = builder(server.addr, TlsMode::Required)
        .attempts(2)
        .build()
        .unwrap();
    let (deliveries, stats) = run(engine, None, 2);
    for d in &deliveries {
        assert_eq!(d.attempts, 0, "never given to a connection");
        assert!(!d.dsn_offered);
        let o = &d.outcomes[0];
        assert_eq!(o.kind, OutcomeKind::Deferred, "{o:?}");
        assert_eq!(o.reply.code(), 451, "{o:?}");
        assert_eq!(o.reply.status().unwrap().to_string(), "4.7.5", "{o:?}");
    }
    assert_eq!(stats.connections_opened, 2, "{stats:?}");
    assert_eq!(stats.connections_failed, 2, "{stats:?}");
    for record in server.finish_all() {
        assert_eq!(record.plain_text(), "EHLO client.test\r\nSTARTTLS\r\n");
        assert!(record.messages.is_empty());
    }
}
