//! The transaction states: MAIL, RCPT, DATA, the body, RSET — with or without PIPELINING.
//!
//! Without PIPELINING each command waits for its reply; a 4xx to MAIL or RCPT is sent again
//! up to [`Policy::command_retries`](crate::Policy::command_retries) times. With PIPELINING
//! (offered, allowed by the policy, and no custom state inside the envelope) the `mail`
//! state sends MAIL, every RCPT and DATA in one flight and the replies are matched in order.
//! DATA goes ahead only when MAIL and at least one RCPT were accepted; a `503` anywhere, or
//! an abandoned transaction, is followed by RSET.
//!
//! With [`Policy::chunking`](crate::Policy::chunking) and CHUNKING offered, the `data` state
//! sends nothing and the body goes as BDAT chunks ([`chunking`](super::chunking)).

use smtp_proto::{Command, Keyword, Reply};

use super::prepare::{prepare, Prepared};
use super::{Await, Flow, Session};
use crate::error::Stage;
use crate::message::{local_reply, Event, Message, MessageId, OutcomeKind, RecipientOutcome};
use crate::registry::Builtin;

/// The message being sent.
#[derive(Debug)]
pub(crate) struct Txn {
    id: MessageId,
    message: Message,
    outcomes: Vec<Option<RecipientOutcome>>,
    pub(super) prepared: Option<Prepared>,
    /// Index into `prepared.rcpts` of the next RCPT to send (without pipelining).
    next_rcpt: usize,
    /// Recipients (message indices) whose RCPT was accepted.
    pub(super) accepted: Vec<usize>,
    /// MAIL was accepted (or the server's state is unknown): RSET before the next MAIL.
    pub(crate) open: bool,
    /// Every recipient has its outcome and the events are out.
    pub(crate) finished: bool,
    pub(super) pipelined: bool,
    attempts: u8,
    /// The body goes as BDAT chunks (CHUNKING offered and enabled).
    pub(super) chunked: bool,
    /// How many body bytes went out in BDAT chunks so far.
    pub(super) bdat_sent: usize,
    /// `BDAT <n> LAST` went out.
    pub(super) bdat_last_sent: bool,
}

impl Txn {
    fn new(id: MessageId, message: Message) -> Txn {
        Txn {
            id,
            outcomes: vec![None; message.recipients.len()],
            message,
            prepared: None,
            next_rcpt: 0,
            accepted: Vec::new(),
            open: false,
            finished: false,
            pipelined: false,
            attempts: 0,
            chunked: false,
            bdat_sent: 0,
            bdat_last_sent: false,
        }
    }

    /// Records recipient `i`'s outcome, unless it has one: `reply`, the server's to the
    /// command of stage `by`, or a local decision (`None`).
    fn set(&mut self, i: usize, reply: &Reply, by: Option<Stage>) {
        if let (Some(slot @ None), Some(rcpt)) =
            (self.outcomes.get_mut(i), self.message.recipients.get(i))
        {
            let outcome = RecipientOutcome::from_reply(rcpt, reply.clone(), by.is_none());
            *slot = Some(match by {
                Some(stage) => outcome.with_stage(stage),
                None => outcome,
            });
        }
    }
}

impl Session {
    /// The state each transaction starts at: the successor of `auth`.
    pub(super) fn txn_start(&self) -> crate::StateId {
        self.machine
            .successor(Builtin::Auth.id())
            .unwrap_or(Builtin::Mail.id())
    }

    /// On entering the transaction's first state (or `mail`) without a message: takes the
    /// next one from the queue, or parks, or goes to QUIT when closing.
    pub(super) fn transaction_gate(&mut self, id: crate::StateId) -> Option<Flow> {
        if id != self.txn_start() && id != Builtin::Mail.id() {
            return None;
        }
        match &self.txn {
            Some(t) if !t.finished => return None,
            Some(t) if t.open => return Some(Flow::Goto(Builtin::Rset.id())),
            _ => self.txn = None,
        }
        if self.ending.is_some() || (self.closing && self.queue.is_empty()) {
            return Some(Flow::Goto(Builtin::Quit.id()));
        }
        let Some((mid, message)) = self.queue.pop_front() else {
            return Some(Flow::Park(id));
        };
        self.shared.message_args = message.args.clone();
        self.txn = Some(Txn::new(mid, message));
        None
    }

