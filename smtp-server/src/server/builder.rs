//! [`ServerBuilder`]: from configuration, registry, spool and listeners to running threads.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hooks_api::{HookPoint, Registry};
use socket2::{Domain, Protocol, Socket, Type};

use super::event_loop::Loop;
use super::limits::ConnLimits;
use super::listener::ListenerSpec;
use super::pool::Pool;
use super::relay_watch::{RelaySwap, Watch};
use super::reload::{self, ConfigSource, OnReload, Reloadable, Reloader, Settings};
use super::{Control, Server, ServerError, ServerHandle};
use crate::config::{check_auth_hook, ListenerConfig, RelayConfig, ServerConfig};
use crate::factory::{AuthConfig, Decisions, EventKind, FactoryConfig, RelayControl};
use crate::metrics::http::MetricsServer;
use crate::metrics::{self, ServerMetrics};
use crate::spool::{RealIo, Spool, SpoolOptions};

/// Listen backlog of the sockets the server binds itself.
const BACKLOG: i32 = 1024;

/// Which hook points have hooks: the others are never dispatched.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct HookSet {
    /// Indexed by [`HookPoint::index`].
    hooked: [bool; HookPoint::COUNT],
    /// One bit per factory event kind (its discriminant) that a hooked point decides:
    /// looked up for every event, so made once here.
    decides: u64,
    /// Some extension is advertised only when its condition holds for the session: HELO
    /// is then decided, so the driver can pass the keywords to hide.
    pub advertise_if: bool,
}

impl HookSet {
    pub(crate) fn of(registry: &Registry) -> HookSet {
        let mut hooked = [false; HookPoint::COUNT];
        let mut decides = 0u64;
        for point in HookPoint::ALL {
            hooked[point.index()] = registry.hook_count(point) > 0;
            if let (true, Some(kind)) = (hooked[point.index()], super::hooks::decided_kind(point)) {
                decides |= 1 << kind as u32;
            }
        }
        HookSet {
            hooked,
            decides,
            advertise_if: registry
                .extensions()
                .iter()
                .any(|e| e.extension.is_conditional()),
        }
    }

    /// Whether `point` has hooks.
    pub(crate) fn has(&self, point: HookPoint) -> bool {
        self.hooked[point.index()]
    }

    /// Whether a hook decides factory events of `kind`.
    pub(crate) fn decides(&self, kind: EventKind) -> bool {
        self.decides & (1 << kind as u32) != 0
    }

    /// Message or queue hooks: the end of data goes through the hook pool.
    pub(crate) fn message(&self) -> bool {
        self.has(HookPoint::Message) || self.has(HookPoint::Queue)
    }

    /// The factory events the hooks decide: those of every hooked point the server
    /// dispatches on a decision, and HELO when extensions are advertised conditionally.
    pub(crate) fn decisions(&self) -> Decisions {
        let mut decisions = Decisions::NONE;
        for point in HookPoint::ALL {
            if let Some(kind) = super::hooks::decided_kind(point) {
                decisions.set(kind, self.has(point));
            }
        }
        if self.advertise_if {
            decisions.set(EventKind::Helo, true);
        }
        decisions
    }
}

/// Everything the loop threads share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Each bound listener's role, TLS mode and PROXY protocol, by listener index.
    pub listeners: Vec<ListenerSpec>,
    /// What a reload may change: the factory configuration and STARTTLS of new
    /// connections (each loop keeps the current `Settings` and looks for a newer one at
    /// accept).
    pub live: Arc<Reloadable>,
    pub registry: Arc<Registry>,
    pub spool: Spool,
    pub limits: Arc<ConnLimits>,
    pub pool: Option<Pool>,
    pub hooks: HookSet,
    pub grace: Duration,
    pub control: Arc<Control>,
    /// `[spool] discard`: accept and drop every message (benchmarks).
    pub discard: bool,
    /// What the loops, spool callbacks and hook pool count.
    pub metrics: Arc<ServerMetrics>,
}

