//! Every error reply, line-too-long resync, timeouts, the error budget, SIZE, bare LF and
//! hop-count policies.

use std::time::Duration;

use smtp_proto::data::BareLineEndings;

use super::util::*;
use crate::factory::{AbortReason, CloseReason, Event, EventKind, FactoryConfig, State};

/// (setup commands, command, expected reply line)
const TABLE: &[(&str, &str, &str)] = &[
    ("", "FOO bar\r\n", "500 5.5.2 Error: command not recognized"),
    ("", "???\r\n", "500 5.5.2 Error: command not recognized"),
    (
        "",
        "MAIL FROM:<a@b.example> FOO=1\r\n",
        "555 5.5.4 Unsupported parameter",
    ),
    (
        "",
        "MAIL FROM:<a@b.example> RET=BODY\r\n",
        "501 5.5.4 Invalid RET value",
    ),
    (
        "",
        "MAIL FROM:<a@b.example> BODY=BINARYMIME\r\n",
        "555 5.5.4 Unsupported parameter",
    ),
    (
        "",
        "MAIL FROM:<a@b.example> SIZE=33554433\r\n",
        "552 5.3.4 Message size exceeds fixed maximum message size",
    ),
    (
        "",
        "MAIL FROM:<a@b.example> SIZE=x\r\n",
        "501 5.5.4 Invalid SIZE value",
    ),
    (
        "",
        "MAIL FROM:a@b.example\r\n",
        "501 5.1.7 Bad sender address syntax",
    ),
    (
        "",
        "MAIL FROM:<jörg@b.example>\r\n",
        "553 5.6.7 Non-ASCII address requires SMTPUTF8",
    ),
    ("", "MAIL\r\n", "501 5.5.4 Syntax error, missing argument"),
    (
        "",
        "RCPT TO:<a@b.example>\r\n",
        "503 5.5.1 Error: need MAIL command",
    ),
    ("", "DATA\r\n", "503 5.5.1 Error: need MAIL command"),
    (
        "",
        "DATA x\r\n",
        "501 5.5.4 Syntax error, command takes no arguments",
    ),
    (
        "MAIL FROM:<a@b.example>\r\n",
        "DATA\r\n",
        "503 5.5.1 Error: need RCPT command",
    ),
    (
        "MAIL FROM:<a@b.example>\r\n",
        "MAIL FROM:<a@b.example>\r\n",
        "503 5.5.1 Error: nested MAIL command",
    ),
    (
        "MAIL FROM:<a@b.example>\r\n",
        "RCPT TO:<ü@b.example>\r\n",
        "553 5.6.7 Non-ASCII address requires SMTPUTF8",
    ),
    (
        "MAIL FROM:<a@b.example>\r\n",
        "RCPT TO:<c@d.example> NOTIFY=NEVER,SUCCESS\r\n",
        "501 5.5.4 Invalid NOTIFY value",
    ),
    (
        "MAIL FROM:<a@b.example>\r\n",
        "RCPT TO:<c@d.example> XFOO=1\r\n",
        "555 5.5.4 Unsupported parameter",
    ),
    (
        "MAIL FROM:<a@b.example>\r\n",
        "RCPT TO:<>\r\n",
        "501 5.1.3 Bad recipient address syntax",
    ),
    (
        "",
        "BDAT 4 LAST\r\nQUIT",
        "503 5.5.1 Error: need MAIL command",
    ),
    (
        "",
        "STARTTLS\r\n",
        "454 4.7.0 TLS not available due to local problem",
    ),
    (
        "",
        "AUTH PLAIN\r\n",
        "503 5.5.1 Error: authentication not enabled",
    ),
    ("", "HELO [192.0.2.1]\r\n", "501 5.5.4 Invalid domain name"),
    ("", "NOOP\rx\r\n", "550 5.5.2 Error: bare <CR> received"),
];

#[test]
fn error_reply_table() {
    for (setup, command, expected) in TABLE {
        let mut h = Harness::ready(config());
        h.send(setup.as_bytes());
        h.output();
        let out = h.exchange(command.as_bytes());
        assert_eq!(out, format!("{expected}\r\n"), "{command:?}");
        assert_eq!(h.f.error_count(), 1, "{command:?}");
    }
}

#[test]
fn no_valid_recipients_and_too_many() {
    let mut cfg = config();
    cfg.max_recipients = 2;
    let mut h = Harness::ready(cfg);
    h.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<bad@@x>\r\n");
    h.output();
    assert_eq!(
        h.exchange(b"DATA\r\n"),
        "554 5.5.1 Error: no valid recipients\r\n"
    );
    let out =
        h.exchange(b"RCPT TO:<a@x.example>\r\nRCPT TO:<b@x.example>\r\nRCPT TO:<c@x.example>\r\n");
    assert_eq!(
        out,
        "250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n452 4.5.3 Error: too many recipients\r\n"
    );
}

