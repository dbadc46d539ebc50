//! A plugin loaded from a `.so` decides over a real socket: the test plugin
//! (`tests/plugins/test-plugin`) rejects the recipient its `[plugins.test-plugin]` table
//! names, accepts the others (one through a pending verdict completed from its own thread),
//! contains its own panic, and serves its XTEST extension verb.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use impulse::hooks::{toml, Registry};

use impulse_test_support::line::LineClient;
use impulse_test_support::server::TestServer;

#[path = "support/load_so.rs"]
mod load_so;
use load_so::load_so;

/// Builds the test plugin against the workspace's lock file; returns the `.so`.
fn build_plugin() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let plugin_dir = root.join("tests/plugins/test-plugin");
    std::fs::copy(root.join("Cargo.lock"), plugin_dir.join("Cargo.lock")).unwrap();
    let target_dir = root.join("target/plugin-tests/serve");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .current_dir(root)
        .arg("build")
        .arg("--manifest-path")
        .arg(plugin_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .status()
        .expect("run cargo");
    assert!(status.success(), "building the test plugin failed");
    target_dir.join("debug").join(format!(
        "{}test_plugin{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

#[test]
fn a_so_plugin_rejects_and_accepts_as_configured() {
    let so = build_plugin();
    let configs: toml::Table = toml::from_str("[test-plugin]\nreject = 'bad@example.com'").unwrap();
    let mut registry = Registry::new();
    assert_eq!(
        load_so(&mut registry, &so, &configs).unwrap(),
        ["test-plugin"]
    );
    let server = TestServer::with(registry, 1);
    let mut c = LineClient::connect(server.addr);
    assert!(c.reply().starts_with("220 mx.test"));
    let ehlo = c.cmd("EHLO client.test");
    assert!(ehlo.contains("XTEST ECHO"), "{ehlo}");
    assert_eq!(c.cmd("XTEST hello"), "250 2.0.0 xtest hello");
    assert!(c
        .cmd("MAIL FROM:<a@example.com> XTEST-ID=42")
        .starts_with("250 2.1.0"));
    assert_eq!(
        c.cmd("RCPT TO:<bad@example.com>"),
        "550 5.1.1 Rejected by test-plugin"
    );
    // The trace is a transaction note: it keeps the refused recipient's hooks too.
    assert_eq!(
        c.cmd("RCPT TO:<good@example.com>"),
        "250 2.1.5 first,p10,first,p10,p20,p30,last"
    );
    // Pending in the plugin's p30 hook, completed from its thread 20 ms later.
    let slow = c.cmd("RCPT TO:<slow@example.com>");
    assert!(slow.starts_with("250 2.1.5"), "{slow}");
    // A panicking hook answers 451 and the server keeps serving.
    assert!(c
        .cmd("RCPT TO:<panic@example.com>")
        .starts_with("451 4.3.0"));
    assert!(c.cmd("DATA").starts_with("354"));
    c.w.write_all(b"Subject: plugin\r\n\r\nhi\r\n.\r\n")
        .unwrap();
    let queued = c.reply();
    assert!(queued.starts_with("250 2.0.0 Ok: queued as"), "{queued}");
    assert!(c.cmd("QUIT").starts_with("221"));
    let list = server.spool.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].recipients, ["good@example.com", "slow@example.com"]);
    // The plugin's transaction note travels with the message in the spool envelope.
    let envelope = server.spool.read_envelope(list[0].id).unwrap();
    let trace = envelope
        .notes
        .iter()
        .find_map(|n| n.strip_prefix("test-plugin.trace="))
        .unwrap_or_else(|| panic!("no trace note in {:?}", envelope.notes));
    // Every RCPT's hooks, up to the panicking one's p20.
    assert_eq!(
        trace,
        "first,p10,first,p10,p20,p30,last,first,p10,p20,p30,last,first,p10,p20"
    );
    server.stop();
}
