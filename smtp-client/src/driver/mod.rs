//! I/O drivers around the sans-IO [`Session`](crate::Session).
//!
//! | driver | for |
//! |---|---|
//! | [`blocking`] | simple embedding: one connection on `std::net`, one thread |
//! | [`engine`] | volume: many connections on one mio thread, each reused for many messages |
//!
//! [`tls`] holds what every driver needs for STARTTLS: verification defaults and the
//! rustls configuration.
// Drivers read the clock and own their threads (clippy.toml keeps both out of the session and
// the dispatcher, which re-denies it).
#![allow(clippy::disallowed_methods)]

pub mod blocking;
pub mod engine;
pub mod tls;