/// A built server (see [`Server`]).
#[derive(Debug)]
pub(crate) struct Built {
    pub shared: Arc<Shared>,
    pub listeners: Vec<std::net::TcpListener>,
    pub local_addrs: Vec<SocketAddr>,
    /// Loop threads to start (`workers` in the configuration).
    pub loops: usize,
    pub signals: bool,
    /// The `[relay] recipients` file to re-read when it changes.
    pub relay_watch: Option<Watch>,
    /// The `[metrics] listen` endpoint, bound.
    pub metrics_server: Option<MetricsServer>,
    /// Where SIGHUP reads the configuration from.
    pub reload_from: Option<ConfigSource>,
}

type FactoryTweak = Box<dyn FnOnce(&mut FactoryConfig)>;

/// Builds a [`Server`]: `Server::builder().config(..).registry(..).build()?`.
///
/// Everything is optional: the defaults are [`ServerConfig::default`] (127.0.0.1:2525,
/// `./spool`, the system host name), an empty plugin registry and no signal handling.
#[derive(Default)]
pub struct ServerBuilder {
    config: ServerConfig,
    registry: Option<Arc<Registry>>,
    spool: Option<Spool>,
    spool_dir: Option<PathBuf>,
    hostname: Option<String>,
    listen: Vec<SocketAddr>,
    listeners: Vec<std::net::TcpListener>,
    signals: bool,
    tweak: Option<FactoryTweak>,
    tls: Option<Arc<rustls::ServerConfig>>,
    metrics: Option<Arc<metrics::Registry>>,
    on_reload: Vec<OnReload>,
    reload_from: Option<ConfigSource>,
    relay_control: Option<Arc<RelayControl>>,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("config", &self.config)
            .field("listen", &self.listen)
            .field("listeners", &self.listeners.len())
            .finish_non_exhaustive()
    }
}

impl ServerBuilder {
    /// The configuration (listeners, limits, timeouts, spool, loop threads).
    pub fn config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// The plugin registry whose hooks and extensions the server uses.
    pub fn registry(mut self, registry: Arc<Registry>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// An already opened spool (instead of opening `spool.dir` from the configuration).
    pub fn spool(mut self, spool: Spool) -> Self {
        self.spool = Some(spool);
        self
    }

    /// The spool directory (instead of the configured one).
    pub fn spool_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spool_dir = Some(dir.into());
        self
    }

    /// The host name for the banner and `Received:` (instead of the configured one).
    pub fn hostname(mut self, name: impl Into<String>) -> Self {
        self.hostname = Some(name.into());
        self
    }

