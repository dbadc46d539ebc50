//! One loop thread: a mio `Poll`, its `Waker`, the listeners, a slab of connections, a heap
//! of deadlines and a channel of completions. See the [module docs](super) for the design.
//!
//! [`Loop`] is split by concern, each file owning its fields: this file the turn of the
//! loop (poll, channel, deadlines, the spool's free space), `accept.rs` the listeners and
//! the accept back-off, `drive.rs` a connection's call order and its removal,
//! `shutdown.rs` the grace period; the hook dispatch (`server/hooks.rs`) and the message
//! path (`server/queue.rs`) are its other two. It does not speak SMTP (the factory does)
//! nor hold a connection's state (its [`Conn`] does).

mod accept;
mod deadlines;
mod drive;
mod prelude;
mod shutdown;

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use mio::{Events, Poll, Token, Waker};
use slab::Slab;

use super::builder::Shared;
use super::common::{ConnKey, LoopSender, Msg};
use super::conn::{Conn, READ_CHUNK};
use super::reload::Settings;
use super::ServerError;
use crate::factory::Decision;
use crate::spool::SpoolError;

use accept::Acceptor;
use deadlines::Deadlines;
use prelude::Prelude;

/// The `Waker`'s token.
const WAKER: Token = Token(usize::MAX);
/// Listener `i` has token `LISTENER_BASE - i`.
const LISTENER_BASE: usize = usize::MAX - 1;
/// Most listeners.
const MAX_LISTENERS: usize = 1024;
/// Connections in their prelude (PROXY header, implicit TLS handshake) have tokens from
/// `PRELUDE_BASE` up (`PRELUDE_BASE + slot`); connection keys stay below it.
const PRELUDE_BASE: usize = 1 << (usize::BITS - 2);
/// After the grace period, how long the last `421`s may take to be written.
const FINAL_FLUSH: Duration = Duration::from_secs(2);
/// How long a spool free-space check (one `statvfs`) is trusted.
const STORAGE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// One loop thread's state: the per-thread mio event loop.
///
/// [`run`](Loop::run) turns it, each turn in this order:
///
/// 1. **Shutdown.** Once the server is stopping: close the listeners and start the grace
///    period; during it, `421` and close idle connections (all of them once it is over),
///    and leave when no connection is left.
/// 2. **Poll** until the earliest deadline: a connection's, the grace period's re-check, the
///    accept retry; zero when connections ran out of rounds last turn.
/// 3. **Free space.** At most once a second, the spool's free space (for `452 4.3.1`).
/// 4. **Events.** A listener accepts until `WouldBlock` (each new connection is driven once:
///    its banner); a connection's readiness is noted and it is driven
///    ([`drive`](Loop::drive): the factory's call order, then interest and deadline).
/// 5. **Channel.** Completions from other threads ([`Msg`]), each for a connection still
///    there ([`ConnKey`]), which is then driven.
/// 6. **Deadlines** that came up: the factory's `handle_timeout`, and a drive.
/// 7. **Again.** Connections that ran out of rounds are driven once more.
/// 8. **Accept retry**, when accepting stopped at the cap or paused after EMFILE.
pub(crate) struct Loop {
    index: usize,
    poll: Poll,
    /// This loop's inbox, for completions sent from other threads.
    pub(super) sender: LoopSender,
    rx: Receiver<Msg>,
    /// The listeners and the accept back-off (`accept.rs`).
    acceptor: Acceptor,
    /// The connections, by slab key.
    pub(super) conns: Slab<Conn>,
    deadlines: Deadlines,
    /// Connections still in their prelude (`prelude.rs`), and their deadlines.
    preludes: Slab<Prelude>,
    prelude_deadlines: Deadlines,
    /// What every loop thread shares.
    pub(super) shared: Arc<Shared>,
    /// The settings new connections take, and their generation (see `server/reload.rs`).
    settings: Arc<Settings>,
    settings_generation: u64,
    /// The next ticket for a pending hook's completion (`hooks.rs`).
    pub(super) ticket: u64,
    /// Connections to drive again (they ran out of rounds).
    again: Vec<ConnKey>,
    /// The end of the grace period, once shutting down (`shutdown.rs`).
    grace: Option<Instant>,
    /// The spool had room for a message of the size limit at the last check.
    storage_ok: bool,
    /// When the free space is checked next.
    storage_check_at: Instant,
    /// The one read buffer of the loop: connections keep only the bytes not yet consumed.
    scratch: Box<[u8]>,
}

