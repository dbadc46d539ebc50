//! # smtp-proto — the whole SMTP protocol as data
//!
//! A sans-IO implementation of SMTP (RFC 5321) and its extensions: no sockets, no threads, no
//! clock. The Impulse server, client and plugins never parse a byte of SMTP themselves; they
//! call this crate.
//!
//! | module | what it owns |
//! |---|---|
//! | [`command`] | parse and serialize every RFC 5321 / ESMTP command; unknown verbs kept for extensions |
//! | [`reply`] | incremental multi-line reply parser and serializer, enhanced status codes |
//! | [`capability`] | EHLO reply → typed capability set (`smtp_parse_capabilities`) |
//! | [`address`] | mailbox and path syntax, SMTPUTF8-aware, RFC length limits |
//! | [`params`] | ESMTP MAIL/RCPT parameters and xtext |
//! | [`data`] | streaming dot-stuffing encoder (client) and smuggling-safe end-of-data decoder (server) |
//! | [`date`] | RFC 5322 and RFC 3339 dates from a time passed in (`Received:`, `Date:`, notifications) |
//! | [`sasl`] | SASL PLAIN and LOGIN for both sides, XOAUTH2 for clients |
//! | [`classify`] | the bounce-class registry (`smtp_error_classify`, `smtp_error_register_class`, ...) |
//! | [`status`] | RFC 3463 enhanced status codes and the reply each error deserves |
//! | [`limits`] | every protocol limit as a named constant |
//!
//! Parsers take `&[u8]`, borrow from it, and distinguish *complete*, *incomplete* (need more
//! bytes — not an error) and *invalid*. No parser panics on any input; the `fuzz/` targets
//! exercise that claim.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod address;
pub mod capability;
pub mod classify;
pub mod command;
pub mod data;
pub mod date;
pub mod error;
pub mod limits;
pub mod params;
pub mod reply;
pub mod sasl;
pub mod status;

pub use address::{AddressError, Domain, ForwardPath, Mailbox, Path};
pub use capability::{parse_capabilities, Capabilities, Capability, Keyword};
pub use classify::{BounceClass, Category, ClassifyError, Registry, Rule};
pub use command::{Command, CommandError, Leniency, ParseOptions};
pub use data::{dot_stuff, BareLineEndings, DataDecoder, DataProgress, DataStats, DotStuffer};
pub use error::Error;
pub use limits::Limits;
pub use params::{ParamError, Params};
pub use reply::{Reply, ReplyError, ReplyParser};
pub use sasl::{Credentials, Mechanism, SaslError, SaslServer};
pub use status::{EnhancedStatus, ErrorReply};
