//! The relay's driver: the threads that carry out what the [`Scheduler`] decides.
//!
//! [`Relay::start`] takes an open [`Spool`] and [`RelaySettings`] and starts two threads:
//!
//! - **`impulse-relay`** owns the scheduler. It watches the spool for new commits
//!   ([`Spool::watch_commits`]), reloads every queued message with its state record at start,
//!   reads the wall clock once per turn, and carries out the scheduler's actions in order:
//!   state records written with [`Spool::write_state`] (before anything is acted on),
//!   messages read from the spool and handed to the [`smtp_client::Engine`], notifications
//!   built ([`crate::dsn`]) and committed to the spool as new mail from `<>`, finished
//!   messages removed.
//! - **`impulse-relay-dns`** answers route lookups: static routes and MX per RFC 5321 §5 /
//!   RFC 7505 ([`crate::route::resolve_domain`]) over a TTL cache and the stub resolver of
//!   [`dns`].
//!
//! The client engine runs its own mio thread; deliveries come back on its channel. No server
//! loop thread ever waits on any of this: the server only commits to the spool.
//!
//! Log lines, one per recipient and attempt, in the shape mail operators know:
//! `ID: to=<rcpt>, relay=host[ip]:port, delay=2.1, dsn=4.2.0, status=deferred (reply)`.
// The driver is where the relay meets the world: it reads the wall clock (record times
// survive restarts) and starts its threads.
#![allow(clippy::disallowed_methods)]

pub mod control;
pub mod dns;
mod hooks;
mod notify;
pub mod offline;
mod outcome;
mod reload;
pub mod stats;
mod writer;

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Select, Sender};
use smtp_client::{Dsn, Engine, Message, RcptDsn, SessionConfig, StateMachine, Ticket, TlsMode};
use smtp_proto::params::{ParamKind, Params};
use smtp_spool::{QueueId, Spool, SpoolError};

use crate::route::{resolve_domain, DnsCache, LocalHost, RouteOutcome, RouteTable, TlsPolicy};
use crate::schedule::{
    Action, AttemptId, Destination, MessageMeta, NextHop, RouteAnswer, ScheduleConfig,
    ScheduleError, Scheduler, Selection,
};
use crate::state::{MessageState, Timestamp};

/// How long a failed record write or notification waits before it is tried again.
const RETRY_IO: Duration = Duration::from_secs(1);

/// Notifications built and committed per turn of the relay thread's loop, between the
/// turns that take in arrivals, outcomes and commands: a mass bounce (an operator's
/// `bounce` of the whole queue, a mass expiry) is spread out rather than stalling delivery.
const NOTICES_PER_TURN: usize = 32;

/// Threads answering route lookups.
const DNS_THREADS: usize = 4;

/// The longest the relay thread sleeps without looking at the clock.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// A notification due: the recipients of message `id` it reports on, and why.
struct Notice {
    id: QueueId,
    kind: crate::schedule::BounceKind,
    recipients: Vec<crate::schedule::BounceRecipient>,
}

/// Everything the relay needs besides the spool.
#[derive(Clone)]
pub struct RelaySettings {
    /// Retry policy, connections per destination, jitter seed.
    pub schedule: ScheduleConfig,
    /// Static routes and the port for MX hosts.
    pub routes: RouteTable,
    /// This host, for MX loop detection.
    pub local: LocalHost,
    /// The name in EHLO, `Reporting-MTA` and notifications' `From: MAILER-DAEMON@`.
    pub hostname: String,
    /// Recursive nameservers to ask (empty: `/etc/resolv.conf`'s).
    pub nameservers: Vec<std::net::SocketAddr>,
    /// Time allowed per DNS query and server.
    pub dns_timeout: Duration,
    /// Messages sent over one connection before it is closed.
    pub messages_per_connection: u32,
    /// Connections open at once, to all destinations together.
    pub connections: usize,
    /// The client state machine, with the states plugins registered (`None`: the built-in
    /// states only).
    pub machine: Option<Arc<StateMachine>>,
    /// How long a shutdown waits for deliveries in flight.
    pub shutdown_grace: Duration,
    /// The plugins whose relay-side hooks (route, attempt, delivery outcome, bounce) the
    /// relay dispatches (`None`: no hooks).
    pub registry: Option<Arc<hooks_api::Registry>>,
}

