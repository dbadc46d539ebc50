//! `[relay]`: who may relay through this server (relay control, checked at every RCPT whether
//! or not delivery is enabled), where accepted mail goes (`[[relay.route]]`), and how the relay
//! retries (`[relay.retry]`), resolves (`[relay.dns]`) and verifies recipients at RCPT
//! (`[relay.verify]`, for routes with `verify_recipients = true`).
//!
//! Without a `[relay]` table nothing is delivered (mail is accepted and kept, as before), and
//! relay control uses [`RelayConfig::default_policy`]: loopback clients and authenticated
//! clients may relay, no domain is ours. With the table delivery is on unless
//! `enabled = false`.
//!
//! [`RelayConfig`] builds the sans-IO values of `smtp-relay` the server and the relay's driver
//! use: [`policy`](RelayConfig::policy) (relay control, with the recipients table read from its
//! file), [`routes`](RelayConfig::routes), [`schedule`](RelayConfig::schedule) and
//! [`verify_settings`](RelayConfig::verify_settings).
//!
//! What it does not do: deliver, resolve or watch the recipients file (the server re-reads it
//! when it changes; see `server/relay_watch.rs`).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use smtp_relay::retry::{
    DEFAULT_BOUNCE_MAX_AGE, DEFAULT_DOWN_TIME, DEFAULT_INTERVALS, DEFAULT_MAX_AGE,
};
use smtp_relay::route::control::DEFAULT_NETWORKS;
use smtp_relay::route::{DomainPattern, RecipientTable, RelayPolicy, Route, RouteTable, TlsPolicy};
use smtp_relay::verify::{
    Ttls, VerifySettings, DEFAULT_CACHE_SIZE, DEFAULT_NEGATIVE_TTL, DEFAULT_POSITIVE_TTL,
    DEFAULT_TEMPFAIL_TTL, DEFAULT_THREADS, DEFAULT_TIMEOUT,
};
use smtp_relay::{RetryPolicy, ScheduleConfig};

use super::{ConfigDuration, ConfigError};

/// The port of `[relay] port` when the key is absent (RFC 5321's).
pub const DEFAULT_RELAY_PORT: u16 = 25;
/// `connections_per_destination` when absent.
pub const DEFAULT_CONNECTIONS_PER_DESTINATION: usize = 20;
/// `messages_per_connection` when absent.
pub const DEFAULT_MESSAGES_PER_CONNECTION: usize = 1000;
/// `[relay.dns] timeout` when absent.
pub const DEFAULT_DNS_TIMEOUT: Duration = Duration::from_secs(5);
/// The port of a `[relay.dns] nameservers` entry written without one.
pub const DNS_PORT: u16 = 53;
/// The most `[relay.verify] threads`.
pub const MAX_VERIFY_THREADS: usize = 64;

/// The `[relay]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayConfig {
    /// Deliver what is accepted (default `true` when the table is present). `false` keeps
    /// the table's relay control but delivers nothing.
    pub enabled: bool,
    /// The domains we accept mail for from any client (inbound MX role): exact names or
    /// `.suffix`; `*` is refused (an open relay). Each needs a `[[relay.route]]`.
    pub domains: Vec<String>,
    /// Client networks (CIDR) that may relay to any domain. Default: loopback only.
    pub networks: Vec<String>,
    /// The port for next hops found through MX or implicit MX, and static hosts written
    /// without one (default 25).
    pub port: u16,
    /// At most this many connections to one destination at once (default 20).
    pub connections_per_destination: usize,
    /// At most this many messages over one connection before it is closed (default 1000).
    pub messages_per_connection: usize,
    /// The valid recipients of the relay domains: a file of addresses, or `@domain` for a
    /// whole domain, one per line; re-read when it changes. Others get `550 5.1.1`.
    pub recipients: Option<PathBuf>,
    /// How long a next hop that keeps refusing connections is left alone (default `"5m"`).
    pub down_time: ConfigDuration,
    /// Send one `Action: delayed` notification once a message is this old (off by default).
    pub delay_warning: Option<ConfigDuration>,
    /// `[relay.retry]`.
    pub retry: RetryConfig,
    /// `[relay.dns]`.
    pub dns: DnsConfig,
    /// `[relay.verify]`: the RCPT probes of routes with `verify_recipients`.
    pub verify: VerifyConfig,
    /// `[[relay.route]]`, in order: the first matching route wins; unrouted domains go to
    /// their MX.
    #[serde(rename = "route")]
    pub routes: Vec<RouteConfig>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            enabled: true,
            domains: Vec::new(),
            networks: DEFAULT_NETWORKS.iter().map(|n| (*n).to_owned()).collect(),
            port: DEFAULT_RELAY_PORT,
            connections_per_destination: DEFAULT_CONNECTIONS_PER_DESTINATION,
            messages_per_connection: DEFAULT_MESSAGES_PER_CONNECTION,
            recipients: None,
            down_time: ConfigDuration(DEFAULT_DOWN_TIME),
            delay_warning: None,
            retry: RetryConfig::default(),
            dns: DnsConfig::default(),
            verify: VerifyConfig::default(),
            routes: Vec::new(),
        }
    }
}

