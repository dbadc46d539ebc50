//! The relay on `impulse serve`'s metrics endpoint and in its SIGHUP reload: deliveries
//! counted by outcome and bounce class, the queue gauge after a deferral, route lookups and
//! record writes, `promtool check metrics` on the scrape; a reload that moves a route to
//! another sink (new mail goes there) and widens `[relay] networks` (an outside client,
//! reported by XCLIENT, may relay after it), a bad `[relay]` table refused with the old
//! one kept, and `[relay.dns]` nameservers changed by a reload (and kept by one that leaves
//! them alone).
// A socket test: it polls the endpoint and the sinks on the real clock.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use impulse_test_support::cli::Serve;
use impulse_test_support::metrics::{promtool_check, scrape, sum, value};
use impulse_test_support::sink::Sink;
use impulse_test_support::LineClient;

const WAIT: Duration = Duration::from_secs(30);

/// The metrics address `impulse serve` logged.
fn metrics_addr(startup: &str) -> SocketAddr {
    startup
        .split("metrics on http://")
        .nth(1)
        .and_then(|rest| rest.split("/metrics").next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no metrics line in {startup}"))
}

/// A config: spool in `dir`, `target.test` routed to `hop`, retries after `interval`,
/// `networks` may relay, loopback may send XCLIENT; `extra` goes into `[relay]`.
fn write_config(path: &Path, dir: &Path, hop: SocketAddr, networks: &[&str], extra: &str) {
    let networks: Vec<String> = networks.iter().map(|n| format!("{n:?}")).collect();
    let text = format!(
        r#"hostname = "relay.test"
listen = ["127.0.0.1:0"]
[spool]
dir = "{spool}"
[metrics]
listen = "127.0.0.1:0"
[plugins.xclient]
authorized = ["127.0.0.0/8"]
[relay]
domains = []
networks = [{networks}]
{extra}
[relay.retry]
intervals = ["1h"]
[[relay.route]]
domains = ["target.test"]
hosts = ["{hop}"]
tls = "none"
"#,
        spool = dir.join("spool").display(),
        networks = networks.join(", "),
    );
    std::fs::write(path, text).unwrap();
}

fn serve(config: &Path) -> Serve {
    impulse_test_support::impulse!().serve_config(config)
}

/// A session up to MAIL, as the client at `addr` when given (XCLIENT), else loopback.
fn session(server: &str, client: Option<&str>) -> LineClient {
    let mut c = LineClient::connect(server.parse().unwrap());
    assert!(c.reply().starts_with("220"));
    let ehlo = c.cmd("EHLO client.test");
    if let Some(addr) = client {
        assert!(ehlo.contains("XCLIENT"), "{ehlo}");
        let reply = c.cmd(&format!("XCLIENT ADDR={addr}"));
        assert!(reply.starts_with("220"), "{reply}");
        assert!(c.cmd("EHLO client.test").starts_with("250"));
    }
    let mail = c.cmd("MAIL FROM:<a@sender.test>");
    assert!(mail.starts_with("250"), "{mail}");
    c
}

/// The RCPT reply for `rcpt`; on 250, the message is sent and must be accepted.
fn send(server: &str, client: Option<&str>, rcpt: &str) -> String {
    let mut c = session(server, client);
    let reply = c.cmd(&format!("RCPT TO:<{rcpt}>"));
    if reply.starts_with("250") {
        assert!(c.cmd("DATA").starts_with("354"));
        let end = c.cmd(&format!("Subject: to {rcpt}\r\n\r\nhello\r\n."));
        assert!(end.starts_with("250"), "{end}");
    }
    c.cmd("QUIT");
    reply
}

/// Scrapes until `series` reaches `at_least`; returns that scrape.
fn scrape_until(addr: SocketAddr, series: &str, at_least: f64) -> String {
    let start = Instant::now();
    loop {
        let text = scrape(addr);
        if value(&text, series).is_some_and(|v| v >= at_least) {
            return text;
        }
        assert!(
            start.elapsed() < WAIT,
            "{series} never reached {at_least}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn defer_later(rcpt: &str) -> Option<&'static str> {
    (rcpt == "later@target.test").then_some("450 4.2.0 try later\r\n")
}

#[test]
fn deliveries_and_a_deferral_are_counted_and_promtool_accepts_the_scrape() {
    let sink = Sink::with_rule(defer_later);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("impulse.toml");
    write_config(&config, dir.path(), sink.addr, &["127.0.0.0/8"], "");
    let mut server = serve(&config);
    server.drain_log();
    let metrics = metrics_addr(&server.startup);

    let before = scrape(metrics);
    assert_eq!(
        value(&before, "impulse_relay_deliveries_total{outcome=\"sent\"}"),
        Some(0.0),
        "{before}"
    );
    assert_eq!(
        value(&before, "impulse_relay_queue_messages{status=\"pending\"}"),
        Some(0.0)
    );

    for rcpt in ["one@target.test", "two@target.test"] {
        assert!(send(&server.addr, None, rcpt).starts_with("250"));
    }
    assert!(send(&server.addr, None, "later@target.test").starts_with("250"));
    assert_eq!(sink.wait_for(2, WAIT).len(), 2);

    scrape_until(
        metrics,
        "impulse_relay_deliveries_total{outcome=\"sent\"}",
        2.0,
    );
    let text = scrape_until(
        metrics,
        "impulse_relay_deliveries_total{outcome=\"deferred\"}",
        1.0,
    );
    // The snapshot may be a second old: wait for the deferral to show in the queue.
    let text = if value(&text, "impulse_relay_queue_messages{status=\"deferred\"}") == Some(1.0) {
        text
    } else {
        scrape_until(
            metrics,
            "impulse_relay_queue_messages{status=\"deferred\"}",
            1.0,
        )
    };
    // The deferred recipient's record is written on an I/O thread after the outcome.
    let text = if value(&text, "impulse_relay_state_writes_total{result=\"ok\"}") >= Some(1.0) {
        text
    } else {
        scrape_until(
            metrics,
            "impulse_relay_state_writes_total{result=\"ok\"}",
            1.0,
        )
    };
    let at = |series: &str| value(&text, series).unwrap_or_else(|| panic!("{series}:\n{text}"));
    assert_eq!(at("impulse_relay_deliveries_total{outcome=\"sent\"}"), 2.0);
    assert_eq!(
        at("impulse_relay_deliveries_total{outcome=\"deferred\"}"),
        1.0
    );
    assert_eq!(
        at("impulse_relay_deliveries_total{outcome=\"bounced\"}"),
        0.0
    );
    assert_eq!(at("impulse_relay_queue_messages{status=\"deferred\"}"), 1.0);
    assert_eq!(at("impulse_relay_queue_messages{status=\"pending\"}"), 0.0);
    assert_eq!(
        at("impulse_relay_queue_recipients{status=\"deferred\"}"),
        1.0
    );
    assert_eq!(
        at("impulse_relay_queue_destination_recipients{domain=\"target.test\"}"),
        1.0
    );
    // The deferral is classified: one failure, under some class of the classifier.
    assert_eq!(sum(&text, "impulse_relay_delivery_failures_total"), 1.0);
    assert!(
        text.contains("impulse_relay_delivery_failures_total{outcome=\"deferred\",class=\""),
        "{text}"
    );
    assert!(at("impulse_relay_dns_lookups_total{result=\"hops\"}") >= 1.0);
    // Each delivered message's record is its removal; the deferred one was written.
    assert!(at("impulse_relay_state_writes_total{result=\"ok\"}") >= 1.0);
    assert_eq!(
        at("impulse_relay_state_writes_total{result=\"failed\"}"),
        0.0
    );
    assert_eq!(
        at("impulse_relay_notifications_total{kind=\"failed\"}"),
        0.0
    );
    if let Some(verdict) = promtool_check(&text) {
        verdict.expect("promtool accepts the exposition");
    }
    server.terminate();
    assert!(server.wait().success());
}

#[test]
fn sighup_moves_a_route_to_another_sink_widens_networks_and_refuses_a_bad_relay_table() {
    let (old, new) = (Sink::start(), Sink::start());
    let dir = tempfile::tempdir().unwrap();
    let config: PathBuf = dir.path().join("impulse.toml");
    write_config(&config, dir.path(), old.addr, &["127.0.0.0/8"], "");
    let mut server = serve(&config);
    let addr = server.addr.clone();

    assert!(send(&addr, None, "first@target.test").starts_with("250"));
    assert_eq!(old.wait_for(1, WAIT).len(), 1);
    let outside = send(&addr, Some("192.0.2.7"), "out@target.test");
    assert!(outside.starts_with("554 5.7.1"), "{outside}");

    write_config(
        &config,
        dir.path(),
        new.addr,
        &["127.0.0.0/8", "192.0.2.0/24"],
        "",
    );
    server.hangup();
    let log = server.log_until("SIGHUP: configuration");
    assert!(log.contains("SIGHUP: configuration reloaded"), "{log}");
    // The relay thread logs its line when it takes the settings: before or after that one.
    if !log.contains("relay: settings reloaded") {
        server.log_until("relay: settings reloaded");
    }

    let outside = send(&addr, Some("192.0.2.7"), "out@target.test");
    assert!(outside.starts_with("250"), "the new networks: {outside}");
    assert!(send(&addr, None, "second@target.test").starts_with("250"));
    let got = new.wait_for(2, WAIT);
    let mut to: Vec<String> = got.iter().flat_map(|m| m.to.clone()).collect();
    to.sort();
    assert_eq!(to, ["out@target.test", "second@target.test"]);
    assert_eq!(old.messages().len(), 1, "nothing new for the old next hop");

    // A bad [relay] table: refused with the rest, the running settings stay.
    write_config(
        &config,
        dir.path(),
        old.addr,
        &["127.0.0.0/8"],
        "connections_per_destination = 0",
    );
    server.hangup();
    let log = server.log_until("SIGHUP: configuration");
    assert!(log.contains("configuration refused"), "{log}");
    assert!(log.contains("relay.connections_per_destination"), "{log}");
    server.drain_log();
    let outside = send(&addr, Some("192.0.2.7"), "again@target.test");
    assert!(outside.starts_with("250"), "the networks stay: {outside}");
    assert_eq!(new.wait_for(3, WAIT).len(), 3, "the route stays");
    assert_eq!(old.messages().len(), 1);
    server.terminate();
    assert!(server.wait().success());
}

#[test]
fn sighup_gives_route_lookups_new_nameservers_and_keeps_them_otherwise() {
    use impulse_test_support::dns::DnsServer;
    // The MX hosts are on 127.0.0.2: 127.0.0.1 is this server's own (an MX there loops).
    let sink = Sink::on(std::net::TcpListener::bind("127.0.0.2:0").unwrap(), |_| {
        None
    });
    let dns = DnsServer::start();
    for domain in ["far.test", "near.test"] {
        dns.mx(domain, 300, &[(10, &format!("mx.{domain}"))]).a(
            &format!("mx.{domain}"),
            300,
            &["127.0.0.2".parse().unwrap()],
        );
    }
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dns_at = |ns: SocketAddr, extra: &str| {
        format!(
            "port = {}\n{extra}\n[relay.dns]\nnameservers = [\"{ns}\"]\ntimeout = \"1s\"\n",
            sink.addr.port()
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let config: PathBuf = dir.path().join("impulse.toml");
    let networks = ["127.0.0.0/8"];
    write_config(
        &config,
        dir.path(),
        sink.addr,
        &networks,
        &dns_at(silent.local_addr().unwrap(), ""),
    );
    let mut server = serve(&config);
    let addr = server.addr.clone();
    // A nameserver that never answers: the MX lookup times out, the message is deferred.
    assert!(send(&addr, None, "u@far.test").starts_with("250"));
    let spool = dir.path().join("spool");
    let start = Instant::now();
    let status = loop {
        let out = impulse_test_support::impulse!().spool_tool("queue", &spool, &["list", "--json"]);
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let rcpt = &list[0]["recipients"][0];
        if rcpt["status"] == "deferred" || start.elapsed() > WAIT {
            break rcpt.clone();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status["status"], "deferred", "{status}");
    assert!(
        status["last_reply"]
            .as_str()
            .unwrap_or_default()
            .contains("timed out"),
        "{status}"
    );
    // The responder named at a reload: a flush delivers through the MX it gives.
    write_config(
        &config,
        dir.path(),
        sink.addr,
        &networks,
        &dns_at(dns.addr, ""),
    );
    server.hangup();
    server.log_until("relay: nameservers");
    let flush = impulse_test_support::impulse!().spool_tool("queue", &spool, &["flush"]);
    assert!(flush.status.success(), "{flush:?}");
    if sink.wait_for(1, WAIT).len() != 1 {
        server.terminate();
        panic!("not delivered after the reload:\n{}", server.rest_of_log());
    }
    // A reload that leaves [relay.dns] alone keeps the responder for new domains.
    write_config(
        &config,
        dir.path(),
        sink.addr,
        &networks,
        &dns_at(dns.addr, "delay_warning = \"4h\""),
    );
    server.hangup();
    let log = server.log_until("SIGHUP: configuration");
    assert!(log.contains("SIGHUP: configuration reloaded"), "{log}");
    assert!(send(&addr, None, "u@near.test").starts_with("250"));
    let got = sink.wait_for(2, WAIT);
    assert_eq!(got.len(), 2, "near.test routed through the responder");
    assert_eq!(got[1].to, vec!["u@near.test"]);
    server.terminate();
    assert!(server.wait().success());
}