impl Loop {
    pub(crate) fn new(
        index: usize,
        shared: Arc<Shared>,
        listeners: Vec<std::net::TcpListener>,
    ) -> Result<Loop, ServerError> {
        let poll = Poll::new().map_err(|e| ServerError::io("epoll", e))?;
        let waker =
            Arc::new(Waker::new(poll.registry(), WAKER).map_err(|e| ServerError::io("waker", e))?);
        let acceptor = Acceptor::new(poll.registry(), listeners)?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let (settings, settings_generation) = shared.live.current();
        Ok(Loop {
            settings,
            settings_generation,
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
            index,
            poll,
            sender: LoopSender::new(tx, waker),
            rx,
            acceptor,
            conns: Slab::new(),
            deadlines: Deadlines::default(),
            preludes: Slab::new(),
            prelude_deadlines: Deadlines::default(),
            shared,
            ticket: 1,
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
        self.sender.waker()
    }

    /// The settings for a new connection: the newest, once a reload swapped them.
    pub(super) fn settings(&mut self) -> Arc<Settings> {
        if let Some((s, generation)) = self.shared.live.newer_than(self.settings_generation) {
            self.settings = s;
            self.settings_generation = generation;
        }
        self.settings.clone()
    }

    /// The connection `key` names, if it is still there (not gone, its slot not reused).
    pub(super) fn live(&self, key: ConnKey) -> bool {
        self.conns.get(key.slot).is_some_and(|c| c.key() == key)
    }

    /// The loop. Returns after a shutdown, when every connection is gone.
    pub(crate) fn run(mut self) -> Result<(), ServerError> {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            if self.shared.control.stopping() && !self.shutting_down() {
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
                    Token(t) if t >= PRELUDE_BASE => self.prelude_event(t - PRELUDE_BASE, now),
                    Token(slot) => {
                        let Some(c) = self.conns.get_mut(slot) else {
                            continue;
                        };
                        c.socket_event(
                            ev.is_readable(),
                            ev.is_read_closed() || ev.is_error(),
                            ev.is_writable() || ev.is_write_closed() || ev.is_error(),
                        );
                        self.drive(slot, now);
                    }
                }
            }
            self.drain_channel(now);
            self.fire_timers(now);
            self.fire_prelude_timers(now);
            for key in std::mem::take(&mut self.again) {
                if self.live(key) {
                    self.drive(key.slot, now);
                }
            }
            self.retry_accept(now);
        }
        let slots: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for slot in slots {
            self.remove(slot);
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
        let limit = self.settings().factory.max_message_size;
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
        let mut next = self.deadlines.next();
        if let Some(t) = self.prelude_deadlines.next() {
            next = Some(next.map_or(t, |n| n.min(t)));
        }
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        if let Some(g) = self.grace {
            // Re-check idle connections regularly while shutting down.
            consider(g.min(now + Duration::from_millis(100)));
        }
        if let Some(t) = self.acceptor.retry_at(now) {
            consider(t);
        }
        next.map(|t| t.saturating_duration_since(now))
    }

    fn drain_channel(&mut self, now: Instant) {
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                Msg::Verdict {
                    key,
                    ticket,
                    verdict,
                } => {
                    if self.live(key) {
                        self.on_verdict(key.slot, ticket, verdict, now);
                        self.drive(key.slot, now);
                    }
                }
                Msg::Flushed { key, writer } => {
                    let unwanted = match self.conns.get_mut(key.slot) {
                        Some(conn) if conn.key() == key => conn.writer_back(writer),
                        // The client left meanwhile.
                        _ => Some(writer),
                    };
                    match unwanted {
                        None => self.drive(key.slot, now),
                        Some(writer) => self.shared.spool.discard_behind(writer),
                    }
                }
                Msg::Queued {
                    key,
                    decision,
                    notes,
                } => {
                    if self.live(key) {
                        self.on_queued(key.slot, decision, notes, now);
                        self.drive(key.slot, now);
                    } else if let Decision::Queued(id) = decision {
                        log::warn!("{id}: queued, but the client left before the reply");
                    }
                }
            }
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some((t, key)) = self.deadlines.pop_due(now) {
            let Some(c) = self.conns.get_mut(key.slot) else {
                continue;
            };
            if c.key() == key && c.deadline_fired(t) {
                c.factory.handle_timeout(now);
                self.drive(key.slot, now);
            }
        }
        // Stale entries (re-armed deadlines) are dropped lazily; rebuild when they pile up.
        let conns = &self.conns;
        self.deadlines.compact(conns.len(), || {
            conns
                .iter()
                .filter_map(|(_, c)| c.armed().map(|t| (t, c.key())))
                .collect()
        });
    }
}