#[test]
fn mail_before_helo() {
    let mut h = Harness::new(config());
    h.output();
    assert_eq!(
        h.exchange(b"MAIL FROM:<a@b.example>\r\n"),
        "503 5.5.1 Error: send HELO/EHLO first\r\n"
    );
}

#[test]
fn line_too_long_then_resync() {
    let mut h = Harness::ready(config());
    let mut long = vec![b'N'; 5000];
    long.extend_from_slice(b"\r\nNOOP\r\n");
    // Split the long line across several reads.
    h.send(&long[..1000]);
    h.send(&long[1000..3000]);
    assert_eq!(h.output(), "");
    h.send(&long[3000..]);
    assert_eq!(
        h.output(),
        "500 5.5.2 Error: line too long\r\n250 2.0.0 Ok\r\n"
    );
    // Exactly at the limit is fine; one more byte is not.
    let mut at_limit = b"NOOP ".to_vec();
    at_limit.resize(2046, b'x');
    at_limit.extend_from_slice(b"\r\n");
    assert_eq!(h.exchange(&at_limit), "250 2.0.0 Ok\r\n");
    let mut over = b"NOOP ".to_vec();
    over.resize(2047, b'x');
    over.extend_from_slice(b"\r\n");
    assert_eq!(h.exchange(&over), "500 5.5.2 Error: line too long\r\n");
    // A partial line in the buffer that grows too long.
    h.send(b"NOOP ");
    h.send(&[b'y'; 3000]);
    h.send(b"\r\nRSET\r\n");
    assert_eq!(
        h.output(),
        "500 5.5.2 Error: line too long\r\n250 2.0.0 Ok\r\n"
    );
}

#[test]
fn idle_timeout() {
    let mut h = Harness::ready(config());
    let deadline = h.f.poll_timeout().unwrap();
    assert_eq!(deadline - h.now, Duration::from_secs(300));
    // Partial input does not extend the whole-command deadline.
    h.advance(Duration::from_secs(299));
    h.send(b"NOO");
    assert_eq!(h.f.poll_timeout(), Some(deadline));
    h.advance(Duration::from_secs(1));
    assert_eq!(
        h.output(),
        "421 4.4.2 mx.example Error: timeout exceeded\r\n"
    );
    assert_eq!(h.closed_with(), Some(CloseReason::Timeout));
    // The last replies must be written within one more command timeout.
    assert_eq!(h.f.poll_timeout(), Some(h.now + Duration::from_secs(300)));
}

#[test]
fn a_client_that_reads_nothing_is_given_up_a_command_timeout_after_the_close() {
    let mut h = Harness::ready(config());
    h.flush = false; // a client that reads nothing
    h.advance(Duration::from_secs(300));
    assert_eq!(h.closed_with(), Some(CloseReason::Timeout));
    // The 421 is queued, unread: the connection waits one more command timeout for it.
    assert!(h.f.poll_transmit().is_some());
    assert!(!h.f.is_abandoned());
    assert_eq!(h.f.poll_timeout(), Some(h.now + Duration::from_secs(300)));
    h.advance(Duration::from_secs(299));
    assert!(!h.f.is_abandoned());
    h.advance(Duration::from_secs(1));
    assert!(h.f.is_abandoned(), "given up");
    assert_eq!(h.f.poll_transmit(), None, "what was queued is dropped");
    assert_eq!(h.f.poll_timeout(), None);
}

#[test]
fn data_timeout_with_minimum_rate() {
    let mut cfg = config();
    cfg.data_timeout = Duration::from_secs(10);
    cfg.min_data_rate = 100;
    let mut h = Harness::ready(cfg);
    h.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n");
    h.output();
    let start = h.now;
    assert_eq!(h.f.poll_timeout(), Some(start + Duration::from_secs(10)));
    // 500 bytes buy 5 s, but never beyond now + 10 s.
    h.advance(Duration::from_secs(8));
    h.send(&[b'a'; 500]);
    assert_eq!(h.f.poll_timeout(), Some(start + Duration::from_secs(15)));
    h.advance(Duration::from_secs(6));
    h.send(&[b'a'; 2000]);
    assert_eq!(h.f.poll_timeout(), Some(h.now + Duration::from_secs(10)));
    // A trickle: too slow.
    h.advance(Duration::from_secs(9));
    h.send(b"a");
    h.advance(Duration::from_secs(1));
    assert_eq!(h.output(), "");
    h.advance(Duration::from_secs(1));
    assert_eq!(
        h.output(),
        "421 4.4.2 mx.example Error: timeout exceeded\r\n"
    );
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::MessageAborted {
            reason: AbortReason::ConnectionClosed
        }
    )));
    assert_eq!(h.closed_with(), Some(CloseReason::Timeout));
}

