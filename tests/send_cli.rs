//! `impulse send` against Impulse's own server over a real socket: outcomes per recipient,
//! exit codes, the message byte-exact in the spool.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};

use smtp_server::config::ServerConfig;
use smtp_server::spool::{QueueId, Spool};
use smtp_server::Server;

fn start() -> (
    smtp_server::server::ServerHandle,
    SocketAddr,
    Spool,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path().join("spool")).unwrap();
    let config = ServerConfig {
        workers: 1,
        ..ServerConfig::default()
    };
    let handle = Server::builder()
        .config(config)
        .hostname("mx.test")
        .listen("127.0.0.1:0".parse().unwrap())
        .spool(spool.clone())
        .build()
        .unwrap()
        .spawn()
        .unwrap();
    let addr = handle.local_addrs()[0];
    (handle, addr, spool, dir)
}

fn send(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_impulse"))
        .arg("send")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run impulse send");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

#[test]
fn sends_from_stdin_and_reports_each_recipient() {
    let (handle, addr, spool, _dir) = start();
    let server = addr.to_string();
    let body = b"Subject: hello\r\n\r\n.leading dot\r\nbody\r\n";
    let out = send(
        &[
            "--server",
            &server,
            "--from",
            "a@example.org",
            "--to",
            "b@example.com",
            "--to",
            "c@example.com",
            "--helo",
            "client.test",
            "--data",
            "-",
        ],
        Some(body),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].starts_with("<b@example.com>: delivered: 250 2.0.0 Ok: queued as "));
    assert!(lines[1].starts_with("<c@example.com>: delivered: 250"));

    let entries = spool.list().unwrap();
    assert_eq!(entries.len(), 1);
    let id = QueueId::parse(entries[0].id.as_str()).unwrap();
    let mut stored = Vec::new();
    spool
        .open_message(id)
        .unwrap()
        .read_to_end(&mut stored)
        .unwrap();
    assert!(
        stored.starts_with(b"Received: from client.test"),
        "{stored:?}"
    );
    assert!(stored.ends_with(body), "{stored:?}");
    handle.shutdown();
    handle.join().unwrap();
}

#[test]
fn refusals_and_deferrals_have_classes_and_exit_codes() {
    let (handle, addr, spool, _dir) = start();
    let server = addr.to_string();

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
    let out = send(
        &[
            "--server",
            &server,
            "--from",
            "a@example.org",
            "--to",
            "b@example.com",
            "--tls-required",
        ],
        None,
    );
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

    assert_eq!(spool.list().unwrap().len(), 0);
    handle.shutdown();
    handle.join().unwrap();
}
