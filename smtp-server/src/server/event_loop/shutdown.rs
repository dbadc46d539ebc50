//! Graceful shutdown on a loop thread: stop accepting, `421 4.3.2` to idle connections,
//! transactions may finish until the grace period ends, then everyone gets the 421.
//!
//! It does not decide when to shut down (the server's `Control` does, from a handle or a
//! signal) nor when the loop exits (its turn in `event_loop/mod.rs`).

use std::time::Instant;

use super::Loop;
use crate::factory::State;
use crate::server::common::Waiting;

impl Loop {
    /// Whether the loop is in its grace period.
    pub(super) fn shutting_down(&self) -> bool {
        self.grace.is_some()
    }

    pub(super) fn begin_shutdown(&mut self, now: Instant) {
        self.grace = Some(now + self.shared.grace);
        self.acceptor.close(self.poll.registry());
        self.close_preludes();
    }

    pub(super) fn shutdown_tick(&mut self, now: Instant) {
        let Some(grace) = self.grace else { return };
        let slots: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for slot in slots {
            if now >= grace {
                self.force_close(slot);
            } else {
                self.close_if_idle(slot);
            }
            if let Some(conn) = self.conns.get_mut(slot) {
                conn.flush();
                self.settle(slot);
            }
        }
    }

    /// During shutdown: a connection between transactions gets `421 4.3.2` and is closed.
    pub(super) fn close_if_idle(&mut self, slot: usize) {
        let Some(conn) = self.conns.get(slot) else {
            return;
        };
        let idle = !conn.waiting.is_parked()
            && !conn.input_held()
            && !conn.output_pending()
            && matches!(
                conn.factory.state(),
                State::AwaitingHelo | State::AwaitingMail
            );
        if idle {
            self.force_close(slot);
        }
    }

    /// Sends `421 4.3.2 Service shutting down` after whatever is queued, then closes
    /// ([`Factory::handle_shutdown`](crate::factory::Factory::handle_shutdown)).
    pub(super) fn force_close(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        if !conn.close_when_flushed() {
            return;
        }
        conn.waiting = Waiting::Nothing;
        conn.factory.handle_shutdown();
        // The events the shutdown produced (an aborted message, the close) need no more
        // handling than dropping the message being written.
        while conn.factory.poll_event().is_some() {}
        self.drop_writer(slot);
    }
}
