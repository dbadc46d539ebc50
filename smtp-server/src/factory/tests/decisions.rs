//! Decisions: reject, temp-fail, disconnect, queued ids, the connect decision and the
//! extension registry.

use smtp_proto::reply::Reply;
use smtp_proto::status::EnhancedStatus;

use super::util::*;
use crate::factory::{CloseReason, Decision, Decisions, Event, EventKind, Extensions, State};

fn reply(code: u16, status: (u8, u16, u16), text: &str) -> Reply {
    Reply::new(
        code,
        Some(EnhancedStatus::new(status.0, status.1, status.2)),
        text,
    )
}

#[test]
fn reject_rcpt_tempfail_mail_and_queue_id() {
    let mut cfg = config();
    cfg.decisions = Decisions::ALL;
    let mut mails = 0;
    let decider = Box::new(move |e: &Event| match e {
        Event::Mail { .. } => {
            mails += 1;
            if mails == 1 {
                Decision::TempFail(reply(451, (4, 3, 0), "try later"))
            } else {
                Decision::Accept
            }
        }
        Event::Rcpt { to, .. } if to.to_string().contains("nobody") => {
            Decision::Reject(reply(550, (5, 1, 1), "no such user"))
        }
        Event::MessageComplete { .. } => Decision::Queued("ABC123".into()),
        _ => Decision::Continue,
    });
    let mut h = Harness::with_decider(cfg, decider);
    assert_eq!(h.events[0].kind(), EventKind::Connect);
    h.send(b"EHLO client.example\r\n");
    h.output();
    assert_eq!(
        h.exchange(b"MAIL FROM:<a@b.example>\r\n"),
        "451 4.3.0 try later\r\n"
    );
    assert!(h.f.envelope().is_none());
    let out = h.exchange(
        b"MAIL FROM:<a@b.example>\r\nRCPT TO:<nobody@d.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n",
    );
    assert_eq!(
        out,
        "250 2.1.0 Ok\r\n550 5.1.1 no such user\r\n250 2.1.5 Ok\r\n\
         354 End data with <CR><LF>.<CR><LF>\r\n"
    );
    assert_eq!(
        h.exchange(b"x\r\n.\r\n"),
        "250 2.0.0 Ok: queued as ABC123\r\n"
    );
    assert_eq!(h.f.error_count(), 2);
}

#[test]
fn decision_waits_and_backpressures() {
    let mut cfg = config();
    cfg.decisions.set(EventKind::Rcpt, true);
    let mut h = Harness::ready(cfg);
    // Drive by hand: no auto-decisions.
    let now = h.now;
    let input = b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nRCPT TO:<e@d.example>\r\n";
    let n = h.f.handle_input(input, now);
    assert_eq!(n, 25 + 23, "stops after the RCPT awaiting a decision");
    assert_eq!(h.f.state(), State::AsyncHook(EventKind::Rcpt));
    // Only the decision deadline is armed.
    assert_eq!(
        h.f.poll_timeout(),
        Some(now + crate::factory::DEFAULT_DECISION_TIMEOUT)
    );
    assert!(!h.f.wants_input());
    assert_eq!(h.f.handle_input(&input[n..], now), 0);
    assert!(matches!(h.f.poll_event(), Some(Event::Rcpt { .. })));
    h.f.handle_decision(Decision::Accept, now).unwrap();
    assert!(h.f.wants_input());
    assert_eq!(h.f.handle_input(&input[n..], now), 23);
    assert!(h.f.handle_decision(Decision::Accept, now).is_ok());
    assert!(h.f.handle_decision(Decision::Accept, now).is_err());
    assert_eq!(h.f.envelope().unwrap().recipients.len(), 2);
}

#[test]
fn queue_id_cannot_split_the_reply() {
    let mut h = Harness::with_decider(
        config(),
        Box::new(|e| match e {
            Event::MessageComplete { .. } => Decision::Queued("ID\r\n250 2.0.0 forged".into()),
            _ => Decision::Continue,
        }),
    );
    h.send(b"EHLO c.example\r\n");
    h.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n");
    h.output();
    assert_eq!(
        h.exchange(b".\r\n"),
        "250 2.0.0 Ok: queued as ID250 2.0.0 forged\r\n"
    );
}

#[test]
fn disconnect_decision() {
    let mut cfg = config();
    cfg.decisions.set(EventKind::Helo, true);
    let mut h = Harness::with_decider(
        cfg,
        Box::new(|_| Decision::Disconnect(reply(421, (4, 7, 0), "mx.example go away"))),
    );
    h.output();
    assert_eq!(
        h.exchange(b"EHLO spammer.example\r\n"),
        "421 4.7.0 mx.example go away\r\n"
    );
    assert_eq!(h.closed_with(), Some(CloseReason::Rejected));
}

