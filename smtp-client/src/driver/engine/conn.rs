//! One engine connection: a [`Transport`], the [`Session`] it drives, and the message it
//! carries. It reads, writes and runs STARTTLS; which message it carries and when it closes
//! are the [dispatcher](super::dispatch)'s decisions, not its own.

use std::io::ErrorKind;
use std::time::Instant;

use super::destination::{NextHop, PoolKey};
use super::dispatch::ConnId;
use super::transport::Transport;
use super::TlsSetup;
use crate::error::Error;
use crate::message::MessageId;
use crate::registry::Builtin;
use crate::session::Session;

/// What a connection does for the dispatcher, named after what it awaits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Work {
    /// Not ready yet, or ready and the dispatcher not told so.
    Unoffered,
    /// The dispatcher was told the connection is ready: a job, or a close.
    AwaitJob,
    /// A message is in flight in the session: its outcome.
    AwaitOutcome {
        /// Its id in the session.
        id: MessageId,
        /// Its body was (or may have been) handed to the server.
        body_sent: bool,
        /// The connection broke before the body was sent: the message may go to another
        /// connection.
        retryable: bool,
    },
}

/// One connection of the slab.
#[derive(Debug)]
pub(super) struct Conn {
    /// The dispatcher's id for it, and its pool: the server it goes to and how.
    pub(super) id: ConnId,
    pub(super) pool: PoolKey,
    pub(super) transport: Transport,
    pub(super) session: Session,
    /// STARTTLS's configuration and server name, when the session may use TLS.
    tls: Option<TlsSetup>,
    /// The TCP connect finished.
    pub(super) connected: bool,
    /// When the TCP connect is given up.
    pub(super) connect_deadline: Instant,
    /// The session got ready for a message at least once.
    pub(super) ready_once: bool,
    /// What the connection does for the dispatcher.
    pub(super) work: Work,
    /// Messages handed to this connection.
    pub(super) deliveries: u32,
    /// The TLS handshake runs and the session was not told its end yet.
    handshaking: bool,
}

impl Conn {
    pub(super) fn new(
        id: ConnId,
        pool: PoolKey,
        transport: Transport,
        session: Session,
        tls: Option<TlsSetup>,
        connect_deadline: Instant,
    ) -> Self {
        Conn {
            id,
            pool,
            transport,
            session,
            tls,
            connected: false,
            connect_deadline,
            ready_once: false,
            work: Work::Unoffered,
            deliveries: 0,
            handshaking: false,
        }
    }

    /// The server it goes to.
    pub(super) fn hop(&self) -> &NextHop {
        &self.pool.hop
    }

    /// When the loop must look at this connection again: its session's reply deadline, or
    /// the connect timeout while connecting.
    pub(super) fn deadline(&self) -> Option<Instant> {
        let at = self.session.poll_timeout();
        if self.connected {
            return at;
        }
        Some(at.map_or(self.connect_deadline, |a| a.min(self.connect_deadline)))
    }

    /// Ready for the next message: the session waits for one and nothing is in flight.
    pub(super) fn is_ready(&self) -> bool {
        self.connected && !matches!(self.work, Work::AwaitOutcome { .. }) && self.session.is_idle()
    }

    /// Writes the session's output until it is all out or the socket is full (TLS records
    /// held back by a full socket first).
    pub(super) fn flush(&mut self, now: Instant) {
        if self.connected {
            if let Err(e) = self.transport.flush() {
                if self.handshaking {
                    // A reset while sending the handshake: the handshake failed.
                    self.broken(now, |s, now| s.handle_tls_failed(e, now));
                } else {
                    self.broken(now, |s, now| s.handle_io_error(e, now));
                }
                return;
            }
        }
        if !self.connected {
            return;
        }
        while let Some(bytes) = self.session.poll_transmit() {
            match self.transport.write(bytes) {
                Ok(0) => {
                    self.broken(now, |s, now| s.handle_io_error("write returned 0", now));
                    return;
                }
                Ok(n) => self.session.advance_transmit(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.broken(now, |s, now| s.handle_io_error(e, now));
                    return;
                }
            }
        }
    }

