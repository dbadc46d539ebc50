//! The types several files of the loop share: the connection's slab key ([`ConnId`]) and
//! the key that names a connection across time ([`ConnKey`]), what a parked connection
//! waits for ([`Waiting`]), what other threads send a loop ([`Msg`], through a
//! [`LoopSender`]) and the transaction log line kept until the commit ([`TxnLog`]).
//!
//! A leaf: it imports nothing from its sibling modules, so every file of the loop may use
//! it without a cycle. It holds no behaviour of the loop itself.

use std::sync::Arc;

use crossbeam_channel::Sender;
use hooks_api::{Notes, Pending, Verdict};
use mio::{Token, Waker};

use crate::factory::{Decision, Event};
use crate::spool::SpoolWriter;

/// A connection's slab key: the newtype behind every connection token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(pub usize);

impl From<ConnId> for Token {
    fn from(id: ConnId) -> Token {
        Token(id.0)
    }
}

/// A connection named across time: its slab slot and the serial number the loop gave it.
/// A slot is reused once its connection has gone; the serial tells a completion, a
/// deadline or a retry meant for the old connection from the new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ConnKey {
    /// The slab key.
    pub slot: usize,
    /// The loop's count of connections when this one was accepted (from 1).
    pub serial: u64,
}

impl ConnKey {
    /// The slab key as the id of the connection's token.
    pub(crate) fn id(self) -> ConnId {
        ConnId(self.slot)
    }
}

/// What a connection waits for besides its socket.
#[derive(Debug)]
pub(crate) enum Waiting {
    /// Nothing: the socket drives it.
    Nothing,
    /// A hook went pending: the event it was deciding, and where to resume its chain.
    Hook { event: Box<Event>, pending: Pending },
    /// The spool's commit callback, or the hook pool's answer on the end of data.
    Queue,
}

impl Waiting {
    /// Whether the connection is parked (it reads nothing meanwhile).
    pub(crate) fn is_parked(&self) -> bool {
        !matches!(self, Waiting::Nothing)
    }
}

/// What other threads send a loop.
pub(crate) enum Msg {
    /// A pending hook completed.
    Verdict {
        key: ConnKey,
        ticket: u64,
        verdict: Verdict,
    },
    /// A spool thread wrote a connection's writer buffer out and hands the writer back.
    Flushed { key: ConnKey, writer: SpoolWriter },
    /// The end of data was committed (or refused) by the spool or the hook pool.
    Queued {
        key: ConnKey,
        decision: Decision,
        notes: Option<(Notes, Notes)>,
    },
}

/// A loop's inbox as other threads see it: a message goes to its channel, then its `Poll`
/// is woken.
#[derive(Clone)]
pub(crate) struct LoopSender {
    tx: Sender<Msg>,
    waker: Arc<Waker>,
}

impl LoopSender {
    /// The sending side of `tx`, waking `waker`.
    pub(crate) fn new(tx: Sender<Msg>, waker: Arc<Waker>) -> LoopSender {
        LoopSender { tx, waker }
    }

    /// Sends `msg` and wakes the loop. Returns `false` when the loop has exited (the message
    /// is then dropped).
    pub(crate) fn send(&self, msg: Msg) -> bool {
        if self.tx.send(msg).is_err() {
            return false;
        }
        let _ = self.waker.wake();
        true
    }

    /// The loop's `Waker`, for the shutdown control.
    pub(crate) fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
    }
}

/// What the transaction log line needs, kept from the end of data to the commit.
#[derive(Debug, Clone)]
pub(crate) struct TxnLog {
    pub from: String,
    pub size: u64,
    pub nrcpt: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_slot_is_another_connection() {
        let old = ConnKey { slot: 3, serial: 7 };
        let new = ConnKey { slot: 3, serial: 9 };
        assert_ne!(old, new);
        assert_eq!(old.id(), new.id());
        assert_eq!(Token::from(new.id()), Token(3));
    }

    #[test]
    fn a_sender_wakes_its_loop_until_the_loop_is_gone() {
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(0)).unwrap());
        let (tx, rx) = crossbeam_channel::unbounded();
        let sender = LoopSender::new(tx, waker);
        let key = ConnKey { slot: 1, serial: 1 };
        let msg = || Msg::Verdict {
            key,
            ticket: 5,
            verdict: Verdict::Continue,
        };
        assert!(sender.send(msg()));
        let mut events = mio::Events::with_capacity(4);
        let mut poll = poll;
        poll.poll(&mut events, Some(std::time::Duration::from_secs(5)))
            .unwrap();
        assert!(events.iter().any(|e| e.token() == Token(0)), "woken");
        match rx.try_recv() {
            Ok(Msg::Verdict { key: k, ticket, .. }) => assert_eq!((k, ticket), (key, 5)),
            _ => panic!("the verdict arrives"),
        }
        drop(rx);
        assert!(!sender.send(msg()));
    }

    #[test]
    fn only_nothing_is_unparked() {
        assert!(!Waiting::Nothing.is_parked());
        assert!(Waiting::Queue.is_parked());
    }
}
