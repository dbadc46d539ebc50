//! [`Factory::handle_decision`] and [`Factory::handle_tls_established`]: resuming after the
//! driver has answered.

use std::time::Instant;

use smtp_proto::reply::Reply;
use smtp_proto::status::EnhancedStatus;

use super::replies as r;
use super::{CloseReason, Decision, Event, Factory, FactoryError, Pending, Phase, TlsInfo};

/// A decision reduced to what the factory does with it.
enum Outcome {
    /// The factory's default for the event.
    Default,
    /// Accept, optionally with this reply instead of the default.
    Accept(Option<Reply>),
    /// Accept with a queue id.
    Queued(String),
    /// Refuse with this reply.
    Refuse(Reply),
    /// Send this reply and close.
    Disconnect(Reply),
}

impl From<Decision> for Outcome {
    fn from(d: Decision) -> Outcome {
        match d {
            Decision::Continue => Outcome::Default,
            Decision::Accept => Outcome::Accept(None),
            Decision::Queued(id) => Outcome::Queued(id),
            Decision::Reject(reply) | Decision::TempFail(reply) => Outcome::Refuse(reply),
            Decision::Disconnect(reply) => Outcome::Disconnect(reply),
            Decision::Reply(reply) if reply.code() < 400 => Outcome::Accept(Some(reply)),
            Decision::Reply(reply) => Outcome::Refuse(reply),
        }
    }
}

impl Factory {
    /// Answers the event awaiting a decision (see [`Decision`] for what each one means for
    /// each event) at `now`, which restarts the idle timer. Then call
    /// [`handle_input`](Factory::handle_input) with any input you held back.
    pub fn handle_decision(
        &mut self,
        decision: Decision,
        now: Instant,
    ) -> Result<(), FactoryError> {
        let pending = self.pending.take().ok_or(FactoryError::NoPendingDecision)?;
        self.clock = now;
        self.deadline = Some(now + self.config.command_timeout);
        let outcome = match Outcome::from(decision) {
            Outcome::Disconnect(reply) => {
                self.out.push_with(|o| reply.write_to(o));
                self.close(CloseReason::Rejected);
                return Ok(());
            }
            other => other,
        };
        match pending {
            Pending::Connect => match outcome {
                Outcome::Refuse(reply) if reply.is_transient() => {
                    self.out.push_with(|o| reply.write_to(o));
                    self.close(CloseReason::Rejected);
                }
                Outcome::Refuse(reply) => {
                    // RFC 5321 §3.1: a 554 greeting, then only QUIT is served.
                    self.session.refused = true;
                    self.send_banner(Some(reply), now);
                }
                Outcome::Accept(reply) => self.send_banner(reply, now),
                Outcome::Default | Outcome::Queued(_) | Outcome::Disconnect(_) => {
                    self.send_banner(None, now)
                }
            },
            Pending::Helo { name, extended } => match outcome {
                Outcome::Refuse(reply) => {
                    self.send_reply(&reply);
                    self.end_group();
                }
                Outcome::Accept(reply) => self.do_helo(name, extended, reply),
                _ => self.do_helo(name, extended, None),
            },
            Pending::Auth { authcid } => match outcome {
                Outcome::Accept(reply) => {
                    self.session.auth = Some(authcid);
                    self.send_reply(&reply.unwrap_or_else(|| r::AUTH_OK.into()));
                }
                Outcome::Queued(_) => {
                    self.session.auth = Some(authcid);
                    self.send(&r::AUTH_OK);
                }
                Outcome::Refuse(reply) => self.send_reply(&reply),
                // Nobody vouched for the credentials: fail closed.
                Outcome::Default | Outcome::Disconnect(_) => self.send(&r::AUTH_FAILED),
            },
            Pending::Mail { from, params } => match outcome {
                Outcome::Refuse(reply) => self.send_reply(&reply),
                Outcome::Accept(reply) => self.accept_mail(from, params, reply),
                _ => self.accept_mail(from, params, None),
            },
            Pending::Rcpt { to, params } => match outcome {
                Outcome::Refuse(reply) => self.send_reply(&reply),
                Outcome::Accept(reply) => self.accept_rcpt(to, params, reply),
                _ => self.accept_rcpt(to, params, None),
            },
            Pending::DataStart => match outcome {
                Outcome::Refuse(reply) => self.send_reply(&reply),
                Outcome::Queued(id) => self.start_data(Some(id), None, now),
                Outcome::Accept(reply) => {
                    let reply = reply.filter(|r| r.code() == 354);
                    self.start_data(None, reply, now);
                }
                _ => self.start_data(None, None, now),
            },
            Pending::BdatStart { size, last } => match outcome {
                Outcome::Refuse(reply) => self.refuse_chunk(size, last, reply, now),
                Outcome::Queued(id) => self.accept_chunk(size, last, Some(id), now),
                _ => self.accept_chunk(size, last, None, now),
            },
            Pending::MessageComplete => match outcome {
                Outcome::Queued(id) => {
                    // The id is the driver's, but keep the reply one line whatever it holds.
                    let id: String = id.chars().filter(|c| !c.is_control()).collect();
                    let text = format!("Ok: queued as {id}");
                    let reply = Reply::new(250, Some(EnhancedStatus::new(2, 0, 0)), &text);
                    self.send_reply(&reply);
                }
                Outcome::Accept(Some(reply)) | Outcome::Refuse(reply) => self.send_reply(&reply),
                _ => self.send(&r::OK),
            },
            Pending::Extension | Pending::Unknown => match outcome {
                Outcome::Accept(Some(reply)) | Outcome::Refuse(reply) => self.send_reply(&reply),
                Outcome::Accept(None) | Outcome::Queued(_) => self.send(&r::OK),
                _ if matches!(pending, Pending::Extension) => self.send(&r::NOT_IMPLEMENTED),
                _ => self.send(&r::UNRECOGNIZED),
            },
        }
        self.after_reply();
        Ok(())
    }

