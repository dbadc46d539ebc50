//! Command lines: parsing through [`smtp_proto::Command`] and the per-command rules.

use std::borrow::Cow;
use std::time::Instant;

use smtp_proto::address::{ForwardPath, Path};
use smtp_proto::command::{Command, CommandError, ParseOptions};
use smtp_proto::params::{Body, Params};
use smtp_proto::reply::Reply;
use smtp_proto::sasl::AUTH_REQUIRED;

use super::extensions::Builtins;
use super::replies as r;
use super::{
    CloseReason, Construct, Envelope, EnvelopeRecipient, Event, EventKind, Factory, Pending, Phase,
};

impl Factory {
    /// One complete command line (LF included).
    pub(super) fn command_line(&mut self, line: &[u8], now: Instant) {
        self.commands += 1;
        // The whole next command must arrive within the command timeout.
        self.deadline = Some(now + self.config.command_timeout);
        let opts = ParseOptions {
            limits: self.config.limits,
            smtputf8: self
                .construct
                .as_ref()
                .is_some_and(|c| c.env.mail_params.smtputf8),
            leniency: self.config.leniency,
        };
        if super::abuse::is_forbidden(line) {
            return self.forbidden_command();
        }
        match Command::parse(line, &opts) {
            Ok(command) => self.dispatch(command, line, now),
            Err(CommandError::BareLf) => {
                let reply = CommandError::BareLf.reply();
                self.out.push_with(|o| r::write(o, &reply));
                self.close(CloseReason::BareLineEnding);
            }
            Err(_) if super::bdat::is_bdat_line(line) => self.bad_bdat(),
            Err(CommandError::InvalidVerb) => self.send(&r::UNRECOGNIZED),
            Err(e)
                if line
                    .get(..5)
                    .is_some_and(|v| v.eq_ignore_ascii_case(b"RCPT ")) =>
            {
                // A refused RCPT still counts as an attempt: DATA then gets 554, not 503.
                if let Some(c) = &mut self.construct {
                    c.rcpt_attempts += 1;
                }
                self.send(&e.reply());
            }
            Err(CommandError::LineTooLong) => self.send(&r::LINE_TOO_LONG),
            Err(e) => self.send(&e.reply()),
        }
        if !self.session.esmtp && self.pending.is_none() && !matches!(self.phase, Phase::Chunk(_)) {
            // Without EHLO there is no PIPELINING: every command ends a group (BDAT's when
            // its chunk has been read).
            self.end_group();
        }
    }

    /// One parsed command; `line` is the line it was parsed from.
    fn dispatch(&mut self, command: Command<'_>, line: &[u8], now: Instant) {
        if let Command::Bdat { size, last } = command {
            // Every refusal of a BDAT still reads its chunk: `cmd_bdat` checks for itself.
            return self.cmd_bdat(size, last, now);
        }
        if self.session.refused && command != Command::Quit {
            self.send(&r::NO_SERVICE);
            return;
        }
        if self.config.require_tls
            && self.session.tls.is_none()
            && !matches!(
                command,
                Command::Helo { .. }
                    | Command::Ehlo { .. }
                    | Command::StartTls
                    | Command::Quit
                    | Command::Noop { .. }
                    | Command::Rset
            )
        {
            self.send(&r::TLS_REQUIRED);
            return;
        }
        match command {
            Command::Helo { domain } => self.cmd_helo(domain.to_string(), false),
            Command::Ehlo { domain } => self.cmd_helo(domain.to_string(), true),
            Command::Mail { from, params } => self.cmd_mail(from, params),
            Command::Rcpt { to, params } => {
                self.cmd_rcpt(to, params, super::relay::has_source_route(line))
            }
            Command::Data => self.cmd_data(now),
            Command::Bdat { .. } => {}
            Command::Rset => {
                self.reset_transaction();
                self.send(&r::OK);
            }
            Command::Vrfy { .. } => {
                self.send(&r::VRFY);
                self.end_group();
            }
            Command::Expn { .. } => {
                self.send(&r::EXPN);
                self.end_group();
            }
            Command::Help { .. } => self.send(&r::HELP),
            Command::Noop { .. } => {
                self.send(&r::OK);
                self.end_group();
            }
            Command::Quit => {
                self.out.push_with(|o| r::write(o, &r::BYE));
                self.close(CloseReason::Quit);
            }
            Command::StartTls => self.cmd_starttls(now),
            Command::Auth {
                mechanism,
                initial_response,
            } => self.cmd_auth(&mechanism, initial_response.as_deref()),
            Command::Other { verb, args } => self.cmd_other(verb, args),
        }
    }

