//! [`LoadError`]: why a plugin could not be loaded or initialised.

use std::path::PathBuf;

/// Why a plugin could not be loaded or initialised. Every message is meant for an operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The plugin file does not exist.
    #[error("plugin file {path} does not exist")]
    FileMissing {
        /// The path given.
        path: PathBuf,
    },
    /// The dynamic loader refused the file (not a shared library, wrong architecture,
    /// missing dependency).
    #[error("cannot load {path} as a shared library: {reason}")]
    Open {
        /// The path given.
        path: PathBuf,
        /// The dynamic loader's message.
        reason: String,
    },
    /// The library lacks an entry symbol: it was not built with `hooks_api::export_plugin!`.
    #[error("{path} is not an Impulse plugin: it has no `{symbol}` symbol (build it with hooks_api::export_plugin!)")]
    NotAPlugin {
        /// The path given.
        path: PathBuf,
        /// The missing symbol.
        symbol: &'static str,
    },
    /// The plugin was built differently from this server; loading it would be undefined
    /// behaviour. The message tells the operator to rebuild it against this server's
    /// hooks-api with the same compiler.
    #[error(
        "{path} was built for a different plugin ABI: {field} is {found:?}, this server needs \
         {expected:?}; the plugin must be rebuilt against this server's hooks-api {} (plugin \
         ABI {}) with the same rustc ({})",
        crate::abi::HOOKS_API_VERSION,
        crate::abi::ABI_VERSION,
        crate::abi::RUSTC_VERSION
    )]
    AbiMismatch {
        /// The path given.
        path: PathBuf,
        /// The field that differs: `abi_version`, `hooks_api_version`, `rustc_version`,
        /// `target` or `layout`.
        field: &'static str,
        /// The server's value.
        expected: String,
        /// The plugin's value.
        found: String,
    },
    /// The plugin's entry point panicked.
    #[error("plugin {plugin} panicked while loading: {message}")]
    EntryPanicked {
        /// The plugin (or the file, when the panic came before any plugin started).
        plugin: String,
        /// The panic message.
        message: String,
    },
    /// The plugin's `init` returned an error.
    #[error("plugin {plugin} failed to initialise: {reason}")]
    InitFailed {
        /// The plugin.
        plugin: String,
        /// The plugin's reason.
        reason: String,
    },
    /// Two plugins have the same name.
    #[error("a plugin named {name} is already loaded")]
    Duplicate {
        /// The name.
        name: String,
    },
    /// A plugin registered something invalid or conflicting (a bad ESMTP keyword, an
    /// extension or client state another plugin owns, a bounce class that exists).
    #[error("plugin {plugin}: {reason}")]
    InvalidRegistration {
        /// The plugin.
        plugin: String,
        /// What is wrong.
        reason: String,
    },
    /// The library declares no plugin.
    #[error("{path} declares no plugin (use hooks_api::plugin! in it)")]
    Empty {
        /// The path given.
        path: PathBuf,
    },
}
