//! The blocking driver: one [`Session`] over a `std::net::TcpStream`.
//!
//! ```no_run
//! use smtp_client::driver::blocking::{Client, Options};
//! use smtp_client::Message;
//!
//! let mut conn = Client::connect("127.0.0.1:25".parse().unwrap(), Options::new("client.example"))?;
//! let outcomes = conn.send(&Message::new("a@example.com", ["b@example.net"], "Subject: hi\r\n\r\nhello\r\n"))?;
//! for o in &outcomes {
//!     println!("{}: {:?} {} ({})", o.recipient, o.kind, o.reply.code(), o.class.name);
//! }
//! conn.quit()?;
//! # Ok::<(), smtp_client::Error>(())
//! ```
//!
//! Reply timeouts come from the [`Policy`](crate::Policy) through the socket's read timeout
//! (the session's [`poll_timeout`](Session::poll_timeout)); writes use
//! [`Policy::data_block_timeout`](crate::Policy::data_block_timeout).
//!
//! STARTTLS runs with rustls when the policy's [`TlsMode`] asks for it;
//! [`Options::tls`] says how the server's certificate is checked (see [`super::tls`]). The
//! handshake has the policy's command timeout.
//!
//! [`Connection::probe_recipient`] asks whether a recipient would be taken (MAIL, RCPT,
//! RSET; never DATA), for recipient verification.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

use super::tls::TlsOptions;
use crate::error::Error;
use crate::message::{Event, Message, MessageId, RecipientOutcome};
use crate::policy::TlsMode;
use crate::registry::StateMachine;
use crate::session::{Session, SessionConfig};

mod probe;

pub use probe::ProbeAnswer;

/// How to connect.
#[derive(Debug, Clone)]
pub struct Options {
    /// The session's configuration (EHLO name, credentials, policy, arguments).
    pub session: SessionConfig,
    /// The TCP connect timeout.
    pub connect_timeout: Duration,
    /// The chain of states; `None` for the built-in chain.
    pub machine: Option<Arc<StateMachine>>,
    /// How STARTTLS checks the server (used when the policy's TLS mode is not `Disabled`).
    pub tls: TlsOptions,
}

impl Options {
    /// Options with this EHLO name, the default policy, a 30 s connect timeout and the
    /// built-in chain.
    pub fn new(helo_name: impl Into<String>) -> Self {
        Options {
            session: SessionConfig::new(helo_name),
            connect_timeout: Duration::from_secs(30),
            machine: None,
            tls: TlsOptions::default(),
        }
    }
}

/// Opens connections.
#[derive(Debug)]
pub struct Client;

