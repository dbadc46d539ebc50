//! SIGHUP on `impulse serve`: the configuration file is read again; new connections get the
//! new limits (SIZE in the EHLO reply) and the new certificate, a session already open keeps
//! what it started with, and a broken configuration is refused with a log line while the
//! running one stays.

use std::net::SocketAddr;
use std::path::Path;

use impulse_test_support::line::LineClient;
use impulse_test_support::tls::{certs, starttls, tls_cmd, Certs};

/// `[limits] message_size` and `[tls]` with the files of `certs`.
fn write_config(file: &Path, size: u64, certs: &Certs) {
    let text = format!(
        "[limits]\nmessage_size = {size}\n[tls]\ncert = {:?}\nkey = {:?}\n",
        certs.cert_file.display().to_string(),
        certs.key_file.display().to_string()
    );
    std::fs::write(file, text).unwrap();
}

/// A session past its banner and EHLO; the EHLO reply.
fn ehlo(addr: SocketAddr) -> (LineClient, String) {
    let mut c = LineClient::connect(addr);
    assert!(c.reply().starts_with("220 "));
    let reply = c.cmd("EHLO client.test");
    assert!(reply.starts_with("250"), "{reply}");
    (c, reply)
}

#[test]
fn sighup_reloads_limits_and_certificate_for_new_connections_only() {
    let dir = tempfile::tempdir().unwrap();
    let (old_certs, new_certs) = (certs(), certs());
    let config = dir.path().join("impulse.toml");
    write_config(&config, 100_000, &old_certs);
    let mut serve = impulse_test_support::impulse!().serve(|c| {
        c.arg("--config")
            .arg(&config)
            .args(["--listen", "127.0.0.1:0", "--spool"])
            .arg(dir.path().join("spool"));
    });
    let addr: SocketAddr = serve.addr.parse().unwrap();

    let (mut before, reply) = ehlo(addr);
    assert!(reply.contains("SIZE 100000"), "{reply}");

    write_config(&config, 200_000, &new_certs);
    serve.hangup();
    let log = serve.log_until("SIGHUP: configuration");
    assert!(log.contains("configuration reloaded"), "{log}");

    // A new connection: the new size, the new certificate (the old CA does not verify it).
    let (after, reply) = ehlo(addr);
    assert!(reply.contains("SIZE 200000"), "{reply}");
    let mut tls = starttls(after, new_certs.client_config()).expect("the new certificate");
    let reply = tls_cmd(&mut tls, "EHLO client.test");
    assert!(reply.contains("SIZE 200000"), "{reply}");
    let (other, _) = ehlo(addr);
    let refused = starttls(other, old_certs.client_config());
    assert!(refused.is_err(), "the old CA verified the new certificate");

    // The session opened before the reload keeps its size and its certificate.
    let reply = before.cmd("EHLO client.test");
    assert!(reply.contains("SIZE 100000"), "{reply}");
    let mut tls = starttls(before, old_certs.client_config()).expect("the old certificate");
    let reply = tls_cmd(&mut tls, "EHLO client.test");
    assert!(reply.contains("SIZE 100000"), "{reply}");
    assert!(tls_cmd(&mut tls, "QUIT").starts_with("221"));

    // A broken configuration (a value out of range), then a certificate that is not there:
    // refused with a line that says why; the running configuration stays.
    std::fs::write(&config, "[limits]\nmessage_size = 10\n").unwrap();
    serve.hangup();
    let log = serve.log_until("SIGHUP: configuration");
    assert!(
        log.contains("configuration refused, the running one stays")
            && log.contains("limits.message_size"),
        "{log}"
    );
    std::fs::write(
        &config,
        "[limits]\nmessage_size = 300000\n[tls]\ncert = \"/nonexistent/c.pem\"\nkey = \"/nonexistent/k.pem\"\n",
    )
    .unwrap();
    serve.hangup();
    let log = serve.log_until("SIGHUP: configuration");
    assert!(log.contains("configuration refused"), "{log}");
    assert!(log.contains("/nonexistent/c.pem"), "{log}");
    let (after, reply) = ehlo(addr);
    assert!(reply.contains("SIZE 200000"), "{reply}");
    starttls(after, new_certs.client_config()).expect("still the new certificate");

    serve.terminate();
    assert!(serve.wait().success());
}
