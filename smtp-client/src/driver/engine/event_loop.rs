//! The engine thread: a `mio::Poll`, a slab of connections, the queue of messages.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::conn::Conn;
use super::transport::Transport;
use super::{Delivery, Job, Settings, Shared, TlsSetup};
use crate::error::Error;
use crate::message::{Event, RecipientOutcome};
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
    pending: VecDeque<Job>,
    jobs: Receiver<Job>,
    done: Sender<Delivery>,
    shared: Arc<Shared>,
    settings: Settings,
    /// STARTTLS's configuration, when the policy may use TLS.
    tls: Option<TlsSetup>,
    scratch: Box<[u8]>,
    /// Reused each turn of the loop (no allocation per turn): connection keys to visit, and
    /// the readiness polled.
    keys: Vec<usize>,
    ready: Vec<(usize, bool, bool)>,
    /// Connection set-ups that failed in a row, and the last reason.
    failures: u32,
    last_failure: Option<Error>,
}

impl Loop {
    pub(super) fn new(
        poll: Poll,
        settings: Settings,
        tls: Option<TlsSetup>,
        jobs: Receiver<Job>,
        done: Sender<Delivery>,
        shared: Arc<Shared>,
    ) -> Self {
        Loop {
            poll,
            events: Events::with_capacity(1024),
            conns: Slab::with_capacity(settings.connections.min(4096)),
            pending: VecDeque::new(),
            jobs,
            done,
            shared,
            settings,
            tls,
            scratch: vec![0; SCRATCH].into_boxed_slice(),
            keys: Vec::new(),
            ready: Vec::new(),
            failures: 0,
            last_failure: None,
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
            let hungry = self.dispatch(now);
            if self.finished() {
                break;
            }
            let timeout = self
                .next_deadline()
                .map(|d| d.saturating_duration_since(now));
            self.shared.parked.store(true, Ordering::SeqCst);
            // A job sent after `dispatch` looked but before `parked` was set did not wake
            // us; that matters only if a connection could take it now. Otherwise the
            // connections' own events wake us.
            let late_job = hungry && !self.jobs.is_empty();
            let timeout = if late_job || self.shutdown_requested() {
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
            self.on_timers(Instant::now());
        }
        log::info!("engine: stopped");
    }

    fn shutdown_requested(&self) -> bool {
        self.shared.shutdown.load(Ordering::SeqCst)
    }

    /// Shut down, nothing waiting, nothing in flight, no connection left.
    fn finished(&mut self) -> bool {
        let idle = self.pending.is_empty()
            && self.jobs.is_empty()
            && self.conns.iter().all(|(_, c)| c.inflight.is_none());
        if !(self.shutdown_requested() && idle) {
            return false;
        }
        let now = Instant::now();
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            if let Some(conn) = self.conns.get_mut(key) {
                if conn.connected && conn.ready_once {
                    conn.session.close(now);
                } else {
                    // Still connecting or waiting for the greeting, with no message: not
                    // worth waiting up to the greeting timeout for a polite QUIT.
                    conn.broken(now, |s, now| s.handle_io_error("engine shut down", now));
                }
            }
            self.settle(key, now);
        }
        self.conns.is_empty()
    }

    /// The next message to send: one going to another connection first, then the queue.
    fn next_job(&mut self) -> Option<Job> {
        if let Some(job) = self.pending.pop_front() {
            return Some(job);
        }
        self.jobs.try_recv().ok()
    }

    /// Messages waiting for a connection.
    fn waiting(&self) -> usize {
        self.pending.len() + self.jobs.len()
    }

