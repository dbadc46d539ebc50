//! Notifications are paced: a mass bounce is built and committed a batch per turn of the
//! relay thread, between the turns that take in arrivals, outcomes and commands.

use smtp_spool::Spool;

use super::driver;
use crate::driver::{RelaySettings, NOTICES_PER_TURN};
use crate::route::RouteTable;
use crate::schedule::Selection;
use crate::state::Timestamp;

/// Commits `n` messages from `a@sender.test`, each to a recipient of its own.
fn commit(spool: &Spool, n: usize) {
    for i in 0..n {
        let to = format!("r{i}@target.test");
        let body = format!("Subject: m{i}\r\n\r\nbody\r\n");
        impulse_test_support::spool::commit(spool, "a@sender.test", &[&to], &body);
    }
}

/// The notifications (messages from the null sender) in the spool.
fn notifications(spool: &Spool) -> usize {
    spool
        .list()
        .unwrap()
        .iter()
        .filter(|e| spool.read_envelope(e.id).unwrap().sender.is_empty())
        .count()
}

#[test]
fn a_mass_bounce_is_committed_a_batch_per_turn() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let n = NOTICES_PER_TURN * 2 + 5;
    commit(&spool, n);
    let settings = RelaySettings::new(RouteTable::new(vec![], None), "relay.test");
    let mut relay = driver(&spool, &settings);
    for id in spool.queued_ids().unwrap() {
        relay.enqueue(id, Timestamp(0));
    }
    relay.act();
    assert_eq!(relay.scheduler.handle_bounce(&Selection::All), n);
    relay.act();
    assert_eq!(relay.notices.len(), n, "all due, none built yet");
    assert_eq!(notifications(&spool), 0);
    relay.notify_some();
    assert_eq!(relay.notices.len(), n - NOTICES_PER_TURN);
    assert_eq!(
        notifications(&spool),
        NOTICES_PER_TURN,
        "one batch per turn"
    );
    while !relay.notices.is_empty() {
        relay.notify_some();
    }
    assert_eq!(notifications(&spool), n, "one per message, none lost");
}
