//! The in-memory pair: the real client [`Session`] against the real server [`Factory`], one
//! simulated clock, the spool on [`MemFs`] (after quinn-proto's test `Pair`).
//!
//! The pair plays both drivers' parts: smtp-server's event loop (input held and resumed,
//! body into the spool, events answered, replies flushed) and smtp-client's blocking driver
//! (transmit, input, end of stream, timeouts). Bytes move only when the pair is driven;
//! time moves only when [`Pair::advance`] moves it. It runs no sockets, no TLS, no plugin
//! hooks (scripted [`Answer`]s stand in for them) and never reads the clock except once, in
//! [`Pair::new`], to pick the starting instant.
//!
//! # How to use it
//!
//! 1. [`Pair::new`] with the server's [`FactoryConfig`], the client's [`SessionConfig`] and
//!    the [`Message`] each connection sends; [`Pair::script`] the hook points a test cares
//!    about (before the connection that should see them).
//! 2. [`Pair::connect`] opens a connection and queues the message; [`Pair::drive`] moves
//!    bytes until both sides are quiet (a transaction completes; the client then idles).
//! 3. [`Pair::close`] makes the client QUIT; [`Pair::advance`] moves the clock, firing each
//!    side's timeouts in deadline order and driving after each.
//! 4. Check [`Pair::transcript`] (bytes, events, outcomes) and [`Pair::stored`] (the
//!    spool). [`Pair::send`] does steps 2 and 3 for one message.

mod record;
mod script;
mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use smtp_client::{Message, RecipientOutcome, Session, SessionConfig, StateMachine, TlsMode};
use smtp_server::factory::{EventKind, Factory, FactoryConfig};
use smtp_server::spool::{MemFs, Spool, SpoolOptions};

pub use record::{Stored, Transcript};
pub use script::Answer;

use script::Script;
use server::{Ends, ServerConn};

/// Where the simulated wall clock starts: 2023-11-14 22:13:20 UTC.
pub const WALL_START: Duration = Duration::from_secs(1_700_000_000);
/// The server's address on the simulated network.
pub const SERVER_ADDR: &str = "192.0.2.25:25";
/// Most rounds one [`Pair::drive`] may take before it calls the pair stuck.
const MAX_STEPS: usize = 100_000;

/// One client and one server in memory. See the [module docs](self) for the call order.
#[derive(Debug)]
pub struct Pair {
    start: Instant,
    now: Instant,
    server_config: FactoryConfig,
    client_config: SessionConfig,
    message: Message,
    script: Script,
    fs: MemFs,
    spool: Spool,
    live: Option<Live>,
    transcripts: Vec<Transcript>,
}

/// The open connection: both ends and what is in flight between them.
#[derive(Debug)]
struct Live {
    server: ServerConn,
    client: Session,
    /// Client writes not yet read by the server, one entry per write.
    to_server: Vec<Vec<u8>>,
    /// Server writes not yet read by the client.
    to_client: Vec<Vec<u8>>,
    /// The client has been told the server closed.
    eof_seen: bool,
    /// The server has been told the client closed.
    close_seen: bool,
}

impl Pair {
    /// A pair whose server runs `server` (its spool on a fresh [`MemFs`]) and whose client
    /// runs `client` (built-in state chain, TLS off: the pair has none), each connection
    /// sending `message`.
    pub fn new(server: FactoryConfig, client: SessionConfig, message: Message) -> Pair {
        let fs = MemFs::new();
        let options = SpoolOptions {
            sync_threads: 1,
            tmp_stock: 0,
            ..SpoolOptions::default()
        };
        let spool = Spool::open_with("/spool", options, Arc::new(fs.clone()))
            .expect("a spool on MemFs opens");
        let mut client = client;
        client.policy.tls = TlsMode::Disabled;
        client.tls_available = false;
        let now = Instant::now();
        Pair {
            start: now,
            now,
            server_config: server,
            client_config: client,
            message,
            script: Script::default(),
            fs,
            spool,
            live: None,
            transcripts: Vec::new(),
        }
    }

