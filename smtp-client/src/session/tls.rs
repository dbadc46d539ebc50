//! STARTTLS (RFC 3207): when to ask for it, the `220`, the driver's handshake, and what is
//! forgotten afterwards. See the [session docs](super#starttls) for the driver's part.

use std::time::Instant;

use smtp_proto::{Capabilities, Command, Keyword, Reply};

use super::{Await, Flow, Session};
use crate::error::Error;
use crate::policy::TlsMode;
use crate::registry::Builtin;

impl Session {
    /// `true` once, when the `220` to STARTTLS is in and the driver must run the TLS
    /// handshake now (after handing over every byte it already read). See the
    /// [session docs](crate::session#starttls).
    #[must_use]
    pub fn poll_tls_upgrade(&mut self) -> bool {
        let due = self.tls_upgrade_due && !self.is_done();
        self.tls_upgrade_due = false;
        due
    }

    /// The TLS handshake is done: the session forgets the server's capabilities and sends
    /// EHLO again, now through TLS. Outside an upgrade it ends the session with
    /// [`Error::Misuse`].
    pub fn handle_tls_established(&mut self, now: Instant) {
        self.now = now;
        if self.is_done() {
            return;
        }
        if !self.awaiting_handshake() {
            self.abort(Error::Misuse(
                "handle_tls_established without a TLS upgrade",
            ));
            return;
        }
        self.expect.pop_front();
        self.tls_upgrade_due = false;
        self.shared.tls_active = true;
        self.shared.caps = Capabilities::new();
        log::debug!("client: TLS established, sending EHLO again");
        self.advance(Flow::Goto(Builtin::Ehlo.id()));
    }

    /// The TLS handshake failed (`error` says why, certificate verification included): the
    /// session ends with [`Error::Tls`] and every unfinished recipient is deferred.
    pub fn handle_tls_failed(&mut self, error: impl std::fmt::Display, now: Instant) {
        self.now = now;
        self.abort(Error::Tls(error.to_string()));
    }

    /// `true` once TLS is established on this connection.
    pub fn tls_active(&self) -> bool {
        self.shared.tls_active
    }

    /// The driver runs (or must run) the TLS handshake: no byte may come in plaintext now.
    pub(super) fn awaiting_handshake(&self) -> bool {
        self.expect.front() == Some(&Await::TlsHandshake)
    }

    /// The `starttls` state: STARTTLS when the policy wants TLS, the server offers it and
    /// the driver can run it; otherwise plaintext, or the end of the session when the policy
    /// requires TLS.
    pub(super) fn enter_starttls(&mut self) -> Flow {
        if self.shared.tls_active {
            return Flow::Next;
        }
        let offered = self.shared.caps.has(Keyword::StartTls);
        match (self.policy.tls, offered, self.tls_available) {
            (TlsMode::Disabled, _, _) => Flow::Next,
            (_, true, true) => {
                self.send(&Command::StartTls.to_bytes(), Await::StartTlsReply);
                Flow::Wait
            }
            (TlsMode::Opportunistic, offered, _) => {
                if offered {
                    log::debug!("client: STARTTLS offered; this driver has no TLS, going on");
                }
                Flow::Next
            }
            (TlsMode::Required, false, _) => {
                self.refuse(Error::TlsUnavailable("the server does not offer STARTTLS"))
            }
            (TlsMode::Required, true, false) => {
                self.refuse(Error::TlsUnavailable("this driver cannot negotiate TLS"))
            }
        }
    }

    /// The reply to STARTTLS: `220` hands over to the driver; anything else goes on in
    /// plaintext when TLS is opportunistic (RFC 3207 §4), or ends the session when required.
    pub(super) fn on_starttls_reply(&mut self, reply: Reply) -> Flow {
        if reply.code() == 220 {
            self.expect.push_back(Await::TlsHandshake);
            self.tls_upgrade_due = true;
            return Flow::Wait;
        }
        log::info!(
            "client: STARTTLS refused: {} {}",
            reply.code(),
            reply.text()
        );
        if self.policy.tls == TlsMode::Required {
            return self.refuse(Error::TlsUnavailable("the server refused STARTTLS"));
        }
        Flow::Next
    }
}