    /// Gives waiting messages to ready connections, opens connections for the rest, closes
    /// connections that reached their limit. Returns `true` when a message submitted now
    /// could be sent at once (a connection is ready for it, or one could be opened).
    fn dispatch(&mut self, now: Instant) -> bool {
        let mut hungry = false;
        let mut keys = std::mem::take(&mut self.keys);
        keys.clear();
        keys.extend(self.conns.iter().map(|(k, _)| k));
        let mut setting_up = 0;
        for &key in &keys {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if !conn.is_ready() {
                if !conn.ready_once && !conn.session.is_done() {
                    setting_up += 1;
                }
                continue;
            }
            if conn.deliveries >= self.settings.max_deliveries {
                log::debug!("engine: connection {key} reached its message limit");
                conn.session.close(now);
            } else if let Some(job) = self.next_job() {
                self.assign(key, job, now);
            } else if let Some(conn) = self.conns.get_mut(key) {
                conn.idle_since.get_or_insert(now);
                hungry = true;
            }
            self.settle(key, now);
        }
        self.keys = keys;
        let room = self.settings.connections.saturating_sub(self.conns.len());
        let wanted = self.waiting().saturating_sub(setting_up).min(room);
        for _ in 0..wanted {
            self.open(now);
        }
        hungry || self.conns.len() < self.settings.connections
    }

