//! Driving one connection on its loop: the factory's call order (input, body, events,
//! transmit) until nothing moves, then its interest and deadline, or its removal; the
//! factory's events that need no hook, and the writer's trips to a spool thread.
//!
//! It does not run hooks (`server/hooks.rs` decides events that need a decision) nor start
//! or end messages in the spool (`server/queue.rs`).

use std::time::{Instant, SystemTime};

use hooks_api::{Ctx, Disconnect, HookPoint};

use super::Loop;
use crate::factory::{AbortReason, Event};
use crate::metrics::Outcome;
use crate::server::common::{Msg, Waiting};
use crate::server::conn::Conn;
use crate::server::hooks::sync_session;
use crate::spool::SpoolWriter;

/// Input/output rounds per connection per wake-up before others get their turn.
const MAX_ROUNDS: usize = 32;

impl Loop {
    /// Drives a connection through the factory's call order until nothing moves, then
    /// recomputes its interest and deadline, or removes it.
    pub(crate) fn drive(&mut self, slot: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        conn.factory.set_wall_clock(SystemTime::now());
        conn.factory.set_storage_available(self.storage_ok);
        let mut rounds = 0;
        loop {
            // Input, body and events until none moves (held input before any flush, so
            // pipelining violations are seen).
            loop {
                let mut progress = self.conns[slot].feed_input(now, &mut self.scratch[..]);
                progress |= self.drain_body(slot);
                progress |= self.drain_events(slot, now);
                if !progress || !self.conns.contains(slot) {
                    break;
                }
                rounds += 1;
                if rounds >= MAX_ROUNDS {
                    break;
                }
            }
            let Some(conn) = self.conns.get_mut(slot) else {
                return;
            };
            let mut wrote = conn.flush();
            let tls = conn.tls_config.clone();
            wrote |= conn.start_tls_if_reply_written(tls.as_ref());
            if !wrote || rounds >= MAX_ROUNDS {
                break;
            }
            rounds += 1;
        }
        if rounds >= MAX_ROUNDS {
            self.again.push(self.conns[slot].key());
        }
        if self.shutting_down() {
            self.close_if_idle(slot);
            if let Some(conn) = self.conns.get_mut(slot) {
                conn.flush();
            }
        }
        self.settle(slot);
    }

    /// Removes a finished connection, or updates its interest and deadline.
    pub(crate) fn settle(&mut self, slot: usize) {
        let conn = &mut self.conns[slot];
        conn.publish(&self.shared.metrics);
        if conn.finished() {
            self.remove(slot);
            return;
        }
        if let Err(e) = conn.update_interest(self.poll.registry()) {
            log::error!("{}: poll registration: {e}", conn.client());
            self.remove(slot);
            return;
        }
        if let Some(t) = conn.rearm() {
            self.deadlines.arm(t, conn.key());
        }
    }

    /// Step 2: decoded body into the spool writer's buffer (no I/O here). A full buffer
    /// goes to a spool thread to be written out (`Spool::flush_behind`); the rest of the
    /// body waits in the factory until the writer is back.
    fn drain_body(&mut self, slot: usize) -> bool {
        let conn = &mut self.conns[slot];
        let (progress, full) = conn.drain_body();
        if let Some(writer) = full {
            let key = conn.key();
            self.flush_behind(key, writer);
        }
        progress
    }

    /// Sends the connection's writer to a spool thread to write its buffer out; the
    /// writer comes back as [`Msg::Flushed`].
    fn flush_behind(&self, key: crate::server::common::ConnKey, writer: SpoolWriter) {
        let sender = self.sender.clone();
        self.shared.spool.flush_behind(
            writer,
            Box::new(move |writer| {
                sender.send(Msg::Flushed { key, writer });
            }),
        );
    }

    /// Abandons the connection's message, if one is being written, without blocking.
    pub(crate) fn drop_writer(&mut self, slot: usize) {
        if let Some(w) = self.conns[slot].end_message() {
            self.shared.spool.discard_behind(w);
        }
    }

    /// Step 3: events.
    fn drain_events(&mut self, slot: usize, now: Instant) -> bool {
        let mut progress = false;
        while let Some(conn) = self.conns.get_mut(slot) {
            let Some(event) = conn.factory.poll_event() else {
                break;
            };
            progress = true;
            self.handle_event(slot, event, now);
        }
        progress
    }

    fn handle_event(&mut self, slot: usize, event: Event, now: Instant) {
        match event {
            Event::MessageStart { envelope, received } => {
                self.message_start(slot, &envelope, &received);
            }
            Event::MessageComplete { envelope, stats } => {
                self.message_complete(slot, envelope, stats, now);
            }
            Event::MessageAborted { reason } => {
                log::debug!("{} message aborted: {reason:?}", self.conns[slot].client());
                if reason != AbortReason::ConnectionClosed {
                    // Answered 4xx/5xx at the end of data.
                    self.shared.metrics.message(Outcome::Rejected);
                }
                self.drop_writer(slot);
                self.conns[slot].txn_notes.clear();
            }
            Event::Reset => self.conns[slot].txn_notes.clear(),
            Event::StartTls => {
                let conn = &mut self.conns[slot];
                if conn.tls_config.is_some() {
                    conn.start_tls_after_reply();
                } else {
                    // The factory offers STARTTLS only with TLS configured.
                    log::warn!("{}: STARTTLS without TLS support", conn.client());
                    conn.factory.handle_close();
                }
            }
            Event::Close { reason } => {
                log::debug!("{} closing: {reason:?}", self.conns[slot].client());
            }
            Event::DecisionTimeout { kind } => {
                // The factory answered; a late completion finds no waiting hook and is
                // dropped as stale.
                let conn = &mut self.conns[slot];
                log::warn!(
                    "{}: a {kind:?} hook did not complete in time; answered by the server",
                    conn.client()
                );
                if matches!(conn.waiting, Waiting::Hook { .. }) {
                    conn.waiting = Waiting::Nothing;
                }
            }
            event if event.needs_decision() => self.decide(slot, event, None, now),
            _ => {}
        }
    }

    /// Forgets a connection: aborts its message, runs the disconnect hooks, logs.
    pub(super) fn remove(&mut self, slot: usize) {
        // No `deregister`: closing the socket (its only descriptor) takes it out of the
        // epoll set.
        self.drop_writer(slot);
        let mut conn = self.conns.remove(slot);
        conn.publish(&self.shared.metrics);
        self.shared.metrics.open.dec();
        if self.shared.hooks.has(HookPoint::Disconnect) {
            let started = Instant::now();
            sync_session(&mut conn);
            let Conn {
                session,
                conn_notes,
                txn_notes,
                ..
            } = &mut conn;
            let mut ctx = Ctx::new(session, conn_notes, txn_notes, Disconnect);
            self.shared.registry.dispatch_disconnect(&mut ctx);
            (self.shared.metrics).hook_time(HookPoint::Disconnect, started.elapsed());
        }
        self.shared.limits.release(conn.peer().ip());
        log::info!(
            "disconnect from {} commands={}",
            conn.client(),
            conn.factory.commands()
        );
    }
}
