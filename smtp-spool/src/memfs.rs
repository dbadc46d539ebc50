//! An in-memory file system for testing the spool: it counts operations, fails chosen ones
//! and simulates a power cut.
//!
//! The durability model is the one POSIX promises and ext4/xfs deliver:
//!
//! * a file's bytes are durable up to its last `sync` ([`SpoolFile::sync`]);
//! * a directory's entries (creations, renames, removals in it) are durable up to its last
//!   [`SpoolIo::fsync_dir`];
//! * directories themselves, once created, are durable.
//!
//! [`MemFs::power_cut`] throws away everything else: the namespace goes back to the durable
//! entries and every file back to its durably synced bytes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::io::{ReadFile, SpoolFile, SpoolIo};

/// A kind of file operation, for counting and fault injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// [`SpoolIo::create_new`].
    CreateNew,
    /// [`SpoolFile::write_all`].
    Write,
    /// [`SpoolFile::sync`] (fsync of a file).
    Sync,
    /// [`SpoolIo::rename`].
    Rename,
    /// [`SpoolIo::fsync_dir`].
    FsyncDir,
    /// [`SpoolIo::remove`].
    Remove,
    /// [`SpoolIo::read_dir`].
    ReadDir,
    /// [`SpoolIo::open`].
    Open,
}

#[derive(Debug, Clone)]
struct Fault {
    op: Op,
    /// Fail the nth operation of this kind counted from when the fault was added (1-based);
    /// 0 fails every one.
    nth: u64,
    seen: u64,
    errno: i32,
}

#[derive(Debug, Default)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Debug, Default)]
struct State {
    inodes: HashMap<u64, Inode>,
    next_inode: u64,
    entries: BTreeMap<PathBuf, u64>,
    durable_entries: BTreeMap<PathBuf, u64>,
    dirs: BTreeSet<PathBuf>,
    counts: HashMap<Op, u64>,
    faults: Vec<Fault>,
    fsync_dir_delay: Duration,
    available: u64,
    /// Bumped by every power cut: handles and operations of an older epoch belong to
    /// processes that died in the cut and fail with EIO.
    epoch: u64,
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(rustix::io::Errno::IO.raw_os_error())
}

impl State {
    /// Counts the operation and returns the injected error, if any.
    fn hit(&mut self, op: Op) -> io::Result<()> {
        *self.counts.entry(op).or_default() += 1;
        let mut fail = None;
        for f in self.faults.iter_mut().filter(|f| f.op == op) {
            f.seen += 1;
            if f.nth == 0 || f.nth == f.seen {
                fail = Some(f.errno);
            }
        }
        match fail {
            Some(errno) => Err(io::Error::from_raw_os_error(errno)),
            None => Ok(()),
        }
    }

    fn parent_exists(&self, path: &Path) -> io::Result<()> {
        match path.parent() {
            Some(p) if self.dirs.contains(p) => Ok(()),
            _ => Err(io::ErrorKind::NotFound.into()),
        }
    }
}

/// An in-memory, fault-injecting file system implementing [`SpoolIo`]. Clones share state.
#[derive(Debug, Clone, Default)]
pub struct MemFs {
    state: Arc<Mutex<State>>,
}

impl MemFs {
    /// An empty file system with "unlimited" free space.
    pub fn new() -> MemFs {
        let fs = MemFs::default();
        fs.lock().available = u64::MAX;
        fs
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the `nth` (1-based, counted from now) operation of kind `op` fail with EIO;
    /// `nth == 0` makes every one fail.
    pub fn fail(&self, op: Op, nth: u64) {
        self.fail_with(op, nth, rustix::io::Errno::IO.raw_os_error());
    }

    /// Like [`MemFs::fail`] with a chosen `errno` (for example ENOSPC).
    pub fn fail_with(&self, op: Op, nth: u64, errno: i32) {
        self.lock().faults.push(Fault {
            op,
            nth,
            seen: 0,
            errno,
        });
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// How many operations of kind `op` were attempted (failed ones included).
    pub fn count(&self, op: Op) -> u64 {
        self.lock().counts.get(&op).copied().unwrap_or(0)
    }

    /// Makes every directory fsync take this long, as on a real disk (so commits pile up).
    pub fn set_fsync_dir_delay(&self, delay: Duration) {
        self.lock().fsync_dir_delay = delay;
    }

    /// Sets what [`SpoolIo::available_space`] reports.
    pub fn set_available_space(&self, bytes: u64) {
        self.lock().available = bytes;
    }

    /// Simulates a power cut: every byte not synced and every directory entry change not
    /// covered by a directory fsync is lost. Files opened before the cut and directory fsyncs
    /// in progress during it fail with EIO (their process died); later operations (a restart)
    /// work normally.
    pub fn power_cut(&self) {
        let mut st = self.lock();
        st.epoch += 1;
        st.entries = st.durable_entries.clone();
        let live: BTreeSet<u64> = st.entries.values().copied().collect();
        st.inodes.retain(|ino, _| live.contains(ino));
        for inode in st.inodes.values_mut() {
            inode.data = inode.durable.clone();
        }
    }

    /// The current (volatile) content of a file.
    pub fn read(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.lock();
        let ino = st.entries.get(path)?;
        st.inodes.get(ino).map(|i| i.data.clone())
    }

    /// Creates or replaces a file with durable content (to plant corrupt files in tests).
    pub fn put_durable(&self, path: &Path, bytes: &[u8]) {
        let mut st = self.lock();
        let ino = st.next_inode;
        st.next_inode += 1;
        st.inodes.insert(
            ino,
            Inode {
                data: bytes.to_vec(),
                durable: bytes.to_vec(),
            },
        );
        st.entries.insert(path.to_path_buf(), ino);
        st.durable_entries.insert(path.to_path_buf(), ino);
    }
}

struct MemFile {
    fs: MemFs,
    ino: u64,
    epoch: u64,
}

impl SpoolFile for MemFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut st = self.fs.lock();
        let res = st.hit(Op::Write);
        if st.epoch != self.epoch {
            return Err(eio());
        }
        let inode = st.inodes.get_mut(&self.ino).ok_or_else(eio)?;
        match res {
            Ok(()) => inode.data.extend_from_slice(buf),
            // A failed write may still have written part of the buffer.
            Err(_) => inode.data.extend_from_slice(&buf[..buf.len() / 2]),
        }
        res
    }

