//! Recipient verification (`verify_recipients = true` on a route): whether the route's next
//! hop would take an address, asked with an RCPT probe (`MAIL FROM:<>`, `RCPT TO`, `RSET`;
//! never DATA) and remembered in a bounded cache ([`VerifyCache`]), so an inbound MX refuses
//! unknown recipients at RCPT instead of bouncing them later (backscatter).
//!
//! [`Verifier`] is what the server's RCPT hook calls. It never blocks its caller: an answer
//! in the cache comes back at once; otherwise the probe goes to one of a few probe threads
//! through a bounded queue, and the caller's waiter is called with the answer from that
//! thread. Probes of an address already being probed are coalesced: one probe, every waiter
//! answered. A full queue is answered at once ([`Verify::Busy`]) rather than waited for.
//!
//! What it does not do: decide which addresses need a probe (relay control does:
//! [`crate::route::Decision::Verify`]), or talk to the server's loop (the waiter does).

// Probe threads read the clock and block on sockets: that is their job.
#![allow(clippy::disallowed_methods)]

mod cache;
mod probe;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use smtp_proto::{EnhancedStatus, Reply};

pub use cache::{Ttls, VerifyCache};

use crate::route::RouteTable;

/// `positive_ttl` when not configured: a known recipient is asked again after a week.
pub const DEFAULT_POSITIVE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// `negative_ttl` when not configured (3 hours).
pub const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(3 * 3600);
/// `tempfail_ttl` when not configured (1 minute).
pub const DEFAULT_TEMPFAIL_TTL: Duration = Duration::from_secs(60);
/// The whole probe's time limit when not configured (30 seconds).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The cache's entries when not configured.
pub const DEFAULT_CACHE_SIZE: usize = 100_000;
/// Probe threads when not configured.
pub const DEFAULT_THREADS: usize = 4;
/// Probes that may wait for a thread, per thread, before new ones are answered busy.
pub const QUEUE_PER_THREAD: usize = 64;
/// The longest next-hop text repeated in a reply.
const MAX_QUOTED: usize = 300;

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The next hop accepted the recipient (2xx).
    Valid,
    /// The next hop refused it permanently (5xx): its reply.
    Unknown(Reply),
    /// Not verified for now (a 4xx, no next hop reachable, a timeout): why.
    Unverified(String),
}

impl Answer {
    /// The reply that refuses `address` (written without brackets), or `None` to accept:
    /// `550 5.1.1 <address>: Recipient address rejected: <the next hop's reply>` (its
    /// enhanced code kept when it is a 5.1.x), or `450 4.1.1 <address>: Recipient address
    /// rejected: unverified address: <why>`.
    pub fn refusal(&self, address: &str) -> Option<Reply> {
        match self {
            Answer::Valid => None,
            Answer::Unknown(reply) => {
                let status = reply
                    .status()
                    .filter(|s| s.class == 5 && s.subject == 1)
                    .unwrap_or(EnhancedStatus::new(5, 1, 1));
                let text = format!(
                    "<{address}>: Recipient address rejected: {}",
                    one_line(reply)
                );
                Some(Reply::new(550, Some(status), &text))
            }
            Answer::Unverified(why) => Some(unverified(address, why)),
        }
    }
}

/// `450 4.1.1 <address>: Recipient address rejected: unverified address: <why>`.
fn unverified(address: &str, why: &str) -> Reply {
    let text = format!(
        "<{address}>: Recipient address rejected: unverified address: {}",
        clean(why)
    );
    Reply::new(450, Some(EnhancedStatus::new(4, 1, 1)), &text)
}

/// `450 4.3.2`: every probe thread is busy and the queue is full.
pub fn busy_reply(address: &str) -> Reply {
    let text = format!(
        "<{address}>: Recipient address rejected: unverified address: \
         too many verifications in progress, try again later"
    );
    Reply::new(450, Some(EnhancedStatus::new(4, 3, 2)), &text)
}

/// A reply as one line of text: code, enhanced code and text, bounded and printable.
pub(crate) fn one_line(reply: &Reply) -> String {
    let status = reply.status().map(|s| format!(" {s}")).unwrap_or_default();
    let text = reply.lines().join(" ");
    clean(&format!("{}{status} {text}", reply.code()))
}

/// `text` without control characters, at most [`MAX_QUOTED`] characters.
fn clean(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_QUOTED)
        .collect();
    out.truncate(out.trim_end().len());
    out
}

