//! # Impulse — a Momentum-style ESMTP toolkit
//!
//! This facade re-exports the Impulse crates so an embedder needs one dependency:
//!
//! | crate | what it is for |
//! |---|---|
//! | [`proto`] (`smtp-proto`) | the whole SMTP protocol as data: commands, replies, capabilities, addresses, DATA transparency, SASL, bounce classification |
//! | [`hooks`] (`hooks-api`) | the plugin contract: hooks, verdicts, client states, ESMTP extensions, error classes |
//! | [`server`] (`smtp-server`) | the ESMTP message factory on a mio event loop, with a durable spool |
//! | [`client`] (`smtp-client`) | the modular client state machine and its drivers |
//!
//! The `impulse` binary (in this package) is the operator's entry point.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use hooks_api as hooks;
pub use smtp_client as client;
pub use smtp_proto as proto;
pub use smtp_server as server;
