//! The relay-side hook points ([`hooks_api::relay`]) as the driver dispatches them: small
//! functions the relay and DNS threads call at the four places a plugin may step in.
//!
//! | point | called from | with |
//! |---|---|---|
//! | `route` | the DNS thread, after [`crate::route::resolve_domain`] | [`route`]: the routing outcome in, the scheduler's [`RouteAnswer`] out |
//! | `attempt` | `Driver::deliver`, before a batch goes to the client engine | [`screen`]: recipients a hook decided are left out of the attempt; [`Screen::merge`] puts their outcomes back into the report |
//! | `delivery_outcome` | `Driver::delivered`, per recipient of the engine's report | [`outcomes`]: may change a recipient's outcome |
//! | `bounce` | `notify::queue`, once a notification is due | [`notification`]: suppressed, or what to add to it |
//!
//! Every point keeps the relay's default when no hook is registered, and when a hook faults
//! (panics, answers a verdict the dispatcher refuses, goes pending): the dispatcher logs the
//! plugin and the point, and [`hooks_api::Ctx::hook_faulted`] tells us to ignore the result.
//!
//! What this module does not do: decide anything itself, or touch the spool and the
//! scheduler (the driver feeds them what these functions return).

use std::collections::HashMap;

use hooks_api::relay::{
    Attempt, Bounce, DeliveryOutcome, Disposition, NotificationKind, RelayScope, Reported, Route,
    RouteHop,
};
use hooks_api::{Registry, Verdict};
use smtp_proto::Reply;
use smtp_spool::QueueId;

use super::outcome::reply_line;
use super::Meta;
use crate::route::{NextHop, RouteOutcome, TlsPolicy};
use crate::schedule::{AttemptReport, BounceKind, BounceRecipient, RecipientOutcome, RouteAnswer};
use crate::state::MessageState;

/// What a final verdict asks of a recipient or a domain.
enum Asked {
    /// Keep the relay's own result.
    Default,
    /// Fail permanently with this reply (5xx).
    Permanent(Reply),
    /// Fail temporarily with this reply (4xx).
    Temporary(Reply),
}

/// Reads a relay-side verdict (see the table in [`hooks_api::relay`]).
fn asked(verdict: Verdict, faulted: bool) -> Asked {
    if faulted {
        return Asked::Default;
    }
    match verdict {
        Verdict::Reject(r) => Asked::Permanent(r),
        Verdict::TempFail(r) => Asked::Temporary(r),
        Verdict::Disconnect(r) if r.code() / 100 == 5 => Asked::Permanent(r),
        Verdict::Disconnect(r) => Asked::Temporary(r),
        Verdict::Continue | Verdict::Accept(_) | Verdict::Pending(_) => Asked::Default,
    }
}

/// `route`: runs the route hooks over the routing outcome for `domain` and gives the
/// scheduler's answer with the TLS policy of its hops. Hops a hook added take the policy of
/// the route's hop at the same address, else of its first hop (opportunistic without one).
pub(super) fn route(
    registry: Option<&Registry>,
    hostname: &str,
    domain: &str,
    outcome: RouteOutcome,
) -> (RouteAnswer, TlsPolicy) {
    let Some(registry) = registry.filter(|r| r.hook_count(hooks_api::HookPoint::Route) > 0) else {
        return super::route_answer(outcome);
    };
    let (hops, failure) = match &outcome {
        RouteOutcome::Hops(hops) => (
            hops.iter()
                .map(|h| RouteHop::new(h.name.clone(), h.addr))
                .collect(),
            None,
        ),
        RouteOutcome::Permanent(r) | RouteOutcome::Temporary(r) => (Vec::new(), Some(r.clone())),
    };
    let mut scope = RelayScope::new(hostname);
    let mut ctx = scope.ctx(Route::new(domain, hops, failure));
    let verdict = registry.dispatch_route(&mut ctx);
    let faulted = ctx.hook_faulted();
    let event = ctx.into_event();
    let changed = match asked(verdict, faulted) {
        Asked::Permanent(r) => return refused(&r),
        Asked::Temporary(r) => {
            return (
                RouteAnswer::Temporary(reply_line(&r)),
                TlsPolicy::Opportunistic,
            )
        }
        Asked::Default if faulted => return super::route_answer(outcome),
        Asked::Default => event,
    };
    let original = match &outcome {
        RouteOutcome::Hops(hops) => hops.clone(),
        _ => Vec::new(),
    };
    match changed.failure {
        Some(r) => {
            // The lookup's own failure, untouched: the scheduler knows it best (5.1.10, 5.4.6).
            let untouched = matches!(&outcome,
                RouteOutcome::Permanent(o) | RouteOutcome::Temporary(o) if *o == r);
            if untouched {
                super::route_answer(outcome)
            } else {
                failure_answer(&r)
            }
        }
        None => {
            let default_tls = original
                .first()
                .map(|h| h.tls)
                .unwrap_or(TlsPolicy::Opportunistic);
            let hops = changed
                .hops
                .into_iter()
                .map(|h| NextHop {
                    tls: original
                        .iter()
                        .find(|o| o.addr == h.addr)
                        .map_or(default_tls, |o| o.tls),
                    name: h.name,
                    addr: h.addr,
                })
                .collect();
            super::route_answer(RouteOutcome::Hops(hops))
        }
    }
}

