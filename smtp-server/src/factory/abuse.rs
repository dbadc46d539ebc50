//! The abuse limits the factory enforces by itself, on its own clock: forbidden
//! cross-protocol commands (Postfix's `smtpd_forbidden_commands`), the recipient overshoot
//! (`smtpd_recipient_overshoot_limit`), the tarpit past the soft error limit
//! (`smtpd_error_sleep_time`), messages per session, and the greeting pause (postscreen's
//! pregreet test).
//!
//! The tarpit and the greeting pause are deadlines ([`Factory::poll_timeout`]): the factory
//! holds its replies (or its banner) and consumes no input until
//! [`Factory::handle_timeout`] releases them; it never sleeps. What it does not do: count
//! connections or their rate per client (the server's `limits` module does, across loops).

use std::time::Instant;

use smtp_proto::status::{EnhancedStatus, ErrorReply};

use super::replies as r;
use super::{CloseReason, Event, EventKind, Factory, Pending, Phase};

/// `221 2.7.0` to a command from another protocol (HTTP, a header line): then close.
pub const FORBIDDEN: ErrorReply = ErrorReply::new(
    221,
    EnhancedStatus::new(2, 7, 0),
    "Error: I can break rules, too. Goodbye.",
);
/// `521 5.5.1` to a client that talked before the banner (the greeting pause).
pub const PREGREET: ErrorReply = ErrorReply::new(
    521,
    EnhancedStatus::new(5, 5, 1),
    "Error: talking before the greeting, goodbye",
);

/// HTTP verbs that never start an SMTP command.
const HTTP_VERBS: [&[u8]; 5] = [b"GET", b"POST", b"HEAD", b"PUT", b"CONNECT"];

/// Whether a command line comes from another protocol: an HTTP request line (a browser or a
/// proxy abused to talk to port 25), or a header line such as `Subject: ...` (a client
/// that lost track of where DATA starts).
pub(super) fn is_forbidden(line: &[u8]) -> bool {
    let verb_end = line
        .iter()
        .position(|&b| matches!(b, b' ' | b'\r' | b'\n'))
        .unwrap_or(line.len());
    let verb = &line[..verb_end];
    if HTTP_VERBS.iter().any(|v| verb.eq_ignore_ascii_case(v)) {
        return true;
    }

    // A header field: an RFC 5322 field name (printable ASCII but ':'), blanks, then ':'
    // (Postfix's `is_header`).
    let name = line
        .iter()
        .take_while(|&&b| (33..=126).contains(&b) && b != b':')
        .count();
    let colon = line[name..]
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .map(|p| name + p);
    name > 0 && colon.is_some_and(|c| line[c] == b':')
}

impl Factory {
    /// A command from another protocol: `221 2.7.0` and close.
    pub(super) fn forbidden_command(&mut self) {
        self.out.push_with(|o| r::write(o, &FORBIDDEN));
        self.close(CloseReason::ForbiddenCommand);
    }

    /// A RCPT past [`FactoryConfig::max_recipients`](super::FactoryConfig::max_recipients):
    /// `452 4.5.3`, an error only once the excess passes
    /// [`FactoryConfig::recipient_overshoot`](super::FactoryConfig::recipient_overshoot).
    pub(super) fn too_many_recipients(&mut self) {
        let overshoot = self.config.recipient_overshoot;
        let excess = match &mut self.construct {
            Some(c) => {
                c.rcpt_excess = c.rcpt_excess.saturating_add(1);
                c.rcpt_excess
            }
            None => usize::MAX,
        };
        if excess > overshoot {
            self.send(&r::TOO_MANY_RCPTS);
        } else {
            self.out.push_with(|o| r::write(o, &r::TOO_MANY_RCPTS));
        }
    }

    /// Whether this session has sent its
    /// [`FactoryConfig::messages_per_session`](super::FactoryConfig::messages_per_session):
    /// then MAIL gets `421 4.7.0` and the session ends.
    pub(super) fn session_used_up(&mut self) -> bool {
        match self.config.messages_per_session {
            Some(max) if self.messages >= max => {
                let text = "Error: too many messages in this session";
                let reply = self.host_reply(421, EnhancedStatus::new(4, 7, 0), text);
                self.out.push_with(|o| reply.write_to(o));
                self.close(CloseReason::TooManyMessages);
                true
            }
            _ => false,
        }
    }

    /// An error reply was queued: past the soft error limit, hold the replies for
    /// [`FactoryConfig::error_sleep`](super::FactoryConfig::error_sleep).
    pub(super) fn tarpit(&mut self) {
        let sleep = self.config.error_sleep;
        if self.errors > self.config.soft_error_limit && !sleep.is_zero() {
            self.tarpit_until = Some(self.clock + sleep);
        }
    }

    /// Whether replies are held by the tarpit (never once closed: the last replies go out).
    pub(super) fn held(&self) -> bool {
        self.tarpit_until.is_some() && !matches!(self.phase, Phase::Closed)
    }

    /// The tarpit's or the greeting pause's deadline has come: release what it held.
    /// Returns `true` when the timeout was one of these.
    pub(super) fn abuse_timeout(&mut self, now: Instant) -> bool {
        let mut fired = false;
        if self.tarpit_until.is_some_and(|t| now >= t) {
            self.tarpit_until = None;
            fired = true;
        }
        if self.greet_pause && self.deadline.is_some_and(|t| now >= t) {
            self.greet_pause = false;
            self.deadline = None;
            self.greet(now);
            fired = true;
        }
        fired
    }

    /// The greeting: the Connect decision when it is asked for, else the banner.
    pub(super) fn greet(&mut self, now: Instant) {
        if self.config.decisions.wants(EventKind::Connect) {
            let (peer, local) = (self.peer, self.local);
            self.await_decision(Pending::Connect, Event::Connect { peer, local });
        } else {
            self.send_banner(None, now);
        }
    }

    /// Input during the greeting pause: `521 5.5.1` and close.
    pub(super) fn pregreet(&mut self) {
        self.greet_pause = false;
        self.out.push_with(|o| r::write(o, &PREGREET));
        self.close(CloseReason::Pregreet);
    }
}

#[cfg(test)]
mod tests {
    use super::is_forbidden;

    #[test]
    fn forbidden_lines() {
        for line in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"post /x HTTP/1.0\r\n",
            b"CONNECT mx:25 HTTP/1.1\r\n",
            b"HEAD\r\n",
            b"Subject: hello\r\n",
            b"X-Mailer: y\r\n",
            b"From:<a@b>\r\n",
            b"Subject : x\r\n",
        ] {
            assert!(is_forbidden(line), "{line:?}");
        }
        for line in [
            &b"MAIL FROM:<a@b>\r\n"[..],
            b"RCPT TO:<a@b>\r\n",
            b"GETX\r\n",
            b":\r\n",
            b"NOOP a:\r\n",
            b"EHLO x\r\n",
        ] {
            assert!(!is_forbidden(line), "{line:?}");
        }
    }
}