    fn assign(&mut self, key: usize, mut job: Job, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            self.pending.push_front(job);
            return;
        };
        match conn.session.queue_message(job.message.clone(), now) {
            Ok(id) => {
                job.attempts += 1;
                conn.deliveries += 1;
                conn.idle_since = None;
                conn.body_sent = false;
                conn.retry_inflight = false;
                conn.inflight = Some((id, job));
            }
            Err(e) => {
                log::debug!("engine: connection {key} cannot take a message: {e}");
                self.pending.push_front(job);
            }
        }
    }

    fn open(&mut self, now: Instant) {
        let addr = self.settings.addr;
        self.shared
            .connections_opened
            .fetch_add(1, Ordering::Relaxed);
        let stream = match mio::net::TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => {
                self.setup_failed(Error::Io(format!("connect to {addr}: {e}")));
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        let session = match Session::new(
            self.settings.machine.clone(),
            self.settings.session.clone(),
            now,
        ) {
            Ok(s) => s,
            Err(e) => {
                self.setup_failed(e);
                return;
            }
        };
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let mut transport = Transport::plain(stream);
        if let Err(e) = self.poll.registry().register(
            transport.socket(),
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            self.setup_failed(Error::Io(format!("register: {e}")));
            return;
        }
        entry.insert(Conn::new(
            transport,
            session,
            now + self.settings.connect_timeout,
        ));
        self.shared.connections_open.fetch_add(1, Ordering::Relaxed);
        log::debug!("engine: connection {key} to {addr} opening");
    }

    /// A connection could not be set up. After `attempts` in a row, every waiting message
    /// fails with the reason.
    fn setup_failed(&mut self, error: Error) {
        self.shared
            .connections_failed
            .fetch_add(1, Ordering::Relaxed);
        self.failures += 1;
        log::info!(
            "engine: connection to {} failed ({} in a row): {error}",
            self.settings.addr,
            self.failures
        );
        self.last_failure = Some(error);
        if self.failures < self.settings.attempts {
            return;
        }
        let reply = self
            .last_failure
            .take()
            .map(|e| e.reply())
            .unwrap_or_else(|| Error::PeerClosed.reply());
        self.failures = 0;
        // The messages waiting now; later ones get connections of their own.
        for _ in 0..self.waiting() {
            let Some(job) = self.next_job() else { break };
            let outcomes = job
                .message
                .recipients
                .iter()
                .map(|r| RecipientOutcome::from_reply(r, reply.clone(), true))
                .collect();
            self.report(job, outcomes);
        }
    }

    fn report(&mut self, job: Job, outcomes: Vec<RecipientOutcome>) {
        self.shared.deliveries.fetch_add(1, Ordering::Relaxed);
        let delivery = Delivery {
            ticket: job.ticket,
            message: job.message,
            outcomes,
            attempts: job.attempts,
        };
        // A receiver that is gone no longer wants the outcomes.
        let _ = self.done.send(delivery);
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
                    let msg = format!("connect to {}: {e}", self.settings.addr);
                    conn.broken(now, |s, now| s.handle_io_error(msg, now));
                }
            }
        }
        if readable && conn.connected {
            conn.read(&mut self.scratch, hard, now);
        }
        self.settle(key, now);
    }

    /// Fires the deadlines that passed: connect, reply and idle timeouts.
    fn on_timers(&mut self, now: Instant) {
        let mut keys = std::mem::take(&mut self.keys);
        keys.clear();
        keys.extend(
            self.conns
                .iter()
                .filter(|(_, c)| self.deadline(c).is_some_and(|d| d <= now))
                .map(|(k, _)| k),
        );
        for &key in &keys {
            let idle_timeout = self.settings.idle_timeout;
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if !conn.connected && conn.connect_deadline <= now {
                let msg = format!("connect to {}: timed out", self.settings.addr);
                conn.broken(now, |s, now| s.handle_io_error(msg, now));
            } else if conn.session.poll_timeout().is_some_and(|d| d <= now) {
                conn.session.handle_timeout(now);
            } else if conn.idle_since.is_some_and(|t| t + idle_timeout <= now) {
                log::debug!("engine: connection {key} idle, closing");
                conn.idle_since = None;
                conn.session.close(now);
            }
            self.settle(key, now);
        }
        self.keys = keys;
    }

    fn deadline(&self, conn: &Conn) -> Option<Instant> {
        let mut at = conn.session.poll_timeout();
        if !conn.connected {
            at = Some(at.map_or(conn.connect_deadline, |a| a.min(conn.connect_deadline)));
        }
        if let Some(idle) = conn.idle_since {
            let idle = idle + self.settings.idle_timeout;
            at = Some(at.map_or(idle, |a| a.min(idle)));
        }
        at
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.conns
            .iter()
            .filter_map(|(_, c)| self.deadline(c))
            .min()
    }

    /// After anything happened on connection `key`: writes its output, reports or requeues
    /// its finished message, and removes it once its session is over.
    fn settle(&mut self, key: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.flush(now);
        if conn.session.poll_tls_upgrade() {
            conn.start_tls(self.tls.as_ref(), &mut self.scratch, now);
            conn.flush(now);
        }
        conn.note_progress();
        let mut finished = Vec::new();
        let mut over = false;
        while let Some(event) = conn.session.poll_event() {
            match event {
                Event::MessageDone { message, outcomes } => {
                    if conn.inflight.as_ref().is_some_and(|(id, _)| *id == message) {
                        if let Some((_, job)) = conn.inflight.take() {
                            finished.push((job, outcomes, conn.retry_inflight));
                        }
                        conn.body_sent = false;
                        conn.retry_inflight = false;
                    }
                }
                Event::SessionDone { .. } => over = true,
                Event::Recipient { .. } => {}
            }
        }
        if conn.session.is_idle() && !conn.ready_once {
            conn.ready_once = true;
            self.failures = 0;
            log::info!("engine: connection {key} to {} ready", self.settings.addr);
        }
        let ready_once = conn.ready_once;
        let error = conn.session.error().cloned();
        for (job, outcomes, retry) in finished {
            let any_delivered = outcomes.iter().any(RecipientOutcome::is_delivered);
            if retry && !any_delivered && job.attempts < self.settings.attempts {
                log::debug!(
                    "engine: message {} goes to another connection",
                    job.ticket.0
                );
                self.shared.retries.fetch_add(1, Ordering::Relaxed);
                self.pending.push_front(job);
            } else {
                self.report(job, outcomes);
            }
        }
        if over {
            self.remove(key, ready_once, error);
        }
    }

    fn remove(&mut self, key: usize, ready_once: bool, error: Option<Error>) {
        let Some(mut conn) = self.conns.try_remove(key) else {
            return;
        };
        let _ = self.poll.registry().deregister(conn.transport.socket());
        conn.transport.close();
        self.shared.connections_open.fetch_sub(1, Ordering::Relaxed);
        if let Some((_, job)) = conn.inflight.take() {
            // Not reached: a session reports every message it took before it ends.
            let reply = error
                .as_ref()
                .map_or_else(|| Error::PeerClosed.reply(), Error::reply);
            let outcomes = job
                .message
                .recipients
                .iter()
                .map(|r| RecipientOutcome::from_reply(r, reply.clone(), true))
                .collect();
            self.report(job, outcomes);
        }
        if !ready_once && self.shutdown_requested() && self.waiting() == 0 {
            log::debug!("engine: connection {key} abandoned while setting up: shutting down");
        } else if !ready_once {
            self.setup_failed(error.unwrap_or(Error::PeerClosed));
        } else {
            log::info!(
                "engine: connection {key} to {} closed after {} messages",
                self.settings.addr,
                conn.deliveries
            );
        }
    }
}
