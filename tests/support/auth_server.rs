//! Impulse's server with the auth-file plugin (user `alice`, password `secret`) and a
//! throw-away certificate, for the AUTH and listener socket tests; and Python's smtplib
//! run on a script.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use impulse::server::config::ServerConfig;
use impulse::server::spool::{Envelope, QueueId};
use impulse_plugin_auth_file as _;
use impulse_test_support::server::{static_registry, TestServer};
use impulse_test_support::tls::{certs, Certs};

/// The user and password in the user file.
pub const USER: &str = "alice";
/// Alice's password.
pub const PASSWORD: &str = "secret";

/// A running server with AUTH, its certificate files and user file.
pub struct AuthServer {
    /// The server (its `addrs`: the `mx` listener, then the `[[listener]]` tables).
    pub server: TestServer,
    /// The certificate (its CA file is what clients trust).
    pub certs: Certs,
}

/// A server with `[plugins.auth-file]` and `[tls]` configured, then `tweak` applied.
pub fn start(tweak: impl FnOnce(&mut ServerConfig)) -> AuthServer {
    let certs = certs();
    let users = certs.dir.path().join("users");
    let hash = impulse_plugin_auth_file::passwd::hash_password(PASSWORD).unwrap();
    std::fs::write(&users, format!("{USER}:{hash}\n")).unwrap();
    let registry = static_registry(
        &format!("[auth-file]\nfile = {:?}\n", users.display().to_string()),
        &["auth-file"],
    );
    let (cert, key) = (certs.cert_file.clone(), certs.key_file.clone());
    let server = TestServer::builder()
        .registry(registry)
        .config(move |c| {
            c.tls.cert = Some(cert);
            c.tls.key = Some(key);
            tweak(c);
        })
        .start();
    AuthServer { server, certs }
}

impl AuthServer {
    /// The address of listener `i` (0: the `mx` listener).
    pub fn addr(&self, i: usize) -> std::net::SocketAddr {
        self.server.addrs[i]
    }

    /// The one message in the spool: its envelope and its bytes.
    pub fn only_message(&self) -> (Envelope, String) {
        let ids: Vec<QueueId> = self.server.queued();
        assert_eq!(ids.len(), 1, "one message in the spool");
        let env = self.server.spool.read_envelope(ids[0]).unwrap();
        let bytes = self.server.stored(ids[0]);
        (env, String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// Runs `script` with python3 (`argv[1..]` = `args`); `None` when python3 is missing (a
/// loud skip, a failure under `CI`). Panics with its output when it fails.
pub fn python(script: &str, args: &[&str]) -> Option<String> {
    let python = impulse_test_support::peers::program("python3")?;
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "python3 failed:\n{text}");
    Some(text)
}

/// Runs swaks with `args` against `addr`; `None` when swaks is missing. Returns whether it
/// succeeded and its transcript.
pub fn swaks(addr: std::net::SocketAddr, args: &[&str]) -> Option<(bool, String)> {
    let swaks = impulse_test_support::peers::program("swaks")?;
    let out = Command::new(swaks)
        .args([
            "--server",
            &addr.ip().to_string(),
            "--port",
            &addr.port().to_string(),
        ])
        .args([
            "--from",
            "a@example.org",
            "--to",
            "b@example.com",
            "--helo",
            "client.test",
        ])
        .args(["--timeout", "10"])
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), text))
}

/// The CA file's path as a string, for clients.
pub fn ca(certs: &Certs) -> String {
    path(&certs.ca_file)
}

fn path(p: &Path) -> String {
    p.display().to_string()
}
