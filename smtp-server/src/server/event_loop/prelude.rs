//! A connection's prelude, before it has a factory: the PROXY header (on a `proxy_protocol`
//! listener), then the TLS handshake (on an implicit-TLS listener). Once both are done the
//! connection starts as any other (`accept.rs`'s `start_conn`): its factory is made with the
//! client's address from the header, under TLS, and only then comes the banner (and whatever
//! waits before it). That is the order on a connection: PROXY header, TLS handshake, banner.
//!
//! Preludes live in their own slab (tokens from [`PRELUDE_BASE`]) with their own deadlines:
//! the header has [`ProxySpec::timeout`](crate::server::listener::ProxySpec), the handshake
//! the listener's command timeout. A missing, malformed, oversize or late header closes the
//! connection without a word (a proxy that sends garbage gets nothing to relay); so does a
//! failed handshake (after its alert).
//!
//! It does not speak SMTP, dispatch hooks or parse the header itself (`server/proxy.rs`).

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Token};

use super::{Loop, PRELUDE_BASE};
use crate::server::common::ConnKey;
use crate::server::limits::Refusal;
use crate::server::proxy::{self, Header, MAX_V1, MAX_V2};
use crate::server::tls::{TlsLayer, TlsRead};

/// Where a connection's prelude stands.
enum Stage {
    /// Reading the PROXY header (bounded by the largest header accepted, plus one read).
    AwaitingProxyHeader { buf: Vec<u8> },
    /// The implicit-TLS handshake runs; `plaintext` holds what the client sent after it.
    AwaitingHandshake {
        layer: Box<TlsLayer>,
        plaintext: Vec<u8>,
    },
}

/// One connection in its prelude.
pub(super) struct Prelude {
    sock: TcpStream,
    key: ConnKey,
    /// The TCP peer, then the client the PROXY header named.
    peer: SocketAddr,
    /// The connection caps count `peer`: from the accept without a PROXY header, from the
    /// header on with one.
    counted: bool,
    /// Our address, then the one the PROXY header named.
    local: SocketAddr,
    listener: usize,
    stage: Stage,
    deadline: Instant,
}

/// What a turn of a prelude came to.
enum Step {
    /// Waiting for the socket.
    Wait,
    /// Done: start the connection.
    Done,
    /// Close it.
    Close,
    /// It was refused and is gone already.
    Gone,
}

impl Loop {
    /// A new connection on a listener with a prelude (its caps already counted for `peer`
    /// unless it starts with a PROXY header).
    pub(super) fn add_prelude(
        &mut self,
        mut sock: TcpStream,
        peer: SocketAddr,
        local: SocketAddr,
        listener: usize,
        now: Instant,
    ) {
        let spec = &self.shared.listeners[listener];
        let counted = spec.proxy.is_none();
        if !counted && self.preludes.len() >= self.shared.limits.max() {
            // Not counted until their header names the client: still never more waiting for
            // one on this loop than `limits.connections`.
            log::warn!(
                "refused [{}]:{}: too many connections waiting for their PROXY header",
                peer.ip(),
                peer.port()
            );
            return;
        }
        let release = |l: &Loop| {
            if counted {
                l.shared.limits.release(peer.ip());
            }
        };
        let (stage, deadline) = match &spec.proxy {
            Some(proxy) => (
                Stage::AwaitingProxyHeader { buf: Vec::new() },
                now + proxy.timeout,
            ),
            None => match self.handshake(listener) {
                Some(stage) => (stage, now + self.settings.factory.command_timeout),
                None => {
                    release(self);
                    return;
                }
            },
        };
        let entry = self.preludes.vacant_entry();
        let slot = entry.key();
        let token = Token(PRELUDE_BASE + slot);
        if slot >= LISTENER_GAP
            || self
                .poll
                .registry()
                .register(&mut sock, token, Interest::READABLE | Interest::WRITABLE)
                .is_err()
        {
            release(self);
            return;
        }
        let key = self.acceptor.next_key(slot);
        entry.insert(Prelude {
            sock,
            key,
            peer,
            counted,
            local,
            listener,
            stage,
            deadline,
        });
        self.prelude_deadlines.arm(deadline, key);
        self.drive_prelude(slot, now);
    }

    /// The handshake stage, with a fresh TLS layer (`None`: none could be made).
    fn handshake(&self, listener: usize) -> Option<Stage> {
        let spec = &self.shared.listeners[listener];
        if !spec.implicit_tls {
            return None;
        }
        let config = self.settings.tls.as_ref()?;
        match TlsLayer::new(config) {
            Ok(layer) => Some(Stage::AwaitingHandshake {
                layer: Box::new(layer),
                plaintext: Vec::new(),
            }),
            Err(e) => {
                log::error!("cannot start TLS: {e}");
                None
            }
        }
    }