    /// Adds an address to bind (replacing the configured `listen` list, the `mx`
    /// listeners; `[[listener]]` tables are bound as well). Port 0 picks a free port: see
    /// [`Server::local_addrs`], which lists the listeners an embedder bound, then the
    /// `listen` addresses, then the `[[listener]]` tables.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen.push(addr);
        self
    }

    /// Adds a listener the embedder bound itself. When listeners are given and no
    /// [`listen`](ServerBuilder::listen) address is, the configured `listen` list is not bound.
    pub fn listener(mut self, listener: std::net::TcpListener) -> Self {
        self.listeners.push(listener);
        self
    }

    /// Start a graceful shutdown on SIGTERM and SIGINT (what `impulse serve` does). Off by
    /// default: an embedding program owns its signals.
    pub fn handle_signals(mut self, on: bool) -> Self {
        self.signals = on;
        self
    }

    /// Adjusts the factory configuration derived from the server configuration (AUTH,
    /// leniency, buffer sizes, ...) before the server starts.
    pub fn factory_config(mut self, f: impl FnOnce(&mut FactoryConfig) + 'static) -> Self {
        self.tweak = Some(Box::new(f));
        self
    }

    /// Offers STARTTLS with this rustls configuration (instead of loading `[tls] cert` and
    /// `key` from the configuration).
    pub fn tls(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// With [`handle_signals`](ServerBuilder::handle_signals), SIGHUP calls `source` for
    /// the configuration and reloads it ([`Reloader::reload`]; `impulse serve` reads its
    /// file again). A source that fails, or a configuration that does not validate, is
    /// logged and the running configuration stays. Without a source SIGHUP is ignored.
    pub fn reload_from(
        mut self,
        source: impl Fn() -> Result<ServerConfig, String> + Send + 'static,
    ) -> Self {
        self.reload_from = Some(ConfigSource(Box::new(source)));
        self
    }

    /// Calls `f` with every configuration a reload accepted, after the server took it:
    /// where a subsystem beside the server (the relay: routes, relay control, retries)
    /// picks up its new settings. Called on the thread that reloaded (the signal thread);
    /// it must not block for long.
    pub fn on_reload(mut self, f: impl Fn(&ServerConfig) + Send + Sync + 'static) -> Self {
        self.on_reload.push(Box::new(f));
        self
    }

    /// Consults `control` for relay control at every RCPT (instead of one of the server's
    /// own): share it with a hook that needs the relay control in force, such as
    /// [`add_verify_hook`](super::verify::add_verify_hook). The server puts the policy of
    /// its `[relay]` table in it when built, and a new one on each change.
    pub fn relay_control(mut self, control: Arc<RelayControl>) -> Self {
        self.relay_control = Some(control);
        self
    }

    /// Counts into `registry` (instead of a registry of the server's own), so that one
    /// endpoint serves the server's metrics and those of whatever runs beside it.
    pub fn metrics(mut self, registry: Arc<metrics::Registry>) -> Self {
        self.metrics = Some(registry);
        self
    }

    /// Validates the configuration, opens the spool (running its recovery) and binds the
    /// listeners. Nothing runs until [`Server::spawn`] or [`Server::run`].
    pub fn build(mut self) -> Result<Server, ServerError> {
        if let Some(h) = self.hostname.take() {
            self.config.hostname = h;
        }
        if let Some(d) = self.spool_dir.take() {
            self.config.spool.dir = d;
        }
        if !self.listen.is_empty() {
            self.config.listen = std::mem::take(&mut self.listen);
        }
        self.config.validate()?;
        let config = self.config;
        let registry = self.registry.unwrap_or_else(|| Arc::new(Registry::new()));
        let hooks = HookSet::of(&registry);
        check_auth_hook(&config, hooks.has(HookPoint::Auth))?;
        let tls_from_builder = self.tls.is_some();
        let tls = match (self.tls, &config.tls.cert, &config.tls.key) {
            (Some(tls), ..) => Some(tls),
            (None, Some(cert), Some(key)) => Some(super::tls::load_server_config(cert, key)?),
            _ => None,
        };
        let mut factory = factory_config(&config, &registry, hooks, tls.is_some())?;
        // Relay control runs at every RCPT, with or without a `[relay]` table. The
        // recipients file's version is noted before it is read: a change in between is
        // read again, never missed.
        let seen = config.relay.as_ref().and_then(Watch::stamp_now);
        let policy = match &config.relay {
            Some(r) => r.policy()?,
            None => RelayConfig::default_policy(),
        };
        let relay = match self.relay_control {
            Some(control) => {
                control.replace(policy);
                control
            }
            None => Arc::new(RelayControl::new(policy)),
        };
        factory.relay = Some(relay.clone());
        let relay_swap = RelaySwap::new(relay, config.relay.clone());
        let relay_watch = config.relay.as_ref().map(|r| {
            for warning in r.warnings() {
                log::warn!("{warning}");
            }
            if r.verifies_any()
                && !registry
                    .plugin_names()
                    .contains(&super::verify::VERIFY_HOOK)
            {
                log::warn!(
                    "relay: verify_recipients is set but the verification hook is not \
                     installed (server::verify::add_verify_hook): the recipients file alone \
                     decides for those domains"
                );
            }
            Watch::new(relay_swap.clone(), seen)
        });
        if let Some(tweak) = self.tweak {
            tweak(&mut factory);
        }
        let spool = match self.spool {
            Some(s) => s,
            None => Spool::open_with(
                &config.spool.dir,
                SpoolOptions {
                    sync_threads: config.spool.sync_threads,
                    // `[spool] discard` writes no file unless a hook reads the message.
                    tmp_stock: if config.spool.discard {
                        0
                    } else {
                        SpoolOptions::default().tmp_stock
                    },
                    ..SpoolOptions::default()
                },
                Arc::new(RealIo),
            )?,
        };
        let mut listeners = self.listeners;
        // Listeners the embedder bound are `mx` listeners.
        let mut specs: Vec<ListenerConfig> = listeners
            .iter()
            .map(|l| ListenerConfig::mx(l.local_addr().unwrap_or(SocketAddr::from(([0; 4], 0)))))
            .collect();
        let bind_config = listeners.is_empty() || !config.listen.is_empty();
        if bind_config {
            for addr in &config.listen {
                listeners.push(bind(*addr)?);
                specs.push(ListenerConfig::mx(*addr));
            }
        }
        for l in &config.listener {
            listeners.push(bind(l.address)?);
            specs.push(l.clone());
        }
        let factory = Arc::new(factory);
        let specs = specs
            .iter()
            .map(|l| ListenerSpec::new(l, &factory))
            .collect();
        let mut local_addrs = Vec::new();
        for l in &listeners {
            l.set_nonblocking(true)
                .map_err(|e| ServerError::io("set_nonblocking", e))?;
            local_addrs.push(
                l.local_addr()
                    .map_err(|e| ServerError::io("local_addr", e))?,
            );
        }
        let hooked: Vec<HookPoint> = HookPoint::ALL
            .into_iter()
            .filter(|&p| hooks.has(p))
            .collect();
        let registry_m = self.metrics.unwrap_or_default();
        let metrics = Arc::new(ServerMetrics::register(registry_m.clone(), &spool, &hooked));
        let metrics_server = match config.metrics.listen {
            Some(addr) => Some(
                MetricsServer::start(addr, registry_m)
                    .map_err(|source| ServerError::Bind { addr, source })?,
            ),
            None => None,
        };
        let pool = if hooks.message() {
            Some(Pool::start(config.pool_threads).map_err(|e| ServerError::io("spawn", e))?)
        } else {
            None
        };
        let limits = Arc::new(
            ConnLimits::new(
                config.limits.connections,
                config.limits.connections_per_ip,
                config.limits.exempt_loopback,
            )
            .with_rate_per_minute(config.limits.connection_rate_per_ip),
        );
        let loops = config.effective_workers();
        let grace = config.timeouts.shutdown_grace.get();
        let discard = config.spool.discard;
        let live = Arc::new(
            Reloadable::new(
                Settings {
                    factory: factory.clone(),
                    tls,
                },
                limits.clone(),
                config,
                tls_from_builder,
                self.on_reload,
            )
            .with_relay(relay_swap),
        );
        let shared = Arc::new(Shared {
            listeners: specs,
            live,
            registry,
            spool,
            limits,
            pool,
            hooks,
            grace,
            control: Arc::new(Control::default()),
            discard,
            metrics,
        });
        Ok(Server {
            inner: Built {
                shared,
                listeners,
                local_addrs,
                loops,
                signals: self.signals,
                relay_watch,
                metrics_server,
                reload_from: self.reload_from,
            },
        })
    }
}

