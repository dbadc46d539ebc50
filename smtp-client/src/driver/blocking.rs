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

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::message::{Event, Message, MessageId, RecipientOutcome};
use crate::registry::StateMachine;
use crate::session::{Session, SessionConfig};

/// How to connect.
#[derive(Debug, Clone)]
pub struct Options {
    /// The session's configuration (EHLO name, credentials, policy, arguments).
    pub session: SessionConfig,
    /// The TCP connect timeout.
    pub connect_timeout: Duration,
    /// The chain of states; `None` for the built-in chain.
    pub machine: Option<Arc<StateMachine>>,
}

impl Options {
    /// Options with this EHLO name, the default policy, a 30 s connect timeout and the
    /// built-in chain.
    pub fn new(helo_name: impl Into<String>) -> Self {
        Options {
            session: SessionConfig::new(helo_name),
            connect_timeout: Duration::from_secs(30),
            machine: None,
        }
    }
}

/// Opens connections.
#[derive(Debug)]
pub struct Client;

impl Client {
    /// Connects to `addr` and runs the session's setup (greeting, EHLO, AUTH, custom
    /// states) until it is ready for a message. Fails with the session's error when the
    /// server refuses it, or [`Error::Io`] when the connection cannot be made.
    pub fn connect(addr: SocketAddr, options: Options) -> Result<Connection, Error> {
        let stream = TcpStream::connect_timeout(&addr, options.connect_timeout)
            .map_err(|e| Error::Io(format!("connect to {addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        let mut config = options.session;
        config.peer.get_or_insert(addr);
        let machine = options.machine.unwrap_or_else(StateMachine::builtin);
        let session = Session::new(machine, config, Instant::now())?;
        let mut conn = Connection {
            stream,
            session,
            buf: vec![0; 16 * 1024],
            done: HashMap::new(),
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
        let _ = self.stream.shutdown(Shutdown::Both);
        match self.session.error() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
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
            match self.stream.read(&mut self.buf) {
                Ok(0) => self.session.handle_eof(Instant::now()),
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
            if let Err(e) = self.stream.write_all(&bytes) {
                self.session.handle_io_error(e, Instant::now());
            }
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