impl std::fmt::Debug for RelaySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelaySettings")
            .field("schedule", &self.schedule)
            .field("routes", &self.routes)
            .field("hostname", &self.hostname)
            .field("nameservers", &self.nameservers)
            .field("messages_per_connection", &self.messages_per_connection)
            .field("connections", &self.connections)
            .finish_non_exhaustive()
    }
}

impl RelaySettings {
    /// Settings with these routes and defaults for the rest (retry policy of
    /// [`ScheduleConfig::default`], the system's nameservers, 5 s DNS timeout, 1,000 messages
    /// per connection, 1,000 connections in all).
    pub fn new(routes: RouteTable, hostname: impl Into<String>) -> RelaySettings {
        RelaySettings {
            schedule: ScheduleConfig::default(),
            routes,
            local: LocalHost::default(),
            hostname: hostname.into(),
            nameservers: Vec::new(),
            dns_timeout: Duration::from_secs(5),
            messages_per_connection: 1000,
            connections: 1000,
            machine: None,
            shutdown_grace: Duration::from_secs(10),
            registry: None,
        }
    }
}

/// An operator's command to a running relay (the queue commands).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Attempt now.
    Flush(Selection),
    /// Neither attempt nor expire until released.
    Hold(Selection),
    /// Undo a hold.
    Release(Selection),
    /// Remove without notification.
    Delete(Selection),
    /// Bounce now, with a notification.
    Bounce(Selection),
}

#[derive(Debug)]
enum Input {
    Command(Command, Sender<usize>),
    /// New settings (see [`reload`]).
    Reload(Box<RelaySettings>),
    /// A scrape asks for the queue as it stands.
    Snapshot(stats::SnapshotRequest),
    Shutdown,
}

/// Sends operator commands to a running [`Relay`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct Commander {
    tx: Sender<Input>,
}

impl Commander {
    /// Carries out `command` on the relay thread; how many messages it applied to (`None`
    /// when the relay has stopped or did not answer within 30 s).
    pub fn command(&self, command: Command) -> Option<usize> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.tx.send(Input::Command(command, tx)).ok()?;
        rx.recv_timeout(Duration::from_secs(30)).ok()
    }

    /// Hands new settings to the relay thread (see [`Relay::reload`]); `false` when the
    /// relay has stopped.
    pub fn reload(&self, settings: RelaySettings) -> bool {
        self.tx.send(Input::Reload(Box::new(settings))).is_ok()
    }
}

/// A running relay (see the module doc). Dropping it shuts it down.
#[derive(Debug)]
pub struct Relay {
    tx: Sender<Input>,
    thread: Option<JoinHandle<()>>,
    stats: stats::RelayStats,
}

impl Relay {
    /// Starts the relay over `spool`: reloads what is queued, then delivers as mail arrives.
    pub fn start(spool: Spool, settings: RelaySettings) -> io::Result<Relay> {
        let mut session = SessionConfig::new(settings.hostname.clone());
        session.policy.tls = TlsMode::Opportunistic;
        let mut engine = Engine::builder(std::net::SocketAddr::from(([127, 0, 0, 1], 25)))
            .connections(settings.connections.max(1))
            .max_deliveries_per_connection(settings.messages_per_connection.max(1))
            .idle_timeout(Duration::from_secs(10))
            .queue_capacity(1 << 16)
            .session(session);
        if let Some(m) = &settings.machine {
            engine = engine.machine(m.clone());
        }
        let engine = engine
            .build()
            .map_err(|e| io::Error::other(e.to_string()))?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut dns_tx = Vec::with_capacity(DNS_THREADS);
        let relay_stats = stats::RelayStats::default();
        let (route_tx, route_rx) = crossbeam_channel::unbounded();
        let nameservers = resolve_nameservers(settings.nameservers.clone());
        // A few lookups at once, so one slow domain does not hold up the others. Each
        // thread keeps its own cache and always gets the same domains (by hash), so a
        // domain's answers are cached once.
        for n in 0..DNS_THREADS {
            let (tx, dns_rx) = crossbeam_channel::unbounded::<reload::DnsRequest>();
            dns_tx.push(tx);
            let dns = DnsThread {
                routes: settings.routes.clone(),
                local: settings.local.clone(),
                resolver: dns::StubResolver::new(nameservers.clone(), settings.dns_timeout),
                cache: DnsCache::default(),
                seed: settings.schedule.seed ^ 0x9e37_79b9_7f4a_7c15 ^ n as u64,
                registry: settings.registry.clone(),
                hostname: settings.hostname.clone(),
                stats: relay_stats.clone(),
            };
            let (requests, answers) = (dns_rx, route_tx.clone());
            std::thread::Builder::new()
                .name(format!("impulse-relay-dns-{n}"))
                .spawn(move || dns.run(requests, answers))?;
        }
        drop(route_tx);
        let commits = spool.watch_commits();
        let (io_tx, io_done) = crossbeam_channel::unbounded();
        let io_pool = writer::IoPool::start(&spool, io_tx)?;
        let state = Driver {
            scheduler: Scheduler::new(settings.schedule.clone()),
            spool,
            settings,
            deliveries: engine.deliveries(),
            engine: Some(engine),
            commits,
            dns: dns_tx,
            routes: route_rx,
            inputs: rx,
            tickets: HashMap::new(),
            envelopes: HashMap::new(),
            tls: HashMap::new(),
            last_hop: HashMap::new(),
            retry: VecDeque::new(),
            notices: VecDeque::new(),
            stopping: None,
            offline: false,
            io: Some(io_pool),
            io_done,
            stats: relay_stats.clone(),
            classes_seen: stats::ClassesSeen::new(),
        };
        let thread = std::thread::Builder::new()
            .name("impulse-relay".into())
            .spawn(move || state.run())?;
        Ok(Relay {
            tx,
            thread: Some(thread),
            stats: relay_stats,
        })
    }

