//! The RCPT hook of recipient verification: for an address relay control leaves to it
//! ([`Decision::Verify`]: a relay domain whose route has `verify_recipients = true`, not in
//! the recipients table), it answers from the [`Verifier`]'s cache at once, or goes pending
//! while a probe thread asks the route's next hop. The loop thread never waits for a probe.
//!
//! The next hop's 2xx lets the chain go on (the other RCPT hooks, then the normal `250`);
//! its 5xx is `550 5.1.1`; a 4xx, or no next hop reachable, is `450 4.1.1`; a full probe
//! queue is `450 4.3.2` (see [`smtp_relay::verify::Answer::refusal`]).
//!
//! Install it with [`add_verify_hook`] in the registry the server is built with, and give
//! the builder the same [`RelayControl`] ([`ServerBuilder::relay_control`](super::ServerBuilder::relay_control)),
//! so the hook sees the relay control every connection sees (a changed recipients file, a
//! reload). `impulse serve` does both.
//!
//! What it does not do: decide which addresses need a probe (relay control does), or probe
//! (the verifier's threads do).

use std::sync::Arc;

use hooks_api::{LoadError, Order, RcptCtx, Registry, Verdict};
use smtp_proto::{Domain, ForwardPath};
use smtp_relay::route::{check_recipient, Client, Decision, RcptPath};
use smtp_relay::verify::{busy_reply, Answer, Verifier, Verify, Waiter};

use crate::factory::RelayControl;

/// The name the hook is registered under (in `impulse plugin list`, logs and metrics).
pub const VERIFY_HOOK: &str = "relay-verify";

/// Registers the verification hook (first in the RCPT chain) as [`VERIFY_HOOK`], and tells
/// `control` that verification runs ([`RelayControl::set_verifying`]); call it before the
/// server is built with `control`.
pub fn add_verify_hook(
    registry: &mut Registry,
    control: Arc<RelayControl>,
    verifier: Arc<Verifier>,
) -> Result<(), LoadError> {
    let hooked = control.clone();
    registry.add_host_hooks(VERIFY_HOOK, env!("CARGO_PKG_VERSION"), move |r| {
        r.on_rcpt(Order::First, move |ctx| on_rcpt(&hooked, &verifier, ctx));
        Ok(())
    })?;
    control.set_verifying();
    Ok(())
}

/// The verdict for `address` from a probe's answer.
fn verdict(answer: &Answer, address: &str) -> Verdict {
    match answer.refusal(address) {
        None => Verdict::Continue,
        Some(reply) if reply.is_permanent() => Verdict::Reject(reply),
        Some(reply) => Verdict::TempFail(reply),
    }
}

fn on_rcpt(control: &RelayControl, verifier: &Verifier, ctx: &mut RcptCtx<'_>) -> Verdict {
    let ForwardPath::Mailbox(mailbox) = ctx.recipient else {
        return Verdict::Continue;
    };
    let Domain::Name(domain) = &mailbox.domain else {
        return Verdict::Continue;
    };
    let policy = control.policy();
    // Most recipients are of domains no route verifies: no copy of the path for those.
    if !policy.verifies(domain) {
        return Verdict::Continue;
    }
    let session = ctx.session();
    let client = Client {
        addr: session.peer.ip(),
        authenticated: session.auth.is_some(),
    };
    let rcpt = RcptPath::new(ctx.recipient.clone(), false);
    if check_recipient(&policy, &rcpt, &client) != Decision::Verify {
        return Verdict::Continue;
    }
    let (address, domain) = (mailbox.to_string(), domain.to_string());
    if !ctx.can_pend() {
        // No way to wait here: never probe on the caller's thread.
        return Verdict::TempFail(busy_reply(&address));
    }
    let mut pending = None;
    let quoted = address.clone();
    let answer = verifier.verify(&address, &domain, || -> Waiter {
        let (waiting, completer) = ctx.pending();
        pending = Some(waiting);
        Box::new(move |answer| completer.complete(verdict(answer, &quoted)))
    });
    match answer {
        Verify::Cached(answer) => verdict(&answer, &address),
        Verify::Waiting => pending.unwrap_or_else(Verdict::local_error),
        Verify::Busy => {
            log::warn!("verify <{address}>: every probe thread is busy; answering 450");
            Verdict::TempFail(busy_reply(&address))
        }
    }
}
