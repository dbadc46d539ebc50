//! The generated notification, parsed by Python's `email` package: the structure, the
//! delivery-status fields and the returned part. Skips loudly without python3, unless the `CI`
//! environment variable is set (then it fails).

use std::io::Write;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use smtp_proto::params::Ret;
use smtp_proto::{EnhancedStatus, Reply};
use smtp_relay::dsn::{build, Action, Envelope, Notification, RecipientReport};

const CHECK: &str = r#"
import email, sys
from email import policy
raw = open(sys.argv[1], 'rb').read()
full = sys.argv[2] == 'full'
msg = email.message_from_bytes(raw, policy=policy.compat32)
assert msg.get_content_type() == 'multipart/report', msg.get_content_type()
assert msg.get_param('report-type') == 'delivery-status'
assert msg['From'] == 'MAILER-DAEMON@mail.example.org', msg['From']
assert msg['To'] == 'sender@example.org', msg['To']
assert msg['Auto-Submitted'] == 'auto-replied'
assert msg['MIME-Version'] == '1.0'
assert msg['Message-ID'] == '<Q1.bounce@mail.example.org>'
assert email.utils.parsedate_to_datetime(msg['Date']).year == 2009
assert not msg.defects, msg.defects
parts = msg.get_payload()
assert len(parts) == 3, len(parts)
assert parts[0].get_content_type() == 'text/plain'
assert 'rcpt1@example.net' in parts[0].get_payload()
ds = parts[1]
assert ds.get_content_type() == 'message/delivery-status', ds.get_content_type()
blocks = ds.get_payload()
assert len(blocks) == 3, len(blocks)
per_msg = blocks[0]
assert per_msg['Reporting-MTA'] == 'dns; mail.example.org'
assert per_msg['Original-Envelope-Id'] == 'ENV-42'
assert per_msg['Arrival-Date'] == 'Fri, 13 Feb 2009 23:31:30 +0000'
r1, r2 = blocks[1], blocks[2]
assert r1['Final-Recipient'] == 'rfc822; rcpt1@example.net'
assert r1['Original-Recipient'] == 'rfc822; Rcpt1@example.net'
assert r1['Action'] == 'failed'
assert r1['Status'] == '5.1.1'
assert r1['Remote-MTA'] == 'dns; mx.example.net'
assert r1['Diagnostic-Code'] == 'smtp; 550 5.1.1 no such user'
assert r1['Last-Attempt-Date'] == 'Fri, 13 Feb 2009 23:32:10 +0000'
assert r2['Action'] == 'delayed'
assert r2['Status'] == '4.4.1'
assert r2['Will-Retry-Until'] == 'Wed, 18 Feb 2009 23:31:30 +0000'
ret = parts[2]
if full:
    assert ret.get_content_type() == 'message/rfc822', ret.get_content_type()
    inner = ret.get_payload()[0]
    assert inner['Subject'] == 'original subject'
    assert inner.get_payload().startswith('--the body--'), inner.get_payload()
    assert ret['Content-Transfer-Encoding'] == '8bit'
else:
    assert ret.get_content_type() == 'text/rfc822-headers', ret.get_content_type()
    text = ret.get_payload()
    assert 'Subject: original subject' in text
    assert 'the body' not in text
print('ok')
"#;

fn notification(ret: Option<Ret>) -> Vec<u8> {
    let at = |s| UNIX_EPOCH + Duration::from_secs(s);
    let envelope = Envelope {
        sender: "sender@example.org".into(),
        envid: Some("ENV-42".into()),
        ret,
        arrival: at(1_234_567_890),
    };
    let recipients = [
        RecipientReport::new(
            "rcpt1@example.net",
            Action::Failed,
            EnhancedStatus::new(5, 1, 1),
        )
        .original_recipient("rfc822", "Rcpt1@example.net")
        .remote(
            "mx.example.net",
            Reply::new(550, Some(EnhancedStatus::new(5, 1, 1)), "no such user"),
        )
        .last_attempt(at(1_234_567_930)),
        RecipientReport::new(
            "rcpt2@example.net",
            Action::Delayed {
                will_retry_until: at(1_234_567_890 + 5 * 86_400),
            },
            EnhancedStatus::new(4, 4, 1),
        ),
    ];
    // The body holds a would-be boundary and 8-bit text.
    let original = "From: sender@example.org\r\nSubject: original subject\r\n\r\n--the body--\r\nna\u{ef}ve\r\n";
    build(&Notification {
        reporting_mta: "mail.example.org",
        envelope: &envelope,
        recipients: &recipients,
        original: original.as_bytes(),
        date: at(1_234_568_000),
        token: "Q1.bounce",
    })
}

fn python_available() -> bool {
    let found = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 is required in CI"
        );
        eprintln!("SKIPPED: python3 not found; the DSN is not checked by Python's email package");
    }
    found
}

fn check_with_python(bytes: &[u8], mode: &str) {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(bytes).unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg(CHECK)
        .arg(file.path())
        .arg(mode)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python rejected the notification:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(bytes)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

#[test]
fn python_parses_a_headers_only_notification() {
    if python_available() {
        check_with_python(&notification(None), "headers");
    }
}

#[test]
fn python_parses_a_full_notification() {
    if python_available() {
        check_with_python(&notification(Some(Ret::Full)), "full");
    }
}
