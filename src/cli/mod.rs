//! The `impulse` subcommands that are more than a few lines, one module each.

pub mod bulk;
pub mod classify;
pub mod config;
pub mod plugin;
pub mod plugin_new;
pub mod queue;
pub mod relay_metrics;
pub mod send;
pub mod serve;
pub mod spool;
