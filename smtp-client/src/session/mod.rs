//! The sans-IO client session: bytes in, bytes and events out, time passed in.
//!
//! A [`Session`] runs the chain of a [`StateMachine`] over one connection: the greeting,
//! EHLO (HELO when EHLO is refused with 5xx), STARTTLS, AUTH, then one transaction per queued
//! [`Message`] (MAIL, RCPT, DATA, the body; RSET when a transaction is abandoned), and QUIT
//! once [`Session::close`] is called. Custom states run where they were inserted.
//!
//! # How to drive it
//!
//! After creating a session, and after every call to a `handle_*` method, [`queue_message`]
//! or [`close`]:
//!
//! 1. write out what [`poll_transmit`] lends, telling [`advance_transmit`] how many bytes
//!    were written, until it returns `None` (a short write resumes where it stopped);
//! 2. drain [`poll_event`] (per-recipient outcomes, message done, session done);
//! 3. arm a timer for [`poll_timeout`] and call [`handle_timeout`] when it fires.
//!
//! Feed every byte read from the socket to [`handle_input`], and call [`handle_eof`] when the
//! server closes. The session never reads the clock: every input carries `now`.
//! Once [`Event::SessionDone`] has been emitted, close the connection.
//!
//! # STARTTLS
//!
//! A driver that can run TLS says so with [`SessionConfig::tls_available`]. When the policy
//! asks for TLS and the server offers STARTTLS, the session sends `STARTTLS`; once the `220`
//! is in, [`poll_tls_upgrade`] returns `true` (once). The driver then:
//!
//! 1. hands the session every byte it has already read from the socket ([`handle_input`]):
//!    bytes the server sent after its `220` and before the handshake are a response
//!    injection, and end the session with [`Error::ResponseInjection`];
//! 2. if the session is not over, runs the TLS handshake on the same socket, then calls
//!    [`handle_tls_established`] (or [`handle_tls_failed`]), and from then on reads and
//!    writes through TLS.
//!
//! The session then forgets the capabilities it learned in plaintext and sends EHLO again;
//! the states after `ehlo` run again too (the server forgot them as well).
//! The handshake has the policy's command timeout ([`poll_timeout`]).
//!
//! # Bounds
//!
//! The input buffer never holds more than one reply's worth of bytes
//! ([`Limits::reply_bytes`](smtp_proto::Limits::reply_bytes) + 1): a reply beyond the
//! policy's limits, bytes that are not a reply, or bytes the server sends when no reply is
//! due end the session with a sticky [`Error`] and a temporary failure for every unfinished
//! recipient.
//!
//! [`queue_message`]: Session::queue_message
//! [`close`]: Session::close
//! [`poll_transmit`]: Session::poll_transmit
//! [`advance_transmit`]: Session::advance_transmit
//! [`poll_event`]: Session::poll_event
//! [`poll_timeout`]: Session::poll_timeout
//! [`handle_timeout`]: Session::handle_timeout
//! [`handle_input`]: Session::handle_input
//! [`handle_eof`]: Session::handle_eof
//! [`poll_tls_upgrade`]: Session::poll_tls_upgrade
//! [`handle_tls_established`]: Session::handle_tls_established
//! [`handle_tls_failed`]: Session::handle_tls_failed

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hooks_api::{ClientArgs, ClientState};
use smtp_proto::address::AddressOptions;
use smtp_proto::{Capabilities, Domain, Reply, ReplyParser};

use crate::error::{Error, Stage};
use crate::message::{local_reply, Credentials, Event, Message, MessageId};
use crate::policy::Policy;
use crate::registry::{Builtin, StateId, StateMachine};

mod chunking;
mod config;
mod custom;
mod flow;
mod prepare;
mod setup;
mod tls;
mod transaction;
mod transmit;

#[cfg(test)]
mod tests;

pub use config::SessionConfig;
use custom::Shared;
pub(crate) use flow::{Await, Flow};
pub(crate) use prepare::raw_address_ok;
use transaction::Txn;
use transmit::Transmit;

/// Most state transitions without waiting for input before the session calls it a loop.
const MAX_TRANSITIONS: usize = 10_000;

