//! # impulse-plugin-suppression — a suppression list for the relay
//!
//! The `suppression` plugin keeps a list of recipients that hard-bounced, and bounces mail to
//! them at once, without an attempt, so a sender's repeated mail to a dead address never
//! reaches the next hop again (which is what receivers judge senders by):
//!
//! ```toml
//! [plugins.suppression]
//! file = "/var/lib/impulse/suppressed"   # one address per line; created when missing
//! ```
//!
//! It uses two relay-side hook points ([`hooks_api::relay`]):
//!
//! - **`delivery_outcome`** (`Order::Last`, so it sees only outcomes no other hook changed):
//!   a recipient whose outcome is *bounced* with a reply of a bounce class of category
//!   **hard** is added to the list and to its file. With the built-in classes those are
//!   10 Invalid Recipient (`550 5.1.1 user unknown`, any 5xx `5.1.x` but `5.1.2`), 30 No
//!   RCPT and 90 Unsubscribe; a plugin class (bounce-rules) of category `hard` counts too.
//!   Hard classes are only ever given to 5xx replies, so a temporary failure never
//!   suppresses an address; nor does a local failure, a DNS failure (`5.1.2` is 21 DNS
//!   Failure) or a block.
//! - **`attempt`** (`Order::First`): a recipient on the list is refused with
//!   `550 5.1.1 recipient suppressed after an earlier hard bounce` before it is handed to any
//!   next hop; the relay bounces it and notifies the sender as for any bounce.
//!
//! Addresses are compared ignoring ASCII case, without angle brackets. The file is read at
//! start (a line that is not an address stops the server, naming the line); to lift a
//! suppression, delete the line and restart. Entries are appended as they are learnt (not
//! synced: a crash may forget the last ones, which costs one more attempt each).
//!
//! What this crate does not do: share a list between servers, expire entries, or look at
//! the server side (RCPT); and it has no `.so` entry points — its `.so`,
//! `libimpulse_plugin_suppression.so`, is built by `impulse-plugin-suppression-so`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod list;

use std::path::PathBuf;
use std::sync::Arc;

use hooks_api::relay::Disposition;
use hooks_api::smtp_proto::classify::Category;
use hooks_api::{Order, PluginConfig, Registrar, Verdict};

pub use list::List;

/// The plugin's name, and its configuration table's.
pub const NAME: &str = "suppression";

/// The reply a suppressed recipient bounces with.
pub const SUPPRESSED: (u16, &str, &str) = (
    550,
    "5.1.1",
    "recipient suppressed after an earlier hard bounce",
);

/// `[plugins.suppression]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The list's file.
    pub file: PathBuf,
}

/// Reads the list and registers the two hooks (see the [crate docs](crate)).
pub fn init(r: &mut Registrar, config: &PluginConfig) -> Result<(), String> {
    let config: Config = config.deserialize()?;
    let list =
        Arc::new(List::open(&config.file).map_err(|e| format!("[plugins.{NAME}] file {e}"))?);
    hooks_api::log::info!(
        "suppression: {} addresses in {}",
        list.len(),
        list.path().display()
    );
    let on_list = list.clone();
    r.on_attempt(Order::First, move |ctx| {
        if on_list.contains(ctx.recipient) {
            let (code, status, text) = SUPPRESSED;
            Verdict::reject(code, status, text)
        } else {
            Verdict::Continue
        }
    });
    r.on_delivery_outcome(Order::Last, move |ctx| {
        if ctx.disposition == Disposition::Bounced
            && !ctx.local
            && ctx.class.category == Category::Hard
        {
            match list.record(ctx.recipient) {
                Ok(true) => hooks_api::log::info!(
                    "{}: to=<{}>: suppressed from now on ({} {})",
                    ctx.queue_id,
                    ctx.recipient,
                    ctx.class.id,
                    ctx.class.name
                ),
                Ok(false) => {}
                Err(e) => hooks_api::log::error!("suppression: {} not written: {e}", ctx.recipient),
            }
        }
        Verdict::Continue
    });
    Ok(())
}

hooks_api::plugin!("suppression", env!("CARGO_PKG_VERSION"), init);
