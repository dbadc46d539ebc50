//! The server's metrics over real sockets, read from the registry the server counts into
//! (`ServerHandle::metrics`): hook latency per hook point, plugin panics (on the loop and
//! on the hook pool), message outcomes decided by hooks, TLS handshakes that complete and
//! fail, connections refused per IP. (The HTTP endpoint and promtool are checked with
//! `impulse serve` in the root's `tests/metrics_http.rs`.)
// Socket tests run real peers on threads and wait on the real clock.
#![allow(clippy::disallowed_methods)]

use std::io::Write;

use impulse_test_support::line::LineClient;
use impulse_test_support::metrics::value;
use impulse_test_support::server::TestServer;
use impulse_test_support::tls::{certs, starttls, tls_cmd};
use smtp_server::hooks_api::{Order, PluginConfig, PluginDecl, Registrar, Registry, Verdict};

fn init(r: &mut Registrar, _: &PluginConfig) -> Result<(), String> {
    r.on_mail(Order::Priority(0), |_| Verdict::Continue);
    r.on_rcpt(Order::Priority(0), |ctx| {
        if ctx.recipient.to_string().contains("panic") {
            panic!("a plugin bug");
        }
        Verdict::Continue
    });
    r.on_message(Order::Priority(0), |ctx| {
        if ctx.headers.get("Subject").map(str::trim) == Some("refuse") {
            return Verdict::reject(554, "5.7.1", "Refused by a hook");
        }
        if ctx.headers.get("Subject").map(str::trim) == Some("panic") {
            panic!("a plugin bug on the pool");
        }
        Verdict::Continue
    });
    Ok(())
}

static PLUGIN: PluginDecl = PluginDecl {
    name: "metrics-test",
    version: "0",
    init,
    shutdown: None,
};

/// The server's exposition now.
fn scrape(server: &TestServer) -> String {
    server.handle.as_ref().expect("running").metrics().render()
}

/// Waits until every connection has been closed and published, then scrapes.
fn settled(server: &TestServer) -> String {
    for _ in 0..500 {
        let text = scrape(server);
        if value(&text, "impulse_connections_open") == Some(0.0) {
            return text;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("connections stayed open: {}", scrape(server));
}

fn message(c: &mut LineClient, to: &str, subject: &str) -> String {
    assert!(c.cmd("MAIL FROM:<a@example.org>").starts_with("250"));
    let r = c.cmd(&format!("RCPT TO:<{to}>"));
    if !r.starts_with("250") {
        return r;
    }
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(format!("Subject: {subject}\r\n\r\nbody\r\n.\r\n").as_bytes());
    c.reply()
}

#[test]
fn hooks_panics_and_outcomes_are_counted() {
    let mut registry = Registry::new();
    registry.add(&PLUGIN, &Default::default()).unwrap();
    let server = TestServer::with(registry, 1);
    let mut c = server.connect();
    assert!(c.cmd("EHLO client.test").starts_with("250"));
    assert!(message(&mut c, "b@example.com", "fine").starts_with("250"));
    assert!(message(&mut c, "b@example.com", "refuse").starts_with("554"));
    assert!(message(&mut c, "panic@example.com", "x").starts_with("451"));
    assert!(c.cmd("RSET").starts_with("250"));
    assert!(message(&mut c, "b@example.com", "panic").starts_with("451"));
    assert!(c.cmd("QUIT").starts_with("221"));
    drop(c);

    let text = settled(&server);
    let get = |s: &str| value(&text, s).unwrap_or_else(|| panic!("{s}\n{text}"));
    assert_eq!(
        get("impulse_hook_duration_seconds_count{point=\"mail\"}"),
        4.0
    );
    assert_eq!(
        get("impulse_hook_duration_seconds_count{point=\"rcpt\"}"),
        4.0
    );
    assert_eq!(
        get("impulse_hook_duration_seconds_count{point=\"message\"}"),
        3.0
    );
    assert_eq!(
        get("impulse_hook_duration_seconds_bucket{point=\"rcpt\",le=\"+Inf\"}"),
        4.0
    );
    // Only hooked points have a histogram.
    assert_eq!(
        value(&text, "impulse_hook_duration_seconds_count{point=\"helo\"}"),
        None
    );
    // This test binary has no other panicking plugin: the count is this test's.
    assert_eq!(get("impulse_plugin_panics_total"), 2.0);
    assert_eq!(get("impulse_messages_total{outcome=\"accepted\"}"), 1.0);
    assert_eq!(get("impulse_messages_total{outcome=\"rejected\"}"), 2.0);
    assert_eq!(get("impulse_spool_commits_total{result=\"ok\"}"), 1.0);
    assert_eq!(get("impulse_spool_messages"), 1.0);
    // Only the message the hooks let through was committed.
    assert_eq!(get("impulse_spool_commit_duration_seconds_count"), 1.0);
    assert_eq!(get("impulse_replies_total{class=\"4xx\"}"), 2.0);
    assert_eq!(get("impulse_replies_total{class=\"5xx\"}"), 1.0);
}

#[test]
fn tls_handshakes_and_per_ip_refusals_are_counted() {
    let certs = certs();
    let (cert, key) = (certs.cert_file.clone(), certs.key_file.clone());
    let server = TestServer::builder()
        .config(move |c| {
            c.tls.cert = Some(cert);
            c.tls.key = Some(key);
            c.limits.connections_per_ip = 1;
            c.limits.exempt_loopback = false;
        })
        .start();

    let mut c = server.connect();
    assert!(c.cmd("EHLO client.test").contains("STARTTLS"));
    // A second connection from 127.0.0.1 while the first is open: 421.
    let mut refused = LineClient::connect(server.addr);
    assert!(refused.reply().starts_with("421 4.7.0"));
    let mut tls = starttls(c, certs.client_config()).expect("a handshake");
    assert!(tls_cmd(&mut tls, "EHLO client.test").starts_with("250"));
    assert!(tls_cmd(&mut tls, "QUIT").starts_with("221"));
    drop(tls);
    drop(refused);
    let _ = settled(&server);

    // A client that answers the 220 with garbage instead of a ClientHello.
    let mut c = server.connect();
    assert!(c.cmd("EHLO client.test").starts_with("250"));
    assert!(c.cmd("STARTTLS").starts_with("220"));
    c.w.write_all(b"this is not TLS\r\n\r\n").unwrap();
    let _ = c.rest();
    drop(c);

    let text = settled(&server);
    let get = |s: &str| value(&text, s).unwrap_or_else(|| panic!("{s}\n{text}"));
    assert_eq!(get("impulse_tls_handshakes_total{result=\"ok\"}"), 1.0);
    assert_eq!(get("impulse_tls_handshakes_total{result=\"failed\"}"), 1.0);
    assert_eq!(
        get("impulse_connections_refused_total{reason=\"per_ip\"}"),
        1.0
    );
    assert_eq!(get("impulse_connections_accepted_total"), 2.0);
}
