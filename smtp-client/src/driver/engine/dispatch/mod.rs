//! The engine's scheduling rules as a sans-IO state machine: which job goes on which
//! connection, when a connection is opened or closed, what happens to a job whose
//! connection died, when a destination's next hop is given up.
//!
//! It has no sockets, no threads and no clock: every input carries `now`, and the
//! [`Engine`](super::Engine)'s event loop carries out its [`Action`]s. It does not speak
//! SMTP either: a connection's [`Session`](crate::Session) is the driver's, which tells the
//! dispatcher only when the connection is ready for a job, when a job is done (and whether
//! it may go to another connection), and when the connection is gone.
// A sans-IO core, though it sits among the drivers: no clock reads, no threads (the
// driver module's allowance stops here).
#![deny(clippy::disallowed_methods)]

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use super::deadline::DeadlineHeap;
use super::destination::Destination;
use super::Ticket;
use crate::error::Error;
use crate::message::{Message, RecipientOutcome};

mod ending;
use ending::fail;
mod types;

#[cfg(test)]
mod tests;

pub use types::{Action, ConnId, Counters, DestinationId, DispatchConfig, Job};

/// A job waiting for, or on, a connection.
#[derive(Debug)]
struct Queued {
    ticket: Ticket,
    message: Message,
    attempts: u32,
    /// The next hop (an index into its destination's) of the last connection it was given
    /// to.
    hop: Option<usize>,
    /// That connection's server offered DSN.
    dsn_offered: bool,
}

/// What a connection awaits.
#[derive(Debug)]
enum Awaiting {
    /// Connect, greeting, EHLO, STARTTLS, AUTH: the first `handle_ready`.
    Setup,
    /// A job (ready and idle since then).
    Job { since: Instant },
    /// The outcome of the job it carries.
    Outcome(Queued),
    /// A job is done: the session is ready again, or the connection is gone.
    Ready,
    /// Closing or abandoned: its end.
    Close,
}

#[derive(Debug)]
struct Conn {
    dest: DestinationId,
    /// Index into the destination's next hops.
    hop: usize,
    deliveries: u32,
    state: Awaiting,
}

/// One destination's pool and queue.
#[derive(Debug)]
struct Dest {
    spec: Destination,
    max_connections: usize,
    max_deliveries: u32,
    waiting: VecDeque<Queued>,
    /// Connections of this destination, and how many of them are being set up.
    conns: usize,
    setting_up: usize,
    /// Ready connections without a job, the most recently idle last.
    idle: Vec<ConnId>,
    /// The next hop new connections go to, failed set-ups in a row there, the last reason.
    hop: usize,
    failures: u32,
    last_failure: Option<Error>,
    /// Waits in [`Dispatcher::blocked`] for room under the global cap.
    blocked: bool,
}

/// The engine's scheduler. See the [module docs](self).
///
/// # Call order
///
/// 1. **Submit**: [`handle_submit`](Self::handle_submit) for every job.
/// 2. **Actions**: after every `handle_*` call, drain [`poll_action`](Self::poll_action) and
///    carry each out: open a connection, give a job to a connection, close or drop one, report
///    a delivery.
/// 3. **Connections**: report each opened connection's fate: [`handle_ready`](Self::handle_ready)
///    when its session is set up and whenever it is idle again after a job;
///    [`handle_message_done`](Self::handle_message_done) when its job ends (before
///    `handle_ready` or `handle_closed`), saying whether the job may go to another connection
///    (it broke before the body was sent); [`handle_closed`](Self::handle_closed) when it is
///    gone, with the reason if it failed.
/// 4. **Timer**: call [`handle_timeout`](Self::handle_timeout) at
///    [`poll_timeout`](Self::poll_timeout) (idle connections are closed).
/// 5. **Shutdown**: [`handle_shutdown`](Self::handle_shutdown) once no job will be submitted;
///    keep going until [`is_finished`](Self::is_finished).
#[derive(Debug)]
pub struct Dispatcher {
    config: DispatchConfig,
    dests: HashMap<DestinationId, Dest>,
    index: HashMap<Destination, DestinationId>,
    conns: HashMap<ConnId, Conn>,
    next_conn: u64,
    next_dest: u64,
    idle: DeadlineHeap<ConnId>,
    idle_conns: usize,
    /// Destinations that want a connection the global cap does not allow yet, in order.
    blocked: VecDeque<DestinationId>,
    actions: VecDeque<Action>,
    waiting: usize,
    in_flight: usize,
    shutdown: bool,
    counters: Counters,
}

