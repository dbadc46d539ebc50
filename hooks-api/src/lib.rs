//! # hooks-api — the Impulse plugin contract
//!
//! Everything a plugin may see and do, and everything the host needs to load plugins:
//!
//! | module | what it is for |
//! |---|---|
//! | [`verdict`] | [`Verdict`] — what a hook answers — and the chain rules; pending verdicts ([`Completer`]) |
//! | [`context`] | [`Ctx`], the per-hook context, and the event of each server hook point |
//! | [`hook`] | [`HookPoint`], [`Order`] and the ordering rules; panic containment |
//! | [`session`] | [`SessionInfo`], [`Envelope`]: typed, validated connection and transaction state |
//! | [`headers`] | a bounded RFC 5322 header-block parser ([`Headers`]) |
//! | [`notes`] | [`Notes`], per-connection and per-transaction stores for plugins to share data |
//! | [`extension`] | [`EsmtpExtension`]: EHLO keyword, verb handler, MAIL/RCPT parameters |
//! | [`client`] | [`ClientState`], [`ClientArgs`]: custom SMTP client states |
//! | [`registrar`] | [`Registrar`]: what a plugin's `init` registers into |
//! | [`registry`] | [`Registry`]: loading plugins, dispatching hooks |
//! | [`mod@plugin`], [`config`] | [`PluginDecl`] and [`plugin!`]; [`PluginConfig`] |
//! | [`abi`], [`loader`] | the `.so` ABI guard, [`export_plugin!`], and the host's loader |
//!
//! A plugin depends on this crate only: it re-exports [`smtp_proto`] (the protocol types,
//! and [`smtp_proto::classify`] for bounce classes), `toml`, `serde` and `inventory`.
//! See `docs/PLUGINS.md` for the plugin author's guide.
//!
//! What this crate does not do: any I/O of its own (beyond `dlopen`), threads, or policy.
//! The server and the client decide when to dispatch; plugins decide what to answer.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod abi;
pub mod client;
pub mod config;
pub mod context;
pub mod error;
pub mod extension;
pub mod headers;
pub mod hook;
pub mod loader;
pub mod notes;
pub mod plugin;
mod points;
pub mod registrar;
pub mod registry;
pub mod session;
pub mod verdict;

#[cfg(test)]
mod tests;

pub use client::{
    Anchor, ClientArgs, ClientArgsError, ClientContext, ClientState, ClientStateRegistration,
    StateAction,
};
pub use config::PluginConfig;
pub use context::{
    Auth, AuthCtx, Command, CommandCtx, Connect, ConnectCtx, Ctx, DataStart, DataStartCtx,
    Disconnect, DisconnectCtx, ExtensionCtx, Helo, HeloCtx, Mail, MailCtx, Message, MessageCtx,
    MessageData, Queue, QueueCtx, Rcpt, RcptCtx,
};
pub use error::LoadError;
pub use extension::{EsmtpExtension, RegisteredExtension};
pub use headers::{Header, HeaderLimits, Headers};
pub use hook::{HookPoint, Order};
pub use loader::AbiFacts;
pub use notes::Notes;
pub use plugin::PluginDecl;
pub use registrar::{ClassRegistration, Registrar, RuleRegistration};
pub use registry::{PluginInfo, PluginSource, PluginSummary, Registry};
pub use session::{Envelope, Recipient, SessionInfo, TlsInfo};
pub use verdict::{ChannelPending, Completer, Completion, Pending, PendingSource, Verdict};

pub use inventory;
pub use log;
pub use serde;
pub use smtp_proto;
pub use toml;
