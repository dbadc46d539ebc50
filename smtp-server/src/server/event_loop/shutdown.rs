//! Graceful shutdown on a loop thread: stop accepting, `421 4.3.2` to idle connections,
//! transactions may finish until the grace period ends, then everyone gets the 421.

use std::time::Instant;

use super::Worker;
use crate::factory::State;
use crate::server::conn::Waiting;

impl Worker {
    pub(crate) fn begin_shutdown(&mut self, now: Instant) {
        self.grace = Some(now + self.shared.grace);
        for mut l in self.listeners.drain(..) {
            let _ = self.poll.registry().deregister(&mut l);
        }
        self.accept_blocked = false;
    }

    pub(crate) fn shutdown_tick(&mut self, now: Instant) {
        let Some(grace) = self.grace else { return };
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            if now >= grace {
                self.force_close(key);
            } else {
                self.close_if_idle(key);
            }
            if let Some(conn) = self.conns.get_mut(key) {
                conn.flush();
                self.settle(key);
            }
        }
    }

    /// During shutdown: a connection between transactions gets `421 4.3.2` and is closed.
    pub(crate) fn close_if_idle(&mut self, key: usize) {
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        let idle = matches!(conn.waiting, Waiting::Nothing)
            && conn.inbuf.is_empty()
            && !conn.output_pending()
            && matches!(
                conn.factory.state(),
                State::AwaitingHelo | State::AwaitingMail
            );
        if idle {
            self.force_close(key);
        }
    }

    /// Sends `421 4.3.2 Service shutting down` after whatever is queued, then closes
    /// ([`Factory::handle_shutdown`](crate::factory::Factory::handle_shutdown)).
    pub(crate) fn force_close(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.closing {
            return;
        }
        conn.closing = true;
        conn.waiting = Waiting::Nothing;
        conn.factory.handle_shutdown();
        // The events the shutdown produced (an aborted message, the close) need no more
        // handling than dropping the message being written.
        while conn.factory.poll_event().is_some() {}
        self.drop_writer(key);
    }
}
