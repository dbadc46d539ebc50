//! Session-level inputs: shutdown, session updates (XCLIENT), per-session EHLO keywords,
//! spool space, decision deadlines, and the accessors the driver logs from.

use std::time::Duration;

use smtp_proto::reply::Reply;

use super::util::{config, stuffed, Harness};
use crate::factory::{
    CloseReason, Decision, Event, EventKind, FactoryConfig, FactoryError, SessionUpdate, State,
};

#[test]
fn shutdown_421_follows_queued_replies_and_closes() {
    let mut h = Harness::ready(config());
    h.flush = false;
    h.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n");
    h.f.handle_shutdown();
    h.flush = true;
    h.pump();
    assert_eq!(
        h.output(),
        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n421 4.3.2 mx.example Service shutting down\r\n"
    );
    assert_eq!(h.closed_with(), Some(CloseReason::Shutdown));
    assert!(h.f.is_closed());
    // Idempotent once closed.
    h.f.handle_shutdown();
    assert_eq!(h.output(), "");
}

#[test]
fn shutdown_during_the_body_aborts_the_message() {
    let mut h = Harness::ready(config());
    h.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n");
    h.send(b"Subject: half\r\n");
    h.output();
    h.f.handle_shutdown();
    h.pump();
    assert!(h.output().starts_with("421 4.3.2"));
    assert!(h.kinds().contains(&EventKind::MessageAborted));
}

#[test]
fn esmtp_flag_and_command_count() {
    let mut h = Harness::new(config());
    assert!(!h.f.is_esmtp());
    h.exchange(b"HELO client.example\r\n");
    assert!(!h.f.is_esmtp());
    h.exchange(b"EHLO client.example\r\n");
    assert!(h.f.is_esmtp());
    h.exchange(b"NOOP\r\n");
    h.exchange(b"BOGUS\r\n");
    assert_eq!(h.f.commands(), 4);
}

fn xclient_config() -> FactoryConfig {
    let mut c = config();
    c.extensions
        .register(
            "XCLIENT",
            &["ADDR", "NAME", "HELO"],
            Some("XCLIENT"),
            &[],
            &[],
        )
        .unwrap();
    c
}

/// A driver that applies what an XCLIENT handler changed, then answers `220`.
fn xclient_harness() -> Harness {
    let mut h = Harness::ready(xclient_config());
    h.before_decision = Some(Box::new(|f, event| {
        if let Event::Extension { verb, .. } = event {
            assert_eq!(verb, "XCLIENT");
            let u = SessionUpdate {
                peer: Some("203.0.113.9:4000".parse().unwrap()),
                client_name: Some(Some("client.example".into())),
                helo: Some(Some("spoofed.example".into())),
                auth: Some(Some("alice".into())),
                ..SessionUpdate::default()
            };
            f.handle_session_update(u, true);
        }
    }));
    h.decider = Box::new(|event| match event {
        Event::Extension { .. } => Decision::Reply(Reply::new(220, None, "mx.example ESMTP")),
        Event::MessageComplete { .. } => Decision::Queued("Q1".into()),
        _ => Decision::Continue,
    });
    h
}