#[test]
fn error_budget() {
    let mut h = Harness::ready(config());
    for _ in 0..19 {
        h.send(b"BOGUS\r\n");
    }
    assert_eq!(h.f.error_count(), 19);
    assert!(!h.f.is_closed());
    let out = h.exchange(b"BOGUS\r\nNOOP\r\n");
    assert!(out.ends_with(
        "500 5.5.2 Error: command not recognized\r\n421 4.7.0 mx.example Error: too many errors\r\n"
    ));
    assert_eq!(h.closed_with(), Some(CloseReason::TooManyErrors));
    assert!(!out.contains("250"));
}

#[test]
fn size_over_limit_after_data_keeps_sync() {
    let mut cfg = config();
    cfg.max_message_size = 100;
    let mut h = Harness::ready(cfg);
    assert_eq!(
        h.exchange(b"MAIL FROM:<a@b.example> SIZE=101\r\n"),
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
    h.send(b"MAIL FROM:<a@b.example> SIZE=100\r\nRCPT TO:<c@d.example>\r\nDATA\r\n");
    h.output();
    let mut msg = vec![b'z'; 300];
    msg.extend_from_slice(b"\r\n.\r\n");
    h.send(&msg);
    let out = h.exchange(b"NOOP\r\n");
    assert_eq!(
        out,
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n250 2.0.0 Ok\r\n"
    );
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::MessageAborted {
            reason: AbortReason::SizeExceeded
        }
    )));
    assert!(!h.kinds().contains(&EventKind::MessageComplete));
    assert_eq!(h.f.state(), State::AwaitingMail);
}

fn bare_lf_run(policy: BareLineEndings) -> (String, Vec<u8>, Vec<EventKind>) {
    let mut cfg = config();
    cfg.bare_line_endings = policy;
    let mut h = Harness::ready(cfg);
    h.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n");
    h.output();
    h.body.clear();
    // `\n.\n` is content, never a terminator.
    h.send(b"a\nb\n.\nc\r\n.\r\n");
    let body = h.body.split(|&b| b == b'\t').next_back().unwrap().to_vec();
    (h.output(), body, h.kinds())
}

#[test]
fn bare_lf_policies() {
    let (out, body, _) = bare_lf_run(BareLineEndings::Normalize);
    assert_eq!(out, "250 2.0.0 Ok: queued as QID1\r\n");
    assert!(body.ends_with(b"a\r\nb\r\n.\r\nc\r\n"), "{body:?}");
    let (out, body, _) = bare_lf_run(BareLineEndings::Keep);
    assert_eq!(out, "250 2.0.0 Ok: queued as QID1\r\n");
    assert!(body.ends_with(b"a\nb\n.\nc\r\n"), "{body:?}");
    let (out, _, kinds) = bare_lf_run(BareLineEndings::Reject);
    assert_eq!(out, "550 5.5.2 Message contains bare CR or LF\r\n");
    assert!(kinds.contains(&EventKind::MessageAborted));
}

#[test]
fn bare_lf_command_line_policy() {
    // Default (normalize): accepted.
    let mut h = Harness::ready(config());
    assert_eq!(h.exchange(b"NOOP\n"), "250 2.0.0 Ok\r\n");
    // Strict: 550 and disconnect, as Postfix's `reject`.
    let mut cfg = config();
    cfg.leniency.bare_lf_line_ending = false;
    let mut h = Harness::ready(cfg);
    assert_eq!(
        h.exchange(b"NOOP\n"),
        "550 5.5.2 Error: bare <LF> received\r\n"
    );
    assert_eq!(h.closed_with(), Some(CloseReason::BareLineEnding));
}

#[test]
fn hop_count() {
    let mut cfg = config();
    cfg.max_hops = 3;
    let mut h = Harness::ready(cfg);
    let mut msg = Vec::new();
    for i in 0..4 {
        msg.extend_from_slice(format!("Received: from hop{i}\r\n").as_bytes());
    }
    msg.extend_from_slice(b"Subject: loop\r\n\r\nReceived: in the body does not count\r\n");
    let wire = stuffed(&msg);
    h.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n");
    h.output();
    assert_eq!(h.exchange(&wire), "554 5.4.6 Error: too many hops\r\n");
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::MessageAborted {
            reason: AbortReason::TooManyHops
        }
    )));
    // Three hops pass, and the count is reported.
    h.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n");
    h.output();
    let wire = stuffed(&msg[msg.iter().position(|&b| b == b'\n').unwrap() + 1..]);
    assert_eq!(h.exchange(&wire), "250 2.0.0 Ok: queued as QID1\r\n");
    let hops = h.events.iter().find_map(|e| match e {
        Event::MessageComplete { stats, .. } => Some(stats.hops),
        _ => None,
    });
    assert_eq!(hops, Some(3));
}

#[test]
fn destroy_during_body() {
    let mut h = Harness::ready(FactoryConfig::new("mx.example"));
    h.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n");
    h.send(b"some body\r\n");
    h.f.destroy_message_construct();
    h.output();
    assert_eq!(
        h.exchange(b"more\r\n.\r\n"),
        "451 4.3.0 Error: message aborted\r\n"
    );
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::MessageAborted {
            reason: AbortReason::Discarded
        }
    )));
}
