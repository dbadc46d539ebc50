//! # hooks-api — the Impulse plugin contract
//!
//! This crate will define everything a plugin may see and do: the server hook points
//! (connect, HELO/EHLO, AUTH, MAIL, RCPT, DATA start, message, queue, disconnect, unknown
//! command), the verdicts a hook returns (continue, accept, reject, temp-fail, disconnect,
//! pending), registrations for SMTP client states, ESMTP extensions and error classes, and the
//! ABI guard and entry-point macro used by plugins shipped as `.so` files.
//!
//! It depends on [`smtp_proto`] only, so plugins never pull in the server or the client.
//! Error classification itself lives in [`smtp_proto::classify`]; this crate re-exports it so
//! plugins can register classes without another dependency.
//!
//! Status: the contract is being built (see the project's issue tracker); today the crate
//! exposes the protocol types plugins will use.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use smtp_proto;
