//! STARTTLS through the mio engine over real sockets, against the scripted rustls server of
//! `impulse_test_support::tls`: several messages over one reused TLS connection (DATA and BDAT) delivered
//! byte-exact, required TLS against a server without STARTTLS, a response injection after
//! the `220`, and a certificate that does not verify.
// Socket tests run real peers on threads and wait on the real clock.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::Duration;

use impulse_test_support::tls::{certs, FakeServer, Script};
use smtp_client::driver::engine::{Delivery, Destination, Engine, EngineBuilder, NextHop};
use smtp_client::driver::tls::TlsOptions;
use smtp_client::{Message, OutcomeKind, SessionConfig, TlsMode};

fn builder(addr: SocketAddr, mode: TlsMode) -> EngineBuilder {
    let mut session = SessionConfig::new("client.test");
    session.policy.tls = mode;
    session.policy.command_retries = 0;
    Engine::builder(addr)
        .connections(1)
        .session(session)
        .connect_timeout(Duration::from_secs(5))
}

fn body(n: usize) -> Vec<u8> {
    format!("Subject: engine over TLS {n}\r\n\r\n.a line starting with a dot\r\nmessage {n}\r\n")
        .into_bytes()
}

/// Submits `n` messages, shuts the engine down, and returns the deliveries in ticket order.
fn run(engine: Engine, n: usize) -> Vec<Delivery> {
    let rx = engine.deliveries();
    for i in 0..n {
        engine
            .submit(Message::new("a@x.test", ["b@y.test", "c@y.test"], body(i)))
            .unwrap();
    }
    let mut out: Vec<Delivery> = (0..n)
        .map(|_| {
            rx.recv_timeout(Duration::from_secs(30))
                .expect("a delivery for every message")
        })
        .collect();
    engine.shutdown();
    assert!(rx.try_recv().is_err(), "one delivery per message");
    out.sort_by_key(|d| d.ticket);
    out
}

#[test]
fn several_messages_over_one_verified_tls_connection_byte_exact() {
    let certs = certs();
    for chunking in [false, true] {
        let server = FakeServer::start(Script::Normal, certs.server_config.clone());
        let mut b = builder(server.addr, TlsMode::Required).tls(TlsOptions {
            ca_file: Some(certs.ca_file.clone()),
            server_name: Some("localhost".into()),
            ..TlsOptions::default()
        });
        if chunking {
            let mut session = SessionConfig::new("client.test");
            session.policy.tls = TlsMode::Required;
            session.policy.chunking = true;
            session.policy.chunk_size = 16;
            b = b.session(session);
        }
        let engine = b.build().unwrap();
        let deliveries = run(engine, 3);
        for d in &deliveries {
            assert!(d.is_delivered(), "{:?}", d.outcomes);
            assert_eq!(d.attempts, 1);
            let queued = if chunking { "BDAT1" } else { "DATA1" };
            assert!(d.outcomes[0].reply.text().contains(queued));
        }
        let record = server.finish();
        assert_eq!(record.handshake_error, None);
        assert_eq!(record.sni.as_deref(), Some("localhost"));
        assert_eq!(
            record.plain_text(),
            "EHLO client.test\r\nSTARTTLS\r\n",
            "nothing but EHLO and STARTTLS in plaintext"
        );
        assert_eq!(record.messages, [body(0), body(1), body(2)]);
        let tls = record.tls_text();
        assert!(
            tls.starts_with("EHLO client.test\r\nMAIL FROM:<a@x.test>"),
            "{tls}"
        );
        assert_eq!(tls.matches("MAIL FROM:").count(), 3, "{tls}");
        assert!(tls.ends_with("QUIT\r\n"), "{tls}");
        assert_eq!(tls.contains("BDAT "), chunking, "{tls}");
    }
}

#[test]
fn required_tls_without_starttls_defers_every_message_and_sends_none() {
    let certs = certs();
    let server = FakeServer::start_many(Script::NoStartTls, certs.server_config.clone(), 2);
    let engine = builder(server.addr, TlsMode::Required)
        .attempts(2)
        .build()
        .unwrap();
    let deliveries = run(engine, 3);
    for d in &deliveries {
        assert_eq!(d.attempts, 0, "never given to a connection");
        for o in &d.outcomes {
            assert_eq!(o.kind, OutcomeKind::Deferred, "{o:?}");
            assert_eq!(o.reply.code(), 454, "{o:?}");
        }
    }
    for record in server.finish_all() {
        assert_eq!(record.plain_text(), "EHLO client.test\r\nQUIT\r\n");
        assert!(record.messages.is_empty());
    }
}

#[test]
fn bytes_after_the_starttls_220_defer_the_messages_with_nothing_sent_after_starttls() {
    let certs = certs();
    let server = FakeServer::start_many(Script::InjectAfter220, certs.server_config.clone(), 2);
    let engine = builder(server.addr, TlsMode::Opportunistic)
        .attempts(2)
        .build()
        .unwrap();
    let rx = engine.deliveries();
    for i in 0..2 {
        engine
            .submit(Message::new("a@x.test", ["b@y.test"], body(i)))
            .unwrap();
    }
    for _ in 0..2 {
        let d = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(d.outcomes[0].kind, OutcomeKind::Deferred);
        assert!(
            d.outcomes[0].reply.text().contains("response injection"),
            "{:?}",
            d.outcomes[0]
        );
    }
    let stats = engine.stats();
    assert_eq!(stats.connections_opened, 2);
    assert_eq!(stats.connections_failed, 2);
    engine.shutdown();
    for record in server.finish_all() {
        assert_eq!(
            record.plain_text(),
            "EHLO client.test\r\nSTARTTLS\r\n",
            "nothing after STARTTLS: no handshake, no QUIT"
        );
        assert!(record.tls.is_empty());
    }
}