/// The answer for a failure a hook set: a 5xx refuses the domain, anything else defers it.
fn failure_answer(reply: &Reply) -> (RouteAnswer, TlsPolicy) {
    if reply.code() / 100 == 5 {
        refused(reply)
    } else {
        (
            RouteAnswer::Temporary(reply_line(reply)),
            TlsPolicy::Opportunistic,
        )
    }
}

fn refused(reply: &Reply) -> (RouteAnswer, TlsPolicy) {
    (
        RouteAnswer::Refused(reply_line(reply)),
        TlsPolicy::Opportunistic,
    )
}

/// The recipients of one batch that `attempt` hooks decided before the attempt.
#[derive(Debug, Default)]
pub(super) struct Screen {
    /// `(position in the batch, outcome)`, positions ascending.
    decided: Vec<(usize, RecipientOutcome)>,
}

impl Screen {
    /// Whether every recipient of a batch of `n` was decided: nothing is left to attempt.
    pub(super) fn is_whole(&self, n: usize) -> bool {
        self.decided.len() == n
    }

    /// The items of `all` (a batch's recipients, or their addresses) still to attempt.
    pub(super) fn attempted<T: Clone>(&self, all: &[T]) -> Vec<T> {
        all.iter()
            .enumerate()
            .filter(|(k, _)| !self.decided.iter().any(|(d, _)| d == k))
            .map(|(_, t)| t.clone())
            .collect()
    }

    /// Names `hostname` (this relay) as the host that answered for the decided recipients of
    /// the batch `recipients`, in `known` (a message's `Remote-MTA` by envelope position), so
    /// their notification carries the hook's reply as its `Diagnostic-Code`.
    pub(super) fn remember(
        &self,
        known: &mut HashMap<u32, String>,
        recipients: &[u32],
        hostname: &str,
    ) {
        for (k, _) in &self.decided {
            if let Some(&i) = recipients.get(*k) {
                known.insert(i, hostname.to_owned());
            }
        }
    }

    /// The report of the whole batch of `n`: the decided outcomes at their positions, the
    /// attempt's (for the others, in order) around them.
    pub(super) fn merge(&self, n: usize, report: AttemptReport) -> AttemptReport {
        if self.decided.is_empty() {
            return report;
        }
        let mut tried = report.outcomes.into_iter();
        let outcomes = (0..n)
            .map(|k| match self.decided.iter().find(|(d, _)| *d == k) {
                Some((_, o)) => o.clone(),
                None => tried.next().unwrap_or_else(|| {
                    RecipientOutcome::LocalFailure("451 4.3.0 no outcome reported".into())
                }),
            })
            .collect();
        AttemptReport { outcomes, ..report }
    }
}

/// `attempt`: asks the hooks about each recipient of the batch `recipients` (envelope
/// positions) of message `id`; those they refuse or defer are logged here and left out of
/// the attempt.
pub(super) fn screen(
    registry: Option<&Registry>,
    hostname: &str,
    id: QueueId,
    meta: &Meta,
    recipients: &[u32],
    state: &MessageState,
) -> Screen {
    let mut screen = Screen::default();
    let Some(registry) = registry.filter(|r| r.hook_count(hooks_api::HookPoint::Attempt) > 0)
    else {
        return screen;
    };
    let queue_id = id.to_string();
    let mut scope = RelayScope::new(hostname);
    for (k, &i) in recipients.iter().enumerate() {
        let Some(r) = state.recipients.get(i as usize) else {
            continue;
        };
        let mut ctx = scope.ctx(Attempt::new(
            &queue_id,
            &meta.sender,
            &r.address,
            r.attempts,
        ));
        let verdict = registry.dispatch_attempt(&mut ctx);
        let faulted = ctx.hook_faulted();
        let (outcome, status) = match asked(verdict, faulted) {
            Asked::Default => continue,
            Asked::Permanent(reply) => (
                RecipientOutcome::Bounced {
                    reply: reply_line(&reply),
                    at_rcpt: false,
                },
                "bounced",
            ),
            Asked::Temporary(reply) => (
                RecipientOutcome::LocalFailure(reply_line(&reply)),
                "deferred",
            ),
        };
        log::info!(
            "{id}: to=<{}>, relay=none, delay={:.1}, dsn={}, status={status} ({}) [attempt hook]",
            r.address,
            since(meta.received),
            outcome.text().split_whitespace().nth(1).unwrap_or("5.0.0"),
            outcome.text(),
        );
        screen.decided.push((k, outcome));
    }
    screen
}