    /// Queues `answers` for the events of `kind`, one per event from the next one on, then
    /// [`Answer::CONTINUE`]. Connections opened afterwards decide `kind` (their
    /// [`Decisions`](smtp_server::factory::Decisions) include it).
    pub fn script(&mut self, kind: EventKind, answers: impl IntoIterator<Item = Answer>) {
        self.script.push(kind, answers);
    }

    /// Replaces the message later connections send (a retry sends the deferred
    /// recipients again).
    pub fn set_message(&mut self, message: Message) {
        self.message = message;
    }

    /// The message connections send.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// Opens a new connection (the previous one is dropped where it stands) and queues the
    /// message on its client. Nothing moves until the pair is driven.
    pub fn connect(&mut self) {
        let n = self.transcripts.len() as u16;
        let peer = SocketAddr::from(([192, 0, 2, 1], 40_000 + n));
        let local: SocketAddr = SERVER_ADDR.parse().expect("a socket address");
        let mut config = self.server_config.clone();
        config.decisions = self.script.decisions(config.decisions);
        let server = ServerConn::new(Arc::new(config), peer, local, self.now);
        let mut session_config = self.client_config.clone();
        session_config.peer.get_or_insert(local);
        let mut client = Session::new(StateMachine::builtin(), session_config, self.now)
            .expect("the client configuration is valid");
        client
            .queue_message(self.message.clone(), self.now)
            .expect("a new session takes a message");
        self.transcripts.push(Transcript::new(self.now));
        self.live = Some(Live {
            server,
            client,
            to_server: Vec::new(),
            to_client: Vec::new(),
            eof_seen: false,
            close_seen: false,
        });
    }

    /// Queues one more message on the open connection's client.
    pub fn queue(&mut self, message: Message) {
        let now = self.now;
        let live = self.live.as_mut().expect("a connection is open");
        live.client
            .queue_message(message, now)
            .expect("the session takes a message");
    }

    /// Makes the client QUIT once its queued messages are done.
    pub fn close(&mut self) {
        let now = self.now;
        if let Some(live) = self.live.as_mut() {
            live.client.close(now);
        }
    }

    /// Connects, drives, closes and drives again: one session sending the message. Returns
    /// that session's recipient outcomes.
    pub fn send(&mut self) -> Vec<RecipientOutcome> {
        self.connect();
        self.drive();
        self.close();
        self.drive();
        self.transcript().outcomes().into_iter().cloned().collect()
    }

    /// Moves bytes and events until neither side has anything to do at the current time.
    /// Panics when that never happens.
    pub fn drive(&mut self) {
        for _ in 0..MAX_STEPS {
            if !self.step() {
                return;
            }
        }
        panic!("the pair did not settle:\n{}", self.transcript().text());
    }

    /// One round: the client's writes to the server, the server driven through its call
    /// order, its replies to the client, the closes each way. Returns whether anything
    /// moved.
    pub fn step(&mut self) -> bool {
        let now = self.now;
        let wall = self.wall();
        let (Some(live), Some(record)) = (self.live.as_mut(), self.transcripts.last_mut()) else {
            return false;
        };
        let mut moved = false;
        // The client: transmit, events, and its close once the session is over.
        while let Some(bytes) = live.client.poll_transmit() {
            let n = bytes.len();
            if record.client_closed.is_none() && record.server_closed.is_none() {
                live.to_server.push(bytes.to_vec());
            }
            live.client.advance_transmit(n);
            moved = true;
        }
        if live.client.poll_tls_upgrade() {
            live.client.handle_tls_failed("the pair runs no TLS", now);
            moved = true;
        }
        while let Some(event) = live.client.poll_event() {
            record.client_events.push((now, event));
            moved = true;
        }
        if live.client.is_done() && record.client_closed.is_none() {
            record.client_closed = Some(now);
            moved = true;
        }
        // The server: reads, its close, the call order, transmit.
        let mut ends = Ends {
            script: &mut self.script,
            spool: &self.spool,
            wall,
        };
        for bytes in std::mem::take(&mut live.to_server) {
            live.server.receive(&bytes);
            record.push_read(bytes);
            moved |= live.server.drive(&mut ends, record, now);
        }
        if record.client_closed.is_some() && !live.close_seen {
            live.close_seen = true;
            live.server.factory.handle_close();
            moved = true;
        }
        moved |= live.server.drive(&mut ends, record, now);
        if let Some(bytes) = live.server.transmit() {
            if record.server_closed.is_none() {
                record.push_write(bytes.clone());
                live.to_client.push(bytes);
            }
            moved = true;
        }
        if live.server.factory.is_closed() && record.server_closed.is_none() {
            record.server_closed = Some(now);
            moved = true;
        }
        // The client reads, then the end of stream.
        for bytes in std::mem::take(&mut live.to_client) {
            if record.client_closed.is_none() {
                live.client.handle_input(&bytes, now);
            }
            moved = true;
        }
        if record.server_closed.is_some() && !live.eof_seen && record.client_closed.is_none() {
            live.eof_seen = true;
            live.client.handle_eof(now);
            moved = true;
        }
        moved
    }

