//! # hooks-api — the Impulse plugin contract
//!
//! Everything a plugin may see and do, and everything the host needs to load plugins:
//!
//! | module | what it is for |
//! |---|---|
//! | [`verdict`] | [`Verdict`] — what a hook answers — and the chain rules; pending verdicts ([`Completer`]) |
//! | [`context`] | [`Ctx`], the per-hook context, and the event of each server hook point |
//! | [`relay`] | the relay-side hook points' events (route, attempt, delivery outcome, bounce) and [`RelayScope`] |
//! | [`mod@points`] | the hook table: every hook point, declared once |
//! | [`hook`] | [`HookPoint`] and [`Side`] (generated from the table), [`Order`] and the ordering rules; panic containment |
//! | [`session`] | [`SessionInfo`], [`Envelope`]: typed, validated connection and transaction state |
//! | [`headers`] | a bounded RFC 5322 header-block parser ([`Headers`]) |
//! | [`notes`] | [`Notes`], per-connection and per-transaction stores for plugins to share data |
//! | [`extension`] | [`EsmtpExtension`]: EHLO keyword, verb handler, MAIL/RCPT parameters |
//! | [`client`] | [`ClientState`], [`ClientArgs`]: custom SMTP client states |
//! | [`registrar`] | [`Registrar`]: what a plugin's `init` registers into |
//! | [`registry`] | [`Registry`]: loading plugins, dispatching hooks |
//! | [`mod@plugin`], [`config`] | [`PluginDecl`] and [`plugin!`]; [`PluginConfig`] |
//! | [`abi`] | the C-stable ABI data: the `#[repr(C)]` declaration, version constants, symbols |
//! | [`entry`] | the plugin side of the `.so` boundary: [`export_plugin!`], the layout fingerprint |
//! | [`loader`] | the host side: `dlopen` and the ABI guard |
//!
//! # Layers
//!
//! Modules use only modules of the layers below them (and their own layer's leaves), so
//! there is no `use` cycle:
//!
//! 1. **data** — [`abi`] (the C-stable ABI data; it uses no other module), [`mod@points`]
//!    (the hook table, a macro), [`error`], [`config`], [`session`], [`notes`], [`headers`],
//!    [`verdict`];
//! 2. **contract** — [`context`], [`relay`], [`hook`] (generates [`HookPoint`] from the table),
//!    [`extension`], [`client`];
//! 3. **registration** — `chains` (one chain per point, from the table), [`registrar`]
//!    (`on_*`, from the table), [`mod@plugin`];
//! 4. **the boundary** — [`entry`] (plugin side) and [`loader`] (host side, above
//!    `entry`);
//! 5. **registry** — [`registry`] and `dispatch` (`dispatch_*` / `resume_*`, from the
//!    table).
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
#[macro_use]
mod chains;
pub mod client;
pub mod config;
pub mod context;
mod dispatch;
pub mod entry;
pub mod error;
pub mod extension;
pub mod headers;
#[macro_use]
pub mod hook;
pub mod loader;
pub mod notes;
pub mod plugin;
pub mod points;
pub mod registrar;
pub mod registry;
pub mod relay;
pub mod session;
pub mod verdict;

#[cfg(test)]
mod relay_tests;
#[cfg(test)]
mod table_tests;
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
pub use hook::{panics_caught, HookPoint, Order, ServerStage, Side};
pub use loader::AbiFacts;
pub use notes::Notes;
pub use plugin::PluginDecl;
pub use registrar::{ClassRegistration, Registrar, RuleRegistration};
pub use registry::{PluginInfo, PluginSource, PluginSummary, Registry};
pub use relay::{
    Attempt, AttemptCtx, Bounce, BounceCtx, DeliveryOutcome, DeliveryOutcomeCtx, Disposition,
    NotificationKind, RelayScope, Reported, Route, RouteCtx, RouteHop,
};
pub use session::{Envelope, Recipient, SessionInfo, TlsInfo};
pub use verdict::{ChannelPending, Completer, Completion, Pending, PendingSource, Verdict};

pub use inventory;
pub use log;
pub use serde;
pub use smtp_proto;
pub use toml;