    /// Reads what the server sent into `scratch` and feeds it to the session. `drain`: read
    /// until the socket would block (else a short read counts as drained, which epoll's edge
    /// triggering makes safe: a later arrival raises a new event). Under TLS it always
    /// drains: rustls may hold decrypted bytes the socket will not signal again.
    pub(super) fn read(&mut self, scratch: &mut [u8], drain: bool, now: Instant) {
        while !self.session.is_done() {
            let read = self.transport.read(scratch);
            if self.handshaking && !self.transport.is_handshaking() {
                // Before any byte read through TLS reaches the session.
                self.handshaking = false;
                log::debug!("engine: TLS established");
                self.session.handle_tls_established(now);
            }
            match read {
                Ok(0) if self.handshaking => {
                    self.broken(now, |s, now| {
                        s.handle_tls_failed("the server closed the connection", now)
                    });
                    return;
                }
                Ok(0) => {
                    self.broken(now, |s, now| s.handle_eof(now));
                    return;
                }
                Ok(n) => {
                    let input = &scratch[..n];
                    self.before_input();
                    self.session.handle_input(input, now);
                    self.after_input();
                    if n < scratch.len() && !drain && !self.transport.is_tls() {
                        return;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if self.handshaking => {
                    self.broken(now, |s, now| s.handle_tls_failed(e, now));
                    return;
                }
                Err(e) => {
                    self.broken(now, |s, now| s.handle_io_error(e, now));
                    return;
                }
            }
        }
    }

    /// The session asked for TLS (its `220` to STARTTLS is in): hands it every byte the
    /// server already sent in plaintext (a response injection ends the session), then starts
    /// the handshake, which [`read`](Self::read) and [`flush`](Self::flush) carry on as the
    /// socket is ready. Its time is bounded by the session's reply timeout.
    pub(super) fn start_tls(&mut self, scratch: &mut [u8], now: Instant) {
        let Some((config, name)) = self.tls.clone() else {
            self.broken(now, |s, now| {
                s.handle_tls_failed("no TLS configuration", now)
            });
            return;
        };
        self.read(scratch, true, now);
        if self.session.is_done() {
            return;
        }
        match self.transport.start_tls(config, name) {
            Ok(()) => self.handshaking = true,
            Err(e) => self.broken(now, |s, now| s.handle_tls_failed(e, now)),
        }
    }

    /// The connection failed (`fail` feeds the failure to the session).
    pub(super) fn broken(&mut self, now: Instant, fail: impl FnOnce(&mut Session, Instant)) {
        self.before_input();
        fail(&mut self.session, now);
        self.after_input();
    }

    fn before_input(&mut self) {
        // The body goes out when the session enters `message`, and the state stays there
        // until the final reply: it may have reached the server.
        let in_message = self.session.current_state() == Builtin::Message.id();
        if let Work::AwaitOutcome { body_sent, .. } = &mut self.work {
            *body_sent |= in_message;
        }
    }

    /// After an input that may have ended the session: may the message in flight go to
    /// another connection? Only when the body was not sent, and the session ended because
    /// the connection broke or the server said `421` (closing) without a word on the message.
    fn after_input(&mut self) {
        let Work::AwaitOutcome {
            body_sent: false,
            retryable,
            ..
        } = &mut self.work
        else {
            return;
        };
        if !self.session.is_done() {
            return;
        }
        *retryable = match self.session.error() {
            Some(Error::PeerClosed | Error::Io(_)) => true,
            Some(Error::Refused(reply)) => reply.code() == 421,
            _ => false,
        };
    }

    /// The message `id` of the session is done: returns whether it may go to another
    /// connection, or `None` when it is not the one in flight.
    pub(super) fn message_done(&mut self, id: MessageId) -> Option<bool> {
        match self.work {
            Work::AwaitOutcome {
                id: inflight,
                retryable,
                ..
            } if inflight == id => {
                self.work = Work::Unoffered;
                Some(retryable)
            }
            _ => None,
        }
    }

    /// Notes that the session may have entered `message` (after its output was produced).
    pub(super) fn note_progress(&mut self) {
        self.before_input();
    }
}
