//! # smtp-spool — the Impulse durable queue
//!
//! The spool is where an accepted message lives until it leaves: the server writes it (a `250`
//! after end of data means the message and its envelope are on stable storage), `impulse spool`
//! reads it, and the relay reads it, keeps a small state record beside it and removes it.
//!
//! **What it promises**
//!
//! * A commit completes with `Ok(id)` only once the message file, its envelope and its END
//!   record are fsync'd and its name in `queue/` is fsync'd too (see *The commit protocol*).
//!   Never `Ok` for a message that is not durable; a failed commit leaves nothing behind.
//! * A queued message is written once and never modified in place; a state record
//!   ([`Spool::write_state`]) is replaced atomically (write, fsync, rename over, fsync the
//!   directory), so a reader sees the old record or the new one, never a mix.
//! * Startup recovery (in [`Spool::open`]) removes everything in `tmp/` (no client was told
//!   `250` for it), verifies every queued file (header, envelope, END record, CRC-32) and moves
//!   a file that fails into `quarantine/`, never deleting it; a state record whose message is
//!   gone is removed (the message was removed first, see [`Spool::remove`]).
//! * Memory per message in flight is one fixed buffer, whatever the message size.
//!
//! **What it does not do:** it speaks no SMTP and knows neither the server nor the client; it
//! does not decide what a state record means (the relay defines its content; the spool frames
//! and checks it); it does not schedule, retry or deliver; it runs no event loop (its threads
//! do the blocking file work so that event loops never wait).
//!
//! **The seam.** Callers use only [`Spool`], [`SpoolWriter`], [`MessageReader`], [`QueueId`]
//! and [`Envelope`]: start a message ([`Spool::begin`], [`Spool::begin_deferred`]), stream it
//! ([`SpoolWriter::write_all`], [`SpoolWriter::write_buffered`]), commit it ([`Spool::commit`]);
//! scan, read and remove queued messages ([`Spool::list`], [`Spool::read_envelope`],
//! [`Spool::open_message`], [`Spool::remove`]); and read and replace their state records.
//! None of them names a file, so a second backend (a log-structured one writing many messages
//! per fdatasync) can sit behind the same calls without its callers changing.
//!
//! Layout of a spool directory (one file per message):
//!
//! ```text
//! <spool>/tmp/<id>         messages being received (never trusted after a restart)
//! <spool>/queue/<id>       committed messages, one file each (format: docs/SPOOL.md)
//! <spool>/state/<id>       the message's state record, when one was written (docs/SPOOL.md)
//! <spool>/quarantine/<id>  queue files that failed verification, kept for an operator
//! ```
//!
//! # Writing a message
//!
//! ```no_run
//! # fn main() -> Result<(), smtp_spool::SpoolError> {
//! use smtp_spool::{Envelope, Recipient, Spool};
//! let spool = Spool::open("./spool")?; // creates the directories, runs recovery
//! let env = Envelope {
//!     sender: "alice@example.org".into(),
//!     recipients: vec![Recipient::new("bob@example.com")],
//!     peer: "192.0.2.1:40000".into(),
//!     helo: "client.example.org".into(),
//!     received: 1_700_000_000,
//!     ..Envelope::default()
//! };
//! let mut w = spool.begin(&env)?;          // blocking: creates tmp/<id>
//! w.write_all(b"Subject: hi\r\n\r\nhello\r\n")?; // blocking: buffered file writes
//! let id = spool.commit_blocking(w)?;     // or spool.commit(w, callback): never blocks
//! println!("250 2.0.0 Ok: queued as {id}");
//! # Ok(()) }
//! ```
//!
//! # The commit protocol
//!
//! 1. [`Spool::begin`] takes an empty file from the tmp stock (kept created in `tmp/` with
//!    `O_EXCL` by a spool thread; created on the spot when the stock is empty), gives the
//!    message a fresh queue id and buffers the header and envelope;
//! 2. [`SpoolWriter::write_all`] streams the message through a fixed-size buffer (an event
//!    loop starts with [`Spool::begin_deferred`] instead, fills the buffer with
//!    [`SpoolWriter::write_buffered`] and has it written out by [`Spool::flush_behind`]:
//!    no file I/O on the loop);
//! 3. [`Spool::commit`] queues the writer for a sync thread, which writes the END record
//!    (with the CRC-32 of the whole file), fdatasyncs the file and renames it to
//!    `queue/<id>` (never replacing a file);
//! 4. the message is handed over for a directory fsync of `queue/`: a sync thread that finds
//!    no other one syncing leads, fsyncing `queue/` once for every message handed over so far
//!    and calling their callbacks with `Ok(id)` (group commit). Any failure on the way calls
//!    the callback with `Err` (and removes the file): never `Ok` for a message that is not
//!    durable.
//!
//! # Which calls block
//!
//! * block on file I/O: [`Spool::open`] (recovery reads every queued file), [`Spool::begin`]
//!   (only when the tmp stock is empty),
//!   [`SpoolWriter::write_all`], [`SpoolWriter::abort`] and dropping a writer (unlink),
//!   [`Spool::commit_blocking`] (waits for the fsyncs), [`Spool::check_free_space`]
//!   (`statvfs`), and the read side ([`Spool::list`], [`Spool::read_envelope`],
//!   [`Spool::open_message`], [`Spool::remove`]). Run them on worker threads.
//! * never block: [`Spool::commit`] (sends to a channel), [`Spool::stats`],
//!   [`Spool::recovery_report`]. An event loop may call these.
//!
//! All file operations go through [`SpoolIo`]; [`MemFs`] is a fault-injecting in-memory
//! implementation that simulates power cuts.
// The spool is I/O, not a sans-IO core: its threads do the blocking file work, and queue ids
// carry the wall-clock time.
#![allow(clippy::disallowed_methods)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod committer;
mod error;
mod format;
mod id;
mod io;
pub mod memfs;
mod reader;
mod recovery;
mod state;
mod stock;
mod writer;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_deferred;
#[cfg(test)]
mod tests_faults;
#[cfg(test)]
mod tests_state;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub use committer::{CommitCallback, FlushCallback};
pub use error::{SpoolError, REPLY_LOCAL_ERROR, REPLY_NO_SPACE};
pub use format::{
    decode_file, encode_file, Envelope, Recipient, END_MAGIC, HEADER_LEN, MAGIC, MAX_ENVELOPE_LEN,
    TRAILER_LEN, VERSION,
};
pub use id::{InvalidQueueId, QueueId, QUEUE_ID_LEN};
pub use io::{lock_holder, ReadFile, RealIo, SpoolFile, SpoolIo, SpoolLock};
pub use memfs::MemFs;
pub use reader::MessageReader;
pub use recovery::RecoveryReport;
pub use state::{decode_state, encode_state, MAX_STATE_LEN, STATE_MAGIC, STATE_VERSION};
pub use writer::{MessageWindow, SpoolWriter};