    fn cmd_helo(&mut self, name: String, extended: bool) {
        if self.config.decisions.wants(EventKind::Helo) {
            let event = Event::Helo {
                name: name.clone(),
                extended,
            };
            self.await_decision(Pending::Helo { name, extended }, event);
        } else {
            self.do_helo(name, extended, None);
        }
    }

    /// Accepts HELO/EHLO: resets any transaction, records the name, replies.
    pub(super) fn do_helo(&mut self, name: String, extended: bool, reply: Option<Reply>) {
        self.reset_transaction();
        // A name reported by a session update (XCLIENT HELO) wins over the proxy's own.
        let name = self.session.helo_override.clone().unwrap_or(name);
        self.session.helo = Some(name);
        self.session.esmtp = extended;
        let reply = match reply {
            Some(reply) => reply,
            None if extended => self.ehlo_reply(),
            None => Reply::new(250, None, &self.config.hostname),
        };
        self.send_reply(&reply);
        self.end_group();
    }

    /// The EHLO reply for this connection right now.
    fn ehlo_reply(&self) -> Reply {
        let tls = self.session.tls.is_some();
        let mechs: Option<Vec<String>> = self.config.auth.as_ref().and_then(|a| {
            (tls || !a.require_tls)
                .then(|| a.mechanisms.iter().map(|m| m.as_str().to_owned()).collect())
        });
        let builtins = Builtins {
            size: self.config.max_message_size,
            smtputf8: self.config.smtputf8,
            starttls: self.config.tls_available && !tls,
            chunking: self.config.chunking,
            auth: mechs.as_deref(),
            dsn: self.config.dsn,
        };
        self.config
            .extensions
            .capabilities_except(&builtins, &self.hidden)
            .to_reply(&self.config.hostname, "")
    }

    fn cmd_mail(&mut self, from: Path<'_>, params: Params<'_>) {
        if self.session.helo.is_none() {
            return self.send(&r::NEED_HELO);
        }
        if self.config.require_auth && self.session.auth.is_none() {
            return self.send(&AUTH_REQUIRED);
        }
        if self.construct.is_some() {
            return self.send(&r::NESTED_MAIL);
        }
        if self.session_used_up() {
            return;
        }
        let unsupported = (params.smtputf8 && !self.config.smtputf8)
            || params.body == Some(Body::BinaryMime)
            || (!self.config.dsn && (params.ret.is_some() || params.envid.is_some()))
            || params
                .unknown
                .iter()
                .any(|u| !self.config.extensions.accepts_mail_param(&u.keyword));
        if unsupported {
            return self.send(&r::UNSUPPORTED_PARAM);
        }
        if params
            .size
            .is_some_and(|n| n > self.config.max_message_size)
        {
            return self.send(&r::SIZE_TOO_BIG);
        }
        if self.storage_low {
            return self.send(&r::NO_STORAGE);
        }
        let (from, params) = (from.into_owned(), params.into_owned());
        if self.config.decisions.wants(EventKind::Mail) {
            let event = Event::Mail {
                from: from.clone(),
                params: params.clone(),
            };
            self.await_decision(Pending::Mail { from, params }, event);
        } else {
            self.accept_mail(from, params, None);
        }
    }

    /// Opens the transaction.
    pub(super) fn accept_mail(
        &mut self,
        sender: Path<'static>,
        mail_params: Params<'static>,
        reply: Option<Reply>,
    ) {
        self.construct = Some(Construct {
            env: Envelope {
                helo: self.session.helo.clone().unwrap_or_default(),
                esmtp: self.is_esmtp(),
                tls: self.session.tls.is_some(),
                auth: self.session.auth.clone(),
                peer: self.peer,
                transaction: hooks_api::Envelope::new(sender, mail_params),
                queue_id: None,
            },
            rcpt_attempts: 0,
            rcpt_excess: 0,
            chunks: None,
        });
        match reply {
            Some(reply) => self.send_reply(&reply),
            None => self.send(&r::MAIL_OK),
        }
    }

