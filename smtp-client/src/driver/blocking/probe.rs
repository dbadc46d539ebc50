//! [`Connection::probe_recipient`]: asks the server whether it would take a recipient —
//! `MAIL FROM:<>`, `RCPT TO:<address>`, then `RSET` — without ever sending DATA. Recipient
//! verification (an inbound MX asking the host behind it) uses it.
//!
//! The session itself stays idle meanwhile (its setup — greeting, EHLO, STARTTLS, AUTH — is
//! done, no message is queued): the three commands are written with `smtp-proto`'s
//! serializer and their replies read with its [`ReplyParser`], over the same stream (TLS
//! once STARTTLS is done). The connection can then [`quit`](Connection::quit) or send mail.
//!
//! What it does not do: retry, pipeline, or classify the answer (the caller decides what a
//! 4xx or 5xx means).

use std::io::{ErrorKind, Write};
use std::time::{Duration, Instant};

use smtp_proto::address::{AddressOptions, ForwardPath, Path};
use smtp_proto::reply::ReplyParser;
use smtp_proto::{Command, Keyword, Params, Reply};

use super::Connection;
use crate::error::{Error, Stage};
use crate::session::raw_address_ok;

/// What the server said to a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeAnswer {
    /// The server's reply to `RCPT TO` (MAIL was accepted).
    Rcpt(Reply),
    /// The server refused `MAIL FROM:<>`; no RCPT was sent.
    MailRefused(Reply),
}

impl Connection {
    /// Probes `recipient` (an address without brackets, or `Postmaster`): `MAIL FROM:<>`,
    /// `RCPT TO:<recipient>` when MAIL was accepted, then `RSET`; never DATA. Each reply
    /// must come before `deadline`; a UTF-8 address goes in an SMTPUTF8 transaction. `Err`
    /// when the address does not parse, is UTF-8 and the server does not offer SMTPUTF8,
    /// the session is not idle, or the connection fails or times out before the RCPT
    /// reply; the connection is of no further use then.
    pub fn probe_recipient(
        &mut self,
        recipient: &str,
        deadline: Instant,
    ) -> Result<ProbeAnswer, Error> {
        if !self.session.is_idle() {
            return Err(Error::Misuse("probe_recipient needs an idle session"));
        }
        if !raw_address_ok(recipient) {
            return Err(Error::Misuse("probe_recipient: not an address"));
        }
        // A UTF-8 address is only asked about in an SMTPUTF8 transaction (RFC 6531): a
        // server that does not offer it would refuse it, and that refusal says nothing.
        let smtputf8 = !recipient.is_ascii();
        if smtputf8 && !self.session.capabilities().has(Keyword::SmtpUtf8) {
            return Err(Error::Misuse(
                "probe_recipient: a UTF-8 address needs SMTPUTF8, which the server does not offer",
            ));
        }
        let opts = AddressOptions {
            smtputf8: true,
            ..AddressOptions::default()
        };
        let bracketed = format!("<{recipient}>");
        let to = ForwardPath::parse(bracketed.as_bytes(), &opts)
            .map_err(|_| Error::Misuse("probe_recipient: not an address"))?;
        let mut parser = ReplyParser::new();
        let mut pending = Vec::new();
        let mail = Command::Mail {
            from: Path::Null,
            params: Params {
                smtputf8,
                ..Params::default()
            },
        };
        let reply = self.exchange(&mail, Stage::Mail, deadline, &mut parser, &mut pending)?;
        if !reply.is_positive_completion() {
            // Nothing is open: no RSET needed.
            return Ok(ProbeAnswer::MailRefused(reply));
        }
        let rcpt = Command::Rcpt {
            to,
            params: Params::default(),
        };
        let answer = self.exchange(&rcpt, Stage::Rcpt, deadline, &mut parser, &mut pending)?;
        // The answer is in: a server that fails RSET does not take it back (the connection
        // is then of no further use, which the caller's QUIT finds out).
        if let Err(e) = self.exchange(
            &Command::Rset,
            Stage::Command,
            deadline,
            &mut parser,
            &mut pending,
        ) {
            log::debug!("client: RSET after the probe failed: {e}");
        }
        Ok(ProbeAnswer::Rcpt(answer))
    }

    /// Writes `command` and reads its reply, before `deadline`.
    fn exchange(
        &mut self,
        command: &Command<'_>,
        stage: Stage,
        deadline: Instant,
        parser: &mut ReplyParser,
        pending: &mut Vec<u8>,
    ) -> Result<Reply, Error> {
        let timeout = |after| Error::Timeout { stage, after };
        let left = || {
            deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
        };
        let wait = left().ok_or(timeout(Duration::ZERO))?;
        let line = command.to_bytes();
        let _ = self.stream.set_write_timeout(Some(wait));
        let written = match self.tls.as_mut() {
            Some(tls) => {
                let mut tls = rustls::Stream::new(tls, &mut self.stream);
                tls.write_all(&line).and_then(|()| tls.flush())
            }
            None => self.stream.write_all(&line),
        };
        written.map_err(|e| Error::Io(format!("write: {e}")))?;
        loop {
            if let Some((reply, used)) = parser.parse(pending).map_err(Error::InvalidReply)? {
                pending.drain(..used);
                return Ok(reply);
            }
            let wait = left().ok_or(timeout(wait))?;
            let _ = self.stream.set_read_timeout(Some(wait));
            match self.read() {
                Ok(0) => return Err(Error::PeerClosed),
                Ok(n) => pending.extend_from_slice(&self.buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(timeout(wait))
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Err(Error::PeerClosed),
                Err(e) => return Err(Error::Io(format!("read: {e}"))),
            }
        }
    }
}