    /// Puts new settings in force for what comes next: routes (the DNS threads' table),
    /// nameservers and DNS timeout (a new resolver, an empty DNS cache, when they changed),
    /// retry policy, connections per destination, messages per connection. Queued messages
    /// keep their records and schedules: a new interval applies from a recipient's next
    /// failure on, a new `max_age` at its next check. The rest of `settings` (host name,
    /// connections in all, client states, hooks, seed) is not read: it changes with a
    /// restart.
    pub fn reload(&self, settings: RelaySettings) {
        self.commander().reload(settings);
    }

    /// The relay's counters (deliveries, bounce classes, route lookups, record writes,
    /// notifications), for a metrics endpoint.
    pub fn stats(&self) -> stats::RelayStats {
        self.stats.clone()
    }

    /// Asks for the queue as it stands (messages and recipients by status, by destination),
    /// from a scrape: see [`stats::QueueProbe`].
    pub fn queue_probe(&self) -> stats::QueueProbe {
        let tx = self.tx.clone();
        stats::QueueProbe::new(move |request| tx.send(Input::Snapshot(request)).is_ok())
    }

    /// Carries out an operator command; returns how many messages it applied to.
    pub fn command(&self, command: Command) -> Option<usize> {
        self.commander().command(command)
    }

    /// A handle that sends operator commands to this relay from another thread (the control
    /// socket's).
    pub fn commander(&self) -> Commander {
        Commander {
            tx: self.tx.clone(),
        }
    }

    /// Stops: nothing new is attempted, deliveries in flight get the shutdown grace to
    /// finish, then the threads end. Blocks until they have.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.tx.send(Input::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The wall clock as the scheduler counts it.
fn wall_clock() -> Timestamp {
    Timestamp(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}

/// What the envelope says that the relay needs after enqueueing.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    pub(crate) sender: String,
    pub(crate) mail_params: String,
    pub(crate) received: u64,
}

/// A delivery handed to the engine.
#[derive(Debug)]
struct InFlight {
    attempt: AttemptId,
    id: QueueId,
    hops: Destination,
    recipients: Vec<u32>,
    /// Recipients of the batch the attempt hooks decided (left out of the attempt).
    screen: hooks::Screen,
    /// The envelope sender, and each attempted recipient's `NOTIFY` (for a `relayed`
    /// notification when a next hop without DSN accepts a recipient that asked SUCCESS).
    sender: String,
    notify: Vec<Option<smtp_proto::params::Notify>>,
}

/// An action that failed on I/O and waits to be tried again.
#[derive(Debug)]
struct Retry {
    at: Instant,
    action: Action,
}

struct Driver {
    scheduler: Scheduler,
    spool: Spool,
    settings: RelaySettings,
    engine: Option<Engine>,
    deliveries: Receiver<smtp_client::Delivery>,
    commits: Receiver<QueueId>,
    /// The DNS threads' request queues; a domain always goes to the same one.
    dns: Vec<Sender<reload::DnsRequest>>,
    routes: Receiver<(String, RouteAnswer, TlsPolicy)>,
    inputs: Receiver<Input>,
    tickets: HashMap<Ticket, InFlight>,
    envelopes: HashMap<QueueId, Meta>,
    tls: HashMap<Destination, TlsPolicy>,
    /// The next hop that last answered for each recipient (`Remote-MTA` in notifications).
    last_hop: HashMap<QueueId, HashMap<u32, String>>,
    retry: VecDeque<Retry>,
    /// Notifications due, built and committed [`NOTICES_PER_TURN`] at a time.
    notices: VecDeque<Notice>,
    stopping: Option<Instant>,
    /// No delivery: operator commands applied to a spool no relay runs on.
    offline: bool,
    /// The record writers and removers (`None`: done on this thread, offline).
    io: Option<writer::IoPool>,
    /// Their reports.
    io_done: Receiver<writer::Done>,
    /// The relay's counters.
    stats: stats::RelayStats,
    /// The bounce-class counters this thread counted into before.
    classes_seen: stats::ClassesSeen,
}

impl Driver {
    fn run(mut self) {
        self.reload();
        loop {
            let now = wall_clock();
            self.scheduler.handle_timeout(now);
            self.take_inputs(now);
            self.act();
            self.notify_some();
            if let Some(since) = self.stopping {
                if self.scheduler.is_quiescent() || since.elapsed() >= self.settings.shutdown_grace
                {
                    break;
                }
            }
            self.wait();
        }
        if let Some(engine) = self.engine.take() {
            engine.shutdown();
        }
        log::info!("relay stopped");
    }

