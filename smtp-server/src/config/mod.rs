//! The server's configuration: `impulse.toml` (serde + toml), with embedded defaults so that
//! `impulse serve` runs with no file at all, and the command-line overrides an operator expects.
//!
//! Every field has a default; a file only names what it changes. Unknown keys are errors, so
//! a typo never silently leaves a limit at its default. See `impulse.example.toml` at the
//! repository root for every key with its default and meaning.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod duration;
mod listener;
mod metrics;
mod relay;
mod validate;
pub use duration::ConfigDuration;
pub use listener::{
    check_auth_hook, AuthSettings, ListenerConfig, ListenerRole, ListenerTls, DEFAULT_PROXY_FROM,
    DEFAULT_PROXY_TIMEOUT,
};
pub use metrics::MetricsConfig;
pub use relay::{read_recipients, DnsConfig, RelayConfig, RetryConfig, RouteConfig, VerifyConfig};
use smtp_proto::limits;
pub use validate::MAX_THREADS;

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema (the message names the key and line).
    #[error("invalid config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What toml reported.
        message: String,
    },
    /// A value is out of range or inconsistent with another.
    #[error("invalid config{}: {key}: {message}", at_line(.path, *.line))]
    Invalid {
        /// The key at fault, dotted (`timeouts.command`, `tls.key`, `listen`).
        key: String,
        /// What is wrong with it.
        message: String,
        /// The file the value came from, when it came from one.
        path: Option<PathBuf>,
        /// The line of the key in that file (1-based), when found.
        line: Option<usize>,
    },
}

impl ConfigError {
    /// A value error for `key`.
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
            path: None,
            line: None,
        }
    }

    /// The key at fault, for a value error.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }

    /// Names the file (and the key's line in `text`, the file's contents) in a value error
    /// found after parsing (a check with the plugin registry).
    pub fn located(self, origin: &Path, text: &str) -> ConfigError {
        match self {
            ConfigError::Invalid { key, message, .. } => ConfigError::Invalid {
                line: validate::line_of(text, &key),
                key,
                message,
                path: Some(origin.to_owned()),
            },
            other => other,
        }
    }
}

/// ` in FILE line N`, or ` in FILE`, or nothing.
fn at_line(path: &Option<PathBuf>, line: Option<usize>) -> String {
    match (path, line) {
        (Some(p), Some(l)) => format!(" {} line {l}", p.display()),
        (Some(p), None) => format!(" {}", p.display()),
        (None, _) => String::new(),
    }
}

/// The whole server configuration.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// The name the server greets with and writes in `Received:` headers. Empty means the
    /// system's host name.
    pub hostname: String,
    /// The addresses of the `mx` listeners (IPv4 and IPv6), the shorthand for
    /// `[[listener]]` tables with only an address. Default: `127.0.0.1:2525`, unless the
    /// file has `[[listener]]` tables and no `listen` key.
    pub listen: Vec<SocketAddr>,
    /// Event-loop threads (the key keeps its name: these are the loop threads, not the
    /// worker pool); 0 means one per core.
    pub workers: usize,
    /// Threads of the worker pool (the hook pool), which runs blocking hook work and the
    /// spool commits after it.
    pub pool_threads: usize,
    /// Protocol limits.
    pub limits: LimitsConfig,
    /// Timeouts.
    pub timeouts: TimeoutsConfig,
    /// The durable spool.
    pub spool: SpoolConfig,
    /// Protocol policy switches.
    pub smtp: SmtpConfig,
    /// STARTTLS (RFC 3207): the certificate and key that turn it on.
    pub tls: TlsConfig,
    /// SMTP AUTH (RFC 4954).
    pub auth: AuthSettings,
    /// Listeners with a role, a TLS mode and the PROXY protocol (`[[listener]]`).
    pub listener: Vec<ListenerConfig>,
    /// The Prometheus metrics endpoint.
    pub metrics: MetricsConfig,
    /// Plugin `.so` files to load, in order.
    pub plugin_files: Vec<PathBuf>,
    /// Each plugin's own table, by plugin name: `[plugins.auth-file]` ...
    pub plugins: toml::Table,
    /// `[relay]`: relay control, routes and delivery. `None` (no table): nothing is
    /// delivered, and relay control is [`RelayConfig::default_policy`].
    pub relay: Option<RelayConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            hostname: String::new(),
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 2525))],
            workers: 0,
            pool_threads: 4,
            limits: LimitsConfig::default(),
            timeouts: TimeoutsConfig::default(),
            spool: SpoolConfig::default(),
            tls: TlsConfig::default(),
            smtp: SmtpConfig::default(),
            auth: AuthSettings::default(),
            listener: Vec::new(),
            metrics: MetricsConfig::default(),
            plugin_files: Vec::new(),
            plugins: toml::Table::new(),
            relay: None,
        }
    }
}

