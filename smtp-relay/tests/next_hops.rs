//! How the relay reaches its next hops over real sockets: domains routed to the same server
//! share its connections, `tls = "required"` encrypts to a server whose certificate is
//! self-signed, and `tls = "verify"` refuses that certificate and defers.
#![allow(clippy::disallowed_methods)] // a test plays the clock and the peers

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use impulse_test_support::sink::Sink;
use impulse_test_support::tls::{self_signed, FakeServer, Script};
use smtp_relay::route::Route;

mod common;
use common::{commit, drained, first_deferred, relay_settings, start, state, WAIT};

/// A loopback port with nothing behind it.
fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// A route for `domains` to `hosts` with `tls`.
fn route(domains: &[&str], hosts: &[SocketAddr], tls: &str) -> Route {
    let hosts: Vec<String> = hosts.iter().map(ToString::to_string).collect();
    let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
    Route::new(domains, &hosts, Some(tls)).unwrap()
}

#[test]
fn two_domains_routed_to_the_same_server_share_one_connection() {
    let sink = Sink::start();
    // Different lists of next hops (so different destinations to the scheduler) whose
    // first hop is the same server.
    let routes = vec![
        route(&["one.test"], &[sink.addr], "none"),
        route(&["two.test"], &[sink.addr, closed_port()], "none"),
    ];
    let (_dir, spool, relay) = start(relay_settings(routes));
    commit(
        &spool,
        "a@sender.test",
        &["b@one.test"],
        "Subject: 1\r\n\r\nx\r\n",
    );
    assert_eq!(sink.wait_for(1, WAIT).len(), 1);
    // The second message comes while the first one's connection is idle.
    commit(
        &spool,
        "a@sender.test",
        &["c@two.test"],
        "Subject: 2\r\n\r\nx\r\n",
    );
    let got = sink.wait_for(2, WAIT);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1].to, vec!["c@two.test"]);
    assert_eq!(
        sink.connections.load(Ordering::SeqCst),
        1,
        "both messages on one connection"
    );
    let greetings = sink
        .commands()
        .iter()
        .filter(|c| c.starts_with("EHLO"))
        .count();
    assert_eq!(greetings, 1, "one session: {:?}", sink.commands());
    assert!(drained(&spool));
    relay.shutdown();
}

#[test]
fn required_tls_encrypts_to_a_self_signed_certificate() {
    let hop = FakeServer::start(Script::Normal, self_signed());
    let routes = vec![route(&["target.test"], &[hop.addr], "required")];
    let (_dir, spool, relay) = start(relay_settings(routes));
    let id = commit(
        &spool,
        "a@sender.test",
        &["b@target.test"],
        "Subject: sealed\r\n\r\nencrypted, not authenticated\r\n",
    );
    assert!(drained(&spool), "{id} delivered: {:?}", state(&spool, id));
    relay.shutdown();
    let seen = hop.finish();
    assert_eq!(seen.handshake_error, None);
    let plain = seen.plain_text();
    assert!(plain.contains("STARTTLS"), "{plain}");
    assert!(
        !plain.contains("MAIL FROM"),
        "no envelope in plaintext: {plain}"
    );
    assert!(
        seen.tls_text().contains("MAIL FROM:<a@sender.test>"),
        "{}",
        seen.tls_text()
    );
    assert_eq!(seen.messages.len(), 1);
    let message = String::from_utf8_lossy(&seen.messages[0]);
    assert!(
        message.contains("encrypted, not authenticated"),
        "{message}"
    );
}

#[test]
fn verify_defers_when_the_certificate_does_not_verify() {
    // Enough connections for every set-up attempt; the rest of the server is never joined.
    let hop = FakeServer::start_many(Script::Normal, self_signed(), 16);
    let routes = vec![route(&["target.test"], &[hop.addr], "verify")];
    let mut settings = relay_settings(routes);
    settings.schedule.retry.intervals = vec![Duration::from_secs(3600)];
    let (_dir, spool, relay) = start(settings);
    let id = commit(
        &spool,
        "a@sender.test",
        &["b@target.test"],
        "Subject: checked\r\n\r\nx\r\n",
    );
    let reply = first_deferred(&spool, id).recipients[0].last_reply.clone();
    assert!(reply.contains("4.7.5"), "{reply}");
    assert!(reply.contains("TLS handshake failed"), "{reply}");
    assert!(
        reply.to_ascii_lowercase().contains("certificate"),
        "{reply}"
    );
    assert_eq!(spool.list().unwrap().len(), 1, "the message stays queued");
    relay.shutdown();
}
