//! `impulse serve` with a `[relay]` table among real peers, over loopback:
//!
//! - relaying to real next hops: Postfix's `smtp-sink`, an aiosmtpd server and a private
//!   Postfix smtpd that holds what it accepts; each got the message with its body intact and
//!   our `Received:` line naming the queue id;
//! - a private Postfix relaying *into* Impulse (`relayhost`), a message submitted with
//!   Postfix's `sendmail`, which Impulse spools and delivers on to a recording sink;
//! - scripted next hops: per-recipient 250/450/550, a drop in DATA, silence, garbage: the
//!   outcomes, the log's status words and the notifications;
//! - the failure notification as the sender receives it, parsed by Python's `email` package
//!   (`policy.default`): multipart/report with three parts, the delivery-status fields, the
//!   returned headers, or the whole message with `RET=FULL`.
//!
//! Every peer that is missing makes its test print a loud SKIPPED, and fail when `CI` is set.
// A socket test: it waits for peers and reads their output.
#![allow(clippy::disallowed_methods)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use impulse_test_support::cli::Serve;
use impulse_test_support::fake::{Script, Scripted};
use impulse_test_support::peers::{self, PyServer};
use impulse_test_support::postfix::{Postfix, Role};
use impulse_test_support::sink::{Received, Sink};
use impulse_test_support::wait::until;
use impulse_test_support::LineClient;

const WAIT: Duration = Duration::from_secs(30);
/// The message: complete headers (so that no hop adds any below ours), a line that needs
/// dot-stuffing, an empty line.
const BODY: &str =
    "Subject: peers\r\nFrom: a@sender.test\r\nDate: Mon, 7 Dec 2026 12:00:00 +0000\r\n\
    Message-ID: <peers.1@sender.test>\r\n\r\nfirst line\r\n.a leading dot\r\n\r\nlast line\r\n";

/// A relay config: spool in `dir`, `target.test` routed to `hop`, `sender.test` (the
/// notifications) to `bounces` (or `hop`), retrying every second.
fn config(dir: &Path, hop: &str, bounces: Option<&str>) -> PathBuf {
    let path = dir.join("impulse.toml");
    let mut text = format!(
        r#"hostname = "relay.test"
listen = ["127.0.0.1:0"]
[spool]
dir = "{spool}"
[relay]
domains = []
connections_per_destination = 2
down_time = "1s"
[relay.retry]
intervals = ["1s"]
[[relay.route]]
domains = ["target.test", "held.test"]
hosts = ["{hop}"]
tls = "none"
"#,
        spool = dir.join("spool").display(),
    );
    text.push_str(&format!(
        "[[relay.route]]\ndomains = [\"sender.test\"]\nhosts = [\"{}\"]\ntls = \"none\"\n",
        bounces.unwrap_or(hop)
    ));
    std::fs::write(&path, text).unwrap();
    path
}

fn serve(config: &Path) -> Serve {
    impulse_test_support::impulse!().serve_config(config)
}

/// Sends one message (`mail` is the whole MAIL command's argument) and returns the queue id
/// from the 250 after the data.
fn send(addr: &str, mail: &str, to: &[&str], body: &str) -> String {
    let mut c = LineClient::connect(addr.parse().unwrap());
    assert!(c.reply().starts_with("220"));
    c.cmd("EHLO client.test");
    let r = c.cmd(&format!("MAIL FROM:{mail}"));
    assert!(r.starts_with("250"), "{r}");
    for rcpt in to {
        let r = c.cmd(&format!("RCPT TO:<{rcpt}>"));
        assert!(r.starts_with("250"), "{rcpt}: {r}");
    }
    assert!(c.cmd("DATA").starts_with("354"));
    // Dot-stuffed on the wire, as every client does.
    let stuffed = body.replace("\r\n.", "\r\n..");
    let end = c.cmd(&format!("{stuffed}."));
    assert!(end.starts_with("250"), "{end}");
    c.cmd("QUIT");
    end.trim().rsplit(' ').next().unwrap().to_owned()
}