/// Protocol limits, with the defaults of `shared/reference/limits-and-durability.md`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest message accepted, in bytes; advertised in `SIZE`.
    pub message_size: u64,
    /// Most recipients per message (`452 4.5.3` beyond).
    pub recipients: usize,
    /// RCPTs past `recipients` that are answered `452 4.5.3` without counting as errors
    /// (Postfix's `smtpd_recipient_overshoot_limit`); the message goes to the first
    /// `recipients`.
    pub recipient_overshoot: usize,
    /// Most messages per session; MAIL after them gets `421 4.7.0` and the session ends.
    /// 0: unlimited.
    pub messages_per_session: u64,
    /// Longest command line, CRLF included (`500 5.5.2` beyond).
    pub command_line: usize,
    /// Most `Received:` headers before `554 5.4.6` (mail loop).
    pub hops: usize,
    /// Errors after which each error reply is delayed by `error_sleep` (the tarpit).
    pub soft_errors: u32,
    /// The delay of each error reply past `soft_errors` (Postfix's
    /// `smtpd_error_sleep_time`); the loop goes on serving others meanwhile. 0: off.
    pub error_sleep: ConfigDuration,
    /// Errors after which the server answers `421 4.7.0` and closes.
    pub hard_errors: u32,
    /// Most simultaneous connections in all (the listener stops accepting beyond).
    pub connections: usize,
    /// Most simultaneous connections from one client (`421 4.7.0` beyond). A client is an
    /// IPv4 address or an IPv6 /64, here and in `connection_rate_per_ip`.
    pub connections_per_ip: usize,
    /// Most connections one client may open per minute (`421 4.7.0` beyond; Postfix's
    /// `smtpd_client_connection_rate_limit`). 0: unlimited.
    pub connection_rate_per_ip: u32,
    /// Loopback clients (127.0.0.0/8, ::1) are not held to `connections_per_ip`, as Postfix
    /// exempts `$mynetworks` (`smtpd_client_event_limit_exceptions`): local load generators
    /// and content filters open and close connections faster than the server sees them go.
    pub exempt_loopback: bool,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            message_size: limits::MAX_MESSAGE_SIZE,
            recipients: limits::MAX_RECIPIENTS,
            recipient_overshoot: 1000,
            messages_per_session: 0,
            command_line: limits::MAX_COMMAND_LINE,
            hops: 100,
            soft_errors: 10,
            error_sleep: ConfigDuration::from_secs(1),
            hard_errors: 20,
            connections: 20_000,
            connections_per_ip: 20,
            connection_rate_per_ip: 0,
            exempt_loopback: true,
        }
    }
}

/// Timeouts: durations ([`ConfigDuration`]: whole seconds, or a string with a unit such as
/// `"5m"`), except the rate.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeoutsConfig {
    /// Waiting for a command (RFC 5321 §4.5.3.2: at least 5 minutes).
    pub command: ConfigDuration,
    /// Waiting for DATA content between reads.
    pub data: ConfigDuration,
    /// The slowest DATA rate tolerated, in bytes per second.
    pub data_min_rate: u64,
    /// How long a graceful shutdown lets transactions finish before closing.
    pub shutdown_grace: ConfigDuration,
    /// The longest wait for a plugin hook that went pending (`451 4.3.0` to the command,
    /// or `421 4.3.0` before the banner and at HELO/EHLO; see
    /// [`FactoryConfig::decision_timeout`](crate::factory::FactoryConfig::decision_timeout)).
    pub hook: ConfigDuration,
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        TimeoutsConfig {
            command: ConfigDuration::from_secs(300),
            data: ConfigDuration::from_secs(300),
            data_min_rate: 500,
            shutdown_grace: ConfigDuration::from_secs(30),
            hook: ConfigDuration::from_secs(60),
        }
    }
}

