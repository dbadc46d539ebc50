//! The ESMTP message factory (Momentum's `esmtp_message_factory`): one sans-IO state machine
//! per inbound connection.
//!
//! A [`Factory`] is fed bytes, time and decisions and emits bytes, body chunks and events. It
//! never does I/O, never reads the clock (time is an argument; the wall-clock time for the
//! `Received:` header is given with [`Factory::set_wall_clock`]) and never blocks. All SMTP
//! parsing and serialising is done by [`smtp_proto`]. It knows nothing of hooks: the driver
//! runs them and maps their verdicts to [`Decision`]s.
//!
//! # What it implements
//!
//! HELO, EHLO (reply built by the [`Extensions`] registry), MAIL, RCPT, DATA, RSET, NOOP, QUIT,
//! VRFY (`252 2.5.0`), EXPN (`502 5.5.1`), HELP (`214`), AUTH PLAIN/LOGIN (through
//! [`smtp_proto::sasl::SaslServer`], when [`FactoryConfig::auth`] is set), STARTTLS (when
//! [`FactoryConfig::tls_available`]) and plugin verbs ([`Event::Extension`]). Every reply but
//! the banner, the HELO/EHLO replies and `354`/`334` carries an enhanced status code.
//!
//! # Pipelining and synchronisation (RFC 2920, Postfix's behaviour)
//!
//! Commands that arrive together are processed in order, their replies queued in order and
//! flushed together. The reply queue is bounded ([`FactoryConfig::max_queued_replies`],
//! [`FactoryConfig::max_transmit`]): when it is full the factory stops consuming input, so the
//! driver stops reading and TCP pushes back on the client.
//!
//! As Postfix 3.9 does with `smtpd_forbid_unauth_pipelining = yes`, the factory answers `554
//! 5.5.0 Error: SMTP protocol synchronization` and closes when input arrives (a) before the
//! banner has been written, or (b) after a command that must end a pipelined group — HELO,
//! EHLO, DATA, NOOP, VRFY, EXPN, and in a session without EHLO every command — before that
//! command's reply has been written ([`Factory::advance_transmit`] past it). Case (b) covers a
//! message body sent in the same packet as DATA, before `354`. Bytes after STARTTLS are not
//! a synchronisation error: they are discarded (the response-injection defence, CVE-2011-0411).
//! [`FactoryConfig::forbid_pipelining_violations`] turns the checks off.
//!
//! # The message body
//!
//! After `354` the factory decodes the body with [`smtp_proto::data::DataDecoder`] (only
//! CRLF.CRLF ends it) into a bounded buffer ([`FactoryConfig::body_chunk`]) that the driver
//! drains with [`Factory::poll_body`] / [`Factory::consume_body`]: a message of any size costs
//! that buffer and nothing more. When the buffer is full, input stops being consumed. While
//! streaming, the factory counts `Received:` headers in the header section (a few bytes of
//! state). Oversized messages, too many hops and (under `Reject`) bare line endings are
//! answered after the real end of data, so the session stays in sync.
//!
//! CHUNKING is advertised (when [`FactoryConfig::chunking`]) and BDAT (RFC 3030) is the
//! second body phase beside the DATA one (module `bdat`): it copies exactly `size` raw bytes
//! per chunk through the same body buffer, back-pressure, hop counter, size accounting and
//! bare CR/LF policy, emits [`Event::MessageStart`] at the first chunk and
//! [`Event::MessageComplete`] after `LAST`; the construct, decisions and `Received:` header
//! are shared. Only the framing differs. A refused chunk is still read and dropped; a
//! malformed count is `501 5.5.4` and close.
//!
//! # Relay control and DSN
//!
//! With [`FactoryConfig::relay`] set (the server always sets it), every RCPT passes relay
//! control (the `relay` module) after its syntax and the recipient limit and before the RCPT
//! event: a refusal (`554 5.7.1 <address>: Relay access denied`) is final and no hook sees
//! that recipient. DSN (RFC 3461) is advertised and `RET`, `ENVID`, `NOTIFY` and `ORCPT` are
//! kept in the envelope's parameters ([`FactoryConfig::dsn`]).
//!
//! # Modules
//!
//! Events and decisions in `event`, configuration in `config`, the EHLO registry in
//! `extensions`, per-command handling in `commands`, decisions in `decide`, the body in `body`,
//! BDAT in `bdat`, AUTH in `auth`, framing in `input`, the abuse limits (forbidden
//! commands, recipient overshoot, tarpit, messages per session, greeting pause) in `abuse`.

