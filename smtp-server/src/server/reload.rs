//! Reloading a running server's configuration (SIGHUP, or [`Reloader::reload`]) without
//! dropping a connection.
//!
//! What may change is kept behind one `Arc<Settings>`: the factory configuration (limits,
//! timeouts, banner, SMTP policy, the TLS switches) and the rustls configuration
//! (certificate and key). A reload builds a new `Settings` and swaps it in; each loop
//! notices the new generation when it next accepts (one relaxed load per accept when
//! nothing changed) and gives new connections the new `Arc`, while every connection keeps
//! the one it started with, for its whole session (a STARTTLS after the reload still
//! presents the old certificate). The connection caps (`limits.connections`,
//! `connections_per_ip`, `exempt_loopback`) are counters shared by every connection, so
//! they take their new values at once. A configuration that does not validate, or whose
//! certificate does not load, is refused with a log line and the running one stays.
//!
//! What it does not reload: the listeners, loop and pool threads, the spool, the host
//! name, the plugins and `[metrics]` (a warning names a changed key: it takes effect at
//! the next start), nor `timeouts.shutdown_grace`. Relay control (`[relay] domains`,
//! `networks`, `recipients`) takes its new table at once, for every RCPT from then on; a
//! recipients file that does not load refuses the reload like any other error. Subsystems beside the server (the relay)
//! receive each accepted configuration through
//! [`ServerBuilder::on_reload`](crate::server::ServerBuilder::on_reload).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::limits::ConnLimits;
use super::relay_watch::RelaySwap;
use super::ServerError;
use crate::config::{BareLineEndingPolicy, ServerConfig};
use crate::factory::FactoryConfig;
use smtp_proto::command::Leniency;
use smtp_proto::data::BareLineEndings;

/// What a reload may change, as new connections take it.
#[derive(Debug)]
pub(crate) struct Settings {
    /// The factory configuration of new sessions.
    pub factory: Arc<FactoryConfig>,
    /// STARTTLS for new sessions, when a certificate is configured.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// A subscriber to accepted configurations (see [`ServerBuilder::on_reload`]).
///
/// [`ServerBuilder::on_reload`]: crate::server::ServerBuilder::on_reload
pub(crate) type OnReload = Box<dyn Fn(&ServerConfig) + Send + Sync>;

/// The current [`Settings`] and what a reload needs to make the next ones.
pub(crate) struct Reloadable {
    current: RwLock<(Arc<Settings>, u64)>,
    /// The generation of `current`, read without the lock.
    generation: AtomicU64,
    /// The connection caps, shared with the loops.
    limits: Arc<ConnLimits>,
    /// The configuration now in force (to tell what changed).
    config: Mutex<ServerConfig>,
    /// The TLS configuration came from the embedder ([`ServerBuilder::tls`]), not from
    /// `[tls]`: a reload keeps it unless `[tls]` names a certificate.
    ///
    /// [`ServerBuilder::tls`]: crate::server::ServerBuilder::tls
    tls_from_builder: bool,
    subscribers: Vec<OnReload>,
    /// Relay control, swapped by each reload (`None`: an embedder's test server without it).
    relay: Option<RelaySwap>,
}

impl std::fmt::Debug for Reloadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloadable")
            .field("generation", &self.generation.load(Ordering::Relaxed))
            .field("subscribers", &self.subscribers.len())
            .finish_non_exhaustive()
    }
}

impl Reloadable {
    pub(crate) fn new(
        settings: Settings,
        limits: Arc<ConnLimits>,
        config: ServerConfig,
        tls_from_builder: bool,
        subscribers: Vec<OnReload>,
    ) -> Reloadable {
        Reloadable {
            current: RwLock::new((Arc::new(settings), 0)),
            generation: AtomicU64::new(0),
            limits,
            config: Mutex::new(config),
            tls_from_builder,
            subscribers,
            relay: None,
        }
    }

    /// Reloads swap `relay` too.
    pub(crate) fn with_relay(mut self, relay: RelaySwap) -> Reloadable {
        self.relay = Some(relay);
        self
    }

    /// The current settings and their generation.
    pub(crate) fn current(&self) -> (Arc<Settings>, u64) {
        let guard = self.current.read();
        (guard.0.clone(), guard.1)
    }

    /// The current settings when they are newer than generation `seen`.
    pub(crate) fn newer_than(&self, seen: u64) -> Option<(Arc<Settings>, u64)> {
        if self.generation.load(Ordering::Acquire) == seen {
            return None;
        }
        Some(self.current())
    }

    /// Validates `config`, builds the settings it describes (loading the certificate) and
    /// swaps them in; on any error nothing changes.
    fn reload(&self, config: ServerConfig) -> Result<(), ServerError> {
        config.validate()?;
        let (old, generation) = self.current();
        let tls = match (&config.tls.cert, &config.tls.key) {
            (Some(cert), Some(key)) => Some(super::tls::load_server_config(cert, key)?),
            _ if self.tls_from_builder => old.tls.clone(),
            _ => None,
        };
        let relay = RelaySwap::prepare(config.relay.as_ref())?;
        let mut factory = FactoryConfig::clone(&old.factory);
        apply(&mut factory, &config, tls.is_some());
        let mut running = self.config.lock();
        warn_unchanged(&running, &config);
        let settings = Arc::new(Settings {
            factory: Arc::new(factory),
            tls,
        });
        {
            let mut current = self.current.write();
            *current = (settings, generation + 1);
            self.generation.store(generation + 1, Ordering::Release);
        }
        let l = &config.limits;
        self.limits.set(
            l.connections,
            l.connections_per_ip,
            l.exempt_loopback,
            l.connection_rate_per_ip,
        );
        if let Some(swap) = &self.relay {
            swap.put(config.relay.clone(), relay);
        }
        for subscriber in &self.subscribers {
            subscriber(&config);
        }
        *running = config;
        Ok(())
    }
}

