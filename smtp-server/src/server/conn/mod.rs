//! One connection on a loop thread: its socket, its factory, and the socket half of the
//! factory's call order (read, write, interest).

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use hooks_api::{Notes, Pending, SessionInfo};
use mio::net::TcpStream;
use mio::Interest;

use super::tls::{TlsLayer, TlsRead};
use crate::factory::{Event, Factory};
use crate::spool::{SpoolError, SpoolWriter};

/// Bytes read from the socket per `read` call.
pub(crate) const READ_CHUNK: usize = 16 * 1024;

/// What a connection waits for besides its socket.
#[derive(Debug)]
pub(crate) enum Waiting {
    /// Nothing: the socket drives it.
    Nothing,
    /// A hook went pending: the event it was deciding, and where to resume its chain.
    Hook { event: Box<Event>, pending: Pending },
    /// The spool's commit callback, or the hook pool's answer on the end of data.
    Queue,
}

/// One connection.
pub(crate) struct Conn {
    pub sock: TcpStream,
    pub factory: Factory,
    pub serial: u64,
    pub peer: SocketAddr,
    /// Input read from the socket and not yet consumed by the factory.
    pub inbuf: Vec<u8>,
    /// The socket may have more to read (cleared on `WouldBlock`, or on a short read).
    pub read_ready: bool,
    /// The poller reported the peer's half-close or an error: read until `WouldBlock` or
    /// end of file, a short read is no proof of a drained socket any more.
    pub read_closed: bool,
    /// The socket may take more bytes (cleared on `WouldBlock`).
    pub write_ready: bool,
    /// The peer closed its side (or reading failed).
    pub eof: bool,
    /// Close once everything is written.
    pub closing: bool,
    /// Writing failed: the socket is unusable.
    pub dead: bool,
    pub waiting: Waiting,
    /// The message being received, when the spool accepted it.
    pub writer: Option<SpoolWriter>,
    /// The writer is at a spool thread writing its buffer out (`Spool::flush_behind`): the
    /// body waits in the factory (which stops reading once its body buffer is full) until
    /// the writer comes back.
    pub writer_away: bool,
    /// Why the spool refused the message being received: answered at the end of data.
    pub spool_error: Option<SpoolError>,
    pub session: SessionInfo,
    pub conn_notes: Notes,
    pub txn_notes: Notes,
    /// The interest registered with the `Poll`, if registered.
    pub registered: Option<Interest>,
    /// The deadline armed in the loop's heap.
    pub armed: Option<Instant>,
    /// Whether the disconnect hook already ran.
    pub disconnected: bool,
    /// The transaction awaiting its commit, for the log line.
    pub txn: Option<super::queue::TxnLog>,
    /// STARTTLS was accepted: TLS starts once the `220` is written.
    pub tls_start: bool,
    /// The TLS layer, after STARTTLS.
    pub tls: Option<Box<TlsLayer>>,
    /// close_notify was queued.
    pub tls_closed: bool,
}

impl Conn {
    pub(crate) fn new(sock: TcpStream, factory: Factory, serial: u64) -> Conn {
        let peer = factory.peer();
        let session = SessionInfo::new(peer, factory.local());
        Conn {
            sock,
            factory,
            serial,
            peer,
            inbuf: Vec::new(),
            read_ready: true,
            read_closed: false,
            write_ready: true,
            eof: false,
            closing: false,
            dead: false,
            waiting: Waiting::Nothing,
            writer: None,
            writer_away: false,
            spool_error: None,
            session,
            conn_notes: Notes::default(),
            txn_notes: Notes::default(),
            registered: None,
            armed: None,
            disconnected: false,
            txn: None,
            tls_start: false,
            tls: None,
            tls_closed: false,
        }
    }

