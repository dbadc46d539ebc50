//! The engine thread: a `mio::Poll`, a slab of connections, a heap of their deadlines, and
//! the [`Dispatcher`] whose actions it carries out.
//!
//! It moves bytes and readiness between sockets and sessions and reports what happened to
//! the dispatcher; it makes no scheduling decision of its own (which job, which connection,
//! when to open or close one: see [`dispatch`](super::dispatch)).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use smtp_proto::Keyword;

use super::conn::{Conn, Work};
use super::deadline::DeadlineHeap;
use super::destination::PoolKey;
use super::dispatch::{Action, ConnId, DispatchConfig, Dispatcher, Job};
use super::fallback;
use super::open::Openers;
use super::transport::Transport;
use super::{Delivery, Settings, Shared, TlsSetup};
use crate::error::Error;
use crate::message::Event;
use crate::policy::TlsMode;
use crate::session::Session;

/// The waker's token; connections use their slab key.
pub(super) const WAKER: Token = Token(usize::MAX);

/// The one read buffer every connection shares.
const SCRATCH: usize = 16 * 1024;

/// The engine thread's state.
pub(super) struct Loop {
    poll: Poll,
    events: Events,
    conns: Slab<Conn>,
    /// The slab key of each dispatcher connection.
    keys: HashMap<ConnId, usize>,
    dispatcher: Dispatcher,
    jobs: Receiver<Job>,
    /// How many jobs the dispatcher may hold (waiting or on a connection) before the rest
    /// stay in `jobs`: one per connection it may open, at least the queue's capacity.
    window: usize,
    done: Sender<Delivery>,
    shared: Arc<Shared>,
    settings: Settings,
    openers: Openers,
    deadlines: DeadlineHeap<usize>,
    scratch: Box<[u8]>,
    /// Reused each turn of the loop (no allocation per turn): the readiness polled, and the
    /// connections to settle.
    ready: Vec<(usize, bool, bool)>,
    dirty: Vec<usize>,
    shutdown_told: bool,
}

impl Loop {
    pub(super) fn new(
        poll: Poll,
        settings: Settings,
        tls: Option<TlsSetup>,
        jobs: Receiver<Job>,
        done: Sender<Delivery>,
        shared: Arc<Shared>,
        window: usize,
    ) -> Self {
        let dispatcher = Dispatcher::new(DispatchConfig {
            connections: settings.connections,
            attempts: settings.attempts,
            idle_timeout: settings.idle_timeout,
            max_deliveries: settings.max_deliveries,
            tls: settings.session.policy.tls,
            verify: settings.tls.verify,
        });
        Loop {
            poll,
            events: Events::with_capacity(1024),
            conns: Slab::with_capacity(settings.connections.min(4096)),
            keys: HashMap::new(),
            dispatcher,
            jobs,
            window: window.max(settings.connections).max(1),
            done,
            shared,
            openers: Openers::new(tls, &settings),
            settings,
            deadlines: DeadlineHeap::default(),
            scratch: vec![0; SCRATCH].into_boxed_slice(),
            ready: Vec::new(),
            dirty: Vec::new(),
            shutdown_told: false,
        }
    }

