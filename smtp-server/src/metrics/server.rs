//! The server's metrics ([`ServerMetrics`]): the handles the loops, the spool callbacks
//! and the hook pool count with, registered once when the server is built; and
//! [`ConnTally`], what one connection has already reported, so that the loop publishes
//! only what changed since (a few relaxed adds per drive, none when nothing changed).
//!
//! It does not count by itself: the loop calls it where things happen (accept, drive,
//! end of data, the commit callbacks, hook dispatch, the TLS handshake).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hooks_api::HookPoint;

use super::{Counter, Gauge, Histogram, Registry, DURATION_BUCKETS};
use crate::spool::Spool;

/// Reply classes counted: `1xx` to `5xx` (anything else is counted as `other`).
const CLASSES: [&str; 6] = ["other", "1xx", "2xx", "3xx", "4xx", "5xx"];

/// How a message ended, for `impulse_messages_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Answered `250` at the end of data (queued, or taken by a queue hook).
    Accepted,
    /// Answered `4xx`/`5xx` at the end of data (too big, too many hops, bare line
    /// endings, refused by a hook, the spool failed).
    Rejected,
}

/// The handles of every server metric (see `docs/OPERATIONS.md` for the list).
#[derive(Debug)]
pub struct ServerMetrics {
    registry: Arc<Registry>,
    pub(crate) open: Gauge,
    pub(crate) accepted: Counter,
    pub(crate) refused_per_ip: Counter,
    pub(crate) refused_full: Counter,
    /// Connections refused by `limits.connection_rate_per_ip`.
    pub(crate) refused_rate: Counter,
    pub(crate) commands: Counter,
    replies: [Counter; 6],
    pub(crate) messages_accepted: Counter,
    pub(crate) messages_rejected: Counter,
    pub(crate) bytes_received: Counter,
    pub(crate) commit_seconds: Histogram,
    pub(crate) tls_ok: Counter,
    pub(crate) tls_failed: Counter,
    pub(crate) auth_ok: Counter,
    pub(crate) auth_failed: Counter,
    /// Indexed by [`HookPoint::index`]; `None` for points without hooks.
    hooks: [Option<Histogram>; HookPoint::COUNT],
}

impl ServerMetrics {
    /// Registers the server's metrics in `registry`: a histogram for each point in
    /// `hooked`, and the spool's (commits, messages in `queue/`).
    pub fn register(registry: Arc<Registry>, spool: &Spool, hooked: &[HookPoint]) -> Self {
        let r = &registry;
        let refused = |reason| {
            r.counter(
                "impulse_connections_refused_total",
                "Connections refused at accept, by reason (per_ip: 421 for limits.connections_per_ip; full: limits.connections reached).",
                &[("reason", reason)],
            )
        };
        let messages = |outcome| {
            r.counter(
                "impulse_messages_total",
                "Messages whose end of data was answered, by outcome (accepted: 250; rejected: 4xx or 5xx).",
                &[("outcome", outcome)],
            )
        };
        let tls = |result| {
            r.counter(
                "impulse_tls_handshakes_total",
                "STARTTLS handshakes, by result.",
                &[("result", result)],
            )
        };
        let auth = |result| {
            r.counter(
                "impulse_auth_total",
                "AUTH attempts answered, by result (success: 235; failure: 535).",
                &[("result", result)],
            )
        };
        let mut hooks: [Option<Histogram>; HookPoint::COUNT] = Default::default();
        for &point in hooked {
            hooks[point.index()] = Some(r.histogram(
                "impulse_hook_duration_seconds",
                "Time in a hook point's chain of plugin hooks per dispatch (on a loop until a hook went pending; message and queue hooks until their chain finished).",
                &[("point", point.as_str())],
                DURATION_BUCKETS,
            ));
        }
        let m = ServerMetrics {
            open: r.gauge(
                "impulse_connections_open",
                "SMTP connections open now.",
                &[],
            ),
            accepted: r.counter(
                "impulse_connections_accepted_total",
                "SMTP connections accepted.",
                &[],
            ),
            refused_per_ip: refused("per_ip"),
            refused_full: refused("full"),
            refused_rate: refused("rate"),
            commands: r.counter(
                "impulse_commands_total",
                "SMTP command lines received (SASL response lines not included).",
                &[],
            ),
            replies: CLASSES.map(|class| {
                r.counter(
                    "impulse_replies_total",
                    "SMTP replies given to clients (queued for writing), by the class of their code.",
                    &[("class", class)],
                )
            }),
            messages_accepted: messages("accepted"),
            messages_rejected: messages("rejected"),
            bytes_received: r.counter(
                "impulse_received_bytes_total",
                "Bytes of SMTP received from clients (commands and message data, after TLS decryption).",
                &[],
            ),
            commit_seconds: r.histogram(
                "impulse_spool_commit_duration_seconds",
                "Time a spool commit took, from handing the message to the spool to its answer (fsync, rename, directory fsync).",
                &[],
                DURATION_BUCKETS,
            ),
            tls_ok: tls("ok"),
            tls_failed: tls("failed"),
            auth_ok: auth("success"),
            auth_failed: auth("failure"),
            hooks,
            registry: registry.clone(),
        };
        for (result, failures) in [("ok", false), ("failed", true)] {
            let spool = spool.clone();
            registry.counter_fn(
                "impulse_spool_commits_total",
                "Spool commits, by result.",
                &[("result", result)],
                move || {
                    let s = spool.stats();
                    if failures {
                        s.failures
                    } else {
                        s.commits
                    }
                },
            );
        }
        let queue = spool.dir().join("queue");
        registry.gauge_fn(
            "impulse_spool_messages",
            "Messages in the spool's queue/ directory, counted at each scrape.",
            &[],
            move || count_files(&queue) as f64,
        );
        registry.counter_fn(
            "impulse_plugin_panics_total",
            "Panics of plugin code caught at the plugin boundary (hooks, verb handlers, client states).",
            &[],
            hooks_api::panics_caught,
        );
        m
    }