    pub(super) fn enter_txn(&mut self, b: Builtin) -> Flow {
        let rset = Flow::Goto(Builtin::Rset.id());
        let Some(txn) = self.txn.as_mut() else {
            return if b == Builtin::Rset {
                Flow::Next
            } else {
                Flow::Goto(self.txn_start())
            };
        };
        if txn.finished && b != Builtin::Rset {
            return rset;
        }
        match b {
            Builtin::Mail => self.enter_mail(),
            Builtin::Rcpt if txn.pipelined => Flow::Next,
            Builtin::Rcpt => {
                let line = txn
                    .prepared
                    .as_ref()
                    .and_then(|p| p.rcpts.get(txn.next_rcpt))
                    .map(|(i, line)| (*i, line.clone()));
                match line {
                    Some((i, line)) => {
                        self.send(&line, Await::RcptReply(i));
                        Flow::Wait
                    }
                    None => self.after_last_rcpt(),
                }
            }
            Builtin::Data if txn.pipelined || txn.chunked => Flow::Next,
            Builtin::Data => {
                self.send(&Command::Data.to_bytes(), Await::DataReply);
                Flow::Wait
            }
            Builtin::Message if txn.chunked => {
                self.send_chunk();
                Flow::Wait
            }
            Builtin::Message => {
                let body = txn.prepared.as_mut().map(|p| std::mem::take(&mut p.body));
                self.send_raw(&body.unwrap_or_else(|| b".\r\n".to_vec()));
                self.expect.push_back(Await::FinalReply);
                Flow::Wait
            }
            _ => self.enter_rset(),
        }
    }

    fn enter_mail(&mut self) -> Flow {
        let rset = Flow::Goto(Builtin::Rset.id());
        let chunked = self.policy.chunking && self.shared.caps.has(Keyword::Chunking);
        let Some(txn) = self.txn.as_mut() else {
            return rset;
        };
        let prepared = prepare(
            &txn.message,
            &self.shared.caps,
            &self.shared.session_args,
            &self.shared.message_args,
            self.policy.limits,
            chunked,
        );
        let prepared = match prepared {
            Ok(p) => p,
            Err(reply) => {
                log::info!(
                    "client: message {} refused before sending: {}",
                    txn.id.0,
                    reply.text()
                );
                self.fail_message(&reply, None);
                return rset;
            }
        };
        for (i, reply) in &prepared.refused {
            txn.set(*i, reply, None);
        }
        if prepared.rcpts.is_empty() {
            self.finish_message();
            return rset;
        }
        txn.chunked = chunked;
        txn.pipelined = self.policy.pipelining
            && self.shared.caps.has(Keyword::Pipelining)
            && !self.machine.customs_in_envelope();
        let mail = prepared.mail.clone();
        let flight: Vec<(usize, Vec<u8>)> = if txn.pipelined {
            prepared.rcpts.clone()
        } else {
            Vec::new()
        };
        let pipelined = txn.pipelined;
        txn.prepared = Some(prepared);
        self.send(&mail, Await::MailReply);
        for (i, line) in flight {
            self.send(&line, Await::RcptReply(i));
        }
        if pipelined && chunked {
            // RFC 3030 §4.2: BDAT may be pipelined; a server discards the chunks of a
            // transaction without recipients.
            for _ in 0..super::chunking::PIPELINED_CHUNKS {
                if !self.send_chunk() {
                    break;
                }
            }
        } else if pipelined {
            self.send(&Command::Data.to_bytes(), Await::DataReply);
        }
        Flow::Wait
    }

