//! What the factory tells the driver ([`Event`]) and what the driver answers ([`Decision`]).

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};

use hooks_api::Envelope as Transaction;

use smtp_proto::address::{ForwardPath, Path};
use smtp_proto::data::DataStats;
use smtp_proto::params::Params;
use smtp_proto::reply::Reply;
use smtp_proto::sasl::{Credentials, Mechanism};

/// Whether the factory waits for a [`Decision`] after an event of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decided {
    /// Always: the factory cannot go on without one (credentials to check, a message to
    /// commit, a registered verb with no default behaviour).
    Always,
    /// When [`Decisions`](super::Decisions) asks for it (a hook is registered for it);
    /// otherwise the factory gives its default answer and emits nothing.
    Optional,
    /// Never: a notice to the driver.
    Never,
}

/// The one table of the factory's events: each variant with its data and whether it is
/// decided. It generates [`Event`], [`EventKind`] (with [`EventKind::ALL`] and
/// [`EventKind::decided`]) and [`Event::kind`], so a new event (for a new server-side hook
/// point) is one entry here plus the code that emits it and the driver's handler.
macro_rules! factory_events {
    (
        $(#[$meta:meta])*
        pub enum Event {
            $(
                $(#[doc = $doc:literal])*
                $name:ident $({ $($fields:tt)* })? => $decided:ident;
            )*
        }
    ) => {
        $(#[$meta])*
        pub enum Event {
            $( $(#[doc = $doc])* $name $({ $($fields)* })?, )*
        }

        /// The kind of an [`Event`], without its data.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum EventKind {
            $( #[doc = concat!("[`Event::", stringify!($name), "`].")] $name, )*
        }

        impl EventKind {
            /// Every kind, in table order.
            pub const ALL: &'static [EventKind] = &[$(EventKind::$name),*];

            /// Whether the factory waits for a decision after an event of this kind.
            pub const fn decided(self) -> Decided {
                match self {
                    $( EventKind::$name => Decided::$decided, )*
                }
            }
        }

        impl Event {
            /// The kind of this event.
            pub fn kind(&self) -> EventKind {
                match self {
                    $( Event::$name { .. } => EventKind::$name, )*
                }
            }
        }
    };
}

factory_events! {
/// Something the driver must know about or decide. Events that need a decision leave the
/// factory in [`State::AsyncHook`](super::State::AsyncHook) until
/// [`Factory::handle_decision`](super::Factory::handle_decision); see
/// [`Event::needs_decision`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A connection, before the banner (decision: accept → `220`; reject → the 554 session
    /// that only accepts QUIT; temp-fail or disconnect → the reply, then close).
    Connect {
        /// The client's address.
        peer: SocketAddr,
        /// Our address.
        local: SocketAddr,
    } => Optional;
    /// HELO or EHLO with a syntactically valid name (decision: accept → the usual reply).
    Helo {
        /// The name the client gave (a domain, or for EHLO an address literal).
        name: String,
        /// `true` for EHLO.
        extended: bool,
    } => Optional;
    /// A SASL exchange produced credentials (always decided: `Accept` → `235 2.7.0`;
    /// `Continue` fails closed with `535 5.7.8`).
    Auth {
        /// The mechanism used.
        mechanism: Mechanism,
        /// The credentials to check. `Debug` never shows the password.
        credentials: Credentials,
    } => Always;
    /// MAIL FROM, after syntax, sequence, SIZE and parameter checks.
    Mail {
        /// The reverse-path.
        from: Path<'static>,
        /// Its parameters.
        params: Params<'static>,
    } => Optional;
    /// RCPT TO, after syntax, sequence and recipient-limit checks.
    Rcpt {
        /// The forward-path.
        to: ForwardPath<'static>,
        /// Its parameters.
        params: Params<'static>,
    } => Optional;
    /// DATA with at least one accepted recipient, before `354`; or the first chunk of a
    /// message sent with BDAT, before its octets are read (a refusal is sent after they
    /// have been read and dropped).
    DataStart => Optional;
    /// The body starts (after `354`, or at the first accepted BDAT chunk; no decision):
    /// open the spool file for `envelope`, write `received`
    /// first, then every chunk from [`Factory::poll_body`](super::Factory::poll_body).
    MessageStart {
        /// The envelope as it stands at `354`.
        envelope: Envelope,
        /// Our `Received:` trace header, CRLF-terminated; `poll_body` never repeats it.
        received: String,
    } => Never;
    /// The end of data was read and the message passed the factory's checks (always
    /// decided): commit the spool, then answer [`Decision::Queued`] (→ `250 2.0.0 Ok: queued
    /// as ID`), or a temp-fail / reject. The factory no longer holds the construct.
    MessageComplete {
        /// The envelope, moved out of the factory.
        envelope: Envelope,
        /// What the decoder saw.
        stats: MessageStats,
    } => Always;
    /// The message whose body was streaming is refused or the connection ended: discard what
    /// was written for it (no decision; the factory has already replied if it could).
    MessageAborted {
        /// Why.
        reason: AbortReason,
    } => Never;
    /// A verb registered through [`Extensions`](super::Extensions) (always decided:
    /// [`Decision::Reply`] gives the reply; `Continue` answers `502 5.5.1`).
    Extension {
        /// The verb, upper-cased.
        verb: String,
        /// Its arguments as sent.
        args: Option<String>,
    } => Always;
    /// An unrecognised verb, when [`Decisions`](super::Decisions) asks for it
    /// (`Continue` answers `500 5.5.2`).
    Unknown {
        /// The verb, upper-cased.
        verb: String,
        /// Its arguments as sent.
        args: Option<String>,
    } => Optional;
    /// `220 2.0.0 Ready to start TLS` is queued (no decision): flush the transmit buffer, run
    /// the TLS handshake, then call
    /// [`Factory::handle_tls_established`](super::Factory::handle_tls_established) (or
    /// [`Factory::handle_close`](super::Factory::handle_close) if it fails).
    StartTls => Never;
    /// The transaction was discarded (RSET, or HELO/EHLO/STARTTLS in the middle of one).
    Reset => Never;
    /// Close the connection once the transmit buffer is drained (no decision).
    Close {
        /// Why.
        reason: CloseReason,
    } => Never;
    /// The decision on an event of this kind did not arrive within
    /// [`FactoryConfig::decision_timeout`](super::FactoryConfig::decision_timeout): the
    /// factory answered the command itself (no decision). Forget the event you were
    /// deciding and drop its late answer: a later
    /// [`handle_decision`](super::Factory::handle_decision) would answer the *next* event.
    DecisionTimeout {
        /// The kind of the event that was awaiting a decision.
        kind: EventKind,
    } => Never;
}
}

impl Event {
    /// Whether the factory waits for [`Factory::handle_decision`](super::Factory::handle_decision)
    /// after this event. Only events of kinds the configuration asks to decide are emitted,
    /// so this is a property of the kind ([`EventKind::decided`]).
    pub fn needs_decision(&self) -> bool {
        self.kind().decided() != Decided::Never
    }
}

/// The driver's answer to an event that needs one. The factory maps it to the reply; hook
/// verdicts map onto these one to one, so the factory does not know about hooks.
///
/// A [`Reply`] carried by a decision is sent as is; the outcome follows its class: 2xx/3xx
/// accept, 4xx/5xx refuse. [`Decision::Queued`] and [`Decision::Accept`] anywhere but
/// [`Event::MessageComplete`] / [`Event::DataStart`] mean accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No opinion: the factory's default reply (accept, except for AUTH where it fails
    /// closed and for verbs nobody handles).
    Continue,
    /// Accept with the default positive reply.
    Accept,
    /// Refuse with this (5xx) reply.
    Reject(Reply),
    /// Refuse with this (4xx) reply.
    TempFail(Reply),
    /// Send this reply (normally `421`), then close.
    Disconnect(Reply),
    /// At [`Event::MessageComplete`]: the message is on stable storage under this id →
    /// `250 2.0.0 Ok: queued as ID`. At [`Event::DataStart`]: accept, and use this id in the
    /// `Received:` header.
    Queued(String),
    /// Send this reply (for extension verbs, or to replace a default text).
    Reply(Reply),
}

/// Why a message was aborted ([`Event::MessageAborted`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AbortReason {
    /// Larger than [`FactoryConfig::max_message_size`](super::FactoryConfig::max_message_size).
    SizeExceeded,
    /// More `Received:` headers than [`FactoryConfig::max_hops`](super::FactoryConfig::max_hops).
    TooManyHops,
    /// A bare CR or LF under [`BareLineEndings::Reject`](smtp_proto::data::BareLineEndings::Reject).
    BareLineEnding,
    /// The connection ended (timeout, peer close, protocol violation) during the body.
    ConnectionClosed,
    /// The driver called
    /// [`Factory::destroy_message_construct`](super::Factory::destroy_message_construct)
    /// during the body (`451 4.3.0` at the end of data).
    Discarded,
}

/// Why the factory asks to close ([`Event::Close`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client sent QUIT (`221` queued).
    Quit,
    /// Idle or DATA timeout (`421 4.4.2` queued).
    Timeout,
    /// The error budget ran out (`421 4.7.0` queued).
    TooManyErrors,
    /// The client broke pipelining synchronisation (`554 5.5.0` queued).
    ProtocolSync,
    /// A command line ended in a bare LF under strict parsing (`550 5.5.2` queued).
    BareLineEnding,
    /// A decision said [`Decision::Disconnect`], or refused the connection with a 4xx.
    Rejected,
    /// The peer closed ([`Factory::handle_close`](super::Factory::handle_close)).
    PeerClosed,
    /// The server is shutting down
    /// ([`Factory::handle_shutdown`](super::Factory::handle_shutdown); `421 4.3.2` queued).
    Shutdown,
    /// The decision on the connection or on HELO/EHLO did not come in time (`421 4.3.0`
    /// queued; see [`FactoryConfig::decision_timeout`](super::FactoryConfig::decision_timeout)).
    DecisionTimeout,
    /// A BDAT line whose chunk size could not be read: the octets after it cannot be told
    /// from commands (`501 5.5.4` queued).
    BadChunkSize,
    /// A command from another protocol (an HTTP request, a header line: `221 2.7.0`
    /// queued).
    ForbiddenCommand,
    /// MAIL past [`FactoryConfig::messages_per_session`](super::FactoryConfig::messages_per_session)
    /// (`421 4.7.0` queued).
    TooManyMessages,
    /// The client talked during the greeting pause (`521 5.5.1` queued).
    Pregreet,
}

/// TLS parameters reported by the driver after a STARTTLS handshake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// Protocol version, for example `TLSv1.3`.
    pub protocol: String,
    /// Cipher suite name.
    pub cipher: String,
}

