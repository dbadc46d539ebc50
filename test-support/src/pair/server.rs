//! The pair's server end: plays the part of smtp-server's event-loop driver for one
//! [`Factory`] in memory — input held and resumed, body chunks into a spool writer, events
//! answered from the [`Script`](super::script::Script), the end of data committed to a
//! spool on [`MemFs`].
//!
//! It does not run plugin hooks (the script stands in for them), TLS, or the server's
//! worker pool, and it reads no clock: every call carries the pair's simulated `now`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use smtp_server::factory::{Decision, Event, EventKind, Factory, FactoryConfig};
use smtp_server::server::spool_envelope;
use smtp_server::spool::{Spool, SpoolWriter};

use super::record::Transcript;
use super::script::{Answer, Script};

/// A decision that went pending: given when the clock reaches `due` (`None`: never).
#[derive(Debug)]
struct Held {
    due: Option<Instant>,
    decision: Decision,
}

/// The server side of one connection.
#[derive(Debug)]
pub(crate) struct ServerConn {
    pub(crate) factory: Factory,
    /// Read but not yet consumed by the factory.
    inbuf: Vec<u8>,
    writer: Option<SpoolWriter>,
    held: Option<Held>,
    /// The end of data awaits its answer (held or not yet given).
    completing: bool,
}

impl ServerConn {
    /// A connection from `peer` to `local`, accepted at `now`, with `config` (its
    /// decisions already widened to the scripted kinds).
    pub(crate) fn new(
        config: Arc<FactoryConfig>,
        peer: SocketAddr,
        local: SocketAddr,
        now: Instant,
    ) -> ServerConn {
        ServerConn {
            factory: Factory::new(config, peer, local, now),
            inbuf: Vec::new(),
            writer: None,
            held: None,
            completing: false,
        }
    }

    /// One read from the socket: `bytes` go behind what the factory has not consumed yet.
    pub(crate) fn receive(&mut self, bytes: &[u8]) {
        self.inbuf.extend_from_slice(bytes);
    }

    /// When the held decision is due, if one is held with a due time.
    pub(crate) fn held_due(&self) -> Option<Instant> {
        self.held.as_ref().and_then(|h| h.due)
    }

    /// Steps 1 to 4 of the factory's call order until nothing moves: input (resumed while
    /// the factory wants it), body into the spool writer, events answered, due held
    /// decisions given. Returns whether anything moved.
    pub(crate) fn drive(
        &mut self,
        ends: &mut Ends<'_>,
        record: &mut Transcript,
        now: Instant,
    ) -> bool {
        self.factory.set_wall_clock(ends.wall);
        let mut moved = false;
        loop {
            let mut progress = false;
            if !self.inbuf.is_empty() && self.factory.wants_input() {
                let used = self.factory.handle_input(&self.inbuf, now);
                self.inbuf.drain(..used);
                progress |= used > 0;
            }
            while let Some(chunk) = self.factory.poll_body() {
                if let Some(w) = self.writer.as_mut() {
                    w.write_all(chunk).expect("the MemFs spool takes the body");
                }
                self.factory.consume_body();
                progress = true;
            }
            while let Some(event) = self.factory.poll_event() {
                record.server_events.push((now, event.clone()));
                self.on_event(event, ends, now);
                progress = true;
            }
            if self
                .held
                .as_ref()
                .is_some_and(|h| h.due.is_some_and(|t| t <= now))
            {
                let held = self.held.take().expect("checked");
                self.decide(held.decision, ends.spool, now);
                progress = true;
            }
            if !progress {
                return moved;
            }
            moved = true;
        }
    }

    /// Step 5: everything queued for the client, as one segment (`None` when nothing is).
    pub(crate) fn transmit(&mut self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(bytes) = self.factory.poll_transmit() {
            out.extend_from_slice(bytes);
            let n = bytes.len();
            self.factory.advance_transmit(n);
        }
        (!out.is_empty()).then_some(out)
    }

    fn on_event(&mut self, event: Event, ends: &mut Ends<'_>, now: Instant) {
        match event {
            Event::MessageStart { envelope, received } => {
                self.abort_writer();
                let at = ends
                    .wall
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or(Duration::ZERO)
                    .as_secs();
                let env = spool_envelope(&envelope, at);
                let mut w = ends.spool.begin(&env).expect("the MemFs spool begins");
                w.write_all(received.as_bytes())
                    .expect("the MemFs spool takes the header");
                self.writer = Some(w);
            }
            Event::MessageAborted { .. } => self.abort_writer(),
            // The factory answered by itself: the held answer is stale.
            Event::DecisionTimeout { .. } => self.held = None,
            // Nothing awaits an answer any more; an unanswered message is not kept.
            Event::Close { .. } => {
                self.held = None;
                self.completing = false;
                self.abort_writer();
            }
            Event::StartTls => self.factory.handle_close(),
            event if event.needs_decision() => {
                self.completing = event.kind() == EventKind::MessageComplete;
                match ends.script.next(event.kind()) {
                    Answer::Now(d) => self.decide(d, ends.spool, now),
                    Answer::After(wait, decision) => {
                        self.held = Some(Held {
                            due: Some(now + wait),
                            decision,
                        })
                    }
                    Answer::Never => {
                        self.held = Some(Held {
                            due: None,
                            decision: Decision::Continue,
                        })
                    }
                }
            }
            _ => {}
        }
    }

    /// Gives `decision` to the pending event; at the end of data, Continue and Accept
    /// commit the message and answer with its queue id.
    fn decide(&mut self, decision: Decision, spool: &Spool, now: Instant) {
        let decision = if std::mem::take(&mut self.completing) {
            match (decision, self.writer.take()) {
                (Decision::Continue | Decision::Accept, Some(w)) => {
                    let id = spool.commit_blocking(w).expect("the MemFs spool commits");
                    Decision::Queued(id.to_string())
                }
                (other, w) => {
                    if let Some(w) = w {
                        w.abort();
                    }
                    other
                }
            }
        } else {
            decision
        };
        self.factory
            .handle_decision(decision, now)
            .expect("the factory awaits this decision");
    }

    fn abort_writer(&mut self) {
        if let Some(w) = self.writer.take() {
            w.abort();
        }
    }
}

/// What every connection's server side shares: the script, the spool and the wall clock.
pub(crate) struct Ends<'a> {
    pub(crate) script: &'a mut Script,
    pub(crate) spool: &'a Spool,
    /// The simulated wall-clock time (for `Received:` and the envelope).
    pub(crate) wall: SystemTime,
}
