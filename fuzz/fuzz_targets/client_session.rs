//! Fuzzes the client `Session` with arbitrary server behaviour: reply bytes split at
//! fuzzer-chosen points, clock jumps past (or short of) the deadlines, messages queued at any
//! time, `close` and end of file. The first byte chooses the setup (PIPELINING allowed,
//! credentials, retries, a custom state after EHLO that greets again like XCLIENT, one
//! inside the envelope). STARTTLS and BDAT are always possible: the harness is a driver
//! whose TLS handshake succeeds, run at the next operation that is not server bytes (server
//! bytes first are a response injection), and CHUNKING is used whenever offered.
//! Invariants, checked after every step:
//!
//! - no panic; the output of one step stays bounded;
//! - no event after `SessionDone`, and exactly one `SessionDone` once the session is over;
//! - every queued message gets exactly one `MessageDone`, with one outcome per recipient in
//!   recipient order, matching its `Recipient` events;
//! - once `handle_eof` has been called the session is over.
//!
//! Input layout: a `steer` byte, then operations of two bytes `op arg`, by `op % 8`:
//! 0-3 the next `arg + 1` bytes are the server's; 4 the clock moves `arg + 1` seconds
//! (minutes when `op`'s top bit is set) and the timer fires; 5 a message shaped by `arg` is
//! queued; 6 `close`; 7 end of file. The seeds in `corpus/client_session/` are realistic
//! transcripts in this layout.
#![no_main]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use smtp_client::hooks_api::smtp_proto::sasl::Secret;
use smtp_client::hooks_api::smtp_proto::Reply;
use smtp_client::{
    Anchor, ClientContext, ClientState, Credentials, Event, Message, MessageId, Session,
    SessionConfig, StateAction, StateMachine, StateRegistry,
};

/// The most bytes one step may produce: a pipelined flight or a body is far below this.
const MAX_STEP_OUTPUT: usize = 64 * 1024;
/// The most messages one run queues.
const MAX_MESSAGES: usize = 8;

/// Sends `XTEST`; on 2xx greets again once (like XCLIENT), else goes on.
struct Regreet {
    done: bool,
}

impl ClientState for Regreet {
    fn name(&self) -> &str {
        "regreet"
    }
    fn enter(&mut self, _: &mut dyn ClientContext) -> StateAction {
        if self.done {
            StateAction::Skip
        } else {
            StateAction::command("XTEST")
        }
    }
    fn on_reply(&mut self, cx: &mut dyn ClientContext, reply: &Reply) -> StateAction {
        self.done = true;
        let _ = cx.session_args().add("XSEEN", "1");
        if reply.is_positive_completion() {
            StateAction::Goto("ehlo".into())
        } else {
            StateAction::Next
        }
    }
}

/// Inside the envelope: fails the message on 5xx, else goes on.
struct Envelope;

impl ClientState for Envelope {
    fn name(&self) -> &str {
        "envelope"
    }
    fn enter(&mut self, _: &mut dyn ClientContext) -> StateAction {
        StateAction::command("XENV")
    }
    fn on_reply(&mut self, _: &mut dyn ClientContext, reply: &Reply) -> StateAction {
        if reply.is_permanent() {
            StateAction::Fail {
                reply: reply.clone(),
            }
        } else {
            StateAction::Next
        }
    }
}

fn machine(steer: u8) -> Arc<StateMachine> {
    let mut chain = StateRegistry::new();
    if steer & 0x04 != 0 {
        let _ = chain.register_state("regreet", Anchor::After("ehlo".into()), || {
            Box::new(Regreet { done: false })
        });
    }
    if steer & 0x08 != 0 {
        let _ = chain.register_state("envelope", Anchor::After("mail".into()), || {
            Box::new(Envelope)
        });
    }
    chain.build()
}

fn config(steer: u8) -> SessionConfig {
    let mut config = SessionConfig::new("client.example");
    config.tls_available = true;
    config.policy.chunking = true;
    config.policy.pipelining = steer & 0x01 != 0;
    config.policy.command_retries = (steer >> 4) & 0x03;
    config.policy.max_resets = u32::from(steer >> 6);
    if steer & 0x02 != 0 {
        config.credentials = Some(Credentials::Password {
            user: "user".into(),
            password: Secret::new("pass"),
        });
        config.policy.auth_without_tls = true;
    }
    config
}