    /// Enqueues every message already in the spool, with its record.
    fn reload(&mut self) {
        // Each message is opened once, by `enqueue` (not first by a listing).
        let ids = match self.spool.queued_ids() {
            Ok(ids) => ids,
            Err(e) => {
                log::error!("relay: cannot list the spool: {e}");
                return;
            }
        };
        let n = ids.len();
        for id in ids {
            self.enqueue(id, wall_clock());
        }
        if n > 0 {
            log::info!("relay: {n} queued messages reloaded");
        }
    }

    /// Reads a message's envelope and state record and gives it to the scheduler.
    fn enqueue(&mut self, id: QueueId, now: Timestamp) {
        if self.scheduler.message(id).is_some() {
            return;
        }
        let (envelope, size) = match self.spool.read_envelope_and_size(id) {
            Ok(found) => found,
            Err(SpoolError::NotFound(_)) => return,
            Err(e) => {
                log::error!("{id}: cannot read the envelope: {e}");
                return;
            }
        };
        let state = match self.spool.read_state(id) {
            Ok(Some(record)) => match MessageState::decode(&record) {
                Ok(state) => state,
                Err(e) => {
                    // Never reset to pending: that could deliver again what was done.
                    log::error!("{id}: state record unusable ({e}): quarantined");
                    if let Err(e) = self.spool.quarantine(id) {
                        log::error!("{id}: quarantine failed: {e}");
                    }
                    return;
                }
            },
            Ok(None) => MessageState::new(
                Timestamp(envelope.received),
                envelope
                    .recipients
                    .iter()
                    .map(|r| (r.address.as_str(), r.params.as_str())),
            ),
            Err(e) => {
                log::error!("{id}: cannot read the state record: {e}");
                return;
            }
        };
        let meta = MessageMeta {
            sender: envelope.sender.clone(),
            size,
            state,
        };
        match self.scheduler.handle_enqueue(id, meta, now) {
            Ok(()) => {
                self.envelopes.insert(
                    id,
                    Meta {
                        sender: envelope.sender,
                        mail_params: envelope.mail_params,
                        received: envelope.received,
                    },
                );
            }
            Err(ScheduleError::Duplicate(_) | ScheduleError::ShutDown) => {}
            Err(e) => log::error!("{id}: not queued for delivery: {e}"),
        }
    }

