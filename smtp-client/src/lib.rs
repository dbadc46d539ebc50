//! # smtp-client — the Impulse SMTP client
//!
//! A modular client after Momentum's design: a sans-IO session whose states live in a registry
//! (`register_smtp_client_state(state, insert_after)`), so plugins can insert their own states
//! after any built-in one; per-session client arguments that become MAIL/RCPT parameters;
//! reply policy as data (timeouts, retries, RSET after 503); and two drivers — a blocking one on
//! `std::net` and a mio engine for volume — kept in a `driver` module.
//!
//! All SMTP parsing is done by [`smtp_proto`] (replies, `smtp_parse_capabilities`, DATA
//! dot-stuffing, classification of failures).
//!
//! Status: the state machine and drivers are being built (see the project's issue tracker).
#![warn(missing_docs)]

pub use hooks_api;
pub use smtp_proto;
