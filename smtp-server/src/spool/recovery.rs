//! Startup recovery: clear `tmp/`, verify every queued file, quarantine the damaged ones.

use std::path::Path;

use super::error::SpoolError;
use super::id::QueueId;
use super::reader::verify_file;
use super::Shared;

/// What startup recovery found and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Queued messages that verified (header, envelope, END record, checksum) and stay queued.
    pub recovered: usize,
    /// Files removed from `tmp/`: messages whose commit never completed, so no client was
    /// ever told `250` for them.
    pub tmp_removed: usize,
    /// Files moved from `queue/` to `quarantine/` because they do not verify.
    pub quarantined: usize,
}

/// Runs recovery. The spool must not be in use by another process.
pub(crate) fn recover(shared: &Shared) -> Result<RecoveryReport, SpoolError> {
    let io = &*shared.io;
    let mut report = RecoveryReport::default();

    // 1. tmp/: every file there belongs to a commit that never reached its rename (the
    //    rename is the only way out of tmp/), so its client never got a 250. A tmp file may
    //    even be complete (fsync done, rename not): it is still not acknowledged mail.
    let names = io
        .read_dir(&shared.tmp_dir)
        .map_err(|e| SpoolError::io("read_dir", &shared.tmp_dir, e))?;
    for name in names {
        let path = shared.tmp_dir.join(&name);
        match io.remove(&path) {
            Ok(()) => report.tmp_removed += 1,
            Err(e) => log::warn!("spool recovery: cannot remove {}: {e}", path.display()),
        }
    }
    if report.tmp_removed > 0 {
        io.fsync_dir(&shared.tmp_dir)
            .map_err(|e| SpoolError::io("fsync_dir", &shared.tmp_dir, e))?;
    }

    // 2. queue/: a file reaches queue/ only after its fsync, so a file that does not verify
    //    (bad magic, unknown version, truncated, no END record, checksum mismatch, id not
    //    matching the name, a stray name) is damage, not an interrupted commit. It may hold a
    //    message we acknowledged: move it aside for an operator, never delete it.
    let names = io
        .read_dir(&shared.queue_dir)
        .map_err(|e| SpoolError::io("read_dir", &shared.queue_dir, e))?;
    for name in names {
        let path = shared.queue_dir.join(&name);
        let problem = match QueueId::parse(&name) {
            Err(e) => Some(e.to_string()),
            Ok(id) => match verify_file(io, &path) {
                Ok((stored, _, _)) if stored == id => None,
                Ok((stored, _, _)) => Some(format!("file holds queue id {stored}")),
                Err(SpoolError::Corrupt { reason, .. }) => Some(reason),
                Err(e) => return Err(e),
            },
        };
        match problem {
            None => report.recovered += 1,
            Some(reason) => {
                quarantine(shared, &name, &path)?;
                log::warn!("spool recovery: quarantined {name}: {reason}");
                report.quarantined += 1;
            }
        }
    }
    if report.quarantined > 0 {
        io.fsync_dir(&shared.quarantine_dir)
            .map_err(|e| SpoolError::io("fsync_dir", &shared.quarantine_dir, e))?;
        io.fsync_dir(&shared.queue_dir)
            .map_err(|e| SpoolError::io("fsync_dir", &shared.queue_dir, e))?;
    }
    log::info!(
        "spool recovery: {} queued, {} incomplete removed from tmp, {} quarantined",
        report.recovered,
        report.tmp_removed,
        report.quarantined
    );
    Ok(report)
}

/// Moves `queue/<name>` to `quarantine/<name>` (with a numeric suffix if that is taken).
fn quarantine(shared: &Shared, name: &str, path: &Path) -> Result<(), SpoolError> {
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
