//! # smtp-server — the Impulse ESMTP server
//!
//! The server is built in two layers, after the shape of quinn-proto/quinn:
//!
//! * a sans-IO **message factory** (Momentum's `esmtp_message_factory`): a per-connection ESMTP
//!   state machine fed bytes, time and hook verdicts, emitting bytes and actions;
//! * a **mio event loop** driver that owns sockets, a `slab` of connections, a worker pool for
//!   blocking hook work and the durable spool (the default queue hook).
//!
//! All SMTP parsing is done by [`smtp_proto`]; plugin hooks come from [`hooks_api`].
//!
//! | module | what it is for |
//! |---|---|
//! | [`config`] | `impulse.toml`: listeners, limits, timeouts, spool, plugins, with embedded defaults |
//! | [`factory`] | the sans-IO ESMTP message factory: one state machine per connection |
//! | [`spool`] | the durable on-disk spool: streaming writer, group commit, recovery, read side |
//!
//! Status: the factory and the spool exist; the event loop that drives them is being built
//! (see the project's issue tracker). Nothing in this crate accepts connections yet.
#![warn(missing_docs)]

pub mod config;
pub mod factory;
pub mod spool;

pub use factory::{
    Decision, Envelope, Event, EventKind, Extensions, Factory, FactoryConfig, FactoryError, State,
};

pub use hooks_api;
pub use smtp_proto;
