//! Relay control in a reload (what SIGHUP calls): new `[relay] domains`, `networks` and
//! `recipients` are in force for the next RCPT, on a connection already open too (relay
//! control is consulted at each RCPT); a recipients file that does not load refuses the
//! whole reload and the running table stays.
// Socket tests run real peers on threads and wait on the real clock.
#![allow(clippy::disallowed_methods)]

use impulse_test_support::line::LineClient;
use smtp_server::config::{RelayConfig, RouteConfig, ServerConfig};
use smtp_server::server::Server;

/// A `[relay]` table for `domains` (routed to a loopback hop), with no trusted network.
fn relay(domains: &[&str], recipients: Option<std::path::PathBuf>) -> RelayConfig {
    let domains: Vec<String> = domains.iter().map(|d| (*d).to_owned()).collect();
    RelayConfig {
        domains: domains.clone(),
        networks: Vec::new(),
        recipients,
        routes: vec![RouteConfig {
            domains,
            hosts: vec!["127.0.0.1:9".into()],
            ..RouteConfig::default()
        }],
        ..RelayConfig::default()
    }
}

fn rcpt(c: &mut LineClient, to: &str) -> String {
    c.cmd(&format!("RCPT TO:<{to}>"))
}

#[test]
fn new_relay_control_is_in_force_at_the_next_rcpt_and_a_bad_file_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        workers: 1,
        relay: Some(relay(&["a.test"], None)),
        ..ServerConfig::default()
    };
    let handle = Server::builder()
        .config(config.clone())
        .hostname("mx.test")
        .listen("127.0.0.1:0".parse().unwrap())
        .spool_dir(dir.path().join("spool"))
        .build()
        .unwrap()
        .spawn()
        .unwrap();
    let reloader = handle.reloader();
    let mut c = LineClient::connect(handle.local_addrs()[0]);
    assert!(c.reply().starts_with("220"));
    assert!(c.cmd("EHLO c.test").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<s@sender.test>").starts_with("250"));
    assert!(rcpt(&mut c, "u@a.test").starts_with("250"));
    let denied = rcpt(&mut c, "u@b.test");
    assert!(denied.starts_with("554 5.7.1"), "{denied}");

    // b.test instead of a.test, with a recipients table.
    let file = dir.path().join("recipients");
    std::fs::write(&file, "known@b.test\n").unwrap();
    let mut next = config.clone();
    next.relay = Some(relay(&["b.test"], Some(file.clone())));
    reloader.reload(next).unwrap();
    assert!(rcpt(&mut c, "known@b.test").starts_with("250"));
    let unknown = rcpt(&mut c, "other@b.test");
    assert!(unknown.starts_with("550 5.1.1"), "{unknown}");
    let gone = rcpt(&mut c, "v@a.test");
    assert!(gone.starts_with("554 5.7.1"), "{gone}");

    // A recipients file that cannot be read: refused, the table in force stays.
    let mut bad = config.clone();
    bad.relay = Some(relay(&["a.test"], Some(dir.path().join("missing"))));
    let err = reloader.reload(bad).unwrap_err().to_string();
    assert!(err.contains("relay.recipients"), "{err}");
    assert_eq!(reloader.generation(), 1);
    assert!(rcpt(&mut c, "known@b.test").starts_with("250"));
    assert!(rcpt(&mut c, "w@a.test").starts_with("554 5.7.1"));
    assert!(c.cmd("QUIT").starts_with("221"));
    handle.shutdown();
    handle.join().unwrap();
}
