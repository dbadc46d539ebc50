//! `impulse config check` and `impulse config show`, and the loading of a configuration and
//! its plugins that `impulse serve` shares with them (so `check` validates exactly what `serve`
//! would use).
//!
//! `check` validates everything `serve` would before it binds a port: the file (unknown keys,
//! ranges, each error naming its key and line), the linked and loaded plugins with their
//! `[plugins.NAME]` tables (a table for a plugin that is neither linked nor loaded is an error),
//! the TLS certificate and key (readable, parseable, matching), and the spool directory (a
//! directory it can write, or one it can create), and `[relay]` (its keys, routes for every
//! relay domain, the recipients file read and parsed; relay domains without recipient
//! validation are warned about). It binds nothing and writes nothing.
//! `show` prints the effective configuration, every default filled in, as TOML.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use hooks_api::{HookPoint, Registry};
use smtp_server::config::{
    check_auth_hook, ListenerConfig, ListenerRole, ListenerTls, Overrides, ServerConfig,
};

/// Arguments of `impulse config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a configuration as `impulse serve` would, without binding a port: exit 0, or
    /// the first error (with its key and line) and exit 1.
    Check {
        /// The configuration file (without it, the embedded defaults).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Print the effective configuration, with every default filled in (TOML).
    Show {
        /// The configuration file (without it, the embedded defaults).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

/// Runs `impulse config ...`.
pub fn run(args: ConfigArgs) -> ExitCode {
    let result = match args.command {
        ConfigCommand::Check { config } => check(config.as_deref()),
        ConfigCommand::Show { config } => show(config.as_deref()),
    };
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("impulse config: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Reads the configuration (or the defaults) and applies the command-line overrides.
pub fn load(path: Option<&Path>, overrides: Overrides) -> Result<ServerConfig, String> {
    let mut config = match path {
        Some(path) => ServerConfig::load(path).map_err(|e| e.to_string())?,
        None => ServerConfig::default(),
    };
    config.apply(overrides).map_err(|e| e.to_string())?;
    Ok(config)
}

/// Activates the linked plugins that have a `[plugins.NAME]` table and loads each plugin
/// file with its table; a table no linked or loaded plugin claims is an error (it would
/// otherwise be silently ignored).
pub fn registry(config: &ServerConfig) -> Result<Registry, String> {
    let mut registry = Registry::new();
    registry
        .load_static_configured(&config.plugins)
        .map_err(|e| format!("linked plugins: {e}"))?;
    for file in &config.plugin_files {
        // SAFETY: the operator configured this file as a plugin of this server
        // (`plugin_files`, `--plugin`): loading it runs its initialisers, which is what naming
        // it asks for; the ABI guard then refuses one built against another hooks-api.
        unsafe { registry.load_dynamic(file, &config.plugins) }
            .map_err(|e| format!("plugin {}: {e}", file.display()))?;
    }
    let names = registry.plugin_names();
    for table in config.plugins.keys() {
        if !names.contains(&table.as_str()) {
            return Err(format!(
                "[plugins.{table}]: no plugin of that name is linked or loaded (linked and \
                 loaded: {}; add the plugin's .so to plugin_files, or remove the table)",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ));
        }
    }
    Ok(registry)
}

fn check(path: Option<&Path>) -> Result<String, String> {
    let config = load(path, Overrides::default())?;
    let registry = registry(&config)?;
    // A submission listener needs a plugin that verifies AUTH, as `serve` checks.
    check_auth_hook(&config, registry.hook_count(HookPoint::Auth) > 0).map_err(|e| {
        match path.and_then(|p| std::fs::read_to_string(p).ok().map(|t| (p, t))) {
            Some((p, text)) => e.located(p, &text).to_string(),
            None => e.to_string(),
        }
    })?;
    if let (Some(cert), Some(key)) = (&config.tls.cert, &config.tls.key) {
        smtp_server::server::tls::load_server_config(cert, key)
            .map_err(|e| format!("tls.cert / tls.key: {e}"))?;
    }
    if !config.spool.discard {
        check_spool_dir(&config.spool.dir)?;
    }
    if let Some(relay) = &config.relay {
        // The recipients file is read as `serve` reads it at start.
        relay.policy().map_err(|e| e.to_string())?;
        for w in relay.warnings() {
            eprintln!("impulse config: warning: {w}");
        }
    }
    let names = registry.plugin_names();
    Ok(format!(
        "{}: OK (listen {}; spool {}; plugins [{}]{}{})\n",
        path.map_or_else(|| "defaults".to_owned(), |p| p.display().to_string()),
        config
            .listeners()
            .iter()
            .map(describe)
            .collect::<Vec<_>>()
            .join(", "),
        config.spool.dir.display(),
        names.join(", "),
        if config.tls.cert.is_some() {
            "; STARTTLS"
        } else {
            ""
        },
        relay_summary(&config),
    ))
}

/// A listener for the `check` line: its address, and what is not the `mx` default.
fn describe(l: &ListenerConfig) -> String {
    let mut what = Vec::new();
    if l.role == ListenerRole::Submission {
        what.push("submission");
    }
    match l.tls {
        ListenerTls::Starttls => {}
        ListenerTls::Implicit => what.push("implicit TLS"),
        ListenerTls::None => what.push("no TLS"),
    }
    if l.proxy_protocol {
        what.push("PROXY");
    }
    if what.is_empty() {
        l.address.to_string()
    } else {
        format!("{} ({})", l.address, what.join(", "))
    }
}

/// `; relay: ...` for the OK line: whether mail is delivered, and the relay domains.
fn relay_summary(config: &ServerConfig) -> String {
    match &config.relay {
        None => "; relay off (no [relay] table: mail is kept, loopback may relay)".to_owned(),
        Some(r) => format!(
            "; relay {}, domains [{}], {} route{}",
            if r.enabled {
                "on"
            } else {
                "off (enabled = false)"
            },
            r.domains.join(", "),
            r.routes.len(),
            if r.routes.len() == 1 { "" } else { "s" },
        ),
    }
}

/// The spool directory must be a writable directory, or not exist under a writable parent
/// (`serve` creates it).
fn check_spool_dir(dir: &Path) -> Result<(), String> {
    let key = "spool.dir";
    let probe = match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => dir.to_path_buf(),
        Ok(_) => return Err(format!("{key}: {} is not a directory", dir.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            if !parent.is_dir() {
                return Err(format!(
                    "{key}: {} does not exist, nor does its parent {}",
                    dir.display(),
                    parent.display()
                ));
            }
            parent
        }
        Err(e) => return Err(format!("{key}: {}: {e}", dir.display())),
    };
    // access(2) with W_OK|X_OK: what the server process could do, without writing anything.
    rustix::fs::access(
        &probe,
        rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK,
    )
    .map_err(|e| format!("{key}: {} is not writable: {e}", probe.display()))
}

fn show(path: Option<&Path>) -> Result<String, String> {
    let mut config = load(path, Overrides::default())?;
    // As the server will greet: the configured name, else the system's.
    config.hostname = config.effective_hostname();
    let text = hooks_api::toml::to_string(&config).map_err(|e| format!("cannot print: {e}"))?;
    Ok(format!(
        "# The effective configuration of impulse {} ({}), every default filled in.\n{text}",
        env!("CARGO_PKG_VERSION"),
        path.map_or_else(
            || "no file: the defaults".to_owned(),
            |p| p.display().to_string()
        )
    ))
}