    fn take_inputs(&mut self, now: Timestamp) {
        while let Ok(id) = self.commits.try_recv() {
            if self.stopping.is_none() {
                self.enqueue(id, now);
            }
        }
        while let Ok((domain, answer, tls)) = self.routes.try_recv() {
            if let RouteAnswer::Hops(hops) = &answer {
                self.tls.insert(hops.clone(), tls);
            }
            self.scheduler.handle_route(&domain, answer);
        }
        while let Ok(delivery) = self.deliveries.try_recv() {
            self.delivered(delivery);
        }
        while let Ok(done) = self.io_done.try_recv() {
            match done {
                writer::Done::Persisted(id) => {
                    self.stats.record_written(true);
                    self.scheduler.handle_persisted(id);
                }
                writer::Done::Failed { id, record, error } => {
                    self.stats.record_written(false);
                    log::error!("{id}: state record not written ({error}); retrying");
                    self.later(Action::Persist { id, record });
                }
            }
        }
        while let Ok(input) = self.inputs.try_recv() {
            match input {
                Input::Shutdown => {
                    if self.stopping.is_none() {
                        self.stopping = Some(Instant::now());
                        self.scheduler.handle_shutdown();
                    }
                }
                Input::Reload(settings) => self.reload_settings(*settings),
                Input::Snapshot(reply) => {
                    let snap = stats::QueueSnapshot::of(self.scheduler.messages());
                    let _ = reply.send(Arc::new(snap));
                }
                Input::Command(c, reply) => {
                    let n = match &c {
                        Command::Flush(s) => self.scheduler.handle_flush(s),
                        Command::Hold(s) => self.scheduler.handle_hold(s),
                        Command::Release(s) => self.scheduler.handle_release(s),
                        Command::Delete(s) => self.scheduler.handle_delete(s),
                        Command::Bounce(s) => self.scheduler.handle_bounce(s),
                    };
                    let _ = reply.send(n);
                }
            }
        }
        let due = Instant::now();
        while self.retry.front().is_some_and(|r| r.at <= due) {
            if let Some(r) = self.retry.pop_front() {
                self.carry_out(r.action);
            }
        }
    }

    /// Carries out every action the scheduler has, in order.
    fn act(&mut self) {
        while let Some(action) = self.scheduler.poll_action() {
            self.carry_out(action);
        }
    }

    fn carry_out(&mut self, action: Action) {
        match action {
            Action::Resolve { .. } | Action::Deliver { .. } if self.offline => {}
            Action::Resolve { domain } => {
                if !self.dns.is_empty() {
                    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
                    let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(&domain);
                    let queue = &self.dns[(hash % self.dns.len() as u64) as usize];
                    let _ = queue.send(reload::DnsRequest::Lookup(domain));
                }
            }
            // A record saying the message is done would be removed with it at once: the
            // removal is the record (a crash in between delivers it again, never loses it).
            Action::Persist { id, .. }
                if self.scheduler.message(id).is_some_and(|m| m.is_done()) =>
            {
                self.scheduler.handle_persisted(id);
            }
            Action::Persist { id, record } => match &self.io {
                Some(io) => io.submit(writer::Job::Persist { id, record }),
                None => match self.spool.write_state(id, &record) {
                    Ok(()) => self.scheduler.handle_persisted(id),
                    Err(e) => {
                        log::error!("{id}: state record not written ({e}); retrying");
                        self.later(Action::Persist { id, record });
                    }
                },
            },
            Action::Deliver {
                attempt,
                hops,
                id,
                recipients,
            } => self.deliver(attempt, hops, id, recipients),
            Action::Bounce {
                id,
                kind,
                recipients,
            } => self.notices.push_back(Notice {
                id,
                kind,
                recipients,
            }),
            Action::Complete { id } => {
                match &self.io {
                    Some(io) => io.submit(writer::Job::Remove { id }),
                    None => match self.spool.remove(id) {
                        // The spool logs the removal itself.
                        Ok(()) | Err(SpoolError::NotFound(_)) => {}
                        Err(e) => log::error!("{id}: not removed: {e}"),
                    },
                }
                self.last_hop.remove(&id);
                self.envelopes.remove(&id);
            }
        }
    }

    /// Builds and commits up to [`NOTICES_PER_TURN`] of the notifications due, then carries
    /// out what the scheduler does next (the records that mark their recipients bounced).
    fn notify_some(&mut self) {
        for _ in 0..NOTICES_PER_TURN {
            let Some(Notice {
                id,
                kind,
                recipients,
            }) = self.notices.pop_front()
            else {
                break;
            };
            let meta = self.envelopes.get(&id).cloned();
            self.log_unattempted(id, meta.as_ref(), kind, &recipients);
            let hops = &self.last_hop;
            let remote = |index: u32| hops.get(&id).and_then(|m| m.get(&index)).cloned();
            let occasion = notify::Occasion {
                hostname: &self.settings.hostname,
                id,
                kind,
                max_age: self
                    .settings
                    .schedule
                    .retry
                    .max_age_for(meta.as_ref().is_some_and(|m| m.sender.is_empty())),
                remote: &remote,
                registry: self.settings.registry.as_deref(),
            };
            match notify::queue(&self.spool, &occasion, meta.as_ref(), &recipients) {
                Ok(Some(new)) => {
                    log::info!("{id}: sender notification ({kind:?}): {new}");
                    self.stats.notification(kind);
                    self.scheduler.handle_bounce_queued(id);
                }
                Ok(None) => self.scheduler.handle_bounce_queued(id),
                Err(e) => {
                    log::error!("{id}: notification not queued ({e}); retrying");
                    self.later(Action::Bounce {
                        id,
                        kind,
                        recipients,
                    });
                }
            }
        }
        self.act();
    }

