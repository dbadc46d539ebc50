//! Deterministic tests of the factory through its public API, with a simulated clock.
// Tests read the real clock once, for the instant their simulated clock starts from.
#![allow(clippy::disallowed_methods)]

mod abuse;
mod backpressure;
mod bdat;
mod decisions;
mod errors;
mod props;
mod relay_dsn;
mod session;
mod sync;
mod tls_auth;
mod transaction;
mod util;
