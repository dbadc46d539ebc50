//! The server against real SMTP clients over 127.0.0.1: Python's smtplib, swaks and
//! Postfix's smtp-source. Every message they got a 250 for must be in the spool, byte-exact.
//!
//! A missing tool prints `SKIPPED: <tool> not installed` and the test returns — unless the
//! `CI` environment variable is set, where a missing tool fails the test.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use impulse::hooks::Registry;
use impulse::server::spool::QueueId;
use serde_json::Value;

use impulse_test_support::server::TestServer;

/// Impulse's server with two loop threads.
fn start() -> TestServer {
    TestServer::with(Registry::new(), 2)
}

/// The stored message without the `Received:` header the server prepends.
fn stored_without_received(server: &TestServer, id: &str) -> Vec<u8> {
    let bytes = server.stored(QueueId::parse(id).unwrap());
    assert!(
        bytes.starts_with(b"Received: "),
        "no Received: header first"
    );
    // The header ends at the first CRLF not followed by folding white space.
    let mut at = 0;
    loop {
        let nl = at + bytes[at..].windows(2).position(|w| w == b"\r\n").unwrap() + 2;
        if !matches!(bytes.get(nl), Some(b' ' | b'\t')) {
            return bytes[nl..].to_vec();
        }
        at = nl;
    }
}

/// The tool's path, or `None` after printing the skip notice (a failure under `CI`).
fn tool(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/bin", "/usr/local/bin"].map(PathBuf::from));
    if let Some(found) = dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file()) {
        return Some(found);
    }
    if std::env::var_os("CI").is_some() {
        panic!("{name} is not installed, and CI is set: install it (see .ci/run)");
    }
    eprintln!("SKIPPED: {name} not installed");
    None
}

/// Sends messages with smtplib and prints, per message, the queue id from the 250 reply,
/// the envelope and the exact bytes given to `SMTP.data` (base64).
const SMTPLIB_SCRIPT: &str = r#"
import base64, json, smtplib, sys

port = int(sys.argv[1])
out = []

def data(s, msg):
    code, text = s.data(msg)
    assert code == 250, (code, text)
    return text.decode().rsplit(' ', 1)[1]

def record(qid, sender, rcpts, msg):
    out.append({"id": qid, "from": sender, "rcpts": rcpts,
                "data": base64.b64encode(msg).decode()})

# 1. A plain transaction (sendmail through the lower-level calls, to see the queue id).
s = smtplib.SMTP('127.0.0.1', port)
s.ehlo('client.test')
assert s.has_extn('pipelining') and s.has_extn('8bitmime') and s.has_extn('smtputf8')
msg = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: plain\r\n\r\nHello.\r\n.dot first\r\n..two dots\r\n"
s.mail('a@example.com'); s.rcpt('b@example.com')
record(data(s, msg), 'a@example.com', ['b@example.com'], msg)

# 2. Several recipients through send_message (smtplib sends RCPTs back to back).
from email.message import EmailMessage
m = EmailMessage()
m['From'] = 'a@example.com'; m['To'] = 'b@example.com, c@example.com, d@example.org'
m['Subject'] = 'several'; m.set_content('to three people\n')
refused = s.send_message(m)
assert refused == {}, refused

# 3. 8BITMIME: an 8-bit body.
msg = "Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße aus Köln — ½ €\r\n".encode()
s.mail('a@example.com', ['BODY=8BITMIME']); s.rcpt('b@example.com')
record(data(s, msg), 'a@example.com', ['b@example.com'], msg)

# 4. SMTPUTF8 addresses.
msg = "From: jösé@exämple.org\r\nTo: 用户@例子.广告\r\nSubject: utf8\r\n\r\nunicode addresses\r\n".encode()
s.mail('jösé@exämple.org', ['SMTPUTF8', 'BODY=8BITMIME']); s.rcpt('用户@例子.广告')
record(data(s, msg), 'jösé@exämple.org', ['用户@例子.广告'], msg)

# 5. Many messages on the same connection.
for i in range(30):
    msg = ("Subject: many %d\r\n\r\n" % i + "line %d\r\n" % i * (i * 7 + 1)).encode()
    s.mail('many@example.com'); s.rcpt('r%d@example.com' % i)
    record(data(s, msg), 'many@example.com', ['r%d@example.com' % i], msg)
s.quit()
print(json.dumps(out))
"#;

#[test]
fn smtplib_transactions_are_spooled_byte_exact() {
    let Some(python) = tool("python3") else {
        return;
    };
    let server = start();
    let output = Command::new(python)
        .arg("-c")
        .arg(SMTPLIB_SCRIPT)
        .arg(server.addr.port().to_string())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(output.status.success(), "the smtplib script failed");
    let sent: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(sent.len(), 33);
    for m in &sent {
        let id = m["id"].as_str().unwrap();
        let data = base64_decode(m["data"].as_str().unwrap());
        let stored = stored_without_received(&server, id);
        assert_eq!(
            String::from_utf8_lossy(&stored),
            String::from_utf8_lossy(&data),
            "message {id}"
        );
        assert_eq!(stored, data, "message {id}");
        let env = server
            .spool
            .read_envelope(QueueId::parse(id).unwrap())
            .unwrap();
        assert_eq!(env.sender, m["from"].as_str().unwrap());
        let rcpts: Vec<&str> = env.recipients.iter().map(|r| r.address.as_str()).collect();
        let want: Vec<&str> = m["rcpts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(rcpts, want);
    }
    // 33 recorded plus the send_message one, with its three recipients.
    assert_eq!(server.count(), 34);
    let multi = server
        .spool
        .list()
        .unwrap()
        .into_iter()
        .find(|e| e.recipients.len() == 3)
        .unwrap();
    assert_eq!(
        multi.recipients,
        ["b@example.com", "c@example.com", "d@example.org"]
    );
}

fn base64_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for b in s.bytes().filter(|&b| b != b'=') {
        let v = ALPHABET.iter().position(|&a| a == b).unwrap() as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[test]
fn swaks_plain_and_pipelined() {
    let Some(swaks) = tool("swaks") else {
        return;
    };
    let server = start();
    let target = server.addr.to_string();
    for extra in [&[][..], &["--pipeline"][..]] {
        let out = Command::new(&swaks)
            .args(["--server", &target, "--to", "b@example.com,c@example.com"])
            .args(["--from", "a@example.com", "--helo", "client.test"])
            .args(extra)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "swaks {extra:?} failed:\n{text}");
        assert!(text.contains("250 2.0.0 Ok: queued as"), "{text}");
    }
    assert_eq!(server.count(), 2);
}

#[test]
fn smtp_source_messages_all_reach_the_spool() {
    let Some(source) = tool("smtp-source") else {
        return;
    };
    let server = start();
    let status = Command::new(source)
        .args(["-s", "5", "-m", "50", "-l", "4096"])
        .args(["-f", "a@example.com", "-t", "b@example.com"])
        .arg(server.addr.to_string())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(server.count(), 50);
    // That was a connection per message; now many messages per connection (-d).
    let status = Command::new(tool("smtp-source").unwrap())
        .args(["-d", "-s", "5", "-m", "20", "-l", "100"])
        .args(["-f", "a@example.com", "-t", "b@example.com"])
        .arg(server.addr.to_string())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(server.count(), 70);
}
