//! The abuse limits on the simulated clock: recipient overshoot, forbidden commands, the
//! tarpit, messages per session and the greeting pause.

use std::time::Duration;

use super::util::*;
use crate::factory::{CloseReason, Decisions, EventKind, State};

#[test]
fn recipients_past_the_limit_are_452_and_errors_only_past_the_overshoot() {
    // The defaults: 1000 recipients, an overshoot of 1000. 1100 pipelined RCPTs are not
    // cut off: 100 get 452, none counts as an error, DATA goes on.
    let mut h = Harness::ready(config());
    let mut input = b"MAIL FROM:<a@example.org>\r\n".to_vec();
    for i in 0..1100 {
        input.extend_from_slice(format!("RCPT TO:<r{i}@example.com>\r\n").as_bytes());
    }
    input.extend_from_slice(b"DATA\r\n");
    h.send(&input);
    h.send(b"hi\r\n.\r\n");
    let out = h.output();
    assert_eq!(out.matches("250 2.1.5 Ok\r\n").count(), 1000);
    assert_eq!(
        out.matches("452 4.5.3 Error: too many recipients\r\n")
            .count(),
        100
    );
    assert!(out.contains("354 End data"), "not cut off");
    assert!(out.ends_with("queued as QID1\r\n"), "accepted");
    assert_eq!(h.f.error_count(), 0);
    let recipients = h.events.iter().find_map(|e| match e {
        crate::factory::Event::MessageComplete { envelope, .. } => Some(envelope.recipients.len()),
        _ => None,
    });
    assert_eq!(recipients, Some(1000), "the message goes to the first 1000");
    // Past the overshoot, each excess RCPT is an error.
    let mut cfg = config();
    cfg.max_recipients = 2;
    cfg.recipient_overshoot = 5;
    let mut h = Harness::ready(cfg);
    h.send(b"MAIL FROM:<a@example.org>\r\n");
    for i in 0..10 {
        h.send(format!("RCPT TO:<r{i}@example.com>\r\n").as_bytes());
    }
    assert_eq!(h.output().matches("452 4.5.3").count(), 8);
    assert_eq!(h.f.error_count(), 3);
}

#[test]
fn forbidden_commands_end_the_session_at_once() {
    for line in [
        &b"GET / HTTP/1.1\r\n"[..],
        b"POST /cgi HTTP/1.0\r\n",
        b"CONNECT 10.0.0.1:25 HTTP/1.1\r\n",
        b"Subject: hello\r\n",
    ] {
        let mut h = Harness::ready(config());
        let mut input = line.to_vec();
        input.extend_from_slice(b"Host: x\r\n\r\n");
        assert_eq!(
            h.exchange(&input),
            "221 2.7.0 Error: I can break rules, too. Goodbye.\r\n",
            "{line:?}"
        );
        assert_eq!(h.closed_with(), Some(CloseReason::ForbiddenCommand));
    }
}

#[test]
fn the_tarpit_holds_error_replies_past_the_soft_limit() {
    let mut cfg = config();
    cfg.soft_error_limit = 2;
    cfg.error_sleep = Duration::from_secs(1);
    let mut h = Harness::ready(cfg);
    assert!(h.exchange(b"XYZ\r\n").starts_with("500"));
    assert!(h.exchange(b"XYZ\r\n").starts_with("500"));
    // The third error is past the soft limit: held, and nothing more is read meanwhile.
    assert_eq!(h.exchange(b"XYZ\r\nNOOP\r\n"), "");
    assert!(!h.f.wants_input());
    let t = h.f.poll_timeout().unwrap();
    assert_eq!(t, h.now + Duration::from_secs(1));
    h.advance(Duration::from_millis(999));
    assert_eq!(h.output(), "");
    h.advance(Duration::from_millis(1));
    assert_eq!(
        h.output(),
        "500 5.5.2 Error: command not recognized\r\n250 2.0.0 Ok\r\n"
    );
    // A good command is not delayed.
    assert_eq!(h.exchange(b"NOOP\r\n"), "250 2.0.0 Ok\r\n");
    // Off (zero), nothing waits.
    let mut cfg = config();
    cfg.soft_error_limit = 0;
    let mut h = Harness::ready(cfg);
    assert!(h.exchange(b"XYZ\r\n").starts_with("500"));
}

