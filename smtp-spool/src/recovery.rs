//! Startup recovery: clear `tmp/`, verify every queued file, quarantine the damaged ones.

use super::error::SpoolError;
use super::id::QueueId;
use super::reader::verify_file;
use super::state::{move_to_quarantine, quarantine_state};
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
    /// State records removed from `state/` because their message is gone (it was removed,
    /// and the crash came before its record followed).
    pub states_removed: usize,
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
    let mut queued = std::collections::HashSet::with_capacity(names.len());
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
            None => {
                report.recovered += 1;
                queued.insert(name);
            }
            Some(reason) => {
                move_to_quarantine(shared, &name, &path)?;
                if let Ok(id) = QueueId::parse(&name) {
                    quarantine_state(shared, id)?;
                }
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
    // 3. state/: a record whose message is not queued belongs to a message removed just
    //    before a crash (the message goes first, see `Spool::remove`), or quarantined above.
    let names = io
        .read_dir(&shared.state_dir)
        .map_err(|e| SpoolError::io("read_dir", &shared.state_dir, e))?;
    for name in names.into_iter().filter(|n| !queued.contains(n)) {
        let path = shared.state_dir.join(&name);
        match io.remove(&path) {
            Ok(()) => report.states_removed += 1,
            Err(e) => log::warn!("spool recovery: cannot remove {}: {e}", path.display()),
        }
    }
    if report.states_removed > 0 {
        io.fsync_dir(&shared.state_dir)
            .map_err(|e| SpoolError::io("fsync_dir", &shared.state_dir, e))?;
    }
    log::info!(
        "spool recovery: {} queued, {} incomplete removed from tmp, {} quarantined",
        report.recovered,
        report.tmp_removed,
        report.quarantined
    );
    Ok(report)
}
