//! AUTH (RFC 4954) through [`smtp_proto::sasl::SaslServer`]: the checks before an exchange,
//! the `334` challenges, and the [`Event::Auth`] decision at the end.

use std::time::Instant;

use smtp_proto::sasl::{
    Mechanism, SaslServer, ServerStep, ALREADY_AUTHENTICATED, BAD_SEQUENCE, ENCRYPTION_REQUIRED,
    UNRECOGNIZED_MECHANISM,
};

use super::replies as r;
use super::{Event, Factory, Pending, Phase};

/// A SASL exchange in progress.
#[derive(Debug)]
pub(super) struct Exchange {
    sasl: SaslServer,
    mechanism: Mechanism,
}

impl Factory {
    pub(super) fn cmd_auth(&mut self, mechanism: &str, initial_response: Option<&str>) {
        let Some(auth) = &self.config.auth else {
            return self.send(&r::AUTH_DISABLED);
        };
        if self.session.helo.is_none() {
            return self.send(&r::NEED_HELO);
        }
        if self.session.auth.is_some() {
            return self.send(&ALREADY_AUTHENTICATED);
        }
        if self.construct.is_some() {
            return self.send(&r::IN_TRANSACTION);
        }
        if auth.require_tls && self.session.tls.is_none() {
            return self.send(&ENCRYPTION_REQUIRED);
        }
        let offered = Mechanism::from_name(mechanism).filter(|m| auth.mechanisms.contains(m));
        let Some(mechanism) = offered else {
            return self.send(&UNRECOGNIZED_MECHANISM);
        };
        let sasl = SaslServer::start_with_limits(
            &mechanism,
            initial_response.map(str::as_bytes),
            &self.config.limits,
        );
        self.auth_step(Box::new(Exchange { sasl, mechanism }));
    }

    /// One client response line during the exchange.
    pub(super) fn auth_line(&mut self, line: &[u8], now: Instant) {
        self.deadline = Some(now + self.config.command_timeout);
        let Phase::Auth(mut exchange) = std::mem::replace(&mut self.phase, Phase::Command) else {
            return;
        };
        exchange.sasl.handle_response(line);
        self.auth_step(exchange);
    }

    /// Sends the next challenge, or finishes the exchange.
    fn auth_step(&mut self, mut exchange: Box<Exchange>) {
        match exchange.sasl.poll_step() {
            Some(ServerStep::Challenge(challenge)) => {
                self.out.push_with(|o| {
                    o.extend_from_slice(b"334 ");
                    o.extend_from_slice(challenge.as_bytes());
                    o.extend_from_slice(b"\r\n");
                });
                self.phase = Phase::Auth(exchange);
            }
            Some(ServerStep::Credentials(credentials)) => {
                self.phase = Phase::Command;
                let authcid = credentials.authcid.clone();
                let event = Event::Auth {
                    mechanism: exchange.mechanism,
                    credentials,
                };
                self.await_decision(Pending::Auth { authcid }, event);
            }
            Some(ServerStep::Failed(e)) => {
                self.phase = Phase::Command;
                self.send(&e.reply());
            }
            None => {
                self.phase = Phase::Command;
                self.send(&BAD_SEQUENCE);
            }
        }
    }
}
