//! The relay's record writes and removals, on threads of their own so that the relay thread
//! never waits on an fsync: each queue id always goes to the same thread, so the writes and
//! the removal of one message happen in the order the scheduler asked for them, and
//! different messages' fsyncs overlap (the file system commits them together).

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

use crossbeam_channel::{Receiver, Sender};
use smtp_spool::{QueueId, Spool, SpoolError};

/// Threads writing records and removing finished messages.
pub(crate) const IO_THREADS: usize = 8;

/// A write or a removal.
#[derive(Debug)]
pub(crate) enum Job {
    /// Write this state record durably, then report [`Done::Persisted`].
    Persist { id: QueueId, record: Vec<u8> },
    /// Remove the message and its record (nothing is reported back).
    Remove { id: QueueId },
}

/// What a [`Job::Persist`] came to.
#[derive(Debug)]
pub(crate) enum Done {
    /// The record is durable.
    Persisted(QueueId),
    /// It is not; the relay tries again later.
    Failed {
        id: QueueId,
        record: Vec<u8>,
        error: String,
    },
}

/// The I/O threads' queues.
#[derive(Debug)]
pub(crate) struct IoPool {
    queues: Vec<Sender<Job>>,
}

impl IoPool {
    /// Starts the threads over `spool`; outcomes of writes go to `done`.
    pub(crate) fn start(spool: &Spool, done: Sender<Done>) -> std::io::Result<IoPool> {
        let mut queues = Vec::with_capacity(IO_THREADS);
        for n in 0..IO_THREADS {
            let (tx, rx) = crossbeam_channel::unbounded();
            let (spool, done) = (spool.clone(), done.clone());
            std::thread::Builder::new()
                .name(format!("impulse-relay-io-{n}"))
                .spawn(move || run(&spool, &rx, &done))?;
            queues.push(tx);
        }
        Ok(IoPool { queues })
    }

    /// Hands a job to the thread of its message.
    pub(crate) fn submit(&self, job: Job) {
        let id = match &job {
            Job::Persist { id, .. } | Job::Remove { id } => *id,
        };
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(id);
        let queue = &self.queues[(hash % self.queues.len() as u64) as usize];
        // The threads live as long as the pool's senders.
        let _ = queue.send(job);
    }
}

fn run(spool: &Spool, jobs: &Receiver<Job>, done: &Sender<Done>) {
    // Removals waiting for their batch: every one queued right now goes in one
    // `remove_many` (two directory syncs for all of them).
    let mut batch: Vec<QueueId> = Vec::new();
    let mut next = jobs.recv().ok();
    while let Some(job) = next.take() {
        match job {
            Job::Remove { id } => batch.push(id),
            Job::Persist { id, record } => {
                // A message's jobs keep their order: removals queued before go first.
                remove(spool, &mut batch);
                let report = match spool.write_state(id, &record) {
                    Ok(()) => Done::Persisted(id),
                    Err(e) => Done::Failed {
                        id,
                        record,
                        error: e.to_string(),
                    },
                };
                if done.send(report).is_err() {
                    return;
                }
            }
        }
        next = match jobs.try_recv() {
            Ok(job) => Some(job),
            Err(_) => {
                remove(spool, &mut batch);
                jobs.recv().ok()
            }
        };
    }
    remove(spool, &mut batch);
}

/// Removes the batch's messages and their records, durably, and logs each.
fn remove(spool: &Spool, batch: &mut Vec<QueueId>) {
    if batch.is_empty() {
        return;
    }
    for (id, result) in batch.iter().zip(spool.remove_many(batch)) {
        match result {
            Ok(()) | Err(SpoolError::NotFound(_)) => log::info!("{id}: removed"),
            Err(e) => log::error!("{id}: not removed: {e}"),
        }
    }
    batch.clear();
}
