//! Waiting for what a peer, a server or a relay should do within a moment: a condition
//! polled until it holds or a limit passes. It does not sleep for a fixed time to let
//! something happen.

use std::time::{Duration, Instant};

/// Polls `done` until it holds or `limit` has passed; returns its last answer.
pub fn until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}