#[test]
fn the_hard_limit_421_is_not_held() {
    let mut cfg = config();
    cfg.soft_error_limit = 0;
    cfg.hard_error_limit = 1;
    cfg.error_sleep = Duration::from_secs(5);
    let mut h = Harness::ready(cfg);
    let out = h.exchange(b"XYZ\r\n");
    assert!(
        out.ends_with("421 4.7.0 mx.example Error: too many errors\r\n"),
        "{out}"
    );
    assert!(h.f.is_closed());
}

#[test]
fn messages_per_session() {
    let mut cfg = config();
    cfg.messages_per_session = Some(2);
    let mut h = Harness::ready(cfg);
    for _ in 0..2 {
        h.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
        h.send(b"hi\r\n.\r\n");
    }
    assert_eq!(h.output().matches("queued as").count(), 2);
    assert_eq!(
        h.exchange(b"MAIL FROM:<a@example.org>\r\n"),
        "421 4.7.0 mx.example Error: too many messages in this session\r\n"
    );
    assert_eq!(h.closed_with(), Some(CloseReason::TooManyMessages));
}

#[test]
fn the_greeting_pause_refuses_early_talkers() {
    let mut cfg = config();
    cfg.greet_pause = Duration::from_secs(3);
    let mut h = Harness::new(cfg.clone());
    assert_eq!(h.output(), "");
    assert_eq!(h.f.state(), State::JustConnected);
    assert!(h.f.wants_input(), "early bytes must be read to be seen");
    assert_eq!(h.f.poll_timeout(), Some(h.now + Duration::from_secs(3)));
    h.advance(Duration::from_secs(1));
    assert_eq!(
        h.exchange(b"EHLO early\r\n"),
        "521 5.5.1 Error: talking before the greeting, goodbye\r\n"
    );
    assert_eq!(h.closed_with(), Some(CloseReason::Pregreet));
    // A patient client gets the banner when the pause ends.
    let mut h = Harness::new(cfg.clone());
    h.advance(Duration::from_secs(3));
    assert_eq!(h.output(), "220 mx.example ESMTP Impulse\r\n");
    assert!(h.exchange(b"EHLO c\r\n").starts_with("250-mx.example"));
    // With a Connect hook, its decision comes after the pause.
    cfg.decisions = Decisions::NONE.with(EventKind::Connect);
    let mut h = Harness::new(cfg);
    assert!(h.events.is_empty());
    h.advance(Duration::from_secs(3));
    assert_eq!(h.kinds(), [EventKind::Connect]);
    assert_eq!(h.output(), "220 mx.example ESMTP Impulse\r\n");
}

#[test]
fn a_tarpit_pending_at_the_close_leaves_no_past_deadline() {
    // The hard limit closes while the tarpit is armed, to a client that reads nothing: the
    // only deadline left is the close's (a past one would make the loop fire it forever).
    let mut cfg = config();
    cfg.soft_error_limit = 0;
    cfg.hard_error_limit = 1;
    cfg.error_sleep = Duration::from_secs(5);
    let mut h = Harness::ready(cfg);
    h.flush = false;
    h.send(b"XYZ\r\n");
    assert!(h.f.is_closed());
    let closed_at = h.now;
    h.advance(Duration::from_secs(5));
    assert_eq!(
        h.f.poll_timeout(),
        Some(closed_at + Duration::from_secs(300)),
        "the close's deadline, not the tarpit's"
    );
    assert!(!h.f.is_abandoned());
}
