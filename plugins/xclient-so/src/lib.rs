//! # impulse-plugin-xclient-so — the `xclient` plugin as a `.so`
//!
//! Builds `libimpulse_plugin_xclient.so`, a file to load as a plugin (`plugin_files`, `impulse
//! plugin check`): the plugin declaration of `impulse-plugin-xclient`, linked in, and the `.so`
//! entry points (`hooks_api::export_plugin!`).
//!
//! What this crate does not do: any of the plugin's work (Postfix's XCLIENT extension), which
//! is in `impulse-plugin-xclient`, the crate binaries link statically. The entry points are
//! here alone, so no form of `cargo build` can leave them out of the `.so` or put them into a
//! binary.
#![deny(unsafe_code)]

// Linked so that the entry point finds the plugin's declaration through `inventory`.
use impulse_plugin_xclient as _;

hooks_api::export_plugin!();
