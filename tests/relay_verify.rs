//! Recipient verification with `impulse serve`: a route with `verify_recipients = true` has
//! each address of its relay domain probed at its next hop (a recording sink that knows
//! `known@`, refuses the rest), the answers cached; a next hop that is down gives 450; a
//! next hop that never answers stalls only the session that waits for it; an address the
//! recipients file lists is accepted with no probe; swaks as a real outside client.
// A socket test: it polls a watch of the sink's commands, as an operator would.
#![allow(clippy::disallowed_methods)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use impulse_test_support::cli::Serve;
use impulse_test_support::peers;
use impulse_test_support::sink::Sink;
use impulse_test_support::LineClient;

/// The next hop's refusal of everyone but `known@`.
const UNKNOWN: &str = "550 5.1.1 No such user here\r\n";

fn rule(rcpt: &str) -> Option<&'static str> {
    (!rcpt.starts_with("known@")).then_some(UNKNOWN)
}

/// A config accepting mail for `verified.test` (probed at `hop`), `down.test` (probed at
/// `down`) and `silent.test` (probed at `silent`) from anyone, loopback untrusted, delivery
/// off, one loop thread; `extra` goes into `[relay]`.
fn config(dir: &Path, hop: &str, down: &str, silent: &str, metrics: &str, extra: &str) -> PathBuf {
    let routes: String = [
        ("verified.test", hop),
        ("down.test", down),
        ("silent.test", silent),
    ]
    .iter()
    .map(|(domain, host)| {
        format!(
            "[[relay.route]]\ndomains = [{domain:?}]\nhosts = [{host:?}]\ntls = \"none\"\n\
                 verify_recipients = true\n"
        )
    })
    .collect();
    let spool = dir.join("spool").display().to_string();
    let server = format!(
        "hostname = \"mx.test\"\nlisten = [\"127.0.0.1:0\"]\nspool.dir = {spool:?}\n\
                 metrics.listen = {metrics:?}\nworkers = 1\n"
    );
    let relay = format!(
        "[relay]\nenabled = false\ndomains = [\"verified.test\", \"down.test\", \"silent.test\"]\n\
         networks = [\"192.0.2.0/24\"]\n{extra}\n[relay.verify]\ntimeout = \"3s\"\nthreads = 2\n"
    );
    let path = dir.join("impulse.toml");
    std::fs::write(&path, format!("{server}{relay}{routes}")).unwrap();
    path
}

/// A running server and what it probes.
struct Setup {
    server: Serve,
    sink: Sink,
    /// Accepts connections and never says a word.
    silent: TcpListener,
    /// Where nothing listens.
    down: String,
    /// The metrics endpoint.
    metrics: std::net::SocketAddr,
    dir: tempfile::TempDir,
}

fn start(extra: impl FnOnce(&Path) -> String) -> Setup {
    let sink = Sink::with_rule(rule);
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let down = peers::free_addr();
    let metrics = peers::free_addr();
    let dir = tempfile::tempdir().unwrap();
    let extra = extra(dir.path());
    let cfg = config(
        dir.path(),
        &sink.addr.to_string(),
        &down.to_string(),
        &silent.local_addr().unwrap().to_string(),
        &metrics.to_string(),
        &extra,
    );
    // A few log lines per test: the pipe never fills, and the reload test reads it.
    let server = impulse_test_support::impulse!().serve(|c| {
        c.arg("--config").arg(&cfg);
    });
    assert!(
        server.startup.contains("recipient verification on"),
        "{}",
        server.startup
    );
    assert!(
        !server.startup.contains("backscatter"),
        "verified domains are not warned about: {}",
        server.startup
    );
    Setup {
        server,
        sink,
        silent,
        down: down.to_string(),
        metrics,
        dir,
    }
}

