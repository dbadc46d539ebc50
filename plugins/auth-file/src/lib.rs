//! # impulse-plugin-auth-file — AUTH against a file of password hashes
//!
//! The `auth-file` plugin verifies SMTP AUTH credentials (PLAIN and LOGIN) against a file
//! of `user:hash` lines, hashes being Argon2 PHC strings (`$argon2id$...`) or bcrypt
//! (`$2b$...`):
//!
//! ```toml
//! [plugins.auth-file]
//! file = "/etc/impulse/users"
//! realm = "example.com"                 # optional: user@example.com is looked up as user
//! workers = 2                           # verification threads
//! queue = 64                            # waiting verifications before 454 4.7.0
//! ```
//!
//! | attempt | answer |
//! |---|---|
//! | right password | `Accept`: the server answers `235 2.7.0` |
//! | wrong password, unknown user, authzid other than authcid | `535 5.7.8 Authentication credentials invalid` (an unknown user costs a dummy verification, so timing does not tell which users exist) |
//! | PLAIN/LOGIN without TLS | not asked: the server answers `538 5.7.11` itself unless its `[auth] plaintext = true` |
//! | every verification thread busy, queue full | `454 4.7.0 Temporary authentication failure` |
//! | another mechanism | `Continue` (another plugin may handle it) |
//!
//! Verification is slow by design, so the hook goes pending and a worker thread of the
//! plugin completes it ([`pool`]); a host without a pending source gets an inline check.
//! The file is read at `init` (an unreadable or invalid file stops the server, naming the
//! file and line) and re-read when its modification time or size changes ([`users`]).
//! `impulse-passwd FILE USER` adds or changes a user ([`passwd`]).
//!
//! What this crate does not do: other SASL mechanisms, proxy authorization, account
//! lockout, or any network I/O.
//!
//! Its `.so`, `libimpulse_plugin_auth_file.so`, is built by `impulse-plugin-auth-file-so`
//! (`plugins/auth-file-so`): this crate has no `.so` entry points, so a binary links it (and
//! other plugins) as it is.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod passwd;
pub mod pool;
pub mod users;

use std::sync::Arc;

use hooks_api::{Order, PluginConfig, Registrar};

pub use auth::{Authenticator, Config};
pub use users::{StoredHash, UserDb, UserFile};

/// The plugin's name, and its configuration table's.
pub const NAME: &str = "auth-file";

/// Reads the configuration and the user file, and registers the AUTH hook.
pub fn init(r: &mut Registrar, config: &PluginConfig) -> Result<(), String> {
    let config: Config = config.deserialize()?;
    let authenticator = Arc::new(Authenticator::new(&config)?);
    hooks_api::log::info!("auth-file: users from {}", config.file.display());
    r.on_auth(Order::Priority(0), move |ctx| authenticator.on_auth(ctx));
    Ok(())
}

hooks_api::plugin!("auth-file", env!("CARGO_PKG_VERSION"), init);
