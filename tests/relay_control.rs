//! Relay control over real sockets: no client outside `[relay] networks` relays, by any path
//! (an address reported by XCLIENT, `%` and `!` in the local part, source routes, address
//! literals, look-alike domains), whether or not the config has a `[relay]` table; relay
//! domains match whatever their case or label form; the recipients file is re-read when it
//! changes; swaks as a real outside client.
// Polls a real file watcher thread and runs a server, as an operator would.
#![allow(clippy::disallowed_methods)]

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use impulse::server::config::{RelayConfig, RouteConfig};
use impulse_plugin_xclient as _;

use impulse_test_support::line::LineClient;
use impulse_test_support::peers;
use impulse_test_support::server::{static_registry, TestServer};

const DENIED: &str = "554 5.7.1";

/// Relay control for `domains`, each routed to a loopback host, delivery off (this suite
/// checks what is accepted, not what is sent).
fn relay(domains: &[&str], networks: &[&str]) -> RelayConfig {
    RelayConfig {
        enabled: false,
        domains: domains.iter().map(|d| (*d).to_owned()).collect(),
        networks: networks.iter().map(|n| (*n).to_owned()).collect(),
        routes: vec![RouteConfig {
            domains: domains.iter().map(|d| (*d).to_owned()).collect(),
            hosts: vec!["127.0.0.1:9".into()],
            ..RouteConfig::default()
        }],
        ..RelayConfig::default()
    }
}

/// A server with the xclient plugin (loopback may send XCLIENT) and `relay` as its table.
fn xclient_server(relay: Option<RelayConfig>) -> TestServer {
    TestServer::builder()
        .registry(static_registry(
            "[xclient]\nauthorized = [\"127.0.0.0/8\"]\n",
            &["xclient"],
        ))
        .config(|c| c.relay = relay)
        .start()
}

/// Connects, reports `xclient` (for example `ADDR=192.0.2.7`), greets again and opens a
/// transaction.
fn as_reported(server: &TestServer, xclient: &str) -> LineClient {
    let mut c = server.connect();
    assert!(c.cmd("EHLO proxy.test").contains("XCLIENT"));
    let reply = c.cmd(&format!("XCLIENT {xclient}"));
    assert!(reply.starts_with("220"), "{reply}");
    assert!(c.cmd("EHLO proxy.test").starts_with("250"));
    assert!(c
        .cmd("MAIL FROM:<sender@example.com>")
        .starts_with("250 2.1.0"));
    c
}

/// Every way an outside client might try to get mail for a domain that is not ours relayed.
const OUTSIDE_TRIES: [&str; 12] = [
    "<u@example.com>",
    "<u@EXAMPLE.COM>",
    "<u@example.org.example.com>",
    "<u@evilexample.org>",
    "<u%example.com@example.org>",
    "<u%example.com@localhost>",
    "<example.com!u@example.org>",
    "<@example.org:u@example.com>",
    "<@example.org,@mx.example.org:u@example.com>",
    "<@example.org:u@example.org>",
    "<u@[127.0.0.1]>",
    "<u@[IPv6:::1]>",
];

#[test]
fn without_a_relay_table_only_loopback_relays_and_xclient_moves_the_client_outside() {
    let server = xclient_server(None);
    // Loopback itself relays (today's behaviour, kept).
    let mut c = server.connect();
    c.cmd("EHLO client.test");
    c.cmd("MAIL FROM:<sender@example.com>");
    assert!(c.cmd("RCPT TO:<u@example.com>").starts_with("250 2.1.5"));
    c.cmd("QUIT");

    for addr in ["ADDR=192.0.2.7", "ADDR=IPV6:2001:db8::7", "ADDR=10.1.2.3"] {
        let mut c = as_reported(&server, addr);
        for to in OUTSIDE_TRIES
            .iter()
            .chain(&["<u@example.org>", "<u@localhost>"])
        {
            let reply = c.cmd(&format!("RCPT TO:{to}"));
            assert!(reply.starts_with(DENIED), "{addr} {to}: {reply}");
            assert!(
                reply.ends_with(": Relay access denied"),
                "{addr} {to}: {reply}"
            );
        }
        // The bare Postmaster is always accepted (RFC 5321 §4.5.1).
        assert!(c.cmd("RCPT TO:<Postmaster>").starts_with("250 2.1.5"));
        c.cmd("RSET");
        c.cmd("MAIL FROM:<sender@example.com>");
        assert!(c.cmd("RCPT TO:<u@example.com>").starts_with(DENIED));
        assert_eq!(c.cmd("DATA"), "554 5.5.1 Error: no valid recipients");
        c.cmd("QUIT");
    }
    // A reported login is an authenticated client: trusted, as Postfix treats XCLIENT LOGIN.
    let mut c = as_reported(&server, "ADDR=192.0.2.7 LOGIN=alice");
    assert!(c.cmd("RCPT TO:<u@example.com>").starts_with("250 2.1.5"));
    c.cmd("QUIT");
    assert_eq!(server.count(), 0);
    server.stop();
}

