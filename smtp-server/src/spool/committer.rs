//! The commit pipeline: sync threads each finish, fsync and rename one message, then share
//! the directory fsync of `queue/` with every other rename done meanwhile (group commit).
//!
//! ```text
//! Spool::commit ──► [job queue] ──► sync thread: END record, fdatasync(file), rename,
//!   (never blocks)                   then wait for a directory fsync that began after the
//!                                    rename: the first thread to need one runs it for all
//!                                    renames done so far (the leader), the others wait on it
//! ```
//!
//! No thread hop between the file sync and the directory sync, no thread that spins: idle
//! sync threads sleep on a condition variable. A lone commit pays one file sync and one
//! directory sync; twenty concurrent commits share a handful of directory syncs.

use std::collections::VecDeque;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use parking_lot::{Condvar, Mutex};

use super::error::SpoolError;
use super::id::QueueId;
use super::writer::SpoolWriter;
use super::Shared;

/// Called once when a commit completes: `Ok(id)` means the message is on stable storage
/// (answer `250`), `Err` means it is not and never will be (answer [`SpoolError::reply`]).
///
/// Runs on a spool thread: keep it short (send to a channel, wake an event loop).
pub type CommitCallback = Box<dyn FnOnce(Result<QueueId, SpoolError>) + Send + 'static>;

/// How many failed directory syncs are remembered for the threads still waiting on them.
const FAILED_BATCHES_KEPT: usize = 64;

/// `EIO`, for a directory sync failure that carries no OS error number.
const EIO: i32 = 5;

/// The longest a directory-sync leader waits for renames already under way to join its
/// batch: a rename takes far less, and one more message per directory sync saves a sync.
const GATHER_LIMIT: std::time::Duration = std::time::Duration::from_millis(1);

/// A commit waiting for a sync thread.
pub(crate) struct Job {
    pub writer: SpoolWriter,
    pub done: CommitCallback,
}

/// Counters of the commit pipeline.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub commits: AtomicU64,
    pub failures: AtomicU64,
    pub dir_fsyncs: AtomicU64,
}

/// The commits waiting for a sync thread: a plain blocking queue (threads park at once,
/// they never spin or yield).
#[derive(Default)]
pub(crate) struct JobQueue {
    state: Mutex<(VecDeque<Job>, bool)>,
    ready: Condvar,
}

impl JobQueue {
    /// Queues a job; gives it back when the queue is closed.
    #[allow(clippy::result_large_err)] // moved once per message, never propagated with `?`
    pub fn push(&self, job: Job) -> Result<(), Job> {
        let mut state = self.state.lock();
        if state.1 {
            return Err(job);
        }
        state.0.push_back(job);
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// Lets the threads finish the queued jobs, then exit.
    pub fn close(&self) {
        self.state.lock().1 = true;
        self.ready.notify_all();
    }

    /// The next job, or `None` once the queue is closed and empty.
    fn pop(&self) -> Option<Job> {
        let mut state = self.state.lock();
        loop {
            if let Some(job) = state.0.pop_front() {
                return Some(job);
            }
            if state.1 {
                return None;
            }
            self.ready.wait(&mut state);
        }
    }
}

impl std::fmt::Debug for JobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.lock();
        f.debug_struct("JobQueue")
            .field("queued", &state.0.len())
            .field("closed", &state.1)
            .finish()
    }
}

/// Renames are numbered in the order they completed (tickets from 1); a directory sync
/// that starts after rename `n` makes renames `1..=n` durable.
#[derive(Default)]
struct DirState {
    /// Tickets handed out: renames completed.
    renamed: u64,
    /// Every ticket up to this one is settled (durable, or in a failed batch).
    settled: u64,
    /// A directory sync is running (or its leader is gathering renames).
    syncing: bool,
    /// Threads whose file is synced and whose rename is under way: a leader lets them join
    /// its batch (at most [`GATHER_LIMIT`]) rather than leave them to the next sync.
    renaming: u32,
    /// Recent batches whose directory sync failed, as inclusive ticket ranges.
    failed: VecDeque<(u64, u64, i32)>,
}

/// The group commit of directory syncs.
#[derive(Default)]
struct DirSync {
    state: Mutex<DirState>,
    /// Signalled when a rename under way took its ticket.
    gathered: Condvar,
    settled: Condvar,
}

impl DirSync {
    /// Waits until a directory sync that began after this thread's rename completed; runs
    /// it when no other thread does. `Ok` once the rename is durable.
    /// A synced file is about to be renamed: a leader may wait for it.
    fn renaming(&self) {
        self.state.lock().renaming += 1;
    }

