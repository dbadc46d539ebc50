//! The mio engine: many connections to many servers at once, each reused for many messages.
//!
//! ```no_run
//! use std::time::Duration;
//! use smtp_client::driver::engine::{Destination, Engine, NextHop};
//! use smtp_client::{Message, SessionConfig, TlsMode};
//!
//! let engine = Engine::builder("127.0.0.1:25".parse().unwrap())
//!     .connections(20)
//!     .max_deliveries_per_connection(1000)
//!     .idle_timeout(Duration::from_secs(5))
//!     .session(SessionConfig::new("client.example"))
//!     .build()?;
//! let deliveries = engine.deliveries();
//! for i in 0..100 {
//!     let body = format!("Subject: {i}\r\n\r\nhello\r\n");
//!     engine.submit(Message::new("a@example.com", ["b@example.net"], body))?;
//! }
//! // Another destination: two MX hosts in order, TLS required, at most 5 connections.
//! let mx = Destination::new([
//!     NextHop::named("192.0.2.10:25".parse().unwrap(), "mx1.example.org"),
//!     NextHop::named("192.0.2.11:25".parse().unwrap(), "mx2.example.org"),
//! ])
//! .tls(TlsMode::Required)
//! .max_connections(5);
//! let body = "Subject: x\r\n\r\nhi\r\n";
//! engine.submit_to(mx, Message::new("a@example.com", ["c@example.org"], body))?;
//! for delivery in deliveries.iter().take(101) {
//!     let relay = delivery.next_hop.as_ref().map(ToString::to_string);
//!     for o in &delivery.outcomes {
//!         let (t, r) = (delivery.ticket, &o.recipient);
//!         println!("{t:?} {r} relay={relay:?}: {:?} ({})", o.kind, o.class.name);
//!     }
//! }
//! engine.shutdown();
//! # Ok::<(), smtp_client::Error>(())
//! ```
//!
//! # How it works
//!
//! One engine thread owns a `mio::Poll`, a slab of connections and a [`Dispatcher`](dispatch::Dispatcher): the
//! sans-IO scheduler ([`dispatch`]) that decides which message goes on which connection and
//! when connections open and close; the thread only carries out its actions and tells it
//! what happened on the sockets. Each connection drives one sans-IO
//! [`Session`](crate::Session) (the same state machine as the blocking driver, custom states
//! included). [`Engine::submit`] and [`Engine::submit_to`] put a message on a bounded queue
//! (they block while the queue is full: back-pressure) and wake the thread through a
//! `mio::Waker` only when it sleeps.
//!
//! * Every message goes to a [`Destination`]: an ordered list of [`NextHop`]s with its TLS
//!   mode, certificate verification, connection limit and messages per connection
//!   ([`Engine::submit`] uses the builder's address and settings). Connections are pooled
//!   per [`PoolKey`]: a next hop's address, port and name (checked in the certificate and
//!   sent as SNI), TLS mode and verification. A message may go on a ready connection of any
//!   pool its destination's hops have (its earlier hops first), whichever destination opened
//!   it, so two domains whose MX lists name the same server share its connections, and a
//!   destination's connection limit counts the connections of the pool. All of them share
//!   the global [`connections`](EngineBuilder::connections) cap, and an idle connection is
//!   closed when another destination waits for room.
//! * Connections are opened as messages wait, up to the limits, to the destination's
//!   current next hop; each carries one message at a time and takes the oldest one waiting
//!   for its pool as soon as the last is done.
//! * A connection is closed with QUIT after
//!   [`max_deliveries_per_connection`](EngineBuilder::max_deliveries_per_connection) messages,
//!   or after [`idle_timeout`](EngineBuilder::idle_timeout) without work.
//! * When a connection breaks before the message's body was handed to the server (the
//!   server closed an idle connection just as a message was sent on it, a reset, a `421`
//!   before DATA), the message goes back to the queue and is sent on another connection, up
//!   to [`attempts`](EngineBuilder::attempts) times. Once the body was sent, a missing final
//!   reply makes the message *deferred*: it may have been accepted, so it is not sent again
//!   here (as a real MTA would, the caller retries it later).
//! * When connections to a next hop cannot be set up (refused, timed out, greeting or EHLO
//!   refused) [`attempts`](EngineBuilder::attempts) times in a row, new connections go to
//!   the destination's next hop; after its last one, every message waiting for the
//!   destination gets the failure as its outcome (deferred for a connection failure, or the
//!   server's reply), and the next message starts again with the first hop. (The engine
//!   thread takes up to the larger of the queue's capacity and `connections` messages from
//!   the queue, counting those on connections; those beyond wait in the queue and get
//!   connections of their own.)
//! * Every submitted message gets exactly one [`Delivery`] on the channel from
//!   [`Engine::deliveries`], with one [`RecipientOutcome`] per recipient and the next hop
//!   that carried it ([`Delivery::next_hop`], `None` when no connection could be set up).
//! * Deadlines (connect, each session's [`poll_timeout`](crate::Session::poll_timeout), the
//!   dispatcher's idle timeouts) sit in heaps: the thread never scans every connection.
//!
//! # STARTTLS
//!
//! When the session policy's [`TlsMode`] (or the destination's) is not `Disabled`, every
//! session may use STARTTLS ([`SessionConfig::tls_available`] is set), and
//! [`EngineBuilder::tls`] says how the server's
//! certificate is checked (by default as the blocking driver does: verified when TLS is
//! required, encryption only when it is opportunistic; see [`crate::driver::tls`]), unless
//! the destination says otherwise ([`Destination::verify`]). The rustls configuration is
//! made once per TLS mode and verification (the builder's at
//! [`build`](EngineBuilder::build)) and shared by every connection; the name checked and sent
//! as SNI is the next hop's name when it has one, else as the [TLS options](EngineBuilder::tls) say. When a session's `220` to STARTTLS is in, the connection first hands the
//! session every plaintext byte the server already sent (bytes after the `220` are a response
//! injection and end the session), then runs the TLS handshake on the same non-blocking
//! socket as its events come; its time is bounded by the policy's command timeout. A
//! handshake that fails (a certificate that does not verify, for instance) ends the session
//! with [`Error::Tls`]. All of this happens while the connection is being set up, before it
//! takes a message. When TLS is opportunistic, the engine then connects to the same next hop
//! again and goes on in plaintext there, without STARTTLS (RFC 7435; logged at info: a
//! handshake error, alert, close or reset, not a timeout), and the set-up has not failed. Otherwise (TLS required,
//! or a handshake that timed out) the connection counts as a failed set-up: after
//! [`attempts`](EngineBuilder::attempts) in a row the waiting messages are deferred with the
//! reason, and no message is ever sent in plaintext when TLS is required.
//!
//! Each [`Delivery`] says whether its server offered DSN ([`Delivery::dsn_offered`]): a
//! message's [`Dsn`](crate::dsn::Dsn) parameters go only to one that does.
//!
//! Memory: the engine thread reads into one shared 16 KiB buffer; a connection owns its
//! session (a few hundred bytes plus the reply being parsed), the message it carries, and the
//! bytes the kernel would not take yet. Under TLS it also owns a rustls client connection,
//! allocated when STARTTLS starts (a plain connection pays one pointer for it), which holds
//! at most 16 KiB of output waiting for the socket: about 10 KiB more per connection than
//! plain TCP, measured (see `docs/BENCHMARKS.md`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use rustls::pki_types::ServerName;
use rustls::ClientConfig;

