//! Unit tests of each field of a notification.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use smtp_proto::params::Ret;
use smtp_proto::{EnhancedStatus, Reply};

use super::build::headers_of;
use super::*;

const ORIGINAL: &[u8] =
    b"From: a@example.org\r\nTo: b@example.net\r\nSubject: hi\r\n\r\nbody line\r\n";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn envelope(ret: Option<Ret>) -> Envelope {
    Envelope {
        sender: "a@example.org".into(),
        envid: Some("QQ314159".into()),
        ret,
        arrival: at(1_234_567_890),
    }
}

fn failed() -> RecipientReport {
    RecipientReport::new(
        "b@example.net",
        Action::Failed,
        EnhancedStatus::new(5, 1, 1),
    )
    .original_recipient("rfc822", "B@example.net")
    .remote(
        "mx.example.net",
        Reply::new(
            550,
            Some(EnhancedStatus::new(5, 1, 1)),
            "No such user\nat all",
        ),
    )
    .last_attempt(at(1_234_567_900))
}

fn text(env: &Envelope, recipients: &[RecipientReport], original: &[u8]) -> String {
    let n = Notification {
        reporting_mta: "mail.example.org",
        envelope: env,
        recipients,
        original,
        date: at(1_234_568_000),
        token: "0000ABCD.1",
    };
    String::from_utf8_lossy(&build(&n)).into_owned()
}

#[test]
fn the_headers_say_who_what_and_when() {
    let t = text(&envelope(None), &[failed()], ORIGINAL);
    let (head, _) = t.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("From: MAILER-DAEMON@mail.example.org\r\nTo: a@example.org\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nSubject: Undelivered Mail Returned to Sender\r\n"));
    assert!(head.contains("\r\nDate: Fri, 13 Feb 2009 23:33:20 +0000\r\n"));
    assert!(head.contains("\r\nMessage-ID: <0000ABCD.1@mail.example.org>\r\n"));
    assert!(head.contains("\r\nAuto-Submitted: auto-replied\r\n"));
    assert!(head.contains("\r\nMIME-Version: 1.0\r\n"));
    assert!(head
        .contains("Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\""));
    assert!(head.ends_with("Content-Transfer-Encoding: 7bit"));
}

#[test]
fn the_delivery_status_fields() {
    let t = text(&envelope(None), &[failed()], ORIGINAL);
    for field in [
        "\r\nReporting-MTA: dns; mail.example.org\r\n",
        "\r\nOriginal-Envelope-Id: QQ314159\r\n",
        "\r\nArrival-Date: Fri, 13 Feb 2009 23:31:30 +0000\r\n",
        "\r\n\r\nOriginal-Recipient: rfc822; B@example.net\r\nFinal-Recipient: rfc822; b@example.net\r\n",
        "\r\nAction: failed\r\nStatus: 5.1.1\r\n",
        "\r\nRemote-MTA: dns; mx.example.net\r\n",
        "\r\nDiagnostic-Code: smtp; 550 5.1.1 No such user at all\r\n",
        "\r\nLast-Attempt-Date: Fri, 13 Feb 2009 23:31:40 +0000\r\n",
    ] {
        assert!(t.contains(field), "missing {field:?} in\n{t}");
    }
    assert!(!t.contains("Will-Retry-Until"));
}

#[test]
fn a_delayed_recipient_has_will_retry_until() {
    let r = RecipientReport::new(
        "b@example.net",
        Action::Delayed {
            will_retry_until: at(1_235_000_000),
        },
        EnhancedStatus::new(4, 4, 1),
    );
    let t = text(&envelope(None), &[r], ORIGINAL);
    assert!(t.contains("\r\nAction: delayed\r\nStatus: 4.4.1\r\nWill-Retry-Until: Wed, 18 Feb 2009 23:33:20 +0000\r\n"), "{t}");
    assert!(t.contains("Subject: Delayed Mail"));
    let relayed = RecipientReport::new(
        "b@example.net",
        Action::Relayed,
        EnhancedStatus::new(2, 0, 0),
    );
    assert!(text(&envelope(None), &[relayed], ORIGINAL).contains("\r\nAction: relayed\r\n"));
}

#[test]
fn headers_only_without_ret_full_message_with_ret_full() {
    let hdrs = text(&envelope(None), &[failed()], ORIGINAL);
    assert!(hdrs.contains("Content-Type: text/rfc822-headers\r\n"));
    assert!(hdrs.contains("Subject: hi\r\n"));
    assert!(!hdrs.contains("body line"));
    let hdrs = text(&envelope(Some(Ret::Hdrs)), &[failed()], ORIGINAL);
    assert!(!hdrs.contains("body line"));
    let full = text(&envelope(Some(Ret::Full)), &[failed()], ORIGINAL);
    assert!(full.contains("Content-Type: message/rfc822\r\n"));
    assert!(full.contains("\r\n\r\nbody line\r\n"));
}

#[test]
fn headers_of_stops_at_the_first_empty_line() {
    assert_eq!(
        headers_of(ORIGINAL),
        b"From: a@example.org\r\nTo: b@example.net\r\nSubject: hi\r\n"
    );
    assert_eq!(headers_of(b"A: 1\nB: 2\n\nbody\n\n"), b"A: 1\nB: 2\n");
    assert_eq!(headers_of(b"A: 1\r\n"), b"A: 1\r\n");
    assert_eq!(headers_of(b"\r\nbody"), b"");
}

#[test]
fn eight_bit_content_is_declared_8bit() {
    let original = "Subject: caf\u{e9}\r\n\r\nna\u{ef}ve\r\n".as_bytes();
    let full = text(&envelope(Some(Ret::Full)), &[failed()], original);
    assert!(full.contains("Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n"));
    let (head, _) = full.split_once("\r\n\r\n").unwrap();
    assert!(head.ends_with("Content-Transfer-Encoding: 8bit"), "{head}");
    let ascii = text(&envelope(Some(Ret::Full)), &[failed()], ORIGINAL);
    assert!(ascii.contains("Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n"));
}

#[test]
fn the_boundary_occurs_nowhere_in_the_returned_message() {
    let plain = text(&envelope(Some(Ret::Full)), &[failed()], ORIGINAL);
    let boundary = plain
        .split("boundary=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    // A message that contains the boundary the notification would have used.
    let hostile = format!("Subject: x\r\n\r\n--{boundary}\r\n--{boundary}.1--\r\n");
    let t = text(&envelope(Some(Ret::Full)), &[failed()], hostile.as_bytes());
    let chosen = t
        .split("boundary=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert_ne!(chosen, boundary);
    assert!(!hostile.contains(chosen));
    assert!(chosen.len() <= 70);
    assert_eq!(t.matches(&format!("\r\n--{chosen}\r\n")).count(), 3);
    assert!(t.ends_with(&format!("\r\n--{chosen}--\r\n")));
}

#[test]
fn an_envid_with_control_characters_is_xtext_encoded() {
    let mut env = envelope(None);
    env.envid = Some("a\r\nB: c".into());
    let t = text(&env, &[failed()], ORIGINAL);
    assert!(
        t.contains("\r\nOriginal-Envelope-Id: a+0D+0AB:+20c\r\n"),
        "{t}"
    );
    env.envid = None;
    assert!(!text(&env, &[failed()], ORIGINAL).contains("Original-Envelope-Id"));
}
