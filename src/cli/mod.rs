//! The operator subcommands, one module each.

pub mod plugin;
