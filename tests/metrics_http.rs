//! `[metrics] listen`: `impulse serve` counts what a load of `impulse send` did and serves it
//! on `GET /metrics`; the counts match what was sent, the log agrees, scrapes during the
//! load succeed and only grow, and `promtool check metrics` accepts the exposition.
// A socket test: a scraper thread beside the load, polls on the real clock.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use impulse_test_support::metrics::{self, scrape, sum, value};
use impulse_test_support::{cli, LineClient};

const MESSAGES: u64 = 24;

/// The metrics address `impulse serve` logged.
fn metrics_addr(startup: &str) -> SocketAddr {
    startup
        .split("metrics on http://")
        .nth(1)
        .and_then(|rest| rest.split("/metrics").next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no metrics line in {startup}"))
}

#[test]
fn counts_match_what_was_sent_and_promtool_accepts_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("impulse.toml");
    std::fs::write(
        &config,
        "workers = 2\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let impulse = impulse_test_support::impulse!();
    let mut serve = impulse.serve(|c| {
        c.arg("--config")
            .arg(&config)
            .args(["--listen", "127.0.0.1:0", "--spool"])
            .arg(dir.path().join("spool"));
    });
    let addr = metrics_addr(&serve.startup);

    let (status, _) = metrics::get(addr, "/");
    assert!(status.starts_with("HTTP/1.1 404"), "{status}");
    let before = scrape(addr);
    assert_eq!(
        value(&before, "impulse_connections_accepted_total"),
        Some(0.0)
    );
    assert_eq!(value(&before, "impulse_spool_messages"), Some(0.0));

    // Scrape while the load runs: every scrape answers, and counters only grow.
    let done = Arc::new(AtomicBool::new(false));
    let scraper = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut last = 0.0;
            let mut scrapes = 0;
            while !done.load(Ordering::Relaxed) || scrapes == 0 {
                let text = scrape(addr);
                let commands = value(&text, "impulse_commands_total").unwrap();
                assert!(commands >= last, "{commands} after {last}");
                last = commands;
                scrapes += 1;
            }
            scrapes
        })
    };
    let count = MESSAGES.to_string();
    let out = impulse.send(
        &cli::to_server(
            &serve.addr,
            &[
                "--count",
                &count,
                "--concurrency",
                "3",
                "--size",
                "3000",
                "--per-connection",
                "5",
            ],
        ),
        None,
    );
    let summary = cli::succeeded(&out);
    assert!(
        summary.contains(&format!("messages: {MESSAGES} ")),
        "{summary}"
    );
    let opened: u64 = summary
        .split("connections (")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("connections opened in the summary");
    done.store(true, Ordering::Relaxed);
    let scrapes = scraper.join().expect("the scraper saw no error");
    assert!(scrapes >= 1);

    // One message refused at the end of data (a bare LF), one unknown command.
    let mut c = LineClient::connect(serve.addr.parse().unwrap());
    assert!(c.reply().starts_with("220 "));
    assert!(c.cmd("EHLO client.test").starts_with("250"));
    assert!(c.cmd("XYZZY").starts_with("5"));
    assert!(c.cmd("MAIL FROM:<a@example.org>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<b@example.com>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: x\r\n\r\nbare\nline\r\n.\r\n");
    assert!(c.reply().starts_with("550"));
    assert!(c.cmd("QUIT").starts_with("221"));
    drop(c);

    // Every connection is closed (and counted) once the gauge is back at zero.
    let text = loop {
        let text = scrape(addr);
        if value(&text, "impulse_connections_open") == Some(0.0) {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let connections = opened + 1;
    let get = |series: &str| value(&text, series).unwrap_or_else(|| panic!("{series}\n{text}"));
    assert_eq!(
        get("impulse_connections_accepted_total"),
        connections as f64
    );
    assert_eq!(
        get("impulse_messages_total{outcome=\"accepted\"}"),
        MESSAGES as f64
    );
    assert_eq!(get("impulse_messages_total{outcome=\"rejected\"}"), 1.0);
    assert_eq!(
        get("impulse_spool_commits_total{result=\"ok\"}"),
        MESSAGES as f64
    );
    assert_eq!(get("impulse_spool_commits_total{result=\"failed\"}"), 0.0);
    assert_eq!(
        get("impulse_spool_commit_duration_seconds_count"),
        MESSAGES as f64
    );
    assert_eq!(
        get("impulse_spool_commit_duration_seconds_bucket{le=\"+Inf\"}"),
        MESSAGES as f64
    );
    assert_eq!(get("impulse_spool_messages"), MESSAGES as f64);
    assert_eq!(
        get("impulse_connections_refused_total{reason=\"per_ip\"}"),
        0.0
    );
    assert_eq!(get("impulse_tls_handshakes_total{result=\"ok\"}"), 0.0);
    assert_eq!(get("impulse_plugin_panics_total"), 0.0);
    assert!(get("impulse_received_bytes_total") >= (MESSAGES * 3000) as f64);
    // Every command is answered once, DATA twice (354, then the end of data), and every
    // connection has its banner.
    let commands = get("impulse_commands_total");
    let replies = sum(&text, "impulse_replies_total");
    assert_eq!(
        replies,
        commands + (MESSAGES + 1) as f64 + connections as f64
    );
    assert!(get("impulse_replies_total{class=\"5xx\"}") >= 2.0);
    assert_eq!(get("impulse_replies_total{class=\"other\"}"), 0.0);

    match metrics::promtool_check(&text) {
        None => {}
        Some(Ok(())) => {}
        Some(Err(said)) => panic!("promtool check metrics:\n{said}\n{text}"),
    }

    // The log's per-connection command counts add up to the same total.
    serve.terminate();
    assert!(serve.wait().success());
    let log = serve.rest_of_log();
    let logged: u64 = log
        .lines()
        .filter_map(|l| l.split(" commands=").nth(1)?.trim().parse::<u64>().ok())
        .sum();
    assert_eq!(logged as f64, commands, "{log}");
}
