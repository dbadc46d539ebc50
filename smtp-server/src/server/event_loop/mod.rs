//! One loop thread: a mio `Poll`, its `Waker`, the listeners, a slab of connections, a heap
//! of deadlines and a channel of completions. See the [module docs](super) for the design.

mod shutdown;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender};
use hooks_api::{Ctx, Disconnect, Notes, Verdict};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use super::builder::Shared;
use super::conn::{Conn, Waiting, READ_CHUNK};
use super::hooks::sync_session;
use super::limits::Refusal;
use super::{ConnId, ServerError};
use crate::factory::{Decision, Event, Factory};
use crate::spool::SpoolError;
use crate::spool::SpoolWriter;

/// The `Waker`'s token.
const WAKER: Token = Token(usize::MAX);
/// Listener `i` has token `LISTENER_BASE - i`.
const LISTENER_BASE: usize = usize::MAX - 1;
/// Most listeners; connection keys stay below `LISTENER_BASE - MAX_LISTENERS`.
const MAX_LISTENERS: usize = 1024;
/// How long accepting pauses after EMFILE/ENFILE/ENOBUFS/ENOMEM.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Input/output rounds per connection per wake-up before others get their turn.
const MAX_ROUNDS: usize = 32;
/// After the grace period, how long the last `421`s may take to be written.
const FINAL_FLUSH: Duration = Duration::from_secs(2);
/// How long a spool free-space check (one `statvfs`) is trusted.
const STORAGE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// What other threads send a loop.
pub(crate) enum Msg {
    /// A pending hook completed.
    Verdict {
        key: usize,
        serial: u64,
        ticket: u64,
        verdict: Verdict,
    },
    /// A spool thread wrote a connection's writer buffer out and hands the writer back.
    Flushed {
        key: usize,
        serial: u64,
        writer: SpoolWriter,
    },
    /// The end of data was committed (or refused) by the spool or the hook pool.
    Queued {
        key: usize,
        serial: u64,
        decision: Decision,
        notes: Option<(Notes, Notes)>,
    },
}

impl From<ConnId> for Token {
    fn from(id: ConnId) -> Token {
        Token(id.0)
    }
}

/// One loop thread's state.
pub(crate) struct Worker {
    index: usize,
    pub(crate) poll: Poll,
    pub(crate) waker: Arc<Waker>,
    pub(crate) tx: Sender<Msg>,
    rx: Receiver<Msg>,
    pub(crate) listeners: Vec<TcpListener>,
    /// Each listener's own address when it is bound to one IP address: the local address of
    /// every connection it accepts (no `getsockname` per connection). `None` for a wildcard
    /// address, where the connection's own address is asked for.
    listener_addrs: Vec<Option<SocketAddr>>,
    pub(crate) conns: Slab<Conn>,
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    pub(crate) shared: Arc<Shared>,
    serial: u64,
    pub(crate) ticket: u64,
    /// Accepting stopped (cap reached or back-off) and must be retried.
    pub(crate) accept_blocked: bool,
    accept_paused_until: Option<Instant>,
    /// Connections to drive again (they ran out of rounds).
    again: Vec<(usize, u64)>,
    pub(crate) grace: Option<Instant>,
    /// The spool had room for a message of the size limit at the last check.
    storage_ok: bool,
    /// When the free space is checked next.
    storage_check_at: Instant,
    /// The one read buffer of the loop: connections keep only the bytes not yet consumed.
    scratch: Box<[u8]>,
}

