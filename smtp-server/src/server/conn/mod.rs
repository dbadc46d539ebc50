//! One connection on a loop thread: its socket, its factory, and the socket half of the
//! factory's call order (read, write, interest). Its three state machines live beside it:
//! the spool writer ([`spooling`]), STARTTLS ([`tls_state`]) and its lifetime with the
//! socket's readiness ([`lifetime`]).
//!
//! It does not dispatch hooks, talk to the spool or touch the `Poll`'s deadlines: the loop
//! does, with what the connection hands it (a writer to send away, a deadline to arm).

mod lifetime;
mod spooling;
mod tls_state;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hooks_api::{Notes, SessionInfo};
use mio::net::TcpStream;
use mio::{Interest, Registry};

use super::common::{ConnKey, TxnLog, Waiting};
use super::tls::{TlsLayer, TlsRead};
use crate::factory::Factory;
use crate::metrics::{ConnTally, ServerMetrics};
use crate::spool::{SpoolError, SpoolWriter};

use lifetime::{Lifetime, Readiness};
use spooling::Spooling;
use tls_state::TlsState;

/// Bytes read from the socket per `read` call.
pub(crate) const READ_CHUNK: usize = 16 * 1024;

/// One connection.
pub(crate) struct Conn {
    sock: TcpStream,
    /// The sans-IO protocol core.
    pub(crate) factory: Factory,
    key: ConnKey,
    peer: SocketAddr,
    /// Input read from the socket and not yet consumed by the factory.
    inbuf: Vec<u8>,
    ready: Readiness,
    life: Lifetime,
    /// What the connection is parked on, besides its socket.
    pub(crate) waiting: Waiting,
    spooling: Spooling,
    /// The session as hooks see it (synced from the factory before each dispatch).
    pub(crate) session: SessionInfo,
    /// The connection's notes, for hooks.
    pub(crate) conn_notes: Notes,
    /// The transaction's notes, for hooks.
    pub(crate) txn_notes: Notes,
    /// The interest registered with the `Poll`, if registered.
    registered: Option<Interest>,
    /// The deadline armed in the loop's heap.
    armed: Option<Instant>,
    /// The transaction awaiting its commit, for the log line.
    txn: Option<TxnLog>,
    tls: TlsState,
    /// This connection's own counts (bytes read, TLS handshakes), and what of its counts
    /// the loop has published to the metrics.
    counted: ConnTally,
    reported: ConnTally,
    /// STARTTLS for this session: the configuration current when it was accepted.
    pub(crate) tls_config: Option<Arc<rustls::ServerConfig>>,
}

impl Conn {
    pub(crate) fn new(sock: TcpStream, factory: Factory, key: ConnKey) -> Conn {
        let peer = factory.peer();
        let session = SessionInfo::new(peer, factory.local());
        Conn {
            sock,
            factory,
            key,
            peer,
            inbuf: Vec::new(),
            ready: Readiness::default(),
            life: Lifetime::default(),
            waiting: Waiting::Nothing,
            spooling: Spooling::default(),
            session,
            conn_notes: Notes::default(),
            txn_notes: Notes::default(),
            registered: None,
            armed: None,
            txn: None,
            tls: TlsState::default(),
            counted: ConnTally::default(),
            reported: ConnTally::default(),
            tls_config: None,
        }
    }

    /// What the connection's prelude (`event_loop/prelude.rs`) leaves it: the TLS layer of
    /// an implicit-TLS handshake, and the bytes the client sent after its PROXY header or
    /// handshake, which the factory reads first (before the banner: a pipelining error).
    pub(crate) fn after_prelude(&mut self, tls: Option<TlsLayer>, held: Vec<u8>) {
        if let Some(layer) = tls {
            self.tls = TlsState::implicit(layer);
        }
        self.inbuf = held;
    }

