//! `impulse send --count` (bulk mode) against Impulse's own server over real sockets: every
//! message in the spool at about the size asked, the summary, and the exit codes.

use std::io::Read;

use impulse_test_support::cli;
use impulse_test_support::server::TestServer;

fn send(args: &[&str]) -> std::process::Output {
    impulse_test_support::impulse!().send(args, None)
}

#[test]
fn bulk_mode_sends_count_messages_and_summarises() {
    let mx = TestServer::start();
    let spool = mx.spool.clone();
    let server = mx.addr.to_string();
    let common = [
        "--server",
        &server,
        "--from",
        "bulk@example.org",
        "--helo",
        "client.test",
    ];

    let mut args = common.to_vec();
    args.extend([
        "--to",
        "r1@example.com",
        "--to",
        "r2@example.com",
        "--count",
        "30",
        "--concurrency",
        "3",
        "--size",
        "2048",
        "--per-connection",
        "4",
    ]);
    let out = send(&args);
    let stdout = cli::succeeded(&out);
    assert!(stdout.contains("messages: 30 (60 recipients)"), "{stdout}");
    assert!(
        stdout.contains("recipients: 60 delivered, 0 deferred, 0 bounced"),
        "{stdout}"
    );
    assert!(stdout.contains(" msgs/s"), "{stdout}");
    // 30 messages, at most 4 per connection: at least 8 connections.
    let opened: u32 = stdout
        .split("connections (")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("connections opened in the summary");
    assert!(opened >= 8, "{stdout}");

    let entries = spool.list().unwrap();
    assert_eq!(entries.len(), 30);
    let mut subjects = std::collections::HashSet::new();
    for entry in &entries {
        assert_eq!(entry.sender, "bulk@example.org");
        assert_eq!(entry.recipients, ["r1@example.com", "r2@example.com"]);
        let mut stored = String::new();
        spool
            .open_message(entry.id)
            .unwrap()
            .read_to_string(&mut stored)
            .unwrap();
        let body = stored.split_once("\r\nFrom: ").expect("headers").1;
        // The message starts with "From: "; it is 2048 bytes, or 1-2 fewer when the last
        // line had no room for more than its CRLF.
        let size = "From: ".len() + body.len();
        assert!((2046..=2048).contains(&size), "{size} bytes");
        let subject = stored
            .lines()
            .find(|l| l.starts_with("Subject: "))
            .unwrap()
            .to_owned();
        subjects.insert(subject);
    }
    assert_eq!(subjects.len(), 30, "every message is a different one");

    // Every recipient refused (an address with a line break never reaches the wire): exit 1
    // and the bounce class in the summary.
    let mut args = common.to_vec();
    args.extend(["--to", "x\r\n@example.com", "--count", "5"]);
    let out = send(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("recipients: 0 delivered, 0 deferred, 5 bounced"),
        "{stdout}"
    );
    assert!(stdout.contains("  bounced: class "), "{stdout}");
    assert_eq!(spool.list().unwrap().len(), 30);
    mx.stop();

    // Nobody listens any more: every message deferred, EX_TEMPFAIL.
    let mut args = common.to_vec();
    args.extend([
        "--to",
        "r@example.com",
        "--count",
        "4",
        "--concurrency",
        "2",
    ]);
    let out = send(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(75), "{stdout}");
    assert!(
        stdout.contains("recipients: 0 delivered, 4 deferred, 0 bounced"),
        "{stdout}"
    );
}