use committer::{Counters, Job, JobQueue};

/// Threads that write buffers out and remove abandoned files for event loops
/// ([`Spool::flush_behind`], [`Spool::discard_behind`]): page-cache work, rarely waiting.
const WRITE_THREADS: usize = 2;
use reader::open_layout;

/// The file in a spool directory whose lock (`flock`, exclusive) says which process owns the
/// spool; it holds that process's id.
pub const LOCK_FILE: &str = "lock";

/// Tuning of a [`Spool`].
#[derive(Debug, Clone)]
pub struct SpoolOptions {
    /// Capacity of each writer's buffer, in bytes (default 64 KiB). This is all the memory a
    /// message in flight costs, whatever its size.
    pub buffer_size: usize,
    /// Threads that carry commits through the file sync, the rename and the shared directory
    /// sync in parallel (default 16: fsync waits on the disk, not the CPU, and the file system
    /// batches concurrent fsyncs in one journal commit).
    pub sync_threads: usize,
    /// Take the spool's exclusive lock ([`LOCK_FILE`]), create the directories and run
    /// startup recovery (default `true`); a spool another process holds is
    /// [`SpoolError::Locked`]. Tools that inspect a spool a server is using (`impulse spool
    /// ...`) turn this off: recovery would delete the server's in-flight tmp files.
    pub recover: bool,
    /// Empty files kept created in `tmp/` by a spool thread, so that [`Spool::begin`] makes
    /// no system call (default 32; 0 turns the stock off and `begin` creates its file).
    /// Only a spool opened with `recover` keeps a stock.
    pub tmp_stock: usize,
}

