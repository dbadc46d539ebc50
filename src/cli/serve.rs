//! `impulse serve`: run the ESMTP server until SIGTERM or SIGINT; SIGHUP reads the
//! configuration again (limits, timeouts, TLS certificate and key, relay control, the
//! relay's routes and retry settings, and the recipient probes' routes: docs/OPERATIONS.md).
//! A route with `verify_recipients` starts the probe threads and the RCPT hook
//! (`smtp_server::server::verify`). The relay counts into the
//! server's metrics registry ([`super::relay_metrics`]).
//!
//! With no arguments it listens on 127.0.0.1:2525, spools to `./spool` and greets with the
//! system's host name. `--config FILE` reads an `impulse.toml`; `--listen`, `--spool`,
//! `--hostname` and `--plugin` override it. Plugins linked into the binary (the first-party
//! auth-file, bounce-rules and xclient) are activated only when the config has their
//! `[plugins.NAME]` table (`Registry::load_static_configured`), then each `.so` is loaded
//! with its table.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use clap::Args;
use smtp_relay::driver::{control, offline, Commander, Relay, RelaySettings};
use smtp_relay::route::{LocalHost, RouteTable};
use smtp_relay::verify::Verifier;
use smtp_server::config::{Overrides, RelayConfig, ServerConfig};
use smtp_server::factory::RelayControl;
use smtp_server::server::verify::add_verify_hook;
use smtp_server::server::Server;

/// Arguments of `impulse serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The configuration file (TOML; see impulse.example.toml). Without it, the defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// An address to listen on, for example 127.0.0.1:2525 or [::1]:2525 (repeatable;
    /// replaces the configured list).
    #[arg(long = "listen", value_name = "ADDR")]
    pub listen: Vec<SocketAddr>,
    /// The spool directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,
    /// The host name for the banner and Received: headers.
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// A plugin .so to load after the configured ones (repeatable).
    #[arg(long = "plugin", value_name = "FILE.so")]
    pub plugins: Vec<PathBuf>,
    /// The TLS certificate chain (PEM) that turns STARTTLS on; needs --tls-key.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// For benchmarks: accept and drop every message, nothing is stored (the same as
    /// `[spool] discard = true`). Never use it for real mail.
    #[arg(long)]
    pub discard: bool,
}