/// Where and how the spool stores messages.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpoolConfig {
    /// The spool directory (created if missing).
    pub dir: PathBuf,
    /// Threads that fsync message files in parallel (group commit).
    pub sync_threads: usize,
    /// For benchmarks only: accept every message and drop it. The default queue hook
    /// answers `250` with a fresh queue id without storing anything (no spool file is
    /// created unless message or queue hooks need to read the message, and that copy is
    /// deleted). Never turn this on for real mail.
    pub discard: bool,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            dir: PathBuf::from("./spool"),
            sync_threads: 16,
            discard: false,
        }
    }
}

/// STARTTLS: offered once a certificate and its key are configured.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, PEM (the server's certificate first, then intermediates).
    pub cert: Option<PathBuf>,
    /// The private key of the certificate, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// Refuse MAIL, RCPT, DATA and AUTH before STARTTLS with `530 5.7.0` (RFC 3207 §4),
    /// as a submission server should. Needs `cert` and `key`.
    pub required: bool,
}

/// What to do with bare CR or LF in message content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BareLineEndingPolicy {
    /// Answer `550 5.5.2` after the end of data (the default, as Postfix's
    /// `smtpd_forbid_bare_newline = reject`).
    #[default]
    Reject,
    /// Store them as CRLF.
    Normalize,
    /// Store them byte-exact.
    Keep,
}

/// Protocol policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// Text after the host name in the `220` banner.
    pub banner: String,
    /// Bare CR/LF policy in DATA.
    pub bare_line_endings: BareLineEndingPolicy,
    /// Accept `MAIL FROM: <a@b>` (a space after the colon), as many deployed clients send.
    pub allow_space_after_colon: bool,
    /// Accept `MAIL FROM:a@b` (no angle brackets).
    pub allow_missing_brackets: bool,
    /// How long the banner waits (postscreen's pregreet test); a client that talks first
    /// gets `521 5.5.1` and is disconnected. 0: off.
    pub greet_pause: ConfigDuration,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            banner: "ESMTP Impulse".to_owned(),
            bare_line_endings: BareLineEndingPolicy::Reject,
            allow_space_after_colon: true,
            allow_missing_brackets: false,
            greet_pause: ConfigDuration::default(),
        }
    }
}

/// Command-line overrides (`impulse serve --listen .. --spool .. --hostname .. --plugin ..`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Replaces the configured `mx` listeners (`listen`) when not empty; `[[listener]]`
    /// tables stay.
    pub listen: Vec<SocketAddr>,
    /// Replaces the spool directory.
    pub spool: Option<PathBuf>,
    /// Replaces the host name.
    pub hostname: Option<String>,
    /// Plugin files loaded after the configured ones.
    pub plugins: Vec<PathBuf>,
    /// Replaces the TLS certificate chain file.
    pub tls_cert: Option<PathBuf>,
    /// Replaces the TLS private key file.
    pub tls_key: Option<PathBuf>,
}

impl ServerConfig {
    /// Parses a configuration from TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<ServerConfig, ConfigError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            message: e.to_string(),
        })?;
        let mut config: ServerConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            message: e.to_string(),
        })?;
        if table.contains_key("listener") && !table.contains_key("listen") {
            // `[[listener]]` tables alone: the default `listen` address is not bound too.
            config.listen.clear();
        }
        config.validate().map_err(|e| e.located(origin, text))?;
        Ok(config)
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<ServerConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Applies command-line overrides, then validates again.
    pub fn apply(&mut self, overrides: Overrides) -> Result<(), ConfigError> {
        if !overrides.listen.is_empty() {
            self.listen = overrides.listen;
        }
        if let Some(spool) = overrides.spool {
            self.spool.dir = spool;
        }
        if let Some(hostname) = overrides.hostname {
            self.hostname = hostname;
        }
        self.plugin_files.extend(overrides.plugins);
        if let Some(cert) = overrides.tls_cert {
            self.tls.cert = Some(cert);
        }
        if let Some(key) = overrides.tls_key {
            self.tls.key = Some(key);
        }
        self.validate()
    }

    /// The host name to use: the configured one, else the system's, else `localhost`.
    pub fn effective_hostname(&self) -> String {
        if !self.hostname.is_empty() {
            return self.hostname.clone();
        }
        let system = rustix::system::uname();
        let name = system.nodename().to_string_lossy().into_owned();
        if is_valid_hostname(&name) {
            name
        } else {
            "localhost".to_owned()
        }
    }

    /// Loop threads to run: `workers`, or one per core when 0.
    pub fn effective_workers(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// The table configured for plugin `name` (`[plugins.NAME]`), empty when absent.
    pub fn plugin_table(&self, name: &str) -> toml::Table {
        match self.plugins.get(name) {
            Some(toml::Value::Table(t)) => t.clone(),
            _ => toml::Table::new(),
        }
    }
}

