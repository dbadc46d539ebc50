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
//! | [`metrics`] | counters, gauges and histograms in the Prometheus text format, and the `GET /metrics` responder |
//! | [`server`] | the mio event loop: listeners, connections, hooks, spool wiring, shutdown, embedding |
//! | [`spool`] | the durable on-disk spool (the `smtp-spool` crate, re-exported): streaming writer, group commit, recovery, read side |
//!
//! Run a server with [`server::Server::builder`]; `impulse serve` is the operator's way.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod factory;
pub mod metrics;
pub mod server;
pub use smtp_spool as spool;

pub use factory::{
    Decision, Envelope, Event, EventKind, Extensions, Factory, FactoryConfig, FactoryError, State,
};

pub use server::{Server, ServerBuilder, ServerError, ServerHandle};

pub use hooks_api;
pub use smtp_proto;
