//! Accepting on a loop thread: the listeners (each loop registers its own `dup` of every
//! listener), the connection caps, and the back-off after EMFILE/ENFILE/ENOBUFS/ENOMEM;
//! a new connection enters the slab and is driven once (its banner).
//!
//! It does not drive connections beyond that first time, and does not close listeners on
//! its own: the shutdown does ([`Acceptor::close`]).

use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

use super::{Loop, LISTENER_BASE, MAX_LISTENERS, PRELUDE_BASE};
use crate::config::ListenerRole;
use crate::factory::Factory;
use crate::server::common::ConnKey;
use crate::server::conn::Conn;
use crate::server::limits::Refusal;
use crate::server::tls::TlsLayer;
use crate::server::ServerError;

/// How long accepting pauses after EMFILE/ENFILE/ENOBUFS/ENOMEM.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Whether the loop accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accepting {
    /// Accepting whenever a listener is readable.
    Open,
    /// Accepting stopped at the connection cap (or after a pause): retried when there is
    /// room, at the latest after [`ACCEPT_BACKOFF`].
    AwaitingRoom,
    /// Out of descriptors or memory: no accepting until then.
    PausedUntil(Instant),
}

/// A loop's listeners and whether it accepts.
pub(super) struct Acceptor {
    listeners: Vec<TcpListener>,
    /// Each listener's own address when it is bound to one IP address: the local address of
    /// every connection it accepts (no `getsockname` per connection). `None` for a wildcard
    /// address, where the connection's own address is asked for.
    listener_addrs: Vec<Option<SocketAddr>>,
    state: Accepting,
    /// Connections accepted so far: the serial number of the last one.
    accepted: u64,
}

impl Acceptor {
    /// Registers this loop's copies of the listeners with `registry`.
    pub(super) fn new(
        registry: &Registry,
        listeners: Vec<std::net::TcpListener>,
    ) -> Result<Acceptor, ServerError> {
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
            registry
                .register(&mut l, Token(LISTENER_BASE - i), Interest::READABLE)
                .map_err(|e| ServerError::io("register listener", e))?;
            mine.push(l);
        }
        Ok(Acceptor {
            listeners: mine,
            listener_addrs,
            state: Accepting::Open,
            accepted: 0,
        })
    }

    /// When accepting should be retried, if it stopped.
    pub(super) fn retry_at(&self, now: Instant) -> Option<Instant> {
        match self.state {
            Accepting::Open => None,
            Accepting::AwaitingRoom => Some(now + ACCEPT_BACKOFF),
            Accepting::PausedUntil(t) => Some(t),
        }
    }

    /// Stops accepting for good: the listeners are deregistered and closed.
    pub(super) fn close(&mut self, registry: &Registry) {
        for mut l in self.listeners.drain(..) {
            let _ = registry.deregister(&mut l);
        }
        self.state = Accepting::Open;
    }

    /// The next connection's key in `slot`.
    pub(super) fn next_key(&mut self, slot: usize) -> ConnKey {
        self.accepted += 1;
        ConnKey {
            slot,
            serial: self.accepted,
        }
    }
}