    fn sync(&mut self) -> io::Result<()> {
        let mut st = self.fs.lock();
        st.hit(Op::Sync)?;
        if st.epoch != self.epoch {
            return Err(eio());
        }
        let inode = st.inodes.get_mut(&self.ino).ok_or_else(eio)?;
        inode.durable = inode.data.clone();
        Ok(())
    }
}

impl SpoolIo for MemFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.lock();
        for anc in dir.ancestors() {
            if !anc.as_os_str().is_empty() {
                st.dirs.insert(anc.to_path_buf());
            }
        }
        Ok(())
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn SpoolFile>> {
        let mut st = self.lock();
        st.hit(Op::CreateNew)?;
        st.parent_exists(path)?;
        if st.entries.contains_key(path) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        let ino = st.next_inode;
        st.next_inode += 1;
        st.inodes.insert(ino, Inode::default());
        st.entries.insert(path.to_path_buf(), ino);
        Ok(Box::new(MemFile {
            fs: self.clone(),
            ino,
            epoch: st.epoch,
        }))
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn ReadFile>> {
        let mut st = self.lock();
        st.hit(Op::Open)?;
        let ino = st.entries.get(path).ok_or(io::ErrorKind::NotFound)?;
        let data = st
            .inodes
            .get(ino)
            .map(|i| i.data.clone())
            .unwrap_or_default();
        Ok(Box::new(Cursor::new(data)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.hit(Op::Rename)?;
        st.parent_exists(to)?;
        if st.entries.contains_key(to) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        let ino = st.entries.remove(from).ok_or(io::ErrorKind::NotFound)?;
        st.entries.insert(to.to_path_buf(), ino);
        Ok(())
    }

    fn rename_replace(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.hit(Op::Rename)?;
        st.parent_exists(to)?;
        let ino = st.entries.remove(from).ok_or(io::ErrorKind::NotFound)?;
        st.entries.insert(to.to_path_buf(), ino);
        Ok(())
    }

    fn fsync_dir(&self, dir: &Path) -> io::Result<()> {
        let (delay, epoch) = {
            let mut st = self.lock();
            st.hit(Op::FsyncDir)?;
            if !st.dirs.contains(dir) {
                return Err(io::ErrorKind::NotFound.into());
            }
            (st.fsync_dir_delay, st.epoch)
        };
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let mut st = self.lock();
        if st.epoch != epoch {
            return Err(eio());
        }
        let in_dir = |p: &Path| p.parent() == Some(dir);
        st.durable_entries.retain(|p, _| !in_dir(p));
        let now: Vec<(PathBuf, u64)> = st
            .entries
            .iter()
            .filter(|(p, _)| in_dir(p))
            .map(|(p, i)| (p.clone(), *i))
            .collect();
        st.durable_entries.extend(now);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.hit(Op::Remove)?;
        st.entries.remove(path).ok_or(io::ErrorKind::NotFound)?;
        Ok(())
    }

    fn read_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut st = self.lock();
        st.hit(Op::ReadDir)?;
        if !st.dirs.contains(dir) {
            return Err(io::ErrorKind::NotFound.into());
        }
        Ok(st
            .entries
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect())
    }

    fn available_space(&self, _dir: &Path) -> io::Result<u64> {
        Ok(self.lock().available)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_cut_keeps_only_synced_state() {
        let fs = MemFs::new();
        let d = Path::new("/s/q");
        fs.create_dir_all(d).unwrap();
        let mut a = fs.create_new(&d.join("a")).unwrap();
        a.write_all(b"durable").unwrap();
        a.sync().unwrap();
        a.write_all(b" volatile").unwrap();
        fs.fsync_dir(d).unwrap();
        let mut b = fs.create_new(&d.join("b")).unwrap();
        b.write_all(b"synced but not linked").unwrap();
        b.sync().unwrap();
        assert_eq!(fs.read(&d.join("a")).unwrap(), b"durable volatile");
        fs.power_cut();
        assert_eq!(fs.read(&d.join("a")).unwrap(), b"durable");
        assert!(fs.read(&d.join("b")).is_none());
        assert_eq!(fs.read_dir(d).unwrap(), vec!["a".to_string()]);
    }

    #[test]
    fn faults_hit_the_chosen_operation() {
        let fs = MemFs::new();
        fs.create_dir_all(Path::new("/d")).unwrap();
        fs.fail(Op::CreateNew, 2);
        assert!(fs.create_new(Path::new("/d/1")).is_ok());
        assert!(fs.create_new(Path::new("/d/2")).is_err());
        assert!(fs.create_new(Path::new("/d/3")).is_ok());
        assert_eq!(fs.count(Op::CreateNew), 3);
    }
}
