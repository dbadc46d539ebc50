//! The abuse limits over real sockets, each with its config key: recipient overshoot,
//! forbidden cross-protocol commands, the tarpit (`limits.error_sleep`, on the loop's
//! deadlines: other clients are served meanwhile), `limits.connection_rate_per_ip`,
//! `limits.messages_per_session` and `smtp.greet_pause`.
// A test plays the peers: it reads clocks.
#![allow(clippy::disallowed_methods)]

use std::io::Read;
use std::time::{Duration, Instant};

use impulse_test_support::server::TestServer;
use impulse_test_support::LineClient;
use smtp_server::config::ConfigDuration;

#[test]
fn a_client_pipelining_1100_recipients_is_not_cut_off() {
    let mx = TestServer::start();
    let mut c = mx.connect();
    c.cmd("EHLO client.test");
    let mut input = b"MAIL FROM:<a@example.org>\r\n".to_vec();
    for i in 0..1100 {
        input.extend_from_slice(format!("RCPT TO:<r{i}@example.com>\r\n").as_bytes());
    }
    input.extend_from_slice(b"DATA\r\n");
    c.send(&input);
    assert!(c.reply().starts_with("250"));
    let mut accepted = 0;
    for _ in 0..1100 {
        match c.reply() {
            r if r.starts_with("250 2.1.5") => accepted += 1,
            r => assert_eq!(r, "452 4.5.3 Error: too many recipients"),
        }
    }
    assert_eq!(accepted, 1000);
    assert!(c.reply().starts_with("354"));
    let reply = c.cmd("Subject: many\r\n\r\nhi\r\n.");
    assert!(reply.starts_with("250 2.0.0 Ok: queued as"), "{reply}");
    let stored = mx.spool.list().unwrap();
    assert_eq!(stored.len(), 1);
    mx.stop();
}

#[test]
fn http_and_header_lines_as_commands_end_the_session() {
    let mx = TestServer::start();
    for line in [
        "GET / HTTP/1.1",
        "CONNECT mx.test:25 HTTP/1.1",
        "Subject: hello",
    ] {
        let mut c = mx.connect();
        c.send(format!("{line}\r\nHost: mx.test\r\n\r\n").as_bytes());
        assert_eq!(
            c.reply(),
            "221 2.7.0 Error: I can break rules, too. Goodbye."
        );
        assert_eq!(c.rest(), "", "{line}: closed at once");
    }
    mx.stop();
}

#[test]
fn the_tarpit_delays_errors_without_blocking_the_loop() {
    let sleep = Duration::from_millis(600);
    let mx = TestServer::builder()
        .workers(1)
        .config(|c| {
            c.limits.soft_errors = 1;
            c.limits.error_sleep = ConfigDuration(sleep);
        })
        .start();
    let mut slow = mx.connect();
    slow.cmd("EHLO client.test");
    let t0 = Instant::now();
    assert!(
        slow.cmd("XYZZY").starts_with("500"),
        "the first error is not delayed"
    );
    assert!(t0.elapsed() < sleep);
    // The second error is past the soft limit: held for error_sleep ...
    let t1 = Instant::now();
    slow.send(b"XYZZY\r\n");
    // ... while the one loop thread serves another client at once.
    let mut other = mx.connect();
    assert!(other.cmd("EHLO other.test").starts_with("250"));
    assert!(other.cmd("NOOP").starts_with("250"));
    assert!(t1.elapsed() < sleep, "served during the tarpit");
    assert!(slow.reply().starts_with("500"));
    assert!(t1.elapsed() >= sleep, "{:?}", t1.elapsed());
    // A good command is answered at once.
    let t2 = Instant::now();
    assert!(slow.cmd("NOOP").starts_with("250"));
    assert!(t2.elapsed() < sleep);
    mx.stop();
}

#[test]
fn the_connection_rate_per_client_is_capped_per_minute() {
    let mx = TestServer::builder()
        .config(|c| {
            c.limits.connection_rate_per_ip = 2;
            c.limits.exempt_loopback = false;
        })
        .start();
    for _ in 0..2 {
        let mut c = mx.connect();
        assert!(c.cmd("QUIT").starts_with("221"));
    }
    let mut c = LineClient::connect(mx.addr);
    assert_eq!(
        c.reply(),
        "421 4.7.0 mx.test Error: too many connections per minute from 127.0.0.1"
    );
    mx.stop();
}

#[test]
fn messages_per_session_ends_the_session_at_the_next_mail() {
    let mx = TestServer::builder()
        .config(|c| c.limits.messages_per_session = 1)
        .start();
    let mut c = mx.connect();
    c.cmd("EHLO client.test");
    assert!(c.cmd("MAIL FROM:<a@example.org>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<b@example.com>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    assert!(c.cmd("hi\r\n.").starts_with("250 2.0.0 Ok: queued"));
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.org>"),
        "421 4.7.0 mx.test Error: too many messages in this session"
    );
    assert_eq!(c.rest(), "");
    assert_eq!(mx.count(), 1);
    mx.stop();
}

#[test]
fn the_greeting_pause_refuses_clients_that_talk_first() {
    let pause = Duration::from_millis(500);
    let mx = TestServer::builder()
        .config(|c| c.smtp.greet_pause = ConfigDuration(pause))
        .start();
    // Talks first: 521 5.5.1, disconnected, no banner.
    let mut early = LineClient::connect(mx.addr);
    early.send(b"EHLO early.test\r\n");
    assert_eq!(
        early.reply(),
        "521 5.5.1 Error: talking before the greeting, goodbye"
    );
    let mut rest = String::new();
    let _ = early.r.read_to_string(&mut rest);
    assert_eq!(rest, "");
    // Waits: the banner comes after the pause.
    let t0 = Instant::now();
    let mut patient = LineClient::connect(mx.addr);
    assert!(patient.reply().starts_with("220 mx.test"));
    assert!(t0.elapsed() >= pause, "{:?}", t0.elapsed());
    assert!(patient.cmd("EHLO patient.test").starts_with("250"));
    mx.stop();
}
