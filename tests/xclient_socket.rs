//! The xclient plugin, linked statically, over a real socket: a trusted proxy's XCLIENT
//! rewrites the session (peer address, client name, HELO name), the client greets again,
//! and the message is spooled with the reported values; the keyword is advertised only to
//! authorized peers.

use std::io::{Read, Write};

use impulse::server::spool::Spool;
use impulse_plugin_xclient as _;

use impulse_test_support::line::LineClient;
use impulse_test_support::server::{static_registry, TestServer};

/// A server over `spool` with only the xclient plugin active, `authorized` as given; relay
/// control trusts loopback and the reported client's network (192.0.2.0/24), so the reported
/// client may relay (tests/relay_control.rs has the clients that may not).
fn start(authorized: &str, spool: &Spool) -> TestServer {
    let config = format!("[xclient]\nauthorized = [{authorized:?}]\n");
    TestServer::builder()
        .spool(spool.clone())
        .registry(static_registry(&config, &["xclient"]))
        .relay_networks(&["127.0.0.0/8", "192.0.2.0/24"])
        .start()
}

#[test]
fn xclient_rewrites_the_session_and_the_spooled_trace() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let server = start("127.0.0.0/8", &spool);
    let mut c = LineClient::connect(server.addr);
    assert!(c.reply().starts_with("220 mx.test"));
    let ehlo = c.cmd("EHLO proxy.local");
    assert!(
        ehlo.contains("XCLIENT NAME ADDR PORT PROTO HELO LOGIN"),
        "{ehlo}"
    );
    assert_eq!(
        c.cmd("XCLIENT ADDR=192.0.2.7 NAME=client.example HELO=spoofed.example"),
        "220 [127.0.0.1] ESMTP"
    );
    // The session starts over: a greeting is needed first.
    assert!(c.cmd("MAIL FROM:<a@example.org>").starts_with("503 5.5.1"));
    let ehlo = c.cmd("EHLO proxy.local");
    assert!(ehlo.starts_with("250-mx.test"), "{ehlo}");
    // XCLIENT stays advertised (and accepted): authorization is decided on the connection's
    // real peer, the proxy, whatever client it reported.
    assert!(ehlo.contains("XCLIENT"), "{ehlo}");
    assert!(c.cmd("MAIL FROM:<a@example.org>").starts_with("250 2.1.0"));
    assert!(c.cmd("RCPT TO:<b@example.net>").starts_with("250 2.1.5"));
    assert!(c.cmd("DATA").starts_with("354"));
    c.w.write_all(b"Subject: via proxy\r\n\r\nhi\r\n.\r\n")
        .unwrap();
    let queued = c.reply();
    assert!(queued.starts_with("250 2.0.0 Ok: queued as"), "{queued}");
    assert!(c.cmd("QUIT").starts_with("221"));

    let list = spool.list().unwrap();
    assert_eq!(list.len(), 1);
    let env = spool.read_envelope(list[0].id).unwrap();
    assert_eq!(env.helo, "spoofed.example");
    assert!(env.peer.starts_with("192.0.2.7:"), "{}", env.peer);
    let mut message = String::new();
    spool
        .open_message(list[0].id)
        .unwrap()
        .read_to_string(&mut message)
        .unwrap();
    assert!(
        message.starts_with("Received: from spoofed.example (client.example [192.0.2.7])\r\n"),
        "{message}"
    );
    server.stop();
}

#[test]
fn xclient_is_advertised_only_to_authorized_peers() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    // Loopback is not in 10.0.0.0/8.
    let server = start("10.0.0.0/8", &spool);
    let mut c = LineClient::connect(server.addr);
    c.reply();
    let ehlo = c.cmd("EHLO proxy.local");
    assert!(!ehlo.contains("XCLIENT"), "{ehlo}");
    assert!(ehlo.contains("PIPELINING"), "{ehlo}");
    assert_eq!(
        c.cmd("XCLIENT ADDR=192.0.2.7"),
        "550 5.7.0 Error: insufficient authorization"
    );
    assert!(c.cmd("QUIT").starts_with("221"));
    server.stop();

    let server = start("127.0.0.0/8", &spool);
    let mut c = LineClient::connect(server.addr);
    c.reply();
    assert!(c.cmd("EHLO proxy.local").contains("XCLIENT"));
    server.stop();
}