/// A host name fit for a banner and a `Received:` header: LDH labels separated by dots.
fn is_valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_defaults() {
        let c = ServerConfig::from_toml("", Path::new("x.toml")).unwrap();
        assert_eq!(c, ServerConfig::default());
        assert_eq!(c.listen, vec!["127.0.0.1:2525".parse().unwrap()]);
        assert_eq!(c.spool.dir, PathBuf::from("./spool"));
        assert_eq!(c.limits.message_size, 32 * 1024 * 1024);
    }

    #[test]
    fn example_config_parses() {
        let text = include_str!("../../../impulse.example.toml");
        let c = ServerConfig::from_toml(text, Path::new("impulse.example.toml")).unwrap();
        assert_eq!(c.listen.len(), 2);
        assert_eq!(c.plugin_table("bounce-rules").len(), 2);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = ServerConfig::from_toml("[limits]\nrecipent = 5\n", Path::new("a.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("recipent") && err.contains("a.toml"), "{err}");
        let err = ServerConfig::from_toml("[limits]\ncommand_line = 100\n", Path::new("a.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("512"), "{err}");
        let err = ServerConfig::from_toml("hostname = \"bad host\"\n", Path::new("a.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a valid domain"), "{err}");
        assert!(ServerConfig::from_toml("listen = []\n", Path::new("a.toml")).is_err());
    }

    #[test]
    fn overrides_replace_and_extend() {
        let mut c = ServerConfig::from_toml(
            "listen = [\"127.0.0.1:25\"]\nplugin_files = [\"a.so\"]\n",
            Path::new("a.toml"),
        )
        .unwrap();
        c.apply(Overrides {
            listen: vec!["[::1]:2525".parse().unwrap()],
            spool: Some("/var/spool/impulse".into()),
            hostname: Some("mx.example.org".into()),
            plugins: vec!["b.so".into()],
            tls_cert: Some("/etc/impulse/cert.pem".into()),
            tls_key: Some("/etc/impulse/key.pem".into()),
        })
        .unwrap();
        assert_eq!(c.tls.cert, Some(PathBuf::from("/etc/impulse/cert.pem")));
        assert_eq!(c.tls.key, Some(PathBuf::from("/etc/impulse/key.pem")));
        assert_eq!(c.listen, vec!["[::1]:2525".parse().unwrap()]);
        assert_eq!(c.spool.dir, PathBuf::from("/var/spool/impulse"));
        assert_eq!(c.effective_hostname(), "mx.example.org");
        assert_eq!(
            c.plugin_files,
            vec![PathBuf::from("a.so"), PathBuf::from("b.so")]
        );
    }

    #[test]
    fn tls_needs_both_files() {
        let parse = |t: &str| ServerConfig::from_toml(t, Path::new("t.toml"));
        let c = parse("[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\nrequired = true\n").unwrap();
        assert!(c.tls.required);
        for (text, want) in [
            ("[tls]\ncert = \"c.pem\"\n", "tls.key is not"),
            ("[tls]\nkey = \"k.pem\"\n", "tls.cert is not"),
            ("[tls]\nrequired = true\n", "tls.required: needs"),
            ("[tls]\ncertificate = \"c.pem\"\n", "certificate"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
        assert_eq!(ServerConfig::default().tls, TlsConfig::default());
    }

    #[test]
    fn durations_take_seconds_or_a_unit() {
        let c = ServerConfig::from_toml(
            "[timeouts]\ncommand = 60\ndata = \"5m\"\n[limits]\nerror_sleep = \"2s\"\n\
             [smtp]\ngreet_pause = 3\n",
            Path::new("d.toml"),
        )
        .unwrap();
        assert_eq!(c.timeouts.command, ConfigDuration::from_secs(60));
        assert_eq!(c.timeouts.data, ConfigDuration::from_secs(300));
        assert_eq!(c.limits.error_sleep, ConfigDuration::from_secs(2));
        assert_eq!(c.smtp.greet_pause, ConfigDuration::from_secs(3));
        let err = ServerConfig::from_toml("[timeouts]\nhook = \"1x\"\n", Path::new("d.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("duration"), "{err}");
    }

    #[test]
    fn system_hostname_is_usable() {
        let name = ServerConfig::default().effective_hostname();
        assert!(is_valid_hostname(&name), "{name}");
    }
}