    /// Publishes to `metrics` what the connection counted since the last call.
    pub(crate) fn publish(&mut self, metrics: &ServerMetrics) {
        let replies = self.factory.reply_tally();
        let now = ConnTally {
            commands: self.factory.commands(),
            replies: replies.by_class,
            auth_ok: replies.auth_succeeded,
            auth_failed: replies.auth_failed,
            ..self.counted
        };
        self.reported.publish(now, metrics);
    }

    /// The connection's key: its slot and serial number.
    pub(crate) fn key(&self) -> ConnKey {
        self.key
    }

    /// The client's address.
    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// A poller event for the socket (see [`Readiness::event`]).
    pub(crate) fn socket_event(&mut self, readable: bool, read_closed: bool, writable: bool) {
        self.ready.event(readable, read_closed, writable);
    }

    /// Step 1 of the call order: feed held input, or read one chunk. Returns whether
    /// anything happened.
    ///
    /// Reads go into the loop's `scratch` buffer and only the bytes read are copied into the
    /// connection, so an idle connection holds no read buffer. A read that returns less than
    /// `scratch` holds means the socket is drained (the edge-triggered poller reports the
    /// next arrival), which saves the `read` that would only return `WouldBlock`.
    pub(crate) fn feed_input(&mut self, now: Instant, scratch: &mut [u8]) -> bool {
        if self.waiting.is_parked() || self.life.is_closing() {
            return false;
        }
        if self.tls.is_handshaking() {
            // The handshake reads whatever the factory's state.
            return self.read_tls(now, scratch);
        }
        if !self.factory.wants_input() {
            return false;
        }
        if !self.inbuf.is_empty() {
            let n = self.factory.handle_input(&self.inbuf, now);
            self.inbuf.drain(..n);
            if self.inbuf.is_empty() && self.inbuf.capacity() > READ_CHUNK {
                // A large pipelined burst is over: give the memory back.
                self.inbuf = Vec::new();
            }
            return n > 0;
        }
        if self.life.peer_has_closed() {
            if !self.factory.is_closed() {
                self.factory.handle_close();
                return true;
            }
            return false;
        }
        if !self.ready.can_read() {
            return false;
        }
        if self.tls.layer().is_some() {
            return self.read_tls(now, scratch);
        }
        match self.sock.read(scratch) {
            Ok(0) => {
                self.life.peer_closed();
                true
            }
            Ok(n) => {
                self.counted.bytes += n as u64;
                let got = &scratch[..n];
                if log::log_enabled!(log::Level::Debug) {
                    log_trace(self.peer, "<", got);
                }
                self.inbuf.extend_from_slice(got);
                if n < scratch.len() {
                    self.ready.short_read();
                }
                true
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.ready.read_would_block();
                false
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => true,
            Err(e) => {
                log::debug!("[{}]:{} read error: {e}", self.peer.ip(), self.peer.port());
                self.life.peer_closed();
                true
            }
        }
    }

    /// Reads TLS records once: plaintext into `inbuf`, and the factory told when the
    /// handshake completes.
    fn read_tls(&mut self, now: Instant, scratch: &mut [u8]) -> bool {
        if !self.ready.can_read() {
            return false;
        }
        let Some(tls) = self.tls.layer_mut() else {
            return false;
        };
        let before = self.inbuf.len();
        let progress = match tls.read(&mut self.sock, scratch, &mut self.inbuf) {
            TlsRead::Data => true,
            TlsRead::WouldBlock => {
                self.ready.read_would_block();
                false
            }
            TlsRead::Closed => {
                self.life.peer_closed();
                true
            }
            TlsRead::Failed(e) => {
                if self.tls.is_handshaking() {
                    self.counted.tls_failed += 1;
                }
                // The alert rustls queued goes out with the next flush, then the close.
                log::info!("{}: TLS handshake or record error: {e}", self.client());
                self.life.close_when_flushed();
                true
            }
            TlsRead::Io(e) => {
                log::debug!("{}: read error: {e}", self.client());
                self.life.peer_closed();
                true
            }
        };
        self.counted.bytes += (self.inbuf.len() - before) as u64;
        if log::log_enabled!(log::Level::Debug) && self.inbuf.len() > before {
            log_trace(self.peer, "<", &self.inbuf[before..]);
        }
        if self.life.is_closing() {
            return progress;
        }
        let peer = self.peer;
        if let Some(tls) = self.tls.handshake_done() {
            self.counted.tls_ok += 1;
            let info = tls.info();
            log::info!(
                "[{}]:{}: TLS established: {} {}{}",
                peer.ip(),
                peer.port(),
                info.protocol,
                info.cipher,
                tls.sni().map(|n| format!(" sni={n}")).unwrap_or_default()
            );
            if let Err(e) = self.factory.handle_tls_established(info, now) {
                log::error!("[{}]:{}: {e}", peer.ip(), peer.port());
            }
        }
        progress
    }

    /// Step 5 with TLS: the factory's replies into the TLS layer, its records to the socket.
    fn flush_tls(&mut self) -> bool {
        let asked = self.life.is_closing() || self.factory.is_closed();
        let Some(tls) = self.tls.layer_mut() else {
            return false;
        };
        let mut wrote = false;
        while let Some(bytes) = self.factory.poll_transmit() {
            let n = tls.send(bytes);
            if n == 0 {
                break;
            }
            if log::log_enabled!(log::Level::Debug) {
                log_trace(self.peer, ">", &bytes[..n]);
            }
            self.factory.advance_transmit(n);
            wrote = true;
        }
        if asked && self.factory.poll_transmit().is_none() {
            tls.close();
        }
        if self.ready.can_write() && tls.wants_write() {
            match tls.write_out(&mut self.sock) {
                Ok(true) => {}
                Ok(false) => self.ready.write_would_block(),
                Err(e) => self.write_failed(&e),
            }
            wrote = true;
        }
        wrote
    }

    /// Step 5: writes the factory's replies. Returns whether anything was written.
    pub(crate) fn flush(&mut self) -> bool {
        if self.tls.layer().is_some() {
            return self.flush_tls();
        }
        let mut wrote = false;
        while self.ready.can_write() {
            let Some(bytes) = self.factory.poll_transmit() else {
                break;
            };
            match self.sock.write(bytes) {
                Ok(0) => {
                    self.life.write_failed();
                    self.ready.write_would_block();
                }
                Ok(n) => {
                    if log::log_enabled!(log::Level::Debug) {
                        log_trace(self.peer, ">", &bytes[..n]);
                    }
                    self.factory.advance_transmit(n);
                    wrote = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.ready.write_would_block(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.write_failed(&e);
                    return wrote;
                }
            }
        }
        wrote
    }

    /// The socket refused a write: the connection is unusable.
    fn write_failed(&mut self, e: &io::Error) {
        log::debug!("[{}]:{} write error: {e}", self.peer.ip(), self.peer.port());
        self.ready.write_would_block();
        self.life.write_failed();
    }

    /// After a flush: once the `220` to an accepted STARTTLS is out, TLS starts with a layer
    /// made from `config` (no configuration, or a layer that cannot be made: the
    /// connection is done). Returns whether the handshake started.
    pub(crate) fn start_tls_if_reply_written(
        &mut self,
        config: Option<&Arc<rustls::ServerConfig>>,
    ) -> bool {
        if !self.tls.awaits_reply_flush() || self.output_pending() {
            return false;
        }
        // The `220` is out: from now on the socket speaks TLS.
        let layer = match config.map(TlsLayer::new) {
            Some(Ok(layer)) => Some(layer),
            Some(Err(e)) => {
                log::error!("{}: cannot start TLS: {e}", self.client());
                None
            }
            None => None,
        };
        if self.tls.reply_flushed(layer) {
            self.ready.retry_read();
            true
        } else {
            self.life.write_failed();
            false
        }
    }

    /// STARTTLS was accepted: TLS starts once the `220` is written; whatever the client
    /// sent after STARTTLS in plaintext is dropped (CVE-2011-0411).
    pub(crate) fn start_tls_after_reply(&mut self) {
        if self.tls.start_tls_after_reply() {
            self.inbuf.clear();
        }
    }

    /// The name the client asked for in its TLS hello (SNI), under TLS.
    pub(crate) fn tls_sni(&self) -> Option<&str> {
        self.tls.sni()
    }

    /// Whether bytes wait to be written (replies, or TLS records).
    pub(crate) fn output_pending(&self) -> bool {
        self.factory.poll_transmit().is_some()
            || self.tls.layer().is_some_and(TlsLayer::wants_write)
    }

    /// Whether input read from the socket waits for the factory.
    pub(crate) fn input_held(&self) -> bool {
        !self.inbuf.is_empty()
    }

    /// Close once everything queued is written. Returns `true` when this asked first (the
    /// connection was not closing already).
    pub(crate) fn close_when_flushed(&mut self) -> bool {
        self.life.close_when_flushed()
    }

    /// Whether the connection is done: asked to close (by the factory or the driver) and
    /// everything written, the peer gone, or the factory gave up the last replies (a peer
    /// that stopped reading).
    pub(crate) fn finished(&self) -> bool {
        let asked = self.life.is_closing() || self.factory.is_closed();
        self.life.is_dead() || self.factory.is_abandoned() || (asked && !self.output_pending())
    }

    /// The interest the connection needs now: `READABLE` while the factory wants input,
    /// `WRITABLE` while output waits. `None`: nothing (a parked connection).
    pub(crate) fn wanted_interest(&self) -> Option<Interest> {
        let read = self.life.is_open()
            && if self.waiting.is_parked() {
                // Waiting on a hook or the spool: nothing is read meanwhile (`feed_input`
                // refuses), but a read interest already registered stays, so parking and
                // resuming cost no `epoll_ctl`; a client that sends ahead wakes the loop once
                // for nothing.
                self.registered.is_some_and(|i| i.is_readable())
            } else if self.tls.is_handshaking() {
                // The TLS handshake reads.
                true
            } else {
                self.inbuf.is_empty() && self.factory.wants_input()
            };
        let write = self.output_pending();
        match (read, write) {
            (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
            (true, false) => Some(Interest::READABLE),
            (false, true) => Some(Interest::WRITABLE),
            (false, false) => None,
        }
    }

    /// Registers, re-registers or deregisters the socket for the interest it needs now
    /// ([`wanted_interest`](Conn::wanted_interest)), when that changed.
    pub(crate) fn update_interest(&mut self, registry: &Registry) -> io::Result<()> {
        let wanted = self.wanted_interest();
        if wanted == self.registered {
            return Ok(());
        }
        let token = self.key.id().into();
        match (self.registered, wanted) {
            (None, Some(i)) => registry.register(&mut self.sock, token, i)?,
            (Some(_), Some(i)) => registry.reregister(&mut self.sock, token, i)?,
            (Some(_), None) => registry.deregister(&mut self.sock)?,
            (None, None) => {}
        }
        self.registered = wanted;
        Ok(())
    }

    /// The factory's next deadline, when it differs from the one armed: the caller pushes
    /// it into its deadline heap. The deadline is then the armed one.
    pub(crate) fn rearm(&mut self) -> Option<Instant> {
        let deadline = self.factory.poll_timeout();
        if deadline == self.armed {
            return None;
        }
        self.armed = deadline;
        deadline
    }

    /// The armed deadline.
    pub(crate) fn armed(&self) -> Option<Instant> {
        self.armed
    }

    /// A deadline fired: it is the armed one (else stale, and `false`), now disarmed.
    pub(crate) fn deadline_fired(&mut self, at: Instant) -> bool {
        if self.armed != Some(at) {
            return false;
        }
        self.armed = None;
        true
    }

    /// Step 2: decoded body into the spool writer's buffer (no I/O here). Returns whether
    /// any was taken, and the writer when its buffer is full: the caller sends it to a
    /// spool thread (the rest of the body waits in the factory until
    /// [`writer_back`](Conn::writer_back)).
    pub(crate) fn drain_body(&mut self) -> (bool, Option<SpoolWriter>) {
        if self.spooling.is_away() {
            return (false, None);
        }
        let mut progress = false;
        while let Some(chunk) = self.factory.poll_body() {
            let len = chunk.len();
            let Some(w) = self.spooling.writer_mut() else {
                // No writer (the spool refused the message, or discard mode): drop it.
                self.factory.consume_body();
                progress = true;
                continue;
            };
            let taken = w.write_buffered(chunk);
            if taken > 0 {
                self.factory.consume_body_prefix(taken);
                progress = true;
            }
            if taken < len {
                return (progress, self.spooling.writer_sent_away());
            }
        }
        (progress, None)
    }

    /// A spool thread hands a writer back (see [`Spooling::writer_back`]): `None` when it
    /// was awaited, else the writer for the caller to discard.
    #[must_use]
    pub(crate) fn writer_back(&mut self, writer: SpoolWriter) -> Option<SpoolWriter> {
        self.spooling.writer_back(writer)
    }

    /// A new message: its writer, or the spool's refusal (answered at the end of data).
    /// Returns the previous message's writer, if one was still here, to discard.
    #[must_use]
    pub(crate) fn begin_message(
        &mut self,
        writer: Result<SpoolWriter, SpoolError>,
    ) -> Option<SpoolWriter> {
        match writer {
            Ok(w) => self.spooling.begin(w),
            Err(e) => self.spooling.refuse(e),
        }
    }

    /// The message ended without a commit: its writer, if here, to discard.
    #[must_use]
    pub(crate) fn end_message(&mut self) -> Option<SpoolWriter> {
        self.spooling.end()
    }

    /// The end of data: the writer to commit, or the spool's refusal (`None`: no writer).
    pub(crate) fn finish_message(&mut self) -> Result<SpoolWriter, Option<SpoolError>> {
        self.spooling.finish()
    }

    /// Keeps what the transaction's log line needs until the commit answers.
    pub(crate) fn set_txn(&mut self, txn: Option<TxnLog>) {
        self.txn = txn;
    }

    /// The transaction's log line, once.
    pub(crate) fn take_txn(&mut self) -> Option<TxnLog> {
        self.txn.take()
    }

    /// `[ip]:port`, as the log writes a client.
    pub(crate) fn client(&self) -> String {
        format!("[{}]:{}", self.peer.ip(), self.peer.port())
    }
}

/// Logs protocol bytes at DEBUG, one record per line; AUTH exchanges are never logged
/// (an `AUTH` command line shows only its verb and mechanism; lines that look like SASL
/// responses, base64 after a `334`, are not shown).
fn log_trace(peer: SocketAddr, dir: &str, bytes: &[u8]) {
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches(['\r', '\n']);
        let shown = redact(text);
        log::debug!("[{}]:{} {dir} {shown}", peer.ip(), peer.port());
    }
}

/// Hides AUTH payloads: `AUTH PLAIN <b64>` keeps `AUTH PLAIN`; a bare base64 token (a SASL
/// response) becomes `<sasl>`.
fn redact(line: &str) -> String {
    let upper = line.get(..5).map(str::to_ascii_uppercase);
    if upper.as_deref() == Some("AUTH ") {
        let mut parts = line.splitn(3, ' ');
        let verb = parts.next().unwrap_or("");
        let mech = parts.next().unwrap_or("");
        return format!("{verb} {mech} <redacted>");
    }
    if line.starts_with("334 ") {
        return "334 <sasl>".to_owned();
    }
    let b64 = !line.is_empty()
        && line.len() >= 8
        && !line.contains(' ')
        && line
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=');
    if b64 {
        return "<sasl>".to_owned();
    }
    line.to_owned()
}

#[cfg(test)]
mod tests;