/// Binds `addr` with a backlog of [`BACKLOG`]; IPv6 sockets are IPv6-only so that `[::]`
/// and `0.0.0.0` can both be listed.
fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, ServerError> {
    let err = |source| ServerError::Bind { addr, source };
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(err)?;
    socket.set_reuse_address(true).map_err(err)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true).map_err(err)?;
    }
    socket.bind(&addr.into()).map_err(err)?;
    socket.listen(BACKLOG).map_err(err)?;
    Ok(socket.into())
}

/// The factory's configuration from the server's, with the plugins' extensions and the
/// decisions the registered hooks need.
fn factory_config(
    config: &ServerConfig,
    registry: &Registry,
    hooks: HookSet,
    tls: bool,
) -> Result<FactoryConfig, ServerError> {
    let mut f = FactoryConfig::new(config.effective_hostname());
    // The same fields a reload changes, from the same function.
    reload::apply(&mut f, config, tls);
    f.decisions = hooks.decisions();
    // AUTH is offered exactly when a hook can verify it.
    if hooks.has(HookPoint::Auth) {
        f.auth = Some(AuthConfig {
            mechanisms: config.auth.parsed_mechanisms(),
            require_tls: !config.auth.plaintext,
        });
    }
    for e in registry.extensions() {
        let ext = &e.extension;
        let params: Vec<&str> = ext.ehlo_params().iter().map(String::as_str).collect();
        let mail: Vec<&str> = ext.mail_params().iter().map(String::as_str).collect();
        let rcpt: Vec<&str> = ext.rcpt_params().iter().map(String::as_str).collect();
        let verb = ext.has_handler().then(|| ext.keyword());
        f.extensions
            .register(ext.keyword(), &params, verb, &mail, &rcpt)?;
    }
    Ok(f)
}

