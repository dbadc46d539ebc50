//! [`SpoolWriter`]: one message being streamed into `<spool>/tmp/<id>`.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use super::error::SpoolError;
use super::format::{encode_header, encode_trailer, HEADER_LEN};
use super::id::QueueId;
use super::io::SpoolFile;
use super::{Envelope, Shared};

/// How many times `begin` retries when a fresh id's tmp file already exists.
const CREATE_ATTEMPTS: usize = 8;

/// A message being written into the spool.
///
/// Made by [`Spool::begin`](super::Spool::begin), which has already written the header and
/// envelope (into the buffer). Feed the message bytes with [`SpoolWriter::write_all`] (or
/// through [`std::io::Write`]), then hand the writer to
/// [`Spool::commit`](super::Spool::commit) or
/// [`Spool::commit_blocking`](super::Spool::commit_blocking). Dropping it, or calling
/// [`SpoolWriter::abort`], deletes the tmp file: nothing reaches the queue without a commit.
///
/// Memory: one buffer of fixed capacity ([`SpoolOptions::buffer_size`](super::SpoolOptions))
/// whatever the message size; writes larger than the buffer go straight to the file.
///
/// Blocking: `write_all` writes to the file when the buffer fills (page-cache speed, no
/// fsync), so call it from a worker thread, not from an event loop. An event loop uses the
/// non-blocking trio instead: [`Spool::begin_deferred`](super::Spool::begin_deferred),
/// [`SpoolWriter::write_buffered`] (copies into the buffer, never any I/O) and
/// [`Spool::flush_behind`](super::Spool::flush_behind) (a spool thread writes the full
/// buffer out and hands the writer back), with
/// [`Spool::discard_behind`](super::Spool::discard_behind) to abandon a message.
///
/// Errors stick: after a failed write, every later write and the commit fail too.
pub struct SpoolWriter {
    shared: Arc<Shared>,
    id: QueueId,
    tmp_path: PathBuf,
    file: Option<Box<dyn SpoolFile>>,
    /// `tmp_path` exists on disk (a stocked file, or created): dropping removes it.
    on_disk: bool,
    buf: Vec<u8>,
    /// The buffer's capacity (the header of a deferred writer may briefly exceed it).
    cap: usize,
    crc: crc32fast::Hasher,
    envelope_len: u32,
    body_len: u64,
    /// The first write error (`raw_os_error` or kind), kept so it sticks.
    failed: Option<(Option<i32>, io::ErrorKind)>,
    /// Set once the file is handed to the queue (or removed): Drop leaves it alone.
    done: bool,
}

impl SpoolWriter {
    /// Takes a tmp file from the stock (or creates one) and buffers the header and
    /// envelope under a fresh queue id.
    ///
    /// `chosen`: the queue id, when the caller picked it (deferred writers only: a
    /// non-deferred one may pick another when the file name is taken).
    /// `deferred`: never any I/O. Without a stocked file, the file is created by whichever
    /// thread first writes (a spool thread, through `Spool::flush_behind` or the commit); the
    /// header and `prefix` (message bytes, e.g. a trace header) go into the buffer whatever
    /// its capacity.
    pub(crate) fn create(
        shared: Arc<Shared>,
        env: &Envelope,
        deferred: bool,
        prefix: &[u8],
        chosen: Option<QueueId>,
    ) -> Result<SpoolWriter, SpoolError> {
        // The id first, so that a refused envelope (too large) costs no file.
        let mut id = chosen.unwrap_or_else(QueueId::generate);
        let mut header = encode_header(&id, env)?;
        let (tmp_path, file) = match shared.stock.as_ref().and_then(|s| s.take()) {
            Some(prepared) => {
                let (path, file) = prepared.take();
                (path, Some(file))
            }
            None if deferred => (shared.tmp_dir.join(id.as_str()), None),
            None => {
                let mut attempt = 0;
                loop {
                    let path = shared.tmp_dir.join(id.as_str());
                    match shared.io.create_new(&path) {
                        Ok(file) => break (path, Some(file)),
                        Err(e)
                            if e.kind() == io::ErrorKind::AlreadyExists
                                && attempt < CREATE_ATTEMPTS =>
                        {
                            attempt += 1;
                            id = QueueId::generate();
                            header = encode_header(&id, env)?;
                        }
                        Err(e) => return Err(SpoolError::io("create", path, e)),
                    }
                }
            }
        };
        let cap = shared.buffer_size;
        let mut w = SpoolWriter {
            buf: Vec::with_capacity(cap),
            cap,
            shared,
            id,
            tmp_path,
            on_disk: file.is_some(),
            file,
            crc: crc32fast::Hasher::new(),
            envelope_len: 0,
            body_len: 0,
            failed: None,
            done: false,
        };
        w.envelope_len = (header.len() - HEADER_LEN) as u32;
        w.crc.update(&header);
        if deferred {
            w.buf.extend_from_slice(&header);
            w.crc.update(prefix);
            w.body_len += prefix.len() as u64;
            w.buf.extend_from_slice(prefix);
        } else {
            w.put(&header)?;
            w.write_all(prefix)?;
        }
        Ok(w)
    }