/// `[relay.verify]`: how recipients of routes with `verify_recipients = true` are probed
/// and how long the answers are kept.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerifyConfig {
    /// How long a recipient the next hop accepted is remembered (default `"7d"`).
    pub positive_ttl: ConfigDuration,
    /// How long a recipient the next hop refused (5xx) is remembered (default `"3h"`).
    pub negative_ttl: ConfigDuration,
    /// How long a temporary failure (4xx, next hop down) is remembered (default `"1m"`).
    pub tempfail_ttl: ConfigDuration,
    /// The time limit of a whole probe, connection to QUIT (default `"30s"`); shorter than
    /// `[timeouts] hook`, which ends the session's wait for it.
    pub timeout: ConfigDuration,
    /// The most answers remembered; the oldest go first (default 100000).
    pub cache_size: usize,
    /// Probe threads (default 4).
    pub threads: usize,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        VerifyConfig {
            positive_ttl: ConfigDuration(DEFAULT_POSITIVE_TTL),
            negative_ttl: ConfigDuration(DEFAULT_NEGATIVE_TTL),
            tempfail_ttl: ConfigDuration(DEFAULT_TEMPFAIL_TTL),
            timeout: ConfigDuration(DEFAULT_TIMEOUT),
            cache_size: DEFAULT_CACHE_SIZE,
            threads: DEFAULT_THREADS,
        }
    }
}

/// `[relay.retry]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// The waits after the 1st, 2nd, ... failed attempt; then the last one repeats (default
    /// 5m, 10m, 20m, 40m, 1h, 2h, 4h).
    pub intervals: Vec<ConfigDuration>,
    /// A message older than this bounces with `4.4.7` (default `"5d"`).
    pub max_age: ConfigDuration,
    /// The same for messages from the null sender, which are then dropped (default `"2d"`).
    pub bounce_max_age: ConfigDuration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            intervals: DEFAULT_INTERVALS
                .iter()
                .map(|d| ConfigDuration(*d))
                .collect(),
            max_age: ConfigDuration(DEFAULT_MAX_AGE),
            bounce_max_age: ConfigDuration(DEFAULT_BOUNCE_MAX_AGE),
        }
    }
}

/// `[relay.dns]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsConfig {
    /// Name servers, `IP` or `IP:port` (`[IPv6]:port`); port 53 by default. Empty (the
    /// default): the system's `resolv.conf`.
    pub nameservers: Vec<String>,
    /// How long one query may take (default `"5s"`).
    pub timeout: ConfigDuration,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            nameservers: Vec::new(),
            timeout: ConfigDuration(DEFAULT_DNS_TIMEOUT),
        }
    }
}

impl DnsConfig {
    /// The name servers as socket addresses (port 53 when none is written); empty means the
    /// system's. An error names the entry.
    pub fn nameservers(&self) -> Result<Vec<SocketAddr>, ConfigError> {
        self.nameservers
            .iter()
            .map(|entry| {
                parse_nameserver(entry).ok_or_else(|| {
                    ConfigError::invalid(
                        "relay.dns.nameservers",
                        format!("{entry:?} is not IP or IP:port"),
                    )
                })
            })
            .collect()
    }
}

fn parse_nameserver(entry: &str) -> Option<SocketAddr> {
    let entry = entry.trim();
    if let Ok(addr) = entry.parse::<SocketAddr>() {
        return (addr.port() != 0).then_some(addr);
    }
    let ip = entry
        .strip_prefix('[')
        .and_then(|e| e.strip_suffix(']'))
        .unwrap_or(entry);
    ip.parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, DNS_PORT))
}

/// One `[[relay.route]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RouteConfig {
    /// The recipient domains it matches: exact names, `.suffix` for subdomains, or `*`.
    pub domains: Vec<String>,
    /// Static next hops, tried in order: `IP:port`, `[IPv6]:port`, `IP`, `name`, `name:port`
    /// (names resolve through A/AAAA, never MX; no port: `[relay] port`).
    pub hosts: Vec<String>,
    /// `none`, `opportunistic` (the default), `required` or `verify`.
    pub tls: Option<String>,
    /// Check each recipient of these domains at RCPT with a probe to the route's next hop
    /// (the answer cached) instead of a recipients file.
    pub verify_recipients: bool,
}

