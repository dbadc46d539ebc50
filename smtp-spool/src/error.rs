//! The spool's error type and the SMTP reply each error deserves.

use std::io;
use std::path::PathBuf;

use smtp_proto::{EnhancedStatus, ErrorReply};

use super::id::{InvalidQueueId, QueueId};

/// `451 4.3.0`: a local error on the way to stable storage; the client retries later.
pub const REPLY_LOCAL_ERROR: ErrorReply = ErrorReply::new(
    451,
    EnhancedStatus::new(4, 3, 0),
    "Local error in processing, message not queued",
);

/// `452 4.3.1`: the spool's file system is (nearly) full.
pub const REPLY_NO_SPACE: ErrorReply = ErrorReply::new(
    452,
    EnhancedStatus::new(4, 3, 1),
    "Insufficient system storage",
);

/// Everything that can go wrong in the spool.
///
/// Variants are grouped by fault: the storage failed (`Io`, `NoSpace`), a stored file is
/// damaged (`Corrupt`), the caller asked for something that is not there or not valid
/// (`InvalidId`, `NotFound`, `EnvelopeTooLarge`), or the spool is shutting down (`Closed`).
/// None of them is ever a success: [`SpoolError::reply`] gives the 4xx a server answers with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    // The storage.
    /// A file operation failed.
    #[error("spool I/O error: {op} {path}: {source}")]
    Io {
        /// What was being done (`"create"`, `"write"`, `"fsync"`, `"rename"`, ...).
        op: &'static str,
        /// The file or directory it was done on.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Free space is below what a message of the size limit needs (see
    /// [`Spool::check_free_space`](super::Spool::check_free_space)).
    #[error("spool file system low on space: {available} bytes free, {required} required")]
    NoSpace {
        /// Bytes available to unprivileged users.
        available: u64,
        /// Bytes required (1.5 × the message size limit).
        required: u64,
    },
    // Damaged files.
    /// A spool file does not parse or fails its checksum.
    #[error("corrupt spool file {path}: {reason}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    // The caller's request.
    /// An operator gave a string that is not a queue id.
    #[error(transparent)]
    InvalidId(#[from] InvalidQueueId),
    /// No message with this id is in the queue.
    #[error("no message {0} in the spool")]
    NotFound(QueueId),
    /// The envelope does not fit the format's limit ([`MAX_ENVELOPE_LEN`](super::MAX_ENVELOPE_LEN)).
    #[error("envelope too large: {0} bytes")]
    EnvelopeTooLarge(usize),
    /// A state record does not fit the format's limit ([`MAX_STATE_LEN`](super::MAX_STATE_LEN)).
    #[error("state record too large: {0} bytes")]
    StateTooLarge(usize),
    // Lifecycle.
    /// Another process (or another open [`Spool`](super::Spool) in this one) owns the spool:
    /// one server, one relay, one writer per spool.
    #[error("spool {} is in use by another process{}: one server owns a spool", .path.display(), .pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked {
        /// The spool directory.
        path: PathBuf,
        /// The process id in its lock file, when readable.
        pid: Option<u32>,
    },
    /// The spool's commit threads are gone (the spool was dropped or a thread died).
    #[error("spool is closed")]
    Closed,
}

impl SpoolError {
    /// Wraps an I/O error with the operation and path it happened on.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> SpoolError {
        SpoolError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Whether this error means the file system is full (ENOSPC, EDQUOT or a failed
    /// free-space check).
    pub fn is_no_space(&self) -> bool {
        match self {
            SpoolError::NoSpace { .. } => true,
            SpoolError::Io { source, .. } => is_no_space(source),
            _ => false,
        }
    }

    /// The SMTP reply for a transaction that hit this error: `452 4.3.1` when storage is
    /// full, `451 4.3.0` for everything else. Never a 2xx.
    pub fn reply(&self) -> ErrorReply {
        if self.is_no_space() {
            REPLY_NO_SPACE
        } else {
            REPLY_LOCAL_ERROR
        }
    }
}

/// Whether an I/O error is "no space left" (ENOSPC) or "quota exceeded" (EDQUOT).
pub(crate) fn is_no_space(e: &io::Error) -> bool {
    if e.kind() == io::ErrorKind::StorageFull {
        return true;
    }
    let raw = e.raw_os_error();
    raw.is_some()
        && (raw == Some(rustix::io::Errno::NOSPC.raw_os_error())
            || raw == Some(rustix::io::Errno::DQUOT.raw_os_error()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_never_success() {
        let enospc = SpoolError::io(
            "write",
            "/x",
            io::Error::from_raw_os_error(rustix::io::Errno::NOSPC.raw_os_error()),
        );
        assert_eq!(
            enospc.reply().to_string(),
            "452 4.3.1 Insufficient system storage"
        );
        let eio = SpoolError::io("fsync", "/x", io::Error::other("EIO"));
        assert_eq!(eio.reply().code, 451);
        assert_eq!(eio.reply().status, EnhancedStatus::new(4, 3, 0));
        let low = SpoolError::NoSpace {
            available: 1,
            required: 2,
        };
        assert_eq!(low.reply().code, 452);
        assert_eq!(SpoolError::Closed.reply().code, 451);
    }
}
