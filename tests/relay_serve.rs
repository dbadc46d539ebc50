//! `impulse serve` with a `[relay]` table delivers what it accepts: through a static route to
//! a loopback next hop (a recording sink, Postfix's smtp-sink, aiosmtpd), with the log line
//! operators grep, and without losing a message across kill -9 at any moment (a campaign:
//! every accepted message reaches the sink, duplicates only for those in flight at a kill),
//! and across kill -9 while notifications are generated (every refused message is reported
//! to its sender at least once).
// A socket test: it polls the next hop and restarts the server.
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use impulse_test_support::cli::Serve;
use impulse_test_support::sink::Sink;
use impulse_test_support::LineClient;

const WAIT: Duration = Duration::from_secs(30);

/// A config for a relay on a free port with its spool in `dir`, routing `target.test` to
/// `hop`, retrying every second.
fn config(dir: &Path, hop: &str) -> std::path::PathBuf {
    let path = dir.join("impulse.toml");
    let text = format!(
        r#"hostname = "relay.test"
listen = ["127.0.0.1:0"]
[spool]
dir = "{spool}"
[relay]
domains = []
connections_per_destination = 2
[relay.retry]
intervals = ["1s"]
[[relay.route]]
domains = ["target.test", "sender.test"]
hosts = ["{hop}"]
tls = "none"
"#,
        spool = dir.join("spool").display(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn serve(config: &Path) -> Serve {
    impulse_test_support::impulse!().serve_config(config)
}

/// Sends one message; `true` when it was accepted (250 after the data).
fn send(addr: &str, subject: &str) -> bool {
    let Ok(stream) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    drop(stream);
    let mut c = LineClient::connect(addr.parse().unwrap());
    if !c.reply().starts_with("220") {
        return false;
    }
    c.cmd("EHLO client.test");
    if !c.cmd("MAIL FROM:<a@sender.test>").starts_with("250")
        || !c.cmd("RCPT TO:<b@target.test>").starts_with("250")
        || !c.cmd("DATA").starts_with("354")
    {
        return false;
    }
    c.cmd(&format!("Subject: {subject}\r\n\r\nbody of {subject}\r\n."))
        .starts_with("250")
}

fn queue_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("spool/queue"))
        .map(|d| d.count() == 0)
        .unwrap_or(false)
}

#[test]
fn an_accepted_message_is_delivered_through_a_static_route_and_logged() {
    let sink = Sink::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &sink.addr.to_string());
    let mut server = serve(&cfg);
    assert!(
        server.startup.contains("relay started"),
        "{}",
        server.startup
    );
    assert!(send(&server.addr, "hello"));
    let got = sink.wait_for(1, WAIT);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].from, "a@sender.test");
    assert_eq!(got[0].to, vec!["b@target.test"]);
    assert!(got[0].data.contains("Subject: hello"));
    assert!(
        got[0].data.contains("by relay.test (Impulse)"),
        "our Received: line"
    );
    let start = Instant::now();
    while !queue_empty(dir.path()) && start.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        queue_empty(dir.path()),
        "the delivered message left the spool"
    );
    server.terminate();
    assert!(server.wait().success());
    let log = server.rest_of_log();
    let line = log
        .lines()
        .find(|l| l.contains("to=<b@target.test>"))
        .unwrap_or_else(|| panic!("no delivery line in\n{log}"));
    // As Postfix writes a static next hop: the address as the name, then `[address]:port`.
    let relay = format!("relay={0}[{0}]:{1}", sink.addr.ip(), sink.addr.port());
    for want in [
        relay.as_str(),
        "dsn=2.0.0",
        "status=sent (250 2.0.0 Ok: queued)",
        "delay=",
    ] {
        assert!(line.contains(want), "{want:?} not in {line:?}");
    }
    // The whole shape, field by field, as the issue gives it:
    // `ID: to=<rcpt>, relay=host[ip]:port, delay=2.1, dsn=4.2.0, status=deferred (...)`.
    let fields = line.split("] ").nth(1).unwrap_or(line);
    let (id, rest) = fields.split_once(": ").unwrap();
    assert_eq!(id.len(), 20, "{line}");
    let parts: Vec<&str> = rest.splitn(5, ", ").collect();
    assert_eq!(parts[0], "to=<b@target.test>");
    assert_eq!(parts[1], relay);
    let delay = parts[2].strip_prefix("delay=").unwrap();
    assert!(
        delay.parse::<f64>().is_ok() && delay.contains('.'),
        "{line}"
    );
    assert_eq!(parts[3], "dsn=2.0.0");
    assert_eq!(parts[4], "status=sent (250 2.0.0 Ok: queued)");
}

#[test]
fn without_a_relay_table_nothing_is_delivered() {
    let sink = Sink::start();
    let dir = tempfile::tempdir().unwrap();
    let mut server = impulse_test_support::impulse!().serve(|c| {
        c.args(["--listen", "127.0.0.1:0", "--spool"])
            .arg(dir.path().join("spool"));
    });
    server.drain_log();
    assert!(send(&server.addr, "kept"));
    std::thread::sleep(Duration::from_millis(500));
    assert!(sink.messages().is_empty());
    assert!(!queue_empty(dir.path()), "kept in the spool");
}

