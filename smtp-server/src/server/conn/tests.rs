//! `Conn` over a real loopback socket pair: the socket half of the call order (banner,
//! reads, the peer's close, closing once flushed, STARTTLS's plaintext drop and a TLS that
//! cannot start), and the log's AUTH redaction.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream as StdStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::Interest;

use super::{redact, Conn, READ_CHUNK};
use crate::factory::{Factory, FactoryConfig};
use crate::server::common::ConnKey;

/// A connection and the client end of its socket.
fn pair() -> (Conn, StdStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = StdStream::connect(listener.local_addr().unwrap()).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let (sock, peer) = listener.accept().unwrap();
    sock.set_nonblocking(true).unwrap();
    let local = sock.local_addr().unwrap();
    let config = Arc::new(FactoryConfig::new("mx.test"));
    let factory = Factory::new(config, peer, local, Instant::now());
    let key = ConnKey { slot: 0, serial: 1 };
    (
        Conn::new(mio::net::TcpStream::from_std(sock), factory, key),
        client,
    )
}

/// Reads one reply line from the client end.
fn line(client: &mut StdStream) -> String {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while !out.ends_with(b"\n") {
        assert_eq!(client.read(&mut b).unwrap(), 1, "closed after {out:?}");
        out.push(b[0]);
    }
    String::from_utf8(out).unwrap()
}

/// Feeds the connection until `done` holds (the client's bytes may take a moment).
fn feed_until(conn: &mut Conn, done: impl Fn(&Conn) -> bool) {
    let mut scratch = vec![0u8; READ_CHUNK];
    let until = Instant::now() + Duration::from_secs(5);
    while !done(conn) {
        assert!(Instant::now() < until, "timed out");
        if !conn.feed_input(Instant::now(), &mut scratch) {
            std::thread::sleep(Duration::from_millis(5));
            conn.socket_event(true, false, true);
        }
    }
}

#[test]
fn the_banner_goes_out_then_only_reading_is_wanted() {
    let (mut conn, mut client) = pair();
    assert_eq!(conn.key(), ConnKey { slot: 0, serial: 1 });
    assert!(conn.output_pending());
    assert_eq!(
        conn.wanted_interest(),
        Some(Interest::READABLE | Interest::WRITABLE)
    );
    assert!(conn.flush());
    assert!(line(&mut client).starts_with("220 mx.test"));
    assert!(!conn.output_pending());
    assert_eq!(conn.wanted_interest(), Some(Interest::READABLE));
    assert!(!conn.finished());
}

#[test]
fn the_peers_close_reaches_the_factory_once() {
    let (mut conn, client) = pair();
    conn.flush();
    drop(client);
    feed_until(&mut conn, |c| c.factory.is_closed());
    assert!(conn.wanted_interest().is_none_or(|i| !i.is_readable()));
    let mut scratch = vec![0u8; READ_CHUNK];
    assert!(!conn.feed_input(Instant::now(), &mut scratch), "told once");
    conn.flush();
    assert!(conn.finished());
}

#[test]
fn a_closing_connection_reads_nothing_and_ends_when_flushed() {
    let (mut conn, mut client) = pair();
    assert!(conn.close_when_flushed());
    assert!(!conn.close_when_flushed(), "asked once");
    client.write_all(b"NOOP\r\n").unwrap();
    let mut scratch = vec![0u8; READ_CHUNK];
    assert!(!conn.feed_input(Instant::now(), &mut scratch));
    assert!(!conn.finished(), "the banner is still queued");
    assert_eq!(conn.wanted_interest(), Some(Interest::WRITABLE));
    conn.flush();
    assert!(line(&mut client).starts_with("220 "));
    assert!(conn.finished());
}

#[test]
fn starttls_drops_plaintext_read_after_it() {
    let (mut conn, mut client) = pair();
    conn.flush();
    line(&mut client);
    client.write_all(b"NOOP\r\n").unwrap();
    feed_until(&mut conn, Conn::input_held);
    conn.start_tls_after_reply();
    assert!(!conn.input_held(), "CVE-2011-0411");
    // Nothing is queued, so the `220` counts as out: TLS starts now, or, without a
    // configuration, the connection is done.
    assert!(!conn.start_tls_if_reply_written(None));
    assert!(conn.finished());
}

#[test]
fn tls_waits_for_its_reply_to_be_written() {
    let (mut conn, _client) = pair();
    conn.start_tls_after_reply();
    assert!(conn.output_pending(), "the banner");
    assert!(!conn.start_tls_if_reply_written(None));
    assert!(!conn.finished(), "nothing happens before the reply is out");
}

#[test]
fn a_deadline_fires_once_and_only_the_armed_one() {
    let (mut conn, _client) = pair();
    let armed = conn.rearm().expect("the banner's command timeout");
    assert_eq!(conn.rearm(), None, "unchanged");
    assert_eq!(conn.armed(), Some(armed));
    assert!(
        !conn.deadline_fired(armed + Duration::from_secs(1)),
        "stale"
    );
    assert!(conn.deadline_fired(armed));
    assert!(!conn.deadline_fired(armed), "disarmed");
}

#[test]
fn auth_payloads_are_redacted() {
    assert_eq!(
        redact("AUTH PLAIN AGJvYgBzZWNyZXQ="),
        "AUTH PLAIN <redacted>"
    );
    assert_eq!(redact("AGJvYgBzZWNyZXQ="), "<sasl>");
    assert_eq!(redact("334 VXNlcm5hbWU6"), "334 <sasl>");
    assert_eq!(redact("MAIL FROM:<a@b>"), "MAIL FROM:<a@b>");
}
