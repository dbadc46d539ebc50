//! What the pair keeps of a connection ([`Transcript`]: the bytes each way, the server's
//! events, the client's outcomes, when each side closed) and of a stored message
//! ([`Stored`]: envelope and bytes read back from the spool).
//!
//! Records only: nothing here drives either side.

use std::time::Instant;

use smtp_client::{Error, Event as ClientEvent, OutcomeKind, RecipientOutcome};
use smtp_server::factory::{CloseReason, Event};
use smtp_server::spool::{Envelope, QueueId};

/// One connection of a [`Pair`](super::Pair), as both ends saw it.
#[derive(Debug, Clone)]
pub struct Transcript {
    opened: Instant,
    reads: Vec<Vec<u8>>,
    writes: Vec<Vec<u8>>,
    /// Which list each segment went to, in the order they moved.
    order: Vec<Side>,
    pub(crate) server_events: Vec<(Instant, Event)>,
    pub(crate) client_events: Vec<(Instant, ClientEvent)>,
    pub(crate) server_closed: Option<Instant>,
    pub(crate) client_closed: Option<Instant>,
}

impl Transcript {
    pub(crate) fn new(opened: Instant) -> Transcript {
        Transcript {
            opened,
            reads: Vec::new(),
            writes: Vec::new(),
            order: Vec::new(),
            server_events: Vec::new(),
            client_events: Vec::new(),
            server_closed: None,
            client_closed: None,
        }
    }

    /// The server read `bytes` (one client write).
    pub(crate) fn push_read(&mut self, bytes: Vec<u8>) {
        self.reads.push(bytes);
        self.order.push(Side::Client);
    }

    /// The server wrote `bytes` (one flush).
    pub(crate) fn push_write(&mut self, bytes: Vec<u8>) {
        self.writes.push(bytes);
        self.order.push(Side::Server);
    }

    /// When the connection was opened (simulated time).
    pub fn opened(&self) -> Instant {
        self.opened
    }

    /// What the server read, one entry per read: each entry is one write of the client
    /// (the pair delivers every client write as one segment).
    pub fn reads(&self) -> &[Vec<u8>] {
        &self.reads
    }

    /// What the server wrote, one entry per flush of its transmit queue.
    pub fn writes(&self) -> &[Vec<u8>] {
        &self.writes
    }

    /// The server's events, in order, with the simulated time each was polled.
    pub fn server_events(&self) -> &[(Instant, Event)] {
        &self.server_events
    }

    /// Why the server closed, once its factory emitted [`Event::Close`].
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.server_events.iter().find_map(|(_, e)| match e {
            Event::Close { reason } => Some(*reason),
            _ => None,
        })
    }

    /// The client's events, in order, with the simulated time each was polled.
    pub fn client_events(&self) -> &[(Instant, ClientEvent)] {
        &self.client_events
    }

    /// Every recipient outcome the client reported on this connection, in order.
    pub fn outcomes(&self) -> Vec<&RecipientOutcome> {
        self.client_events
            .iter()
            .filter_map(|(_, e)| match e {
                ClientEvent::Recipient { outcome, .. } => Some(outcome),
                _ => None,
            })
            .collect()
    }

    /// Each message done on this connection: its outcomes, one per recipient, in order.
    pub fn messages(&self) -> Vec<&[RecipientOutcome]> {
        self.client_events
            .iter()
            .filter_map(|(_, e)| match e {
                ClientEvent::MessageDone { outcomes, .. } => Some(outcomes.as_slice()),
                _ => None,
            })
            .collect()
    }

    /// The recipients whose outcome on this connection was [`OutcomeKind::Deferred`]: what a
    /// retry sends again.
    pub fn deferred(&self) -> Vec<String> {
        self.outcomes()
            .into_iter()
            .filter(|o| o.kind == OutcomeKind::Deferred)
            .map(|o| o.recipient.clone())
            .collect()
    }

    /// `Some` once the client's session is over: `Some(None)` after QUIT, `Some(Some(e))`
    /// when `e` ended it early.
    pub fn client_done(&self) -> Option<Option<&Error>> {
        self.client_events.iter().find_map(|(_, e)| match e {
            ClientEvent::SessionDone { error } => Some(error.as_ref()),
            _ => None,
        })
    }

    /// When the server closed its end (its factory closed and its last reply was written).
    pub fn server_closed(&self) -> Option<Instant> {
        self.server_closed
    }

    /// When the client closed its end (its session was done).
    pub fn client_closed(&self) -> Option<Instant> {
        self.client_closed
    }

    /// The conversation as text, `C: ` and `S: ` lines in the order the pair moved them
    /// (for assertion messages).
    pub fn text(&self) -> String {
        let mut out = String::new();
        let (mut r, mut w) = (self.reads.iter(), self.writes.iter());
        for side in &self.order {
            let (prefix, bytes) = match side {
                Side::Client => ("C: ", r.next()),
                Side::Server => ("S: ", w.next()),
            };
            if let Some(bytes) = bytes {
                for line in String::from_utf8_lossy(bytes).split_inclusive('\n') {
                    out.push_str(prefix);
                    out.push_str(line);
                }
            }
        }
        out
    }
}

/// Who wrote a segment.
#[derive(Debug, Clone, Copy)]
enum Side {
    Client,
    Server,
}

/// A message the pair's server committed to its spool, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Its queue id.
    pub id: QueueId,
    /// The spool's envelope (sender, recipients, peer, HELO, received time, ...).
    pub envelope: Envelope,
    /// The stored bytes: the server's `Received:` header, then the message as sent.
    pub message: Vec<u8>,
}
