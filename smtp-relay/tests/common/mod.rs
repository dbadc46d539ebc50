//! What the relay's socket tests share: committing a message to a spool as the server would,
//! reading a message's state record, and waiting for a condition with a limit.
#![allow(dead_code)] // each test binary uses its own part

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use smtp_relay::MessageState;
use smtp_spool::{Envelope, QueueId, Recipient, Spool};

/// How long a test waits for what the relay should do within a moment.
pub const WAIT: Duration = Duration::from_secs(20);

/// Commits a message from `from` to `to` with `body`, as the server does after DATA.
pub fn commit(spool: &Spool, from: &str, to: &[&str], body: &str) -> QueueId {
    let env = Envelope {
        sender: from.into(),
        mail_params: String::new(),
        recipients: to.iter().map(|r| Recipient::new(*r)).collect(),
        peer: "127.0.0.1".into(),
        helo: "client.test".into(),
        received: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        tls: None,
        auth: None,
        notes: vec![],
    };
    let mut w = spool.begin(&env).unwrap();
    w.write_all(body.as_bytes()).unwrap();
    spool.commit_blocking(w).unwrap()
}

/// The message's state record, decoded, if it has one.
pub fn state(spool: &Spool, id: QueueId) -> Option<MessageState> {
    spool
        .read_state(id)
        .unwrap()
        .and_then(|r| MessageState::decode(&r).ok())
}

/// Polls `done` until it holds or `limit` has passed; returns its last answer.
pub fn until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

/// Relay settings for `routes` (no MX), named `relay.test`, retrying after a second and
/// shutting down within two.
pub fn relay_settings(routes: Vec<smtp_relay::route::Route>) -> smtp_relay::driver::RelaySettings {
    let table = smtp_relay::route::RouteTable::new(routes, None);
    let mut s = smtp_relay::driver::RelaySettings::new(table, "relay.test");
    s.schedule.retry.intervals = vec![Duration::from_secs(1)];
    s.shutdown_grace = Duration::from_secs(2);
    s
}