use super::tls::TlsOptions;

use crate::error::Error;
use crate::message::{Message, OutcomeKind, RecipientOutcome};
use crate::policy::TlsMode;
use crate::registry::StateMachine;
use crate::session::SessionConfig;

mod conn;
mod deadline;
mod destination;
pub mod dispatch;
mod event_loop;
mod fallback;
mod open;
mod transport;

pub use destination::{Destination, NextHop, PoolKey};
use dispatch::Job;

/// The engine's number for a submitted message, unique within one engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub u64);

/// The final word on one submitted message.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The ticket [`Engine::submit`] returned.
    pub ticket: Ticket,
    /// The message, handed back (for a later retry of deferred recipients, for instance).
    pub message: Message,
    /// One outcome per recipient, in the order of [`Message::recipients`].
    pub outcomes: Vec<RecipientOutcome>,
    /// How many connections the message was given to (0 when no connection could be set up).
    pub attempts: u32,
    /// The next hop of the last connection the message was given to (for a log's
    /// `relay=host[ip]:port`); `None` when no connection could be set up for it.
    pub next_hop: Option<NextHop>,
    /// Whether the server of that last connection offered `DSN` (RFC 3461), so that the
    /// message's [`Dsn`](crate::dsn::Dsn) parameters went to it: a recipient it accepted
    /// that asked for `NOTIFY=SUCCESS` is then the server's to report, otherwise the
    /// sender is owed a `relayed` notification. `false` when no connection was set up.
    pub dsn_offered: bool,
}

