//! The message path: the spool writer opened at `MessageStart`, fed from `poll_body`, and
//! the end of data — a spool commit (the default queue hook) whose callback wakes the loop,
//! or, when plugins registered message or queue hooks, a job on the hook pool that runs
//! them and commits to the spool if no queue hook took the message.

use std::io::Read;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hooks_api::{
    ChannelPending, Ctx, Headers, Message, Notes, Queue, Registry, SessionInfo, Verdict,
};
use smtp_proto::address::{ForwardPath, Path};

use super::common::{ConnKey, LoopSender, Msg, TxnLog, Waiting};
use super::conn::Conn;
use super::event_loop::Loop;
use super::hooks::decision;
use crate::factory::{Decision, Envelope, MessageStats};
use crate::metrics::{Outcome, ServerMetrics};
use crate::spool::{self, QueueId, Spool, SpoolError, SpoolWriter, REPLY_LOCAL_ERROR};

/// How much of the message the header parser of message hooks sees.
const HEADER_PREFIX: u64 = 64 * 1024;
/// How long a pending message or queue hook may take before it counts as failed.
const POOL_PENDING_LIMIT: Duration = Duration::from_secs(600);

fn temp_fail(e: &SpoolError) -> Decision {
    Decision::TempFail(e.reply().into())
}

/// The spool's envelope for the factory's, received at `received` (seconds since the Unix
/// epoch), as the server stores it at `MessageStart` before adding the TLS parameters and
/// the hooks' notes. Public for drivers that play the server's part in tests (the
/// in-memory pair), so that they store exactly what the server would.
pub fn spool_envelope(env: &Envelope, received: u64) -> spool::Envelope {
    spool::Envelope {
        sender: match &env.sender {
            Path::Null => String::new(),
            Path::Mailbox(m) => m.to_string(),
        },
        mail_params: env.mail_params.to_string().trim_start().to_owned(),
        recipients: env
            .recipients
            .iter()
            .map(|r| spool::Recipient {
                address: match &r.path {
                    ForwardPath::Postmaster => "Postmaster".to_owned(),
                    ForwardPath::Mailbox(m) => m.to_string(),
                },
                params: r.params.to_string().trim_start().to_owned(),
            })
            .collect(),
        peer: env.peer.to_string(),
        helo: env.helo.clone(),
        received,
        tls: None,
        auth: env.auth.clone(),
        notes: Vec::new(),
    }
}

/// The transaction's notes as the spool stores them: `key=value`, sorted by key. They are
/// the notes set by hooks up to the start of DATA (connect, HELO, MAIL, RCPT, DATA hooks);
/// message and queue hooks run later and hand the message on with their own notes.
pub(crate) fn spool_notes(notes: &Notes) -> Vec<String> {
    let mut out: Vec<String> = notes.iter().map(|(k, v)| format!("{k}={v}")).collect();
    out.sort_unstable();
    out
}

