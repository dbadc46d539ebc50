//! The I/O seam: every file operation of the spool goes through [`SpoolIo`].
//!
//! [`RealIo`] is the operating system; [`MemFs`](super::memfs::MemFs) is an in-memory file
//! system for tests that can fail any chosen operation and simulate a power cut.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::Path;

/// A file being written into the spool's `tmp/` directory.
pub trait SpoolFile: Send {
    /// Writes all of `buf` at the end of the file.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Makes the file's content durable (`fsync`).
    fn sync(&mut self) -> io::Result<()>;
}

/// A spool file opened for reading.
pub trait ReadFile: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadFile for T {}

/// The file operations the spool needs, so tests can substitute a faulty file system.
pub trait SpoolIo: Send + Sync + fmt::Debug {
    /// Creates a directory and its parents when missing.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Creates a new file for writing; fails with `AlreadyExists` when it exists (`O_EXCL`).
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn SpoolFile>>;
    /// Opens an existing file for reading.
    fn open(&self, path: &Path) -> io::Result<Box<dyn ReadFile>>;
    /// Atomically renames `from` to `to` (same file system), replacing nothing: fails with
    /// `AlreadyExists` when `to` exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Atomically renames `from` to `to` (same file system), replacing `to` if it exists
    /// (state records: a reader sees the old file or the new one).
    fn rename_replace(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes a directory's entries durable (`fsync` on the directory).
    fn fsync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Lists the names of the entries of a directory (not recursive, any order).
    fn read_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Bytes available to unprivileged users on the file system holding `dir`.
    fn available_space(&self, dir: &Path) -> io::Result<u64>;
    /// Takes the exclusive lock of a spool (`path` is its `lock` file), held while the
    /// returned guard lives; `WouldBlock` when another process (or another open spool) holds
    /// it. The default takes none (file systems in memory have one user).
    fn lock(&self, path: &Path) -> io::Result<Option<SpoolLock>> {
        let _ = path;
        Ok(None)
    }
}

/// The held lock of a spool directory (see [`SpoolIo::lock`]): released when dropped, and
/// by the kernel when the process ends, however it ends.
#[derive(Debug)]
pub struct SpoolLock {
    _file: File,
}

/// The process id written in a spool's lock file, for the error a second process gets.
pub fn lock_holder(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The real file system, through `std::fs` (and `statvfs` for free space).
#[derive(Debug, Default, Clone, Copy)]
pub struct RealIo;

struct RealFile(File);

impl SpoolFile for RealFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        Write::write_all(&mut self.0, buf)
    }
    fn sync(&mut self) -> io::Result<()> {
        // fdatasync: the data and the metadata needed to read it back (the size); a
        // recovered file has all its bytes. Timestamps are not worth a second write.
        self.0.sync_data()
    }
}

impl SpoolIo for RealIo {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn SpoolFile>> {
        let f = OpenOptions::new().write(true).create_new(true).open(path)?;
        Ok(Box::new(RealFile(f)))
    }
    fn open(&self, path: &Path) -> io::Result<Box<dyn ReadFile>> {
        Ok(Box::new(File::open(path)?))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        // renameat2(RENAME_NOREPLACE): atomic, and never overwrites a queued message even
        // if two processes sharing a spool made the same id. File systems without the flag
        // get a check then a plain rename (ids are unique per process and salted apart).
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
            Ok(()) => Ok(()),
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
                if fs::symlink_metadata(to).is_ok() {
                    return Err(io::ErrorKind::AlreadyExists.into());
                }
                fs::rename(from, to)
            }
            Err(e) => Err(e.into()),
        }
    }
    fn rename_replace(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    fn fsync_dir(&self, dir: &Path) -> io::Result<()> {
        // On Linux, fsync on a directory opened read-only flushes its entries.
        File::open(dir)?.sync_all()
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
    fn read_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            // Names that are not UTF-8 cannot be queue ids; they are reported lossily so
            // recovery can still move them aside.
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }
    fn available_space(&self, dir: &Path) -> io::Result<u64> {
        let st = rustix::fs::statvfs(dir).map_err(io::Error::from)?;
        Ok(st.f_bavail.saturating_mul(st.f_frsize))
    }
    fn lock(&self, path: &Path) -> io::Result<Option<SpoolLock>> {
        use rustix::fs::{flock, FlockOperation};
        use std::io::Write;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                return Err(io::ErrorKind::WouldBlock.into())
            }
            Err(e) => return Err(e.into()),
        }
        file.set_len(0)?;
        writeln!(file, "{}", std::process::id())?;
        Ok(Some(SpoolLock { _file: file }))
    }
}
