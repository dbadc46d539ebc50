//! `ServerHandle::reloader` (what SIGHUP calls) on a running server: the connection caps
//! change at once, new sessions take the new factory settings while an open one keeps its
//! own, a bad configuration changes nothing, and `ServerBuilder::on_reload` subscribers see
//! each accepted configuration (the relay's hook). SIGHUP itself is tested with the binary
//! (the root's `tests/serve_reload.rs`).
// Socket tests run real peers on threads and wait on the real clock.
#![allow(clippy::disallowed_methods)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use impulse_test_support::line::LineClient;
use smtp_server::config::ServerConfig;
use smtp_server::server::Server;

#[test]
fn reloads_apply_to_new_connections_and_subscribers() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig {
        workers: 1,
        ..ServerConfig::default()
    };
    config.limits.connections_per_ip = 1;
    config.limits.exempt_loopback = false;
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let handle = Server::builder()
        .config(config.clone())
        .hostname("mx.test")
        .listen("127.0.0.1:0".parse().unwrap())
        .spool_dir(dir.path().join("spool"))
        .on_reload(move |c| {
            counter.store(c.limits.recipients, Ordering::SeqCst);
        })
        .build()
        .unwrap()
        .spawn()
        .unwrap();
    let addr = handle.local_addrs()[0];
    let reloader = handle.reloader();

    let mut first = LineClient::connect(addr);
    assert!(first.reply().starts_with("220 mx.test"));
    let mut second = LineClient::connect(addr);
    assert!(second.reply().starts_with("421 4.7.0"), "one per IP");

    // A bad configuration: an error naming the key, nothing changes, no subscriber call.
    let mut bad = config.clone();
    bad.timeouts.command = smtp_server::config::ConfigDuration::from_secs(0);
    let err = reloader.reload(bad).unwrap_err().to_string();
    assert!(err.contains("timeouts.command"), "{err}");
    assert_eq!(reloader.generation(), 0);
    assert_eq!(seen.load(Ordering::SeqCst), 0);

    let mut good = config.clone();
    good.limits.connections_per_ip = 5;
    good.limits.recipients = 7;
    good.limits.message_size = 123_456;
    good.smtp.banner = "reloaded".into();
    reloader.reload(good).unwrap();
    assert_eq!(reloader.generation(), 1);
    assert_eq!(seen.load(Ordering::SeqCst), 7);

    // The cap at once; the new banner and SIZE for the new session only.
    let mut third = LineClient::connect(addr);
    let banner = third.reply();
    assert_eq!(banner, "220 mx.test reloaded");
    assert!(third.cmd("EHLO c.test").contains("SIZE 123456"));
    let ehlo = first.cmd("EHLO c.test");
    assert!(ehlo.contains("SIZE 33554432"), "{ehlo}");
    assert!(first.cmd("QUIT").starts_with("221"));
    assert!(third.cmd("QUIT").starts_with("221"));
    handle.shutdown();
    handle.join().unwrap();
}
