//! The commit pipeline: sync threads fsync files, one committer thread renames them into the
//! queue in batches and covers each batch with one directory fsync (group commit).
//!
//! ```text
//! Spool::commit ──► [sync threads] finish + fsync(file) ──► [committer] rename × n,
//!   (never blocks)     (N in parallel, default 16)            fsync(queue dir) × 1,
//!                                                            callback × n
//! ```
//!
//! The committer never waits to fill a batch: a batch is whatever arrived while the previous
//! directory fsync ran, so a lone commit pays no extra latency and a busy spool shares flushes.

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use crossbeam_channel::{Receiver, Sender};

use super::error::SpoolError;
use super::id::QueueId;
use super::writer::SpoolWriter;
use super::Shared;

/// Called once when a commit completes: `Ok(id)` means the message is on stable storage
/// (answer `250`), `Err` means it is not and never will be (answer [`SpoolError::reply`]).
///
/// Runs on a spool thread: keep it short (send to a channel, wake an event loop).
pub type CommitCallback = Box<dyn FnOnce(Result<QueueId, SpoolError>) + Send + 'static>;

/// The most renames one directory fsync covers.
const MAX_BATCH: usize = 1024;

/// A commit waiting for its file fsync.
pub(crate) struct Job {
    pub writer: SpoolWriter,
    pub done: CommitCallback,
}

/// A commit whose file is durable, waiting for its rename and the directory fsync.
struct Synced {
    id: QueueId,
    tmp: PathBuf,
    done: CommitCallback,
}

/// Counters of the commit pipeline.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub commits: AtomicU64,
    pub failures: AtomicU64,
    pub dir_fsyncs: AtomicU64,
}

/// Starts the sync threads and the committer; returns the channel commits are sent to.
/// The threads exit once every sender is dropped and the work queued before is done.
pub(crate) fn start(
    shared: Arc<Shared>,
    sync_threads: usize,
    counters: Arc<Counters>,
) -> io::Result<Sender<Job>> {
    let (job_tx, job_rx) = crossbeam_channel::unbounded::<Job>();
    let (synced_tx, synced_rx) = crossbeam_channel::unbounded::<Synced>();
    for n in 0..sync_threads.max(1) {
        let rx = job_rx.clone();
        let tx = synced_tx.clone();
        let counters = counters.clone();
        thread::Builder::new()
            .name(format!("spool-sync-{n}"))
            .spawn(move || sync_loop(rx, tx, counters))?;
    }
    drop(synced_tx);
    thread::Builder::new()
        .name("spool-commit".into())
        .spawn(move || commit_loop(shared, synced_rx, counters))?;
    Ok(job_tx)
}

/// Runs a callback, surviving a panic in it (the pipeline must outlive a bad callback).
fn complete(done: CommitCallback, result: Result<QueueId, SpoolError>) {
    if catch_unwind(AssertUnwindSafe(move || done(result))).is_err() {
        log::error!("spool: a commit callback panicked");
    }
}

fn sync_loop(rx: Receiver<Job>, tx: Sender<Synced>, counters: Arc<Counters>) {
    for Job { mut writer, done } in rx {
        match writer.finish() {
            Ok(()) => {
                let (id, tmp) = writer.into_tmp_path();
                if let Err(e) = tx.send(Synced { id, tmp, done }) {
                    // The committer is gone: nothing will make this message durable.
                    complete(e.into_inner().done, Err(SpoolError::Closed));
                }
            }
            Err(e) => {
                log::warn!("spool: commit of {} failed: {e}", writer.id());
                counters.failures.fetch_add(1, Ordering::Relaxed);
                complete(done, Err(e));
            }
        }
    }
}

/// Rebuilds an error for each member of a failed batch (`io::Error` is not `Clone`).
fn copy_io_error(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(raw) => io::Error::from_raw_os_error(raw),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

fn commit_loop(shared: Arc<Shared>, rx: Receiver<Synced>, counters: Arc<Counters>) {
    let mut batch: Vec<(Synced, PathBuf)> = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut pending = vec![first];
        while pending.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => pending.push(next),
                Err(_) => break,
            }
        }
        for s in pending {
            let dest = shared.queue_dir.join(s.id.as_str());
            match shared.io.rename(&s.tmp, &dest) {
                Ok(()) => batch.push((s, dest)),
                Err(e) => {
                    log::warn!("spool: commit of {} failed: rename: {e}", s.id);
                    let _ = shared.io.remove(&s.tmp);
                    counters.failures.fetch_add(1, Ordering::Relaxed);
                    complete(s.done, Err(SpoolError::io("rename", s.tmp, e)));
                }
            }
        }
        if batch.is_empty() {
            continue;
        }
        counters.dir_fsyncs.fetch_add(1, Ordering::Relaxed);
        match shared.io.fsync_dir(&shared.queue_dir) {
            Ok(()) => {
                for (s, _) in batch.drain(..) {
                    log::debug!("spool: {} queued", s.id);
                    counters.commits.fetch_add(1, Ordering::Relaxed);
                    complete(s.done, Ok(s.id));
                }
            }
            Err(e) => {
                // The renames may or may not be durable. The clients are told 451, so take
                // the files back out: a retry then does not duplicate the message (if the
                // removal does not stick either, the worst case is a duplicate, never a loss).
                for (s, dest) in batch.drain(..) {
                    log::warn!("spool: commit of {} failed: fsync of queue dir: {e}", s.id);
                    let _ = shared.io.remove(&dest);
                    counters.failures.fetch_add(1, Ordering::Relaxed);
                    let err =
                        SpoolError::io("fsync_dir", shared.queue_dir.clone(), copy_io_error(&e));
                    complete(s.done, Err(err));
                }
            }
        }
    }
}
