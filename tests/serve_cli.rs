//! `impulse serve` as an operator runs it: clear errors with a non-zero exit, and a server
//! that answers, then stops gracefully on SIGTERM (idle clients get `421 4.3.2`). The
//! first-party plugins linked into the binary are active only when configured.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;

use impulse_test_support::line::READ_TIMEOUT;

fn impulse() -> Command {
    impulse_test_support::impulse!().command()
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
    let mut server = impulse_test_support::impulse!().serve(|c| {
        c.args(["--listen", "127.0.0.1:0", "--hostname", "cli.test"])
            .arg("--spool")
            .arg(dir.path().join("spool"));
    });
    // No config: none of the linked plugins is active (auth-file would need its `file`).
    assert!(server.startup.contains("plugins []"), "{}", server.startup);
    let mut s = TcpStream::connect(&server.addr).unwrap();
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let mut banner = [0u8; 14];
    s.read_exact(&mut banner).unwrap();
    assert_eq!(&banner, b"220 cli.test E");
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    s.write_all(b"NOOP\r\n").unwrap();
    line.clear();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "250 2.0.0 Ok\r\n");
    server.terminate();
    let mut rest = String::new();
    let _ = r.read_to_string(&mut rest);
    assert!(
        rest.contains("421 4.3.2 cli.test Service shutting down"),
        "{rest}"
    );
    assert!(server.wait().success());
    let tail = server.rest_of_log();
    assert!(tail.contains("disconnect from [127.0.0.1]"), "{tail}");
    assert!(tail.contains(" commands=1"), "{tail}");
    // A clean stop leaves no tmp file behind (the stock of ready-made files is removed).
    let tmp = dir.path().join("spool").join("tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(left.is_empty(), "files left in {}: {left:?}", tmp.display());
}

#[test]
fn a_plugins_table_activates_a_linked_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("impulse.toml");
    std::fs::write(
        &config,
        "listen = [\"127.0.0.1:0\"]\n\
         [plugins.bounce-rules]\n\
         class = [{ id = 201, name = \"CliGreylisted\", category = \"soft\" }]\n\
         [plugins.xclient]\n\
         authorized = [\"127.0.0.0/8\"]\n",
    )
    .unwrap();
    let mut server = impulse_test_support::impulse!().serve(|c| {
        c.args(["--hostname", "cli.test", "--config"])
            .arg(&config)
            .arg("--spool")
            .arg(dir.path().join("spool"));
    });
    assert!(
        server.startup.contains("plugins [bounce-rules, xclient]"),
        "{}",
        server.startup
    );
    // And through behaviour: xclient's keyword is advertised to this loopback client.
    let s = TcpStream::connect(&server.addr).unwrap();
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    w.write_all(b"EHLO c.test\r\n").unwrap();
    let mut ehlo = String::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        ehlo.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            break;
        }
    }
    assert!(ehlo.contains("XCLIENT NAME ADDR"), "{ehlo}");
    w.write_all(b"QUIT\r\n").unwrap();
    server.terminate();
    assert!(server.wait().success());
}
