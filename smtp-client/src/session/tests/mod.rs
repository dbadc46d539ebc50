//! Deterministic session tests: a scripted fake server, a simulated clock.
// Tests read the real clock once, for the instant their simulated clock starts from.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Session, SessionConfig};
use crate::message::{Event, Message, OutcomeKind, RecipientOutcome};
use crate::registry::StateMachine;
use crate::Error;

mod chunking;
mod custom;
mod dsn;
mod envelope;
mod hostile;
mod policy;
mod tls;

/// A session and what it said, driven by hand.
pub(super) struct Fake {
    pub(super) s: Session,
    pub(super) now: Instant,
    pub(super) events: Vec<Event>,
    sent: Vec<u8>,
}

pub(super) const EHLO_PLAIN: &str =
    "250-mx.test\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n";
pub(super) const EHLO_PIPE: &str =
    "250-mx.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 1000\r\n";

impl Fake {
    pub(super) fn with(machine: Arc<StateMachine>, config: SessionConfig) -> Fake {
        let now = Instant::now();
        let s = Session::new(machine, config, now).unwrap();
        let mut f = Fake {
            s,
            now,
            events: Vec::new(),
            sent: Vec::new(),
        };
        f.pump();
        f
    }

    pub(super) fn new() -> Fake {
        Fake::with(StateMachine::builtin(), SessionConfig::new("client.test"))
    }

    /// Greeting and EHLO with these capabilities; leaves the session idle.
    pub(super) fn ready(ehlo: &str) -> Fake {
        let mut f = Fake::new();
        f.setup(ehlo);
        f
    }

    pub(super) fn setup(&mut self, ehlo: &str) {
        self.server("220 mx.test ESMTP\r\n");
        assert_eq!(self.sent(), "EHLO client.test\r\n");
        self.server(ehlo);
        assert!(self.s.is_idle(), "{:?}", self.s);
    }

    pub(super) fn pump(&mut self) {
        while let Some(b) = self.s.poll_transmit() {
            self.sent.extend_from_slice(b);
            let n = b.len();
            self.s.advance_transmit(n);
        }
        while let Some(e) = self.s.poll_event() {
            self.events.push(e);
        }
    }

    /// The server sends `bytes`.
    pub(super) fn server(&mut self, bytes: &str) {
        self.s.handle_input(bytes.as_bytes(), self.now);
        self.pump();
    }

    pub(super) fn server_bytes(&mut self, bytes: &[u8]) {
        self.s.handle_input(bytes, self.now);
        self.pump();
    }

    /// What the client wrote since the last call.
    pub(super) fn sent(&mut self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut self.sent)).into_owned()
    }

    pub(super) fn queue(&mut self, m: Message) {
        self.s.queue_message(m, self.now).unwrap();
        self.pump();
    }

    pub(super) fn close(&mut self) {
        self.s.close(self.now);
        self.pump();
    }

    pub(super) fn advance(&mut self, by: Duration) {
        self.now += by;
        self.s.handle_timeout(self.now);
        self.pump();
    }

    /// The outcomes of every finished message, in order.
    pub(super) fn done(&self) -> Vec<Vec<RecipientOutcome>> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::MessageDone { outcomes, .. } => Some(outcomes.clone()),
                _ => None,
            })
            .collect()
    }

    pub(super) fn session_done(&self) -> Option<Option<Error>> {
        self.events.iter().find_map(|e| match e {
            Event::SessionDone { error } => Some(error.clone()),
            _ => None,
        })
    }

    /// QUIT and its 221 end the session cleanly.
    pub(super) fn quit(&mut self) {
        self.close();
        assert_eq!(self.sent(), "QUIT\r\n");
        self.server("221 2.0.0 bye\r\n");
        assert_eq!(self.session_done(), Some(None));
    }
}

pub(super) fn msg(to: &[&str]) -> Message {
    Message::new(
        "a@x.test",
        to.iter().copied(),
        "Subject: t\r\n\r\nhello\r\n",
    )
}

pub(super) fn kinds(outcomes: &[RecipientOutcome]) -> Vec<OutcomeKind> {
    outcomes.iter().map(|o| o.kind).collect()
}

