//! The relay's figures on `impulse serve`'s metrics endpoint: the relay keeps its counters
//! ([`RelayStats`]) and answers queue snapshots ([`QueueProbe`]); this registers both as
//! read-at-scrape metrics in the server's registry, so nothing is counted twice and no
//! scrape-side code runs on the relay's threads but the snapshot itself. Every name is listed
//! in docs/OPERATIONS.md.
//!
//! What it does not do: count (the relay does), or reach the relay when it is off (then none
//! of these metrics exist).

use smtp_relay::driver::stats::{
    QueueProbe, QueueSnapshot, RelayStats, LOOKUP_RESULTS, NOTIFICATIONS, OUTCOMES, QUEUE_STATUSES,
};
use smtp_server::metrics::{Registry, Sample};

fn sample(labels: &[(&str, &str)], v: f64) -> Sample {
    let labels = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    (labels, v)
}

/// One sample per `(value, count)`, labelled `label="value"`.
fn by<'a>(label: &str, counts: impl IntoIterator<Item = (&'a str, u64)>) -> Vec<Sample> {
    counts
        .into_iter()
        .map(|(value, n)| sample(&[(label, value)], n as f64))
        .collect()
}

/// Registers the relay's metrics in `registry`; `classifier` names the bounce classes.
pub fn register(
    registry: &Registry,
    stats: &RelayStats,
    probe: &QueueProbe,
    classifier: &'static smtp_proto::classify::Registry,
) {
    let queue = |name: &str, help: &str, pick: fn(&QueueSnapshot) -> [u64; 3]| {
        let probe = probe.clone();
        registry.gauge_family_fn(name, help, move || {
            let counts = pick(&probe.snapshot());
            by("status", QUEUE_STATUSES.iter().copied().zip(counts))
        });
    };
    queue(
        "impulse_relay_queue_messages",
        "Messages in the relay's queue, by status (held; else deferred when a recipient is; else pending), from a snapshot taken at scrape.",
        |s| s.messages,
    );
    queue(
        "impulse_relay_queue_recipients",
        "Recipients not yet delivered or bounced, by status (pending, deferred, held), from a snapshot taken at scrape.",
        |s| s.recipients,
    );
    let probe_d = probe.clone();
    registry.gauge_family_fn(
        "impulse_relay_queue_destination_recipients",
        "Recipients not yet delivered or bounced, by destination domain: the 20 largest, the rest summed as domain=\"_other\".",
        move || {
            let snapshot = probe_d.snapshot();
            by(
                "domain",
                snapshot.destinations.iter().map(|(d, n)| (d.as_str(), *n)),
            )
        },
    );
    let s = stats.clone();
    registry.counter_family_fn(
        "impulse_relay_deliveries_total",
        "Recipient outcomes, one per delivery log line, by its status= word (sent, deferred, bounced, expired).",
        move || {
            by("outcome", OUTCOMES.iter().copied().zip(s.deliveries()))
        },
    );
    let s = stats.clone();
    registry.counter_family_fn(
        "impulse_relay_delivery_failures_total",
        "Recipients a next hop deferred or bounced (connection failures included), by outcome and bounce class.",
        move || {
            s.failure_classes()
                .into_iter()
                .map(|((outcome, class), n)| {
                    let id = class.to_string();
                    let name = classifier.for_id(class).map_or("", |c| c.name);
                    sample(
                        &[
                            ("outcome", outcome.as_str()),
                            ("class", &id),
                            ("class_name", name),
                        ],
                        n as f64,
                    )
                })
                .collect()
        },
    );
    let s = stats.clone();
    registry.counter_family_fn(
        "impulse_relay_dns_lookups_total",
        "Route lookups of destination domains (static routes, MX and A/AAAA through the cache), by result.",
        move || {
            by("result", LOOKUP_RESULTS.iter().copied().zip(s.lookups()))
        },
    );
    for (result, ok) in [("ok", true), ("failed", false)] {
        let s = stats.clone();
        registry.counter_fn(
            "impulse_relay_state_writes_total",
            "Per-recipient state records written to the spool, by result (a failed write is retried).",
            &[("result", result)],
            move || {
                let (good, bad) = s.records();
                if ok {
                    good
                } else {
                    bad
                }
            },
        );
    }
    let s = stats.clone();
    registry.counter_family_fn(
        "impulse_relay_notifications_total",
        "Delivery status notifications committed to the spool, by kind (failed, delayed, relayed).",
        move || by("kind", NOTIFICATIONS.iter().copied().zip(s.notifications())),
    );
}

/// Registers the recipient verifier's metrics (`verify_recipients` routes): probes by
/// result, cache hits, busy answers and the cache's size.
pub fn register_verify(
    registry: &Registry,
    verifier: std::sync::Arc<smtp_relay::verify::Verifier>,
) {
    let probes = verifier.clone();
    registry.counter_family_fn(
        "impulse_relay_verify_probes_total",
        "Recipient probes to next hops, by result: valid (2xx), unknown (5xx), unverified (4xx, unreachable, timeout).",
        move || {
            let c = probes.counts();
            by(
                "result",
                [("valid", c.valid), ("unknown", c.unknown), ("unverified", c.unverified)],
            )
        },
    );
    let hits = verifier.clone();
    registry.counter_fn(
        "impulse_relay_verify_cache_hits_total",
        "Recipient verifications answered from the cache, with no probe.",
        &[],
        move || hits.counts().cache_hits,
    );
    let busy = verifier.clone();
    registry.counter_fn(
        "impulse_relay_verify_busy_total",
        "Recipient verifications answered 450 4.3.2 because every probe thread was busy and the queue full.",
        &[],
        move || busy.counts().busy,
    );
    registry.gauge_fn(
        "impulse_relay_verify_cache_entries",
        "Answers in the recipient verification cache.",
        &[],
        move || verifier.counts().cached as f64,
    );
}