impl RouteConfig {
    /// The sans-IO route.
    pub fn route(&self) -> Result<Route, smtp_relay::route::ConfigError> {
        Route::new(&self.domains, &self.hosts, self.tls.as_deref())
    }

    /// The TLS policy (`opportunistic` when the key is absent or invalid).
    pub fn tls_policy(&self) -> TlsPolicy {
        self.tls
            .as_deref()
            .and_then(|t| t.parse().ok())
            .unwrap_or_default()
    }
}

/// A relay-crate config error as ours, naming `key`.
fn relay_error(key: &str, e: smtp_relay::route::ConfigError) -> ConfigError {
    use smtp_relay::route::ConfigError as E;
    let message = match &e {
        E::Wildcard { .. } => {
            "\"*\" is not allowed here (it would accept mail for every domain: an open relay)"
                .to_owned()
        }
        E::Invalid { entry, reason, .. } => format!("invalid entry {entry:?}: {reason}"),
        E::TableLine {
            line,
            entry,
            reason,
        } => format!("line {line}: invalid entry {entry:?}: {reason}"),
        E::Unrouted { entry } => format!(
            "{entry:?} has no [[relay.route]] (its mail would be sent to its own MX, this host)"
        ),
        other => other.to_string(),
    };
    ConfigError::invalid(key, message)
}

/// The key of route `i`'s `leaf` (`relay.route[1].hosts`, routes counted from 0 as
/// `listener[N]` keys are).
fn route_key(i: usize, leaf: &str) -> String {
    format!("relay.route[{i}].{leaf}")
}

impl RelayConfig {
    /// Relay control when the config has no `[relay]` table: loopback and authenticated
    /// clients may relay anywhere; no domain is ours, so every other client is refused.
    pub fn default_policy() -> RelayPolicy {
        let none: [&str; 0] = [];
        RelayPolicy::new(&none, None, None).expect("the built-in networks parse")
    }