#[test]
fn connect_rejection_serves_only_quit() {
    let mut cfg = config();
    cfg.decisions.set(EventKind::Connect, true);
    let mut h = Harness::with_decider(
        cfg,
        Box::new(|_| Decision::Reject(Reply::new(554, None, "mx.example no service for you"))),
    );
    assert_eq!(h.output(), "554 mx.example no service for you\r\n");
    assert_eq!(
        h.exchange(b"EHLO c.example\r\n"),
        "503 5.5.1 Error: no SMTP service here\r\n"
    );
    h.send(b"QUIT\r\n");
    assert_eq!(h.output(), "221 2.0.0 Bye\r\n");
    // A temporary refusal closes at once.
    let mut cfg = config();
    cfg.decisions.set(EventKind::Connect, true);
    let h = Harness::with_decider(
        cfg,
        Box::new(|_| Decision::TempFail(Reply::new(421, None, "mx.example busy"))),
    );
    assert_eq!(h.closed_with(), Some(CloseReason::Rejected));
}

#[test]
fn extension_registry() {
    let mut ext = Extensions::new();
    ext.register(
        "XCLIENT",
        &["ADDR", "NAME"],
        Some("XCLIENT"),
        &["XTRACE"],
        &["XPRIO"],
    )
    .unwrap();
    let mut cfg = config();
    cfg.extensions = ext;
    let mut h = Harness::new(cfg);
    h.output();
    let ehlo = h.exchange(b"EHLO client.example\r\n");
    assert!(ehlo.contains("250 XCLIENT ADDR NAME\r\n"), "{ehlo}");
    assert_eq!(
        h.exchange(b"xclient ADDR=192.0.2.9\r\n"),
        "250 2.0.0 XCLIENT ok\r\n"
    );
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::Extension { verb, args } if verb == "XCLIENT" && args.as_deref() == Some("ADDR=192.0.2.9")
    )));
    let out = h.exchange(
        b"MAIL FROM:<a@b.example> XTRACE=1\r\nRCPT TO:<c@d.example> XPRIO=high\r\nRCPT TO:<e@d.example> XTRACE=1\r\n",
    );
    assert_eq!(
        out,
        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n555 5.5.4 Unsupported parameter\r\n"
    );
    let env = h.f.envelope().unwrap();
    assert_eq!(env.mail_params.unknown[0].keyword, "XTRACE");
    assert_eq!(env.recipients[0].params.unknown[0].keyword, "XPRIO");
    // An extension verb nobody answers: 502.
    let mut ext = Extensions::new();
    ext.register("XNOP", &[], Some("XNOP"), &[], &[]).unwrap();
    let mut cfg = config();
    cfg.extensions = ext;
    let mut h = Harness::with_decider(cfg, Box::new(|_| Decision::Continue));
    h.send(b"EHLO c.example\r\n");
    h.output();
    assert_eq!(
        h.exchange(b"XNOP\r\n"),
        "502 5.5.1 Error: command not implemented\r\n"
    );
}

#[test]
fn unknown_verbs_can_be_decided() {
    let mut cfg = config();
    cfg.decisions.set(EventKind::Unknown, true);
    let mut h = Harness::with_decider(
        cfg,
        Box::new(|e| match e {
            Event::Unknown { verb, .. } if verb == "ETRN" => {
                Decision::Reply(reply(250, (2, 0, 0), "queuing started"))
            }
            _ => Decision::Continue,
        }),
    );
    h.send(b"EHLO c.example\r\n");
    h.output();
    assert_eq!(
        h.exchange(b"etrn example.org\r\n"),
        "250 2.0.0 queuing started\r\n"
    );
    assert_eq!(
        h.exchange(b"XYZZY\r\n"),
        "500 5.5.2 Error: command not recognized\r\n"
    );
}

#[test]
fn the_event_table_says_which_kinds_are_decided() {
    use crate::factory::Decided;
    let optional: Vec<EventKind> = EventKind::ALL
        .iter()
        .copied()
        .filter(|k| k.decided() == Decided::Optional)
        .collect();
    assert_eq!(
        optional,
        [
            EventKind::Connect,
            EventKind::Helo,
            EventKind::Mail,
            EventKind::Rcpt,
            EventKind::DataStart,
            EventKind::Unknown
        ]
    );
    for &kind in EventKind::ALL {
        // ALL asks for every optional kind; NONE for none; the others are fixed.
        match kind.decided() {
            Decided::Optional => {
                assert!(Decisions::ALL.wants(kind) && !Decisions::NONE.wants(kind));
                let mut d = Decisions::NONE;
                d.set(kind, true);
                assert_eq!(d, Decisions::NONE.with(kind));
                assert!(d.wants(kind));
                d.set(kind, false);
                assert_eq!(d, Decisions::NONE);
            }
            Decided::Always => assert!(Decisions::NONE.wants(kind)),
            Decided::Never => {
                assert!(!Decisions::ALL.wants(kind));
                assert_eq!(Decisions::NONE.with(kind), Decisions::NONE);
            }
        }
    }
    assert_eq!(
        format!("{:?}", Decisions::NONE.with(EventKind::Rcpt)),
        "{Rcpt}"
    );
    let rcpt = Event::Rcpt {
        to: smtp_proto::address::ForwardPath::Postmaster,
        params: Default::default(),
    };
    assert!(rcpt.needs_decision());
    assert!(!Event::Reset.needs_decision());
    assert_eq!(Event::DataStart.kind(), EventKind::DataStart);
}
