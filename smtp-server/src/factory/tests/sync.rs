//! Pipelining synchronisation (RFC 2920 §3.1, Postfix's `smtpd_forbid_unauth_pipelining`).

use std::sync::Arc;

use super::util::*;
use crate::factory::{CloseReason, Decision, Event, EventKind, Factory, State};

#[test]
fn talking_before_the_banner() {
    let mut f = Factory::new(
        Arc::new(config()),
        PEER.parse().unwrap(),
        LOCAL.parse().unwrap(),
        std::time::Instant::now(),
    );
    assert_eq!(f.state(), State::SendingBanner);
    let now = std::time::Instant::now();
    assert_eq!(f.handle_input(b"EHLO early\r\n", now), 12);
    let out = String::from_utf8(f.poll_transmit().unwrap().to_vec()).unwrap();
    assert_eq!(
        out,
        "220 mx.example ESMTP Impulse\r\n554 5.5.0 Error: SMTP protocol synchronization\r\n"
    );
    assert!(f.is_closed());
    assert_eq!(
        f.poll_event(),
        Some(Event::Close {
            reason: CloseReason::ProtocolSync
        })
    );
}

#[test]
fn talking_before_the_banner_while_connect_is_decided() {
    let mut cfg = config();
    cfg.decisions.set(EventKind::Connect, true);
    let mut f = Factory::new(
        Arc::new(cfg),
        PEER.parse().unwrap(),
        LOCAL.parse().unwrap(),
        std::time::Instant::now(),
    );
    let now = std::time::Instant::now();
    assert_eq!(f.state().as_str(), "async hook");
    assert!(matches!(f.poll_event(), Some(Event::Connect { .. })));
    // Nothing consumed while the decision is pending...
    assert_eq!(f.handle_input(b"EHLO early\r\n", now), 0);
    f.handle_decision(Decision::Accept, now).unwrap();
    // ... and after it, those bytes are still early: the banner is not written yet.
    assert_eq!(f.handle_input(b"EHLO early\r\n", now), 12);
    assert!(f.is_closed());
}

#[test]
fn pipelining_after_ehlo() {
    let mut h = Harness::new(config());
    h.output();
    let out = h.exchange(b"EHLO client.example\r\nMAIL FROM:<a@b.example>\r\n");
    assert!(out.ends_with("554 5.5.0 Error: SMTP protocol synchronization\r\n"));
    assert!(out.starts_with("250-mx.example\r\n"));
    assert_eq!(h.closed_with(), Some(CloseReason::ProtocolSync));
}

#[test]
fn body_before_354() {
    let mut h = Harness::ready(config());
    let out = h.exchange(
        b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n",
    );
    assert_eq!(
        out,
        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n\
         554 5.5.0 Error: SMTP protocol synchronization\r\n"
    );
    assert_eq!(h.closed_with(), Some(CloseReason::ProtocolSync));
    assert!(h.body.is_empty() || !h.body.ends_with(b"hi\r\n"));
}

#[test]
fn body_before_354_with_a_data_decision() {
    let mut cfg = config();
    cfg.decisions.set(EventKind::DataStart, true);
    let mut h = Harness::with_decider(cfg, default_decider());
    h.send(b"EHLO client.example\r\n");
    h.output();
    h.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nhi\r\n.\r\n");
    assert!(h
        .output()
        .ends_with("554 5.5.0 Error: SMTP protocol synchronization\r\n"));
}

#[test]
fn helo_sessions_do_not_pipeline() {
    let mut h = Harness::new(config());
    h.send(b"HELO client.example\r\n");
    h.output();
    let out = h.exchange(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n");
    assert!(
        out.ends_with("554 5.5.0 Error: SMTP protocol synchronization\r\n"),
        "{out}"
    );
}

#[test]
fn checks_can_be_turned_off() {
    let mut cfg = config();
    cfg.forbid_pipelining_violations = false;
    let mut h = Harness::new(cfg);
    let out = h.exchange(
        b"EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n",
    );
    assert!(
        out.ends_with("250 2.0.0 Ok: queued as QID1\r\n221 2.0.0 Bye\r\n"),
        "{out}"
    );
    assert!(h.body.ends_with(b"hi\r\n"));
}