fn message(n: u8) -> Message {
    let rcpts: Vec<String> = (0..=n % 4).map(|i| format!("r{i}@example.net")).collect();
    let mut m = Message::new(
        "sender@example.org",
        rcpts,
        format!("Subject: {n}\r\n\r\n.dot\r\nbody {n}\r\n"),
    );
    if n & 0x10 != 0 {
        let _ = m.args.add("XPRIO", "5");
    }
    m
}

/// What the harness knows of the session's events.
#[derive(Default)]
struct Seen {
    recipients: HashMap<MessageId, usize>,
    queued: HashMap<MessageId, usize>,
    done: HashMap<MessageId, usize>,
    session_done: usize,
}

impl Seen {
    fn drain(&mut self, s: &mut Session) {
        let mut out = 0;
        while let Some(bytes) = s.poll_transmit() {
            // Written a few bytes at a time: short writes resume where they stopped.
            let n = bytes.len().min(1 + out % 7);
            out += n;
            s.advance_transmit(n);
        }
        assert!(out <= MAX_STEP_OUTPUT, "{out} bytes out in one step");
        while let Some(event) = s.poll_event() {
            assert_eq!(self.session_done, 0, "event after SessionDone: {event:?}");
            match event {
                Event::Recipient { message, .. } => {
                    *self.recipients.entry(message).or_default() += 1;
                }
                Event::MessageDone { message, outcomes } => {
                    let want = *self
                        .queued
                        .get(&message)
                        .expect("done for a queued message");
                    assert_eq!(outcomes.len(), want, "one outcome per recipient");
                    for (i, o) in outcomes.iter().enumerate() {
                        assert_eq!(o.recipient, format!("r{i}@example.net"));
                    }
                    assert_eq!(self.recipients.get(&message), Some(&want));
                    *self.done.entry(message).or_default() += 1;
                    assert_eq!(self.done[&message], 1, "MessageDone twice");
                }
                Event::SessionDone { .. } => self.session_done += 1,
            }
        }
        assert_eq!(s.is_done(), self.session_done == 1);
    }
}

fn run(input: &[u8]) {
    let Some((&steer, mut ops)) = input.split_first() else {
        return;
    };
    let mut now = Instant::now();
    let Ok(mut s) = Session::new(machine(steer), config(steer), now) else {
        return;
    };
    let mut seen = Seen::default();
    seen.drain(&mut s);
    let mut messages = 0;
    let mut upgrade = false;
    while let [op, raw, rest @ ..] = ops {
        let len = usize::from(*raw) + 1;
        if upgrade && op % 8 > 3 {
            upgrade = false;
            s.handle_tls_established(now);
            assert!(s.is_done() || s.tls_active());
            seen.drain(&mut s);
        }
        match op % 8 {
            // Server bytes: the next `len` bytes.
            0..=3 => {
                let (bytes, tail) = rest.split_at(len.min(rest.len()));
                s.handle_input(bytes, now);
                ops = tail;
            }
            // The clock moves `len` seconds (or `len` minutes); the timer fires.
            4 => {
                let step = if op & 0x80 != 0 { 60 } else { 1 };
                now += Duration::from_secs(len as u64 * step);
                s.handle_timeout(now);
                ops = rest;
            }
            // A message is queued.
            5 => {
                if messages < MAX_MESSAGES {
                    let m = message(*raw);
                    let n = m.recipients.len();
                    if let Ok(id) = s.queue_message(m, now) {
                        messages += 1;
                        seen.queued.insert(id, n);
                    }
                }
                ops = rest;
            }
            6 => {
                s.close(now);
                ops = rest;
            }
            _ => {
                s.handle_eof(now);
                ops = rest;
            }
        }
        upgrade |= s.poll_tls_upgrade();
        seen.drain(&mut s);
    }
    // The server goes away: everything ends.
    s.handle_eof(now);
    seen.drain(&mut s);
    assert!(s.is_done());
    assert_eq!(seen.session_done, 1);
    for id in seen.queued.keys() {
        assert_eq!(
            seen.done.get(id),
            Some(&1),
            "message {id:?} without outcomes"
        );
    }
    // Inputs after the end are ignored.
    s.handle_input(b"250 late\r\n", now);
    s.handle_timeout(now + Duration::from_secs(3600));
    seen.drain(&mut s);
}

fuzz_target!(|input: &[u8]| run(input));
