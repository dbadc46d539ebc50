//! Operator commands on a spool no relay runs on (a server without `[relay]`, or none at
//! all, the caller holding the spool's lock): the same scheduler applies them, with nothing
//! due and nothing delivered, so `hold`, `release`, `delete` and `bounce` mean exactly what
//! they mean on a live relay (a bounce queues its notification in the spool, for the next
//! relay to deliver). `flush` moves every waiting recipient's next attempt to now in its
//! record, so the next relay to start attempts them at once.

use std::collections::HashMap;
use std::collections::VecDeque;

use smtp_spool::Spool;

use super::{wall_clock, Command, Driver, RelaySettings};
use crate::schedule::{Scheduler, Selection};
use crate::state::{MessageState, Timestamp};

/// Applies `command` to the messages of `spool`; how many it applied to.
pub fn apply(spool: &Spool, settings: &RelaySettings, command: &Command) -> Result<usize, String> {
    if let Command::Flush(selection) = command {
        return flush(spool, selection);
    }
    let mut driver = driver(spool, settings);
    // At time zero nothing is due and nothing has expired: only the command acts.
    for id in spool.queued_ids().map_err(|e| e.to_string())? {
        driver.enqueue(id, Timestamp(0));
    }
    driver.act();
    let n = match command {
        Command::Hold(s) => driver.scheduler.handle_hold(s),
        Command::Release(s) => driver.scheduler.handle_release(s),
        Command::Delete(s) => driver.scheduler.handle_delete(s),
        Command::Bounce(s) => driver.scheduler.handle_bounce(s),
        Command::Flush(_) => 0,
    };
    driver.act();
    // Every notification the command made due, committed before this returns.
    while !driver.notices.is_empty() {
        driver.notify_some();
    }
    if let Some(r) = driver.retry.front() {
        return Err(format!(
            "not all of it was written ({:?}); try again",
            r.action
        ));
    }
    Ok(n)
}

/// A relay driver with no delivery engine, no DNS and no threads, over `spool`: what
/// operator commands run through when no relay owns the spool.
pub(super) fn driver(spool: &Spool, settings: &RelaySettings) -> Driver {
    let (_, never_deliveries) = crossbeam_channel::bounded(0);
    let (_, never_commits) = crossbeam_channel::bounded(0);
    let (_, never_routes) = crossbeam_channel::bounded(0);
    let (_, never_inputs) = crossbeam_channel::bounded(0);
    Driver {
        scheduler: Scheduler::new(settings.schedule.clone()),
        spool: spool.clone(),
        settings: settings.clone(),
        engine: None,
        deliveries: never_deliveries,
        commits: never_commits,
        dns: Vec::new(),
        routes: never_routes,
        inputs: never_inputs,
        tickets: HashMap::new(),
        envelopes: HashMap::new(),
        tls: HashMap::new(),
        last_hop: HashMap::new(),
        retry: VecDeque::new(),
        notices: VecDeque::new(),
        stopping: None,
        offline: true,
        io: None,
        io_done: crossbeam_channel::never(),
        stats: super::stats::RelayStats::default(),
        classes_seen: super::stats::ClassesSeen::new(),
    }
}

/// `flush` without a relay: waiting recipients are due now in their records.
fn flush(spool: &Spool, selection: &Selection) -> Result<usize, String> {
    let ids = match selection {
        Selection::All => spool
            .list()
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|e| e.id)
            .collect(),
        Selection::Ids(ids) => ids.clone(),
    };
    let now = wall_clock();
    let mut n = 0;
    for id in ids {
        let Some(record) = spool.read_state(id).map_err(|e| e.to_string())? else {
            // No record: never attempted, due at arrival already.
            if spool.read_envelope(id).is_ok() {
                n += 1;
            }
            continue;
        };
        let mut state = MessageState::decode(&record).map_err(|e| format!("{id}: {e}"))?;
        if state.held {
            continue;
        }
        for r in &mut state.recipients {
            if !r.status.is_final() {
                r.next_attempt = r.next_attempt.min(now);
            }
        }
        spool
            .write_state(id, &state.encode())
            .map_err(|e| e.to_string())?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
#[path = "notify_tests.rs"]
mod tests;
