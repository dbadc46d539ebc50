//! # impulse-plugin-suppression-so — the `suppression` plugin as a `.so`
//!
//! Builds `libimpulse_plugin_suppression.so`, a file to load as a plugin (`plugin_files`,
//! `impulse plugin check`): the plugin declaration of `impulse-plugin-suppression`, linked in,
//! and the `.so` entry points (`hooks_api::export_plugin!`).
//!
//! What this crate does not do: any of the plugin's work (the suppression list and its hooks),
//! which is in `impulse-plugin-suppression`, the crate binaries link statically. The entry
//! points are here alone, so no form of `cargo build` can leave them out of the `.so` or put
//! them into a binary.
#![deny(unsafe_code)]

// Linked so that the entry point finds the plugin's declaration through `inventory`.
use impulse_plugin_suppression as _;

hooks_api::export_plugin!();
