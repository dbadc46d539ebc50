//! Metrics: a small registry of counters, gauges and duration histograms, rendered in the
//! Prometheus text exposition format (version 0.0.4), and the HTTP responder that serves
//! it (`[metrics] listen`, [`http`]).
//!
//! Counting never blocks and never takes a lock: a [`Counter`], [`Gauge`] or
//! [`Histogram`] is a handle to relaxed atomics, cloned where the counting happens (a loop
//! thread, a spool thread, the hook pool). Only registering a series and rendering a
//! scrape take the registry's mutex, and neither happens on a loop thread's path. Values
//! that something else already keeps (the spool's commit counters, the plugins' panic
//! count, files in `queue/`) are read at scrape time through a callback
//! ([`Registry::counter_fn`], [`Registry::gauge_fn`]) instead of being counted twice.
//!
//! A subsystem adds a metric with one line, at start-up, and keeps the handle:
//!
//! ```
//! use smtp_server::metrics::Registry;
//! let registry = Registry::new();
//! let delivered = registry.counter(
//!     "impulse_relay_deliveries_total",
//!     "Delivery attempts by outcome.",
//!     &[("outcome", "delivered")],
//! );
//! delivered.inc();
//! assert!(registry.render().contains("impulse_relay_deliveries_total{outcome=\"delivered\"} 1"));
//! ```
//!
//! Registering the same name and labels again returns the same series, so a caller with
//! labels only known later (a destination) may register on first use and keep the handle.
//!
//! The server's own metrics are [`ServerMetrics`]; every metric is listed in
//! `docs/OPERATIONS.md`. What this module does not do: push metrics anywhere, keep history,
//! or decide what to count (the code where things happen does).

pub mod http;
mod server;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use server::ServerMetrics;
pub(crate) use server::{ConnTally, Outcome};

/// Upper bounds (seconds) of the default duration histogram buckets: 100 µs to 10 s.
pub const DURATION_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// A monotonically increasing count. Cloning gives another handle to the same series.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        if n > 0 {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The count so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down. Cloning gives another handle to the same series.
#[derive(Debug, Clone, Default)]
pub struct Gauge(Arc<AtomicI64>);

impl Gauge {
    /// Adds `n` (negative to subtract).
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Subtracts one.
    pub fn dec(&self) {
        self.add(-1);
    }