mod abuse;
mod auth;
mod bdat;
mod body;
mod commands;
mod config;
mod decide;
mod error;
mod event;
mod extensions;
mod implicit_tls;
mod input;
mod output;
mod pending;
mod received;
mod relay;
mod replies;
mod session;
mod state;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use smtp_proto::reply::Reply;
use smtp_proto::status::{EnhancedStatus, ErrorReply};

pub use config::{
    AuthConfig, Decisions, FactoryConfig, DEFAULT_BODY_CHUNK, DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_DECISION_TIMEOUT, DEFAULT_HARD_ERROR_LIMIT, DEFAULT_MAX_HOPS,
    DEFAULT_MAX_QUEUED_REPLIES, DEFAULT_MAX_TRANSMIT, DEFAULT_MIN_DATA_RATE,
    DEFAULT_RECIPIENT_OVERSHOOT, DEFAULT_SOFT_ERROR_LIMIT,
};
pub use error::FactoryError;
pub use event::{
    AbortReason, CloseReason, Decided, Decision, Envelope, EnvelopeRecipient, Event, EventKind,
    MessageStats, TlsInfo,
};
pub use extensions::{Builtins, Extension, ExtensionError, Extensions};
pub use received::rfc5322_date;
pub use relay::RelayControl;
pub use session::SessionUpdate;
pub use state::State;

pub use output::ReplyTally;
use output::Transmit;
use pending::Pending;

/// Most events queued before the factory stops consuming input.
const MAX_EVENTS: usize = 64;

