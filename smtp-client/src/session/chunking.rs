//! BDAT (RFC 3030 CHUNKING): the body in chunks of at most
//! [`Policy::chunk_size`](crate::Policy::chunk_size) bytes, without dot-stuffing, the last one
//! marked `LAST`.
//!
//! Without PIPELINING the `message` state sends one chunk and waits for its `250` before the
//! next. With PIPELINING the first [`PIPELINED_CHUNKS`] chunks follow MAIL and the RCPTs in
//! the first flight, and each accepted chunk lets one more go: a window that bounds both the
//! output held in memory and the replies in flight (a client that wrote a whole large body
//! before reading could deadlock with a server blocked on writing its replies). The reply
//! to `BDAT <n> LAST` decides every accepted recipient; a chunk refused before that fails
//! them with its reply, no further chunk is sent (replies to chunks already in flight are
//! read and dropped), and RSET follows.

use smtp_proto::{Command, Reply};

use super::{Await, Flow, Session};
use crate::registry::Builtin;

/// The most BDAT chunks in flight while pipelining.
pub(crate) const PIPELINED_CHUNKS: usize = 4;

impl Session {
    /// Sends the next BDAT chunk of the current message; `false` when there is none left.
    pub(super) fn send_chunk(&mut self) -> bool {
        let size = self.policy.chunk_size.max(1);
        let Some(txn) = self.txn.as_mut() else {
            return false;
        };
        let Some(body) = txn.prepared.as_ref().map(|p| &p.body) else {
            return false;
        };
        if txn.bdat_last_sent {
            return false;
        }
        let start = txn.bdat_sent.min(body.len());
        let end = start.saturating_add(size).min(body.len());
        let last = end == body.len();
        let mut bytes = Command::Bdat {
            size: (end - start) as u64,
            last,
        }
        .to_bytes();
        bytes.extend_from_slice(&body[start..end]);
        txn.bdat_sent = end;
        txn.bdat_last_sent = last;
        self.send(&bytes, Await::BdatReply { last });
        true
    }

    /// The reply to one BDAT chunk.
    pub(super) fn on_bdat_reply(&mut self, last: bool, reply: Reply, more_due: bool) -> Flow {
        let rset = Flow::Goto(Builtin::Rset.id());
        let Some(txn) = self.txn.as_mut() else {
            return if more_due { Flow::Wait } else { rset };
        };
        if txn.finished {
            // A chunk or the envelope failed already: drop the replies still in flight.
            txn.open = true;
            return if more_due { Flow::Wait } else { rset };
        }
        if last && txn.accepted.is_empty() {
            // Pipelined and no RCPT was accepted: the server dropped the body.
            txn.open = true;
            self.finish_message();
            return rset;
        }
        if last {
            let pipelined = txn.pipelined;
            let flow = self.on_final_reply(&reply);
            if !pipelined {
                return flow;
            }
            // Pipelined: the `message` state was never entered; go on after it.
            return match self.machine.successor(Builtin::Message.id()) {
                Some(next) => Flow::Goto(next),
                None => rset,
            };
        }
        if !reply.is_positive_completion() {
            log::info!(
                "client: BDAT chunk refused: {} {}",
                reply.code(),
                reply.text()
            );
            txn.open = true;
            self.fail_message(&reply, Some(crate::error::Stage::DataBlock));
            return if more_due { Flow::Wait } else { rset };
        }
        self.send_chunk();
        Flow::Wait
    }
}