    /// A poller event for prelude `slot` (its token less [`PRELUDE_BASE`]).
    pub(super) fn prelude_event(&mut self, slot: usize, now: Instant) {
        if self.preludes.contains(slot) {
            self.drive_prelude(slot, now);
        }
    }

    /// The prelude deadlines that came up: those still armed close their connection.
    pub(super) fn fire_prelude_timers(&mut self, now: Instant) {
        while let Some((t, key)) = self.prelude_deadlines.pop_due(now) {
            let Some(p) = self.preludes.get(key.slot) else {
                continue;
            };
            if p.key == key && p.deadline == t {
                let what = match p.stage {
                    Stage::AwaitingProxyHeader { .. } => "no PROXY header in time",
                    Stage::AwaitingHandshake { .. } => "TLS handshake timed out",
                };
                log::info!("[{}]:{}: {what}; closed", p.peer.ip(), p.peer.port());
                self.close_prelude(key.slot);
            }
        }
        let preludes = &self.preludes;
        self.prelude_deadlines.compact(preludes.len(), || {
            preludes.iter().map(|(_, p)| (p.deadline, p.key)).collect()
        });
    }

    /// Shutdown: every connection still in its prelude is closed.
    pub(super) fn close_preludes(&mut self) {
        let slots: Vec<usize> = self.preludes.iter().map(|(k, _)| k).collect();
        for slot in slots {
            self.close_prelude(slot);
        }
    }

    fn close_prelude(&mut self, slot: usize) {
        let p = self.preludes.remove(slot);
        if p.counted {
            self.shared.limits.release(p.peer.ip());
        }
        // Dropping the socket (its only descriptor) takes it out of the epoll set.
    }

    /// Reads and handshakes until the socket would block, the prelude is done, or it fails.
    fn drive_prelude(&mut self, slot: usize, now: Instant) {
        loop {
            let step = match self.preludes[slot].stage {
                Stage::AwaitingProxyHeader { .. } => self.read_proxy_header(slot, now),
                Stage::AwaitingHandshake { .. } => self.turn_handshake(slot),
            };
            match step {
                Step::Wait | Step::Gone => return,
                Step::Close => return self.close_prelude(slot),
                Step::Done => {
                    let p = &self.preludes[slot];
                    let header_read = matches!(p.stage, Stage::AwaitingProxyHeader { .. });
                    if !header_read || !self.shared.listeners[p.listener].implicit_tls {
                        return self.finish_prelude(slot, now);
                    }
                    if !self.handshake_after_header(slot, now) {
                        return self.close_prelude(slot);
                    }
                }
            }
        }
    }

    /// The PROXY header is read on an implicit-TLS listener: the handshake comes next, on
    /// its own deadline, and the bytes after the header (the start of the client's TLS
    /// hello) go to it first. `false` when TLS cannot start or those bytes are not TLS.
    fn handshake_after_header(&mut self, slot: usize, now: Instant) -> bool {
        let listener = self.preludes[slot].listener;
        let Some(mut stage) = self.handshake(listener) else {
            return false;
        };
        let timeout = self.settings.factory.command_timeout;
        let p = &mut self.preludes[slot];
        if let (Stage::AwaitingProxyHeader { buf }, Stage::AwaitingHandshake { layer, plaintext }) =
            (&p.stage, &mut stage)
        {
            let mut rest: &[u8] = buf;
            while !rest.is_empty() {
                if !matches!(
                    layer.read(&mut rest, &mut self.scratch, plaintext),
                    TlsRead::Data
                ) {
                    return false;
                }
            }
        }
        p.stage = stage;
        p.deadline = now + timeout;
        self.prelude_deadlines.arm(p.deadline, p.key);
        true
    }