    /// The rename announced with [`DirSync::renaming`] failed.
    fn rename_failed(&self) {
        let mut state = self.state.lock();
        state.renaming = state.renaming.saturating_sub(1);
        drop(state);
        self.gathered.notify_all();
    }

    fn make_durable(&self, shared: &Shared, counters: &Counters) -> io::Result<()> {
        let mut state = self.state.lock();
        state.renaming = state.renaming.saturating_sub(1);
        state.renamed += 1;
        let ticket = state.renamed;
        if state.syncing && state.renaming == 0 {
            self.gathered.notify_all();
        }
        loop {
            if ticket <= state.settled {
                return match state
                    .failed
                    .iter()
                    .find(|(a, b, _)| (*a..=*b).contains(&ticket))
                {
                    Some((_, _, raw)) => Err(io::Error::from_raw_os_error(*raw)),
                    None => Ok(()),
                };
            }
            if !state.syncing {
                // Lead: one directory sync for every rename done so far, after the renames
                // under way (briefly) joined.
                state.syncing = true;
                let deadline = std::time::Instant::now() + GATHER_LIMIT;
                while state.renaming > 0 {
                    if self.gathered.wait_until(&mut state, deadline).timed_out() {
                        break;
                    }
                }
                let (from, upto) = (state.settled + 1, state.renamed);
                drop(state);
                counters.dir_fsyncs.fetch_add(1, Ordering::Relaxed);
                let result = shared.io.fsync_dir(&shared.queue_dir);
                state = self.state.lock();
                state.syncing = false;
                state.settled = upto;
                if let Err(e) = &result {
                    // `io::Error` is not `Clone`: the others get its OS error number.
                    let raw = e.raw_os_error().unwrap_or(EIO);
                    state.failed.push_back((from, upto, raw));
                    if state.failed.len() > FAILED_BATCHES_KEPT {
                        state.failed.pop_front();
                    }
                }
                self.settled.notify_all();
                if ticket <= upto {
                    return result;
                }
                continue;
            }
            self.settled.wait(&mut state);
        }
    }
}

/// Starts the sync threads; returns the queue commits are pushed to. The threads exit once
/// the queue is closed and the jobs queued before are done.
pub(crate) fn start(
    shared: Arc<Shared>,
    sync_threads: usize,
    counters: Arc<Counters>,
) -> io::Result<Arc<JobQueue>> {
    let queue = Arc::new(JobQueue::default());
    let dir = Arc::new(DirSync::default());
    for n in 0..sync_threads.max(1) {
        let (jobs, dir, shared, counters) =
            (queue.clone(), dir.clone(), shared.clone(), counters.clone());
        let spawned = thread::Builder::new()
            .name(format!("spool-sync-{n}"))
            .spawn(move || sync_loop(&jobs, &dir, &shared, &counters));
        if let Err(e) = spawned {
            queue.close();
            return Err(e);
        }
    }
    Ok(queue)
}

/// Runs a callback, surviving a panic in it (the pipeline must outlive a bad callback).
fn complete(done: CommitCallback, result: Result<QueueId, SpoolError>) {
    if catch_unwind(AssertUnwindSafe(move || done(result))).is_err() {
        log::error!("spool: a commit callback panicked");
    }
}

fn sync_loop(queue: &JobQueue, dir: &DirSync, shared: &Shared, counters: &Counters) {
    while let Some(Job { writer, done }) = queue.pop() {
        let result = commit_one(writer, dir, shared, counters);
        match &result {
            Ok(id) => {
                log::debug!("spool: {id} queued");
                counters.commits.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                log::warn!("spool: commit failed: {e}");
                counters.failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        complete(done, result);
    }
}

/// END record and file sync, rename into `queue/`, shared directory sync. On any failure
/// the file is removed: the client is told 451, so a retry does not duplicate the message
/// (if the removal does not stick either, the worst case is a duplicate, never a loss).
fn commit_one(
    mut writer: SpoolWriter,
    dir: &DirSync,
    shared: &Shared,
    counters: &Counters,
) -> Result<QueueId, SpoolError> {
    writer.finish()?;
    let (id, tmp) = writer.into_tmp_path();
    let dest = shared.queue_dir.join(id.as_str());
    dir.renaming();
    if let Err(e) = shared.io.rename(&tmp, &dest) {
        dir.rename_failed();
        let _ = shared.io.remove(&tmp);
        return Err(SpoolError::io("rename", tmp, e));
    }
    match dir.make_durable(shared, counters) {
        Ok(()) => Ok(id),
        Err(e) => {
            let _ = shared.io.remove(&dest);
            Err(SpoolError::io("fsync_dir", shared.queue_dir.clone(), e))
        }
    }
}