    /// The log lines of recipients that fail without a delivery of theirs saying so:
    /// expired (`status=expired`), routing failures and an operator's bounce.
    fn log_unattempted(
        &self,
        id: QueueId,
        meta: Option<&Meta>,
        kind: crate::schedule::BounceKind,
        recipients: &[crate::schedule::BounceRecipient],
    ) {
        if kind != crate::schedule::BounceKind::Failed {
            return;
        }
        let delay = meta
            .map(|m| wall_clock().since(Timestamp(m.received)).as_secs_f64())
            .unwrap_or(0.0);
        for r in recipients {
            let (status, word) = match r.status.as_str() {
                "4.4.7" => ("expired", stats::OutcomeWord::Expired),
                "5.0.0" | "5.1.2" | "5.1.10" | "5.4.6" => ("bounced", stats::OutcomeWord::Bounced),
                // A next hop's refusal, logged when its delivery came back.
                _ => continue,
            };
            self.stats.delivery(word);
            let why = if r.reply.is_empty() {
                "no attempt"
            } else {
                r.reply.as_str()
            };
            log::info!(
                "{id}: to=<{}>, relay=none, delay={delay:.1}, dsn={}, status={status} ({why})",
                r.address,
                r.status,
            );
        }
    }

    fn later(&mut self, action: Action) {
        self.retry.push_back(Retry {
            at: Instant::now() + RETRY_IO,
            action,
        });
    }

    fn deliver(
        &mut self,
        attempt: AttemptId,
        hops: Destination,
        id: QueueId,
        recipients: Vec<u32>,
    ) {
        let fail = |this: &mut Driver, why: String| {
            let outcomes = recipients
                .iter()
                .map(|_| crate::schedule::RecipientOutcome::LocalFailure(why.clone()))
                .collect();
            this.scheduler.handle_outcome(
                attempt,
                crate::schedule::AttemptReport {
                    outcomes,
                    ..Default::default()
                },
            );
        };
        let (Some(meta), Some(state)) = (self.envelopes.get(&id), self.scheduler.message(id))
        else {
            return fail(self, "451 4.3.0 message not in the queue".into());
        };
        let addresses: Vec<String> = recipients
            .iter()
            .filter_map(|&i| state.recipients.get(i as usize).map(|r| r.address.clone()))
            .collect();
        let (registry, hostname) = (self.settings.registry.as_deref(), &self.settings.hostname);
        let screen = hooks::screen(registry, hostname, id, meta, &recipients, state);
        screen.remember(self.last_hop.entry(id).or_default(), &recipients, hostname);
        if screen.is_whole(recipients.len()) {
            let report = screen.merge(recipients.len(), Default::default());
            return self.scheduler.handle_outcome(attempt, report);
        }
        let addresses = screen.attempted(&addresses);
        let sender = meta.sender.clone();
        // The DSN parameters, passed on to next hops that offer DSN (RFC 3461 §5.2).
        let mail = Params::parse(meta.mail_params.trim().as_bytes(), ParamKind::Mail, true)
            .map(Params::into_owned)
            .unwrap_or_default();
        let all: Vec<RcptDsn> = recipients
            .iter()
            .map(|&i| {
                state
                    .recipients
                    .get(i as usize)
                    .map(|r| rcpt_dsn(&r.params))
                    .unwrap_or_default()
            })
            .collect();
        let rcpt_dsn = screen.attempted(&all);
        let notify = rcpt_dsn.iter().map(|r| r.notify).collect();
        let dsn = Dsn {
            ret: mail.ret,
            envid: mail.envid.map(|e| e.into_owned()),
            recipients: rcpt_dsn,
        };
        let body = match read_body(&self.spool, id) {
            Ok(b) => b,
            Err(e) => {
                log::error!("{id}: cannot read the message: {e}");
                return fail(
                    self,
                    format!("451 4.3.0 cannot read the queued message: {e}"),
                );
            }
        };
        let tls = self
            .tls
            .get(&hops)
            .copied()
            .unwrap_or(TlsPolicy::Opportunistic);
        let (mode, verify) = tls.client_settings();
        let destination = smtp_client::Destination::new(
            hops.iter()
                .map(|h| smtp_client::NextHop::named(h.addr, h.host.to_string())),
        )
        .tls(mode)
        .verify(verify)
        .max_connections(self.settings.schedule.connections_per_destination)
        .max_deliveries_per_connection(self.settings.messages_per_connection);
        let message = Message::new(sender.clone(), addresses, body).with_dsn(dsn);
        let Some(engine) = &self.engine else {
            return fail(self, "451 4.3.2 the relay is stopping".into());
        };
        match engine.submit_to(destination, message) {
            Ok(ticket) => {
                self.tickets.insert(
                    ticket,
                    InFlight {
                        attempt,
                        id,
                        hops,
                        recipients,
                        screen,
                        sender,
                        notify,
                    },
                );
            }
            Err(e) => fail(self, format!("451 4.3.0 delivery engine: {e}")),
        }
    }

