//! A test driver: feeds input, drains body, events and transmit in the documented order, and
//! answers decisions with a closure. The clock is simulated.

use std::sync::Arc;
use std::time::{Duration, Instant};

use smtp_proto::reply::Reply;
use smtp_proto::status::EnhancedStatus;

use crate::factory::{Decision, Event, EventKind, Factory, FactoryConfig};

pub(super) type Decider = Box<dyn FnMut(&Event) -> Decision>;
/// Runs before a decision with the factory (a driver applying session updates).
pub(super) type BeforeDecision = Box<dyn FnMut(&mut Factory, &Event)>;

pub(super) const PEER: &str = "192.0.2.7:40000";
pub(super) const LOCAL: &str = "198.51.100.1:25";

/// The default decider: queue every message as `QID<n>`, accept credentials, answer
/// extension verbs `250 2.0.0 <VERB> ok`, continue otherwise.
pub(super) fn default_decider() -> Decider {
    let mut n = 0;
    Box::new(move |event| match event {
        Event::MessageComplete { .. } => {
            n += 1;
            Decision::Queued(format!("QID{n}"))
        }
        Event::Auth { .. } => Decision::Accept,
        Event::Extension { verb, .. } => Decision::Reply(Reply::new(
            250,
            Some(EnhancedStatus::new(2, 0, 0)),
            &format!("{verb} ok"),
        )),
        _ => Decision::Continue,
    })
}

pub(super) struct Harness {
    pub f: Factory,
    pub now: Instant,
    /// Input the factory has not consumed yet.
    pub input: Vec<u8>,
    /// Everything written to the client and not yet taken by `output()`.
    pub out: Vec<u8>,
    /// The body bytes the driver received, per message: `received` header + body.
    pub body: Vec<u8>,
    pub events: Vec<Event>,
    pub decider: Decider,
    /// Whether the simulated client reads our replies.
    pub flush: bool,
    /// Events of this kind are left undecided (a hook that never completes).
    pub hold: Option<EventKind>,
    /// Runs before each decision, with the factory (a driver applying session updates).
    pub before_decision: Option<BeforeDecision>,
    /// The driver leaves the body in the factory (the test consumes it by hand).
    pub hold_body: bool,
}

impl Harness {
    pub fn new(config: FactoryConfig) -> Harness {
        Harness::with_decider(config, default_decider())
    }

    pub fn with_decider(config: FactoryConfig, decider: Decider) -> Harness {
        let now = Instant::now();
        let f = Factory::new(
            Arc::new(config),
            PEER.parse().unwrap(),
            LOCAL.parse().unwrap(),
            now,
        );
        let mut h = Harness {
            f,
            now,
            input: Vec::new(),
            out: Vec::new(),
            body: Vec::new(),
            events: Vec::new(),
            decider,
            flush: true,
            hold: None,
            before_decision: None,
            hold_body: false,
        };
        h.pump();
        h
    }

    /// A harness past the banner and EHLO, output cleared.
    pub fn ready(config: FactoryConfig) -> Harness {
        let mut h = Harness::new(config);
        h.send(b"EHLO client.example\r\n");
        h.output();
        h.events.clear();
        h
    }

    /// The client sends `bytes` (in one packet).
    pub fn send(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
        self.pump();
    }

    /// Runs the driver loop until nothing moves.
    pub fn pump(&mut self) {
        loop {
            let mut progressed = false;
            let n = self.f.handle_input(&self.input, self.now);
            self.input.drain(..n);
            progressed |= n > 0;
            self.drain_body();
            while let Some(event) = self.f.poll_event() {
                progressed = true;
                if let Event::MessageStart { received, .. } = &event {
                    self.body.extend_from_slice(received.as_bytes());
                }
                if event.needs_decision() && self.hold != Some(event.kind()) {
                    if let Some(before) = &mut self.before_decision {
                        before(&mut self.f, &event);
                    }
                    let d = (self.decider)(&event);
                    self.f.handle_decision(d, self.now).unwrap();
                }
                self.events.push(event);
                self.drain_body();
            }
            if progressed {
                continue;
            }
            if self.flush {
                while let Some(bytes) = self.f.poll_transmit() {
                    let len = bytes.len();
                    self.out.extend_from_slice(bytes);
                    self.f.advance_transmit(len);
                    progressed = true;
                }
            }
            if !progressed || self.input.is_empty() && !self.f.wants_input() {
                break;
            }
            if self.input.is_empty() {
                break;
            }
        }
    }

    fn drain_body(&mut self) {
        if self.hold_body {
            return;
        }
        while let Some(chunk) = self.f.poll_body() {
            assert!(chunk.len() <= self.f.config().body_chunk.max(64));
            self.body.extend_from_slice(chunk);
            self.f.consume_body();
        }
    }

    /// Replies written since the last call, as text.
    pub fn output(&mut self) -> String {
        String::from_utf8(std::mem::take(&mut self.out)).unwrap()
    }

    /// Sends `bytes` and returns the replies they produced.
    pub fn exchange(&mut self, bytes: &[u8]) -> String {
        self.send(bytes);
        self.output()
    }

    /// Moves the simulated clock and fires timeouts.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.f.handle_timeout(self.now);
        self.pump();
    }

    pub fn kinds(&self) -> Vec<EventKind> {
        self.events.iter().map(Event::kind).collect()
    }

    pub fn closed_with(&self) -> Option<crate::factory::CloseReason> {
        self.events.iter().find_map(|e| match e {
            Event::Close { reason } => Some(*reason),
            _ => None,
        })
    }
}

/// One message, dot-stuffed by smtp-proto, terminator included.
pub(super) fn stuffed(body: &[u8]) -> Vec<u8> {
    smtp_proto::data::dot_stuff(body)
}

/// The config most tests use.
pub(super) fn config() -> FactoryConfig {
    FactoryConfig::new("mx.example")
}
