//! Committing a message to a spool as the server would after DATA, for the relay's tests
//! (its socket tests in `tests/` and its unit tests in `src/` alike). It does not start a
//! relay or read state records: those belong to the relay's own test helpers.

use std::time::{SystemTime, UNIX_EPOCH};

use smtp_spool::{Envelope, QueueId, Recipient, Spool};

/// The envelope the server would write for a transaction from `from` to `to`: no MAIL or
/// RCPT parameters, from `127.0.0.1` with `EHLO client.test`, received now.
pub fn envelope(from: &str, to: &[&str]) -> Envelope {
    Envelope {
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
    }
}

/// Commits `body` under `envelope` and returns its queue id.
pub fn commit_envelope(spool: &Spool, envelope: &Envelope, body: &str) -> QueueId {
    let mut w = spool.begin(envelope).unwrap();
    w.write_all(body.as_bytes()).unwrap();
    spool.commit_blocking(w).unwrap()
}

/// Commits a message from `from` to `to` with `body`, as the server does after DATA.
pub fn commit(spool: &Spool, from: &str, to: &[&str], body: &str) -> QueueId {
    commit_envelope(spool, &envelope(from, to), body)
}