    fn delivered(&mut self, delivery: smtp_client::Delivery) {
        let Some(flight) = self.tickets.remove(&delivery.ticket) else {
            return;
        };
        let arrival = self
            .envelopes
            .get(&flight.id)
            .map(|m| m.received)
            .unwrap_or_default();
        let mut report = outcome::report(&delivery, &flight.hops);
        outcome::owe_relayed(
            &mut report,
            &flight.sender,
            &flight.notify,
            delivery.dsn_offered,
        );
        let (registry, hostname) = (self.settings.registry.as_deref(), &self.settings.hostname);
        let meta = self.envelopes.get(&flight.id);
        hooks::outcomes(registry, hostname, flight.id, meta, &delivery, &mut report);
        let relay = delivery
            .next_hop
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_else(|| "none".into());
        let delay = SystemTime::now()
            .duration_since(UNIX_EPOCH + Duration::from_secs(arrival))
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let classifier = registry.map_or_else(smtp_proto::classify::global, |r| r.classifier());
        for (o, r) in report.outcomes.iter().zip(&delivery.outcomes) {
            let word = stats::OutcomeWord::of(o.verdict());
            self.stats.delivery(word);
            if word != stats::OutcomeWord::Sent {
                let class = classifier.classify_reply_text(o.text()).id;
                self.stats
                    .failure_class((word, class), &mut self.classes_seen);
            }
            let (status, dsn) = outcome::log_words(o);
            log::info!(
                "{}: to=<{}>, relay={relay}, delay={delay:.1}, dsn={dsn}, status={status} ({})",
                flight.id,
                r.recipient,
                o.text(),
            );
        }
        if let Some(hop) = &delivery.next_hop {
            let name = hop
                .name
                .clone()
                .unwrap_or_else(|| hop.addr.ip().to_string());
            let known = self.last_hop.entry(flight.id).or_default();
            for &i in &flight.screen.attempted(&flight.recipients) {
                known.insert(i, name.clone());
            }
        }
        let report = flight.screen.merge(flight.recipients.len(), report);
        self.scheduler.handle_outcome(flight.attempt, report);
    }

