//! What the relay's socket tests share: committing a message to a spool as the server would,
//! starting a relay over a fresh spool, reading a message's state record, and waiting for a
//! condition with a limit (the last from test-support, as the commit is).
#![allow(dead_code)] // each test binary uses its own part

use std::time::Duration;

use smtp_relay::driver::{Relay, RelaySettings};
use smtp_relay::route::{Route, RouteTable};
use smtp_relay::MessageState;
use smtp_spool::{QueueId, Spool};

#[allow(unused_imports)] // as with the functions, each binary takes its own part
pub use impulse_test_support::spool::{commit, commit_envelope, envelope};
pub use impulse_test_support::wait::until;

/// How long a test waits for what the relay should do within a moment.
pub const WAIT: Duration = Duration::from_secs(20);

/// The message's state record, decoded, if it has one.
pub fn state(spool: &Spool, id: QueueId) -> Option<MessageState> {
    spool
        .read_state(id)
        .unwrap()
        .and_then(|r| MessageState::decode(&r).ok())
}

/// Waits up to [`WAIT`] until the first recipient of `id` is deferred; its state record
/// then (a panic with the last one seen when it never is).
pub fn first_deferred(spool: &Spool, id: QueueId) -> MessageState {
    let deferred = until(WAIT, || {
        state(spool, id).is_some_and(|s| s.recipients[0].status == smtp_relay::Status::Deferred)
    });
    assert!(deferred, "deferred: {:?}", state(spool, id));
    state(spool, id).unwrap()
}

/// Whether the spool empties within [`WAIT`].
pub fn drained(spool: &Spool) -> bool {
    until(WAIT, || spool.list().unwrap().is_empty())
}

/// Relay settings for `routes` (no MX), named `relay.test`, retrying after a second and
/// shutting down within two.
pub fn relay_settings(routes: Vec<Route>) -> RelaySettings {
    let table = RouteTable::new(routes, None);
    let mut s = RelaySettings::new(table, "relay.test");
    s.schedule.retry.intervals = vec![Duration::from_secs(1)];
    s.shutdown_grace = Duration::from_secs(2);
    s
}

/// [`relay_settings`] with one route: `domains` to the one next hop `hop`, without TLS.
pub fn relay_settings_to(domains: &[&str], hop: std::net::SocketAddr) -> RelaySettings {
    let host = hop.to_string();
    let route = Route::new(domains, &[host.as_str()], Some("none")).unwrap();
    relay_settings(vec![route])
}

/// A relay with `settings` over a fresh spool (in the directory returned with it).
pub fn start(settings: RelaySettings) -> (tempfile::TempDir, Spool, Relay) {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let relay = Relay::start(spool.clone(), settings).unwrap();
    (dir, spool, relay)
}

/// Asserts that `text` (a notification, say) contains each of `wanted`.
#[track_caller]
pub fn assert_contains_all(text: &str, wanted: &[&str]) {
    for want in wanted {
        assert!(text.contains(want), "{want:?} missing from\n{text}");
    }
}
