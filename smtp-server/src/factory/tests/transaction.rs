//! Whole transactions: the happy path, several messages, RSET, pipelining, the Received
//! header and the states along the way.

use std::time::{Duration, UNIX_EPOCH};

use super::util::*;
use crate::factory::{Decision, Event, EventKind, State};

#[test]
fn full_transaction() {
    let mut h = Harness::new(config());
    assert_eq!(h.output(), "220 mx.example ESMTP Impulse\r\n");
    assert_eq!(h.f.state(), State::AwaitingHelo);
    let ehlo = h.exchange(b"EHLO client.example\r\n");
    assert_eq!(
        ehlo,
        "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 33554432\r\n250-8BITMIME\r\n\
         250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250 CHUNKING\r\n"
    );
    assert_eq!(h.f.state(), State::AwaitingMail);
    assert_eq!(
        h.exchange(b"MAIL FROM:<alice@example.org>\r\n"),
        "250 2.1.0 Ok\r\n"
    );
    assert_eq!(h.f.state(), State::AwaitingRcpt);
    assert_eq!(
        h.exchange(b"RCPT TO:<bob@example.com>\r\n"),
        "250 2.1.5 Ok\r\n"
    );
    assert_eq!(
        h.exchange(b"DATA\r\n"),
        "354 End data with <CR><LF>.<CR><LF>\r\n"
    );
    assert_eq!(h.f.state(), State::DataPhase);
    h.send(b"Subject: hi\r\n\r\n..dot\r\n");
    assert_eq!(h.f.state(), State::ReadingBody);
    assert_eq!(h.exchange(b".\r\n"), "250 2.0.0 Ok: queued as QID1\r\n");
    assert_eq!(h.f.state(), State::AwaitingMail);
    assert!(h.f.envelope().is_none());
    assert_eq!(h.exchange(b"QUIT\r\n"), "221 2.0.0 Bye\r\n");
    assert!(h.f.is_closed());
    assert_eq!(h.f.state(), State::Closed);
    assert_eq!(
        h.kinds(),
        [
            EventKind::MessageStart,
            EventKind::MessageComplete,
            EventKind::Close
        ]
    );
    let body = String::from_utf8(h.body.clone()).unwrap();
    assert!(body.starts_with("Received: from client.example ([192.0.2.7])\r\n"));
    assert!(body.ends_with("Subject: hi\r\n\r\n.dot\r\n"), "{body:?}");
    match &h.events[1] {
        Event::MessageComplete { envelope, stats } => {
            assert_eq!(envelope.sender.to_string(), "<alice@example.org>");
            assert_eq!(envelope.recipients.len(), 1);
            assert_eq!(envelope.helo, "client.example");
            assert_eq!(stats.data.size, 21);
            assert_eq!(stats.hops, 0);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn many_messages_per_connection() {
    let mut h = Harness::ready(config());
    for i in 1..=5 {
        let mut t = b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n".to_vec();
        h.send(&t);
        t.clear();
        t.extend_from_slice(&stuffed(format!("message {i}\r\n").as_bytes()));
        h.send(&t);
        assert_eq!(
            h.output(),
            format!(
                "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n\
                 250 2.0.0 Ok: queued as QID{i}\r\n"
            )
        );
    }
    let completes = h
        .events
        .iter()
        .filter(|e| e.kind() == EventKind::MessageComplete)
        .count();
    assert_eq!(completes, 5);
}

#[test]
fn rset_discards_the_construct() {
    let mut h = Harness::ready(config());
    h.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n");
    assert_eq!(h.f.envelope().unwrap().recipients.len(), 1);
    assert_eq!(
        h.exchange(b"RSET\r\n"),
        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok\r\n"
    );
    assert!(h.f.envelope().is_none());
    assert_eq!(h.kinds(), [EventKind::Reset]);
    // The transaction is gone: RCPT needs a new MAIL.
    assert_eq!(
        h.exchange(b"RCPT TO:<b@example.com>\r\n"),
        "503 5.5.1 Error: need MAIL command\r\n"
    );
    // EHLO also resets.
    h.send(b"MAIL FROM:<a@example.org>\r\n");
    h.send(b"EHLO again.example\r\n");
    assert!(h.f.envelope().is_none());
    assert_eq!(h.kinds(), [EventKind::Reset, EventKind::Reset]);
    h.f.destroy_message_construct();
    assert!(h.f.envelope().is_none());
}

#[test]
fn pipelined_commands_replies_in_order() {
    let mut h = Harness::ready(config());
    let out = h.exchange(
        b"MAIL FROM:<a@example.org> SIZE=100 BODY=8BITMIME\r\nRCPT TO:<b@example.com>\r\n\
          RCPT TO:<bad@@x>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n",
    );
    assert_eq!(
        out,
        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n501 5.1.3 Bad recipient address syntax\r\n\
         250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
    );
    assert_eq!(h.f.envelope().unwrap().recipients.len(), 2);
    // After the message the client may pipeline the next transaction and QUIT.
    let out = h.exchange(b"x\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<Postmaster>\r\nQUIT\r\n");
    assert_eq!(
        out,
        "250 2.0.0 Ok: queued as QID1\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n221 2.0.0 Bye\r\n"
    );
}

#[test]
fn received_header_format() {
    let mut cfg = config();
    cfg.decisions.set(EventKind::DataStart, true);
    let mut h = Harness::with_decider(
        cfg,
        Box::new(|e| match e {
            Event::DataStart => Decision::Queued("0123456789abcdef0123".into()),
            Event::MessageComplete { envelope, .. } => {
                Decision::Queued(envelope.queue_id.clone().unwrap())
            }
            _ => Decision::Continue,
        }),
    );
    h.f.set_wall_clock(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    h.send(b"EHLO client.example\r\n");
    h.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
    h.send(b"hello\r\n.\r\n");
    assert!(h
        .output()
        .ends_with("250 2.0.0 Ok: queued as 0123456789abcdef0123\r\n"));
    assert_eq!(
        String::from_utf8(h.body.clone()).unwrap(),
        "Received: from client.example ([192.0.2.7])\r\n\
         \tby mx.example (Impulse) with ESMTP id 0123456789abcdef0123\r\n\
         \tfor <b@example.com>; Tue, 14 Nov 2023 22:13:20 +0000\r\n\
         hello\r\n"
    );
    // Two recipients: no `for` clause; SMTPUTF8 and HELO change the protocol name.
    h.body.clear();
    h.send(b"HELO old.example\r\n");
    h.send(b"MAIL FROM:<a@example.org>\r\n");
    h.send(b"RCPT TO:<b@example.com>\r\n");
    h.send(b"RCPT TO:<c@example.com>\r\n");
    h.send(b"DATA\r\n");
    h.send(b".\r\n");
    let body = String::from_utf8(h.body.clone()).unwrap();
    assert!(body.contains("with SMTP id"), "{body}");
    assert!(!body.contains("for <"), "{body}");
    h.body.clear();
    h.send(b"EHLO client.example\r\n");
    h.send(
        "MAIL FROM:<jörg@example.org> SMTPUTF8\r\nRCPT TO:<ü@example.com>\r\nDATA\r\n".as_bytes(),
    );
    h.send(b".\r\n");
    let body = String::from_utf8(h.body.clone()).unwrap();
    assert!(body.contains("with UTF8SMTP id"), "{body}");
    assert!(body.contains("for <ü@example.com>;"), "{body}");
}

#[test]
fn other_commands() {
    let mut h = Harness::ready(config());
    assert_eq!(h.exchange(b"NOOP\r\n"), "250 2.0.0 Ok\r\n");
    assert!(h.exchange(b"VRFY bob\r\n").starts_with("252 2.5.0 "));
    assert!(h.exchange(b"EXPN list\r\n").starts_with("502 5.5.1 "));
    assert!(h.exchange(b"HELP\r\n").starts_with("214 2.0.0 "));
    assert_eq!(h.exchange(b"HELO plain.example\r\n"), "250 mx.example\r\n");
    assert_eq!(h.f.helo(), Some("plain.example"));
}

#[test]
fn state_names() {
    let names: Vec<&str> = [
        State::JustConnected,
        State::SendingBanner,
        State::AwaitingHelo,
        State::AwaitingMail,
        State::AwaitingRcpt,
        State::DataPhase,
        State::ReadingBody,
        State::AsyncHook(EventKind::Rcpt),
        State::AsyncHook(EventKind::MessageComplete),
    ]
    .iter()
    .map(State::as_str)
    .collect();
    assert_eq!(
        names,
        [
            "just connected",
            "sending banner",
            "awaiting ehlo/helo",
            "awaiting mailfrom",
            "awaiting rcptto",
            "data phase",
            "reading body",
            "async hook",
            "async body handler"
        ]
    );
    // A client that does not read: the banner stays "sending".
    let mut cfg = config();
    cfg.decisions.set(EventKind::Connect, true);
    let mut h = Harness::with_decider(cfg, Box::new(|_| Decision::Accept));
    assert_eq!(h.f.state(), State::AwaitingHelo);
    h.flush = false;
    let mut h2 = Harness::new(config());
    h2.flush = false;
    h2.f = crate::factory::Factory::new(
        std::sync::Arc::new(config()),
        PEER.parse().unwrap(),
        LOCAL.parse().unwrap(),
        h2.now,
    );
    assert_eq!(h2.f.state(), State::SendingBanner);
    let _ = h.output();
}