impl Loop {
    /// `MessageStart`: opens the spool file and writes our `Received:` header. On the loop
    /// thread (a file creation: page cache, no fsync). A failure is remembered and answered
    /// at the end of data; the body is then read and dropped.
    pub(crate) fn message_start(&mut self, slot: usize, envelope: &Envelope, received: &str) {
        self.drop_writer(slot);
        let conn = &mut self.conns[slot];
        // This message used its id up (in `Received:`): the next one gets a fresh one.
        conn.factory.set_queue_id(QueueId::generate().to_string());
        if self.shared.discard && self.shared.pool.is_none() {
            // `[spool] discard` and no hook reads the message: nothing to write.
            return;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut env = spool_envelope(envelope, now);
        env.notes = spool_notes(&conn.txn_notes);
        // `protocol cipher`, and ` sni=NAME` when the client named the server it wanted.
        env.tls = conn.factory.tls().map(|t| {
            let sni = conn.tls_sni();
            match sni {
                Some(name) => format!("{} {} sni={name}", t.protocol, t.cipher),
                None => format!("{} {}", t.protocol, t.cipher),
            }
        });
        // No I/O here: a stocked tmp file, or one a spool thread creates when it first
        // writes the message out. Under the id the `Received:` header names, when it is one
        // of ours; the next message gets a fresh one.
        let chosen = envelope.queue_id.as_deref().and_then(|id| id.parse().ok());
        let writer = match chosen {
            Some(id) => self
                .shared
                .spool
                .begin_deferred_as(id, &env, received.as_bytes()),
            None => self.shared.spool.begin_deferred(&env, received.as_bytes()),
        };

        if let Err(e) = &writer {
            log::error!("{}: spool: {e}", conn.client());
        }
        if let Some(old) = conn.begin_message(writer) {
            // (None: the earlier message's writer went with `drop_writer` above.)
            self.shared.spool.discard_behind(old);
        }
    }

    /// `MessageComplete`: commit (or hand to the hook pool), park until the answer.
    pub(crate) fn message_complete(
        &mut self,
        slot: usize,
        envelope: Envelope,
        stats: MessageStats,
        now: std::time::Instant,
    ) {
        let shared = self.shared.clone();
        let conn = &mut self.conns[slot];
        conn.set_txn(Some(TxnLog {
            from: envelope.sender.to_string(),
            size: stats.data.size,
            nrcpt: envelope.recipients.len(),
        }));
        if shared.discard && shared.pool.is_none() {
            // `[spool] discard`: the default queue hook drops the message.
            let id = envelope
                .queue_id
                .clone()
                .unwrap_or_else(|| QueueId::generate().to_string());
            log::debug!("{id}: discarded (client {})", conn.client());
            let _ = conn.factory.handle_decision(Decision::Queued(id), now);
            shared.metrics.message(Outcome::Accepted);
            conn.set_txn(None);
            conn.txn_notes.clear();
            return;
        }
        let writer = match conn.finish_message() {
            Ok(w) => w,
            Err(err) => {
                let d = err.map_or(Decision::TempFail(REPLY_LOCAL_ERROR.into()), |e| {
                    temp_fail(&e)
                });
                let _ = conn.factory.handle_decision(d, now);
                shared.metrics.message(Outcome::Rejected);
                conn.set_txn(None);
                conn.txn_notes.clear();
                return;
            }
        };
        conn.waiting = Waiting::Queue;
        let metrics = shared.metrics.clone();
        let (sender, key) = (self.sender.clone(), conn.key());
        match &shared.pool {
            Some(pool) => {
                let session = conn.session.clone();
                let conn_notes = std::mem::take(&mut conn.conn_notes);
                let txn_notes = std::mem::take(&mut conn.txn_notes);
                let env = envelope.transaction;
                let registry = shared.registry.clone();
                let spool = shared.spool.clone();
                let discard = shared.discard;
                let guard = QueuedAnswer {
                    sender,
                    key,
                    sent: false,
                };
                let job = Box::new(move || {
                    let mut guard = guard;
                    let (d, notes) = run_message_hooks(
                        &registry, &spool, &metrics, discard, writer, &env, session, conn_notes,
                        txn_notes,
                    );
                    guard.send(d, Some(notes));
                });
                if pool.run(job).is_err() {
                    // The guard inside the refused job answered 451 when it was dropped.
                    log::error!("hook pool is gone");
                }
            }
            None => {
                let reply = QueuedAnswer {
                    sender,
                    key,
                    sent: false,
                };
                let started = Instant::now();
                shared.spool.commit(
                    writer,
                    Box::new(move |result| {
                        metrics.commit_seconds.observe(started.elapsed());
                        let mut reply = reply;
                        let d = match result {
                            Ok(id) => Decision::Queued(id.to_string()),
                            Err(e) => {
                                log::error!("spool commit failed: {e}");
                                temp_fail(&e)
                            }
                        };
                        reply.send(d, None);
                    }),
                );
            }
        }
    }

    /// The end-of-data answer arrived (spool callback or hook pool).
    pub(crate) fn on_queued(
        &mut self,
        slot: usize,
        d: Decision,
        notes: Option<(Notes, Notes)>,
        now: std::time::Instant,
    ) {
        let conn: &mut Conn = &mut self.conns[slot];
        if !matches!(conn.waiting, Waiting::Queue) {
            return;
        }
        conn.waiting = Waiting::Nothing;
        if let Some((c, _)) = notes {
            conn.conn_notes = c;
        }
        conn.txn_notes.clear();
        self.shared.metrics.message(match &d {
            Decision::Queued(_) | Decision::Accept | Decision::Continue => Outcome::Accepted,
            Decision::Reply(r) if r.code() < 400 => Outcome::Accepted,
            _ => Outcome::Rejected,
        });
        if let (Decision::Queued(id), Some(t)) = (&d, conn.take_txn()) {
            log::info!(
                "{id}: from={}, size={}, nrcpt={} (queued, client {})",
                t.from,
                t.size,
                t.nrcpt,
                conn.client()
            );
        }
        if let Err(e) = conn.factory.handle_decision(d, now) {
            log::error!("{}: {e}", conn.client());
        }
    }
}

/// Sends the end-of-data answer to the connection's loop exactly once; dropped unsent (a
/// panic, a refused job), it answers `451 4.3.0`.
struct QueuedAnswer {
    sender: LoopSender,
    key: ConnKey,
    sent: bool,
}

impl QueuedAnswer {
    fn send(&mut self, decision: Decision, notes: Option<(Notes, Notes)>) {
        self.sent = true;
        self.sender.send(Msg::Queued {
            key: self.key,
            decision,
            notes,
        });
    }
}

impl Drop for QueuedAnswer {
    fn drop(&mut self) {
        if !self.sent {
            self.send(Decision::TempFail(REPLY_LOCAL_ERROR.into()), None);
        }
    }
}

/// Waits for a pending hook on a pool thread (which may block).
fn settle_pending(source: &ChannelPending) -> Verdict {
    match source.wait(POOL_PENDING_LIMIT) {
        Some((_, v)) => v,
        None => Verdict::local_error(),
    }
}

/// Runs the message chain, then the queue chain, then (if no queue hook took the message)
/// the spool commit (or, with `[spool] discard`, the drop). On a hook-pool thread.
#[allow(clippy::too_many_arguments)]
fn run_message_hooks(
    registry: &Registry,
    spool: &Spool,
    metrics: &ServerMetrics,
    discard: bool,
    mut writer: SpoolWriter,
    env: &hooks_api::Envelope,
    mut session: SessionInfo,
    mut conn_notes: Notes,
    mut txn_notes: Notes,
) -> (Decision, (Notes, Notes)) {
    let mut reader = match writer.message_reader() {
        Ok(r) => r,
        Err(e) => return (temp_fail(&e), (conn_notes, txn_notes)),
    };
    let mut head = Vec::new();
    if let Err(e) = (&mut reader).take(HEADER_PREFIX).read_to_end(&mut head) {
        log::error!("reading the message back from the spool: {e}");
        return (
            Decision::TempFail(REPLY_LOCAL_ERROR.into()),
            (conn_notes, txn_notes),
        );
    }
    let headers = Headers::parse(&head);
    let source = ChannelPending::new();
    let verdict = {
        let message = Message::new(env, &headers, &mut reader);
        let mut ctx =
            Ctx::new(&mut session, &mut conn_notes, &mut txn_notes, message).with_pending(&source);
        let started = Instant::now();
        let mut v = registry.dispatch_message(&mut ctx);
        while let Verdict::Pending(p) = v {
            let done = settle_pending(&source);
            v = registry.resume_message(&mut ctx, p, done);
        }
        metrics.hook_time(hooks_api::HookPoint::Message, started.elapsed());
        v
    };
    if !matches!(verdict, Verdict::Continue | Verdict::Accept(_)) {
        return (decision(verdict), (conn_notes, txn_notes));
    }
    let (verdict, queue_id) = {
        let message = Message::new(env, &headers, &mut reader);
        let mut ctx = Ctx::new(
            &mut session,
            &mut conn_notes,
            &mut txn_notes,
            Queue::new(message),
        )
        .with_pending(&source);
        let started = Instant::now();
        let mut v = registry.dispatch_queue(&mut ctx);
        while let Verdict::Pending(p) = v {
            let done = settle_pending(&source);
            v = registry.resume_queue(&mut ctx, p, done);
        }
        metrics.hook_time(hooks_api::HookPoint::Queue, started.elapsed());
        let id = ctx.queue_id().map(str::to_owned);
        (v, id)
    };
    drop(reader);
    let d = match (verdict, queue_id) {
        // A queue hook took the message: the spool's copy is not needed.
        (Verdict::Accept(_), Some(id)) => {
            writer.abort();
            Decision::Queued(id)
        }
        // No queue hook took it and `[spool] discard`: drop it.
        (Verdict::Continue, _) if discard => {
            writer.abort();
            Decision::Queued(QueueId::generate().to_string())
        }
        // No queue hook took it: the durable spool, the default queue hook, does.
        (Verdict::Continue, _) => {
            let started = Instant::now();
            let committed = spool.commit_blocking(writer);
            metrics.commit_seconds.observe(started.elapsed());
            match committed {
                Ok(id) => Decision::Queued(id.to_string()),
                Err(e) => {
                    log::error!("spool commit failed: {e}");
                    temp_fail(&e)
                }
            }
        }
        (Verdict::Accept(_), None) => Decision::TempFail(REPLY_LOCAL_ERROR.into()),
        (other, _) => decision(other),
    };
    (d, (conn_notes, txn_notes))
}