    /// The queue id this message will have once committed.
    pub fn id(&self) -> QueueId {
        self.id
    }

    /// The number of message bytes written so far.
    pub fn body_len(&self) -> u64 {
        self.body_len
    }

    /// The capacity of the writer's buffer: fixed at creation, whatever is written.
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// How many more bytes [`SpoolWriter::write_buffered`] takes before the buffer must be
    /// written out.
    pub fn spare(&self) -> usize {
        self.cap.saturating_sub(self.buf.len())
    }

    /// Appends as much of `data` as the buffer has room for, without any I/O, and returns
    /// how many bytes it took (0 when the buffer is full: hand the writer to
    /// [`Spool::flush_behind`](super::Spool::flush_behind), then write the rest).
    ///
    /// After a failed write (errors stick) it takes everything and keeps nothing: the
    /// commit reports the error.
    pub fn write_buffered(&mut self, data: &[u8]) -> usize {
        if self.failed.is_some() {
            return data.len();
        }
        let n = data.len().min(self.spare());
        let taken = &data[..n];
        self.crc.update(taken);
        self.body_len += n as u64;
        self.buf.extend_from_slice(taken);
        n
    }

    /// Writes the buffer out (creating the file first if it does not exist yet). Runs on a
    /// spool thread for [`Spool::flush_behind`](super::Spool::flush_behind); a failure sticks.
    pub(crate) fn flush_pending(&mut self) {
        if self.check().is_ok() {
            let _ = self.flush_buf();
        }
        // A header larger than the buffer grew it once: back to the fixed size.
        if self.buf.capacity() > self.cap {
            self.buf.shrink_to(self.cap);
        }
    }

    /// Appends message bytes (the message exactly as it is to be stored).
    ///
    /// Blocks on a file write when the buffer fills.
    pub fn write_all(&mut self, data: &[u8]) -> Result<(), SpoolError> {
        self.check()?;
        self.crc.update(data);
        self.body_len += data.len() as u64;
        self.put(data)
    }

    /// Writes out the buffer and opens what was written so far for reading: the message bytes
    /// only (not the header or envelope), seekable from 0. Message and queue hooks read the
    /// message through it before the commit. Blocks on file I/O: call it from a worker.
    pub fn message_reader(&mut self) -> Result<MessageWindow, SpoolError> {
        self.check()?;
        self.ensure_file()?;
        self.flush_buf()?;
        let file = self
            .shared
            .io
            .open(&self.tmp_path)
            .map_err(|e| SpoolError::io("open", self.tmp_path.clone(), e))?;
        Ok(MessageWindow {
            file,
            start: (HEADER_LEN as u64) + u64::from(self.envelope_len),
            len: self.body_len,
            pos: 0,
        })
    }

    /// Abandons the message: deletes the tmp file (blocking). Same as dropping the writer.
    pub fn abort(mut self) {
        self.discard();
    }

    fn check(&self) -> Result<(), SpoolError> {
        match self.failed {
            None => Ok(()),
            Some((raw, kind)) => Err(SpoolError::io(
                "write",
                self.tmp_path.clone(),
                match raw {
                    Some(raw) => io::Error::from_raw_os_error(raw),
                    None => kind.into(),
                },
            )),
        }
    }

    /// Buffers `data`, writing the buffer (and `data` itself when it is large) to the file
    /// as needed. The buffer never grows past its capacity.
    fn put(&mut self, data: &[u8]) -> Result<(), SpoolError> {
        let cap = self.cap;
        if self.buf.len() + data.len() <= cap {
            self.buf.extend_from_slice(data);
            return Ok(());
        }
        self.flush_buf()?;
        if data.len() >= cap {
            self.raw_write(data)
        } else {
            self.buf.extend_from_slice(data);
            Ok(())
        }
    }