impl Delivery {
    /// `true` when every recipient was delivered.
    pub fn is_delivered(&self) -> bool {
        self.outcomes.iter().all(RecipientOutcome::is_delivered)
    }

    /// How many recipients ended with `kind`.
    pub fn count(&self, kind: OutcomeKind) -> usize {
        self.outcomes.iter().filter(|o| o.kind == kind).count()
    }
}

/// Counters of an engine's work so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections opened (connect started).
    pub connections_opened: u64,
    /// Connections that ended before they were ready for a message (connect, greeting,
    /// EHLO or AUTH failed).
    pub connections_failed: u64,
    /// Connections open now.
    pub connections_open: u64,
    /// Messages sent again on another connection after theirs broke before the body.
    pub retries: u64,
    /// Deliveries reported.
    pub deliveries: u64,
}

/// What the engine thread and the submitting threads share.
#[derive(Debug)]
pub(crate) struct Shared {
    waker: mio::Waker,
    /// The engine thread is (about to be) blocked in `poll`: submitters must wake it.
    parked: AtomicBool,
    shutdown: AtomicBool,
    next_ticket: AtomicU64,
    connections_opened: AtomicU64,
    connections_failed: AtomicU64,
    connections_open: AtomicU64,
    retries: AtomicU64,
    deliveries: AtomicU64,
    /// Jobs the engine thread took from the queue that wait for a connection.
    waiting: AtomicU64,
}

impl Shared {
    fn wake(&self) {
        if let Err(e) = self.waker.wake() {
            log::warn!("engine: cannot wake the engine thread: {e}");
        }
    }
}

/// The engine's settings, fixed at [`EngineBuilder::build`].
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) addr: SocketAddr,
    /// The builder's own destination (what [`Engine::submit`] sends to).
    pub(crate) default: Destination,
    pub(crate) connections: usize,
    pub(crate) max_deliveries: u32,
    pub(crate) idle_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) attempts: u32,
    pub(crate) session: SessionConfig,
    pub(crate) machine: Arc<StateMachine>,
    pub(crate) tls: TlsOptions,
}

