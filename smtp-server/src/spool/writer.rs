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
/// fsync), so call it from a worker thread, not from an event loop.
///
/// Errors stick: after a failed write, every later write and the commit fail too.
pub struct SpoolWriter {
    shared: Arc<Shared>,
    id: QueueId,
    tmp_path: PathBuf,
    file: Option<Box<dyn SpoolFile>>,
    buf: Vec<u8>,
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
    pub(crate) fn create(shared: Arc<Shared>, env: &Envelope) -> Result<SpoolWriter, SpoolError> {
        let (id, tmp_path, file) = match shared.stock.as_ref().and_then(|s| s.take()) {
            Some(prepared) => {
                let (path, file) = prepared.take();
                (QueueId::generate(), path, file)
            }
            None => Self::create_file(&shared)?,
        };
        let mut w = SpoolWriter {
            buf: Vec::with_capacity(shared.buffer_size),
            shared,
            id,
            tmp_path,
            file: Some(file),
            crc: crc32fast::Hasher::new(),
            envelope_len: 0,
            body_len: 0,
            failed: None,
            done: false,
        };
        let header = encode_header(&id, env)?;
        w.envelope_len = (header.len() - HEADER_LEN) as u32;
        w.crc.update(&header);
        w.put(&header)?;
        Ok(w)
    }

    /// Creates `tmp/<id>` with `O_EXCL` (when the stock is empty or off).
    fn create_file(shared: &Shared) -> Result<(QueueId, PathBuf, Box<dyn SpoolFile>), SpoolError> {
        let mut attempt = 0;
        loop {
            let id = QueueId::generate();
            let path = shared.tmp_dir.join(id.as_str());
            match shared.io.create_new(&path) {
                Ok(file) => return Ok((id, path, file)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < CREATE_ATTEMPTS => {
                    attempt += 1;
                }
                Err(e) => return Err(SpoolError::io("create", path, e)),
            }
        }
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
        let cap = self.buf.capacity();
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

    fn raw_write(&mut self, data: &[u8]) -> Result<(), SpoolError> {
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