/// Starts the loop threads (and the signal thread).
pub(crate) fn start(built: Built) -> Result<ServerHandle, ServerError> {
    let Built {
        shared,
        listeners,
        local_addrs,
        loops: loop_count,
        signals,
        relay_watch,
        metrics_server,
        reload_from,
    } = built;
    let reloader = Reloader {
        inner: shared.live.clone(),
    };
    let metrics_addr = metrics_server.as_ref().map(MetricsServer::local_addr);
    let metrics = shared.metrics.registry().clone();
    let control = shared.control.clone();
    let mut loops = Vec::with_capacity(loop_count);
    for i in 0..loop_count {
        let mut mine = Vec::with_capacity(listeners.len());
        for l in &listeners {
            mine.push(
                l.try_clone()
                    .map_err(|e| ServerError::io("dup listener", e))?,
            );
        }
        let event_loop = Loop::new(i, shared.clone(), mine)?;
        control
            .wakers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event_loop.waker());
        loops.push(event_loop);
    }
    drop(listeners);
    let mut threads = Vec::with_capacity(loop_count);
    for event_loop in loops {
        let name = format!("impulse-loop-{}", event_loop.index());
        let t = std::thread::Builder::new()
            .name(name)
            .spawn(move || event_loop.run())
            .map_err(|e| ServerError::io("spawn", e))?;
        threads.push(t);
    }
    let relay_watcher = relay_watch
        .map(Watch::start)
        .transpose()
        .map_err(|e| ServerError::io("spawn", e))?;
    let signal_handle = if signals {
        Some(spawn_signal_thread(
            control.clone(),
            reloader.clone(),
            reload_from,
        )?)
    } else {
        None
    };
    for (a, spec) in local_addrs.iter().zip(&shared.listeners) {
        log::info!("listening on {a}{}", spec.describe());
    }
    let mut registry = Some(shared.registry.clone());
    drop(shared);
    Ok(ServerHandle {
        local_addrs,
        control,
        threads,
        metrics,
        metrics_addr,
        reloader,
        on_exit: Some(Box::new(move || {
            if let Some(h) = signal_handle {
                h.close();
            }
            if let Some(w) = relay_watcher {
                w.stop();
            }
            drop(metrics_server);
            // Plugin shutdowns run once nobody else holds the registry.
            if let Some(mut arc) = registry.take() {
                for _ in 0..50 {
                    match Arc::get_mut(&mut arc) {
                        Some(r) => {
                            r.shutdown();
                            return;
                        }
                        None => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
                log::debug!("plugin registry still shared: plugin shutdowns left to its owner");
            }
        })),
    })
}

/// SIGTERM and SIGINT: a graceful shutdown; SIGHUP: a reload from `reload_from`.
fn spawn_signal_thread(
    control: Arc<Control>,
    reloader: Reloader,
    reload_from: Option<ConfigSource>,
) -> Result<signal_hook::iterator::Handle, ServerError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(|e| ServerError::io("signal handler", e))?;
    let handle = signals.handle();
    std::thread::Builder::new()
        .name("impulse-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                log::info!("signal {sig} received");
                if sig == SIGHUP {
                    reload::on_hangup(&reloader, reload_from.as_ref());
                } else {
                    control.shutdown();
                }
            }
        })
        .map_err(|e| ServerError::io("spawn", e))?;
    Ok(handle)
}