/// The reloadable part of the server configuration into a factory configuration: limits,
/// timeouts, banner and SMTP policy, and the TLS switches (`tls` says whether a
/// certificate is loaded). Everything else of `f` (host name, extensions, decisions, AUTH,
/// an embedder's adjustments) stays.
pub(crate) fn apply(f: &mut FactoryConfig, config: &ServerConfig, tls: bool) {
    f.banner = config.smtp.banner.clone();
    f.limits.command_line = config.limits.command_line;
    f.leniency = Leniency {
        space_after_colon: config.smtp.allow_space_after_colon,
        missing_angle_brackets: config.smtp.allow_missing_brackets,
        ..f.leniency
    };
    f.max_recipients = config.limits.recipients;
    f.max_message_size = config.limits.message_size;
    f.max_hops = u32::try_from(config.limits.hops).unwrap_or(u32::MAX);
    f.command_timeout = config.timeouts.command.get();
    f.data_timeout = config.timeouts.data.get();
    f.decision_timeout = config.timeouts.hook.get();
    f.min_data_rate = config.timeouts.data_min_rate;
    f.soft_error_limit = config.limits.soft_errors;
    f.hard_error_limit = config.limits.hard_errors;
    f.error_sleep = config.limits.error_sleep.get();
    f.recipient_overshoot = config.limits.recipient_overshoot;
    f.messages_per_session =
        (config.limits.messages_per_session > 0).then_some(config.limits.messages_per_session);
    f.greet_pause = config.smtp.greet_pause.get();
    f.bare_line_endings = match config.smtp.bare_line_endings {
        BareLineEndingPolicy::Reject => BareLineEndings::Reject,
        BareLineEndingPolicy::Normalize => BareLineEndings::Normalize,
        BareLineEndingPolicy::Keep => BareLineEndings::Keep,
    };
    f.tls_available = tls;
    f.require_tls = tls && config.tls.required;
}

/// Logs a warning for each key that changed but needs a restart.
fn warn_unchanged(old: &ServerConfig, new: &ServerConfig) {
    let fixed = [
        ("listen", old.listen != new.listen),
        ("hostname", old.hostname != new.hostname),
        ("workers", old.workers != new.workers),
        ("pool_threads", old.pool_threads != new.pool_threads),
        ("spool", old.spool != new.spool),
        ("plugin_files", old.plugin_files != new.plugin_files),
        ("plugins", old.plugins != new.plugins),
        ("metrics", old.metrics != new.metrics),
        (
            "timeouts.shutdown_grace",
            old.timeouts.shutdown_grace != new.timeouts.shutdown_grace,
        ),
    ];
    for (key, changed) in fixed {
        if changed {
            log::warn!("reload: {key} changed; it takes effect at the next start");
        }
    }
}

/// Applies a new configuration to a running server ([`ServerHandle::reloader`]); what
/// SIGHUP does with [`ServerBuilder::reload_from`]. Cheap to clone.
///
/// [`ServerHandle::reloader`]: crate::server::ServerHandle::reloader
/// [`ServerBuilder::reload_from`]: crate::server::ServerBuilder::reload_from
#[derive(Debug, Clone)]
pub struct Reloader {
    pub(crate) inner: Arc<Reloadable>,
}

impl Reloader {
    /// Validates `config` and, when it is good (its certificate and key load too), makes it
    /// the configuration of new connections: see the [module docs](self) for what changes.
    /// On an error nothing changes.
    pub fn reload(&self, config: ServerConfig) -> Result<(), ServerError> {
        self.inner.reload(config)
    }

    /// How many reloads were accepted.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }
}

/// Where SIGHUP reads the new configuration from ([`ServerBuilder::reload_from`]).
///
/// [`ServerBuilder::reload_from`]: crate::server::ServerBuilder::reload_from
pub(crate) struct ConfigSource(pub Box<dyn Fn() -> Result<ServerConfig, String> + Send>);

impl std::fmt::Debug for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfigSource")
    }
}

/// SIGHUP: reads the configuration from `source` and reloads, logging the outcome.
pub(crate) fn on_hangup(reloader: &Reloader, source: Option<&ConfigSource>) {
    let Some(source) = source else {
        log::warn!("SIGHUP: this server has no configuration source to reload from; ignored");
        return;
    };
    let result = (source.0)().and_then(|config| reloader.reload(config).map_err(|e| e.to_string()));
    match result {
        Ok(()) => log::info!(
            "SIGHUP: configuration reloaded (generation {}): new connections take the new limits, timeouts and TLS certificate",
            reloader.generation()
        ),
        Err(e) => log::error!("SIGHUP: configuration refused, the running one stays: {e}"),
    }
}