impl Default for SpoolOptions {
    fn default() -> Self {
        SpoolOptions {
            buffer_size: 64 * 1024,
            sync_threads: 16,
            recover: true,
            tmp_stock: 32,
        }
    }
}

/// What the spool's files and settings are, shared by the spool, its writers and threads.
#[derive(Debug)]
pub(crate) struct Shared {
    pub io: Arc<dyn SpoolIo>,
    pub root: PathBuf,
    pub tmp_dir: PathBuf,
    pub queue_dir: PathBuf,
    pub quarantine_dir: PathBuf,
    /// State records beside queued messages (`state/<id>`).
    pub state_dir: PathBuf,
    pub buffer_size: usize,
    /// Ready-made tmp files for [`Spool::begin`].
    pub stock: Option<stock::Stock>,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    jobs: Arc<JobQueue>,
    /// Flushes and discards, on threads of their own (never behind an fsync).
    writes: Arc<JobQueue>,
    counters: Arc<Counters>,
    report: RecoveryReport,
    /// The spool's exclusive lock (a spool opened with `recover`), held while it is open.
    _lock: Option<SpoolLock>,
    /// Where every committed id is sent ([`Spool::watch_commits`]).
    watchers: parking_lot::RwLock<Vec<crossbeam_channel::Sender<QueueId>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The sync threads finish the commits already queued, then exit; the stocked tmp
        // files go now (the threads may hold the shared state a little longer).
        self.jobs.close();
        self.writes.close();
        if let Some(stock) = &self.shared.stock {
            stock.close();
        }
    }
}

/// A durable on-disk spool. Cheap to clone (all clones share the directory and threads);
/// `Send + Sync`. Dropping the last clone lets the spool threads finish the commits already
/// handed to them, then exit.
#[derive(Debug, Clone)]
pub struct Spool {
    inner: Arc<Inner>,
}

/// One line of [`Spool::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolEntrySummary {
    /// The queue id.
    pub id: QueueId,
    /// The reverse-path (empty for `<>`).
    pub sender: String,
    /// The recipients' addresses.
    pub recipients: Vec<String>,
    /// The message size in bytes.
    pub size: u64,
    /// When it was received, in seconds since the Unix epoch.
    pub received: u64,
}

/// Counters of the commit pipeline since the spool was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Commits that completed with `Ok`.
    pub commits: u64,
    /// Commits that completed with `Err`.
    pub failures: u64,
    /// Directory fsyncs of `queue/` done by the sync threads: fewer than `commits` when group
    /// commit shares them.
    pub dir_fsyncs: u64,
}

impl Spool {
    /// Opens (creating if needed) the spool at `dir` on the real file system with default
    /// options, and runs startup recovery. Blocks while recovery reads the queue.
    pub fn open(dir: impl AsRef<Path>) -> Result<Spool, SpoolError> {
        Spool::open_with(dir, SpoolOptions::default(), Arc::new(RealIo))
    }