impl Worker {
    pub(crate) fn new(
        index: usize,
        shared: Arc<Shared>,
        listeners: Vec<std::net::TcpListener>,
    ) -> Result<Worker, ServerError> {
        let poll = Poll::new().map_err(|e| ServerError::io("epoll", e))?;
        let waker =
            Arc::new(Waker::new(poll.registry(), WAKER).map_err(|e| ServerError::io("waker", e))?);
        if listeners.len() > MAX_LISTENERS {
            return Err(ServerError::io(
                "listeners",
                io::Error::other("too many listeners"),
            ));
        }
        let mut mine = Vec::with_capacity(listeners.len());
        let mut listener_addrs = Vec::with_capacity(listeners.len());
        for (i, l) in listeners.into_iter().enumerate() {
            listener_addrs.push(l.local_addr().ok().filter(|a| !a.ip().is_unspecified()));
            let mut l = TcpListener::from_std(l);
            poll.registry()
                .register(&mut l, Token(LISTENER_BASE - i), Interest::READABLE)
                .map_err(|e| ServerError::io("register listener", e))?;
            mine.push(l);
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        Ok(Worker {
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
            index,
            poll,
            waker,
            tx,
            rx,
            listeners: mine,
            listener_addrs,
            conns: Slab::new(),
            timers: BinaryHeap::new(),
            shared,
            serial: 0,
            ticket: 1,
            accept_blocked: false,
            accept_paused_until: None,
            again: Vec::new(),
            grace: None,
            storage_ok: true,
            storage_check_at: Instant::now(),
        })
    }

    pub(crate) fn index(&self) -> usize {
        self.index
    }

    pub(crate) fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
    }