    /// Runs until shut down and every message is reported.
    pub(super) fn run(mut self) {
        log::info!(
            "engine: sending to {} over up to {} connections",
            self.settings.addr,
            self.settings.connections
        );
        loop {
            let now = Instant::now();
            self.intake(now);
            self.process(now);
            if self.dispatcher.is_finished() && self.conns.is_empty() {
                break;
            }
            let timeout = [self.deadlines.next(), self.dispatcher.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .map(|d| d.saturating_duration_since(now));
            let hungry = self.dispatcher.has_room() && self.dispatcher.jobs() < self.window;
            self.shared.parked.store(true, Ordering::SeqCst);
            // A job sent after `intake` looked but before `parked` was set did not wake
            // us; that matters only if a connection could take it now. Otherwise the
            // connections' own events wake us.
            let late_job = hungry && !self.jobs.is_empty();
            let timeout = if late_job || (self.shutdown_requested() && !self.shutdown_told) {
                Some(Duration::ZERO)
            } else {
                timeout
            };
            let polled = self.poll.poll(&mut self.events, timeout);
            self.shared.parked.store(false, Ordering::SeqCst);
            if let Err(e) = polled {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    log::error!("engine: poll failed: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            let now = Instant::now();
            let mut ready = std::mem::take(&mut self.ready);
            ready.clear();
            ready.extend(self.events.iter().filter(|e| e.token() != WAKER).map(|e| {
                let hard = e.is_error() || e.is_read_closed() || e.is_write_closed();
                (e.token().0, e.is_readable() || hard, hard)
            }));
            for &(key, readable, hard) in &ready {
                self.on_ready(key, readable, hard, now);
            }
            self.ready = ready;
            self.process(now);
            self.on_timers(Instant::now());
        }
        log::info!("engine: stopped");
    }

    fn shutdown_requested(&self) -> bool {
        self.shared.shutdown.load(Ordering::SeqCst)
    }

    /// Hands submitted jobs to the dispatcher (up to the window), and the shutdown once
    /// every job submitted before it is in.
    fn intake(&mut self, now: Instant) {
        while self.dispatcher.jobs() < self.window {
            match self.jobs.try_recv() {
                Ok(job) => self.dispatcher.handle_submit(job, now),
                Err(_) => break,
            }
        }
        if !self.shutdown_told && self.shutdown_requested() && self.jobs.is_empty() {
            self.shutdown_told = true;
            self.dispatcher.handle_shutdown(now);
        }
    }

    /// Carries out the dispatcher's actions and settles the connections they touched, until
    /// neither is left.
    fn process(&mut self, now: Instant) {
        loop {
            while let Some(action) = self.dispatcher.poll_action() {
                self.act(action, now);
            }
            let Some(key) = self.dirty.pop() else {
                break;
            };
            self.settle(key, now);
        }
        let counters = self.dispatcher.counters();
        let shared = &self.shared;
        shared
            .connections_failed
            .store(counters.setups_failed, Ordering::Relaxed);
        shared.retries.store(counters.retries, Ordering::Relaxed);
        let waiting = self.dispatcher.waiting() as u64;
        shared.waiting.store(waiting, Ordering::Relaxed);
    }

    fn act(&mut self, action: Action, now: Instant) {
        let key = |keys: &HashMap<ConnId, usize>, conn| keys.get(&conn).copied();
        match action {
            Action::Open { conn, pool } => self.open(conn, pool, now),
            Action::Assign {
                conn,
                ticket,
                message,
            } => {
                let Some(k) = key(&self.keys, conn) else {
                    return;
                };
                let c = &mut self.conns[k];
                c.work = Work::Unoffered;
                // A connection is offered only while its session is idle, which is when it
                // takes a message; anything else is reported as a broken connection.
                let taken = if c.session.is_idle() {
                    c.session.queue_message(message, now)
                } else {
                    Err(c.session.error().cloned().unwrap_or(Error::PeerClosed))
                };
                match taken {
                    Ok(id) => {
                        c.deliveries += 1;
                        c.work = Work::AwaitOutcome {
                            id,
                            body_sent: false,
                            retryable: false,
                        };
                    }
                    Err(e) => {
                        log::debug!("engine: message {} not taken: {e}", ticket.0);
                        self.dispatcher
                            .handle_message_done(conn, Vec::new(), true, false, now);
                    }
                }
                self.dirty.push(k);
            }
            Action::Close { conn } => {
                if let Some(k) = key(&self.keys, conn) {
                    self.conns[k].session.close(now);
                    self.dirty.push(k);
                }
            }
            Action::Abandon { conn } => {
                if let Some(k) = key(&self.keys, conn) {
                    // Still connecting or waiting for the greeting, with no message: not
                    // worth waiting up to the greeting timeout for a polite QUIT.
                    self.conns[k].broken(now, |s, now| s.handle_io_error("engine shut down", now));
                    self.dirty.push(k);
                }
            }
            Action::Complete(delivery) => {
                self.shared.deliveries.fetch_add(1, Ordering::Relaxed);
                // A receiver that is gone no longer wants the outcomes.
                let _ = self.done.send(delivery);
            }
        }
    }

    fn open(&mut self, conn: ConnId, pool: PoolKey, now: Instant) {
        self.shared
            .connections_opened
            .fetch_add(1, Ordering::Relaxed);
        match self.try_open(conn, pool, false, now) {
            Ok(key) => {
                self.keys.insert(conn, key);
                self.shared.connections_open.fetch_add(1, Ordering::Relaxed);
                log::debug!(
                    "engine: connection {key} to {} opening",
                    self.conns[key].hop()
                );
                self.dirty.push(key);
            }
            Err(e) => self.dispatcher.handle_closed(conn, Some(e), now),
        }
    }

    /// Connects to `pool`'s next hop as connection `conn`, set up as `pool` says;
    /// `plaintext`: without STARTTLS whatever the TLS mode (the
    /// [RFC 7435 fallback](super::fallback)).
    fn try_open(
        &mut self,
        conn: ConnId,
        pool: PoolKey,
        plaintext: bool,
        now: Instant,
    ) -> Result<usize, Error> {
        let (mut config, mut tls) = self.openers.setup(&self.settings, &pool)?;
        if plaintext {
            config.policy.tls = TlsMode::Disabled;
            config.tls_available = false;
            tls = None;
        }
        let addr = pool.hop.addr;
        let stream = mio::net::TcpStream::connect(addr)
            .map_err(|e| Error::Io(format!("connect to {addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        let session = Session::new(self.settings.machine.clone(), config, now)?;
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let mut transport = Transport::plain(stream);
        self.poll
            .registry()
            .register(
                transport.socket(),
                Token(key),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| Error::Io(format!("register: {e}")))?;
        let deadline = now + self.settings.connect_timeout;
        entry.insert(Conn::new(conn, pool, transport, session, tls, deadline));
        Ok(key)
    }

    /// Handles one readiness event for connection `key`.
    fn on_ready(&mut self, key: usize, readable: bool, hard: bool, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if !conn.connected {
            match conn.transport.connected() {
                Ok(true) => conn.connected = true,
                Ok(false) if !hard => return,
                Ok(false) => {
                    conn.broken(now, |s, now| s.handle_io_error("connection failed", now));
                }
                Err(e) => {
                    let msg = format!("connect to {}: {e}", conn.hop().addr);
                    conn.broken(now, |s, now| s.handle_io_error(msg, now));
                }
            }
        }
        if readable && conn.connected {
            conn.read(&mut self.scratch, hard, now);
        }
        self.settle(key, now);
    }

    /// Fires the deadlines that passed: connect and reply timeouts here, idle ones in the
    /// dispatcher.
    fn on_timers(&mut self, now: Instant) {
        while let Some(key) = self.deadlines.pop_due(now) {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if !conn.connected && conn.connect_deadline <= now {
                let msg = format!("connect to {}: timed out", conn.hop().addr);
                conn.broken(now, |s, now| s.handle_io_error(msg, now));
            } else if conn.session.poll_timeout().is_some_and(|d| d <= now) {
                conn.session.handle_timeout(now);
            }
            // Settled even when woken early: that re-arms its real deadline.
            self.dirty.push(key);
        }
        self.dispatcher.handle_timeout(now);
        self.process(now);
    }

    /// After anything happened on connection `key`: writes its output, tells the
    /// dispatcher of a finished message, a ready session or the end, and re-arms its
    /// deadline.
    fn settle(&mut self, key: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.flush(now);
        if conn.session.poll_tls_upgrade() {
            conn.start_tls(&mut self.scratch, now);
            conn.flush(now);
        }
        conn.note_progress();
        let id = conn.id;
        let mut over = false;
        while let Some(event) = conn.session.poll_event() {
            match event {
                Event::MessageDone { message, outcomes } => {
                    if let Some(retryable) = conn.message_done(message) {
                        // The capabilities the message was sent under: EHLO is sent only
                        // while a connection is set up, before any message.
                        let dsn = conn.session.capabilities().has(Keyword::Dsn);
                        self.dispatcher
                            .handle_message_done(id, outcomes, retryable, dsn, now);
                    }
                }
                Event::SessionDone { .. } => over = true,
                Event::Recipient { .. } => {}
            }
        }
        if over {
            self.remove(key, now);
            return;
        }
        if conn.is_ready() && conn.work == Work::Unoffered {
            conn.work = Work::AwaitJob;
            if !conn.ready_once {
                conn.ready_once = true;
                log::info!("engine: connection {key} to {} ready", conn.hop());
            }
            self.dispatcher.handle_ready(id, now);
        }
        match conn.deadline() {
            Some(at) => self.deadlines.schedule(key, at),
            None => self.deadlines.cancel(key),
        }
    }

    fn remove(&mut self, key: usize, now: Instant) {
        let Some(mut conn) = self.conns.try_remove(key) else {
            return;
        };
        self.deadlines.cancel(key);
        self.keys.remove(&conn.id);
        let _ = self.poll.registry().deregister(conn.transport.socket());
        conn.transport.close();
        self.shared.connections_open.fetch_sub(1, Ordering::Relaxed);
        let error = conn.session.error().cloned();
        if conn.ready_once {
            log::info!(
                "engine: connection {key} to {} closed after {} messages",
                conn.hop(),
                conn.deliveries
            );
        }
        let error = match error {
            None if !conn.ready_once => Some(Error::PeerClosed),
            e => e,
        };
        let mode = conn.session.policy().tls;
        if fallback::falls_back(error.as_ref(), mode, conn.ready_once, &conn.work) {
            if let Some(e) = &error {
                log::info!(
                    "engine: connection {key} to {}: {e}; connecting again without TLS (RFC 7435)",
                    conn.hop()
                );
            }
            self.shared
                .connections_opened
                .fetch_add(1, Ordering::Relaxed);
            match self.try_open(conn.id, conn.pool, true, now) {
                Ok(key) => {
                    self.keys.insert(conn.id, key);
                    self.shared.connections_open.fetch_add(1, Ordering::Relaxed);
                    self.dirty.push(key);
                }
                Err(e) => self.dispatcher.handle_closed(conn.id, Some(e), now),
            }
            return;
        }
        self.dispatcher.handle_closed(conn.id, error, now);
    }
}