    fn flush_buf(&mut self) -> Result<(), SpoolError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.buf);
        let res = self.raw_write(&buf);
        self.buf = buf;
        self.buf.clear();
        res
    }

    /// Whether the tmp file exists on disk (dropping the writer then removes it).
    pub(crate) fn on_disk(&self) -> bool {
        self.on_disk && !self.done
    }

    /// Marks the writer failed because the spool is closing.
    pub(crate) fn fail_closed(&mut self) {
        if self.failed.is_none() {
            self.failed = Some((None, io::ErrorKind::BrokenPipe));
        }
    }

    /// Creates `tmp/<id>` (`O_EXCL`) for a deferred writer that has none yet.
    fn ensure_file(&mut self) -> Result<(), SpoolError> {
        if self.file.is_some() || self.on_disk || self.done {
            return Ok(());
        }
        match self.shared.io.create_new(&self.tmp_path) {
            Ok(file) => {
                self.file = Some(file);
                self.on_disk = true;
                Ok(())
            }
            Err(e) => {
                self.failed = Some((e.raw_os_error(), e.kind()));
                Err(SpoolError::io("create", self.tmp_path.clone(), e))
            }
        }
    }

    fn raw_write(&mut self, data: &[u8]) -> Result<(), SpoolError> {
        self.ensure_file()?;
        let Some(file) = self.file.as_mut() else {
            return Err(SpoolError::Closed);
        };
        file.write_all(data).map_err(|e| {
            self.failed = Some((e.raw_os_error(), e.kind()));
            SpoolError::io("write", self.tmp_path.clone(), e)
        })
    }

    /// Writes the rest of the buffer and the END record, fsyncs and closes the file.
    /// On failure the tmp file is deleted. Runs on a spool sync thread.
    pub(crate) fn finish(&mut self) -> Result<(), SpoolError> {
        let res = self.finish_inner();
        if res.is_err() {
            self.discard();
        }
        res
    }

    fn finish_inner(&mut self) -> Result<(), SpoolError> {
        self.check()?;
        let trailer = encode_trailer(self.body_len, self.envelope_len, self.crc.clone());
        self.put(&trailer)?;
        self.flush_buf()?;
        let mut file = self.file.take().ok_or(SpoolError::Closed)?;
        file.sync()
            .map_err(|e| SpoolError::io("fsync", self.tmp_path.clone(), e))?;
        Ok(())
    }

    /// Releases the finished file for its rename: from now on the queue owns it.
    pub(crate) fn into_tmp_path(mut self) -> (QueueId, PathBuf) {
        self.done = true;
        (self.id, std::mem::take(&mut self.tmp_path))
    }

    fn discard(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        self.file = None;
        if !self.on_disk {
            return;
        }
        if let Err(e) = self.shared.io.remove(&self.tmp_path) {
            log::warn!("spool: could not remove {}: {e}", self.tmp_path.display());
        }
    }
}

impl Drop for SpoolWriter {
    fn drop(&mut self) {
        self.discard();
    }
}

impl io::Write for SpoolWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        SpoolWriter::write_all(self, buf).map_err(|e| match e {
            SpoolError::Io { source, .. } => source,
            other => io::Error::other(other),
        })?;
        Ok(buf.len())
    }

    /// Does nothing: durability comes from the commit, not from flushing.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The message bytes of a [`SpoolWriter`]'s file, read back before the commit
/// ([`SpoolWriter::message_reader`]): `Read + Seek` over exactly the bytes written so far.
pub struct MessageWindow {
    file: Box<dyn super::io::ReadFile>,
    start: u64,
    len: u64,
    pos: u64,
}

impl MessageWindow {
    /// The number of message bytes visible through the window.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the message is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl io::Read for MessageWindow {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        self.file.seek(io::SeekFrom::Start(self.start + self.pos))?;
        let n = self.file.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl io::Seek for MessageWindow {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        let target = match to {
            io::SeekFrom::Start(n) => Some(n),
            io::SeekFrom::End(d) => self.len.checked_add_signed(d),
            io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(n) => {
                self.pos = n;
                Ok(n)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the message",
            )),
        }
    }
}

impl std::fmt::Debug for MessageWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageWindow")
            .field("len", &self.len)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SpoolWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpoolWriter")
            .field("id", &self.id)
            .field("body_len", &self.body_len)
            .finish_non_exhaustive()
    }
}
