//! # smtp-client — the Impulse SMTP client
//!
//! A modular client after Momentum's design: a sans-IO [`Session`] whose states live in a
//! registry ([`StateRegistry::register_state`], Momentum's `register_smtp_client_state`), so
//! plugins can insert their own states after any built-in one; per-session and per-message
//! client arguments that become MAIL/RCPT parameters; reply policy as data ([`Policy`]:
//! timeouts, retries, RSET after 503, resets); per-recipient outcomes classified by
//! [`smtp_proto::classify`]; and drivers kept in [`driver`].
//!
//! All SMTP parsing is done by [`smtp_proto`] (replies, `smtp_parse_capabilities`, command
//! serialization, DATA dot-stuffing, SASL, classification of failures).
//!
//! | module | what it owns |
//! |---|---|
//! | [`session`] | the sans-IO state machine: `handle_*` in, `poll_*` out |
//! | [`registry`] | the chain of states: built-ins and custom states |
//! | [`policy`] | timeouts, retries, pipelining, TLS and AUTH rules |
//! | [`message`] | what is sent and what is reported |
//! | [`dsn`] | a message's RFC 3461 parameters, passed on to servers that offer DSN |
//! | [`driver`] | I/O: the blocking driver on `std::net`, the mio [`Engine`] for volume, TLS settings shared by drivers |
//!
//! The [`Engine`] runs many connections to many destinations on one thread (each
//! [`Destination`] an ordered list of next hops with its limits; connections pooled per next
//! hop and TLS settings, shared by the destinations that name it), reuses each
//! connection for many messages (a limit per connection, an idle timeout, recovery when the
//! server closed an idle connection, the next hop when one cannot be reached) and reports one
//! [`Delivery`] per message, with per-recipient outcomes and the next hop used, over a
//! crossbeam channel. Its scheduling rules are a sans-IO
//! [`Dispatcher`](driver::engine::dispatch::Dispatcher) the event loop only carries out.
//!
//! STARTTLS (RFC 3207) is opportunistic or required ([`TlsMode`]): the session asks the
//! driver to upgrade ([`Session::poll_tls_upgrade`]), forgets what it learned in plaintext and
//! sends EHLO again; bytes the server sent after its `220` end the session
//! ([`Error::ResponseInjection`]). Both drivers run it with rustls (the blocking driver with
//! blocking I/O, the [`Engine`] without blocking its thread: the handshake is one more thing
//! its event loop waits for); [`driver::tls`] holds the verification defaults every driver
//! shares (required TLS verifies the server's certificate, opportunistic TLS only encrypts).
//! When an opportunistic handshake fails, the [`Engine`] connects to the same next hop again
//! and goes on in plaintext (RFC 7435). With [`Policy::chunking`] the body goes as
//! BDAT chunks (RFC 3030) when the server offers CHUNKING.
//!
//! A message's RFC 3461 parameters ([`Message::with_dsn`], [`dsn`]) go only to a server that
//! offers DSN, and each [`Delivery`] says whether it did; each [`RecipientOutcome`] says
//! which reply decided it ([`RecipientOutcome::stage`]: a `552` to RCPT is temporary, RFC
//! 5321 §4.5.3.1.10).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod driver;
pub mod dsn;
pub mod error;
pub mod message;
pub mod policy;
pub mod registry;
pub mod session;

pub use driver::engine::{Delivery, Destination, Engine, EngineBuilder, NextHop, Stats, Ticket};
pub use dsn::{Dsn, RcptDsn};
pub use error::{Error, Stage};
pub use message::{Body, Credentials, Event, Message, MessageId, OutcomeKind, RecipientOutcome};
pub use policy::{Policy, TlsMode};
pub use registry::{
    Builtin, RegistryError, StateEntry, StateId, StateKind, StateMachine, StateRegistry,
};
pub use session::{Session, SessionConfig};

pub use hooks_api;
pub use hooks_api::{Anchor, ClientArgs, ClientContext, ClientState, StateAction};
pub use smtp_proto;
