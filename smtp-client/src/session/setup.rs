//! The session's setup and teardown states: banner, EHLO/HELO, STARTTLS, AUTH and QUIT.

use std::borrow::Cow;

use smtp_proto::sasl::{self, CredentialKind, LoginClient, Mechanism};
use smtp_proto::{parse_capabilities, Capabilities, Command, Reply};

use super::{Await, Flow, Session};
use crate::error::Error;
use crate::message::{local_reply, Credentials};
use crate::registry::Builtin;

/// Where an AUTH exchange is.
#[derive(Debug)]
pub(crate) enum AuthStep {
    /// `AUTH PLAIN <ir>` or `AUTH XOAUTH2 <ir>` sent; 334 means the server wants more.
    InitialResponse(Mechanism),
    /// LOGIN, answering challenges.
    Login(Box<LoginClient>),
    /// A cancellation (`*`) or the empty XOAUTH2 answer was sent: the next reply is final.
    Closing,
}

impl Session {
    pub(super) fn enter_setup(&mut self, b: Builtin) -> Flow {
        match b {
            Builtin::Ehlo => {
                let cmd = Command::Ehlo {
                    domain: self.helo_name().clone(),
                };
                self.send(&cmd.to_bytes(), Await::EhloReply);
                Flow::Wait
            }
            Builtin::StartTls => self.enter_starttls(),
            Builtin::Auth => self.enter_auth(),
            Builtin::Quit => {
                if !self.closing && self.ending.is_none() {
                    // More messages may come: back to the start of the transaction.
                    return Flow::Goto(self.txn_start());
                }
                self.send(&Command::Quit.to_bytes(), Await::QuitReply);
                Flow::Wait
            }
            _ => Flow::Next,
        }
    }

    pub(super) fn on_setup_reply(&mut self, awaiting: Await, reply: Reply) -> Flow {
        match awaiting {
            Await::Greeting if reply.code() == 220 => Flow::Next,
            Await::Greeting => self.refuse(Error::Refused(reply)),
            Await::EhloReply if reply.is_positive_completion() => {
                self.shared.caps = parse_capabilities(&reply);
                Flow::Next
            }
            Await::EhloReply if reply.is_permanent() => {
                log::debug!("client: EHLO refused with {}, trying HELO", reply.code());
                let cmd = Command::Helo {
                    domain: self.helo_name().clone(),
                };
                self.send(&cmd.to_bytes(), Await::HeloReply);
                Flow::Wait
            }
            Await::HeloReply if reply.is_positive_completion() => {
                self.shared.caps = Capabilities::new();
                Flow::Next
            }
            Await::EhloReply | Await::HeloReply => self.refuse(Error::Refused(reply)),
            Await::AuthReply => self.on_auth_reply(reply),
            Await::QuitReply => Flow::Done,
            _ => Flow::Next,
        }
    }

    fn enter_auth(&mut self) -> Flow {
        let Some(credentials) = self.credentials.clone() else {
            return Flow::Next;
        };
        let refuse = |text: &str| Error::Refused(local_reply(454, (4, 7, 0), text));
        if !self.shared.tls_active && !self.policy.auth_without_tls {
            return self.refuse(refuse(
                "AUTH without TLS refused by local policy (auth_without_tls is off)",
            ));
        }
        let offered: Vec<Mechanism> = self
            .shared
            .caps
            .auth_mechanisms()
            .iter()
            .filter_map(|m| Mechanism::from_name(m))
            .collect();
        let kind = match credentials {
            Credentials::Password { .. } => CredentialKind::Password,
            Credentials::OAuth2 { .. } => CredentialKind::OAuth2Token,
        };
        let Some(mechanism) = sasl::choose_mechanism(&offered, kind) else {
            return self.refuse(refuse("the server offers no usable AUTH mechanism"));
        };
        let (initial, step) = match (&credentials, &mechanism) {
            (Credentials::Password { user, password }, Mechanism::Plain) => (
                sasl::encode_plain("", user, password.expose()),
                AuthStep::InitialResponse(Mechanism::Plain),
            ),
            (Credentials::Password { user, password }, _) => {
                let mut login = LoginClient::new(user.clone(), password.clone());
                (
                    Ok(login.initial_response()),
                    AuthStep::Login(Box::new(login)),
                )
            }
            (Credentials::OAuth2 { user, token }, _) => (
                sasl::encode_xoauth2(user, token.expose()),
                AuthStep::InitialResponse(Mechanism::XOAuth2),
            ),
        };
        let Ok(initial) = initial else {
            return self.refuse(refuse("the AUTH credentials are not valid for SASL"));
        };
        let cmd = Command::Auth {
            mechanism: Cow::Borrowed(mechanism.as_str()),
            initial_response: Some(Cow::Owned(initial)),
        };
        log::debug!("client: C: AUTH {mechanism} <redacted>");
        self.auth = Some(step);
        self.send(&cmd.to_bytes(), Await::AuthReply);
        Flow::Wait
    }

    fn on_auth_reply(&mut self, reply: Reply) -> Flow {
        if reply.is_positive_completion() {
            self.auth = None;
            return Flow::Next;
        }
        if reply.code() != sasl::CHALLENGE_CODE {
            self.auth = None;
            return self.refuse(Error::Refused(reply));
        }
        let challenge = reply.text();
        let answer = match self.auth.as_mut() {
            Some(AuthStep::Login(login)) => match login.handle_challenge(challenge.as_bytes()) {
                Ok(line) => line,
                Err(_) => {
                    self.auth = Some(AuthStep::Closing);
                    sasl::CANCEL.to_owned()
                }
            },
            Some(AuthStep::Closing) => {
                self.auth = None;
                return self.refuse(Error::Refused(local_reply(
                    454,
                    (4, 7, 0),
                    "the server did not end the AUTH exchange",
                )));
            }
            Some(AuthStep::InitialResponse(Mechanism::XOAuth2)) => {
                // The token was refused; the challenge holds the error. An empty line ends it.
                self.auth = Some(AuthStep::Closing);
                String::new()
            }
            _ => {
                self.auth = Some(AuthStep::Closing);
                sasl::CANCEL.to_owned()
            }
        };
        let mut line = answer.into_bytes();
        line.extend_from_slice(b"\r\n");
        self.send(&line, Await::AuthReply);
        Flow::Wait
    }
}
