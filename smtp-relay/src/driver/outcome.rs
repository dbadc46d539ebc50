//! From the client engine's [`Delivery`] to the scheduler's [`AttemptReport`], and the words
//! of the delivery log line.

use smtp_client::{Delivery, OutcomeKind};
use smtp_proto::{EnhancedStatus, Reply};

use crate::schedule::{AttemptReport, Destination, NextHop, RecipientOutcome, Verdict};

/// A reply on one line: `550 5.1.1 text`, multi-line texts joined with spaces.
pub(crate) fn reply_line(reply: &Reply) -> String {
    let mut out = reply.code().to_string();
    if let Some(s) = reply.status() {
        out.push(' ');
        out.push_str(&s.to_string());
    }
    for line in reply.lines() {
        if !line.is_empty() {
            out.push(' ');
            out.push_str(line);
        }
    }
    out
}

/// The scheduler's report of a finished delivery to `hops`.
pub(crate) fn report(delivery: &Delivery, hops: &Destination) -> AttemptReport {
    let connected = delivery.next_hop.as_ref().map(|h| {
        hops.iter()
            .find(|n| n.addr == h.addr)
            .cloned()
            .unwrap_or_else(|| NextHop {
                host: h.name.as_deref().unwrap_or_default().into(),
                addr: h.addr,
            })
    });
    let outcomes = delivery
        .outcomes
        .iter()
        .map(|o| {
            let text = reply_line(&o.reply);
            match (o.kind, o.local, connected.is_some()) {
                (OutcomeKind::Delivered, _, _) => RecipientOutcome::Delivered(text),
                // Refused or unreachable before any server took the connection, a 5xx
                // greeting included: the next hop is skipped and the message deferred, never
                // bounced (Postfix's `smtp_skip_5xx_greeting`).
                (_, _, false) => RecipientOutcome::ConnectionFailed(text),
                (OutcomeKind::Deferred, true, true) => RecipientOutcome::LocalFailure(text),
                (OutcomeKind::Deferred, false, true) => RecipientOutcome::Deferred(text),
                (OutcomeKind::Bounced, _, _) => RecipientOutcome::Bounced {
                    reply: text,
                    at_rcpt: o.at_rcpt(),
                },
            }
        })
        .collect();
    // No connection was ever set up: every hop of the destination refused.
    let refused = if connected.is_none() {
        hops.to_vec()
    } else {
        Vec::new()
    };
    AttemptReport {
        outcomes,
        refused,
        connected,
    }
}

/// Delivered recipients that asked `NOTIFY=SUCCESS` of a next hop without DSN are owed a
/// `relayed` notification (RFC 3461 §5.2.2): their outcome says so. `notify` is each
/// attempted recipient's `NOTIFY`, in the report's order.
pub(crate) fn owe_relayed(
    report: &mut AttemptReport,
    sender: &str,
    notify: &[Option<smtp_proto::params::Notify>],
    hop_offers_dsn: bool,
) {
    use crate::dsn::rules::{on_accepted, OnAccepted};
    for (o, n) in report.outcomes.iter_mut().zip(notify) {
        if let RecipientOutcome::Delivered(text) = o {
            if on_accepted(sender, *n, hop_offers_dsn) == OnAccepted::NotifyRelayed {
                *o = RecipientOutcome::Relayed(std::mem::take(text));
            }
        }
    }
}

/// The `status=` and `dsn=` words of the log line.
pub(crate) fn log_words(outcome: &RecipientOutcome) -> (&'static str, String) {
    let verdict = outcome.verdict();
    let status = match verdict {
        Verdict::Sent => "sent",
        Verdict::Deferred { .. } => "deferred",
        Verdict::Bounced => "bounced",
    };
    // The outcome's own reply (a hook may have changed it), else its class's default.
    let text = outcome.text();
    let dsn = text
        .split_ascii_whitespace()
        .nth(1)
        .and_then(EnhancedStatus::parse)
        .map(|s| s.to_string())
        .unwrap_or_else(|| {
            match verdict {
                Verdict::Sent => "2.0.0",
                Verdict::Deferred { .. } => "4.0.0",
                Verdict::Bounced => "5.0.0",
            }
            .into()
        });
    (status, dsn)
}
