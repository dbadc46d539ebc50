//! # impulse-test-support — what Impulse's tests share
//!
//! | module | what it is for |
//! |---|---|
//! | [`pair`] | the real client session against the real server factory, in memory, on one simulated clock, the spool on `MemFs` |
//!
//! Test code only (`publish = false`): it panics on what a test would fail on anyway and
//! makes no promise of a stable API. It holds no test of the crates it serves: those stay
//! beside the code they check.
#![warn(missing_docs)]

pub mod pair;

pub use pair::{Answer, Pair, Stored, Transcript};
