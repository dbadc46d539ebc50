//! Reading spool files: the layout check, the streamed message reader and full verification.

use std::io::{self, Read, SeekFrom};
use std::path::{Path, PathBuf};

use super::error::SpoolError;
use super::format::{
    decode_envelope, decode_fixed_header, decode_trailer, Trailer, HEADER_LEN, TRAILER_LEN,
};
use super::id::QueueId;
use super::io::{ReadFile, SpoolIo};
use super::Envelope;

/// A spool file whose header, envelope and END record have been read and cross-checked
/// (the checksum is checked while the body is streamed).
pub(crate) struct Layout {
    pub id: QueueId,
    pub envelope: Envelope,
    pub body_len: u64,
    pub trailer: Trailer,
    /// CRC-32 state after the header and envelope.
    pub crc: crc32fast::Hasher,
}

fn corrupt(path: &Path, reason: impl Into<String>) -> SpoolError {
    SpoolError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Opens a spool file and reads its layout; leaves the file positioned at the first body byte.
pub(crate) fn open_layout(
    io: &dyn SpoolIo,
    path: &Path,
) -> Result<(Box<dyn ReadFile>, Layout), SpoolError> {
    let mut f = io.open(path).map_err(|e| SpoolError::io("open", path, e))?;
    let ioerr = |e: io::Error| SpoolError::io("read", path, e);
    let len = f.seek(SeekFrom::End(0)).map_err(ioerr)?;
    if len < (HEADER_LEN + TRAILER_LEN) as u64 {
        return Err(corrupt(
            path,
            "truncated: shorter than header and END record",
        ));
    }
    f.seek(SeekFrom::Start(0)).map_err(ioerr)?;
    let mut head = [0u8; HEADER_LEN];
    f.read_exact(&mut head).map_err(ioerr)?;
    let elen = decode_fixed_header(&head).map_err(|r| corrupt(path, r))?;
    let min = (HEADER_LEN + elen + TRAILER_LEN) as u64;
    if len < min {
        return Err(corrupt(
            path,
            "truncated: shorter than its envelope and END record",
        ));
    }
    let mut rec = vec![0u8; elen];
    f.read_exact(&mut rec).map_err(ioerr)?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head);
    crc.update(&rec);
    let (id, envelope) = decode_envelope(&rec).map_err(|r| corrupt(path, r))?;
    f.seek(SeekFrom::Start(len - TRAILER_LEN as u64))
        .map_err(ioerr)?;
    let mut t = [0u8; TRAILER_LEN];
    f.read_exact(&mut t).map_err(ioerr)?;
    let trailer = decode_trailer(&t).map_err(|r| corrupt(path, r))?;
    let body_len = len - min;
    if trailer.body_len != body_len || trailer.envelope_len as usize != elen {
        return Err(corrupt(
            path,
            "END record lengths do not match the file size",
        ));
    }
    f.seek(SeekFrom::Start((HEADER_LEN + elen) as u64))
        .map_err(ioerr)?;
    Ok((
        f,
        Layout {
            id,
            envelope,
            body_len,
            trailer,
            crc,
        },
    ))
}

/// The stored message bytes of one spool file, streamed.
///
/// Reads exactly the message bytes (not the envelope, not the END record). The checksum is
/// computed on the way: when the whole message has been read and it does not match, the final
/// `read` fails with [`io::ErrorKind::InvalidData`] instead of returning end of file, so a
/// reader that reaches a clean EOF has read verified bytes.
pub struct MessageReader {
    file: Box<dyn ReadFile>,
    remaining: u64,
    len: u64,
    crc: crc32fast::Hasher,
    trailer: Trailer,
    path: PathBuf,
    verified: bool,
}

impl MessageReader {
    pub(crate) fn new(file: Box<dyn ReadFile>, layout: Layout, path: PathBuf) -> MessageReader {
        MessageReader {
            file,
            remaining: layout.body_len,
            len: layout.body_len,
            crc: layout.crc,
            trailer: layout.trailer,
            path,
            verified: false,
        }
    }

    /// The length of the message in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the message is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn verify(&mut self) -> io::Result<()> {
        if self.verified {
            return Ok(());
        }
        let mut end = [0u8; 16];
        end[..4].copy_from_slice(super::format::END_MAGIC);
        end[4..12].copy_from_slice(&self.trailer.body_len.to_be_bytes());
        end[12..16].copy_from_slice(&self.trailer.envelope_len.to_be_bytes());
        let mut crc = self.crc.clone();
        crc.update(&end);
        if crc.finalize() != self.trailer.crc {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: checksum mismatch", self.path.display()),
            ));
        }
        self.verified = true;
        Ok(())
    }
}

impl Read for MessageReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            if self.remaining == 0 {
                self.verify()?;
            }
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.crc.update(&buf[..n]);
        self.remaining -= n as u64;
        Ok(n)
    }
}

impl std::fmt::Debug for MessageReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageReader")
            .field("path", &self.path)
            .field("len", &self.len)
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

/// Reads a whole spool file and checks everything, checksum included. Returns its id,
/// envelope and message length.
pub(crate) fn verify_file(
    io: &dyn SpoolIo,
    path: &Path,
) -> Result<(QueueId, Envelope, u64), SpoolError> {
    let (file, layout) = open_layout(io, path)?;
    let id = layout.id;
    let envelope = layout.envelope.clone();
    let mut reader = MessageReader::new(file, layout, path.to_path_buf());
    let len = reader.len();
    match io::copy(&mut reader, &mut io::sink()) {
        Ok(_) => Ok((id, envelope, len)),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Err(corrupt(path, "checksum mismatch")),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(corrupt(path, "truncated body")),
        Err(e) => Err(SpoolError::io("read", path, e)),
    }
}