    fn enter_rset(&mut self) -> Flow {
        let Some(txn) = self.txn.as_ref() else {
            return Flow::Next;
        };
        if !txn.finished {
            self.fail_message(&local_reply(451, (4, 3, 0), "transaction abandoned"), None);
        }
        if !self.txn.as_ref().is_some_and(|t| t.open) {
            self.txn = None;
            return Flow::Next;
        }
        if self.resets >= self.policy.max_resets {
            self.txn = None;
            return self.refuse(crate::Error::Refused(local_reply(
                451,
                (4, 3, 0),
                "session reset limit reached",
            )));
        }
        self.resets += 1;
        self.send(&Command::Rset.to_bytes(), Await::RsetReply);
        Flow::Wait
    }

    pub(super) fn on_txn_reply(&mut self, awaiting: Await, reply: Reply) -> Flow {
        let more_due = !self.expect.is_empty();
        let rset = Flow::Goto(Builtin::Rset.id());
        if awaiting == Await::RsetReply {
            self.txn = None;
            return if reply.is_positive_completion() {
                Flow::Next
            } else {
                self.refuse(crate::Error::Refused(reply))
            };
        }
        let Some(txn) = self.txn.as_mut() else {
            return if more_due { Flow::Wait } else { rset };
        };
        if reply.code() == 503 {
            txn.open = true;
        }
        let retry =
            !txn.pipelined && reply.is_transient() && txn.attempts < self.policy.command_retries;
        match awaiting {
            Await::MailReply if reply.is_positive_completion() => {
                txn.open = true;
                txn.attempts = 0;
                if more_due {
                    Flow::Wait
                } else {
                    Flow::Next
                }
            }
            Await::MailReply if retry => {
                txn.attempts += 1;
                let line = txn.prepared.as_ref().map(|p| p.mail.clone());
                self.send(&line.unwrap_or_default(), Await::MailReply);
                Flow::Wait
            }
            Await::MailReply => {
                self.fail_message(&reply, Some(Stage::Mail));
                if more_due {
                    Flow::Wait
                } else {
                    rset
                }
            }
            Await::RcptReply(_) if txn.finished => {
                if more_due {
                    Flow::Wait
                } else {
                    rset
                }
            }
            Await::RcptReply(i) => {
                if reply.is_positive_completion() {
                    txn.accepted.push(i);
                } else if retry {
                    txn.attempts += 1;
                    let line = txn
                        .prepared
                        .as_ref()
                        .and_then(|p| p.rcpts.get(txn.next_rcpt))
                        .map(|(_, l)| l.clone());
                    self.send(&line.unwrap_or_default(), Await::RcptReply(i));
                    return Flow::Wait;
                } else if reply.code() == 503 {
                    // Out of sequence: the server lost the transaction. RSET.
                    self.fail_message(&reply, Some(Stage::Rcpt));
                    return if more_due { Flow::Wait } else { rset };
                } else {
                    txn.set(i, &reply, Some(Stage::Rcpt));
                }
                txn.attempts = 0;
                if txn.pipelined {
                    return Flow::Wait;
                }
                txn.next_rcpt += 1;
                let next = txn
                    .prepared
                    .as_ref()
                    .and_then(|p| p.rcpts.get(txn.next_rcpt))
                    .map(|(i, l)| (*i, l.clone()));
                match next {
                    Some((i, line)) => {
                        self.send(&line, Await::RcptReply(i));
                        Flow::Wait
                    }
                    None => self.after_last_rcpt(),
                }
            }
            Await::DataReply => self.on_data_reply(reply),
            Await::DiscardReply => rset,
            Await::BdatReply { last } => self.on_bdat_reply(last, reply, more_due),
            Await::FinalReply => self.on_final_reply(&reply),
            _ => Flow::Next,
        }
    }

    /// The reply to the end of the body (the dot, or `BDAT <n> LAST`) decides every
    /// recipient whose RCPT was accepted.
    pub(super) fn on_final_reply(&mut self, reply: &Reply) -> Flow {
        if let Some(txn) = self.txn.as_mut() {
            let accepted = std::mem::take(&mut txn.accepted);
            for i in accepted {
                txn.set(i, reply, Some(Stage::Final));
            }
            // After a refused BDAT LAST the server may still hold the transaction.
            txn.open = txn.chunked && !reply.is_positive_completion();
        }
        self.finish_message();
        if !reply.is_positive_completion() && self.policy.quit_after_rejected_message {
            log::info!("client: message rejected at end of data; ending the session");
            self.closing = true;
            let not_sent = local_reply(
                451,
                (4, 3, 0),
                "Not attempted: the session ended after a rejected message",
            );
            while let Some((id, message)) = self.queue.pop_front() {
                self.fail_unsent(id, &message, &not_sent);
            }
        }
        Flow::Next
    }