/// One accepted recipient: the path and its parameters, the same value hooks see in
/// [`hooks_api::Envelope::recipients`].
pub type EnvelopeRecipient = hooks_api::Recipient;

/// The message construct under assembly (Momentum's `message_construct`): session facts
/// copied in at MAIL, and the [`transaction`](Envelope::transaction) — sender, MAIL
/// parameters and recipients — which hooks borrow as it is (an `Envelope` dereferences to
/// it, so `envelope.sender` and `envelope.recipients` read it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The HELO/EHLO name.
    pub helo: String,
    /// The session began with EHLO.
    pub esmtp: bool,
    /// TLS was active at MAIL.
    pub tls: bool,
    /// The authenticated identity (SASL authcid), if any.
    pub auth: Option<String>,
    /// The client's address.
    pub peer: SocketAddr,
    /// The reverse-path, the MAIL parameters and the accepted recipients in order: the
    /// envelope hooks see.
    pub transaction: Transaction,
    /// The queue id given by a [`Decision::Queued`] at [`Event::DataStart`], if any.
    pub queue_id: Option<String>,
}

impl Envelope {
    /// Whether the transaction is SMTPUTF8 (RFC 6531).
    pub fn smtputf8(&self) -> bool {
        self.mail_params.smtputf8
    }
}

impl Deref for Envelope {
    type Target = Transaction;
    fn deref(&self) -> &Transaction {
        &self.transaction
    }
}

impl DerefMut for Envelope {
    fn deref_mut(&mut self) -> &mut Transaction {
        &mut self.transaction
    }
}

/// What the factory measured about a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageStats {
    /// What the DATA decoder saw (size, lines, bare CR/LF).
    pub data: DataStats,
    /// `Received:` headers in the client's header section.
    pub hops: u32,
}
