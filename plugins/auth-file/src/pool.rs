//! A small, bounded pool of verification threads, started on first use.
//!
//! Password hashing is meant to be slow (tens of milliseconds for Argon2id with the default
//! parameters), so it never runs on the server's event-loop threads when the host can wait:
//! the AUTH hook goes pending and a worker here completes it. The pool is bounded — at most
//! `workers + queue` verifications in flight — so a flood of AUTH attempts is answered with
//! a temporary failure instead of an unbounded backlog.
// The verification pool is this plugin's driver: it owns its threads.
#![allow(clippy::disallowed_methods)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};

/// One unit of work.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// The pool. See the [module docs](self).
#[derive(Debug)]
pub struct Pool {
    workers: usize,
    limit: usize,
    in_flight: Arc<AtomicUsize>,
    tx: OnceLock<Mutex<Sender<Job>>>,
}

/// Decrements the in-flight count when a job ends, even by panicking.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Pool {
    /// A pool of `workers` threads (at least one) accepting up to `queue` waiting jobs.
    pub fn new(workers: usize, queue: usize) -> Pool {
        let workers = workers.max(1);
        Pool {
            workers,
            limit: workers + queue,
            in_flight: Arc::new(AtomicUsize::new(0)),
            tx: OnceLock::new(),
        }
    }

    /// Reserves a place for one job: `None` when the pool is full. Reserve before going
    /// pending, so a full pool can be answered without a dangling completion.
    pub fn reserve(&self) -> Option<Reservation<'_>> {
        let mut now = self.in_flight.load(Ordering::Acquire);
        loop {
            if now >= self.limit {
                return None;
            }
            match self.in_flight.compare_exchange_weak(
                now,
                now + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(Reservation { pool: self }),
                Err(seen) => now = seen,
            }
        }
    }

    /// The number of jobs queued or running.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    fn sender(&self) -> &Mutex<Sender<Job>> {
        self.tx.get_or_init(|| {
            let (tx, rx) = channel::<Job>();
            let rx = Arc::new(Mutex::new(rx));
            for i in 0..self.workers {
                let rx = rx.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("auth-file-{i}"))
                    .spawn(move || work(&rx));
                if let Err(e) = spawned {
                    hooks_api::log::error!("auth-file: cannot start a verification thread: {e}");
                }
            }
            Mutex::new(tx)
        })
    }
}

fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = match rx.lock().unwrap_or_else(|e| e.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        // A panicking job drops its completer, which answers 451 4.3.0; the worker lives on.
        if catch_unwind(AssertUnwindSafe(job)).is_err() {
            hooks_api::log::error!("auth-file: a verification panicked");
        }
    }
}

/// A reserved place in the pool; [`run`](Reservation::run) it or drop it.
#[derive(Debug)]
pub struct Reservation<'a> {
    pool: &'a Pool,
}

impl Reservation<'_> {
    /// Runs `job` on a worker thread.
    pub fn run(self, job: impl FnOnce() + Send + 'static) {
        let pool = self.pool;
        // The slot now owns the reservation's count.
        std::mem::forget(self);
        let slot = Slot(pool.in_flight.clone());
        let job: Job = Box::new(move || {
            let _slot = slot;
            job();
        });
        let sent = pool
            .sender()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(job);
        if let Err(rejected) = sent {
            // No worker could be started: run it here rather than lose it.
            (rejected.0)();
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.pool.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn runs_jobs_and_bounds_the_backlog() {
        let pool = Pool::new(1, 1);
        let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<u32>();
        let gate = Arc::new(Mutex::new(gate_rx));
        for n in 0..2 {
            let (gate, done) = (gate.clone(), done_tx.clone());
            pool.reserve().expect("room").run(move || {
                let _ = gate.lock().unwrap().recv();
                done.send(n).unwrap();
            });
        }
        assert_eq!(pool.in_flight(), 2);
        assert!(
            pool.reserve().is_none(),
            "one running and one queued fill it"
        );
        drop(pool.reserve());
        gate_tx.send(()).unwrap();
        gate_tx.send(()).unwrap();
        let mut got = [
            done_rx.recv_timeout(Duration::from_secs(5)).unwrap(),
            done_rx.recv_timeout(Duration::from_secs(5)).unwrap(),
        ];
        got.sort();
        assert_eq!(got, [0, 1]);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while pool.in_flight() != 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(pool.in_flight(), 0);
        assert!(pool.reserve().is_some());
    }
}
