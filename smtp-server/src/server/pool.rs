//! The worker pool (the hook pool, `impulse-pool-N`): a small pool of threads for blocking
//! hook work (message and queue hooks and the spool commit after them), fed by a crossbeam
//! channel. The threads exit when the last sender is dropped.
//!
//! It knows nothing of hooks or connections: a job is a closure, and its answer goes back
//! to the loop through the job's own channel.

use crossbeam_channel::{Receiver, Sender};

/// One unit of blocking work.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// The pool's sending side.
#[derive(Debug, Clone)]
pub(crate) struct Pool {
    tx: Sender<Job>,
}

impl Pool {
    /// Starts `threads` threads named `impulse-pool-N`.
    pub(crate) fn start(threads: usize) -> std::io::Result<Pool> {
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        for i in 0..threads.max(1) {
            let rx: Receiver<Job> = rx.clone();
            std::thread::Builder::new()
                .name(format!("impulse-pool-{i}"))
                .spawn(move || {
                    for job in rx {
                        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                            log::error!("a hook pool job panicked");
                        }
                    }
                })?;
        }
        Ok(Pool { tx })
    }

    /// Queues a job. Returns it back if the pool is gone.
    pub(crate) fn run(&self, job: Job) -> Result<(), Job> {
        self.tx.send(job).map_err(|e| e.into_inner())
    }
}
