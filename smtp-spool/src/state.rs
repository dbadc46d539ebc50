//! State records: a small, replaceable record beside a queued message (`state/<id>`).
//!
//! The relay keeps each message's per-recipient state (status, attempts, next attempt, last
//! reply) in one; the spool frames it, checks it and replaces it atomically, and does not know
//! what it means. A message file is written once; its state record is the only thing about a
//! queued message that changes.
//!
//! Framing (all integers little-endian; docs/SPOOL.md):
//!
//! ```text
//! "IMPS"  version u8 (1)  reserved [u8; 3] (zero)  length u32  payload[length]  crc32 u32
//! ```
//!
//! The CRC-32 covers every byte before it. A record that does not verify is
//! [`SpoolError::Corrupt`]: the caller quarantines the message ([`Spool::quarantine`]) rather
//! than treat it as new, which could deliver again what the record said was done.
//!
//! What this module does not do: no caching, no batching of record writes (each
//! [`Spool::write_state`] is one durable replace), no interpretation of the payload.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::SpoolError;
use super::id::QueueId;
use super::{Shared, Spool};

/// The first four bytes of a state record.
pub const STATE_MAGIC: &[u8; 4] = b"IMPS";
/// The framing version written by this build.
pub const STATE_VERSION: u8 = 1;
/// The largest payload a state record may carry (1 MiB): a bound on what a reader allocates.
pub const MAX_STATE_LEN: usize = 1 << 20;
const STATE_HEADER_LEN: usize = 12;

/// Tells apart the temporary files of concurrent [`Spool::write_state`] calls.
static STATE_SEQ: AtomicU64 = AtomicU64::new(0);

/// Frames `payload` as a state record (header, payload, CRC-32).
pub fn encode_state(payload: &[u8]) -> Result<Vec<u8>, SpoolError> {
    if payload.len() > MAX_STATE_LEN {
        return Err(SpoolError::StateTooLarge(payload.len()));
    }
    let mut out = Vec::with_capacity(STATE_HEADER_LEN + payload.len() + 4);
    out.extend_from_slice(STATE_MAGIC);
    out.push(STATE_VERSION);
    out.extend_from_slice(&[0; 3]);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Checks a framed state record and returns its payload, or what is wrong with it.
pub fn decode_state(record: &[u8]) -> Result<&[u8], String> {
    if record.len() < STATE_HEADER_LEN + 4 {
        return Err(format!("state record too short ({} bytes)", record.len()));
    }
    if &record[..4] != STATE_MAGIC {
        return Err("not a state record (bad magic)".into());
    }
    if record[4] != STATE_VERSION {
        return Err(format!("unknown state record version {}", record[4]));
    }
    if record[5..8] != [0; 3] {
        return Err("reserved bytes of the state record are not zero".into());
    }
    let len = u32::from_le_bytes(record[8..12].try_into().expect("4 bytes")) as usize;
    if len > MAX_STATE_LEN || record.len() != STATE_HEADER_LEN + len + 4 {
        return Err(format!(
            "state record length {len} does not match its size {}",
            record.len()
        ));
    }
    let (body, crc) = record.split_at(STATE_HEADER_LEN + len);
    let stored = u32::from_le_bytes(crc.try_into().expect("4 bytes"));
    if crc32fast::hash(body) != stored {
        return Err("state record checksum mismatch".into());
    }
    Ok(&body[STATE_HEADER_LEN..])
}

impl Spool {
    /// Durably replaces the state record of message `id` with `payload` (blocking: a file
    /// write, an fdatasync, a rename over the old record and an fsync of `state/`). When it
    /// returns `Ok`, a crash at any later moment leaves this record (or a later one); when it
    /// fails or the process dies during it, the previous record is still there, whole.
    ///
    /// The caller writes records only for messages it knows are queued; a record left without
    /// its message is removed by the next startup recovery.
    pub fn write_state(&self, id: QueueId, payload: &[u8]) -> Result<(), SpoolError> {
        let shared = &self.inner.shared;
        let io = &*shared.io;
        let record = encode_state(payload)?;
        let seq = STATE_SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = shared.tmp_dir.join(format!("{id}.state.{seq}"));
        let dest = state_path(shared, id);
        let mut file = io
            .create_new(&tmp)
            .map_err(|e| SpoolError::io("create", &tmp, e))?;
        let written = file
            .write_all(&record)
            .and_then(|()| file.sync())
            .map_err(|e| SpoolError::io("write", &tmp, e))
            .and_then(|()| {
                io.rename_replace(&tmp, &dest)
                    .map_err(|e| SpoolError::io("rename", &tmp, e))
            });
        if let Err(e) = written {
            // Nothing was replaced; the tmp file would go at the next recovery anyway.
            let _ = io.remove(&tmp);
            return Err(e);
        }
        io.fsync_dir(&shared.state_dir)
            .map_err(|e| SpoolError::io("fsync_dir", &shared.state_dir, e))
    }

    /// Reads and checks the state record of message `id`: `Ok(None)` when it has none (a
    /// message no relay has touched yet, or a spool written before state records existed),
    /// [`SpoolError::Corrupt`] when the record does not verify.
    pub fn read_state(&self, id: QueueId) -> Result<Option<Vec<u8>>, SpoolError> {
        let shared = &self.inner.shared;
        let path = state_path(shared, id);
        let mut file = match shared.io.open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(SpoolError::io("open", path, e)),
        };
        let mut record = Vec::new();
        file.by_ref()
            .take((STATE_HEADER_LEN + MAX_STATE_LEN + 5) as u64)
            .read_to_end(&mut record)
            .map_err(|e| SpoolError::io("read", &path, e))?;
        match decode_state(&record) {
            Ok(payload) => Ok(Some(payload.to_vec())),
            Err(reason) => Err(SpoolError::Corrupt { path, reason }),
        }
    }

    /// Moves message `id` and its state record (if any) into `quarantine/`, for an operator
    /// to look at: what a caller does with a message whose file or record fails its check.
    /// The message stays out of the queue and is never deleted by the spool.
    pub fn quarantine(&self, id: QueueId) -> Result<(), SpoolError> {
        let shared = &self.inner.shared;
        let queued = shared.queue_dir.join(id.as_str());
        match move_to_quarantine(shared, id.as_str(), &queued) {
            Err(SpoolError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(SpoolError::NotFound(id))
            }
            other => other?,
        }
        quarantine_state(shared, id)?;
        for dir in [&shared.quarantine_dir, &shared.queue_dir] {
            shared
                .io
                .fsync_dir(dir)
                .map_err(|e| SpoolError::io("fsync_dir", dir, e))?;
        }
        log::warn!("spool: {id} quarantined");
        Ok(())
    }
}