#[test]
fn session_update_with_reset_restarts_the_session() {
    let mut h = xclient_harness();
    assert_eq!(
        h.exchange(b"XCLIENT ADDR=203.0.113.9 NAME=client.example\r\n"),
        "220 mx.example ESMTP\r\n"
    );
    assert_eq!(h.f.state(), State::AwaitingHelo);
    assert_eq!(h.f.helo(), None);
    assert_eq!(h.f.authenticated(), Some("alice"));
    assert!(h
        .exchange(b"MAIL FROM:<a@example.org>\r\n")
        .starts_with("503 5.5.1"));
    assert!(h
        .exchange(b"EHLO proxy.local\r\n")
        .starts_with("250-mx.example"));
    // The reported HELO name wins over the proxy's greeting.
    assert_eq!(h.f.helo(), Some("spoofed.example"));
    assert_eq!(h.f.peer(), "203.0.113.9:4000".parse().unwrap());
    h.exchange(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n");
    h.send(&stuffed(b"Subject: x\r\n\r\nhi\r\n"));
    let out = h.output();
    assert!(out.ends_with("250 2.0.0 Ok: queued as Q1\r\n"), "{out}");
    let received = String::from_utf8_lossy(&h.body).into_owned();
    assert!(
        received.starts_with(
            "Received: from spoofed.example (client.example [203.0.113.9])\r\n\tby mx.example \
             (Impulse) with ESMTPA"
        ),
        "{received}"
    );
    let env = h
        .events
        .iter()
        .find_map(|e| match e {
            Event::MessageComplete { envelope, .. } => Some(envelope.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(env.helo, "spoofed.example");
    assert_eq!(env.peer, "203.0.113.9:4000".parse().unwrap());
    assert_eq!(env.auth.as_deref(), Some("alice"));
}

#[test]
fn the_reset_reply_ends_a_pipelining_group() {
    let mut h = xclient_harness();
    h.flush = false;
    h.send(b"XCLIENT ADDR=203.0.113.9\r\n");
    // Sent before the 220 was written: a synchronisation error.
    h.send(b"EHLO proxy.local\r\n");
    h.flush = true;
    h.pump();
    let out = h.output();
    assert!(
        out.ends_with("554 5.5.0 Error: SMTP protocol synchronization\r\n"),
        "{out}"
    );
}

#[test]
fn session_update_in_a_transaction_discards_it() {
    let mut h = Harness::ready(config());
    h.exchange(b"MAIL FROM:<a@example.org>\r\n");
    h.events.clear();
    let u = SessionUpdate {
        helo: Some(Some("other.example".into())),
        ..SessionUpdate::default()
    };
    h.f.handle_session_update(u.clone(), false);
    // Without a reset the name applies at once and the transaction stays.
    assert_eq!(h.f.helo(), Some("other.example"));
    assert!(h.f.envelope().is_some());
    h.f.handle_session_update(SessionUpdate::default(), true);
    h.pump();
    assert_eq!(h.kinds(), [EventKind::Reset]);
    assert!(h.f.envelope().is_none());
    assert_eq!(h.f.state(), State::AwaitingHelo);
}

#[test]
fn hidden_extensions_are_not_advertised() {
    let mut h = Harness::new(xclient_config());
    assert!(h
        .exchange(b"EHLO a.example\r\n")
        .contains("250 XCLIENT ADDR NAME HELO\r\n"));
    h.f.hide_extensions(["xclient"]);
    let ehlo = h.exchange(b"EHLO a.example\r\n");
    assert!(!ehlo.contains("XCLIENT"), "{ehlo}");
    assert!(ehlo.contains("PIPELINING"), "{ehlo}");
    h.f.hide_extensions(Vec::<String>::new());
    assert!(h.exchange(b"EHLO a.example\r\n").contains("XCLIENT"));
}

#[test]
fn mail_is_refused_while_storage_is_low() {
    let mut h = Harness::ready(config());
    h.f.set_storage_available(false);
    assert_eq!(
        h.exchange(b"MAIL FROM:<a@example.org>\r\n"),
        "452 4.3.1 Insufficient system storage\r\n"
    );
    h.f.set_storage_available(true);
    assert_eq!(
        h.exchange(b"MAIL FROM:<a@example.org>\r\n"),
        "250 2.1.0 Ok\r\n"
    );
}

fn held(kind: EventKind) -> Harness {
    let mut c = config();
    c.decisions.set(EventKind::Mail, true);
    c.decisions.set(EventKind::Rcpt, true);
    c.decisions.set(EventKind::Helo, true);
    c.decision_timeout = Duration::from_secs(60);
    let mut h = Harness::new(c);
    h.output();
    h.hold = Some(kind);
    h
}

#[test]
fn an_undecided_rcpt_times_out_with_451_and_the_session_goes_on() {
    let mut h = held(EventKind::Rcpt);
    h.exchange(b"EHLO a.example\r\n");
    h.exchange(b"MAIL FROM:<a@example.org>\r\n");
    assert_eq!(h.exchange(b"RCPT TO:<b@example.net>\r\n"), "");
    let deadline = h.f.poll_timeout().unwrap();
    assert_eq!(deadline, h.now + Duration::from_secs(60));
    h.advance(Duration::from_secs(59));
    assert_eq!(h.output(), "");
    h.advance(Duration::from_secs(1));
    assert_eq!(
        h.output(),
        "451 4.3.0 Error: timeout waiting for a policy decision, try again later\r\n"
    );
    assert!(h.events.contains(&Event::DecisionTimeout {
        kind: EventKind::Rcpt
    }));
    // The late answer has nothing to answer.
    assert_eq!(
        h.f.handle_decision(Decision::Continue, h.now),
        Err(FactoryError::NoPendingDecision)
    );
    h.hold = None;
    assert_eq!(h.exchange(b"RSET\r\n"), "250 2.0.0 Ok\r\n");
    // The idle deadline is armed again.
    assert_eq!(h.f.poll_timeout(), Some(h.now + Duration::from_secs(300)));
}

#[test]
fn an_undecided_helo_times_out_with_421() {
    let mut h = held(EventKind::Helo);
    assert_eq!(h.exchange(b"EHLO a.example\r\n"), "");
    h.advance(Duration::from_secs(60));
    assert_eq!(
        h.output(),
        "421 4.3.0 mx.example Error: timeout waiting for a policy decision\r\n"
    );
    assert_eq!(h.closed_with(), Some(CloseReason::DecisionTimeout));
}

#[test]
fn the_end_of_data_has_no_decision_deadline() {
    let mut h = Harness::ready(config());
    h.hold = Some(EventKind::MessageComplete);
    h.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n");
    h.send(&stuffed(b"hi\r\n"));
    assert_eq!(h.f.state(), State::AsyncHook(EventKind::MessageComplete));
    assert_eq!(h.f.poll_timeout(), None);
}