/// Where and how to probe, and how long answers are kept; replaceable while running
/// ([`Verifier::reload`]).
#[derive(Debug, Clone)]
pub struct VerifySettings {
    /// The static routes (with `[relay] port`): a verified domain's next hops.
    pub routes: RouteTable,
    /// The nameservers for host names in routes (empty: the system's, read when the
    /// settings are put in force).
    pub nameservers: Vec<SocketAddr>,
    /// The time limit of one DNS query.
    pub dns_timeout: Duration,
    /// The EHLO name.
    pub helo: String,
    /// The whole probe's time limit.
    pub timeout: Duration,
    /// How long answers are kept.
    pub ttls: Ttls,
    /// The most answers kept.
    pub cache_size: usize,
}

impl VerifySettings {
    /// Settings with the defaults of `[relay.verify]` for these routes and EHLO name.
    pub fn new(routes: RouteTable, helo: impl Into<String>) -> VerifySettings {
        VerifySettings {
            routes,
            nameservers: Vec::new(),
            dns_timeout: Duration::from_secs(5),
            helo: helo.into(),
            timeout: DEFAULT_TIMEOUT,
            ttls: Ttls {
                positive: DEFAULT_POSITIVE_TTL,
                negative: DEFAULT_NEGATIVE_TTL,
                tempfail: DEFAULT_TEMPFAIL_TTL,
            },
            cache_size: DEFAULT_CACHE_SIZE,
        }
    }
}

impl VerifySettings {
    /// These settings with the system's nameservers filled in when none are set, read
    /// from `/etc/resolv.conf` once here rather than at every probe.
    fn with_nameservers(mut self) -> VerifySettings {
        if self.nameservers.is_empty() {
            self.nameservers = crate::driver::dns::system_nameservers();
        }
        self
    }
}

/// Called with the answer, on a probe thread.
pub type Waiter = Box<dyn FnOnce(&Answer) + Send>;

/// What [`Verifier::verify`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verify {
    /// The answer was in the cache; the waiter was not asked for.
    Cached(Answer),
    /// A probe runs (started now, or already running for the address); the waiter will be
    /// called with its answer.
    Waiting,
    /// Every probe thread is busy and the queue is full: answer [`busy_reply`] now. The
    /// waiter was not asked for.
    Busy,
}

/// What the verifier has done since it started, for the metrics endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyCounts {
    /// Probes that found the recipient valid (2xx).
    pub valid: u64,
    /// Probes that found it unknown (5xx).
    pub unknown: u64,
    /// Probes that could not tell (4xx, no next hop reachable, a timeout).
    pub unverified: u64,
    /// Answers given from the cache, no probe.
    pub cache_hits: u64,
    /// Verifications answered busy (every probe thread busy, the queue full).
    pub busy: u64,
    /// Answers in the cache now.
    pub cached: u64,
}

/// The counters behind [`VerifyCounts`].
#[derive(Debug, Default)]
struct Counters {
    valid: AtomicU64,
    unknown: AtomicU64,
    unverified: AtomicU64,
    cache_hits: AtomicU64,
    busy: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// One probe to run.
struct Job {
    key: String,
    address: String,
    domain: String,
    /// When it was queued: one that waited longer than a whole probe may take is answered
    /// without a probe (its callers have been waiting that long already).
    queued: Instant,
}

/// What the probe threads share with the callers.
struct Inner {
    settings: RwLock<Arc<VerifySettings>>,
    cache: Mutex<VerifyCache>,
    /// Addresses being probed, with everyone waiting for the answer.
    inflight: Mutex<HashMap<String, Vec<Waiter>>>,
    counters: Counters,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    fn settings(&self) -> Arc<VerifySettings> {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The probe pool and its cache (see the module doc). Dropping it lets the threads end
/// after their current probe.
pub struct Verifier {
    inner: Arc<Inner>,
    jobs: Sender<Job>,
    /// How many probe threads run (detached: each ends once the queue is gone).
    threads: usize,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("threads", &self.threads)
            .field("cached", &lock(&self.inner.cache).len())
            .finish()
    }
}

/// The cache key of an address: compared without regard to ASCII case.
fn key(address: &str) -> String {
    address.to_ascii_lowercase()
}

impl Verifier {
    /// Starts `threads` probe threads (at least one).
    pub fn start(settings: VerifySettings, threads: usize) -> std::io::Result<Verifier> {
        let settings = settings.with_nameservers();
        let threads = threads.max(1);
        let (jobs, queue) = crossbeam_channel::bounded(threads * QUEUE_PER_THREAD);
        let inner = Arc::new(Inner {
            cache: Mutex::new(VerifyCache::new(settings.cache_size)),
            settings: RwLock::new(Arc::new(settings)),
            inflight: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        });
        for i in 0..threads {
            let (inner, queue) = (inner.clone(), queue.clone());
            std::thread::Builder::new()
                .name(format!("impulse-verify-{i}"))
                .spawn(move || run(&inner, &queue))?;
        }
        Ok(Verifier {
            inner,
            jobs,
            threads,
        })
    }