/// Where the state record of `id` lives.
pub(crate) fn state_path(shared: &Shared, id: QueueId) -> PathBuf {
    shared.state_dir.join(id.as_str())
}

/// Removes the state record of `id`, if it has one, and syncs `state/`. Called after the
/// message itself is removed: in that order a crash leaves at worst a record without a
/// message (removed by recovery), never a message without the record that says which of
/// its recipients are done.
pub(crate) fn remove_state(shared: &Shared, id: QueueId) -> Result<(), SpoolError> {
    let path = state_path(shared, id);
    match shared.io.remove(&path) {
        Ok(()) => shared
            .io
            .fsync_dir(&shared.state_dir)
            .map_err(|e| SpoolError::io("fsync_dir", &shared.state_dir, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SpoolError::io("remove", path, e)),
    }
}

/// Moves the state record of `id`, if any, beside its quarantined message (`<id>.state`).
pub(crate) fn quarantine_state(shared: &Shared, id: QueueId) -> Result<(), SpoolError> {
    let path = state_path(shared, id);
    match move_to_quarantine(shared, &format!("{id}.state"), &path) {
        Err(SpoolError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(())
        }
        Ok(()) => shared
            .io
            .fsync_dir(&shared.state_dir)
            .map_err(|e| SpoolError::io("fsync_dir", &shared.state_dir, e)),
        Err(e) => Err(e),
    }
}

/// Renames `path` into `quarantine/` as `name` (or `name.N` when taken); never replaces.
pub(crate) fn move_to_quarantine(
    shared: &Shared,
    name: &str,
    path: &Path,
) -> Result<(), SpoolError> {
    let io = &*shared.io;
    let taken = io
        .read_dir(&shared.quarantine_dir)
        .map_err(|e| SpoolError::io("read_dir", &shared.quarantine_dir, e))?;
    let mut target = name.to_owned();
    let mut n = 1;
    while taken.contains(&target) {
        target = format!("{name}.{n}");
        n += 1;
    }
    let dest = shared.quarantine_dir.join(target);
    io.rename(path, &dest)
        .map_err(|e| SpoolError::io("rename", path, e))
}