/// Checks what a next hop stored: the body intact, after our `Received:` line with `id`.
fn check_delivered(stored: &str, id: &str) {
    let stored = stored.replace("\r\n", "\n");
    let received = stored
        .find("Received: from client.test")
        .unwrap_or_else(|| panic!("no Received: of ours in\n{stored}"));
    let ours = &stored[received..];
    let end = ours.find("\nSubject:").unwrap_or(ours.len());
    let header = &ours[..end];
    assert!(header.contains("by relay.test (Impulse)"), "{header}");
    assert!(header.contains(&format!("id {id}")), "{id} not in {header}");
    let body = BODY.replace("\r\n", "\n");
    assert!(
        ours[end + 1..].starts_with(&body),
        "body changed:\n{stored}"
    );
}

/// `impulse queue list --json` on the spool in `dir` (a live server answers it).
fn queue_list(dir: &Path) -> Vec<serde_json::Value> {
    let out = impulse_test_support::impulse!()
        .command()
        .args(["queue", "list", "--json", "--spool"])
        .arg(dir.join("spool"))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

fn queue_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("spool/queue")).is_ok_and(|d| d.count() == 0)
}

/// Stops the server and returns its log.
fn stop(mut server: Serve) -> String {
    server.terminate();
    server.wait();
    server.rest_of_log()
}

/// The log line of `rcpt`'s attempts that contains `status`.
fn log_line<'a>(log: &'a str, rcpt: &str, status: &str) -> &'a str {
    log.lines()
        .find(|l| l.contains(&format!("to=<{rcpt}>")) && l.contains(status))
        .unwrap_or_else(|| panic!("no {status} line for {rcpt} in\n{log}"))
}

#[test]
fn impulse_relays_to_postfix_smtp_sink() {
    let dump = tempfile::tempdir().unwrap();
    // smtp-sink runs as nobody under root: its dump directory must be writable to it.
    Command::new("chmod")
        .arg("777")
        .arg(dump.path())
        .status()
        .unwrap();
    let template = format!("{}/%M.", dump.path().display());
    let Some(sink) = peers::Sink::start(&["-d", &template]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&config(dir.path(), &sink.addr.to_string(), None));
    let id = send(&server.addr, "<a@sender.test>", &["b@target.test"], BODY);
    let dumped = || -> Vec<PathBuf> {
        std::fs::read_dir(dump.path())
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    assert!(
        until(WAIT, || !dumped().is_empty()),
        "smtp-sink got nothing"
    );
    assert!(until(WAIT, || queue_empty(dir.path())), "left the spool");
    let files = dumped();
    assert_eq!(files.len(), 1);
    let stored = std::fs::read_to_string(&files[0]).unwrap();
    assert!(stored.contains("b@target.test"), "the envelope: {stored}");
    check_delivered(&stored, &id);
    let log = stop(server);
    let line = log_line(&log, "b@target.test", "status=sent");
    assert!(
        line.starts_with(&id) || line.contains(&format!("{id}: ")),
        "{line}"
    );
}

/// An aiosmtpd server writing each message, after `MAIL <sender>` and `RCPT <recipients>`
/// lines, to a file of its own in the directory given as its second argument.
const AIOSMTPD: &str = r#"
import os, sys, threading
from aiosmtpd.controller import Controller
port, out = int(sys.argv[1]), sys.argv[2]
class Keep:
    async def handle_DATA(self, server, session, envelope):
        n = len(os.listdir(out))
        tmp = os.path.join(out, '%d.tmp' % n)
        with open(tmp, 'wb') as f:
            f.write(('MAIL %s\nRCPT %s\n' % (envelope.mail_from, ' '.join(envelope.rcpt_tos))).encode())
            f.write(envelope.original_content)
        os.rename(tmp, os.path.join(out, '%d.eml' % n))
        return '250 2.0.0 kept as %d' % n
c = Controller(Keep(), hostname='127.0.0.1', port=port)
c.start()
threading.Event().wait()
"#;

#[test]
fn impulse_relays_to_aiosmtpd() {
    if !peers::aiosmtpd_available() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let hop = PyServer::start(AIOSMTPD, [out.path()]);
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&config(dir.path(), &hop.addr.to_string(), None));
    let id = send(
        &server.addr,
        "<a@sender.test>",
        &["b@target.test", "c@target.test"],
        BODY,
    );
    let kept = out.path().join("0.eml");
    assert!(until(WAIT, || kept.exists()), "aiosmtpd got nothing");
    let stored = std::fs::read_to_string(&kept).unwrap();
    assert!(
        stored.starts_with("MAIL a@sender.test\nRCPT b@target.test c@target.test\n"),
        "one transaction for both: {stored}"
    );
    check_delivered(&stored, &id);
    assert!(until(WAIT, || queue_empty(dir.path())));
    let log = stop(server);
    for rcpt in ["b@target.test", "c@target.test"] {
        let line = log_line(&log, rcpt, "status=sent");
        assert!(line.contains("250 2.0.0 kept as 0"), "{line}");
    }
}