impl Client {
    /// Connects to `addr` and runs the session's setup (greeting, EHLO, AUTH, custom
    /// states) until it is ready for a message. Fails with the session's error when the
    /// server refuses it, [`Error::Io`] when the connection cannot be made, or
    /// [`Error::Tls`] when the TLS settings are unusable (checked before connecting) or the
    /// handshake fails.
    pub fn connect(addr: SocketAddr, options: Options) -> Result<Connection, Error> {
        let mode = options.session.policy.tls;
        let tls = if mode == TlsMode::Disabled {
            None
        } else {
            let name = options
                .tls
                .server_name(options.session.peer_name.as_deref(), addr)?;
            Some((options.tls.client_config(mode)?, name))
        };
        let stream = TcpStream::connect_timeout(&addr, options.connect_timeout)
            .map_err(|e| Error::Io(format!("connect to {addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        let mut config = options.session;
        config.peer.get_or_insert(addr);
        config.tls_available = tls.is_some();
        let machine = options.machine.unwrap_or_else(StateMachine::builtin);
        let session = Session::new(machine, config, Instant::now())?;
        let mut conn = Connection {
            stream,
            session,
            buf: vec![0; 16 * 1024],
            done: HashMap::new(),
            tls_setup: tls,
            tls: None,
        };
        conn.drive(|s| s.is_idle());
        if conn.session.is_done() {
            let error = conn.session.error().cloned().unwrap_or(Error::PeerClosed);
            let _ = conn.stream.shutdown(Shutdown::Both);
            return Err(error);
        }
        Ok(conn)
    }
}

/// One open SMTP connection.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    session: Session,
    buf: Vec<u8>,
    done: HashMap<MessageId, Vec<RecipientOutcome>>,
    /// The configuration and server name for STARTTLS, when the policy may use it.
    tls_setup: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    /// The TLS connection, once STARTTLS is done.
    tls: Option<ClientConnection>,
}

impl Connection {
    /// Sends one message and returns one outcome per recipient, in order. A failure of the
    /// connection while sending is reported as deferred outcomes, not as an `Err`; `Err`
    /// means the message could not be queued (the session is over or closing).
    pub fn send(&mut self, message: &Message) -> Result<Vec<RecipientOutcome>, Error> {
        let mut all = self.send_all(std::slice::from_ref(message))?;
        Ok(all.pop().unwrap_or_default())
    }

    /// Sends several messages over this connection, one transaction each, and returns
    /// their outcomes in order.
    pub fn send_all(&mut self, messages: &[Message]) -> Result<Vec<Vec<RecipientOutcome>>, Error> {
        let mut ids = Vec::with_capacity(messages.len());
        for message in messages {
            ids.push(
                self.session
                    .queue_message(message.clone(), Instant::now())?,
            );
        }
        // Runs until every queued message is done (the session is idle again) or over.
        self.drive(|_| false);
        Ok(ids
            .iter()
            .map(|id| self.done.remove(id).unwrap_or_default())
            .collect())
    }

    /// Sends QUIT, waits for the reply and closes the connection. Returns the error that
    /// ended the session early, if any.
    pub fn quit(mut self) -> Result<(), Error> {
        self.session.close(Instant::now());
        self.drive(|_| false);
        if let Some(tls) = self.tls.as_mut() {
            tls.send_close_notify();
            let _ = tls.write_tls(&mut self.stream);
        }
        let _ = self.stream.shutdown(Shutdown::Both);
        match self.session.error() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// `true` once STARTTLS is done and the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The session, for its capabilities and state.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Runs I/O until `stop` holds after a step, or the session is over.
    fn drive(&mut self, stop: impl Fn(&Session) -> bool) {
        loop {
            self.flush();
            self.collect();
            if self.session.is_done() || stop(&self.session) {
                return;
            }
            if self.session.poll_tls_upgrade() {
                self.upgrade();
                continue;
            }
            let now = Instant::now();
            let Some(deadline) = self.session.poll_timeout() else {
                // Nothing due and not asked to stop: only an idle session gets here.
                return;
            };
            let wait = deadline.saturating_duration_since(now);
            if wait.is_zero() {
                self.session.handle_timeout(now);
                continue;
            }
            let _ = self
                .stream
                .set_read_timeout(Some(wait.max(Duration::from_millis(1))));
            match self.read() {
                Ok(0) => self.session.handle_eof(Instant::now()),
                // A TLS peer that closed without close_notify: the same as a plain close.
                Err(e) if e.kind() == ErrorKind::UnexpectedEof && self.tls.is_some() => {
                    self.session.handle_eof(Instant::now())
                }
                Ok(n) => self.session.handle_input(&self.buf[..n], Instant::now()),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    self.session.handle_timeout(Instant::now())
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => self.session.handle_io_error(e, Instant::now()),
            }
        }
    }

    fn flush(&mut self) {
        while let Some(bytes) = self.session.poll_transmit() {
            let timeout = self.session.policy().data_block_timeout;
            let _ = self.stream.set_write_timeout(Some(timeout));
            let len = bytes.len();
            let written = match self.tls.as_mut() {
                Some(tls) => {
                    let mut tls = rustls::Stream::new(tls, &mut self.stream);
                    tls.write_all(bytes).and_then(|()| tls.flush())
                }
                None => self.stream.write_all(bytes),
            };
            self.session.advance_transmit(len);
            if let Err(e) = written {
                self.session.handle_io_error(e, Instant::now());
            }
        }
    }

    fn read(&mut self) -> io::Result<usize> {
        match self.tls.as_mut() {
            Some(tls) => rustls::Stream::new(tls, &mut self.stream).read(&mut self.buf),
            None => self.stream.read(&mut self.buf),
        }
    }

    /// The `220` to STARTTLS is in: hands the session whatever the server sent after it
    /// (a response injection), then runs the handshake.
    fn upgrade(&mut self) {
        let Some((config, name)) = self.tls_setup.clone() else {
            self.session
                .handle_tls_failed("no TLS configuration", Instant::now());
            return;
        };
        if self.stream.set_nonblocking(true).is_ok() {
            let waiting = self.stream.read(&mut self.buf);
            let _ = self.stream.set_nonblocking(false);
            match waiting {
                Ok(0) => self.session.handle_eof(Instant::now()),
                Ok(n) => self.session.handle_input(&self.buf[..n], Instant::now()),
                Err(_) => {}
            }
            if self.session.is_done() {
                return;
            }
        }
        let timeout = self.session.policy().command_timeout;
        let _ = self.stream.set_read_timeout(Some(timeout));
        let _ = self.stream.set_write_timeout(Some(timeout));
        let result = ClientConnection::new(config, name)
            .map_err(|e| e.to_string())
            .and_then(|mut tls| {
                while tls.is_handshaking() {
                    tls.complete_io(&mut self.stream)
                        .map_err(|e| match e.kind() {
                            ErrorKind::WouldBlock | ErrorKind::TimedOut => {
                                format!("no handshake within {timeout:?}")
                            }
                            ErrorKind::UnexpectedEof => "the server closed the connection".into(),
                            _ => e.to_string(),
                        })?;
                }
                Ok(tls)
            });
        match result {
            Ok(tls) => {
                log::debug!(
                    "client: TLS established ({:?}, {:?})",
                    tls.protocol_version(),
                    tls.negotiated_cipher_suite().map(|s| s.suite())
                );
                self.tls = Some(tls);
                self.session.handle_tls_established(Instant::now());
            }
            Err(e) => self.session.handle_tls_failed(e, Instant::now()),
        }
    }

    fn collect(&mut self) {
        while let Some(event) = self.session.poll_event() {
            if let Event::MessageDone { message, outcomes } = event {
                self.done.insert(message, outcomes);
            }
        }
    }
}