/// One client connection's protocol state. See the [module docs](self) for how to drive it.
pub struct Session {
    machine: Arc<StateMachine>,
    customs: Vec<Option<Box<dyn ClientState>>>,
    pub(crate) shared: Shared,
    pub(crate) policy: Policy,
    helo: Domain<'static>,
    pub(crate) credentials: Option<Credentials>,
    current: StateId,
    parked: Option<StateId>,
    pub(crate) expect: VecDeque<Await>,
    deadline: Option<(Instant, Stage, Duration)>,
    now: Instant,
    parser: ReplyParser,
    inbuf: Vec<u8>,
    out: Transmit,
    pub(crate) events: VecDeque<Event>,
    pub(crate) queue: VecDeque<(MessageId, Message)>,
    next_id: u64,
    pub(crate) txn: Option<Txn>,
    pub(crate) closing: bool,
    /// Why the session is ending gracefully (it still sends QUIT).
    pub(crate) ending: Option<Error>,
    /// A sticky error: the session is over, input is ignored.
    fatal: Option<Error>,
    done: bool,
    pub(crate) resets: u32,
    pub(crate) auth: Option<setup::AuthStep>,
    tls_available: bool,
    /// The `220` to STARTTLS is in and the driver has not been told yet.
    tls_upgrade_due: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("current", &self.current)
            .field("expect", &self.expect)
            .field("queued", &self.queue.len())
            .field("done", &self.done)
            .field("error", &self.fatal)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session at the head of `machine`'s chain. Runs the states up to the greeting (or
    /// the first custom state's command), so poll for output right away. Fails with
    /// [`Error::Misuse`] when the EHLO name is not a domain or address literal.
    pub fn new(
        machine: Arc<StateMachine>,
        config: SessionConfig,
        now: Instant,
    ) -> Result<Session, Error> {
        let helo = Domain::parse(config.helo_name.as_bytes(), &AddressOptions::default())
            .map_err(|_| Error::Misuse("the EHLO name is not a domain or address literal"))?
            .into_owned();
        let mut session = Session {
            customs: machine.instantiate(),
            current: machine.state_machine(),
            machine,
            shared: Shared {
                caps: Capabilities::new(),
                session_args: config.session_args,
                message_args: ClientArgs::new(),
                peer: config.peer,
                peer_name: config.peer_name,
                tls_active: false,
            },
            parser: ReplyParser::with_limits(config.policy.limits),
            policy: config.policy,
            helo,
            credentials: config.credentials,
            parked: None,
            expect: VecDeque::new(),
            deadline: None,
            now,
            inbuf: Vec::new(),
            out: Transmit::default(),
            events: VecDeque::new(),
            queue: VecDeque::new(),
            next_id: 0,
            txn: None,
            closing: false,
            ending: None,
            fatal: None,
            done: false,
            resets: 0,
            auth: None,
            tls_available: config.tls_available,
            tls_upgrade_due: false,
        };
        let head = session.current;
        session.advance(Flow::Goto(head));
        Ok(session)
    }

    // ----- inputs -----

    /// Feeds bytes read from the server.
    pub fn handle_input(&mut self, mut input: &[u8], now: Instant) {
        self.now = now;
        let cap = self.policy.limits.reply_bytes.saturating_add(1);
        while !input.is_empty() && !self.done {
            if self.awaiting_handshake() {
                self.abort(Error::ResponseInjection);
                return;
            }
            let room = cap.saturating_sub(self.inbuf.len()).max(1);
            let take = room.min(input.len());
            self.inbuf.extend_from_slice(&input[..take]);
            input = &input[take..];
            self.process_input();
        }
    }

    /// The server closed the connection (a read returned 0 bytes).
    pub fn handle_eof(&mut self, now: Instant) {
        self.now = now;
        if self.done {
            return;
        }
        if self.expect.front() == Some(&Await::QuitReply) {
            // Closing right after QUIT without a 221 loses nothing.
            self.finish(None);
            return;
        }
        if self.is_idle() {
            // An idle connection the server dropped: nothing was in flight.
            log::debug!("client: server closed the idle connection");
        }
        self.abort(Error::PeerClosed);
    }

    /// The connection failed (a read or write error other than a timeout).
    pub fn handle_io_error(&mut self, error: impl std::fmt::Display, now: Instant) {
        self.now = now;
        self.abort(Error::Io(error.to_string()));
    }

