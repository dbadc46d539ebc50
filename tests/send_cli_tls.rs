//! `impulse send --tls-required --tls-ca FILE` against a scripted rustls server: the message
//! arrives byte-exact under TLS; without the CA the certificate does not verify and every
//! recipient is deferred; an unusable CA file is a bad argument. Bulk mode (`--count`, the
//! mio engine) honours the same flags; `--chunking` sends BDAT when the server offers it.

use std::process::Output;

use impulse_test_support::cli;

use impulse_test_support::tls::{certs, FakeServer, Script};

fn send(args: &[&str]) -> Output {
    impulse_test_support::impulse!().send(args, None)
}

#[test]
fn tls_required_with_a_ca_file_delivers_over_tls() {
    let certs = certs();
    let body = b"Subject: cli over TLS\r\n\r\nhello\r\n";
    let file = certs.dir.path().join("message.eml");
    std::fs::write(&file, body).unwrap();
    let server = FakeServer::start(Script::Normal, certs.server_config.clone());
    let addr = server.addr.to_string();
    let out = send(&cli::to_server(
        &addr,
        &[
            "--helo",
            "client.test",
            "--data",
            file.to_str().unwrap(),
            "--tls-required",
            "--tls-ca",
            certs.ca_file.to_str().unwrap(),
        ],
    ));
    let stdout = cli::succeeded(&out);
    assert!(
        stdout.starts_with("<b@example.com>: delivered: 250 2.0.0 queued as DATA1"),
        "{stdout}"
    );
    let record = server.finish();
    assert_eq!(record.plain_text(), "EHLO client.test\r\nSTARTTLS\r\n");
    assert!(record.tls_text().starts_with("EHLO client.test\r\n"));
    assert_eq!(record.message, body);
}

#[test]
fn tls_required_without_the_ca_defers_and_a_bad_ca_file_is_refused() {
    let certs = certs();
    let server = FakeServer::start(Script::Normal, certs.server_config.clone());
    let addr = server.addr.to_string();
    let args = cli::to_server(&addr, &["--tls-required"]);
    let out = send(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(75), "{stdout}");
    assert!(
        stdout.contains("<b@example.com>: deferred (local): 451 4.7.5 TLS handshake failed"),
        "{stdout}"
    );
    let record = server.finish();
    assert!(record.handshake_error.is_some());
    assert!(record.tls.is_empty() && record.message.is_empty());

    // --tls-insecure: encrypted, not verified.
    let server = FakeServer::start(Script::Normal, certs.server_config.clone());
    let addr = server.addr.to_string();
    let mut insecure = args.to_vec();
    insecure[1] = &addr;
    insecure.push("--tls-insecure");
    let out = send(&insecure);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!server.finish().message.is_empty());

    let out = send(&cli::to_server(
        "127.0.0.1:9",
        &[
            "--tls-required",
            "--tls-ca",
            certs.key_file.to_str().unwrap(),
        ],
    ));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("CA file"), "{stderr}");
}

#[test]
fn bulk_mode_with_tls_required_and_a_ca_file_delivers_every_message_over_tls() {
    let certs = certs();
    let body = b"Subject: bulk over TLS\r\n\r\n.dot\r\nhello\r\n";
    let file = certs.dir.path().join("message.eml");
    std::fs::write(&file, body).unwrap();
    let server = FakeServer::start(Script::Normal, certs.server_config.clone());
    let addr = server.addr.to_string();
    let ca = certs.ca_file.to_str().unwrap();
    let args = cli::to_server(
        &addr,
        &[
            "--helo",
            "client.test",
            "--data",
            file.to_str().unwrap(),
            "--count",
            "3",
            "--concurrency",
            "1",
            "--tls-required",
            "--tls-ca",
            ca,
        ],
    );
    let out = send(&args);
    let stdout = cli::succeeded(&out);
    assert!(
        stdout.contains("recipients: 3 delivered, 0 deferred, 0 bounced"),
        "{stdout}"
    );
    let record = server.finish();
    assert_eq!(record.sni, None, "no SNI for an IP address");
    assert_eq!(record.plain_text(), "EHLO client.test\r\nSTARTTLS\r\n");
    assert_eq!(
        record.messages,
        [body.to_vec(), body.to_vec(), body.to_vec()]
    );
    assert!(!record.tls_text().contains("BDAT"));

    // Without the CA the certificate does not verify: every message deferred, none sent
    // (the engine tries 3 connections before it gives up).
    let server = FakeServer::start_many(Script::Normal, certs.server_config.clone(), 3);
    let addr = server.addr.to_string();
    let mut no_ca = args[..args.len() - 2].to_vec();
    no_ca[1] = &addr;
    let out = send(&no_ca);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(75), "{stdout}");
    assert!(
        stdout.contains("recipients: 0 delivered, 3 deferred, 0 bounced"),
        "{stdout}"
    );
    for record in server.finish_all() {
        assert!(record.handshake_error.is_some());
        assert!(record.tls.is_empty() && record.messages.is_empty());
    }
}

#[test]
fn chunking_sends_bdat_in_single_and_bulk_mode() {
    let certs = certs();
    for bulk in [false, true] {
        let server = FakeServer::start(Script::Normal, certs.server_config.clone());
        let addr = server.addr.to_string();
        let mut args = cli::to_server(
            &addr,
            &["--helo", "client.test", "--starttls", "--chunking"],
        );
        if bulk {
            args.extend(["--count", "2", "--concurrency", "1", "--size", "3000"]);
        }
        let out = send(&args);
        let stdout = cli::succeeded(&out);
        if !bulk {
            assert!(stdout.contains("queued as BDAT1"), "{stdout}");
        }
        let record = server.finish();
        let tls = record.tls_text();
        assert_eq!(tls.matches(" LAST\r\n").count(), if bulk { 2 } else { 1 });
        assert!(!tls.contains("DATA\r\n"), "{tls}");
        assert_eq!(record.messages.len(), if bulk { 2 } else { 1 });
    }
}