/// One inbound ESMTP connection, sans-IO.
///
/// # The driver's call order
///
/// 1. [`Factory::new`] when the connection is accepted. The banner is queued, or, when
///    [`Decisions`] asks for [`EventKind::Connect`], an [`Event::Connect`] awaits a decision first.
/// 2. On every wake-up, in this order:
///    1. **Input.** Read from the socket into your buffer and call
///       [`handle_input(&buf, now)`](Factory::handle_input); drop the bytes it reports
///       consumed and *keep the rest*: the factory stops early when it waits for a decision,
///       when its reply queue or body buffer is full, and leaves the unread bytes to you.
///    2. **Body.** `while let Some(chunk) = f.poll_body() { spool.write(chunk); f.consume_body(); }`
///       (after [`Event::MessageStart`] — `poll_body` yields nothing before it is polled).
///    3. **Events.** `while let Some(ev) = f.poll_event()`: log, and for events where
///       [`Event::needs_decision`] is true run the hooks, inline or on a worker, and answer with
///       [`handle_decision`](Factory::handle_decision). Until then the factory consumes no
///       input ([`State::AsyncHook`]); its only deadline is
///       [`FactoryConfig::decision_timeout`], after which it answers by itself
///       ([`Event::DecisionTimeout`]: drop the late answer). Before answering an
///       [`Event::Extension`] whose handler changed the session, call
///       [`handle_session_update`](Factory::handle_session_update); before answering an
///       [`Event::Helo`], [`hide_extensions`](Factory::hide_extensions) may choose this
///       session's EHLO keywords.
///    4. **Resume.** If you hold unconsumed input and [`wants_input`](Factory::wants_input) is
///       true (a decision arrived, or the transmit queue drained), go back to step 1 with that
///       input before reading more. Do this before flushing the replies the decision produced,
///       so pipelining violations are seen.
///    5. **Transmit.** `while let Some(bytes) = f.poll_transmit() { let n = sock.write(bytes)?;
///       f.advance_transmit(n); }` — stop on `WouldBlock` and wait for writability.
///    6. **Timer.** Arm [`poll_timeout`](Factory::poll_timeout); when it expires call
///       [`handle_timeout(now)`](Factory::handle_timeout), then steps 3 and 5.
/// 3. On [`Event::StartTls`]: flush the `220`, run the TLS handshake (bytes from the socket go
///    to TLS, not to the factory), then [`handle_tls_established`](Factory::handle_tls_established).
/// 4. On [`Event::Close`]: stop reading, flush the transmit queue, close the socket. When the
///    peer closes first, call [`handle_close`](Factory::handle_close); to close it yourself
///    (server shutdown), [`handle_shutdown`](Factory::handle_shutdown), which queues the
///    `421` in order behind the replies already queued.
///
/// Besides: [`set_wall_clock`](Factory::set_wall_clock) and
/// [`set_storage_available`](Factory::set_storage_available) once per wake-up (cheap), and
/// [`commands`](Factory::commands), [`is_esmtp`](Factory::is_esmtp) and the other accessors
/// for logs and the hooks' view of the session.
///
/// Memory: at most one command line ([`Limits::command_line`](smtp_proto::Limits), 2048) or
/// one AUTH line (12288) of input is retained, plus the bounded reply queue, body buffer and
/// event queue. No input makes it panic.
#[derive(Debug)]
pub struct Factory {
    config: Arc<FactoryConfig>,
    peer: SocketAddr,
    local: SocketAddr,
    phase: Phase,
    pending: Option<Pending>,
    out: Transmit,
    events: VecDeque<Event>,
    /// A partial command or AUTH line.
    line: Vec<u8>,
    /// Decoded body bytes for the driver.
    body: Vec<u8>,
    session: Session,
    construct: Option<Construct>,
    errors: u32,
    deadline: Option<Instant>,
    /// Input is a synchronisation error until this many bytes have been written.
    sync_until: Option<u64>,
    /// Where the banner ends in the transmit stream.
    banner_end: Option<u64>,
    /// A `MessageStart` event is queued: body chunks wait behind it.
    start_unpolled: bool,
    wall: SystemTime,
    /// The latest `now` the driver passed in.
    clock: Instant,
    /// When the pending decision times out (`None` for the end of data).
    decision_deadline: Option<Instant>,
    /// Command lines received.
    commands: u64,
    /// Extension keywords not advertised to this session.
    hidden: Vec<String>,
    /// The spool is short of space: MAIL gets `452 4.3.1`.
    storage_low: bool,
    /// A session reset happened: the pending decision's reply ends a pipelining group.
    group_after_reply: bool,
    /// The queue id for the next message's `Received:` header, set by the driver.
    next_queue_id: Option<String>,
    /// The tarpit holds replies and input until then.
    tarpit_until: Option<Instant>,
    /// The greeting pause runs until `deadline`: input before it ends is refused.
    greet_pause: bool,
    /// Messages whose end of data was read.
    messages: u64,
    /// Closed, and the last replies were not read in time: the driver drops the connection.
    abandoned: bool,
}

/// What the factory is reading.
#[derive(Debug)]
enum Phase {
    /// Before the banner (the Connect decision).
    Greeting,
    /// Command lines.
    Command,
    /// Dropping a too-long line through its LF; then this reply.
    Discard(ErrorReply),
    /// SASL response lines.
    Auth(Box<auth::Exchange>),
    /// The DATA body.
    Body(Box<body::BodyReader>),
    /// The octets of a BDAT chunk.
    Chunk(Box<bdat::ChunkRead>),
    /// Waiting for the driver's TLS handshake; input is discarded.
    Tls,
    /// Done; input is discarded.
    Closed,
}

/// Per-connection facts that outlive transactions.
#[derive(Debug, Default)]
struct Session {
    helo: Option<String>,
    esmtp: bool,
    tls: Option<TlsInfo>,
    auth: Option<String>,
    /// Refused at connect time with a 5xx: only QUIT is served (RFC 5321 §3.1).
    refused: bool,
    /// The client's host name, as a session update reported it (XCLIENT NAME).
    client_name: Option<String>,
    /// A HELO name reported by a session update: it replaces the name of later greetings.
    helo_override: Option<String>,
    /// EHLO vs HELO as a session update reported it (XCLIENT PROTO).
    proto: Option<bool>,
}

/// The message construct: the envelope plus what the factory tracks about it.
#[derive(Debug)]
struct Construct {
    env: Envelope,
    rcpt_attempts: usize,
    /// RCPTs refused past the recipient limit.
    rcpt_excess: usize,
    /// The message is sent with BDAT: its state between and during chunks.
    chunks: Option<Box<bdat::Chunked>>,
}