/// What a kill -9 campaign saw: the subjects accepted, and what the sink holds once the
/// queue drained after the last start.
struct Campaign {
    accepted: Vec<String>,
    got: Vec<impulse_test_support::sink::Received>,
    drained: Duration,
}

/// Sends messages to a server on `sink`'s route while it runs, kills it with SIGKILL at a
/// moment that moves each round, `kills` times, then starts it once more and waits until
/// its queue is empty (a panic with the queue listing when it does not drain).
fn campaign(sink: &Sink, kills: u64) -> Campaign {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &sink.addr.to_string());
    let mut accepted = Vec::new();
    let mut n = 0;
    for round in 0..kills {
        let mut server = serve(&cfg);
        server.drain_log();
        // Keep sending while deliveries (and bounces) run; kill at a moving moment.
        let stop = Instant::now() + Duration::from_millis(150 + 70 * round);
        while Instant::now() < stop {
            let subject = format!("m{n}");
            n += 1;
            if send(&server.addr, &subject) {
                accepted.push(subject);
            }
        }
        drop(server); // SIGKILL
    }
    // A last start delivers what is left.
    let mut server = serve(&cfg);
    let start = Instant::now();
    while !queue_empty(dir.path()) && start.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(50));
    }
    let drained = start.elapsed();
    if !queue_empty(dir.path()) {
        let list = impulse_test_support::impulse!().spool_tool(
            "queue",
            &dir.path().join("spool"),
            &["list"],
        );
        panic!(
            "the queue did not drain after the kills:\n{}{}",
            String::from_utf8_lossy(&list.stdout),
            server.rest_of_log()
        );
    }
    assert!(
        accepted.len() > kills as usize,
        "the load ran: {} accepted",
        accepted.len()
    );
    Campaign {
        accepted,
        got: sink.messages(),
        drained,
    }
}

/// How often each test subject (`Subject: mN`) occurs in `messages`, counting a subject in
/// a notification's returned headers as well as in a delivered message.
fn subjects(messages: &[impulse_test_support::sink::Received]) -> HashMap<String, usize> {
    let mut seen = HashMap::<String, usize>::new();
    for m in messages {
        for subject in m.data.lines().filter_map(|l| l.strip_prefix("Subject: ")) {
            if subject
                .strip_prefix('m')
                .is_some_and(|n| n.parse::<u64>().is_ok())
            {
                *seen.entry(subject.to_string()).or_default() += 1;
            }
        }
    }
    seen
}

/// Asserts every accepted subject is in `seen` and returns the duplicates.
fn none_lost(accepted: &[String], seen: &HashMap<String, usize>) -> usize {
    let lost: Vec<&String> = accepted.iter().filter(|s| !seen.contains_key(*s)).collect();
    assert!(
        lost.is_empty(),
        "accepted but never seen at the sink: {lost:?} of {}",
        accepted.len()
    );
    seen.values().map(|c| c - 1).sum()
}

#[test]
fn a_kill_9_at_any_moment_loses_no_accepted_message() {
    let sink = Sink::start();
    let kills = 8;
    let run = campaign(&sink, kills);
    let duplicates = none_lost(&run.accepted, &subjects(&run.got));
    // At worst the messages in flight at each kill go again: two connections here, each
    // with one message on the wire and at most one reported but not yet recorded.
    assert!(
        duplicates <= kills as usize * 4,
        "{duplicates} duplicates for {kills} kills"
    );
    eprintln!(
        "{} accepted over {kills} kills, {} delivered, {duplicates} duplicates, drained in {:?}",
        run.accepted.len(),
        run.got.len(),
        run.drained
    );
}

#[test]
fn a_kill_9_during_bounce_generation_loses_no_notification() {
    // Every message is refused by the next hop (550), so each one's life ends in a
    // notification to its sender, which the same sink accepts: kills land while
    // notifications are built, committed and delivered.
    let sink = Sink::with_rule(|rcpt| {
        rcpt.ends_with("@target.test")
            .then_some("550 5.1.1 <b@target.test>: no such user\r\n")
    });
    let kills = 8;
    let run = campaign(&sink, kills);
    let (notifications, other): (Vec<_>, Vec<_>) =
        run.got.into_iter().partition(|m| m.from.is_empty());
    assert!(
        other.is_empty(),
        "only notifications reach the sink: {:?}",
        other.iter().map(|m| &m.from).collect::<Vec<_>>()
    );
    for n in &notifications {
        assert_eq!(n.to, vec!["a@sender.test"], "to the envelope sender");
        assert!(
            n.data.contains("report-type=delivery-status") && n.data.contains("Status: 5.1.1"),
            "a delivery status notification:\n{}",
            n.data
        );
    }
    let seen = subjects(&notifications);
    let duplicates = none_lost(&run.accepted, &seen);
    // A notification is committed before its recipients are marked bounced: a kill in
    // between gives a second one, never none. Bounded by what is in flight at a kill.
    assert!(
        duplicates <= kills as usize * 4,
        "{duplicates} duplicate notifications for {kills} kills"
    );
    eprintln!(
        "{} accepted over {kills} kills, {} notifications, {duplicates} duplicates, drained in {:?}",
        run.accepted.len(),
        notifications.len(),
        run.drained
    );
}