/// Runs the server; returns the process exit code (0 after a clean shutdown, 1 on error).
pub fn run(args: ServeArgs) -> ExitCode {
    match serve(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("impulse serve: {message}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let overrides = Overrides {
        listen: args.listen,
        spool: args.spool,
        hostname: args.hostname,
        plugins: args.plugins,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
    };
    let (path, discard) = (args.config, args.discard);
    // What `serve` runs with, and what SIGHUP reads again: the file, then the same
    // command-line overrides.
    let load = move || -> Result<ServerConfig, String> {
        let mut config = super::config::load(path.as_deref(), overrides.clone())?;
        if discard {
            config.spool.discard = true;
        }
        Ok(config)
    };
    let config = load()?;
    let mut registry = super::config::registry(&config)?;
    // Recipient verification: the RCPT hook shares relay control with the server.
    let relay_control = Arc::new(RelayControl::new(RelayConfig::default_policy()));
    let verifier = start_verifier(&config, &mut registry, &relay_control)?;
    if config.spool.discard {
        log::warn!("discard mode: every message is accepted and dropped, nothing is stored");
    }
    let names = registry.plugin_names();
    log::info!(
        "impulse {} starting: spool {}, hostname {}, plugins [{}]",
        env!("CARGO_PKG_VERSION"),
        config.spool.dir.display(),
        config.effective_hostname(),
        names.join(", ")
    );
    let hostname = config.effective_hostname();
    let registry = Arc::new(registry);
    let relay_settings = match config.relay_delivery() {
        Some(relay) => Some(relay_settings(&config, relay, &registry)?),
        None => None,
    };
    let metrics = Arc::new(smtp_server::metrics::Registry::new());
    if let Some(verifier) = &verifier {
        super::relay_metrics::register_verify(&metrics, verifier.clone());
    }
    // The relay starts after the server is built: a reload reaches it once it runs.
    let running: Arc<OnceLock<Commander>> = Arc::new(OnceLock::new());
    let reload_relay = running.clone();
    let server = Server::builder()
        .config(config)
        .registry(registry.clone())
        .relay_control(relay_control)
        .metrics(metrics.clone())
        .handle_signals(true)
        .reload_from(load)
        .on_reload(move |config| {
            if let Some(relay) = reload_relay.get() {
                reload(relay, config);
            }
            reload_verifier(verifier.as_deref(), config);
        })
        .build()
        .map_err(|e| e.to_string())?;
    let spool = server.spool().clone();
    // The relay: delivery of what the server accepts, when the config has a `[relay]` table.
    let relay = match relay_settings {
        Some(mut settings) => {
            let names = [hostname.clone()];
            let addrs: Vec<_> = server.local_addrs().iter().map(|a| a.ip()).collect();
            settings.local = LocalHost::new(&names, &addrs);
            let relay = Relay::start(spool.clone(), settings)
                .map_err(|e| format!("cannot start the relay: {e}"))?;
            let _ = running.set(relay.commander());
            super::relay_metrics::register(
                &metrics,
                &relay.stats(),
                &relay.queue_probe(),
                registry.classifier(),
            );
            log::info!("relay started: delivering from {}", spool.dir().display());
            Some(relay)
        }
        None => {
            log::info!(
                "relay off (no [relay] table, or enabled = false): mail is kept in the spool"
            );
            None
        }
    };
    // The queue commands' way in (`impulse queue flush|hold|...`): this process owns the
    // spool's lock, so it is the one writer.
    let handler: control::Handler = match &relay {
        Some(relay) => {
            let commander = relay.commander();
            Arc::new(move |command| {
                commander
                    .command(command)
                    .ok_or_else(|| "the relay did not answer".to_string())
            })
        }
        None => {
            let settings = RelaySettings::new(RouteTable::new(Vec::new(), None), hostname);
            let handler_spool = spool.clone();
            Arc::new(move |command| offline::apply(&handler_spool, &settings, &command))
        }
    };
    let control_socket = control::ControlSocket::start(spool.dir(), handler)
        .map_err(|e| format!("control socket in {}: {e}", spool.dir().display()))?;
    let served = server.run().map_err(|e| e.to_string());
    // Its handler holds the relay's commander or a spool handle: it goes first.
    drop(control_socket);
    if let Some(relay) = relay {
        relay.shutdown();
    }
    drop(registry);
    served?;
    log::info!("impulse stopped");
    Ok(())
}

/// Starts the probe threads and installs the RCPT hook when a route has
/// `verify_recipients` (whether or not delivery is on: relay control runs either way).
fn start_verifier(
    config: &ServerConfig,
    registry: &mut smtp_server::hooks_api::Registry,
    control: &Arc<RelayControl>,
) -> Result<Option<Arc<Verifier>>, String> {
    let Some(relay) = config.relay.as_ref().filter(|r| r.verifies_any()) else {
        return Ok(None);
    };
    let settings = relay
        .verify_settings(&config.effective_hostname())
        .map_err(|e| e.to_string())?;
    let verifier = Verifier::start(settings, relay.verify.threads)
        .map(Arc::new)
        .map_err(|e| format!("cannot start the recipient verification threads: {e}"))?;
    add_verify_hook(registry, control.clone(), verifier.clone())
        .map_err(|e| format!("recipient verification: {e}"))?;
    log::info!(
        "recipient verification on: {} probe threads",
        relay.verify.threads
    );
    Ok(Some(verifier))
}

/// SIGHUP: the probes take the new routes and `[relay.verify]` settings. Turning
/// verification on when it was off at start takes a restart.
fn reload_verifier(verifier: Option<&Verifier>, config: &ServerConfig) {
    let Some(relay) = config.relay.as_ref() else {
        return;
    };
    match verifier {
        Some(verifier) => match relay.verify_settings(&config.effective_hostname()) {
            Ok(settings) => verifier.reload(settings),
            Err(e) => log::error!("reload: recipient verification settings refused: {e}"),
        },
        None if relay.verifies_any() => log::warn!(
            "reload: verify_recipients was off at start; recipient verification starts at \
             the next start (until then the recipients file alone decides for those domains)"
        ),
        None => {}
    }
}

/// SIGHUP: the relay takes the new routes, `[relay.dns]` and retry settings of a
/// configuration the server accepted (validated already, `[relay]` included). Turning
/// delivery on or off, and the other `[relay]` keys, take effect at the next start.
fn reload(relay: &Commander, config: &ServerConfig) {
    let Some(table) = config.relay_delivery() else {
        log::warn!(
            "reload: [relay] removed or enabled = false; delivery goes on until the next start"
        );
        return;
    };
    match reloadable_settings(config, table) {
        Ok(settings) => {
            if !relay.reload(settings) {
                log::warn!("reload: the relay has stopped; its settings were not changed");
            }
        }
        Err(e) => log::error!("reload: relay settings refused, the running ones stay: {e}"),
    }
}

/// What a reload changes of the relay: routes, retry policy, connections per destination,
/// messages per connection (the rest of the returned settings are defaults, not used).
fn reloadable_settings(
    config: &ServerConfig,
    relay: &smtp_server::config::RelayConfig,
) -> Result<RelaySettings, String> {
    let routes = relay.routes().map_err(|e| e.to_string())?;
    let mut settings = RelaySettings::new(routes, config.effective_hostname());
    settings.schedule = relay.schedule();
    settings.messages_per_connection =
        u32::try_from(relay.messages_per_connection).unwrap_or(u32::MAX);
    settings.nameservers = relay.dns.nameservers().map_err(|e| e.to_string())?;
    settings.dns_timeout = relay.dns.timeout.get();
    Ok(settings)
}

/// The relay's settings from the `[relay]` table (and the server's own where they apply).
fn relay_settings(
    config: &smtp_server::config::ServerConfig,
    relay: &smtp_server::config::RelayConfig,
    registry: &Arc<smtp_server::hooks_api::Registry>,
) -> Result<RelaySettings, String> {
    let mut settings = reloadable_settings(config, relay)?;
    settings.schedule.seed = std::process::id() as u64;
    settings.shutdown_grace = config
        .timeouts
        .shutdown_grace
        .get()
        .min(std::time::Duration::from_secs(30));
    // Every client state the plugins registered runs on every relay connection.
    let chain = smtp_client::StateRegistry::from_hooks(registry)
        .map_err(|e| format!("the plugins' client states: {e}"))?;
    settings.machine = Some(chain.build());
    // The relay-side hook points (route, attempt, delivery outcome, bounce).
    settings.registry = Some(registry.clone());
    Ok(settings)
}