/// The rustls configuration and server name every connection's STARTTLS uses (made once at
/// [`EngineBuilder::build`]).
pub(crate) type TlsSetup = (Arc<ClientConfig>, ServerName<'static>);

/// Sets up an [`Engine`]. Defaults: 20 connections, 1,000 messages per connection, a 5 s
/// idle timeout, a 30 s connect timeout, 3 attempts, a queue of 1,024 messages, the default
/// [`SessionConfig`] with EHLO name `localhost`, and the built-in chain of states.
#[derive(Debug, Clone)]
pub struct EngineBuilder {
    settings: Settings,
    queue: usize,
}

impl EngineBuilder {
    /// The most connections open at once (at least 1).
    pub fn connections(mut self, n: usize) -> Self {
        self.settings.connections = n.max(1);
        self
    }

    /// Messages sent over one connection before it is closed with QUIT (at least 1).
    pub fn max_deliveries_per_connection(mut self, n: u32) -> Self {
        self.settings.max_deliveries = n.max(1);
        self
    }

    /// How long a connection with nothing to send stays open.
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.settings.idle_timeout = d;
        self
    }

    /// The TCP connect timeout (the greeting then has the policy's greeting timeout).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.settings.connect_timeout = d;
        self
    }

    /// How many connections a message is given to before it is reported deferred, and how
    /// many connection set-ups in a row may fail before the waiting messages fail (at least 1).
    pub fn attempts(mut self, n: u32) -> Self {
        self.settings.attempts = n.max(1);
        self
    }

    /// Every connection's session configuration (EHLO name, credentials, policy, args).
    /// The server's address is filled in when `peer` is unset.
    pub fn session(mut self, config: SessionConfig) -> Self {
        self.settings.session = config;
        self
    }

    /// How STARTTLS checks the server, when the session policy's [`TlsMode`] is not
    /// `Disabled` (default: [`TlsOptions::default`], which verifies the certificate only when
    /// TLS is required; see [`crate::driver::tls`]).
    pub fn tls(mut self, options: TlsOptions) -> Self {
        self.settings.tls = options;
        self
    }

    /// The chain of states every session runs (custom states included).
    pub fn machine(mut self, machine: Arc<StateMachine>) -> Self {
        self.settings.machine = machine;
        self
    }

    /// How many submitted messages may wait for a connection before [`Engine::submit`]
    /// blocks (at least 1).
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue = n.max(1);
        self
    }

    /// Starts the engine thread. Fails with [`Error::Io`] when the poller or the thread
    /// cannot be created, or [`Error::Tls`] when the policy may use TLS and the
    /// [TLS options](Self::tls) are unusable (an unreadable CA file, a bad server name).
    pub fn build(self) -> Result<Engine, Error> {
        let mut settings = self.settings;
        settings.session.peer.get_or_insert(settings.addr);
        let mode = settings.session.policy.tls;
        let tls = if mode == TlsMode::Disabled {
            None
        } else {
            let name = settings
                .tls
                .server_name(settings.session.peer_name.as_deref(), settings.addr)?;
            Some((settings.tls.client_config(mode)?, name))
        };
        settings.session.tls_available = tls.is_some();
        let mut hop = NextHop::new(settings.addr);
        hop.name = settings.session.peer_name.clone();
        settings.default = Destination::new([hop]);
        let poll = mio::Poll::new().map_err(|e| Error::Io(format!("engine poll: {e}")))?;
        let waker = mio::Waker::new(poll.registry(), event_loop::WAKER)
            .map_err(|e| Error::Io(format!("engine waker: {e}")))?;
        let shared = Arc::new(Shared {
            waker,
            parked: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            next_ticket: AtomicU64::new(0),
            connections_opened: AtomicU64::new(0),
            connections_failed: AtomicU64::new(0),
            connections_open: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            deliveries: AtomicU64::new(0),
            waiting: AtomicU64::new(0),
        });
        let (jobs_tx, jobs_rx) = crossbeam_channel::bounded(self.queue);
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        let settings_default = settings.default.clone();
        let event_loop = event_loop::Loop::new(
            poll,
            settings,
            tls,
            jobs_rx,
            done_tx,
            shared.clone(),
            self.queue,
        );
        let thread = std::thread::Builder::new()
            .name("smtp-engine".into())
            .spawn(move || event_loop.run())
            .map_err(|e| Error::Io(format!("engine thread: {e}")))?;
        Ok(Engine {
            default: settings_default,
            jobs: Some(jobs_tx),
            deliveries: done_rx,
            shared,
            thread: Some(thread),
        })
    }
}

