//! `impulse send` against Impulse's own server over a real socket: outcomes per recipient,
//! exit codes, the message byte-exact in the spool.

use std::process::Output;

use impulse_test_support::cli;
use impulse_test_support::server::TestServer;

fn send(args: &[&str], stdin: Option<&[u8]>) -> Output {
    impulse_test_support::impulse!().send(args, stdin)
}

#[test]
fn sends_from_stdin_and_reports_each_recipient() {
    let mx = TestServer::start();
    let server = mx.addr.to_string();
    let body = b"Subject: hello\r\n\r\n.leading dot\r\nbody\r\n";
    let out = send(
        &cli::to_server(
            &server,
            &[
                "--to",
                "c@example.com",
                "--helo",
                "client.test",
                "--data",
                "-",
            ],
        ),
        Some(body),
    );
    let stdout = cli::succeeded(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].starts_with("<b@example.com>: delivered: 250 2.0.0 Ok: queued as "));
    assert!(lines[1].starts_with("<c@example.com>: delivered: 250"));

    let entries = mx.spool.list().unwrap();
    assert_eq!(entries.len(), 1);
    let stored = mx.stored(entries[0].id);
    assert!(
        stored.starts_with(b"Received: from client.test"),
        "{stored:?}"
    );
    assert!(stored.ends_with(body), "{stored:?}");
    mx.stop();
}

#[test]
fn refusals_and_deferrals_have_classes_and_exit_codes() {
    let mx = TestServer::start();
    let server = mx.addr.to_string();

    // An address with a line break never reaches the wire: bounced locally.
    let out = send(
        &[
            "--server",
            &server,
            "--from",
            "a@example.org",
            "--to",
            "x\r\n@example.com",
        ],
        None,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("bounced"), "{stdout}");

    // TLS required but not available: every recipient deferred, EX_TEMPFAIL.
    let out = send(&cli::to_server(&server, &["--tls-required"]), None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(75), "{stdout}");
    assert!(stdout.contains("<b@example.com>: deferred"), "{stdout}");
    assert!(stdout.contains("[class "), "{stdout}");

    // Bad arguments: exit 2 with a message.
    let out = send(
        &[
            "--server",
            "nowhere.invalid:25",
            "--from",
            "a@b",
            "--to",
            "c@d",
            "--auth",
            "x",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("impulse send: "));

    assert_eq!(mx.count(), 0);
    mx.stop();
}

#[test]
fn auth_without_tls_is_a_local_refusal_unless_allowed() {
    use impulse_test_support::fake::Fake;
    // Refused before any secret is sent: deferred, marked local, never a remote block.
    let mx = TestServer::start();
    let server = mx.addr.to_string();
    let out = send(&cli::to_server(&server, &["--auth", "alice:secret"]), None);
    assert_eq!(out.status.code(), Some(75), "deferred");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("deferred (local): 454 4.7.0 AUTH without TLS refused by local policy"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[class 25 Admin Failure (Admin)]"),
        "{stdout}"
    );
    assert!(mx.spool.list().unwrap().is_empty());

    // --auth-plaintext: the user chose it (a loopback test server), AUTH PLAIN goes out.
    let fake = Fake::start(|peer| {
        peer.send(b"220 fake.test ESMTP\r\n");
        peer.expect("EHLO");
        peer.send(b"250-fake.test\r\n250 AUTH PLAIN LOGIN\r\n");
        let auth = peer.line().unwrap_or_default();
        peer.send(b"235 2.7.0 Authentication successful\r\n");
        peer.accept_transaction();
        auth
    });
    let server = fake.addr.to_string();
    let out = send(
        &cli::to_server(&server, &["--auth", "alice:secret", "--auth-plaintext"]),
        None,
    );
    let stdout = cli::succeeded(&out);
    assert!(
        stdout.contains("delivered: 250 2.0.0 Ok: queued"),
        "{stdout}"
    );
    // PLAIN: "\0alice\0secret" in base64.
    assert_eq!(fake.join(), "AUTH PLAIN AGFsaWNlAHNlY3JldA==");
}

#[test]
fn client_states_from_the_configured_plugins_run_in_send() {
    use impulse_test_support::fake::Fake;
    let fake = Fake::start(|peer| {
        peer.send(b"220 fake.test ESMTP\r\n");
        peer.expect("EHLO");
        peer.send(b"250-fake.test\r\n250 XCLIENT NAME ADDR PORT HELO\r\n");
        let xclient = peer.line().unwrap_or_default();
        peer.send(b"220 fake.test ESMTP\r\n");
        peer.expect("EHLO");
        peer.send(b"250-fake.test\r\n250 XCLIENT NAME ADDR PORT HELO\r\n");
        peer.accept_transaction();
        xclient
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("impulse.toml");
    std::fs::write(
        &config,
        "[plugins.client-xclient]\naddr = \"192.0.2.10\"\nname = \"client.example.org\"\n",
    )
    .unwrap();
    let server = fake.addr.to_string();
    let out = send(
        &cli::to_server(&server, &["--config", config.to_str().unwrap()]),
        None,
    );
    let stdout = cli::succeeded(&out);
    assert!(stdout.contains("delivered"), "{stdout}");
    let xclient = fake.join();
    assert!(xclient.starts_with("XCLIENT "), "{xclient}");
    assert!(
        xclient.contains("ADDR=192.0.2.10") && xclient.contains("NAME=client.example.org"),
        "{xclient}"
    );
}