    /// The loop. Returns after a shutdown, when every connection is gone.
    pub(crate) fn run(mut self) -> Result<(), ServerError> {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            if self.shared.control.stopping() && self.grace.is_none() {
                self.begin_shutdown(now);
            }
            if let Some(grace) = self.grace {
                self.shutdown_tick(now);
                if self.conns.is_empty() || now >= grace + FINAL_FLUSH {
                    break;
                }
            }
            let timeout = self.poll_timeout(now);
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(ServerError::io("epoll_wait", e));
            }
            let now = Instant::now();
            self.check_storage(now);
            for ev in events.iter() {
                match ev.token() {
                    WAKER => {}
                    Token(t) if t <= LISTENER_BASE && t > LISTENER_BASE - MAX_LISTENERS => {
                        self.accept(LISTENER_BASE - t, now);
                    }
                    Token(key) => {
                        let Some(c) = self.conns.get_mut(key) else {
                            continue;
                        };
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            c.read_ready = true;
                        }
                        if ev.is_read_closed() || ev.is_error() {
                            c.read_closed = true;
                        }
                        if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
                            c.write_ready = true;
                        }
                        self.drive(key, now);
                    }
                }
            }
            self.drain_channel(now);
            self.fire_timers(now);
            for (key, serial) in std::mem::take(&mut self.again) {
                if self.conns.get(key).is_some_and(|c| c.serial == serial) {
                    self.drive(key, now);
                }
            }
            self.retry_accept(now);
        }
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.remove(key);
        }
        Ok(())
    }

    /// Refreshes the spool free-space verdict at most once per [`STORAGE_CHECK_INTERVAL`]:
    /// one `statvfs`, off the per-command path. A failed check counts as room (and is
    /// logged): refusing all mail because `statvfs` failed would be worse.
    fn check_storage(&mut self, now: Instant) {
        if now < self.storage_check_at || (self.shared.discard && self.shared.pool.is_none()) {
            // (`[spool] discard` without message hooks writes nothing.)
            return;
        }
        self.storage_check_at = now + STORAGE_CHECK_INTERVAL;
        let limit = self.shared.factory.max_message_size;
        let ok = match self.shared.spool.check_free_space(limit) {
            Ok(()) => true,
            Err(SpoolError::NoSpace {
                available,
                required,
            }) => {
                if self.storage_ok {
                    log::warn!(
                        "spool: {available} bytes free, {required} needed: \
                         answering MAIL with 452 4.3.1"
                    );
                }
                false
            }
            Err(e) => {
                log::warn!("spool free-space check: {e}");
                true
            }
        };
        if ok && !self.storage_ok {
            log::info!("spool: enough free space again");
        }
        self.storage_ok = ok;
    }

    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        if !self.again.is_empty() {
            return Some(Duration::ZERO);
        }
        let mut next = self.timers.peek().map(|Reverse((t, _, _))| *t);
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        if let Some(g) = self.grace {
            // Re-check idle connections regularly while shutting down.
            consider(g.min(now + Duration::from_millis(100)));
        }
        if self.accept_blocked {
            consider(self.accept_paused_until.unwrap_or(now + ACCEPT_BACKOFF));
        }
        next.map(|t| t.saturating_duration_since(now))
    }

    fn drain_channel(&mut self, now: Instant) {
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                Msg::Verdict {
                    key,
                    serial,
                    ticket,
                    verdict,
                } => {
                    if self.conns.get(key).is_some_and(|c| c.serial == serial) {
                        self.on_verdict(key, ticket, verdict, now);
                        self.drive(key, now);
                    }
                }
                Msg::Flushed {
                    key,
                    serial,
                    writer,
                } => match self.conns.get_mut(key) {
                    Some(conn) if conn.serial == serial && conn.writer_away => {
                        conn.writer = Some(writer);
                        conn.writer_away = false;
                        self.drive(key, now);
                    }
                    // The client left meanwhile.
                    _ => self.shared.spool.discard_behind(writer),
                },
                Msg::Queued {
                    key,
                    serial,
                    decision,
                    notes,
                } => {
                    if self.conns.get(key).is_some_and(|c| c.serial == serial) {
                        self.on_queued(key, decision, notes, now);
                        self.drive(key, now);
                    } else if let Decision::Queued(id) = decision {
                        log::warn!("{id}: queued, but the client left before the reply");
                    }
                }
            }
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(Reverse((t, key, serial))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(c) = self.conns.get_mut(key) else {
                continue;
            };
            if c.serial == serial && c.armed == Some(t) {
                c.armed = None;
                c.factory.handle_timeout(now);
                self.drive(key, now);
            }
        }
        // Stale entries (re-armed deadlines) are dropped lazily; rebuild when they pile up.
        if self.timers.len() > 4 * self.conns.len() + 1024 {
            self.timers = self
                .conns
                .iter()
                .filter_map(|(k, c)| c.armed.map(|t| Reverse((t, k, c.serial))))
                .collect();
        }
    }

    fn accept(&mut self, i: usize, now: Instant) {
        if self.grace.is_some() || i >= self.listeners.len() {
            return;
        }
        if self.accept_paused_until.is_some_and(|t| now < t) {
            self.accept_blocked = true;
            return;
        }
        self.accept_paused_until = None;
        loop {
            if !self.shared.limits.has_room() {
                self.accept_blocked = true;
                return;
            }
            match self.listeners[i].accept() {
                Ok((sock, peer)) => self.add(sock, peer, self.listener_addrs[i], now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_resource_error(&e) => {
                    log::warn!("accept: {e}; pausing accepts for {ACCEPT_BACKOFF:?}");
                    self.accept_paused_until = Some(now + ACCEPT_BACKOFF);
                    self.accept_blocked = true;
                    return;
                }
                Err(e) => log::debug!("accept: {e}"),
            }
        }
    }

    fn retry_accept(&mut self, now: Instant) {
        if !self.accept_blocked || self.grace.is_some() {
            return;
        }
        if self.accept_paused_until.is_some_and(|t| now < t) || !self.shared.limits.has_room() {
            return;
        }
        self.accept_blocked = false;
        for i in 0..self.listeners.len() {
            self.accept(i, now);
        }
    }

    fn add(
        &mut self,
        mut sock: TcpStream,
        peer: SocketAddr,
        local: Option<SocketAddr>,
        now: Instant,
    ) {
        if let Err(refusal) = self.shared.limits.acquire(peer.ip()) {
            let text = match refusal {
                Refusal::PerIp => format!("too many connections from {}", peer.ip()),
                Refusal::Full => "too many connections".to_owned(),
            };
            log::info!("refused [{}]:{}: {text}", peer.ip(), peer.port());
            let line = format!(
                "421 4.7.0 {} Error: {text}\r\n",
                self.shared.factory.hostname
            );
            let _ = sock.write(line.as_bytes());
            return;
        }
        let _ = sock.set_nodelay(true);
        let local = local.unwrap_or_else(|| sock.local_addr().unwrap_or(peer));
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        if key >= LISTENER_BASE - MAX_LISTENERS {
            self.shared.limits.release(peer.ip());
            return;
        }
        self.serial += 1;
        let mut factory = Factory::new(self.shared.factory.clone(), peer, local, now);
        factory.set_wall_clock(SystemTime::now());
        // Registered by the first `drive` (its `settle`), with the interest the connection
        // then needs: usually the banner is written at once and only READABLE is asked for,
        // one `epoll_ctl` per connection. Bytes that arrived meanwhile are reported by the
        // registration itself.
        entry.insert(Conn::new(sock, factory, self.serial));
        log::info!("connect from [{}]:{}", peer.ip(), peer.port());
        self.drive(key, now);
    }

    /// Drives a connection through the factory's call order until nothing moves, then
    /// recomputes its interest and deadline, or removes it.
    pub(crate) fn drive(&mut self, key: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.factory.set_wall_clock(SystemTime::now());
        conn.factory.set_storage_available(self.storage_ok);
        let mut rounds = 0;
        loop {
            // Input, body and events until none moves (held input before any flush, so
            // pipelining violations are seen).
            loop {
                let mut progress = self.conns[key].feed_input(now, &mut self.scratch[..]);
                progress |= self.drain_body(key);
                progress |= self.drain_events(key, now);
                if !progress || !self.conns.contains(key) {
                    break;
                }
                rounds += 1;
                if rounds >= MAX_ROUNDS {
                    break;
                }
            }
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            let mut wrote = conn.flush();
            if conn.tls_start && !conn.output_pending() {
                // The `220` is out: from now on the socket speaks TLS.
                conn.tls_start = false;
                match self.shared.tls.as_ref().map(super::tls::TlsLayer::new) {
                    Some(Ok(layer)) => {
                        conn.tls = Some(Box::new(layer));
                        conn.read_ready = true;
                        wrote = true;
                    }
                    Some(Err(e)) => {
                        log::error!("{}: cannot start TLS: {e}", conn.client());
                        conn.dead = true;
                    }
                    None => conn.dead = true,
                }
            }
            if !wrote || rounds >= MAX_ROUNDS {
                break;
            }
            rounds += 1;
        }
        if rounds >= MAX_ROUNDS {
            let serial = self.conns[key].serial;
            self.again.push((key, serial));
        }
        if self.grace.is_some() {
            self.close_if_idle(key);
            if let Some(conn) = self.conns.get_mut(key) {
                conn.flush();
            }
        }
        self.settle(key);
    }

    /// Removes a finished connection, or updates its interest and deadline.
    pub(crate) fn settle(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        if conn.finished() {
            self.remove(key);
            return;
        }
        let wanted = conn.wanted_interest();
        if wanted != conn.registered {
            let token: Token = ConnId(key).into();
            let registry = self.poll.registry();
            let res = match (conn.registered, wanted) {
                (None, Some(i)) => registry.register(&mut conn.sock, token, i),
                (Some(_), Some(i)) => registry.reregister(&mut conn.sock, token, i),
                (Some(_), None) => registry.deregister(&mut conn.sock),
                (None, None) => Ok(()),
            };
            match res {
                Ok(()) => conn.registered = wanted,
                Err(e) => {
                    log::error!("{}: poll registration: {e}", conn.client());
                    self.remove(key);
                    return;
                }
            }
        }
        let deadline = conn.factory.poll_timeout();
        if deadline != conn.armed {
            conn.armed = deadline;
            if let Some(t) = deadline {
                self.timers.push(Reverse((t, key, conn.serial)));
            }
        }
    }

    /// Step 2: decoded body into the spool writer's buffer (no I/O here). A full buffer
    /// goes to a spool thread to be written out (`Spool::flush_behind`); the rest of the
    /// body waits in the factory until the writer is back.
    fn drain_body(&mut self, key: usize) -> bool {
        let conn = &mut self.conns[key];
        if conn.writer_away {
            return false;
        }
        let mut progress = false;
        while let Some(chunk) = conn.factory.poll_body() {
            let len = chunk.len();
            let Some(w) = conn.writer.as_mut() else {
                // No writer (the spool refused the message, or discard mode): drop it.
                conn.factory.consume_body();
                progress = true;
                continue;
            };
            let taken = w.write_buffered(chunk);
            if taken > 0 {
                conn.factory.consume_body_prefix(taken);
                progress = true;
            }
            if taken < len {
                self.flush_behind(key);
                break;
            }
        }
        progress
    }

    /// Sends the connection's writer to a spool thread to write its buffer out; the
    /// writer comes back as [`Msg::Flushed`].
    fn flush_behind(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        let Some(writer) = conn.writer.take() else {
            return;
        };
        conn.writer_away = true;
        let (tx, waker, serial) = (self.tx.clone(), self.waker.clone(), conn.serial);
        self.shared.spool.flush_behind(
            writer,
            Box::new(move |writer| {
                if tx
                    .send(Msg::Flushed {
                        key,
                        serial,
                        writer,
                    })
                    .is_ok()
                {
                    let _ = waker.wake();
                }
            }),
        );
    }

    /// Abandons the connection's message, if one is being written, without blocking.
    pub(crate) fn drop_writer(&mut self, key: usize) {
        if let Some(w) = self.conns[key].writer.take() {
            self.shared.spool.discard_behind(w);
        }
    }

    /// Step 3: events.
    fn drain_events(&mut self, key: usize, now: Instant) -> bool {
        let mut progress = false;
        while let Some(conn) = self.conns.get_mut(key) {
            let Some(event) = conn.factory.poll_event() else {
                break;
            };
            progress = true;
            self.handle_event(key, event, now);
        }
        progress
    }

    fn handle_event(&mut self, key: usize, event: Event, now: Instant) {
        match event {
            Event::MessageStart { envelope, received } => {
                self.message_start(key, &envelope, &received);
            }
            Event::MessageComplete { envelope, stats } => {
                self.message_complete(key, envelope, stats, now);
            }
            Event::MessageAborted { reason } => {
                let conn = &mut self.conns[key];
                log::debug!("{} message aborted: {reason:?}", conn.client());
                conn.spool_error = None;
                self.drop_writer(key);
                let conn = &mut self.conns[key];
                conn.txn_notes.clear();
            }
            Event::Reset => self.conns[key].txn_notes.clear(),
            Event::StartTls => {
                let conn = &mut self.conns[key];
                if self.shared.tls.is_some() {
                    // TLS starts once the `220` is out; whatever the client sent after
                    // STARTTLS in plaintext is dropped (CVE-2011-0411).
                    conn.tls_start = true;
                    conn.inbuf.clear();
                } else {
                    // The factory offers STARTTLS only with TLS configured.
                    log::warn!("{}: STARTTLS without TLS support", conn.client());
                    conn.factory.handle_close();
                }
            }
            Event::Close { reason } => {
                log::debug!("{} closing: {reason:?}", self.conns[key].client());
            }
            Event::DecisionTimeout { kind } => {
                // The factory answered; a late completion finds no waiting hook and is
                // dropped as stale.
                let conn = &mut self.conns[key];
                log::warn!(
                    "{}: a {kind:?} hook did not complete in time; answered by the server",
                    conn.client()
                );
                if matches!(conn.waiting, Waiting::Hook { .. }) {
                    conn.waiting = Waiting::Nothing;
                }
            }
            event if event.needs_decision() => self.decide(key, event, None, now),
            _ => {}
        }
    }

    /// Forgets a connection: aborts its message, runs the disconnect hooks, logs.
    fn remove(&mut self, key: usize) {
        // No `deregister`: closing the socket (its only descriptor) takes it out of the
        // epoll set.
        self.drop_writer(key);
        let mut conn = self.conns.remove(key);
        if self.shared.hooks.disconnect && !conn.disconnected {
            conn.disconnected = true;
            sync_session(&mut conn);
            let Conn {
                session,
                conn_notes,
                txn_notes,
                ..
            } = &mut conn;
            let mut ctx = Ctx::new(session, conn_notes, txn_notes, Disconnect);
            self.shared.registry.dispatch_disconnect(&mut ctx);
        }
        self.shared.limits.release(conn.peer.ip());
        log::info!(
            "disconnect from {} commands={}",
            conn.client(),
            conn.factory.commands()
        );
    }
}

/// Accept errors that mean "out of descriptors or memory": back off instead of spinning.
fn is_resource_error(e: &io::Error) -> bool {
    use rustix::io::Errno;
    let Some(code) = e.raw_os_error() else {
        return false;
    };
    [Errno::MFILE, Errno::NFILE, Errno::NOBUFS, Errno::NOMEM]
        .iter()
        .any(|errno| errno.raw_os_error() == code)
}