    /// The registry the metrics are in (the one the endpoint renders).
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Records the time one dispatch of `point`'s chain took.
    pub(crate) fn hook_time(&self, point: HookPoint, d: Duration) {
        if let Some(h) = &self.hooks[point.index()] {
            h.observe(d);
        }
    }

    /// Counts a message's end.
    pub(crate) fn message(&self, outcome: Outcome) {
        match outcome {
            Outcome::Accepted => self.messages_accepted.inc(),
            Outcome::Rejected => self.messages_rejected.inc(),
        }
    }
}

/// Entries of `dir` whose names do not start with a dot (0 when it cannot be read).
fn count_files(dir: &PathBuf) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| !e.file_name().as_encoded_bytes().starts_with(b"."))
            .count()
    })
}

/// What one connection has reported to the [`ServerMetrics`] so far; the loop publishes
/// the difference with the connection's running totals after each drive.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnTally {
    /// Command lines (the factory's count).
    pub commands: u64,
    /// Replies by class (the factory's count, indexed like `CLASSES`).
    pub replies: [u64; 6],
    /// `235` replies.
    pub auth_ok: u64,
    /// `535` replies.
    pub auth_failed: u64,
    /// Bytes read from the client (after TLS).
    pub bytes: u64,
    /// STARTTLS handshakes completed.
    pub tls_ok: u64,
    /// STARTTLS handshakes failed with a TLS error.
    pub tls_failed: u64,
}

impl ConnTally {
    /// Adds what grew from `self` to `now` to `m`, then remembers `now`.
    pub(crate) fn publish(&mut self, now: ConnTally, m: &ServerMetrics) {
        if now == *self {
            return;
        }
        m.commands.add(now.commands.saturating_sub(self.commands));
        for (i, c) in m.replies.iter().enumerate() {
            c.add(now.replies[i].saturating_sub(self.replies[i]));
        }
        m.auth_ok.add(now.auth_ok.saturating_sub(self.auth_ok));
        m.auth_failed
            .add(now.auth_failed.saturating_sub(self.auth_failed));
        m.bytes_received.add(now.bytes.saturating_sub(self.bytes));
        m.tls_ok.add(now.tls_ok.saturating_sub(self.tls_ok));
        m.tls_failed
            .add(now.tls_failed.saturating_sub(self.tls_failed));
        *self = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_publishes_only_what_grew() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let m = ServerMetrics::register(Arc::new(Registry::new()), &spool, &[HookPoint::Rcpt]);
        let mut seen = ConnTally::default();
        let mut now = ConnTally {
            commands: 3,
            bytes: 40,
            auth_ok: 1,
            ..ConnTally::default()
        };
        now.replies[2] = 3;
        seen.publish(now, &m);
        seen.publish(now, &m);
        now.commands = 4;
        now.replies[5] = 1;
        seen.publish(now, &m);
        m.hook_time(HookPoint::Rcpt, Duration::from_millis(1));
        m.hook_time(HookPoint::Mail, Duration::from_millis(1));
        m.message(Outcome::Accepted);
        let text = m.registry().render();
        for line in [
            "impulse_commands_total 4\n",
            "impulse_replies_total{class=\"2xx\"} 3\n",
            "impulse_replies_total{class=\"5xx\"} 1\n",
            "impulse_received_bytes_total 40\n",
            "impulse_auth_total{result=\"success\"} 1\n",
            "impulse_hook_duration_seconds_count{point=\"rcpt\"} 1\n",
            "impulse_messages_total{outcome=\"accepted\"} 1\n",
            "impulse_spool_messages 0\n",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        assert!(!text.contains("point=\"mail\""), "{text}");
    }
}