    /// Checks the reply deadline against `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if let Some((deadline, stage, after)) = self.deadline {
            if !self.done && now >= deadline {
                self.abort(Error::Timeout { stage, after });
            }
        }
    }

    /// Queues a message; it is sent when the session is ready (after the setup states and
    /// any message queued before it). Fails when the session is ending or over.
    pub fn queue_message(&mut self, message: Message, now: Instant) -> Result<MessageId, Error> {
        self.now = now;
        if let Some(e) = self.fatal.as_ref().or(self.ending.as_ref()) {
            return Err(e.clone());
        }
        if self.closing || self.done {
            return Err(Error::Misuse("the session is closing"));
        }
        let id = MessageId(self.next_id);
        self.next_id += 1;
        self.queue.push_back((id, message));
        if let Some(at) = self.parked.take() {
            self.advance(Flow::Goto(at));
        }
        Ok(id)
    }

    /// Sends QUIT once every queued message is done.
    pub fn close(&mut self, now: Instant) {
        self.now = now;
        if self.done {
            return;
        }
        self.closing = true;
        if self.parked.take().is_some() {
            self.advance(Flow::Goto(Builtin::Quit.id()));
        }
    }

    /// Momentum's `smtp_next_state`: moves to `state`, or to the current state's default
    /// successor when `None`. Only while no reply is due (the session is idle between
    /// messages); otherwise [`Error::Misuse`].
    pub fn next_state(&mut self, state: Option<StateId>) -> Result<(), Error> {
        if self.done || !self.expect.is_empty() {
            return Err(Error::Misuse("next_state while a reply is due"));
        }
        self.parked = None;
        match state {
            Some(id) if self.machine.get_state(id).is_some() => self.advance(Flow::Goto(id)),
            Some(_) => return Err(Error::Misuse("next_state: unknown state id")),
            None => self.advance(Flow::Next),
        }
        Ok(())
    }

    // ----- outputs -----

    /// The bytes to write to the server next, if any: lent until
    /// [`advance_transmit`](Self::advance_transmit) says how many were written.
    #[must_use]
    pub fn poll_transmit(&self) -> Option<&[u8]> {
        self.out.peek()
    }

    /// Records that the first `n` bytes of [`poll_transmit`](Self::poll_transmit) were
    /// written.
    pub fn advance_transmit(&mut self, n: usize) {
        self.out.advance(n);
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called: the deadline of the
    /// reply the session waits for. `None` while idle or over.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline.map(|(at, _, _)| at)
    }

    // ----- state -----

    /// The server's capabilities (empty before EHLO and after HELO).
    pub fn capabilities(&self) -> &Capabilities {
        &self.shared.caps
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The state the session is in.
    pub fn current_state(&self) -> StateId {
        self.current
    }

    /// The state machine the session runs.
    pub fn machine(&self) -> &Arc<StateMachine> {
        &self.machine
    }

    /// `true` once [`Event::SessionDone`] has been emitted.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// `true` while the session waits for a message (or [`close`](Self::close)).
    pub fn is_idle(&self) -> bool {
        self.parked.is_some() && !self.done
    }

    /// Why the session ended early: the sticky error, or the reason it is closing.
    pub fn error(&self) -> Option<&Error> {
        self.fatal.as_ref().or(self.ending.as_ref())
    }

    /// The per-session client arguments.
    pub fn session_args(&mut self) -> &mut ClientArgs {
        &mut self.shared.session_args
    }

    /// How many messages are queued and not yet started.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    // ----- the machine -----

    fn process_input(&mut self) {
        while !self.done && !self.inbuf.is_empty() {
            if self.awaiting_handshake() {
                self.abort(Error::ResponseInjection);
                return;
            }
            match self.parser.parse(&self.inbuf) {
                Ok(None) => return,
                Ok(Some((reply, used))) => {
                    self.inbuf.drain(..used);
                    self.on_reply(reply);
                }
                Err(e) => {
                    self.abort(Error::InvalidReply(e));
                    return;
                }
            }
        }
    }

    fn on_reply(&mut self, reply: Reply) {
        log::debug!(
            "client: S: {} {}",
            reply.code(),
            reply.lines().first().map_or("", String::as_str)
        );
        let Some(awaiting) = self.expect.pop_front() else {
            if reply.code() == 421 {
                self.abort(Error::Refused(reply));
            } else {
                self.abort(Error::Unsolicited);
            }
            return;
        };
        self.arm_deadline();
        if reply.code() == 421 && awaiting != Await::QuitReply {
            // The server is closing the connection: no further command is useful.
            self.fail_all(&reply);
            self.abort(Error::Refused(reply));
            return;
        }
        let flow = match awaiting {
            Await::Greeting
            | Await::EhloReply
            | Await::HeloReply
            | Await::AuthReply
            | Await::QuitReply => self.on_setup_reply(awaiting, reply),
            Await::StartTlsReply | Await::TlsHandshake => self.on_starttls_reply(reply),
            Await::CustomReply(id) => self.on_custom_reply(id, &reply),
            _ => self.on_txn_reply(awaiting, reply),
        };
        self.advance(flow);
    }

    /// Runs states until one waits, parks, or the session ends.
    pub(crate) fn advance(&mut self, mut flow: Flow) {
        for _ in 0..MAX_TRANSITIONS {
            if self.done {
                return;
            }
            flow = match flow {
                Flow::Wait => {
                    self.arm_deadline();
                    return;
                }
                Flow::Park(at) => {
                    self.parked = Some(at);
                    self.deadline = None;
                    return;
                }
                Flow::Done => {
                    let ending = self.ending.clone();
                    self.finish(ending);
                    return;
                }
                Flow::Next => match self.machine.successor(self.current) {
                    Some(next) => self.enter(next),
                    None => Flow::Done,
                },
                Flow::Goto(id) => self.enter(id),
            };
        }
        self.abort(Error::Misuse(
            "client states loop without waiting for input",
        ));
    }

    fn enter(&mut self, id: StateId) -> Flow {
        self.current = id;
        if let Some(flow) = self.transaction_gate(id) {
            return flow;
        }
        match self.machine.get_state(id).and_then(|e| e.builtin()) {
            Some(b) => self.enter_builtin(b),
            None => {
                let action = self.with_custom(id, |state, cx| state.enter(cx));
                self.custom_action(id, action)
            }
        }
    }

    fn enter_builtin(&mut self, b: Builtin) -> Flow {
        match b {
            Builtin::Connect => Flow::Next,
            Builtin::Banner => {
                self.expect.push_back(Await::Greeting);
                Flow::Wait
            }
            Builtin::Ehlo | Builtin::StartTls | Builtin::Auth | Builtin::Quit => {
                self.enter_setup(b)
            }
            Builtin::Mail | Builtin::Rcpt | Builtin::Data | Builtin::Message | Builtin::Rset => {
                self.enter_txn(b)
            }
        }
    }

    /// Appends a command and the reply it awaits. Bytes already received at this point
    /// cannot be the reply to a command the server has not seen: they end the session.
    pub(crate) fn send(&mut self, bytes: &[u8], awaiting: Await) {
        if !self.inbuf.is_empty() && self.expect.is_empty() {
            self.abort(Error::Unsolicited);
            return;
        }
        self.out.push(bytes);
        self.expect.push_back(awaiting);
    }

    /// Appends bytes that await no reply of their own (the message body).
    pub(crate) fn send_raw(&mut self, bytes: &[u8]) {
        if !self.inbuf.is_empty() && self.expect.is_empty() {
            self.abort(Error::Unsolicited);
            return;
        }
        self.out.push(bytes);
    }

    pub(crate) fn helo_name(&self) -> &Domain<'static> {
        &self.helo
    }

    fn arm_deadline(&mut self) {
        self.deadline = self.expect.front().map(|a| {
            let stage = a.stage();
            let after = match stage {
                Stage::Greeting => self.policy.greeting_timeout,
                Stage::DataInit => self.policy.data_init_timeout,
                Stage::Final => self.policy.final_timeout,
                Stage::DataBlock => self.policy.data_block_timeout,
                Stage::Command | Stage::Mail | Stage::Rcpt => self.policy.command_timeout,
            };
            (self.now + after, stage, after)
        });
    }

    /// Ends the session gracefully: fails what is left with `error`'s reply and goes to QUIT.
    pub(crate) fn refuse(&mut self, error: Error) -> Flow {
        log::info!("client: session ending: {error}");
        let reply = error.reply();
        self.fail_all(&reply);
        self.ending.get_or_insert(error);
        self.closing = true;
        Flow::Goto(Builtin::Quit.id())
    }

    /// Ends the session at once with a sticky error.
    pub(crate) fn abort(&mut self, error: Error) {
        if self.done {
            return;
        }
        log::info!("client: session aborted: {error}");
        let reply = error.reply();
        self.fail_all(&reply);
        self.out.clear();
        self.inbuf.clear();
        self.fatal = Some(error.clone());
        self.finish(Some(error));
    }

    fn finish(&mut self, error: Option<Error>) {
        if self.done {
            return;
        }
        let reply = error.as_ref().map_or_else(
            || local_reply(451, (4, 3, 0), "session ended"),
            Error::reply,
        );
        self.fail_all(&reply);
        self.done = true;
        self.expect.clear();
        self.deadline = None;
        self.parked = None;
        self.events.push_back(Event::SessionDone { error });
    }

    /// Fails the current message's undecided recipients and every queued message.
    pub(crate) fn fail_all(&mut self, reply: &Reply) {
        if self.txn.as_ref().is_some_and(|t| !t.finished) {
            self.fail_message(reply, None);
        }
        while let Some((id, message)) = self.queue.pop_front() {
            self.fail_unsent(id, &message, reply);
        }
    }
}
