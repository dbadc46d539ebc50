//! The engine's scheduling rules as a sans-IO state machine: which job goes on which
//! connection, when a connection is opened or closed, what happens to a job whose
//! connection died, when a destination's next hop is given up.
//!
//! Connections belong to pools, one per [`PoolKey`] (a next hop's address, port and name,
//! TLS mode, certificate verification): a job may go on a ready connection of any pool one
//! of its destination's hops has (the earlier hops first), whichever destination opened it,
//! and the oldest job waiting among a pool's destinations goes first. New connections for
//! a destination still go to its current next hop, and its failed set-ups move it on to
//! the next one, as the hop list says; `max_connections` counts per pool.
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
use std::ops::Bound::{Excluded, Unbounded};
use std::time::Instant;

use super::deadline::DeadlineHeap;
use super::destination::{Destination, NextHop, PoolKey};
use super::Ticket;
use crate::error::Error;
use crate::message::{Message, RecipientOutcome};

mod ending;
use ending::fail;
mod pool;
use pool::{Pool, PoolId};
mod types;

#[cfg(test)]
mod pool_tests;
#[cfg(test)]
mod tests;

pub use types::{Action, ConnId, Counters, DestinationId, DispatchConfig, Job};

/// A job waiting for, or on, a connection.
#[derive(Debug)]
struct Queued {
    ticket: Ticket,
    message: Message,
    /// Its destination.
    dest: DestinationId,
    /// The order it was submitted in, over every destination: a connection takes the
    /// oldest job it can carry.
    seq: u64,
    attempts: u32,
    /// The next hop of the last connection it was given to.
    hop: Option<NextHop>,
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
    /// The outcome of the job it carries (boxed: a job is large, the other states small).
    Outcome(Box<Queued>),
    /// A job is done: the session is ready again, or the connection is gone.
    Ready,
    /// Closing or abandoned: its end.
    Close,
}

#[derive(Debug)]
struct Conn {
    /// The destination it was opened for, and the index of its next hop there (whose set-up
    /// failures it counts).
    dest: DestinationId,
    hop: usize,
    pool: PoolId,
    /// Its message limit: its opener's.
    max_deliveries: u32,
    deliveries: u32,
    state: Awaiting,
}

/// One destination's queue and next-hop fallback.
#[derive(Debug)]
struct Dest {
    spec: Destination,
    /// Its hops' pools, in the order of the hops.
    pools: Vec<PoolId>,
    max_connections: usize,
    max_deliveries: u32,
    waiting: VecDeque<Queued>,
    /// Connections opened for it (still there, whatever they carry now), how many of them
    /// are being set up, and its jobs on connections: it is kept while any is not zero.
    conns: usize,
    setting_up: usize,
    in_flight: usize,
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
    pools: HashMap<PoolId, Pool>,
    pool_index: HashMap<PoolKey, PoolId>,
    conns: HashMap<ConnId, Conn>,
    next_conn: u64,
    next_dest: u64,
    next_pool: u64,
    next_seq: u64,
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
            pools: HashMap::new(),
            pool_index: HashMap::new(),
            conns: HashMap::new(),
            next_conn: 0,
            next_dest: 0,
            next_pool: 0,
            next_seq: 0,
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

    /// A job to deliver: it goes to a ready connection of one of its destination's hops'
    /// pools (the earliest hop first), or waits for one (opened now when the limits allow).
    pub fn handle_submit(&mut self, job: Job, now: Instant) {
        let id = self.intern(job.destination);
        let queued = Queued {
            ticket: job.ticket,
            message: job.message,
            dest: id,
            seq: self.next_seq,
            attempts: 0,
            hop: None,
            dsn_offered: false,
        };
        self.next_seq += 1;
        self.enqueue(id, queued, false);
        self.feed_idle(id, now);
        self.open_for(id);
    }