/// Seconds since `arrival` (Unix seconds).
fn since(arrival: u64) -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH + std::time::Duration::from_secs(arrival))
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `delivery_outcome`: runs the outcome hooks for each recipient the engine reported on, and
/// applies what they ask to `report` (a delivered recipient stays delivered).
pub(super) fn outcomes(
    registry: Option<&Registry>,
    hostname: &str,
    id: QueueId,
    meta: Option<&Meta>,
    delivery: &smtp_client::Delivery,
    report: &mut AttemptReport,
) {
    let Some(registry) =
        registry.filter(|r| r.hook_count(hooks_api::HookPoint::DeliveryOutcome) > 0)
    else {
        return;
    };
    let queue_id = id.to_string();
    let sender = meta.map_or("", |m| m.sender.as_str());
    let hop = delivery.next_hop.as_ref().map(ToString::to_string);
    let classifier = registry.classifier();
    let mut scope = RelayScope::new(hostname);
    for (o, r) in report.outcomes.iter_mut().zip(&delivery.outcomes) {
        let disposition = match o.verdict() {
            crate::schedule::Verdict::Sent => Disposition::Delivered,
            crate::schedule::Verdict::Deferred { .. } => Disposition::Deferred,
            crate::schedule::Verdict::Bounced => Disposition::Bounced,
        };
        let local = matches!(o, RecipientOutcome::LocalFailure(_));
        let class = classifier.classify_reply_text(o.text());
        let event = DeliveryOutcome::new(
            &queue_id,
            sender,
            &r.recipient,
            disposition,
            &r.reply,
            class,
        )
        .local(local)
        .next_hop(hop.as_deref());
        let mut ctx = scope.ctx(event);
        let verdict = registry.dispatch_delivery_outcome(&mut ctx);
        let faulted = ctx.hook_faulted();
        let changed = match asked(verdict, faulted) {
            Asked::Default => continue,
            _ if disposition == Disposition::Delivered => {
                log::warn!(
                    "{id}: to=<{}>: a delivery_outcome hook would change a delivery; it stays delivered",
                    r.recipient
                );
                continue;
            }
            Asked::Permanent(reply) => RecipientOutcome::Bounced {
                reply: reply_line(&reply),
                at_rcpt: false,
            },
            Asked::Temporary(reply) => RecipientOutcome::Deferred(reply_line(&reply)),
        };
        log::info!(
            "{id}: to=<{}>: {} ({}) made {} ({}) by a delivery_outcome hook",
            r.recipient,
            disposition.as_str(),
            o.text(),
            match changed.verdict() {
                crate::schedule::Verdict::Bounced => "bounced",
                _ => "deferred",
            },
            changed.text(),
        );
        *o = changed;
    }
}

/// What `bounce` hooks add to a notification.
#[derive(Debug, Default)]
pub(super) struct Additions {
    /// Header fields, prepended to the notification's header section.
    pub headers: Vec<(String, String)>,
    /// Notes for its spool envelope.
    pub notes: Vec<String>,
}

impl Additions {
    /// `bytes` (a notification, header section first) with the added header fields in front.
    pub(super) fn apply(&self, bytes: Vec<u8>) -> Vec<u8> {
        if self.headers.is_empty() {
            return bytes;
        }
        let mut out = Vec::with_capacity(bytes.len() + 64 * self.headers.len());
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(&bytes);
        out
    }
}

/// `bounce`: runs the bounce hooks for a notification of `kind` about message `id` to
/// `sender`, reporting on `wanted`. `None`: a hook suppressed it.
pub(super) fn notification(
    registry: Option<&Registry>,
    hostname: &str,
    id: QueueId,
    kind: BounceKind,
    sender: &str,
    wanted: &[&BounceRecipient],
) -> Option<Additions> {
    let Some(registry) = registry.filter(|r| r.hook_count(hooks_api::HookPoint::Bounce) > 0) else {
        return Some(Additions::default());
    };
    let queue_id = id.to_string();
    let reported: Vec<Reported<'_>> = wanted
        .iter()
        .map(|r| Reported::new(&r.address, &r.status, &r.reply, r.class))
        .collect();
    let kind_of = match kind {
        BounceKind::Failed => NotificationKind::Failed,
        BounceKind::Delayed => NotificationKind::Delayed,
        BounceKind::Relayed => NotificationKind::Relayed,
    };
    let mut scope = RelayScope::new(hostname);
    let mut ctx = scope.ctx(Bounce::new(&queue_id, sender, kind_of, &reported));
    let verdict = registry.dispatch_bounce(&mut ctx);
    let faulted = ctx.hook_faulted();
    if let Asked::Permanent(reply) = asked(verdict, faulted) {
        log::info!(
            "{id}: sender notification ({kind:?}) to <{sender}> suppressed by a bounce hook ({})",
            reply_line(&reply)
        );
        return None;
    }
    let event = ctx.into_event();
    Some(Additions {
        headers: event.headers().to_vec(),
        notes: event.notes().to_vec(),
    })
}

#[cfg(test)]
#[path = "hooks_tests.rs"]
mod tests;
