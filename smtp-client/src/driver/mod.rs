//! I/O drivers around the sans-IO [`Session`](crate::Session).
//!
//! | driver | for |
//! |---|---|
//! | [`blocking`] | simple embedding: one connection on `std::net`, one thread |
//!
//! [`tls`] holds what every driver needs for STARTTLS: verification defaults and the
//! rustls configuration.
//!
//! A mio engine for many connections comes with a later increment.

pub mod blocking;
pub mod tls;