    /// Sets the value.
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// The value now.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The atomics behind a [`Histogram`]: one count per bucket (not cumulative; summed when
/// rendered), the total count and the sum in nanoseconds.
#[derive(Debug)]
struct HistogramCore {
    bounds: Vec<f64>,
    /// `bounds.len() + 1` counts: the last is above every bound (`+Inf` only).
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

/// A histogram of durations, in seconds. Cloning gives another handle to the same series.
#[derive(Debug, Clone)]
pub struct Histogram(Arc<HistogramCore>);

impl Histogram {
    fn new(bounds: &[f64]) -> Histogram {
        let mut bounds: Vec<f64> = bounds.iter().copied().filter(|b| b.is_finite()).collect();
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        let buckets = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Histogram(Arc::new(HistogramCore {
            bounds,
            buckets,
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }))
    }

    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let h = &self.0;
        let secs = d.as_secs_f64();
        let i = h.bounds.partition_point(|&b| b < secs);
        h.buckets[i].fetch_add(1, Ordering::Relaxed);
        h.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        h.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Durations recorded so far.
    pub fn count(&self) -> u64 {
        self.0.count.load(Ordering::Relaxed)
    }
}

/// A value read when a scrape renders it.
type ReadFn<T> = Box<dyn Fn() -> T + Send + Sync>;

/// One sample of a family read at scrape ([`Registry::counter_family_fn`]): its labels and
/// its value.
pub type Sample = (Vec<(String, String)>, f64);

/// Where one series' value comes from.
enum Source {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
    CounterFn(ReadFn<u64>),
    GaugeFn(ReadFn<f64>),
    /// Every series of the family at once, with their labels (label sets known only at
    /// scrape: a queue's destinations, bounce classes seen).
    Many(ReadFn<Vec<Sample>>),
}

/// The kind of a family, as `# TYPE` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

struct Series {
    labels: Vec<(String, String)>,
    source: Source,
}

struct Family {
    name: String,
    help: String,
    kind: Kind,
    series: Vec<Series>,
}

/// The metrics of a process: families of series by name, rendered for a scrape.
///
/// Share one (`Arc<Registry>`) between the server and whatever else runs beside it
/// ([`ServerBuilder::metrics`](crate::server::ServerBuilder::metrics)), so that one
/// endpoint serves them all.
#[derive(Default)]
pub struct Registry {
    families: Mutex<Vec<Family>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.lock().len();
        f.debug_struct("Registry").field("families", &n).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Family>> {
        self.families.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Finds or adds the series `name{labels}`: `existing` returns the handle of a series
    /// already there, `make` makes a new one. A name registered with another kind gets a
    /// series that is counted but never rendered (and an error in the log): a programming
    /// mistake must not take the server down.
    fn register<T>(
        &self,
        name: &str,
        help: &str,
        kind: Kind,
        labels: &[(&str, &str)],
        existing: impl FnOnce(&Source) -> Option<T>,
        make: impl FnOnce() -> (T, Source),
    ) -> T {
        let mut families = self.lock();
        let labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if !valid_name(name) || labels.iter().any(|(k, _)| !valid_name(k) || k == "le") {
            log::error!("metrics: invalid metric or label name in {name} {labels:?}");
            return make().0;
        }
        let family = match families.iter_mut().position(|f| f.name == name) {
            Some(i) => &mut families[i],
            None => {
                families.push(Family {
                    name: name.to_owned(),
                    help: help.to_owned(),
                    kind,
                    series: Vec::new(),
                });
                families.last_mut().expect("just pushed")
            }
        };
        if family.kind != kind {
            log::error!(
                "metrics: {name} is a {}, not a {}",
                family.kind.as_str(),
                kind.as_str()
            );
            return make().0;
        }
        if let Some(s) = family.series.iter().find(|s| s.labels == labels) {
            if let Some(handle) = existing(&s.source) {
                return handle;
            }
            log::error!("metrics: {name} {labels:?} is read by a callback already");
            return make().0;
        }
        let (handle, source) = make();
        family.series.push(Series { labels, source });
        handle
    }

    /// The counter `name{labels}` (created at zero). Counter names end in `_total`.
    pub fn counter(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Counter {
        self.register(
            name,
            help,
            Kind::Counter,
            labels,
            |s| match s {
                Source::Counter(c) => Some(c.clone()),
                _ => None,
            },
            || {
                let c = Counter::default();
                (c.clone(), Source::Counter(c))
            },
        )
    }

    /// The gauge `name{labels}` (created at zero).
    pub fn gauge(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Gauge {
        self.register(
            name,
            help,
            Kind::Gauge,
            labels,
            |s| match s {
                Source::Gauge(g) => Some(g.clone()),
                _ => None,
            },
            || {
                let g = Gauge::default();
                (g.clone(), Source::Gauge(g))
            },
        )
    }

    /// The duration histogram `name{labels}` with bucket upper bounds `buckets` in
    /// seconds (see [`DURATION_BUCKETS`]); the bounds of the first registration of a
    /// series stay.
    pub fn histogram(
        &self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        buckets: &[f64],
    ) -> Histogram {
        self.register(
            name,
            help,
            Kind::Histogram,
            labels,
            |s| match s {
                Source::Histogram(h) => Some(h.clone()),
                _ => None,
            },
            || {
                let h = Histogram::new(buckets);
                (h.clone(), Source::Histogram(h))
            },
        )
    }

    /// A counter whose value `read` returns at each scrape (something else keeps it). It
    /// must never block for long: it runs on the metrics thread during a scrape.
    pub fn counter_fn(
        &self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        read: impl Fn() -> u64 + Send + Sync + 'static,
    ) {
        self.register(
            name,
            help,
            Kind::Counter,
            labels,
            |_| None::<()>,
            || ((), Source::CounterFn(Box::new(read))),
        );
    }

    /// A gauge whose value `read` returns at each scrape (see [`counter_fn`](Self::counter_fn)).
    pub fn gauge_fn(
        &self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        read: impl Fn() -> f64 + Send + Sync + 'static,
    ) {
        self.register(
            name,
            help,
            Kind::Gauge,
            labels,
            |_| None::<()>,
            || ((), Source::GaugeFn(Box::new(read))),
        );
    }

    /// A counter family whose series `read` returns at each scrape, labels and all: for
    /// label sets known only then (bounce classes seen so far). `read` keeps their number
    /// bounded and must never block for long (see [`counter_fn`](Self::counter_fn)).
    /// Samples with an invalid label name, or the label `le`, are left out.
    pub fn counter_family_fn(
        &self,
        name: &str,
        help: &str,
        read: impl Fn() -> Vec<Sample> + Send + Sync + 'static,
    ) {
        self.register(
            name,
            help,
            Kind::Counter,
            &[],
            |_| None::<()>,
            || ((), Source::Many(Box::new(read))),
        );
    }

    /// A gauge family whose series `read` returns at each scrape (see
    /// [`counter_family_fn`](Self::counter_family_fn)): the queue by destination.
    pub fn gauge_family_fn(
        &self,
        name: &str,
        help: &str,
        read: impl Fn() -> Vec<Sample> + Send + Sync + 'static,
    ) {
        self.register(
            name,
            help,
            Kind::Gauge,
            &[],
            |_| None::<()>,
            || ((), Source::Many(Box::new(read))),
        );
    }

    /// Every family in the Prometheus text format 0.0.4 (`# HELP`, `# TYPE`, then its
    /// series), in the order they were registered.
    pub fn render(&self) -> String {
        let families = self.lock();
        let mut out = String::with_capacity(4096);
        for f in families.iter() {
            let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(&f.help));
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.as_str());
            for s in &f.series {
                render_series(&mut out, &f.name, s);
            }
        }
        out
    }
}

fn render_series(out: &mut String, name: &str, s: &Series) {
    let labels = label_text(&s.labels, None);
    match &s.source {
        Source::Counter(c) => {
            let _ = writeln!(out, "{name}{labels} {}", c.get());
        }
        Source::CounterFn(read) => {
            let _ = writeln!(out, "{name}{labels} {}", read());
        }
        Source::Gauge(g) => {
            let _ = writeln!(out, "{name}{labels} {}", g.get());
        }
        Source::GaugeFn(read) => {
            let _ = writeln!(out, "{name}{labels} {}", float(read()));
        }
        Source::Many(read) => {
            for (labels, v) in read() {
                if labels.iter().any(|(k, _)| !valid_name(k) || k == "le") {
                    continue;
                }
                let _ = writeln!(out, "{name}{} {}", label_text(&labels, None), float(v));
            }
        }
        Source::Histogram(h) => {
            let h = &h.0;
            let mut cumulative = 0u64;
            for (i, bound) in h.bounds.iter().enumerate() {
                cumulative += h.buckets[i].load(Ordering::Relaxed);
                let le = label_text(&s.labels, Some(&float(*bound)));
                let _ = writeln!(out, "{name}_bucket{le} {cumulative}");
            }
            cumulative += h.buckets[h.bounds.len()].load(Ordering::Relaxed);
            // The count is read after the buckets: it is at least their sum, and the
            // `+Inf` bucket must equal `_count`, so both take the larger.
            let count = h.count.load(Ordering::Relaxed).max(cumulative);
            let le = label_text(&s.labels, Some("+Inf"));
            let _ = writeln!(out, "{name}_bucket{le} {count}");
            let sum = h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(out, "{name}_sum{labels} {}", float(sum));
            let _ = writeln!(out, "{name}_count{labels} {count}");
        }
    }
}

/// `{k="v",...}` (with `le` last when given), or nothing without labels.
fn label_text(labels: &[(String, String)], le: Option<&str>) -> String {
    if labels.is_empty() && le.is_none() {
        return String::new();
    }
    let mut out = String::from("{");
    let pairs = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(le.map(|v| ("le", v)));
    for (i, (k, v)) in pairs.enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{k}=\"{}\"", escape_label(v));
    }
    out.push('}');
    out
}

/// A float as the text format writes one (`+Inf`, `-Inf`, `NaN`, else Rust's shortest).
fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{v}")
    }
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `[a-zA-Z_][a-zA-Z0-9_]*` (colons are for recording rules, not exporters).
fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_gauges_and_callbacks_render() {
        let r = Registry::new();
        let a = r.counter("x_total", "Things.", &[("kind", "a")]);
        let b = r.counter("x_total", "Things.", &[("kind", "b\"q")]);
        a.add(3);
        b.inc();
        // The same series again: the same counter.
        r.counter("x_total", "Things.", &[("kind", "a")]).inc();
        let g = r.gauge("open", "Open now.", &[]);
        g.inc();
        g.inc();
        g.dec();
        r.gauge_fn("size", "Size.\nTwo lines", &[], || 2.5);
        r.counter_fn("read_total", "Read.", &[], || 7);
        let text = r.render();
        assert_eq!(
            text,
            "# HELP x_total Things.\n# TYPE x_total counter\n\
             x_total{kind=\"a\"} 4\nx_total{kind=\"b\\\"q\"} 1\n\
             # HELP open Open now.\n# TYPE open gauge\nopen 1\n\
             # HELP size Size.\\nTwo lines\n# TYPE size gauge\nsize 2.5\n\
             # HELP read_total Read.\n# TYPE read_total counter\nread_total 7\n"
        );
    }

    #[test]
    fn histograms_are_cumulative_with_sum_and_count() {
        let r = Registry::new();
        let h = r.histogram("d_seconds", "D.", &[("p", "x")], &[0.01, 0.1, 1.0]);
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_millis(10));
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_secs(3));
        let text = r.render();
        for line in [
            "d_seconds_bucket{p=\"x\",le=\"0.01\"} 2",
            "d_seconds_bucket{p=\"x\",le=\"0.1\"} 3",
            "d_seconds_bucket{p=\"x\",le=\"1\"} 3",
            "d_seconds_bucket{p=\"x\",le=\"+Inf\"} 4",
            "d_seconds_sum{p=\"x\"} 3.065",
            "d_seconds_count{p=\"x\"} 4",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        assert_eq!(h.count(), 4);
    }

    #[test]
    fn families_read_at_scrape_render_every_sample() {
        let r = Registry::new();
        r.gauge_family_fn("q", "Queue.", || {
            vec![
                (vec![("domain".into(), "a.test".into())], 2.0),
                (vec![("bad name".into(), "x".into())], 1.0),
                (vec![("domain".into(), "b\"".into())], 1.0),
            ]
        });
        r.counter_family_fn("c_total", "C.", Vec::new);
        let text = r.render();
        assert_eq!(
            text,
            "# HELP q Queue.\n# TYPE q gauge\nq{domain=\"a.test\"} 2\nq{domain=\"b\\\"\"} 1\n\
             # HELP c_total C.\n# TYPE c_total counter\n"
        );
    }

    #[test]
    fn mistakes_are_counted_but_not_rendered() {
        let r = Registry::new();
        r.counter("c_total", "C.", &[]).inc();
        let wrong = r.gauge("c_total", "C.", &[]);
        wrong.inc();
        let bad = r.counter("bad name", "B.", &[]);
        bad.inc();
        r.counter("l_total", "L.", &[("le", "1")]).inc();
        let text = r.render();
        assert!(text.contains("c_total 1\n"), "{text}");
        assert!(
            !text.contains("bad name") && !text.contains("l_total{"),
            "{text}"
        );
        assert!(valid_name("impulse_x_total") && !valid_name("9x") && !valid_name(""));
    }
}