    /// Step 1 of the call order: feed held input, or read one chunk. Returns whether
    /// anything happened.
    ///
    /// Reads go into the loop's `scratch` buffer and only the bytes read are copied into the
    /// connection, so an idle connection holds no read buffer. A read that returns less than
    /// `scratch` holds means the socket is drained (the edge-triggered poller reports the
    /// next arrival), which saves the `read` that would only return `WouldBlock`.
    pub(crate) fn feed_input(&mut self, now: Instant, scratch: &mut [u8]) -> bool {
        if !matches!(self.waiting, Waiting::Nothing) || self.closing {
            return false;
        }
        if self.tls.as_ref().is_some_and(|t| !t.established) {
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
        if self.eof {
            if !self.factory.is_closed() {
                self.factory.handle_close();
                return true;
            }
            return false;
        }
        if !self.read_ready {
            return false;
        }
        if self.tls.is_some() {
            return self.read_tls(now, scratch);
        }
        match self.sock.read(scratch) {
            Ok(0) => {
                self.eof = true;
                true
            }
            Ok(n) => {
                let got = &scratch[..n];
                if log::log_enabled!(log::Level::Debug) {
                    log_trace(self.peer, "<", got);
                }
                self.inbuf.extend_from_slice(got);
                if n < scratch.len() && !self.read_closed {
                    self.read_ready = false;
                }
                true
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.read_ready = false;
                false
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => true,
            Err(e) => {
                log::debug!("[{}]:{} read error: {e}", self.peer.ip(), self.peer.port());
                self.eof = true;
                true
            }
        }
    }

    /// Reads TLS records once: plaintext into `inbuf`, and the factory told when the
    /// handshake completes.
    fn read_tls(&mut self, now: Instant, scratch: &mut [u8]) -> bool {
        if !self.read_ready {
            return false;
        }
        let Some(tls) = self.tls.as_mut() else {
            return false;
        };
        let before = self.inbuf.len();
        let progress = match tls.read(&mut self.sock, scratch, &mut self.inbuf) {
            TlsRead::Data => true,
            TlsRead::WouldBlock => {
                self.read_ready = false;
                false
            }
            TlsRead::Closed => {
                self.eof = true;
                true
            }
            TlsRead::Failed(e) => {
                // The alert rustls queued goes out with the next flush, then the close.
                log::info!("{}: TLS handshake or record error: {e}", self.client());
                self.eof = true;
                self.closing = true;
                true
            }
            TlsRead::Io(e) => {
                log::debug!("{}: read error: {e}", self.client());
                self.eof = true;
                true
            }
        };
        if log::log_enabled!(log::Level::Debug) && self.inbuf.len() > before {
            log_trace(self.peer, "<", &self.inbuf[before..]);
        }
        let peer = self.peer;
        if let Some(tls) = self.tls.as_mut() {
            if !tls.established && !tls.is_handshaking() && !self.closing {
                tls.established = true;
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
        }
        progress
    }

    /// Step 5 with TLS: the factory's replies into the TLS layer, its records to the socket.
    fn flush_tls(&mut self) -> bool {
        let Some(tls) = self.tls.as_mut() else {
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
        let asked = self.closing || self.factory.is_closed();
        if asked && !self.tls_closed && self.factory.poll_transmit().is_none() {
            tls.close();
            self.tls_closed = true;
        }
        if self.write_ready && tls.wants_write() {
            match tls.write_out(&mut self.sock) {
                Ok(true) => {}
                Ok(false) => self.write_ready = false,
                Err(e) => self.write_failed(&e),
            }
            wrote = true;
        }
        wrote
    }

    /// Step 5: writes the factory's replies. Returns whether anything was written.
    pub(crate) fn flush(&mut self) -> bool {
        if self.tls.is_some() {
            return self.flush_tls();
        }
        let mut wrote = false;
        while self.write_ready {
            let Some(bytes) = self.factory.poll_transmit() else {
                break;
            };
            match self.sock.write(bytes) {
                Ok(0) => {
                    self.dead = true;
                    self.write_ready = false;
                }
                Ok(n) => {
                    if log::log_enabled!(log::Level::Debug) {
                        log_trace(self.peer, ">", &bytes[..n]);
                    }
                    self.factory.advance_transmit(n);
                    wrote = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.write_ready = false,
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
        self.write_ready = false;
        self.eof = true;
        self.closing = true;
        self.dead = true;
    }

    /// Whether bytes wait to be written (replies, or TLS records).
    pub(crate) fn output_pending(&self) -> bool {
        self.factory.poll_transmit().is_some() || self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// Whether the connection is done: asked to close (by the factory or the driver) and
    /// everything written, or the peer gone.
    pub(crate) fn finished(&self) -> bool {
        let asked = self.closing || self.factory.is_closed();
        self.dead || (asked && !self.output_pending())
    }

    /// The interest the connection needs now: `READABLE` while the factory wants input,
    /// `WRITABLE` while output waits. `None`: nothing (a parked connection).
    pub(crate) fn wanted_interest(&self) -> Option<Interest> {
        let parked = !matches!(self.waiting, Waiting::Nothing);
        let read = !self.eof
            && !self.closing
            && if parked {
                // Waiting on a hook or the spool: nothing is read meanwhile (`feed_input`
                // refuses), but a read interest already registered stays, so parking and
                // resuming cost no `epoll_ctl`; a client that sends ahead wakes the loop once
                // for nothing.
                self.registered.is_some_and(|i| i.is_readable())
            } else if self.tls.as_ref().is_some_and(|t| !t.established) {
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
mod tests {
    use super::redact;

    #[test]
    fn auth_payloads_are_redacted() {
        assert_eq!(
            redact("AUTH PLAIN AGJvYgBzZWNyZXQ="),
            "AUTH PLAIN <redacted>"
        );
        assert_eq!(redact("AGJvYgBzZWNyZXQ="), "<sasl>");
        assert_eq!(redact("334 VXNlcm5hbWU6"), "334 <sasl>");
        assert_eq!(redact("MAIL FROM:<a@b>"), "MAIL FROM:<a@b>");
    }
}
