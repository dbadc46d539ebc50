//! Deterministic tests of the factory through its public API, with a simulated clock.

mod backpressure;
mod decisions;
mod errors;
mod props;
mod session;
mod sync;
mod tls_auth;
mod transaction;
mod util;