impl Dispatcher {
    /// A dispatcher with no job and no connection.
    pub fn new(config: DispatchConfig) -> Self {
        Dispatcher {
            config: DispatchConfig {
                connections: config.connections.max(1),
                attempts: config.attempts.max(1),
                max_deliveries: config.max_deliveries.max(1),
                ..config
            },
            dests: HashMap::new(),
            index: HashMap::new(),
            conns: HashMap::new(),
            next_conn: 0,
            next_dest: 0,
            idle: DeadlineHeap::default(),
            idle_conns: 0,
            blocked: VecDeque::new(),
            actions: VecDeque::new(),
            waiting: 0,
            in_flight: 0,
            shutdown: false,
            counters: Counters::default(),
        }
    }

    // ----- inputs -----

    /// A job to deliver: it goes to a ready connection of its destination, or waits for one
    /// (opened now when the limits allow).
    pub fn handle_submit(&mut self, job: Job, now: Instant) {
        let id = self.intern(job.destination);
        let queued = Queued {
            ticket: job.ticket,
            message: job.message,
            attempts: 0,
            hop: None,
            dsn_offered: false,
        };
        if let Some(d) = self.dests.get_mut(&id) {
            d.waiting.push_back(queued);
            self.waiting += 1;
        }
        self.feed_idle(id, now);
        self.open_for(id);
    }

