//! A small stock of empty, already created files in `tmp/`, made by a spool thread, so
//! that [`Spool::begin`](super::Spool::begin) takes one without a system call: creating a
//! file is a directory operation that can stall (ext4 scans its inode table for a free
//! inode, the directory lock is shared with every rename), and `begin` runs on an event
//! loop.
//!
//! The files carry a unique name of their own; a message gets its queue id when `begin`
//! takes the file, and the rename into `queue/` refuses to replace anything. Files left in
//! the stock when the spool closes are removed (and startup recovery clears `tmp/` anyway).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, SendTimeoutError, Sender};

use super::id::QueueId;
use super::io::{SpoolFile, SpoolIo};

/// How long the stock thread waits after a failed file creation before it tries again.
const RETRY_AFTER: Duration = Duration::from_millis(200);
/// How often a stock thread blocked on a full stock checks whether the spool closed.
const CLOSED_CHECK: Duration = Duration::from_secs(1);

/// An empty tmp file from the stock. Dropped without [`Prepared::take`], it is removed.
pub(crate) struct Prepared {
    path: PathBuf,
    file: Option<Box<dyn SpoolFile>>,
    io: Arc<dyn SpoolIo>,
}

impl Prepared {
    /// The file and its path; the caller now owns (and must remove) it.
    pub fn take(mut self) -> (PathBuf, Box<dyn SpoolFile>) {
        let file = self.file.take().expect("a stock file is taken once");
        (std::mem::take(&mut self.path), file)
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = self.io.remove(&self.path);
        }
    }
}

/// The receiving end of the stock, kept in the spool's shared state.
pub(crate) struct Stock {
    rx: Receiver<Prepared>,
    closed: Arc<AtomicBool>,
}

impl Stock {
    /// A file from the stock, if one is ready. Never blocks.
    pub fn take(&self) -> Option<Prepared> {
        self.rx.try_recv().ok()
    }
}

impl Drop for Stock {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Relaxed);
        // Remove the files still in stock.
        while let Ok(p) = self.rx.try_recv() {
            drop(p);
        }
    }
}

impl std::fmt::Debug for Stock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stock")
            .field("ready", &self.rx.len())
            .finish()
    }
}

/// Starts the thread that keeps up to `size` files ready in `tmp_dir`.
pub(crate) fn start(io: Arc<dyn SpoolIo>, tmp_dir: PathBuf, size: usize) -> std::io::Result<Stock> {
    let (tx, rx) = crossbeam_channel::bounded(size.max(1));
    let closed = Arc::new(AtomicBool::new(false));
    let flag = closed.clone();
    thread::Builder::new()
        .name("spool-stock".into())
        .spawn(move || fill(&io, &tmp_dir, &tx, &flag))?;
    Ok(Stock { rx, closed })
}

fn fill(io: &Arc<dyn SpoolIo>, tmp_dir: &Path, tx: &Sender<Prepared>, closed: &AtomicBool) {
    while !closed.load(Ordering::Relaxed) {
        let path = tmp_dir.join(QueueId::generate().as_str());
        let file = match io.create_new(&path) {
            Ok(file) => file,
            Err(e) => {
                // `begin` creates its own file meanwhile and reports the error if it
                // fails there too.
                log::debug!("spool: cannot create {}: {e}", path.display());
                thread::sleep(RETRY_AFTER);
                continue;
            }
        };
        let mut item = Prepared {
            path,
            file: Some(file),
            io: io.clone(),
        };
        loop {
            match tx.send_timeout(item, CLOSED_CHECK) {
                Ok(()) => break,
                Err(SendTimeoutError::Timeout(back)) if !closed.load(Ordering::Relaxed) => {
                    item = back;
                }
                // Closed: dropping the item removes its file.
                Err(_) => return,
            }
        }
    }
}
