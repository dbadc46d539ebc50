//! A small stock of empty, already created files in `tmp/`, made by a spool thread, so
//! that [`Spool::begin`](super::Spool::begin) takes one without a system call: creating a
//! file is a directory operation that can stall (ext4 scans its inode table for a free
//! inode, the directory lock is shared with every rename), and `begin` runs on an event
//! loop.
//!
//! The files carry a unique name of their own; a message gets its queue id when `begin`
//! takes the file, and the rename into `queue/` refuses to replace anything. Files left in
//! the stock when the spool closes are removed (and startup recovery clears `tmp/` anyway).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::id::QueueId;
use super::io::{SpoolFile, SpoolIo};

/// How long the stock thread waits after a failed file creation before it tries again.
const RETRY_AFTER: Duration = Duration::from_millis(200);

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

/// The files ready, and whether the spool closed.
struct Shelf {
    ready: VecDeque<Prepared>,
    closed: bool,
}

/// The stock, shared by the spool (which takes) and the stock thread (which fills). Both
/// sides sleep on condition variables: nothing spins.
struct Inner {
    shelf: Mutex<Shelf>,
    /// Signalled when a file was taken (the thread refills) or the spool closed.
    taken: Condvar,
    size: usize,
}

/// The taking end of the stock, kept in the spool's shared state. Dropping it stops the
/// thread and removes the files not taken.
pub(crate) struct Stock {
    inner: Arc<Inner>,
    /// The stock thread, joined by [`Stock::close`] so that a file it was creating at that
    /// moment is gone too before the spool reports itself closed.
    thread: Mutex<Option<thread::JoinHandle<()>>>,
}

impl Stock {
    /// A file from the stock, if one is ready. Never waits on I/O (a short lock).
    pub fn take(&self) -> Option<Prepared> {
        let (item, left) = {
            let mut shelf = self.inner.shelf.lock();
            let item = shelf.ready.pop_front();
            (item, shelf.ready.len())
        };
        // Wake the stock thread once the shelf is half empty, so that it refills in runs
        // instead of being woken for every file.
        if item.is_none() || left <= self.inner.size / 2 {
            self.inner.taken.notify_one();
        }
        item
    }
}

impl Stock {
    /// Stops the stock thread and removes the files not taken (a file the thread is
    /// creating meanwhile is removed by the thread, which this waits for: one file
    /// creation at most). `take` finds nothing afterwards.
    pub fn close(&self) {
        let left = {
            let mut shelf = self.inner.shelf.lock();
            shelf.closed = true;
            std::mem::take(&mut shelf.ready)
        };
        self.inner.taken.notify_all();
        // Dropping them removes their files.
        drop(left);
        let thread = self.thread.lock().take();
        if let Some(t) = thread {
            if t.thread().id() != thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Stock {
    fn drop(&mut self) {
        self.close();
    }
}

impl std::fmt::Debug for Stock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stock")
            .field("ready", &self.inner.shelf.lock().ready.len())
            .field("size", &self.inner.size)
            .finish()
    }
}

/// Starts the thread that keeps up to `size` files ready in `tmp_dir`.
pub(crate) fn start(io: Arc<dyn SpoolIo>, tmp_dir: PathBuf, size: usize) -> std::io::Result<Stock> {
    let inner = Arc::new(Inner {
        shelf: Mutex::new(Shelf {
            ready: VecDeque::with_capacity(size.max(1)),
            closed: false,
        }),
        taken: Condvar::new(),
        size: size.max(1),
    });
    let filler = inner.clone();
    let thread = thread::Builder::new()
        .name("spool-stock".into())
        .spawn(move || fill(&io, &tmp_dir, &filler))?;
    Ok(Stock {
        inner,
        thread: Mutex::new(Some(thread)),
    })
}

fn fill(io: &Arc<dyn SpoolIo>, tmp_dir: &Path, inner: &Inner) {
    loop {
        {
            let mut shelf = inner.shelf.lock();
            // Sleep while the shelf is more than half full; once woken, fill it up.
            if !shelf.closed && shelf.ready.len() >= inner.size {
                while !shelf.closed && shelf.ready.len() > inner.size / 2 {
                    inner.taken.wait(&mut shelf);
                }
            }
            if shelf.closed {
                return;
            }
        }
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
        let item = Prepared {
            path,
            file: Some(file),
            io: io.clone(),
        };
        let mut shelf = inner.shelf.lock();
        if shelf.closed {
            drop(shelf);
            // Dropping it removes its file.
            drop(item);
            return;
        }
        shelf.ready.push_back(item);
    }
}