#[test]
fn impulse_relays_to_a_private_postfix_that_holds_the_mail() {
    let Some(postfix) = Postfix::start(Role::Hold(&["held.test"])) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&config(dir.path(), &postfix.addr.to_string(), None));
    let id = send(&server.addr, "<a@sender.test>", &["b@held.test"], BODY);
    let held = postfix.wait_held(1, WAIT);
    assert_eq!(held.len(), 1, "held: {held:?}\n{}", postfix.maillog());
    let stored = postfix.message(&held[0]);
    assert!(stored.contains("sender: a@sender.test"), "{stored}");
    assert!(stored.contains("recipient: b@held.test"), "{stored}");
    // Postfix adds its own Received: above ours.
    assert!(stored.contains("by postfix.test (Postfix)"), "{stored}");
    check_delivered(&stored, &id);
    assert!(until(WAIT, || queue_empty(dir.path())));
    let log = stop(server);
    let line = log_line(&log, "b@held.test", "status=sent");
    assert!(
        line.contains(&format!("relay={0}[{0}]", postfix.addr.ip())),
        "{line}"
    );
    let mail = postfix.maillog();
    assert!(mail.contains("from=<a@sender.test>"), "{mail}");
}

#[test]
fn a_private_postfix_relays_into_impulse_which_delivers_on() {
    let sink = Sink::start();
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&config(dir.path(), &sink.addr.to_string(), None));
    let Some(postfix) = Postfix::start(Role::Relay(server.addr.parse().unwrap())) else {
        return;
    };
    let out = postfix.sendmail("a@sender.test", &["b@target.test"], BODY.as_bytes());
    assert!(
        out.status.success(),
        "sendmail: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = sink.wait_for(1, WAIT);
    assert_eq!(got.len(), 1, "nothing arrived:\n{}", postfix.maillog());
    let m = &got[0];
    assert_eq!(m.from, "a@sender.test");
    assert_eq!(m.to, ["b@target.test"]);
    // Impulse's Received: (from Postfix's smtp client) above Postfix's own.
    let ours = m
        .data
        .find("by relay.test (Impulse)")
        .expect("our Received:");
    let theirs = m
        .data
        .find("by postfix.test (Postfix")
        .unwrap_or_else(|| panic!("no Received: of Postfix's in\n{}", m.data));
    assert!(ours < theirs, "{}", m.data);
    assert!(m.data.contains("Received: from postfix.test"), "{}", m.data);
    assert!(m
        .data
        .contains("first line\r\n.a leading dot\r\n\r\nlast line\r\n"));
    let mail = postfix.maillog();
    assert!(
        until(WAIT, || postfix.maillog().contains("status=sent")),
        "Postfix did not log the relay to Impulse:\n{mail}"
    );
    let mail = postfix.maillog();
    let sent = mail.lines().find(|l| l.contains("status=sent")).unwrap();
    assert!(
        sent.contains(&format!(
            "relay=127.0.0.1[127.0.0.1]:{}",
            server.addr.rsplit(':').next().unwrap()
        )),
        "{sent}"
    );
    assert!(
        until(WAIT, || queue_empty(dir.path())),
        "Impulse's spool drained"
    );
    let log = stop(server);
    log_line(&log, "b@target.test", "status=sent");
    // Spooled by Impulse as mail from Postfix's smtp client.
    let queued = log
        .lines()
        .find(|l| l.contains("from=<a@sender.test>") && l.contains("queued"))
        .unwrap_or_else(|| panic!("not spooled:\n{log}"));
    assert!(queued.contains("client [127.0.0.1]"), "{queued}");
}