impl Factory {
    /// A factory for a connection from `peer` to `local`, accepted at `now`. The banner is
    /// queued at once unless [`Decisions`] asks for an [`Event::Connect`] first.
    pub fn new(
        config: Arc<FactoryConfig>,
        peer: SocketAddr,
        local: SocketAddr,
        now: Instant,
    ) -> Factory {
        let out = Transmit::new(config.max_queued_replies, config.max_transmit);
        let mut f = Factory {
            sync_until: config.forbid_pipelining_violations.then_some(u64::MAX),
            config,
            peer,
            local,
            phase: Phase::Greeting,
            pending: None,
            out,
            events: VecDeque::new(),
            line: Vec::new(),
            body: Vec::new(),
            session: Session::default(),
            construct: None,
            errors: 0,
            deadline: None,
            banner_end: None,
            start_unpolled: false,
            wall: UNIX_EPOCH,
            clock: now,
            decision_deadline: None,
            commands: 0,
            hidden: Vec::new(),
            storage_low: false,
            group_after_reply: false,
            next_queue_id: None,
            tarpit_until: None,
            greet_pause: false,
            messages: 0,
            abandoned: false,
        };
        if f.config.greet_pause.is_zero() {
            f.greet(now);
        } else {
            // Postscreen's pregreet test: the banner waits, input meanwhile is refused.
            f.greet_pause = true;
            f.deadline = Some(now + f.config.greet_pause);
        }
        f
    }

    /// Sets the wall-clock time used for the `Received:` header's date. Call it before
    /// answering [`Event::DataStart`] (or simply once per event-loop iteration: it is
    /// cheap). Until it is called the date is the Unix epoch.
    pub fn set_wall_clock(&mut self, wall: SystemTime) {
        self.wall = wall;
    }

    /// The peer closed the connection: the construct is destroyed (a streaming message is
    /// aborted with [`Event::MessageAborted`]) and [`Event::Close`] is emitted.
    pub fn handle_close(&mut self) {
        if !matches!(self.phase, Phase::Closed) {
            self.close(CloseReason::PeerClosed);
        }
    }