    /// RCPT; `source_route` when the client wrote one before the mailbox (the parser drops
    /// it; relay control refuses it from untrusted clients).
    fn cmd_rcpt(&mut self, to: ForwardPath<'_>, params: Params<'_>, source_route: bool) {
        let Some(construct) = &mut self.construct else {
            return self.send(&r::NEED_MAIL);
        };
        construct.rcpt_attempts += 1;
        if construct.chunks.is_some() {
            return self.send(&super::bdat::RCPT_AFTER_BDAT);
        }
        let unsupported = (!self.config.dsn && (params.notify.is_some() || params.orcpt.is_some()))
            || params
                .unknown
                .iter()
                .any(|u| !self.config.extensions.accepts_rcpt_param(&u.keyword));
        if unsupported {
            return self.send(&r::UNSUPPORTED_PARAM);
        }
        if construct.env.recipients.len() >= self.config.max_recipients {
            return self.too_many_recipients();
        }
        if let Some(refusal) = self.relay_refusal(&to, source_route) {
            return self.send_reply(&refusal);
        }
        let (to, params) = (to.into_owned(), params.into_owned());
        if self.config.decisions.wants(EventKind::Rcpt) {
            let event = Event::Rcpt {
                to: to.clone(),
                params: params.clone(),
            };
            self.await_decision(Pending::Rcpt { to, params }, event);
        } else {
            self.accept_rcpt(to, params, None);
        }
    }

    /// Adds a recipient to the open transaction.
    pub(super) fn accept_rcpt(
        &mut self,
        path: ForwardPath<'static>,
        params: Params<'static>,
        reply: Option<Reply>,
    ) {
        if let Some(c) = &mut self.construct {
            c.env.recipients.push(EnvelopeRecipient::new(path, params));
        }
        match reply {
            Some(reply) => self.send_reply(&reply),
            None => self.send(&r::RCPT_OK),
        }
    }

    fn cmd_data(&mut self, now: Instant) {
        let Some(construct) = &self.construct else {
            return self.send(&r::NEED_MAIL);
        };
        if construct.chunks.is_some() {
            return self.send(&super::bdat::DATA_AFTER_BDAT);
        }
        if construct.env.recipients.is_empty() {
            return if construct.rcpt_attempts == 0 {
                self.send(&r::NEED_RCPT)
            } else {
                self.send(&r::NO_VALID_RCPT)
            };
        }
        if self.config.decisions.wants(EventKind::DataStart) {
            self.await_decision(Pending::DataStart, Event::DataStart);
        } else {
            self.start_data(None, None, now);
        }
    }

    fn cmd_starttls(&mut self, now: Instant) {
        if !self.config.tls_available {
            return self.send(&r::TLS_UNAVAILABLE);
        }
        if self.session.tls.is_some() {
            return self.send(&r::TLS_ACTIVE);
        }
        if self.construct.is_some() {
            return self.send(&r::IN_TRANSACTION);
        }
        self.out.push_with(|o| r::write(o, &r::READY_TLS));
        // Whatever the client sent after STARTTLS in plaintext is dropped (CVE-2011-0411):
        // the input loop discards everything in this phase.
        self.phase = Phase::Tls;
        self.line = Vec::new();
        self.deadline = Some(now + self.config.command_timeout);
        self.emit(Event::StartTls);
    }

    fn cmd_other(&mut self, verb: Cow<'_, str>, args: Option<Cow<'_, str>>) {
        let registered = self.config.extensions.find_verb(&verb).is_some();
        if !registered && !self.config.decisions.wants(EventKind::Unknown) {
            return self.send(&r::UNRECOGNIZED);
        }
        let verb = verb.to_ascii_uppercase();
        let args = args.map(Cow::into_owned);
        if registered {
            self.await_decision(Pending::Extension, Event::Extension { verb, args });
        } else {
            self.await_decision(Pending::Unknown, Event::Unknown { verb, args });
        }
    }
}