/// 250 for `ok@`, 450 for `later@`, 550 for `no@`.
fn by_local_part(rcpt: &str) -> Option<&'static str> {
    match rcpt.split('@').next() {
        Some("later") => Some("450 4.2.1 mailbox busy, try later\r\n"),
        Some("no") => Some("550 5.1.1 no such user here\r\n"),
        _ => None,
    }
}

/// The notifications (from the null sender) a sink received.
fn notifications(sink: &Sink) -> Vec<Received> {
    sink.messages()
        .into_iter()
        .filter(|m| m.from.is_empty())
        .collect()
}

#[test]
fn per_recipient_250_450_550_from_a_scripted_next_hop() {
    let hop = Sink::with_rule(by_local_part);
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&config(dir.path(), &hop.addr.to_string(), None));
    let id = send(
        &server.addr,
        "<a@sender.test>",
        &["ok@target.test", "later@target.test", "no@target.test"],
        BODY,
    );
    // The 250 one is delivered once, alone; the 550 one bounces; the 450 one is retried.
    assert!(until(WAIT, || !notifications(&hop).is_empty()), "no bounce");
    let delivered: Vec<Received> = hop
        .messages()
        .into_iter()
        .filter(|m| !m.from.is_empty())
        .collect();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].to, ["ok@target.test"]);
    check_delivered(&delivered[0].data, &id);
    let bounce = &notifications(&hop)[0];
    assert_eq!(bounce.to, ["a@sender.test"]);
    assert!(bounce
        .data
        .contains("Final-Recipient: rfc822; no@target.test"));
    assert!(bounce
        .data
        .contains("Diagnostic-Code: smtp; 550 5.1.1 no such user here"));
    assert!(
        !bounce.data.contains("Final-Recipient: rfc822; later@"),
        "not yet"
    );
    assert!(!bounce.data.contains("Final-Recipient: rfc822; ok@"));
    // The deferred one stays queued, retried each second.
    let statuses = || -> Vec<(String, String, u64)> {
        queue_list(dir.path())
            .first()
            .and_then(|m| m["recipients"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|r| {
                let word = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
                (
                    word("address"),
                    word("status"),
                    r["attempts"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    };
    let settled = || {
        let s = statuses();
        s.len() == 3 && s[1].1 == "deferred" && s[1].2 >= 2
    };
    assert!(until(WAIT, settled), "{:?}", statuses());
    let words: Vec<(String, String)> = statuses().into_iter().map(|(a, s, _)| (a, s)).collect();
    let want = [
        ("ok@target.test", "delivered"),
        ("later@target.test", "deferred"),
        ("no@target.test", "bounced"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, s)| (a.to_string(), s.to_string()))
        .collect();
    assert_eq!(
        words, want,
        "finished recipients stay listed while one remains"
    );
    let log = stop(server);
    let line = log_line(&log, "ok@target.test", "status=sent");
    assert!(line.contains("dsn=2.0.0"), "{line}");
    let line = log_line(&log, "later@target.test", "status=deferred");
    assert!(line.contains("dsn=4.2.1"), "{line}");
    assert!(
        line.contains("(450 4.2.1 mailbox busy, try later)"),
        "{line}"
    );
    let retries = log
        .lines()
        .filter(|l| l.contains("to=<later@target.test>") && l.contains("status=deferred"))
        .count();
    assert!(retries >= 2, "retried: {retries}\n{log}");
    let line = log_line(&log, "no@target.test", "status=bounced");
    assert!(line.contains("dsn=5.1.1"), "{line}");
    assert_eq!(notifications(&hop).len(), 1, "one notification");
}

/// Whether the misbehaving next hops of these tests behave again, one flag per test.
static HEALED: [AtomicBool; 3] = [const { AtomicBool::new(false) }; 3];

/// A next hop that misbehaves (`pick` reads its flag in [`HEALED`]) until it is healed:
/// the attempts are deferred with `reply` in the log line, no notification goes out and the
/// message stays queued; once healed, the next retry delivers it.
fn misbehaves_until_healed(flag: usize, pick: fn(usize) -> Script, reply: &str) {
    let hop = Scripted::start(pick);
    let bounces = Sink::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &hop.addr.to_string(),
        Some(&bounces.addr.to_string()),
    );
    let server = serve(&cfg);
    send(&server.addr, "<a@sender.test>", &["b@target.test"], BODY);
    // Deferred, not bounced: retried (attempts counted), the reply kept, nobody told.
    let status = || -> Option<serde_json::Value> {
        queue_list(dir.path())
            .first()
            .map(|m| m["recipients"][0].clone())
    };
    let retried =
        || status().is_some_and(|r| r["status"] == "deferred" && r["attempts"].as_u64() >= Some(2));
    assert!(
        until(WAIT, retried),
        "{reply}: not deferred twice: {:?}",
        status()
    );
    let r = status().unwrap();
    let kept = r["last_reply"].as_str().unwrap_or_default().to_owned();
    assert!(
        reply.contains(&kept) && !kept.is_empty(),
        "{reply:?} vs {kept:?}"
    );
    assert_eq!(hop.messages.load(Ordering::SeqCst), 0);
    HEALED[flag].store(true, Ordering::SeqCst);
    let delivered = || hop.messages.load(Ordering::SeqCst) >= 1;
    assert!(
        until(WAIT, delivered),
        "{reply}: never delivered once healed"
    );
    assert!(
        until(WAIT, || queue_empty(dir.path())),
        "{reply}: left the spool"
    );
    let log = stop(server);
    let deferred = log_line(&log, "b@target.test", "status=deferred");
    assert!(deferred.contains(reply), "{reply:?} not in {deferred}");
    assert!(deferred.contains("relay="), "{deferred}");
    log_line(&log, "b@target.test", "status=sent");
    assert!(!log.contains("status=bounced"), "{log}");
    assert!(bounces.messages().is_empty(), "{reply}: no notification");
    assert!(
        hop.connections.load(Ordering::SeqCst) >= 3,
        "{reply}: retried"
    );
    eprintln!("{deferred}");
}

#[test]
fn a_drop_in_data_is_deferred_and_retried() {
    fn pick(_: usize) -> Script {
        if HEALED[0].load(Ordering::SeqCst) {
            Script::Serve
        } else {
            Script::DropInData
        }
    }
    misbehaves_until_healed(
        0,
        pick,
        "status=deferred (451 4.4.2 Connection closed by remote server)",
    );
}

#[test]
fn garbage_instead_of_a_reply_is_deferred_and_retried() {
    fn pick(_: usize) -> Script {
        if HEALED[1].load(Ordering::SeqCst) {
            Script::Serve
        } else {
            Script::Garbage
        }
    }
    misbehaves_until_healed(
        1,
        pick,
        "status=deferred (451 4.5.0 Invalid reply from remote server)",
    );
}

#[test]
fn a_silent_next_hop_is_deferred_and_retried() {
    // Silence until the next hop hangs up (the client's greeting timeout is minutes long;
    // its expiry is proven on the simulated clock in smtp-client's tests).
    fn pick(_: usize) -> Script {
        if HEALED[2].load(Ordering::SeqCst) {
            Script::Serve
        } else {
            Script::SilentThenClose
        }
    }
    misbehaves_until_healed(
        2,
        pick,
        "status=deferred (451 4.4.2 Connection closed by remote server)",
    );
}

/// Checks a notification with Python's `email` package, `policy.default`: argv[1] the file,
/// argv[2] `full` or `headers`, argv[3] the failed recipient, argv[4] its diagnostic.
const CHECK_DSN: &str = r#"
import email, sys
from email import policy
raw = open(sys.argv[1], 'rb').read()
full, rcpt, diag = sys.argv[2] == 'full', sys.argv[3], sys.argv[4]
msg = email.message_from_bytes(raw, policy=policy.default)
assert msg.get_content_type() == 'multipart/report', msg.get_content_type()
assert msg.get_param('report-type') == 'delivery-status', msg.get_param('report-type')
assert msg['Auto-Submitted'] == 'auto-replied', msg['Auto-Submitted']
assert msg['To'] == 'a@sender.test', msg['To']
assert str(msg['From']).startswith('MAILER-DAEMON@relay.test'), msg['From']
assert msg['Date'].datetime is not None
assert not msg.defects, msg.defects
parts = list(msg.iter_parts())
assert len(parts) == 3, [p.get_content_type() for p in parts]
assert parts[0].get_content_type() == 'text/plain'
assert rcpt in parts[0].get_content(), parts[0].get_content()
ds = parts[1]
assert ds.get_content_type() == 'message/delivery-status', ds.get_content_type()
blocks = ds.get_payload()
assert len(blocks) == 2, len(blocks)
per_msg, per_rcpt = blocks
assert per_msg['Reporting-MTA'] == 'dns; relay.test', per_msg['Reporting-MTA']
assert email.utils.parsedate_to_datetime(per_msg['Arrival-Date']) is not None
assert per_rcpt['Final-Recipient'] == 'rfc822; ' + rcpt, per_rcpt['Final-Recipient']
assert per_rcpt['Action'] == 'failed', per_rcpt['Action']
assert per_rcpt['Status'] == '5.1.1', per_rcpt['Status']
assert per_rcpt['Remote-MTA'].startswith('dns; '), per_rcpt['Remote-MTA']
assert per_rcpt['Diagnostic-Code'] == 'smtp; ' + diag, per_rcpt['Diagnostic-Code']
assert email.utils.parsedate_to_datetime(per_rcpt['Last-Attempt-Date']) is not None
ret = parts[2]
if full:
    assert ret.get_content_type() == 'message/rfc822', ret.get_content_type()
    inner = ret.get_content()
    assert inner['Subject'] == 'peers', inner['Subject']
    body = inner.get_content()
    assert 'first line' in body and '.a leading dot' in body and 'last line' in body, body
else:
    assert ret.get_content_type() == 'text/rfc822-headers', ret.get_content_type()
    text = ret.get_payload()
    if not isinstance(text, str):
        text = ret.get_content()
    assert 'Subject: peers' in text, text
    assert 'first line' not in text, text
print('ok')
"#;

fn python_checks(bytes: &str, mode: &str) {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(bytes.as_bytes()).unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg(CHECK_DSN)
        .arg(file.path())
        .arg(mode)
        .arg("no@target.test")
        .arg("550 5.1.1 no such user here")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "Python's email package rejects the notification:\n{}\n{bytes}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

#[test]
fn the_bounce_the_sender_receives_parses_with_python_email() {
    if peers::program("python3").is_none() {
        return;
    }
    let hop = Sink::with_rule(by_local_part);
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&config(dir.path(), &hop.addr.to_string(), None));
    send(
        &server.addr,
        "<a@sender.test> ENVID=headers-only",
        &["no@target.test"],
        BODY,
    );
    send(
        &server.addr,
        "<a@sender.test> RET=FULL ENVID=whole",
        &["no@target.test"],
        BODY,
    );
    assert!(
        until(WAIT, || notifications(&hop).len() >= 2),
        "two bounces"
    );
    let got = notifications(&hop);
    let by_envid = |envid: &str| {
        got.iter()
            .find(|m| m.data.contains(&format!("Original-Envelope-Id: {envid}")))
            .unwrap_or_else(|| panic!("no notification for {envid}"))
    };
    python_checks(&by_envid("headers-only").data, "headers");
    python_checks(&by_envid("whole").data, "full");
    assert!(until(WAIT, || queue_empty(dir.path())), "all done");
    let log = stop(server);
    log_line(&log, "a@sender.test", "status=sent");
}
