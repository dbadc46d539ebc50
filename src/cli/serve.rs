//! `impulse serve`: run the ESMTP server until SIGTERM or SIGINT; SIGHUP reads the
//! configuration again (limits, timeouts, TLS certificate and key: docs/OPERATIONS.md).
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
use std::sync::Arc;

use clap::Args;
use smtp_server::config::{Overrides, ServerConfig};
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
    let registry = super::config::registry(&config)?;
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
    let server = Server::builder()
        .config(config)
        .registry(Arc::new(registry))
        .handle_signals(true)
        .reload_from(load)
        .build()
        .map_err(|e| e.to_string())?;
    server.run().map_err(|e| e.to_string())?;
    log::info!("impulse stopped");
    Ok(())
}