impl Loop {
    /// Listener `i` is readable: accepts until `WouldBlock`, the cap or a resource error.
    pub(super) fn accept(&mut self, i: usize, now: Instant) {
        if self.shutting_down() || i >= self.acceptor.listeners.len() {
            return;
        }
        if let Accepting::PausedUntil(t) = self.acceptor.state {
            if now < t {
                return;
            }
            self.acceptor.state = Accepting::AwaitingRoom;
        }
        loop {
            if !self.shared.limits.has_room() {
                self.acceptor.state = Accepting::AwaitingRoom;
                return;
            }
            match self.acceptor.listeners[i].accept() {
                Ok((sock, peer)) => {
                    self.add(sock, peer, self.acceptor.listener_addrs[i], i, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_resource_error(&e) => {
                    log::warn!("accept: {e}; pausing accepts for {ACCEPT_BACKOFF:?}");
                    self.acceptor.state = Accepting::PausedUntil(now + ACCEPT_BACKOFF);
                    return;
                }
                Err(e) => log::debug!("accept: {e}"),
            }
        }
    }

    /// After each turn: accepting stopped and may go on (room again, the pause over).
    pub(super) fn retry_accept(&mut self, now: Instant) {
        if self.acceptor.state == Accepting::Open || self.shutting_down() {
            return;
        }
        let paused = matches!(self.acceptor.state, Accepting::PausedUntil(t) if now < t);
        if paused || !self.shared.limits.has_room() {
            return;
        }
        self.acceptor.state = Accepting::Open;
        for i in 0..self.acceptor.listeners.len() {
            self.accept(i, now);
        }
    }

    fn add(
        &mut self,
        mut sock: TcpStream,
        peer: SocketAddr,
        local: Option<SocketAddr>,
        listener: usize,
        now: Instant,
    ) {
        let shared = self.shared.clone();
        let Some(spec) = shared.listeners.get(listener) else {
            return;
        };
        if let Some(proxy) = &spec.proxy {
            if !proxy.trusts(peer.ip()) {
                // Only the configured proxies may speak on a PROXY listener.
                log::info!(
                    "refused [{}]:{}: not a trusted proxy (proxy_from)",
                    peer.ip(),
                    peer.port()
                );
                return;
            }
        }
        let prelude = spec.has_prelude();
        // Behind a proxy the caps count the client its header names, not the proxy (whose
        // bursts of new connections would hit `connections_per_ip`): `prelude.rs` counts it.
        if spec.proxy.is_none() && !self.acquire(&mut sock, peer, !spec.implicit_tls, now) {
            return;
        }
        let _ = sock.set_nodelay(true);
        let local = local.unwrap_or_else(|| sock.local_addr().unwrap_or(peer));
        if prelude {
            self.add_prelude(sock, peer, local, listener, now);
        } else {
            self.start_conn(sock, peer, local, listener, None, Vec::new(), now);
        }
    }

    /// Counts a connection from `peer` against the caps; when they refuse it, says why in a
    /// `421 4.7.0` (unless `plaintext` is false: an implicit-TLS client could not read it)
    /// and returns `false`.
    pub(super) fn acquire(
        &self,
        sock: &mut TcpStream,
        peer: SocketAddr,
        plaintext: bool,
        now: Instant,
    ) -> bool {
        let Err(refusal) = self.shared.limits.acquire(peer.ip(), now) else {
            return true;
        };
        let m = &self.shared.metrics;
        let text = match refusal {
            Refusal::PerIp => {
                m.refused_per_ip.inc();
                format!("too many connections from {}", peer.ip())
            }
            Refusal::Rate => {
                m.refused_rate.inc();
                format!("too many connections per minute from {}", peer.ip())
            }
            Refusal::Full => {
                m.refused_full.inc();
                "too many connections".to_owned()
            }
        };
        log::info!("refused [{}]:{}: {text}", peer.ip(), peer.port());
        if plaintext {
            let line = format!(
                "421 4.7.0 {} Error: {text}\r\n",
                self.settings.factory.hostname
            );
            let _ = sock.write(line.as_bytes());
        }
        false
    }

    /// A connection whose caps are counted (for `peer`) and whose prelude, if any, is
    /// over: it enters the slab with its factory and is driven once (its banner).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start_conn(
        &mut self,
        sock: TcpStream,
        peer: SocketAddr,
        local: SocketAddr,
        listener: usize,
        tls: Option<TlsLayer>,
        held: Vec<u8>,
        now: Instant,
    ) {
        let shared = self.shared.clone();
        let Some(spec) = shared.listeners.get(listener) else {
            self.shared.limits.release(peer.ip());
            return;
        };
        let settings = self.settings();
        let entry = self.conns.vacant_entry();
        let slot = entry.key();
        if slot >= PRELUDE_BASE {
            self.shared.limits.release(peer.ip());
            return;
        }
        let key = self.acceptor.next_key(slot);
        let mut factory = Factory::new(spec.factory(&settings.factory), peer, local, now);
        factory.set_wall_clock(SystemTime::now());
        if let Some(layer) = &tls {
            factory.handle_implicit_tls(layer.info());
        }
        // The first message's queue id, for its `Received:` header (the next at its start).
        factory.set_queue_id(crate::spool::QueueId::generate().to_string());
        // Registered by the first `drive` (its `settle`), with the interest the connection
        // then needs: usually the banner is written at once and only READABLE is asked for,
        // one `epoll_ctl` per connection. Bytes that arrived meanwhile are reported by the
        // registration itself.
        let mut conn = Conn::new(sock, factory, key);
        // The session keeps the certificate it started with, whatever a reload brings.
        conn.tls_config = settings.tls.clone();
        let conn = entry.insert(conn);
        let under_tls = tls.is_some();
        conn.after_prelude(tls, held);
        self.shared.metrics.accepted.inc();
        self.shared.metrics.open.inc();
        log::info!(
            "connect from [{}]:{}{}{}",
            peer.ip(),
            peer.port(),
            if spec.role == ListenerRole::Submission {
                " (submission)"
            } else {
                ""
            },
            if under_tls { " (implicit TLS)" } else { "" }
        );
        self.drive(slot, now);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn acceptor() -> (mio::Poll, Acceptor) {
        let poll = mio::Poll::new().unwrap();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let a = Acceptor::new(poll.registry(), vec![l]).unwrap();
        (poll, a)
    }

    #[test]
    fn serials_count_from_one_whatever_the_slot() {
        let (_poll, mut a) = acceptor();
        assert_eq!(a.next_key(0), ConnKey { slot: 0, serial: 1 });
        assert_eq!(a.next_key(0), ConnKey { slot: 0, serial: 2 });
        assert_eq!(a.next_key(5), ConnKey { slot: 5, serial: 3 });
    }

    #[test]
    fn a_stopped_acceptor_says_when_to_retry() {
        let (poll, mut a) = acceptor();
        let now = Instant::now();
        assert_eq!(a.retry_at(now), None);
        a.state = Accepting::AwaitingRoom;
        assert_eq!(a.retry_at(now), Some(now + ACCEPT_BACKOFF));
        let until = now + Duration::from_millis(40);
        a.state = Accepting::PausedUntil(until);
        assert_eq!(a.retry_at(now), Some(until));
        a.close(poll.registry());
        assert_eq!(a.retry_at(now), None);
        assert!(a.listeners.is_empty());
    }

    #[test]
    fn resource_errors_are_told_from_others() {
        let emfile = io::Error::from_raw_os_error(rustix::io::Errno::MFILE.raw_os_error());
        assert!(is_resource_error(&emfile));
        let reset = io::Error::from_raw_os_error(rustix::io::Errno::CONNRESET.raw_os_error());
        assert!(!is_resource_error(&reset));
        assert!(!is_resource_error(&io::Error::other("no errno")));
    }
}