    /// Moves the simulated clock forward by `by`, firing every timeout that falls due on
    /// the way (the server's [`Factory::poll_timeout`], the client's
    /// [`Session::poll_timeout`], held answers), each at its own instant and in order, and
    /// driving the pair after each.
    pub fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        self.drive();
        for _ in 0..MAX_STEPS {
            let Some(due) = self.next_deadline().filter(|t| *t <= target) else {
                self.now = target;
                self.drive();
                return;
            };
            self.now = self.now.max(due);
            let now = self.now;
            if let Some(live) = self.live.as_mut() {
                if live.server.factory.poll_timeout().is_some_and(|t| t <= now) {
                    live.server.factory.handle_timeout(now);
                }
                if live.client.poll_timeout().is_some_and(|t| t <= now) {
                    live.client.handle_timeout(now);
                }
            }
            self.drive();
        }
        panic!("a deadline did not move after it fired");
    }

    /// The earliest deadline of the open connection's two ends and its held answer.
    fn next_deadline(&self) -> Option<Instant> {
        let live = self.live.as_ref()?;
        let record = self.transcripts.last()?;
        let server = live
            .server
            .factory
            .poll_timeout()
            .filter(|_| record.server_closed.is_none());
        let client = live
            .client
            .poll_timeout()
            .filter(|_| record.client_closed.is_none());
        [server, client, live.server.held_due()]
            .into_iter()
            .flatten()
            .min()
    }

    /// The simulated time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Simulated time since the pair was made.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The simulated wall-clock time: [`WALL_START`] after the Unix epoch, plus
    /// [`elapsed`](Pair::elapsed).
    pub fn wall(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + WALL_START + self.elapsed()
    }

    /// The latest connection's transcript. Panics before the first [`connect`](Pair::connect).
    pub fn transcript(&self) -> &Transcript {
        self.transcripts.last().expect("a connection was opened")
    }

    /// Every connection's transcript, oldest first.
    pub fn transcripts(&self) -> &[Transcript] {
        &self.transcripts
    }

    /// The open connection's server factory.
    pub fn factory(&self) -> Option<&Factory> {
        self.live.as_ref().map(|l| &l.server.factory)
    }

    /// The open connection's client session.
    pub fn session(&self) -> Option<&Session> {
        self.live.as_ref().map(|l| &l.client)
    }

    /// The server's spool.
    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    /// The in-memory file system under the spool (fault injection, power cuts).
    pub fn fs(&self) -> &MemFs {
        &self.fs
    }

    /// Every message in the spool, oldest first, read back (envelope and bytes).
    pub fn stored(&self) -> Vec<Stored> {
        let list = self.spool.list().expect("the MemFs spool lists");
        list.into_iter()
            .map(|entry| {
                let mut message = Vec::new();
                let mut reader = self.spool.open_message(entry.id).expect("a queued message");
                std::io::Read::read_to_end(&mut reader, &mut message).expect("it reads back");
                Stored {
                    id: entry.id,
                    envelope: self.spool.read_envelope(entry.id).expect("its envelope"),
                    message,
                }
            })
            .collect()
    }
}