    /// Reads the PROXY header: [`Step::Done`] once it is whole (the prelude then holds only
    /// what followed it, and the client's addresses).
    fn read_proxy_header(&mut self, slot: usize, now: Instant) -> Step {
        let p = &mut self.preludes[slot];
        let Stage::AwaitingProxyHeader { buf } = &mut p.stage else {
            return Step::Close;
        };
        loop {
            match proxy::parse(buf) {
                Ok(Some((header, len))) => {
                    buf.drain(..len);
                    return self.proxy_header_read(slot, header, now);
                }
                Ok(None) => {}
                Err(e) => {
                    log::info!("[{}]:{}: {e}; closed", p.peer.ip(), p.peer.port());
                    return Step::Close;
                }
            }
            if buf.len() >= MAX_V1.max(MAX_V2) {
                log::info!(
                    "[{}]:{}: PROXY header too long; closed",
                    p.peer.ip(),
                    p.peer.port()
                );
                return Step::Close;
            }
            // Never more than the largest header: the bytes after it are the session's.
            let room = MAX_V1.max(MAX_V2) - buf.len();
            match p.sock.read(&mut self.scratch[..room]) {
                Ok(0) => return Step::Close,
                Ok(n) => buf.extend_from_slice(&self.scratch[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Wait,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Step::Close,
            }
        }
    }

    /// A whole header from a trusted proxy: the client it names becomes the connection's
    /// peer, and the caps count it. `UNKNOWN` and `LOCAL` name none: the
    /// connection goes on with the unspecified address, which no trusted network holds.
    fn proxy_header_read(&mut self, slot: usize, header: Header, now: Instant) -> Step {
        let p = &mut self.preludes[slot];
        let proxy = p.peer;
        let (client, local) = match header {
            Header::Proxied {
                source,
                destination,
            } => (source, destination),
            Header::Unknown => {
                let unspecified = match proxy.ip() {
                    IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                };
                (SocketAddr::new(unspecified, 0), p.local)
            }
        };
        log::info!(
            "[{}]:{}: PROXY header: client [{}]:{}{}",
            proxy.ip(),
            proxy.port(),
            client.ip(),
            client.port(),
            if header == Header::Unknown {
                " (LOCAL or UNKNOWN: no client address)"
            } else {
                ""
            }
        );
        p.peer = client;
        p.local = local;
        if let Err(refusal) = self.shared.limits.acquire(client.ip(), now) {
            let text = match refusal {
                Refusal::PerIp => format!("too many connections from {}", client.ip()),
                Refusal::Rate => format!("too many connections per minute from {}", client.ip()),
                Refusal::Full => "too many connections".to_owned(),
            };
            log::info!("refused [{}]:{}: {text}", client.ip(), client.port());
            if !self.shared.listeners[p.listener].implicit_tls {
                let line = format!(
                    "421 4.7.0 {} Error: {text}\r\n",
                    self.settings.factory.hostname
                );
                let _ = io::Write::write(&mut p.sock, line.as_bytes());
            }
            self.preludes.remove(slot);
            return Step::Gone;
        }
        p.counted = true;
        Step::Done
    }

    /// One turn of the handshake: read records, write records, and [`Step::Done`] when it
    /// has completed.
    fn turn_handshake(&mut self, slot: usize) -> Step {
        let p = &mut self.preludes[slot];
        let Stage::AwaitingHandshake { layer, plaintext } = &mut p.stage else {
            return Step::Close;
        };
        loop {
            let read = layer.read(&mut p.sock, &mut self.scratch, plaintext);
            let failed = match read {
                TlsRead::Data => false,
                TlsRead::WouldBlock => {
                    if let Err(e) = layer.write_out(&mut p.sock) {
                        log::debug!("[{}]:{}: write: {e}", p.peer.ip(), p.peer.port());
                        return Step::Close;
                    }
                    if !layer.is_handshaking() {
                        return Step::Done;
                    }
                    return Step::Wait;
                }
                TlsRead::Closed | TlsRead::Io(_) => return Step::Close,
                TlsRead::Failed(e) => {
                    log::info!(
                        "[{}]:{}: TLS handshake failed: {e}",
                        p.peer.ip(),
                        p.peer.port()
                    );
                    true
                }
            };
            // Answer the client (or send the alert) before reading on.
            let wrote = layer.write_out(&mut p.sock);
            if failed || wrote.is_err() {
                return Step::Close;
            }
            if !layer.is_handshaking() {
                // Records still to write (session tickets) go out with the connection's
                // first flush; reading on here could buffer the client's data without bound.
                return Step::Done;
            }
        }
    }

    /// The prelude is over: the connection starts, with its client and its TLS layer.
    fn finish_prelude(&mut self, slot: usize, now: Instant) {
        let mut p = self.preludes.remove(slot);
        if self.poll.registry().deregister(&mut p.sock).is_err() {
            if p.counted {
                self.shared.limits.release(p.peer.ip());
            }
            return;
        }
        let (tls, held) = match p.stage {
            Stage::AwaitingProxyHeader { buf } => (None, buf),
            Stage::AwaitingHandshake { layer, plaintext } => {
                let info = layer.info();
                log::info!(
                    "[{}]:{}: TLS established (implicit): {} {}{}",
                    p.peer.ip(),
                    p.peer.port(),
                    info.protocol,
                    info.cipher,
                    layer.sni().map(|n| format!(" sni={n}")).unwrap_or_default()
                );
                (Some(*layer), plaintext)
            }
        };
        self.start_conn(p.sock, p.peer, p.local, p.listener, tls, held, now);
    }
}

/// Prelude slots stay below this, so their tokens stay below the listeners'.
const LISTENER_GAP: usize = super::LISTENER_BASE - super::MAX_LISTENERS - PRELUDE_BASE;
