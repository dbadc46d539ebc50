//! [`ServerBuilder`]: from configuration, registry, spool and listeners to running threads.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hooks_api::{HookPoint, Registry};
use smtp_proto::command::Leniency;
use smtp_proto::data::BareLineEndings;
use socket2::{Domain, Protocol, Socket, Type};

use super::event_loop::Loop;
use super::limits::ConnLimits;
use super::pool::Pool;
use super::{Control, Server, ServerError, ServerHandle};
use crate::config::{BareLineEndingPolicy, ServerConfig};
use crate::factory::{Decisions, EventKind, FactoryConfig};
use crate::spool::{RealIo, Spool, SpoolOptions};

/// Listen backlog of the sockets the server binds itself.
const BACKLOG: i32 = 1024;

/// Which hook points have hooks: the others are never dispatched.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct HookSet {
    /// Indexed by [`HookPoint::index`].
    hooked: [bool; HookPoint::COUNT],
    /// Some extension is advertised only when its condition holds for the session: HELO
    /// is then decided, so the driver can pass the keywords to hide.
    pub advertise_if: bool,
}

impl HookSet {
    pub(crate) fn of(registry: &Registry) -> HookSet {
        let mut hooked = [false; HookPoint::COUNT];
        for point in HookPoint::ALL {
            hooked[point.index()] = registry.hook_count(point) > 0;
        }
        HookSet {
            hooked,
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
    pub factory: Arc<FactoryConfig>,
    pub registry: Arc<Registry>,
    pub spool: Spool,
    pub limits: ConnLimits,
    pub pool: Option<Pool>,
    pub hooks: HookSet,
    pub grace: Duration,
    pub control: Arc<Control>,
    /// `[spool] discard`: accept and drop every message (benchmarks).
    pub discard: bool,
    /// STARTTLS, when a certificate is configured.
    pub tls: Option<Arc<rustls::ServerConfig>>,
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

    /// Adds an address to bind (replacing the configured `listen` list). Port 0 picks a
    /// free port: see [`Server::local_addrs`].
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
        let mut factory = factory_config(&config, &registry, hooks)?;
        let tls = match (self.tls, &config.tls.cert, &config.tls.key) {
            (Some(tls), ..) => Some(tls),
            (None, Some(cert), Some(key)) => Some(super::tls::load_server_config(cert, key)?),
            _ => None,
        };
        factory.tls_available = tls.is_some();
        factory.require_tls = tls.is_some() && config.tls.required;
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
        let bind_config = listeners.is_empty() || !config.listen.is_empty();
        if bind_config {
            for addr in &config.listen {
                listeners.push(bind(*addr)?);
            }
        }
        let mut local_addrs = Vec::new();
        for l in &listeners {
            l.set_nonblocking(true)
                .map_err(|e| ServerError::io("set_nonblocking", e))?;
            local_addrs.push(
                l.local_addr()
                    .map_err(|e| ServerError::io("local_addr", e))?,
            );
        }
        let pool = if hooks.message() {
            Some(Pool::start(config.pool_threads).map_err(|e| ServerError::io("spawn", e))?)
        } else {
            None
        };
        let shared = Arc::new(Shared {
            factory: Arc::new(factory),
            registry,
            spool,
            limits: ConnLimits::new(
                config.limits.connections,
                config.limits.connections_per_ip,
                config.limits.exempt_loopback,
            )
            .with_rate_per_minute(config.limits.connection_rate_per_ip),
            pool,
            hooks,
            grace: config.timeouts.shutdown_grace.get(),
            control: Arc::new(Control::default()),
            discard: config.spool.discard,
            tls,
        });
        Ok(Server {
            inner: Built {
                shared,
                listeners,
                local_addrs,
                loops: config.effective_workers(),
                signals: self.signals,
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
) -> Result<FactoryConfig, ServerError> {
    let mut f = FactoryConfig::new(config.effective_hostname());
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
    f.decisions = hooks.decisions();
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
    } = built;
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
    let signal_handle = if signals {
        Some(spawn_signal_thread(control.clone())?)
    } else {
        None
    };
    for a in &local_addrs {
        log::info!("listening on {a}");
    }
    let mut registry = Some(shared.registry.clone());
    drop(shared);
    Ok(ServerHandle {
        local_addrs,
        control,
        threads,
        on_exit: Some(Box::new(move || {
            if let Some(h) = signal_handle {
                h.close();
            }
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

fn spawn_signal_thread(
    control: Arc<Control>,
) -> Result<signal_hook::iterator::Handle, ServerError> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .map_err(|e| ServerError::io("signal handler", e))?;
    let handle = signals.handle();
    std::thread::Builder::new()
        .name("impulse-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                log::info!("signal {sig} received");
                control.shutdown();
            }
        })
        .map_err(|e| ServerError::io("spawn", e))?;
    Ok(handle)
}
