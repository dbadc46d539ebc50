//! How jobs and connections end: a failed set-up (on to the next hop, or every waiting job
//! of the destination fails), the sweep at shutdown, a job's failure for every recipient. It
//! does not decide which job goes on which connection.

use std::time::Instant;

use super::super::Delivery;
use super::{Action, Awaiting, ConnId, DestinationId, Dispatcher, Queued};
use crate::error::Error;
use crate::message::{Message, RecipientOutcome};

impl Dispatcher {
    /// A connection to hop `hop` of destination `id` could not be set up.
    pub(super) fn setup_failed(&mut self, id: DestinationId, hop: usize, error: Option<Error>) {
        let Some(d) = self.dests.get_mut(&id) else {
            return;
        };
        if self.shutdown && d.waiting.is_empty() {
            // Abandoned at shutdown, or had nothing to carry any more.
            return;
        }
        self.counters.setups_failed += 1;
        let error = error.unwrap_or(Error::PeerClosed);
        let at = &d.spec.hops[hop];
        if hop != d.hop {
            log::info!("engine: connection to {at} failed (a hop already left): {error}");
            return;
        }
        d.failures += 1;
        log::info!(
            "engine: connection to {at} failed ({} in a row): {error}",
            d.failures
        );
        d.last_failure = Some(error);
        if d.failures < self.config.attempts {
            return;
        }
        d.failures = 0;
        if d.hop + 1 < d.spec.hops.len() {
            d.hop += 1;
            log::info!("engine: trying the next hop, {}", d.spec.hops[d.hop]);
            return;
        }
        d.hop = 0;
        let reply = d
            .last_failure
            .take()
            .map_or_else(|| Error::PeerClosed.reply(), |e| e.reply());
        // The jobs waiting now; later ones get connections of their own.
        for job in self.take_all_waiting(id) {
            let outcomes = fail(&job.message, &reply);
            self.complete(job, outcomes);
        }
    }

    /// Job `job` is over with `outcomes`.
    pub(super) fn complete(&mut self, job: Queued, outcomes: Vec<RecipientOutcome>) {
        self.counters.completed += 1;
        self.actions.push_back(Action::Complete(Delivery {
            ticket: job.ticket,
            message: job.message,
            outcomes,
            attempts: job.attempts,
            next_hop: job.hop,
            dsn_offered: job.dsn_offered,
        }));
    }

    /// Shut down and nothing left to send: closes what is idle, drops what is setting up.
    pub(super) fn sweep_if_shut_down(&mut self, _now: Instant) {
        if !self.shutdown || self.waiting > 0 || self.in_flight > 0 {
            return;
        }
        let mut ids: Vec<ConnId> = self.conns.keys().copied().collect();
        ids.sort_unstable();
        for conn in ids {
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            match c.state {
                Awaiting::Job { .. } => {
                    let pool = c.pool;
                    self.take_idle(pool, conn);
                    self.close(conn);
                }
                Awaiting::Setup => {
                    c.state = Awaiting::Close;
                    if let Some(d) = self.dests.get_mut(&c.dest) {
                        d.setting_up -= 1;
                    }
                    self.actions.push_back(Action::Abandon { conn });
                }
                _ => {}
            }
        }
    }
}

/// Every recipient of `message` fails with `reply` (a local decision).
pub(super) fn fail(message: &Message, reply: &smtp_proto::Reply) -> Vec<RecipientOutcome> {
    message
        .recipients
        .iter()
        .map(|r| RecipientOutcome::from_reply(r, reply.clone(), true))
        .collect()
}