    /// The earliest deadline: the whole next command must arrive by it (idle timeout), the
    /// body must progress at [`FactoryConfig::min_data_rate`], or the pending decision must
    /// arrive within [`FactoryConfig::decision_timeout`]; once closed, the last replies must be
    /// written within one command timeout ([`is_abandoned`](Factory::is_abandoned) after it).
    /// `None` while the end of data awaits its decision (the spool commit), and once closed
    /// and given up.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let base = if self.pending.is_some() {
            self.decision_deadline
        } else {
            self.deadline
        };
        match (base, self.tarpit_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fires the deadline if `now` has reached it. Idle or slow: `421 4.4.2 <host> Error:
    /// timeout exceeded` and [`Event::Close`] (during a TLS handshake, just the close). A
    /// decision that did not come in time is answered by the factory itself
    /// ([`Event::DecisionTimeout`]; see [`FactoryConfig::decision_timeout`]).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.clock = now;
        if matches!(self.phase, Phase::Closed) {
            if self.deadline.is_some_and(|t| now >= t) {
                // The client read none of the last replies in time: give them up.
                self.deadline = None;
                self.abandoned = true;
                self.out.discard();
            }
            return;
        }
        if self.abuse_timeout(now) {
            return;
        }
        match self.poll_timeout() {
            Some(deadline) if now >= deadline => {}
            _ => return,
        }
        if self.pending.is_some() {
            return self.decision_timed_out(now);
        }
        if !matches!(self.phase, Phase::Tls) {
            let reply =
                self.host_reply(421, EnhancedStatus::new(4, 4, 2), "Error: timeout exceeded");
            self.out.push_with(|o| reply.write_to(o));
        }
        self.close(CloseReason::Timeout);
    }

    /// The bytes to write to the client, if any.
    #[must_use]
    pub fn poll_transmit(&self) -> Option<&[u8]> {
        if self.held() {
            return None;
        }
        self.out.peek()
    }

    /// Records that the first `n` bytes of [`poll_transmit`](Factory::poll_transmit) were
    /// written.
    pub fn advance_transmit(&mut self, n: usize) {
        self.out.advance(n);
        if self
            .sync_until
            .is_some_and(|end| self.out.total_sent >= end)
        {
            self.sync_until = None;
        }
    }

    /// Decoded message bytes for the spool, if any (never before the corresponding
    /// [`Event::MessageStart`] has been polled).
    #[must_use]
    pub fn poll_body(&self) -> Option<&[u8]> {
        if self.start_unpolled || self.body.is_empty() {
            None
        } else {
            Some(&self.body)
        }
    }

    /// Marks the first `n` bytes of what [`poll_body`](Factory::poll_body) returned as
    /// written (a driver whose buffer took only part of it); the rest is returned again.
    pub fn consume_body_prefix(&mut self, n: usize) {
        if self.start_unpolled {
            return;
        }
        if n >= self.body.len() {
            self.body.clear();
        } else {
            self.body.drain(..n);
        }
    }

    /// Marks everything [`poll_body`](Factory::poll_body) returned as written.
    pub fn consume_body(&mut self) {
        if !self.start_unpolled {
            self.body.clear();
        }
    }

    /// The next event. [`Event::MessageComplete`], [`Event::MessageAborted`] and
    /// [`Event::Close`] wait until the body buffer is drained, so the driver has written every
    /// chunk before it commits or aborts.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        let front = self.events.front()?;
        let after_body = matches!(
            front.kind(),
            EventKind::MessageComplete | EventKind::MessageAborted | EventKind::Close
        );
        if after_body && !self.body.is_empty() {
            return None;
        }
        let event = self.events.pop_front()?;
        if event.kind() == EventKind::MessageStart {
            self.start_unpolled = false;
        }
        Some(event)
    }

    /// What the factory awaits now (`esmtp_message_factory_state`).
    pub fn state(&self) -> State {
        if let Some(p) = &self.pending {
            return State::AsyncHook(p.kind());
        }
        match &self.phase {
            Phase::Greeting => State::JustConnected,
            Phase::Closed if self.out.pending() > 0 => State::Closing,
            Phase::Closed => State::Closed,
            Phase::Tls => State::TlsHandshake,
            Phase::Auth(_) => State::AuthExchange,
            Phase::Body(r) if r.started => State::ReadingBody,
            Phase::Body(_) => State::DataPhase,
            Phase::Chunk(_) => State::ReadingBody,
            Phase::Command | Phase::Discard(_) => {
                if self.banner_end.is_some_and(|end| self.out.total_sent < end) {
                    State::SendingBanner
                } else if self.session.helo.is_none() {
                    State::AwaitingHelo
                } else if self.construct.is_none() {
                    State::AwaitingMail
                } else {
                    State::AwaitingRcpt
                }
            }
        }
    }

    /// Whether [`handle_input`](Factory::handle_input) would consume bytes now: no decision
    /// pending, reply queue, body buffer and event queue not full, not closed or in a TLS
    /// handshake.
    pub fn wants_input(&self) -> bool {
        let body_full = matches!(self.phase, Phase::Body(_) | Phase::Chunk(_))
            && self.body.len() + 2 > self.config.body_chunk.max(64);
        !matches!(self.phase, Phase::Closed | Phase::Tls)
            && (!matches!(self.phase, Phase::Greeting) || self.greet_pause)
            && !self.held()
            && self.pending.is_none()
            && !self.out.is_full()
            && self.events.len() < MAX_EVENTS
            && !body_full
    }

    /// Whether the factory has asked to close ([`Event::Close`] was emitted).
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Whether the session is closed and its last replies were given up: the client did not
    /// read them within one command timeout of the close. The driver drops the connection
    /// at once, whatever is still queued (on the socket or in a TLS layer).
    pub fn is_abandoned(&self) -> bool {
        self.abandoned
    }

    /// The message construct under assembly, if a transaction is open.
    pub fn envelope(&self) -> Option<&Envelope> {
        self.construct.as_ref().map(|c| &c.env)
    }

    /// Momentum's `esmtp_destroy_message_construct`: discards the transaction without a
    /// reply. While a body is streaming, the message is aborted: the rest of the body is read
    /// and dropped to stay in sync, and the end of data is answered `451 4.3.0`.
    pub fn destroy_message_construct(&mut self) {
        self.abort_chunks(AbortReason::Discarded);
        self.construct = None;
        if let Phase::Body(reader) = &mut self.phase {
            reader.doom.get_or_insert(body::Doom::Discarded);
            self.body.clear();
        }
    }

    /// Errors (4xx/5xx replies) so far. Past [`FactoryConfig::soft_error_limit`] a driver may
    /// delay; at [`FactoryConfig::hard_error_limit`] the factory closes by itself.
    pub fn error_count(&self) -> u32 {
        self.errors
    }

    // ---- internal helpers shared by the submodules ----

    fn send_banner(&mut self, reply: Option<Reply>, now: Instant) {
        let reply = reply.unwrap_or_else(|| {
            let text = format!("{} {}", self.config.hostname, self.config.banner);
            Reply::new(220, None, &text)
        });
        self.phase = Phase::Command;
        self.out.push_with(|o| reply.write_to(o));
        self.banner_end = Some(self.out.total_queued);
        self.end_group();
        self.deadline = Some(now + self.config.command_timeout);
    }

    /// The reply to the command just handled must be written before the client may send
    /// more.
    fn end_group(&mut self) {
        if self.config.forbid_pipelining_violations {
            self.sync_until = Some(self.out.total_queued);
        }
    }

    /// Whether input now would break synchronisation.
    fn out_of_sync(&self) -> bool {
        self.sync_until.is_some_and(|end| self.out.total_sent < end)
    }

    /// Queues a fixed reply; 4xx/5xx count against the error budget.
    fn send(&mut self, reply: &ErrorReply) {
        self.out.push_with(|o| replies::write(o, reply));
        if reply.code >= 400 {
            self.count_error();
        }
    }

    /// Queues a reply from a decision or builder; 4xx/5xx count against the error budget.
    fn send_reply(&mut self, reply: &Reply) {
        self.out.push_with(|o| reply.write_to(o));
        if reply.code() >= 400 {
            self.count_error();
        }
    }

    fn count_error(&mut self) {
        self.errors = self.errors.saturating_add(1);
        self.tarpit();
        if self.errors >= self.config.hard_error_limit && !matches!(self.phase, Phase::Closed) {
            let reply =
                self.host_reply(421, EnhancedStatus::new(4, 7, 0), "Error: too many errors");
            self.out.push_with(|o| reply.write_to(o));
            self.close(CloseReason::TooManyErrors);
        }
    }

    /// `code status <hostname> text`.
    fn host_reply(&self, code: u16, status: EnhancedStatus, text: &str) -> Reply {
        Reply::new(
            code,
            Some(status),
            &format!("{} {text}", self.config.hostname),
        )
    }

    fn emit(&mut self, event: Event) {
        match event.kind() {
            EventKind::MessageStart => self.start_unpolled = true,
            EventKind::MessageComplete => self.messages = self.messages.saturating_add(1),
            _ => {}
        }
        self.events.push_back(event);
    }

    fn await_decision(&mut self, pending: Pending, event: Event) {
        self.decision_deadline = match pending {
            // The spool commit (or the hook pool) always answers: it has no deadline here.
            Pending::MessageComplete => None,
            _ => Some(self.clock + self.config.decision_timeout),
        };
        self.pending = Some(pending);
        self.emit(event);
    }

    /// Drops the transaction; emits [`Event::Reset`] if there was one.
    fn reset_transaction(&mut self) {
        self.abort_chunks(AbortReason::Discarded);
        if self.construct.take().is_some() {
            self.emit(Event::Reset);
        }
    }

    /// Ends the session: destroys the construct (aborting a streaming message) and emits
    /// [`Event::Close`]. Replies already queued stay queued.
    fn close(&mut self, reason: CloseReason) {
        if matches!(self.phase, Phase::Body(_)) {
            self.body.clear();
            self.emit(Event::MessageAborted {
                reason: AbortReason::ConnectionClosed,
            });
        }
        self.abort_chunks(AbortReason::ConnectionClosed);
        self.construct = None;
        self.pending = None;
        self.phase = Phase::Closed;
        self.greet_pause = false;
        // Nothing is held once closed (see `held`), and a tarpit deadline left armed would
        // come due with nothing to clear it.
        self.tarpit_until = None;
        // The last replies must be written within one command timeout: a client that
        // stops reading does not keep its slot (see `is_abandoned`).
        self.deadline = Some(self.clock + self.config.command_timeout);
        self.line = Vec::new();
        self.emit(Event::Close { reason });
    }
}
