//! The commit pipeline: sync threads each finish, fsync and rename one message, then share
//! the directory fsync of `queue/` with every other rename done meanwhile (group commit).
//!
//! ```text
//! Spool::commit ──► [job queue] ──► sync thread: END record, fdatasync(file), rename,
//!   (never blocks)                   then hand the message over for a directory sync: when
//!                                    no other thread is syncing, this one leads — one
//!                                    fsync(queue/) for everything handed over so far, then
//!                                    their callbacks, until nothing is left
//! ```
//!
//! No thread waits for another's sync and none spins: a thread that does not lead goes
//! straight back to the queue for the next file, idle ones sleep on a condition variable.
//! A lone commit pays one file sync and one directory sync; twenty concurrent commits share
//! a handful of directory syncs.

use std::collections::VecDeque;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
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

/// `EIO`, for a directory sync failure that carries no OS error number.
const EIO: i32 = 5;

/// The longest a directory-sync leader waits for renames already under way to join its
/// batch: a rename takes far less, and one more message per directory sync saves a sync.
const GATHER_LIMIT: std::time::Duration = std::time::Duration::from_millis(1);

/// Called with the writer once a spool thread wrote its buffer out
/// ([`Spool::flush_behind`](super::Spool::flush_behind)); a write error sticks in the writer.
pub type FlushCallback = Box<dyn FnOnce(SpoolWriter) + Send + 'static>;

/// Work for a spool thread: commits go to the sync threads, flushes and discards to the
/// write threads (so that they never wait behind an fsync).
pub(crate) enum Job {
    /// A commit: END record, file sync, rename, directory sync, then `done`.
    Commit {
        writer: SpoolWriter,
        done: CommitCallback,
    },
    /// Write the writer's buffer out (no sync), then hand the writer back.
    Flush {
        writer: SpoolWriter,
        done: FlushCallback,
    },
    /// Abandon a message: remove its tmp file.
    Discard { writer: SpoolWriter },
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

/// A message renamed into `queue/`, waiting for a directory sync.
struct Renamed {
    id: QueueId,
    dest: PathBuf,
    done: CommitCallback,
}

#[derive(Default)]
struct DirState {
    /// Renamed messages not yet covered by a directory sync.
    pending: Vec<Renamed>,
    /// A thread is leading: it syncs the directory and completes batches until `pending`
    /// is empty.
    syncing: bool,
    /// Threads whose file is synced and whose rename is under way: a leader lets them join
    /// its batch (at most [`GATHER_LIMIT`]) rather than leave them to the next sync.
    renaming: u32,
}

/// The group commit of directory syncs, as a combining leader: a thread whose rename is
/// done hands its message over and, unless a leader is already at work, leads — one
/// directory sync for every message handed over so far, then their callbacks, again until
/// nothing is left. Other threads never wait for a sync: they go back to the queue and
/// sync more files meanwhile.
#[derive(Default)]
struct DirSync {
    state: Mutex<DirState>,
    /// Signalled when a rename under way handed its message over.
    gathered: Condvar,
}

impl DirSync {
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

    /// Hands a renamed message over for a directory sync; leads when no one does.
    fn hand_over(&self, renamed: Renamed, shared: &Shared, counters: &Counters) {
        let mut state = self.state.lock();
        state.renaming = state.renaming.saturating_sub(1);
        state.pending.push(renamed);
        if state.syncing {
            if state.renaming == 0 {
                self.gathered.notify_all();
            }
            return;
        }
        state.syncing = true;
        loop {
            // Let the renames under way join (briefly), then take everything handed over.
            let deadline = std::time::Instant::now() + GATHER_LIMIT;
            while state.renaming > 0 {
                if self.gathered.wait_until(&mut state, deadline).timed_out() {
                    break;
                }
            }
            let batch = std::mem::take(&mut state.pending);
            if batch.is_empty() {
                state.syncing = false;
                return;
            }
            drop(state);
            counters.dir_fsyncs.fetch_add(1, Ordering::Relaxed);
            match shared.io.fsync_dir(&shared.queue_dir) {
                Ok(()) => {
                    for r in batch {
                        log::debug!("spool: {} queued", r.id);
                        counters.commits.fetch_add(1, Ordering::Relaxed);
                        complete(r.done, Ok(r.id));
                    }
                }
                Err(e) => {
                    // The renames may or may not be durable. The clients are told 451, so
                    // take the files back out: a retry then does not duplicate the message
                    // (if the removal does not stick either, the worst case is a duplicate,
                    // never a loss).
                    let raw = e.raw_os_error().unwrap_or(EIO);
                    for r in batch {
                        log::warn!("spool: commit of {} failed: fsync of queue dir: {e}", r.id);
                        let _ = shared.io.remove(&r.dest);
                        counters.failures.fetch_add(1, Ordering::Relaxed);
                        let err = SpoolError::io(
                            "fsync_dir",
                            shared.queue_dir.clone(),
                            io::Error::from_raw_os_error(raw),
                        );
                        complete(r.done, Err(err));
                    }
                }
            }
            state = self.state.lock();
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
    start_pool("spool-sync", shared, sync_threads, counters)
}

/// Starts the write threads, which take the flushes and discards (`Spool::flush_behind`,
/// `Spool::discard_behind`): page-cache work that must not wait behind the sync threads'
/// fsyncs.
pub(crate) fn start_writers(
    shared: Arc<Shared>,
    threads: usize,
    counters: Arc<Counters>,
) -> io::Result<Arc<JobQueue>> {
    start_pool("spool-write", shared, threads, counters)
}

fn start_pool(
    name: &str,
    shared: Arc<Shared>,
    threads: usize,
    counters: Arc<Counters>,
) -> io::Result<Arc<JobQueue>> {
    let queue = Arc::new(JobQueue::default());
    let dir = Arc::new(DirSync::default());
    for n in 0..threads.max(1) {
        let (jobs, dir, shared, counters) =
            (queue.clone(), dir.clone(), shared.clone(), counters.clone());
        let spawned = thread::Builder::new()
            .name(format!("{name}-{n}"))
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
    while let Some(job) = queue.pop() {
        match job {
            Job::Commit { writer, done } => {
                if let Err((e, done)) = commit_one(writer, done, dir, shared, counters) {
                    log::warn!("spool: commit failed: {e}");
                    counters.failures.fetch_add(1, Ordering::Relaxed);
                    complete(done, Err(e));
                }
            }
            Job::Flush { mut writer, done } => {
                writer.flush_pending();
                if catch_unwind(AssertUnwindSafe(move || done(writer))).is_err() {
                    log::error!("spool: a flush callback panicked");
                }
            }
            Job::Discard { writer } => drop(writer),
        }
    }
}

/// END record and file sync, rename into `queue/`, then the message goes to the shared
/// directory sync, which calls `done`. On a failure before that, the file is removed and
/// the error comes back with the callback.
fn commit_one(
    mut writer: SpoolWriter,
    done: CommitCallback,
    dir: &DirSync,
    shared: &Shared,
    counters: &Counters,
) -> Result<(), (SpoolError, CommitCallback)> {
    if let Err(e) = writer.finish() {
        return Err((e, done));
    }
    let (id, tmp) = writer.into_tmp_path();
    let dest = shared.queue_dir.join(id.as_str());
    dir.renaming();
    if let Err(e) = shared.io.rename(&tmp, &dest) {
        dir.rename_failed();
        let _ = shared.io.remove(&tmp);
        return Err((SpoolError::io("rename", tmp, e), done));
    }
    dir.hand_over(Renamed { id, dest, done }, shared, counters);
    Ok(())
}