    /// Without pipelining, after the last RCPT reply: DATA if anyone was accepted.
    fn after_last_rcpt(&mut self) -> Flow {
        if self.txn.as_ref().is_some_and(|t| t.accepted.is_empty()) {
            self.finish_message();
            return Flow::Goto(Builtin::Rset.id());
        }
        Flow::Next
    }

    fn on_data_reply(&mut self, reply: Reply) -> Flow {
        let Some(txn) = self.txn.as_mut() else {
            return Flow::Goto(Builtin::Rset.id());
        };
        let go_on = !txn.finished && !txn.accepted.is_empty();
        if reply.code() == 354 && go_on {
            return if txn.pipelined {
                Flow::Goto(Builtin::Message.id())
            } else {
                Flow::Next
            };
        }
        if reply.code() == 354 {
            // DATA was accepted although nobody will get the message: send an empty body
            // to get back in step, then RSET.
            txn.open = true;
            self.finish_message();
            self.send(b".\r\n", Await::DiscardReply);
            return Flow::Wait;
        }
        if go_on {
            self.fail_message(&reply, Some(Stage::DataInit));
        } else {
            self.finish_message();
        }
        Flow::Goto(Builtin::Rset.id())
    }

    /// Gives every undecided recipient of the current message `reply` (the server's to
    /// the command of stage `by`, or a local decision: `None`), then finishes it.
    pub(crate) fn fail_message(&mut self, reply: &Reply, by: Option<Stage>) {
        if let Some(txn) = self.txn.as_mut() {
            for i in 0..txn.outcomes.len() {
                txn.set(i, reply, by);
            }
            txn.accepted.clear();
        }
        self.finish_message();
    }

    /// Emits the current message's outcomes (every recipient must have one; any without
    /// gets a local temporary failure).
    pub(crate) fn finish_message(&mut self) {
        let Some(txn) = self.txn.as_mut() else {
            return;
        };
        if txn.finished {
            return;
        }
        let missing = local_reply(451, (4, 3, 0), "no outcome recorded");
        for i in 0..txn.outcomes.len() {
            txn.set(i, &missing, None);
        }
        txn.finished = true;
        let outcomes: Vec<RecipientOutcome> = txn.outcomes.iter().flatten().cloned().collect();
        log_message(txn.id, &txn.message, &outcomes);
        for outcome in &outcomes {
            self.events.push_back(Event::Recipient {
                message: txn.id,
                outcome: outcome.clone(),
            });
        }
        self.events.push_back(Event::MessageDone {
            message: txn.id,
            outcomes,
        });
    }

    /// Reports a message that never started.
    pub(crate) fn fail_unsent(&mut self, id: MessageId, message: &Message, reply: &Reply) {
        let mut txn = Txn::new(id, message.clone());
        for i in 0..txn.outcomes.len() {
            txn.set(i, reply, None);
        }
        let saved = self.txn.replace(txn);
        self.finish_message();
        self.txn = saved;
    }
}

fn log_message(id: MessageId, message: &Message, outcomes: &[RecipientOutcome]) {
    let count = |k| outcomes.iter().filter(|o| o.kind == k).count();
    let last = outcomes.last().map(|o| o.reply.code()).unwrap_or_default();
    log::info!(
        "client: message {} from=<{}> rcpts={} delivered={} deferred={} bounced={} last={}",
        id.0,
        message.from.escape_debug(),
        outcomes.len(),
        count(OutcomeKind::Delivered),
        count(OutcomeKind::Deferred),
        count(OutcomeKind::Bounced),
        last
    );
}