    /// Connection `conn` is ready for a job: its session is set up, or idle again after a
    /// job. It gets the next job of its destination, or is closed at its message limit, or
    /// waits idle.
    pub fn handle_ready(&mut self, conn: ConnId, now: Instant) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(d) = self.dests.get_mut(&c.dest) else {
            return;
        };
        match c.state {
            Awaiting::Setup => {
                d.setting_up -= 1;
                d.failures = 0;
                d.last_failure = None;
            }
            Awaiting::Ready => {}
            _ => return,
        }
        c.state = Awaiting::Ready;
        self.place(conn, now);
        self.sweep_if_shut_down(now);
    }

    /// The job on `conn` is over with `outcomes` (one per recipient). `retryable`: the
    /// connection broke before the body was handed to the server, so the job may go to
    /// another connection (it does, unless a recipient was delivered or it used up its
    /// attempts). Otherwise, or then, its [`Delivery`](super::Delivery) is completed.
    /// `dsn_offered`: the connection's server offered DSN
    /// ([`Delivery::dsn_offered`](super::Delivery::dsn_offered)).
    pub fn handle_message_done(
        &mut self,
        conn: ConnId,
        outcomes: Vec<RecipientOutcome>,
        retryable: bool,
        dsn_offered: bool,
        now: Instant,
    ) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if !matches!(c.state, Awaiting::Outcome(_)) {
            return;
        }
        let Awaiting::Outcome(mut job) = std::mem::replace(&mut c.state, Awaiting::Ready) else {
            return;
        };
        job.dsn_offered = dsn_offered;
        let dest = c.dest;
        self.in_flight -= 1;
        let outcomes = if outcomes.len() == job.message.recipients.len() {
            outcomes
        } else {
            // One outcome per recipient, whatever the driver said.
            fail(&job.message, &Error::PeerClosed.reply())
        };
        let delivered = outcomes.iter().any(RecipientOutcome::is_delivered);
        if retryable && !delivered && job.attempts < self.config.attempts {
            log::debug!(
                "engine: message {} goes to another connection",
                job.ticket.0
            );
            self.counters.retries += 1;
            if let Some(d) = self.dests.get_mut(&dest) {
                d.waiting.push_front(job);
                self.waiting += 1;
            }
            self.feed_idle(dest, now);
        } else {
            self.complete(dest, job, outcomes);
        }
        self.sweep_if_shut_down(now);
    }

    /// Connection `conn` is gone; `error` says why when it failed. One that never got ready
    /// is a failed set-up (unless abandoned): after [`attempts`](DispatchConfig::attempts) in
    /// a row the destination's next hop is given up for the next one, and after its last
    /// one every job waiting for the destination completes with the failure.
    pub fn handle_closed(&mut self, conn: ConnId, error: Option<Error>, now: Instant) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        self.idle.cancel(conn);
        let id = c.dest;
        let Some(d) = self.dests.get_mut(&id) else {
            return;
        };
        d.conns -= 1;
        match c.state {
            Awaiting::Setup => {
                d.setting_up -= 1;
                self.setup_failed(id, c.hop, error);
            }
            Awaiting::Outcome(job) => {
                // Drivers report the job first; a reply for it all the same.
                self.in_flight -= 1;
                let reply = error.unwrap_or(Error::PeerClosed).reply();
                let outcomes = fail(&job.message, &reply);
                self.complete(id, job, outcomes);
            }
            Awaiting::Job { .. } => {
                d.idle.retain(|&i| i != conn);
                self.idle_conns -= 1;
            }
            Awaiting::Ready | Awaiting::Close => {}
        }
        self.open_for(id);
        self.unblock();
        self.forget_if_empty(id);
        self.sweep_if_shut_down(now);
    }

    /// Closes the connections idle since `idle_timeout` before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(conn) = self.idle.pop_due(now) {
            let Some(c) = self.conns.get(&conn) else {
                continue;
            };
            let Awaiting::Job { since } = c.state else {
                continue;
            };
            let due = since + self.config.idle_timeout;
            if due > now {
                self.idle.schedule(conn, due);
                continue;
            }
            log::debug!("engine: connection {} idle, closing", conn.0);
            self.take_idle(c.dest, conn);
            self.close(conn);
        }
    }

    /// No job will be submitted any more: once every job is done, ready connections are
    /// closed with QUIT and those still being set up are abandoned.
    pub fn handle_shutdown(&mut self, now: Instant) {
        self.shutdown = true;
        self.sweep_if_shut_down(now);
    }

    // ----- outputs -----

    /// The next thing to do, if any.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due: the first idle connection's
    /// timeout.
    #[must_use]
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.idle.next()
    }

    // ----- state -----

    /// The settings of destination `id` (while it has jobs or connections).
    pub fn destination(&self, id: DestinationId) -> Option<&Destination> {
        self.dests.get(&id).map(|d| &d.spec)
    }

    /// Jobs waiting for a connection.
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// Jobs submitted and not completed yet: waiting, or on a connection.
    pub fn jobs(&self) -> usize {
        self.waiting + self.in_flight
    }

    /// Connections open (opening, ready, busy or closing).
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Whether a job submitted now could start at once: a connection is idle, or one may be
    /// opened under the global cap.
    pub fn has_room(&self) -> bool {
        self.idle_conns > 0 || self.conns.len() < self.config.connections
    }

    /// Shut down, every job done, every connection gone.
    pub fn is_finished(&self) -> bool {
        self.shutdown && self.waiting == 0 && self.in_flight == 0 && self.conns.is_empty()
    }

    /// The counters so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    // ----- the rules -----

    fn intern(&mut self, spec: Destination) -> DestinationId {
        if let Some(&id) = self.index.get(&spec) {
            return id;
        }
        let id = DestinationId(self.next_dest);
        self.next_dest += 1;
        let dest = Dest {
            max_connections: spec.max_connections.unwrap_or(usize::MAX),
            max_deliveries: spec.max_deliveries.unwrap_or(self.config.max_deliveries),
            spec: spec.clone(),
            waiting: VecDeque::new(),
            conns: 0,
            setting_up: 0,
            idle: Vec::new(),
            hop: 0,
            failures: 0,
            last_failure: None,
            blocked: false,
        };
        self.index.insert(spec, id);
        self.dests.insert(id, dest);
        id
    }

    /// Gives waiting jobs of destination `id` to its idle connections.
    fn feed_idle(&mut self, id: DestinationId, now: Instant) {
        while let Some(d) = self.dests.get_mut(&id) {
            if d.waiting.is_empty() {
                return;
            }
            let Some(conn) = d.idle.pop() else {
                return;
            };
            self.idle_conns -= 1;
            self.idle.cancel(conn);
            if let Some(c) = self.conns.get_mut(&conn) {
                c.state = Awaiting::Ready;
            }
            self.place(conn, now);
        }
    }

    /// Opens connections for destination `id`'s waiting jobs that no connection being set
    /// up will take, within its limit and the global cap.
    fn open_for(&mut self, id: DestinationId) {
        let Some(d) = self.dests.get_mut(&id) else {
            return;
        };
        while d.waiting.len() > d.setting_up && d.conns < d.max_connections {
            if self.conns.len() >= self.config.connections {
                if !d.blocked {
                    d.blocked = true;
                    self.blocked.push_back(id);
                    self.reclaim_idle(id);
                }
                return;
            }
            let conn = ConnId(self.next_conn);
            self.next_conn += 1;
            d.conns += 1;
            d.setting_up += 1;
            self.counters.opened += 1;
            self.conns.insert(
                conn,
                Conn {
                    dest: id,
                    hop: d.hop,
                    deliveries: 0,
                    state: Awaiting::Setup,
                },
            );
            self.actions.push_back(Action::Open {
                conn,
                destination: id,
                hop: d.spec.hops[d.hop].clone(),
            });
        }
    }

    /// Room under the global cap: destinations that waited for it open in turn.
    fn unblock(&mut self) {
        for _ in 0..self.blocked.len() {
            if self.conns.len() >= self.config.connections {
                return;
            }
            let Some(id) = self.blocked.pop_front() else {
                return;
            };
            if let Some(d) = self.dests.get_mut(&id) {
                d.blocked = false;
            }
            self.open_for(id);
            self.forget_if_empty(id);
        }
    }

    /// A connection awaiting `Ready` gets a job, is closed, or waits idle.
    fn place(&mut self, conn: ConnId, now: Instant) {
        let Some(id) = self.conns.get(&conn).map(|c| c.dest) else {
            return;
        };
        let wants_room = self.wants_room(id);
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(d) = self.dests.get_mut(&id) else {
            return;
        };
        if c.deliveries >= d.max_deliveries {
            log::debug!("engine: connection {} reached its message limit", conn.0);
            self.close(conn);
            self.open_for(id);
            return;
        }
        if let Some(mut job) = d.waiting.pop_front() {
            self.waiting -= 1;
            self.in_flight += 1;
            job.attempts += 1;
            job.hop = Some(c.hop);
            c.deliveries += 1;
            self.actions.push_back(Action::Assign {
                conn,
                ticket: job.ticket,
                message: job.message.clone(),
            });
            c.state = Awaiting::Outcome(job);
            return;
        }
        if (self.shutdown && self.waiting == 0) || wants_room {
            // Nothing to do here, and another destination waits for room under the cap.
            self.close(conn);
            return;
        }
        c.state = Awaiting::Job { since: now };
        d.idle.push(conn);
        self.idle_conns += 1;
        self.idle.schedule(conn, now + self.config.idle_timeout);
    }

    /// Whether a destination other than `except` waits for room under the global cap.
    fn wants_room(&self, except: DestinationId) -> bool {
        self.blocked.iter().any(|&id| {
            id != except
                && self
                    .dests
                    .get(&id)
                    .is_some_and(|d| d.waiting.len() > d.setting_up && d.conns < d.max_connections)
        })
    }

    /// Closes one idle connection of another destination than `id` (the one idle longest),
    /// to make room for `id`.
    fn reclaim_idle(&mut self, id: DestinationId) {
        if self.idle_conns == 0 {
            return;
        }
        let oldest = self
            .conns
            .iter()
            .filter_map(|(&conn, c)| match c.state {
                Awaiting::Job { since } if c.dest != id => Some((since, conn, c.dest)),
                _ => None,
            })
            .min();
        if let Some((_, conn, other)) = oldest {
            log::debug!(
                "engine: connection {} idle, closed for another destination",
                conn.0
            );
            self.take_idle(other, conn);
            self.close(conn);
        }
    }

    fn take_idle(&mut self, id: DestinationId, conn: ConnId) {
        if let Some(d) = self.dests.get_mut(&id) {
            d.idle.retain(|&i| i != conn);
        }
        self.idle_conns -= 1;
        self.idle.cancel(conn);
    }

    fn close(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.state = Awaiting::Close;
            self.actions.push_back(Action::Close { conn });
        }
    }

    /// Forgets destination `id` once it has neither jobs nor connections.
    fn forget_if_empty(&mut self, id: DestinationId) {
        let empty = self
            .dests
            .get(&id)
            .is_some_and(|d| d.conns == 0 && d.waiting.is_empty() && !d.blocked);
        if empty {
            if let Some(d) = self.dests.remove(&id) {
                self.index.remove(&d.spec);
            }
        }
    }
}