    /// Checks every key, each error naming it (`relay.domains`, `relay.route[0].hosts`, ...).
    /// Reads no file (`recipients` is read by [`policy`](RelayConfig::policy)).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, message: &str| Err(ConfigError::invalid(key, message));
        let policy = self.policy_with(None)?;
        self.routes()?
            .check_relay_domains(policy.domains())
            .map_err(|e| relay_error("relay.domains", e))?;
        if self.port == 0 {
            return bad("relay.port", "must be 1..=65535");
        }
        if self.connections_per_destination == 0 {
            return bad("relay.connections_per_destination", "must be > 0");
        }
        if self.messages_per_connection == 0 {
            return bad("relay.messages_per_connection", "must be > 0");
        }
        if matches!(&self.recipients, Some(p) if p.as_os_str().is_empty()) {
            return bad("relay.recipients", "must name a file");
        }
        let r = &self.retry;
        if r.intervals.is_empty() {
            return bad("relay.retry.intervals", "at least one interval is needed");
        }
        if r.intervals.iter().any(|d| d.is_zero()) {
            return bad(
                "relay.retry.intervals",
                "every interval must be at least \"1s\"",
            );
        }
        for (key, value) in [
            ("relay.retry.max_age", r.max_age),
            ("relay.retry.bounce_max_age", r.bounce_max_age),
            ("relay.down_time", self.down_time),
            ("relay.dns.timeout", self.dns.timeout),
            ("relay.verify.timeout", self.verify.timeout),
        ] {
            if value.is_zero() {
                return bad(key, "must be at least \"1s\"");
            }
        }
        if self.delay_warning.is_some_and(|d| d.is_zero()) {
            return bad(
                "relay.delay_warning",
                "must be at least \"1s\" (leave it out to send no delay warning)",
            );
        }
        if self.verify.cache_size == 0 {
            return bad("relay.verify.cache_size", "must be > 0");
        }
        if !(1..=MAX_VERIFY_THREADS).contains(&self.verify.threads) {
            return bad("relay.verify.threads", "must be 1..=64");
        }
        self.dns.nameservers()?;
        Ok(())
    }

    /// What an operator should hear about at start: relay domains with neither `recipients`
    /// nor `verify_recipients` on the route that covers them (every address is accepted and
    /// the unknown ones bounce later: backscatter to forged senders).
    pub fn warnings(&self) -> Vec<String> {
        if self.recipients.is_some() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for domain in &self.domains {
            let Ok(entry) = DomainPattern::parse(domain) else {
                continue;
            };
            let verified = self
                .routes
                .iter()
                .find(|r| {
                    r.route().is_ok_and(|route| {
                        route.domains().patterns().iter().any(|p| p.covers(&entry))
                    })
                })
                .is_some_and(|r| r.verify_recipients);
            if !verified {
                out.push(format!(
                    "relay.domains: {domain:?} has neither relay.recipients nor \
                     verify_recipients on its route: every address is accepted and unknown \
                     ones bounce later (backscatter to forged senders)"
                ));
            }
        }
        out
    }

    /// Whether any route verifies its recipients (then the server runs the probe threads).
    pub fn verifies_any(&self) -> bool {
        self.routes.iter().any(|r| r.verify_recipients)
    }

    /// The probes' settings: the routes, `[relay.dns]`, `[relay.verify]`, and `helo` as the
    /// EHLO name.
    pub fn verify_settings(&self, helo: &str) -> Result<VerifySettings, ConfigError> {
        let v = &self.verify;
        let mut settings = VerifySettings::new(self.routes()?, helo);
        settings.nameservers = self.dns.nameservers()?;
        settings.dns_timeout = self.dns.timeout.get();
        settings.timeout = v.timeout.get();
        settings.ttls = Ttls {
            positive: v.positive_ttl.get(),
            negative: v.negative_ttl.get(),
            tempfail: v.tempfail_ttl.get(),
        };
        settings.cache_size = v.cache_size;
        Ok(settings)
    }

    /// Whether the route serving `domain` (the first that matches it) asks for
    /// `verify_recipients`.
    pub fn verifies_recipients(&self, domain: &str) -> bool {
        // The relay policy's answer: the same first-match rule relay control applies.
        self.policy_with(None).is_ok_and(|p| p.verifies(domain))
    }

    /// Relay control with `recipients` as the table (what the recipients file holds).
    pub fn policy_with(
        &self,
        recipients: Option<RecipientTable>,
    ) -> Result<RelayPolicy, ConfigError> {
        let key = |e: &smtp_relay::route::ConfigError| match e {
            smtp_relay::route::ConfigError::Invalid { key, .. } if key.contains("networks") => {
                "relay.networks"
            }
            _ => "relay.domains",
        };
        let verification = self
            .routes
            .iter()
            .filter_map(|r| Some((r.route().ok()?.domains().clone(), r.verify_recipients)))
            .collect();
        RelayPolicy::new(&self.domains, Some(&self.networks), recipients)
            .map(|p| p.with_verification(verification))
            .map_err(|e| relay_error(key(&e), e))
    }

    /// Reads and parses the recipients file, if one is configured; an error names the key,
    /// the file and the line.
    pub fn load_recipients(&self) -> Result<Option<RecipientTable>, ConfigError> {
        match &self.recipients {
            None => Ok(None),
            Some(path) => read_recipients(path).map(Some),
        }
    }

    /// Relay control: domains, networks and the recipients table read from its file now.
    pub fn policy(&self) -> Result<RelayPolicy, ConfigError> {
        self.policy_with(self.load_recipients()?)
    }

    /// The static routes and `[relay] port`.
    pub fn routes(&self) -> Result<RouteTable, ConfigError> {
        let routes = self
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| {
                r.route().map_err(|e| {
                    let leaf = match &e {
                        smtp_relay::route::ConfigError::Invalid { key, .. } => {
                            key.rsplit(' ').next().unwrap_or("domains")
                        }
                        _ => "domains",
                    };
                    relay_error(&route_key(i, leaf), e)
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RouteTable::new(routes, Some(self.port)))
    }

    /// The retry policy: `[relay.retry]`, `down_time` and `delay_warning`.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            intervals: self.retry.intervals.iter().map(|d| d.get()).collect(),
            max_age: self.retry.max_age.get(),
            bounce_max_age: self.retry.bounce_max_age.get(),
            delay_warning: self.delay_warning.map(ConfigDuration::get),
            down_time: self.down_time.get(),
            ..RetryPolicy::default()
        }
    }

    /// The scheduler's settings (the jitter seed left at 0 for the driver to set).
    pub fn schedule(&self) -> ScheduleConfig {
        ScheduleConfig {
            retry: self.retry_policy(),
            connections_per_destination: self.connections_per_destination,
            ..ScheduleConfig::default()
        }
    }
}

impl crate::config::ServerConfig {
    /// The relay's settings when it is to deliver: a `[relay]` table with `enabled` (the
    /// default). `None`: nothing is looked up or sent, mail is kept in the spool.
    pub fn relay_delivery(&self) -> Option<&RelayConfig> {
        self.relay.as_ref().filter(|r| r.enabled)
    }
}

/// Reads a recipients file; an error names `relay.recipients`, the file and its line.
pub fn read_recipients(path: &Path) -> Result<RecipientTable, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::invalid(
            "relay.recipients",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    RecipientTable::parse(&text).map_err(|e| {
        let mut err = relay_error("relay.recipients", e);
        if let ConfigError::Invalid { message, .. } = &mut err {
            *message = format!("{}: {message}", path.display());
        }
        err
    })
}

#[cfg(test)]
mod tests;
