//! `impulse serve` as an operator runs it: clear errors with a non-zero exit, and a server
//! that answers, then stops gracefully on SIGTERM (idle clients get `421 4.3.2`).

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

fn impulse() -> Command {
    Command::new(env!("CARGO_BIN_EXE_impulse"))
}

#[test]
fn bad_config_and_missing_plugin_are_operator_errors() {
    let out = impulse()
        .args(["serve", "--config", "/nonexistent/impulse.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("impulse serve: cannot read config /nonexistent/impulse.toml"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[limits]\nrecipent = 5\n").unwrap();
    let out = impulse()
        .args(["serve", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("recipent"), "{err}");

    let out = impulse()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--plugin",
            "/nonexistent/libx.so",
        ])
        .arg("--spool")
        .arg(dir.path().join("spool"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/libx.so"), "{err}");
}

#[test]
fn serve_answers_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = impulse()
        .args(["serve", "--listen", "127.0.0.1:0", "--hostname", "cli.test"])
        .arg("--spool")
        .arg(dir.path().join("spool"))
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(child.stderr.take().unwrap());
    let addr = loop {
        let mut line = String::new();
        assert!(log.read_line(&mut line).unwrap() > 0, "server exited");
        if let Some(a) = line.trim().split("listening on ").nth(1) {
            break a.to_owned();
        }
    };
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut banner = [0u8; 14];
    s.read_exact(&mut banner).unwrap();
    assert_eq!(&banner, b"220 cli.test E");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    let _ = s.read_to_string(&mut rest);
    assert!(
        rest.contains("421 4.3.2 cli.test Service shutting down"),
        "{rest}"
    );
    assert!(child.wait().unwrap().success());
    let mut tail = String::new();
    let _ = log.read_to_string(&mut tail);
    assert!(tail.contains("disconnect from [127.0.0.1]"), "{tail}");
}