    /// Connection `conn` is ready for a job: its session is set up, or idle again after a
    /// job. It gets the oldest job waiting among the destinations of its pool, or is closed
    /// at its message limit, or waits idle.
    pub fn handle_ready(&mut self, conn: ConnId, now: Instant) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        match c.state {
            Awaiting::Setup => {
                if let Some(d) = self.dests.get_mut(&c.dest) {
                    d.setting_up -= 1;
                    d.failures = 0;
                    d.last_failure = None;
                }
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
    /// another connection (when no recipient was delivered and it has attempts left: see
    /// [`DispatchConfig::attempts`]). Otherwise, or then, its [`Delivery`](super::Delivery) is completed.
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
        let Awaiting::Outcome(job) = std::mem::replace(&mut c.state, Awaiting::Ready) else {
            return;
        };
        let mut job = *job;
        job.dsn_offered = dsn_offered;
        let dest = job.dest;
        self.in_flight -= 1;
        if let Some(d) = self.dests.get_mut(&dest) {
            d.in_flight -= 1;
        }
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
            self.enqueue(dest, job, true);
            self.feed_idle(dest, now);
        } else {
            self.complete(job, outcomes);
            self.forget_if_empty(dest);
        }
        self.sweep_if_shut_down(now);
    }

    /// Connection `conn` is gone; `error` says why when it failed. One that never got ready
    /// is a failed set-up (unless abandoned): after [`attempts`](DispatchConfig::attempts) in
    /// a row the destination it was opened for gives its next hop up for the next one, and
    /// after its last one every job waiting for that destination completes with the failure.
    pub fn handle_closed(&mut self, conn: ConnId, error: Option<Error>, now: Instant) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        self.idle.cancel(conn);
        let (id, pool) = (c.dest, c.pool);
        if let Some(p) = self.pools.get_mut(&pool) {
            p.conns -= 1;
        }
        if let Some(d) = self.dests.get_mut(&id) {
            d.conns -= 1;
        }
        match c.state {
            Awaiting::Setup => {
                if let Some(d) = self.dests.get_mut(&id) {
                    d.setting_up -= 1;
                }
                self.setup_failed(id, c.hop, error);
            }
            Awaiting::Outcome(job) => {
                // Drivers report the job first; a reply for it all the same.
                self.in_flight -= 1;
                let of = job.dest;
                if let Some(d) = self.dests.get_mut(&of) {
                    d.in_flight -= 1;
                }
                let reply = error.unwrap_or(Error::PeerClosed).reply();
                let outcomes = fail(&job.message, &reply);
                self.complete(*job, outcomes);
                self.forget_if_empty(of);
            }
            Awaiting::Job { .. } => {
                if let Some(p) = self.pools.get_mut(&pool) {
                    p.idle.retain(|&i| i != conn);
                }
                self.idle_conns -= 1;
            }
            Awaiting::Ready | Awaiting::Close => {}
        }
        self.open_for(id);
        self.open_for_pool(pool);
        self.unblock();
        self.forget_if_empty(id);
        self.forget_pool_if_empty(pool);
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
            self.take_idle(c.pool, conn);
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

    /// The settings of destination `id` (while it has jobs or connections opened for it).
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