#[test]
fn a_certificate_that_does_not_verify_defers_with_the_tls_error() {
    let certs = certs();
    // Required TLS checks against the Mozilla roots, which do not know the test CA.
    let server = FakeServer::start(Script::Normal, certs.server_config.clone());
    let engine = builder(server.addr, TlsMode::Required)
        .attempts(1)
        .build()
        .unwrap();
    let deliveries = run(engine, 2);
    for d in &deliveries {
        for o in &d.outcomes {
            assert_eq!(o.kind, OutcomeKind::Deferred, "{o:?}");
            assert_eq!(o.reply.code(), 451);
            assert_eq!(o.reply.status().unwrap().to_string(), "4.7.5");
            assert!(o.reply.text().contains("UnknownIssuer"), "{o:?}");
        }
    }
    let record = server.finish();
    assert!(record.handshake_error.is_some());
    assert!(record.tls.is_empty());
    assert!(record.messages.is_empty());
}

#[test]
fn opportunistic_tls_is_the_default_verification_and_an_unusable_ca_file_fails_build() {
    let certs = certs();
    // Opportunistic: encrypted without checking the (unknown) issuer.
    let server = FakeServer::start(Script::Normal, certs.server_config.clone());
    let engine = builder(server.addr, TlsMode::Opportunistic)
        .build()
        .unwrap();
    let deliveries = run(engine, 1);
    assert!(deliveries[0].is_delivered(), "{:?}", deliveries[0].outcomes);
    let record = server.finish();
    assert_eq!(record.messages, [body(0)]);
    assert!(record.tls_text().starts_with("EHLO client.test\r\n"));

    let err = builder(server_addr(), TlsMode::Required)
        .tls(TlsOptions {
            ca_file: Some(certs.dir.path().join("missing.pem")),
            ..TlsOptions::default()
        })
        .build()
        .unwrap_err();
    assert!(matches!(err, smtp_client::Error::Tls(_)), "{err}");
}

fn server_addr() -> SocketAddr {
    "127.0.0.1:9".parse().unwrap()
}

#[test]
fn a_large_message_under_tls_goes_out_through_a_full_socket_byte_exact() {
    let certs = certs();
    let server = FakeServer::start(Script::Normal, certs.server_config.clone());
    let engine = builder(server.addr, TlsMode::Opportunistic)
        .build()
        .unwrap();
    let mut big = b"Subject: large\r\n\r\n".to_vec();
    let mut n = 0u32;
    while big.len() < 600_000 {
        big.extend_from_slice(format!(".line {n} of a large message\r\n").as_bytes());
        n += 1;
    }
    let rx = engine.deliveries();
    engine
        .submit(Message::new("a@x.test", ["b@y.test"], big.clone()))
        .unwrap();
    let d = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(d.is_delivered(), "{:?}", d.outcomes);
    engine.shutdown();
    let record = server.finish();
    assert_eq!(record.messages.len(), 1);
    assert!(record.messages[0] == big, "byte-exact");
}

#[test]
fn a_handshake_the_server_never_answers_ends_at_the_reply_timeout() {
    let certs = certs();
    let server = FakeServer::start(Script::SilentAfter220, certs.server_config.clone());
    let mut session = SessionConfig::new("client.test");
    session.policy.tls = TlsMode::Opportunistic;
    session.policy.command_timeout = Duration::from_millis(300);
    let engine = builder(server.addr, TlsMode::Opportunistic)
        .session(session)
        .attempts(1)
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let deliveries = run(engine, 1);
    assert!(started.elapsed() < Duration::from_secs(10));
    let o = &deliveries[0].outcomes[0];
    assert_eq!(o.kind, OutcomeKind::Deferred, "{o:?}");
    assert!(o.reply.text().contains("Timeout"), "{o:?}");
    let record = server.finish();
    assert_eq!(record.plain_text(), "EHLO client.test\r\nSTARTTLS\r\n");
}

#[test]
fn a_destination_requires_tls_of_its_own_verified_under_its_next_hops_name() {
    let certs = certs();
    let server = FakeServer::start(Script::Normal, certs.server_config.clone());
    // The builder's own sessions never use TLS; this destination requires it, checked
    // against the test CA under its next hop's name (no server name in the options).
    let engine = builder(server.addr, TlsMode::Disabled)
        .tls(TlsOptions {
            ca_file: Some(certs.ca_file.clone()),
            ..TlsOptions::default()
        })
        .build()
        .unwrap();
    let hop = NextHop::named(server.addr, "localhost");
    let destination = Destination::new([hop.clone()]).tls(TlsMode::Required);
    let rx = engine.deliveries();
    for i in 0..2 {
        let message = Message::new("a@x.test", ["b@y.test"], body(i));
        engine.submit_to(destination.clone(), message).unwrap();
    }
    for _ in 0..2 {
        let d = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        assert!(d.is_delivered(), "{:?}", d.outcomes);
        assert_eq!(d.next_hop.as_ref(), Some(&hop));
    }
    engine.shutdown();
    let record = server.finish();
    assert_eq!(record.handshake_error, None);
    assert_eq!(record.sni.as_deref(), Some("localhost"));
    assert_eq!(record.plain_text(), "EHLO client.test\r\nSTARTTLS\r\n");
    assert_eq!(record.messages, [body(0), body(1)]);
}