#[test]
fn relay_domains_are_accepted_from_outside_in_any_spelling_and_nothing_else_is() {
    let server = xclient_server(Some(relay(
        &["example.org", "bücher.example", ".example.net"],
        &["127.0.0.0/8"],
    )));
    let mut c = as_reported(&server, "ADDR=192.0.2.7");
    for to in [
        "<u@example.org>",
        "<u@EXAMPLE.ORG>",
        "<u@Example.Org>",
        "<u@xn--bcher-kva.example>",
        "<u@XN--BCHER-KVA.example>",
        "<u@mx.example.net>",
        "<\"quoted u\"@example.org>",
    ] {
        let reply = c.cmd(&format!("RCPT TO:{to}"));
        assert!(reply.starts_with("250 2.1.5"), "{to}: {reply}");
    }
    for to in
        OUTSIDE_TRIES
            .iter()
            .chain(&["<u@example.net>", "<u@example.org.>", "<u@[192.0.2.1]>"])
    {
        let reply = c.cmd(&format!("RCPT TO:{to}"));
        assert!(
            reply.starts_with(DENIED) || reply.starts_with("501 5.1.3"),
            "{to}: {reply}"
        );
    }
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: in\r\n\r\nfor us\r\n.\r\n");
    assert!(c.reply().starts_with("250 2.0.0"));
    // The U-label form, in an SMTPUTF8 transaction, is the same relay domain.
    assert!(c
        .cmd("MAIL FROM:<sender@example.com> SMTPUTF8")
        .starts_with("250 2.1.0"));
    assert!(c.cmd("RCPT TO:<u@BÜCHER.example>").starts_with("250 2.1.5"));
    assert!(c.cmd("RCPT TO:<u@bücher.example.com>").starts_with(DENIED));
    c.cmd("RSET");
    c.cmd("QUIT");
    let id = server.queued()[0];
    let env = server.spool.read_envelope(id).unwrap();
    let rcpts: Vec<&str> = env.recipients.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(rcpts.len(), 7, "{rcpts:?}");
    server.stop();
}

#[test]
fn swaks_from_outside_the_networks_cannot_relay() {
    let Some(swaks) = peers::program("swaks") else {
        return;
    };
    // Loopback is not trusted here: the plain 127.0.0.1 client is an outside client.
    let server = TestServer::builder()
        .config(|c| c.relay = Some(relay(&["example.org"], &["192.0.2.0/24"])))
        .start();
    let run = |to: &str| {
        let out = Command::new(&swaks)
            .args(["--server", &server.addr.to_string(), "--to", to])
            .args(["--from", "sender@example.com", "--helo", "outside.test"])
            .args(["--timeout", "10"])
            .output()
            .expect("swaks runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    for to in [
        "u@example.com",
        "u%example.com@example.org",
        "u@[127.0.0.1]",
    ] {
        let (ok, transcript) = run(to);
        assert!(!ok, "{to}: {transcript}");
        assert!(
            transcript.contains(&format!("<** 554 5.7.1 <{to}>: Relay access denied")),
            "{to}: {transcript}"
        );
    }
    assert_eq!(server.count(), 0);
    let (ok, transcript) = run("u@EXAMPLE.org");
    assert!(ok, "{transcript}");
    assert_eq!(server.count(), 1);
    server.stop();
}

#[test]
fn the_recipients_file_is_read_again_when_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("recipients");
    std::fs::write(&file, "# valid\nalice@example.org\n").unwrap();
    let mut config = relay(&["example.org"], &["192.0.2.0/24"]);
    config.recipients = Some(file.clone());
    let server = TestServer::builder()
        .config(|c| c.relay = Some(config))
        .start();
    let mut c = server.connect();
    c.cmd("EHLO outside.test");
    c.cmd("MAIL FROM:<sender@example.com>");
    assert!(c
        .cmd("RCPT TO:<Alice@example.org>")
        .starts_with("250 2.1.5"));
    assert_eq!(
        c.cmd("RCPT TO:<bob@example.org>"),
        "550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown"
    );
    // A new version renamed over the old one, as an operator's tool should write it.
    let next = dir.path().join("recipients.new");
    let mut f = std::fs::File::create(&next).unwrap();
    f.write_all(b"alice@example.org\nbob@example.org\n")
        .unwrap();
    f.sync_all().unwrap();
    std::fs::rename(&next, &file).unwrap();
    // The file is checked once a second: poll (a real file and a real thread, no clock to
    // simulate).
    let start = Instant::now();
    loop {
        let reply = c.cmd("RCPT TO:<bob@example.org>");
        if reply.starts_with("250 2.1.5") {
            break;
        }
        assert!(reply.starts_with("550 5.1.1"), "{reply}");
        assert!(start.elapsed() < Duration::from_secs(10), "never reloaded");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Outside the relay domains the table changes nothing.
    assert!(c.cmd("RCPT TO:<bob@example.com>").starts_with(DENIED));
    c.cmd("QUIT");
    server.stop();
}