/// A session with a transaction open.
fn session(addr: &str) -> LineClient {
    let mut c = LineClient::connect(addr.parse().unwrap());
    assert!(c.reply().starts_with("220"));
    assert!(c.cmd("EHLO client.test").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<a@sender.test>").starts_with("250"));
    c
}

/// How many probe RCPTs of `address` the sink saw.
fn probes(sink: &Sink, address: &str) -> usize {
    let line = format!("RCPT TO:<{address}>");
    sink.commands().iter().filter(|c| **c == line).count()
}

#[test]
fn known_and_unknown_recipients_are_told_apart_by_the_next_hop_and_remembered() {
    let s = start(|_| String::new());
    let mut c = session(&s.server.addr);
    let reply = c.cmd("RCPT TO:<known@verified.test>");
    assert!(reply.starts_with("250 2.1.5"), "{reply}");
    let reply = c.cmd("RCPT TO:<nobody@verified.test>");
    assert_eq!(
        reply.trim_end(),
        "550 5.1.1 <nobody@verified.test>: Recipient address rejected: 550 5.1.1 No such user here"
    );
    // The probe: MAIL FROM:<>, RCPT, RSET; never DATA.
    let commands = s.sink.commands();
    assert!(
        commands.contains(&"MAIL FROM:<>".to_owned()),
        "{commands:?}"
    );
    assert!(commands.contains(&"RSET".to_owned()), "{commands:?}");
    assert!(!commands.iter().any(|c| c == "DATA"), "{commands:?}");
    // Within the TTL, from another session too: the cache answers, the next hop sees one
    // probe of each address.
    let mut other = session(&s.server.addr);
    for _ in 0..2 {
        assert!(other
            .cmd("RCPT TO:<NOBODY@verified.test>")
            .starts_with("550 5.1.1 <NOBODY@verified.test>"));
        assert!(other
            .cmd("RCPT TO:<known@verified.test>")
            .starts_with("250"));
    }
    assert_eq!(probes(&s.sink, "nobody@verified.test"), 1);
    assert_eq!(probes(&s.sink, "known@verified.test"), 1);
    // Postmaster is never probed.
    assert!(other.cmd("RCPT TO:<Postmaster>").starts_with("250"));
    // The known recipient takes a message.
    assert!(other.cmd("DATA").starts_with("354"));
    assert!(other
        .cmd("Subject: hi\r\n\r\nhello\r\n.")
        .starts_with("250 2.0.0"));
    // The operator sees it on the metrics endpoint: two probes, the rest from the cache.
    use impulse_test_support::metrics::{promtool_check, scrape, value};
    let text = scrape(s.metrics);
    let series = |name: &str| value(&text, name).unwrap_or_else(|| panic!("{name} in\n{text}"));
    assert_eq!(
        series(r#"impulse_relay_verify_probes_total{result="valid"}"#),
        1.0
    );
    assert_eq!(
        series(r#"impulse_relay_verify_probes_total{result="unknown"}"#),
        1.0
    );
    assert_eq!(
        series(r#"impulse_relay_verify_probes_total{result="unverified"}"#),
        0.0
    );
    assert_eq!(series("impulse_relay_verify_cache_hits_total"), 4.0);
    assert_eq!(series("impulse_relay_verify_busy_total"), 0.0);
    assert_eq!(series("impulse_relay_verify_cache_entries"), 2.0);
    if let Some(checked) = promtool_check(&text) {
        checked.unwrap();
    }
}

#[test]
fn a_next_hop_that_is_down_gives_450_and_a_silent_one_stalls_no_other_session() {
    let s = start(|_| String::new());
    let mut c = session(&s.server.addr);
    let reply = c.cmd("RCPT TO:<u@down.test>");
    assert!(
        reply.starts_with(
            "450 4.1.1 <u@down.test>: Recipient address rejected: unverified address: "
        ),
        "{reply}"
    );

    // A probe to the silent next hop: this session waits for it...
    let mut waiting = session(&s.server.addr);
    waiting.send(b"RCPT TO:<u@silent.test>\r\n");
    s.silent.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let accepted = loop {
        match s.silent.accept() {
            Ok((stream, _)) => break stream,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("the probe never connected: {e}"),
        }
    };
    // ...while another completes a transaction.
    let started = Instant::now();
    let mut other = session(&s.server.addr);
    assert!(other
        .cmd("RCPT TO:<known@verified.test>")
        .starts_with("250"));
    assert!(other.cmd("DATA").starts_with("354"));
    assert!(other
        .cmd("Subject: meanwhile\r\n\r\nbody\r\n.")
        .starts_with("250 2.0.0"));
    // One loop thread serves both sessions: had it waited for the probe, the other
    // session would have waited until the probe's 3 s deadline.
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the other session did not wait for the probe: {:?}",
        started.elapsed()
    );
    // The probe's own deadline ends it.
    let reply = waiting.reply();
    assert!(
        reply.starts_with(
            "450 4.1.1 <u@silent.test>: Recipient address rejected: unverified address: "
        ),
        "{reply}"
    );
    drop(accepted);
}

#[test]
fn a_listed_recipient_is_accepted_without_a_probe_and_an_unlisted_one_is_probed() {
    let s = start(|dir| {
        let file = dir.join("recipients");
        std::fs::write(&file, "listed@verified.test\n").unwrap();
        format!("recipients = {:?}", file.display().to_string())
    });
    let mut c = session(&s.server.addr);
    assert!(c.cmd("RCPT TO:<listed@verified.test>").starts_with("250"));
    assert_eq!(probes(&s.sink, "listed@verified.test"), 0, "no probe");
    assert!(
        s.sink.commands().is_empty(),
        "the next hop was not contacted"
    );
    // Not listed: probed instead of refused as unknown.
    assert!(c.cmd("RCPT TO:<known@verified.test>").starts_with("250"));
    let reply = c.cmd("RCPT TO:<stranger@verified.test>");
    assert!(reply.contains("No such user here"), "{reply}");
    assert_eq!(probes(&s.sink, "known@verified.test"), 1);
}

#[test]
fn verification_turned_on_by_a_reload_leaves_the_recipients_file_in_charge_until_a_restart() {
    // Started without verification: nothing probes. A reload that turns it on must not let
    // the recipients file's unknown addresses through unprobed.
    let sink = Sink::with_rule(rule);
    let metrics = peers::free_addr().to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("recipients");
    std::fs::write(&file, "listed@verified.test\n").unwrap();
    let extra = format!("recipients = {:?}", file.display().to_string());
    let hop = sink.addr.to_string();
    let write = |verify: bool| {
        let cfg = config(dir.path(), &hop, &hop, &hop, &metrics, &extra);
        let text = std::fs::read_to_string(&cfg).unwrap();
        let text = text.replace(
            "verify_recipients = true",
            &format!("verify_recipients = {verify}"),
        );
        std::fs::write(&cfg, text).unwrap();
        cfg
    };
    let cfg = write(false);
    let mut server = impulse_test_support::impulse!().serve(|c| {
        c.arg("--config").arg(&cfg);
    });
    assert!(!server.startup.contains("recipient verification on"));
    write(true);
    server.hangup();
    let log = server.log_until("configuration reloaded");
    assert!(log.contains("verify_recipients was off at start"), "{log}");
    let mut c = session(&server.addr);
    assert!(c.cmd("RCPT TO:<listed@verified.test>").starts_with("250"));
    let reply = c.cmd("RCPT TO:<stranger@verified.test>");
    assert!(
        reply.starts_with("550 5.1.1") && reply.contains("User unknown"),
        "the file's refusal, not an unprobed acceptance: {reply}"
    );
    assert!(sink.commands().is_empty(), "nothing probed");
}

#[test]
fn a_reload_moves_the_probes_to_the_new_next_hop() {
    let mut s = start(|_| String::new());
    let mut c = session(&s.server.addr);
    assert!(c.cmd("RCPT TO:<known@verified.test>").starts_with("250"));
    // verified.test now goes to another sink, which knows nobody.
    let moved = Sink::with_rule(|_| Some("550 5.1.1 Gone away\r\n"));
    let silent = s.silent.local_addr().unwrap().to_string();
    config(
        s.dir.path(),
        &moved.addr.to_string(),
        &s.down,
        &silent,
        &s.metrics.to_string(),
        "",
    );
    s.server.hangup();
    s.server.log_until("configuration reloaded");
    let reply = c.cmd("RCPT TO:<known2@verified.test>");
    assert!(reply.contains("Gone away"), "{reply}");
    assert_eq!(probes(&moved, "known2@verified.test"), 1);
    assert_eq!(probes(&s.sink, "known2@verified.test"), 0);
    // A cached answer stays until it expires.
    assert!(c.cmd("RCPT TO:<known@verified.test>").starts_with("250"));
}

#[test]
fn swaks_as_an_outside_client_is_refused_an_unknown_recipient() {
    let Some(swaks) = peers::program("swaks") else {
        return;
    };
    let s = start(|_| String::new());
    let run = |to: &str| {
        let out = Command::new(&swaks)
            .args(["--server", &s.server.addr, "--to", to])
            .args(["--from", "sender@example.com", "--helo", "outside.test"])
            .args(["--quit-after", "RCPT", "--timeout", "20"])
            .output()
            .expect("swaks runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, transcript) = run("ghost@verified.test");
    assert!(!ok, "{transcript}");
    assert!(
        transcript.contains(
            "<** 550 5.1.1 <ghost@verified.test>: Recipient address rejected: 550 5.1.1 No such user here"
        ),
        "{transcript}"
    );
    let (ok, transcript) = run("known@verified.test");
    assert!(ok, "{transcript}");
    assert!(transcript.contains("<-  250 2.1.5"), "{transcript}");
}