    /// Puts new settings in force for the probes started from now on (routes, timeouts,
    /// TTLs, cache size). Answers already cached stay until they expire.
    pub fn reload(&self, settings: VerifySettings) {
        let settings = settings.with_nameservers();
        lock(&self.inner.cache).set_capacity(settings.cache_size);
        *self
            .inner
            .settings
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(settings);
    }

    /// What it has done so far (read at each metrics scrape).
    pub fn counts(&self) -> VerifyCounts {
        let c = &self.inner.counters;
        let read = |a: &AtomicU64| a.load(Ordering::Relaxed);
        VerifyCounts {
            valid: read(&c.valid),
            unknown: read(&c.unknown),
            unverified: read(&c.unverified),
            cache_hits: read(&c.cache_hits),
            busy: read(&c.busy),
            cached: lock(&self.inner.cache).len() as u64,
        }
    }

    /// The answer for `address` (of `domain`): from the cache, or later through the waiter
    /// `waiter()` makes (called only when the answer is not at hand). Never blocks.
    pub fn verify(&self, address: &str, domain: &str, waiter: impl FnOnce() -> Waiter) -> Verify {
        let key = key(address);
        let cached = |inner: &Inner| {
            let answer = lock(&inner.cache).get(&key, Instant::now());
            if answer.is_some() {
                bump(&inner.counters.cache_hits);
            }
            answer
        };
        if let Some(answer) = cached(&self.inner) {
            return Verify::Cached(answer);
        }
        let mut inflight = lock(&self.inner.inflight);
        // Again under the in-flight lock: a probe that ended since is not run twice.
        if let Some(answer) = cached(&self.inner) {
            return Verify::Cached(answer);
        }
        if let Some(waiters) = inflight.get_mut(&key) {
            waiters.push(waiter());
            return Verify::Waiting;
        }
        let job = Job {
            key: key.clone(),
            address: address.to_owned(),
            domain: domain.to_owned(),
            queued: Instant::now(),
        };
        match self.jobs.try_send(job) {
            Ok(()) => {
                // The thread that takes the job finds its waiters under this same lock.
                inflight.insert(key, vec![waiter()]);
                Verify::Waiting
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                bump(&self.inner.counters.busy);
                Verify::Busy
            }
        }
    }
}

/// A probe thread: takes jobs until the verifier is dropped.
fn run(inner: &Inner, queue: &Receiver<Job>) {
    while let Ok(job) = queue.recv() {
        let settings = inner.settings();
        if job.queued.elapsed() > settings.timeout {
            // Behind slow probes for longer than one may take: the queue is not kept
            // busy with work whose callers will have given up. Not cached.
            log::info!("verify <{}>: unverified (queued too long)", job.address);
            bump(&inner.counters.unverified);
            answer_waiters(
                inner,
                &job.key,
                &Answer::Unverified("queued too long".into()),
            );
            continue;
        }
        // A panic (a bug) must not leave the address in flight for good, its waiters
        // unanswered and this thread gone.
        let answer = std::panic::catch_unwind(AssertUnwindSafe(|| {
            probe::probe(&job.address, &job.domain, &settings)
        }))
        .unwrap_or_else(|_| Answer::Unverified("internal error".into()));
        bump(match &answer {
            Answer::Valid => &inner.counters.valid,
            Answer::Unknown(_) => &inner.counters.unknown,
            Answer::Unverified(_) => &inner.counters.unverified,
        });
        log::info!(
            "verify <{}>: {}",
            job.address,
            match &answer {
                Answer::Valid => "valid".to_owned(),
                Answer::Unknown(r) => format!("unknown ({})", one_line(r)),
                Answer::Unverified(why) => format!("unverified ({why})"),
            }
        );
        // Cached before the waiters are taken: a caller that misses the in-flight entry
        // finds the answer.
        let ttl = settings.ttls.of(&answer);
        lock(&inner.cache).insert(&job.key, answer.clone(), ttl, Instant::now());
        answer_waiters(inner, &job.key, &answer);
    }
}

/// Takes the address `key` out of flight and gives `answer` to everyone waiting for it
/// (a waiter that panics does not stop the others, nor the thread).
fn answer_waiters(inner: &Inner, key: &str, answer: &Answer) {
    let waiters = lock(&inner.inflight).remove(key).unwrap_or_default();
    for waiter in waiters {
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| waiter(answer)));
    }
}

#[cfg(test)]
mod tests;
