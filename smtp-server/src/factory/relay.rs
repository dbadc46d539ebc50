//! Relay control at RCPT: the one place the factory calls
//! [`smtp_relay::route::check_recipient`], for every RCPT, with the client as the session
//! knows it right now (its address after XCLIENT, or a PROXY header when the driver created
//! the factory with the proxied address; authenticated after AUTH or XCLIENT LOGIN).
//!
//! The order at RCPT: syntax and parameters (`501`/`555`), the recipient limit (`452 4.5.3`),
//! then relay control (`554 5.7.1 <address>: Relay access denied`, or `550 5.1.1` for an
//! address of a relay domain missing from the recipients table), then the RCPT hook (where
//! the server's verification hook probes the addresses relay control leaves to it). A
//! refusal of relay control is final: the hook never sees that recipient, so no plugin can
//! open the relay by accident; a recipient relay control accepts may still be refused, or
//! accepted with the plugin's own reply, by the hook.
//!
//! What it does not do: read the recipients file (the server swaps in a new policy through
//! [`RelayControl::replace`] when the file changes), or decide anything about delivery.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use smtp_proto::address::ForwardPath;
use smtp_proto::reply::Reply;
use smtp_relay::route::{check_recipient, Client, Decision, RcptPath, RelayPolicy};

use super::Factory;

/// The relay policy in force, shared by every connection and replaceable while the server
/// runs (a changed recipients file). Cheap to consult: one uncontended read lock and an
/// `Arc` clone per RCPT.
///
/// A policy's `verify_recipients` routes are kept only once the verification hook runs
/// ([`set_verifying`](RelayControl::set_verifying), which
/// [`add_verify_hook`](crate::server::verify::add_verify_hook) calls): without it nothing
/// would probe, and the recipients file alone decides, as if no route verified.
pub struct RelayControl {
    policy: RwLock<Arc<RelayPolicy>>,
    verifying: AtomicBool,
}

impl RelayControl {
    /// Relay control with `policy` (without its verification until
    /// [`set_verifying`](RelayControl::set_verifying)).
    pub fn new(policy: RelayPolicy) -> RelayControl {
        RelayControl {
            policy: RwLock::new(Arc::new(policy.with_verification(Vec::new()))),
            verifying: AtomicBool::new(false),
        }
    }

    /// The policy in force now.
    pub fn policy(&self) -> Arc<RelayPolicy> {
        self.policy.read().clone()
    }

    /// Puts `policy` in force for every RCPT from now on.
    pub fn replace(&self, policy: RelayPolicy) {
        let policy = if self.verifying.load(Ordering::Acquire) {
            policy
        } else {
            policy.with_verification(Vec::new())
        };
        *self.policy.write() = Arc::new(policy);
    }

    /// A verification hook runs: policies put in force from now on keep their
    /// `verify_recipients` routes (install the hook before the server is built, which puts
    /// the configured policy in force).
    pub fn set_verifying(&self) {
        self.verifying.store(true, Ordering::Release);
    }
}

impl fmt::Debug for RelayControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RelayControl")
            .field(&*self.policy())
            .finish()
    }
}

/// Whether the text after `RCPT TO:` of `line` starts a source route (`<@a,@b:user@c>`), which
/// the address parser accepts and drops: a mailbox never starts with `@`.
pub(super) fn has_source_route(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    let rest = line[colon + 1..].trim_ascii_start();
    let rest = rest.strip_prefix(b"<").unwrap_or(rest);
    rest.trim_ascii_start().starts_with(b"@")
}

impl Factory {
    /// Relay control for one RCPT: `Some(reply)` refuses the recipient. Without
    /// [`FactoryConfig::relay`](super::FactoryConfig::relay) every recipient passes.
    pub(super) fn relay_refusal(&self, to: &ForwardPath<'_>, source_route: bool) -> Option<Reply> {
        let control = self.config.relay.as_ref()?;
        let client = Client {
            addr: self.peer.ip(),
            authenticated: self.session.auth.is_some(),
        };
        let rcpt = RcptPath::new(to.clone().into_owned(), source_route);
        match check_recipient(&control.policy(), &rcpt, &client) {
            // The RCPT hook the server installs for verified routes probes it
            // (`server::verify`); the factory lets it through to the hook.
            Decision::Accept(_) | Decision::Verify => None,
            Decision::Refuse(reply) => Some(reply),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::has_source_route;

    #[test]
    fn source_routes_are_seen_in_the_raw_line() {
        assert!(has_source_route(
            b"RCPT TO:<@a.example,@b.example:u@c.example>\r\n"
        ));
        assert!(has_source_route(b"RCPT TO: < @a.example:u@c.example>\r\n"));
        assert!(has_source_route(b"rcpt to:@a.example:u@c.example\r\n"));
        assert!(!has_source_route(b"RCPT TO:<u@c.example>\r\n"));
        assert!(!has_source_route(b"RCPT TO:<\"@x\"@c.example>\r\n"));
        assert!(!has_source_route(b"RCPT TO:<Postmaster>\r\n"));
        assert!(!has_source_route(b"RCPT"));
    }
}