#[test]
fn one_message_lockstep_with_bare_code_final_lines() {
    let mut f = Fake::new();
    assert_eq!(f.sent(), "", "nothing before the greeting");
    assert_eq!(
        f.s.poll_timeout(),
        Some(f.now + Duration::from_secs(300)),
        "greeting timeout"
    );
    f.server("220-mx.test ESMTP\r\n220\r\n");
    assert_eq!(f.sent(), "EHLO client.test\r\n");
    f.server("250-mx.test\r\n250-SIZE 1000\r\n250\r\n");
    assert_eq!(f.s.capabilities().size(), Some(1000));
    assert!(f.s.is_idle());
    assert_eq!(f.s.poll_timeout(), None, "idle: no deadline");
    f.queue(msg(&["b@y.test"]));
    assert_eq!(f.sent(), "MAIL FROM:<a@x.test> SIZE=21\r\n");
    f.server("250\r\n");
    assert_eq!(f.sent(), "RCPT TO:<b@y.test>\r\n");
    f.server("250 2.1.5 ok\r\n");
    assert_eq!(f.sent(), "DATA\r\n");
    assert_eq!(f.s.poll_timeout(), Some(f.now + Duration::from_secs(120)));
    f.server("354 go\r\n");
    assert_eq!(f.sent(), "Subject: t\r\n\r\nhello\r\n.\r\n");
    assert_eq!(f.s.poll_timeout(), Some(f.now + Duration::from_secs(600)));
    f.server("250 2.0.0 queued\r\n");
    let done = f.done();
    assert_eq!(kinds(&done[0]), [OutcomeKind::Delivered]);
    assert_eq!(done[0][0].recipient, "b@y.test");
    assert!(f.s.is_idle());
    f.quit();
}

#[test]
fn helo_fallback_when_ehlo_is_refused() {
    let mut f = Fake::new();
    f.server("220 old.test\r\n");
    assert_eq!(f.sent(), "EHLO client.test\r\n");
    f.server("502 5.5.2 what\r\n");
    assert_eq!(f.sent(), "HELO client.test\r\n");
    f.server("250 old.test\r\n");
    assert!(f.s.capabilities().is_empty());
    f.queue(msg(&["b@y.test"]));
    assert_eq!(f.sent(), "MAIL FROM:<a@x.test>\r\n", "no SIZE after HELO");
}

#[test]
fn greeting_refused_fails_queued_messages_then_quits() {
    let mut f = Fake::new();
    f.queue(msg(&["b@y.test"]));
    f.server("554 5.7.1 no service for you\r\n");
    assert_eq!(f.sent(), "QUIT\r\n");
    let done = f.done();
    assert_eq!(kinds(&done[0]), [OutcomeKind::Bounced]);
    assert_eq!(done[0][0].reply.code(), 554);
    f.server("221 bye\r\n");
    assert!(matches!(f.session_done(), Some(Some(Error::Refused(_)))));
    assert!(f.s.queue_message(msg(&["c@y.test"]), f.now).is_err());
}

#[test]
fn ehlo_4xx_fails_the_session_without_helo() {
    let mut f = Fake::new();
    f.server("220 mx\r\n");
    f.sent();
    f.server("421 4.3.2 shutting down\r\n");
    assert_eq!(f.sent(), "", "421: no more commands");
    assert!(matches!(f.session_done(), Some(Some(Error::Refused(_)))));
}

#[test]
fn several_messages_over_one_session() {
    let mut f = Fake::ready(EHLO_PLAIN);
    f.queue(msg(&["b@y.test"]));
    f.queue(msg(&["c@y.test"]));
    assert_eq!(f.sent(), "MAIL FROM:<a@x.test> SIZE=21\r\n");
    f.server("250 ok\r\n");
    f.server("250 ok\r\n");
    f.server("354 go\r\n");
    f.sent();
    f.server("250 ok\r\n");
    assert_eq!(
        f.sent(),
        "MAIL FROM:<a@x.test> SIZE=21\r\n",
        "next message, no RSET"
    );
    f.server("250 ok\r\n");
    assert_eq!(f.sent(), "RCPT TO:<c@y.test>\r\n");
    f.server("250 ok\r\n");
    f.server("354 go\r\n");
    f.server("250 ok\r\n");
    assert_eq!(f.done().len(), 2);
    f.sent();
    f.quit();
}

#[test]
fn eof_mid_transaction_defers_and_idle_eof_loses_nothing() {
    let mut f = Fake::ready(EHLO_PLAIN);
    f.queue(msg(&["b@y.test", "c@y.test"]));
    f.server("250 ok\r\n");
    f.s.handle_eof(f.now);
    f.pump();
    let done = f.done();
    assert_eq!(kinds(&done[0]), [OutcomeKind::Deferred; 2]);
    assert_eq!(done[0][0].class.id, 24, "4.4.2 is classified as Timeout");
    assert_eq!(f.session_done(), Some(Some(Error::PeerClosed)));

    let mut f = Fake::ready(EHLO_PLAIN);
    f.s.handle_eof(f.now);
    f.pump();
    assert!(f.done().is_empty());
    assert!(f.s.is_done());
}