    /// Opens the spool at `dir` with chosen options through a chosen [`SpoolIo`].
    pub fn open_with(
        dir: impl AsRef<Path>,
        options: SpoolOptions,
        io: Arc<dyn SpoolIo>,
    ) -> Result<Spool, SpoolError> {
        let root = dir.as_ref().to_path_buf();
        let mut shared = Shared {
            tmp_dir: root.join("tmp"),
            queue_dir: root.join("queue"),
            quarantine_dir: root.join("quarantine"),
            state_dir: root.join("state"),
            root,
            io,
            buffer_size: options.buffer_size.max(4096),
            stock: None,
        };
        let mut lock = None;
        let report = if options.recover {
            shared
                .io
                .create_dir_all(&shared.root)
                .map_err(|e| SpoolError::io("create_dir", &shared.root, e))?;
            let lock_path = shared.root.join(LOCK_FILE);
            lock = match shared.io.lock(&lock_path) {
                Ok(lock) => lock,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    return Err(SpoolError::Locked {
                        pid: io::lock_holder(&lock_path),
                        path: shared.root.clone(),
                    })
                }
                Err(e) => return Err(SpoolError::io("lock", lock_path, e)),
            };
            for d in [
                &shared.tmp_dir,
                &shared.queue_dir,
                &shared.quarantine_dir,
                &shared.state_dir,
            ] {
                shared
                    .io
                    .create_dir_all(d)
                    .map_err(|e| SpoolError::io("create_dir", d, e))?;
            }
            shared
                .io
                .fsync_dir(&shared.root)
                .map_err(|e| SpoolError::io("fsync_dir", &shared.root, e))?;
            recovery::recover(&shared)?
        } else {
            // Inspection only: the spool must already exist.
            shared
                .io
                .read_dir(&shared.queue_dir)
                .map_err(|e| SpoolError::io("read_dir", &shared.queue_dir, e))?;
            RecoveryReport::default()
        };
        if options.recover && options.tmp_stock > 0 {
            let stock = stock::start(shared.io.clone(), shared.tmp_dir.clone(), options.tmp_stock)
                .map_err(|e| SpoolError::io("spawn", &shared.root, e))?;
            shared.stock = Some(stock);
        }
        let shared = Arc::new(shared);
        let counters = Arc::new(Counters::default());
        let jobs = committer::start(shared.clone(), options.sync_threads, counters.clone())
            .map_err(|e| SpoolError::io("spawn", &shared.root, e))?;
        let writes = match committer::start_writers(shared.clone(), WRITE_THREADS, counters.clone())
        {
            Ok(writes) => writes,
            Err(e) => {
                jobs.close();
                return Err(SpoolError::io("spawn", &shared.root, e));
            }
        };
        Ok(Spool {
            inner: Arc::new(Inner {
                shared,
                jobs,
                writes,
                counters,
                report,
                _lock: lock,
                watchers: parking_lot::RwLock::new(Vec::new()),
            }),
        })
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.inner.shared.root
    }

    /// What startup recovery did (all zero when opened with `recover: false`).
    pub fn recovery_report(&self) -> RecoveryReport {
        self.inner.report
    }

    /// Counters of the commit pipeline. Never blocks.
    pub fn stats(&self) -> SpoolStats {
        let c = &self.inner.counters;
        SpoolStats {
            commits: c.commits.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
            dir_fsyncs: c.dir_fsyncs.load(Ordering::Relaxed),
        }
    }

    /// Starts a message: creates `tmp/<id>` and buffers the header and envelope (the
    /// envelope is final when DATA starts). Blocks on the file creation.
    pub fn begin(&self, envelope: &Envelope) -> Result<SpoolWriter, SpoolError> {
        SpoolWriter::create(self.inner.shared.clone(), envelope, false, &[], None)
    }

    /// Starts a message without any I/O, for an event loop: takes a stocked tmp file if
    /// one is ready, otherwise the file is created later by the spool thread that first
    /// writes the message out. The header, the envelope and `prefix` (the first message
    /// bytes, e.g. a `Received:` trace header) are buffered. Feed the writer with
    /// [`SpoolWriter::write_buffered`] and [`Spool::flush_behind`]; end it with
    /// [`Spool::commit`] or [`Spool::discard_behind`].
    pub fn begin_deferred(
        &self,
        envelope: &Envelope,
        prefix: &[u8],
    ) -> Result<SpoolWriter, SpoolError> {
        SpoolWriter::create(self.inner.shared.clone(), envelope, true, prefix, None)
    }

    /// [`begin_deferred`](Spool::begin_deferred) for a message whose queue id was chosen
    /// before it started (with [`QueueId::generate`]), so that the `Received:` header in
    /// `prefix` can name it. The id must not be used for another message.
    pub fn begin_deferred_as(
        &self,
        id: QueueId,
        envelope: &Envelope,
        prefix: &[u8],
    ) -> Result<SpoolWriter, SpoolError> {
        SpoolWriter::create(self.inner.shared.clone(), envelope, true, prefix, Some(id))
    }

    /// Writes the writer's buffer out on a spool thread, without blocking the caller, and
    /// hands the writer back through `done` (on that thread) with an empty buffer. A write
    /// error sticks in the writer and fails its commit. If the spool is closing, the
    /// writer comes back at once, failed.
    pub fn flush_behind(&self, writer: SpoolWriter, done: FlushCallback) {
        if let Err(Job::Flush { mut writer, done }) =
            self.inner.writes.push(Job::Flush { writer, done })
        {
            writer.fail_closed();
            done(writer);
        }
    }

    /// Abandons a message without blocking the caller: a spool thread removes its tmp file
    /// (if it has one yet). Dropping a writer does the same, but blocking.
    pub fn discard_behind(&self, writer: SpoolWriter) {
        if !writer.on_disk() {
            // Nothing on disk yet: dropping it makes no system call.
            drop(writer);
        } else if let Err(job) = self.inner.writes.push(Job::Discard { writer }) {
            drop(job);
        }
    }

    /// Commits a message without blocking: the END record, the file fsync, the rename and
    /// the (shared) directory fsync happen on spool threads, then `done` is called on a
    /// spool thread with `Ok(id)` once the message is durable, or `Err` (the file removed).
    /// Only an `Ok` allows a `250`.
    pub fn commit(&self, writer: SpoolWriter, done: CommitCallback) {
        let done = self.watched(done);
        if let Err(Job::Commit { writer, done }) =
            self.inner.jobs.push(Job::Commit { writer, done })
        {
            drop(writer);
            done(Err(SpoolError::Closed));
        }
    }

    /// A channel that receives the id of every message committed from now on (by
    /// [`Spool::commit`] or [`Spool::commit_blocking`], through any clone of this spool),
    /// once it is durable and before its commit callback runs. The relay's driver watches
    /// the spool this way. Unbounded: the receiver must keep reading (or be dropped, which
    /// ends the watch).
    pub fn watch_commits(&self) -> crossbeam_channel::Receiver<QueueId> {
        let (tx, rx) = crossbeam_channel::unbounded();
        self.inner.watchers.write().push(tx);
        rx
    }

    /// `done`, preceded by telling the watchers of a successful commit (none: `done` itself).
    fn watched(&self, done: CommitCallback) -> CommitCallback {
        let watchers = self.inner.watchers.read();
        if watchers.is_empty() {
            return done;
        }
        let watchers = watchers.clone();
        Box::new(move |result| {
            if let Ok(id) = &result {
                for w in &watchers {
                    let _ = w.send(*id);
                }
            }
            done(result)
        })
    }

    /// Commits a message and waits until it is durable (or failed). Blocks.
    pub fn commit_blocking(&self, writer: SpoolWriter) -> Result<QueueId, SpoolError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.commit(
            writer,
            Box::new(move |res| {
                let _ = tx.send(res);
            }),
        );
        rx.recv().unwrap_or(Err(SpoolError::Closed))
    }

    /// The check to make at MAIL time: `Err(NoSpace)` (`452 4.3.1`) when the spool's file
    /// system has less than 1.5 × `size_limit` bytes free (Postfix's rule). Blocks on a
    /// `statvfs`.
    pub fn check_free_space(&self, size_limit: u64) -> Result<(), SpoolError> {
        let shared = &self.inner.shared;
        let available = shared
            .io
            .available_space(&shared.root)
            .map_err(|e| SpoolError::io("statvfs", &shared.root, e))?;
        let required = size_limit.saturating_add(size_limit / 2);
        if available < required {
            return Err(SpoolError::NoSpace {
                available,
                required,
            });
        }
        Ok(())
    }

    fn queue_path(&self, id: QueueId) -> PathBuf {
        self.inner.shared.queue_dir.join(id.as_str())
    }

    fn open_checked(
        &self,
        id: QueueId,
    ) -> Result<(Box<dyn ReadFile>, reader::Layout, PathBuf), SpoolError> {
        let path = self.queue_path(id);
        match open_layout(&*self.inner.shared.io, &path) {
            Ok((file, layout)) if layout.id == id => Ok((file, layout, path)),
            Ok((_, layout)) => Err(SpoolError::Corrupt {
                path,
                reason: format!("file holds queue id {}", layout.id),
            }),
            Err(SpoolError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Err(SpoolError::NotFound(id))
            }
            Err(e) => Err(e),
        }
    }

    /// Lists the queued messages, oldest first. Reads each file's header, envelope and END
    /// record (not the whole message). Files that fail to parse are skipped with a warning.
    pub fn list(&self) -> Result<Vec<SpoolEntrySummary>, SpoolError> {
        let ids = self.queued_ids()?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.open_checked(id) {
                Ok((_, layout, _)) => out.push(SpoolEntrySummary {
                    id,
                    sender: layout.envelope.sender,
                    recipients: layout
                        .envelope
                        .recipients
                        .into_iter()
                        .map(|r| r.address)
                        .collect(),
                    size: layout.body_len,
                    received: layout.envelope.received,
                }),
                // Removed meanwhile.
                Err(SpoolError::NotFound(_)) => {}
                Err(e) => log::warn!("spool: skipping {id}: {e}"),
            }
        }
        Ok(out)
    }

    /// Reads the envelope of a queued message.
    pub fn read_envelope(&self, id: QueueId) -> Result<Envelope, SpoolError> {
        self.open_checked(id).map(|(_, layout, _)| layout.envelope)
    }

    /// Reads the envelope of a queued message and the size of its message, in one open.
    pub fn read_envelope_and_size(&self, id: QueueId) -> Result<(Envelope, u64), SpoolError> {
        self.open_checked(id)
            .map(|(_, layout, _)| (layout.envelope, layout.body_len))
    }

    /// The ids of the queued messages, oldest first, from the directory alone (no file is
    /// opened: a damaged one shows when it is read).
    pub fn queued_ids(&self) -> Result<Vec<QueueId>, SpoolError> {
        let shared = &self.inner.shared;
        let names = shared
            .io
            .read_dir(&shared.queue_dir)
            .map_err(|e| SpoolError::io("read_dir", &shared.queue_dir, e))?;
        let mut ids: Vec<QueueId> = names
            .iter()
            .filter_map(|n| QueueId::parse(n).ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Opens the stored message bytes of a queued message for streaming (checksum verified
    /// at the end, see [`MessageReader`]).
    pub fn open_message(&self, id: QueueId) -> Result<MessageReader, SpoolError> {
        let (file, layout, path) = self.open_checked(id)?;
        Ok(MessageReader::new(file, layout, path))
    }

    /// Removes several queued messages and their state records, durably, with two
    /// directory syncs for the whole batch (one of `queue/`, then one of `state/`) instead of
    /// two per message: every message file goes first, then the records, so a crash never
    /// leaves a message without the record it had. Returns each id's result, in order.
    pub fn remove_many(&self, ids: &[QueueId]) -> Vec<Result<(), SpoolError>> {
        let shared = &self.inner.shared;
        let mut results: Vec<Result<(), SpoolError>> = ids
            .iter()
            .map(|&id| {
                let path = self.queue_path(id);
                match shared.io.remove(&path) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        Err(SpoolError::NotFound(id))
                    }
                    Err(e) => Err(SpoolError::io("remove", path, e)),
                }
            })
            .collect();
        if !results.iter().any(Result::is_ok) {
            return results;
        }
        if let Err(e) = shared.io.fsync_dir(&shared.queue_dir) {
            let e = SpoolError::io("fsync_dir", &shared.queue_dir, e);
            for r in results.iter_mut().filter(|r| r.is_ok()) {
                *r = Err(SpoolError::io(
                    "fsync_dir",
                    &shared.queue_dir,
                    std::io::Error::other(e.to_string()),
                ));
            }
            return results;
        }
        let mut removed_records = false;
        for (id, r) in ids.iter().zip(results.iter_mut()) {
            if r.is_err() {
                continue;
            }
            let path = state::state_path(shared, *id);
            match shared.io.remove(&path) {
                Ok(()) => removed_records = true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => *r = Err(SpoolError::io("remove", path, e)),
            }
        }
        if removed_records {
            if let Err(e) = shared.io.fsync_dir(&shared.state_dir) {
                for r in results.iter_mut().filter(|r| r.is_ok()) {
                    *r = Err(SpoolError::io(
                        "fsync_dir",
                        &shared.state_dir,
                        std::io::Error::other(e.to_string()),
                    ));
                }
            }
        }
        results
    }

    /// Removes a queued message and its state record, if any (durably: the directories are
    /// fsynced).
    pub fn remove(&self, id: QueueId) -> Result<(), SpoolError> {
        let shared = &self.inner.shared;
        let path = self.queue_path(id);
        match shared.io.remove(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SpoolError::NotFound(id))
            }
            Err(e) => return Err(SpoolError::io("remove", path, e)),
        }
        shared
            .io
            .fsync_dir(&shared.queue_dir)
            .map_err(|e| SpoolError::io("fsync_dir", &shared.queue_dir, e))?;
        // The message first, then its state record: a crash between the two leaves a record
        // without a message (recovery removes it), never the other way round.
        state::remove_state(shared, id)?;
        log::info!("spool: {id} removed");
        Ok(())
    }
}