/// Many SMTP connections to many servers, driven by one thread. See the [module docs](self).
///
/// Dropping an engine is [`shutdown`](Engine::shutdown).
#[derive(Debug)]
pub struct Engine {
    /// Where [`submit`](Self::submit) sends.
    default: Destination,
    jobs: Option<Sender<Job>>,
    deliveries: Receiver<Delivery>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Engine {
    /// A builder for an engine that sends to `addr`.
    pub fn builder(addr: SocketAddr) -> EngineBuilder {
        EngineBuilder {
            settings: Settings {
                addr,
                default: Destination::to(addr),
                connections: 20,
                max_deliveries: 1000,
                idle_timeout: Duration::from_secs(5),
                connect_timeout: Duration::from_secs(30),
                attempts: 3,
                session: SessionConfig::new("localhost"),
                machine: StateMachine::builtin(),
                tls: TlsOptions::default(),
            },
            queue: 1024,
        }
    }

    /// Queues a message for the builder's server and returns its ticket. Blocks while the
    /// queue is full. Fails with [`Error::Misuse`] once the engine thread has stopped.
    pub fn submit(&self, message: Message) -> Result<Ticket, Error> {
        self.submit_to(self.default.clone(), message)
    }

    /// Queues a message for `destination` and returns its ticket. It may go on any
    /// connection of its next hops' [pools](PoolKey) (shared with other destinations that
    /// name the same servers with the same TLS settings), under its own limits and the
    /// engine's global [`connections`](EngineBuilder::connections); new connections go to
    /// its next hops in order. Blocks
    /// while the queue is full. Fails with [`Error::Misuse`] once the engine thread has
    /// stopped.
    pub fn submit_to(&self, destination: Destination, message: Message) -> Result<Ticket, Error> {
        let jobs = self
            .jobs
            .as_ref()
            .ok_or(Error::Misuse("the engine is shut down"))?;
        let ticket = Ticket(self.shared.next_ticket.fetch_add(1, Ordering::Relaxed));
        let job = Job {
            ticket,
            destination,
            message,
        };
        jobs.send(job)
            .map_err(|_| Error::Misuse("the engine thread has stopped"))?;
        // Pairs with the engine thread's store of `parked` before it checks the queue.
        if self.shared.parked.load(Ordering::SeqCst) {
            self.shared.wake();
        }
        Ok(ticket)
    }

    /// How many submitted messages wait for a connection now: those in the queue, and
    /// those the engine thread took from it that no connection carries yet (it takes at
    /// most [`queue_capacity`](Self::queue_capacity) or `connections` messages, whichever is
    /// more, counting those on a connection).
    pub fn queued(&self) -> usize {
        let taken = self.shared.waiting.load(Ordering::Relaxed) as usize;
        self.jobs.as_ref().map_or(0, Sender::len) + taken
    }

    /// How many messages may wait before [`submit`](Self::submit) blocks.
    pub fn queue_capacity(&self) -> usize {
        self.jobs
            .as_ref()
            .and_then(Sender::capacity)
            .unwrap_or_default()
    }

    /// The outcomes: one [`Delivery`] per submitted message, in the order they end. The
    /// channel is unbounded: keep draining it. It disconnects after [`shutdown`](Self::shutdown)
    /// once every delivery was received.
    pub fn deliveries(&self) -> Receiver<Delivery> {
        self.deliveries.clone()
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            connections_opened: get(&self.shared.connections_opened),
            connections_failed: get(&self.shared.connections_failed),
            connections_open: get(&self.shared.connections_open),
            retries: get(&self.shared.retries),
            deliveries: get(&self.shared.deliveries),
        }
    }

    /// Sends every message already submitted, closes every ready connection with QUIT, and
    /// joins the engine thread. Connections still connecting or waiting for their greeting
    /// once nothing is left to send are dropped without waiting for the server.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.jobs = None;
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.wake();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                log::error!("engine: the engine thread panicked");
            }
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}