    /// Connections open in the pool of `key` (opening, ready, busy or closing).
    pub fn pool_connections(&self, key: &PoolKey) -> usize {
        self.pool_index
            .get(key)
            .and_then(|id| self.pools.get(id))
            .map_or(0, |p| p.conns)
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

    /// Gives waiting jobs of destination `id` to idle connections of its hops' pools, the
    /// earliest hop first.
    fn feed_idle(&mut self, id: DestinationId, now: Instant) {
        // Each turn takes one idle connection: `place` gives it a job (nothing else of the
        // pool waited: an idle connection would have had it) or closes it.
        while let Some(d) = self.dests.get(&id) {
            if d.waiting.is_empty() {
                return;
            }
            let found = d.pools.iter().find_map(|p| {
                let conn = *self.pools.get(p)?.idle.last()?;
                Some((*p, conn))
            });
            let Some((pool, conn)) = found else {
                return;
            };
            self.take_idle(pool, conn);
            if let Some(c) = self.conns.get_mut(&conn) {
                c.state = Awaiting::Ready;
            }
            self.place(conn, now);
        }
    }

    /// Opens connections for destination `id`'s waiting jobs that no connection being set
    /// up for it will take, to its current next hop, within its limit (counted in that
    /// hop's pool) and the global cap.
    fn open_for(&mut self, id: DestinationId) {
        let Some(d) = self.dests.get_mut(&id) else {
            return;
        };
        let Some(&pool) = d.pools.get(d.hop) else {
            return;
        };
        let Some(p) = self.pools.get_mut(&pool) else {
            return;
        };
        while d.waiting.len() > d.setting_up && p.conns < d.max_connections {
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
            p.conns += 1;
            self.counters.opened += 1;
            self.conns.insert(
                conn,
                Conn {
                    dest: id,
                    hop: d.hop,
                    pool,
                    max_deliveries: d.max_deliveries,
                    deliveries: 0,
                    state: Awaiting::Setup,
                },
            );
            self.actions.push_back(Action::Open {
                conn,
                pool: p.key.clone(),
            });
        }
    }

    /// Room in pool `pool`: the destinations whose current next hop it is may open, those
    /// whose first job waited longest first. Only destinations with a job waiting would
    /// open, so the pool's index of them is walked, not every destination listing it.
    fn open_for_pool(&mut self, pool: PoolId) {
        let mut after: Option<(u64, DestinationId)> = None;
        loop {
            let Some(p) = self.pools.get(&pool) else {
                return;
            };
            let next = match after {
                None => p.waiting.iter().next(),
                Some(key) => p.waiting.range((Excluded(key), Unbounded)).next(),
            };
            let Some(&key) = next else {
                return;
            };
            after = Some(key);
            let id = key.1;
            let current = self.dests.get(&id).and_then(|d| d.pools.get(d.hop));
            if current == Some(&pool) {
                self.open_for(id);
            }
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
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let pool = c.pool;
        if c.deliveries >= c.max_deliveries {
            log::debug!("engine: connection {} reached its message limit", conn.0);
            self.close(conn);
            self.open_for_pool(pool);
            return;
        }
        let next = self.oldest_waiting(pool);
        if !self.pools.contains_key(&pool) {
            return;
        }
        if let Some(mut job) = next.and_then(|id| self.dequeue(id)) {
            let (Some(c), Some(p)) = (self.conns.get_mut(&conn), self.pools.get(&pool)) else {
                return;
            };
            self.in_flight += 1;
            job.attempts += 1;
            job.hop = Some(p.key.hop.clone());
            c.deliveries += 1;
            self.actions.push_back(Action::Assign {
                conn,
                ticket: job.ticket,
                message: job.message.clone(),
            });
            c.state = Awaiting::Outcome(Box::new(job));
            return;
        }
        if (self.shutdown && self.waiting == 0) || self.wants_room() {
            // Nothing to do here, and another destination waits for room under the cap.
            self.close(conn);
            return;
        }
        let (Some(c), Some(p)) = (self.conns.get_mut(&conn), self.pools.get_mut(&pool)) else {
            return;
        };
        c.state = Awaiting::Job { since: now };
        p.idle.push(conn);
        self.idle_conns += 1;
        self.idle.schedule(conn, now + self.config.idle_timeout);
    }

    /// Whether a destination waits for room under the global cap (and would open). Those
    /// at the front of the line that would not open any more (their jobs went on other
    /// connections, or their pool reached its limit) leave it, so the answer costs O(1)
    /// amortised however many destinations once waited: every later change that lets one
    /// open again (a job, a closed connection of its pool, a new next hop) puts it back.
    fn wants_room(&mut self) -> bool {
        while let Some(&id) = self.blocked.front() {
            if self.would_open(id) {
                return true;
            }
            self.blocked.pop_front();
            if let Some(d) = self.dests.get_mut(&id) {
                d.blocked = false;
            }
            self.forget_if_empty(id);
        }
        false
    }

    /// Whether destination `id` would open a connection were there room under the cap.
    fn would_open(&self, id: DestinationId) -> bool {
        self.dests.get(&id).is_some_and(|d| {
            let conns = d.pools.get(d.hop).and_then(|p| self.pools.get(p));
            d.waiting.len() > d.setting_up && conns.is_some_and(|p| p.conns < d.max_connections)
        })
    }

    /// Closes one idle connection (the one idle longest) of a pool destination `id` cannot
    /// use, to make room for `id`.
    fn reclaim_idle(&mut self, id: DestinationId) {
        if self.idle_conns == 0 {
            return;
        }
        let mine = self
            .dests
            .get(&id)
            .map(|d| d.pools.as_slice())
            .unwrap_or(&[]);
        let oldest = self
            .conns
            .iter()
            .filter_map(|(&conn, c)| match c.state {
                Awaiting::Job { since } if !mine.contains(&c.pool) => Some((since, conn, c.pool)),
                _ => None,
            })
            .min();
        if let Some((_, conn, pool)) = oldest {
            log::debug!(
                "engine: connection {} idle, closed for another destination",
                conn.0
            );
            self.take_idle(pool, conn);
            self.close(conn);
        }
    }

    fn close(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.state = Awaiting::Close;
            self.actions.push_back(Action::Close { conn });
        }
    }
}