    /// After the reply to a decided command: without EHLO, or after a session reset, the
    /// client must wait for it.
    fn after_reply(&mut self) {
        if matches!(self.phase, Phase::Closed | Phase::Chunk(_)) || self.pending.is_some() {
            return;
        }
        if std::mem::take(&mut self.group_after_reply) || !self.session.esmtp {
            self.end_group();
        }
    }

    /// The pending decision did not come in time: answer it as
    /// [`FactoryConfig::decision_timeout`](super::FactoryConfig::decision_timeout) says.
    pub(super) fn decision_timed_out(&mut self, now: Instant) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        self.emit(Event::DecisionTimeout {
            kind: pending.kind(),
        });
        self.deadline = Some(now + self.config.command_timeout);
        match pending {
            Pending::Connect | Pending::Helo { .. } => {
                let text = "Error: timeout waiting for a policy decision";
                let reply = self.host_reply(421, EnhancedStatus::new(4, 3, 0), text);
                self.out.push_with(|o| reply.write_to(o));
                self.close(CloseReason::DecisionTimeout);
            }
            Pending::Auth { .. } => self.send(&r::AUTH_TIMEOUT),
            Pending::BdatStart { size, last } => {
                self.refuse_chunk(size, last, r::DECISION_TIMEOUT.into(), now)
            }
            _ => self.send(&r::DECISION_TIMEOUT),
        }
        self.after_reply();
    }

    /// The TLS handshake after STARTTLS succeeded at `now`: HELO/EHLO, transaction and AUTH
    /// state are forgotten (RFC 3207 §4.2); the client must send EHLO again, and STARTTLS is
    /// no longer offered.
    pub fn handle_tls_established(
        &mut self,
        info: TlsInfo,
        now: Instant,
    ) -> Result<(), FactoryError> {
        if !matches!(self.phase, Phase::Tls) {
            return Err(FactoryError::NoTlsHandshake);
        }
        self.session.tls = Some(info);
        self.session.helo = None;
        self.session.esmtp = false;
        self.session.auth = None;
        self.construct = None;
        self.line.clear();
        self.phase = Phase::Command;
        self.sync_until = None;
        self.deadline = Some(now + self.config.command_timeout);
        Ok(())
    }
}