    /// Sleeps until an input arrives or the scheduler's next due time.
    fn wait(&mut self) {
        if !self.notices.is_empty() {
            // More notifications are due: take in what arrived, then build the next ones.
            return;
        }
        let now = wall_clock();
        let mut sleep = match self.scheduler.poll_timeout() {
            Some(at) if at <= now => Duration::ZERO,
            Some(at) => at.since(now).min(MAX_SLEEP),
            None => MAX_SLEEP,
        };
        if let Some(r) = self.retry.front() {
            sleep = sleep.min(r.at.saturating_duration_since(Instant::now()));
        }
        if self.stopping.is_some() {
            sleep = sleep.min(Duration::from_millis(100));
        }
        if sleep.is_zero() {
            // Due now, but wall-clock seconds: never spin within the second.
            sleep = Duration::from_millis(50);
        }
        let mut select = Select::new();
        select.recv(&self.commits);
        select.recv(&self.routes);
        select.recv(&self.deliveries);
        select.recv(&self.inputs);
        select.recv(&self.io_done);
        let _ = select.ready_timeout(sleep);
    }
}

/// A recipient's DSN parameters (`NOTIFY`, `ORCPT`) from its stored RCPT parameters.
fn rcpt_dsn(params: &str) -> RcptDsn {
    match Params::parse(params.trim().as_bytes(), ParamKind::Rcpt, true) {
        Ok(p) => RcptDsn {
            notify: p.notify,
            orcpt: p.orcpt.map(|o| smtp_proto::params::Orcpt {
                addr_type: o.addr_type.into_owned().into(),
                addr: o.addr.into_owned().into(),
            }),
        },
        Err(_) => RcptDsn::default(),
    }
}

/// The whole stored message (headers and body), checksum verified.
fn read_body(spool: &Spool, id: QueueId) -> io::Result<Vec<u8>> {
    let mut reader = spool.open_message(id).map_err(io::Error::other)?;
    let mut body = Vec::with_capacity(usize::try_from(reader.len()).unwrap_or(0));
    reader.read_to_end(&mut body)?;
    Ok(body)
}

/// The nameservers to ask: those configured, or the system's when none are.
fn resolve_nameservers(configured: Vec<std::net::SocketAddr>) -> Vec<std::net::SocketAddr> {
    if configured.is_empty() {
        dns::system_nameservers()
    } else {
        configured
    }
}

/// The DNS thread: route lookups, one at a time, cached.
struct DnsThread {
    routes: RouteTable,
    local: LocalHost,
    resolver: dns::StubResolver,
    cache: DnsCache,
    seed: u64,
    registry: Option<Arc<hooks_api::Registry>>,
    hostname: String,
    stats: stats::RelayStats,
}

impl DnsThread {
    fn run(
        mut self,
        requests: Receiver<reload::DnsRequest>,
        answers: Sender<(String, RouteAnswer, TlsPolicy)>,
    ) {
        let mut rng = crate::retry::SplitMix64::new(self.seed);
        for request in requests {
            let domain = match request {
                reload::DnsRequest::Lookup(domain) => domain,
                reload::DnsRequest::Routes(routes) => {
                    self.routes = routes;
                    continue;
                }
                reload::DnsRequest::Resolver {
                    nameservers,
                    timeout,
                } => {
                    self.resolver =
                        dns::StubResolver::new(resolve_nameservers(nameservers), timeout);
                    self.cache = DnsCache::default();
                    continue;
                }
            };
            let now = Instant::now();
            self.cache.expire(now);
            let mut cached = crate::route::Cached {
                cache: &mut self.cache,
                inner: &mut self.resolver,
                now,
            };
            let outcome = resolve_domain(
                &domain,
                &self.routes,
                &self.local,
                &mut cached,
                rng.next_u64(),
            );
            let registry = self.registry.as_deref();
            let (answer, tls) = hooks::route(registry, &self.hostname, &domain, outcome);
            log::debug!("relay: route for {domain}: {answer:?}");
            self.stats.lookup(&answer);
            if answers.send((domain, answer, tls)).is_err() {
                return;
            }
        }
    }
}

/// The scheduler's view of a routing outcome, and the TLS policy of its hops.
fn route_answer(outcome: RouteOutcome) -> (RouteAnswer, TlsPolicy) {
    match outcome {
        RouteOutcome::Hops(hops) => {
            let tls = hops
                .first()
                .map(|h| h.tls)
                .unwrap_or(TlsPolicy::Opportunistic);
            let hops: Destination = hops
                .into_iter()
                .map(|h| NextHop {
                    host: Arc::from(h.name.as_str()),
                    addr: h.addr,
                })
                .collect();
            if hops.is_empty() {
                (
                    RouteAnswer::Temporary("451 4.4.4 no address for any next hop".into()),
                    tls,
                )
            } else {
                (RouteAnswer::Hops(hops), tls)
            }
        }
        RouteOutcome::Permanent(reply) => {
            let answer = match reply.status().map(|s| s.to_string()).as_deref() {
                Some("5.1.10") => RouteAnswer::NullMx,
                Some("5.4.6") => RouteAnswer::MxLoop,
                _ => RouteAnswer::NoSuchDomain,
            };
            (answer, TlsPolicy::Opportunistic)
        }
        RouteOutcome::Temporary(reply) => (
            RouteAnswer::Temporary(outcome::reply_line(&reply)),
            TlsPolicy::Opportunistic,
        ),
    }
}
