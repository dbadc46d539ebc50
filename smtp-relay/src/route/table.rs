//! Static routes (`[[relay.route]]`): which domains go to which hosts, with which TLS policy,
//! and the config check that every relay domain has a route.
//!
//! The first route whose `domains` match the recipient domain wins; a domain no route matches
//! goes to its MX. Hosts are written `IP:port`, `[IPv6]:port`, `IP`, `name` or
//! `name:port`; a host without a port uses `[relay] port` (default 25); names resolve through
//! A/AAAA, never MX.
//!
//! What it does not do: resolve names or parse TOML (the
//! caller passes the values of the keys).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use super::domain::{normalize, DomainSet};
use super::ConfigError;

/// The port when `[relay] port` is not given.
pub const DEFAULT_PORT: u16 = 25;

/// A route's `tls`: how STARTTLS is used towards its hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TlsPolicy {
    /// `none`: never STARTTLS.
    None,
    /// `opportunistic` (the default): STARTTLS when offered, plaintext when not or when the
    /// handshake fails (RFC 7435).
    #[default]
    Opportunistic,
    /// `required`: STARTTLS or defer, never plaintext; the certificate is not checked
    /// (encrypted, not authenticated: a self-signed certificate will do).
    Required,
    /// `verify`: STARTTLS with a certificate that chains to a trusted root (the Mozilla
    /// roots) and is valid for the next hop's host name, or defer.
    Verify,
}

impl TlsPolicy {
    /// The client engine's TLS mode and certificate verification for this policy, the same
    /// for deliveries and recipient probes: `required` encrypts without checking the
    /// certificate, `verify` checks it against the host name.
    pub fn client_settings(self) -> (smtp_client::TlsMode, smtp_client::driver::tls::Verify) {
        use smtp_client::driver::tls::Verify;
        use smtp_client::TlsMode;
        match self {
            TlsPolicy::None => (TlsMode::Disabled, Verify::ByPolicy),
            TlsPolicy::Opportunistic => (TlsMode::Opportunistic, Verify::ByPolicy),
            TlsPolicy::Required => (TlsMode::Required, Verify::Never),
            TlsPolicy::Verify => (TlsMode::Required, Verify::Always),
        }
    }
}

impl FromStr for TlsPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<TlsPolicy, String> {
        match s {
            "none" => Ok(TlsPolicy::None),
            "opportunistic" => Ok(TlsPolicy::Opportunistic),
            "required" => Ok(TlsPolicy::Required),
            "verify" => Ok(TlsPolicy::Verify),
            _ => Err("expected none, opportunistic, required or verify".to_string()),
        }
    }
}

impl fmt::Display for TlsPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsPolicy::None => "none",
            TlsPolicy::Opportunistic => "opportunistic",
            TlsPolicy::Required => "required",
            TlsPolicy::Verify => "verify",
        })
    }
}

/// One entry of a route's `hosts`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostSpec {
    /// An address, with its port if one was written.
    Addr(IpAddr, Option<u16>),
    /// A host name (normalised), resolved through A/AAAA, with its port if one was written.
    Name(String, Option<u16>),
}

impl FromStr for HostSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<HostSpec, String> {
        let s = s.trim();
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(HostSpec::Addr(addr.ip(), Some(addr.port())));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(HostSpec::Addr(ip, None));
        }
        if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            return inner
                .parse::<IpAddr>()
                .map(|ip| HostSpec::Addr(ip, None))
                .map_err(|_| "not an IP address in brackets".to_string());
        }
        let (name, port) = match s.rsplit_once(':') {
            Some((name, port)) => {
                let port = port
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0 && port.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| "invalid port".to_string())?;
                (name, Some(port))
            }
            None => (s, None),
        };
        let name = normalize(name).ok_or_else(|| "not a host name or address".to_string())?;
        Ok(HostSpec::Name(name, port))
    }
}

/// One `[[relay.route]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    domains: DomainSet,
    hosts: Vec<HostSpec>,
    tls: TlsPolicy,
}

impl Route {
    /// Builds a route from the values of its keys; `tls` is `None` when the key is absent
    /// (opportunistic). A route needs at least one domain and one host.
    pub fn new<S: AsRef<str>>(
        domains: &[S],
        hosts: &[S],
        tls: Option<&str>,
    ) -> Result<Route, ConfigError> {
        let invalid = |key, entry: &str, reason: String| ConfigError::Invalid {
            key,
            entry: entry.to_string(),
            reason,
        };
        if domains.is_empty() {
            return Err(invalid("[[relay.route]] domains", "", "no domains".into()));
        }
        if hosts.is_empty() {
            return Err(invalid("[[relay.route]] hosts", "", "no hosts".into()));
        }
        let domains = DomainSet::parse("[[relay.route]] domains", domains, true)?;
        let hosts = hosts
            .iter()
            .map(|h| {
                h.as_ref()
                    .parse()
                    .map_err(|r| invalid("[[relay.route]] hosts", h.as_ref(), r))
            })
            .collect::<Result<_, _>>()?;
        let tls = match tls {
            Some(t) => t
                .parse()
                .map_err(|r| invalid("[[relay.route]] tls", t, r))?,
            None => TlsPolicy::default(),
        };
        Ok(Route {
            domains,
            hosts,
            tls,
        })
    }

    /// The domains it matches.
    pub fn domains(&self) -> &DomainSet {
        &self.domains
    }

    /// Its hosts, in the order they are tried.
    pub fn hosts(&self) -> &[HostSpec] {
        &self.hosts
    }

    /// Its TLS policy.
    pub fn tls(&self) -> TlsPolicy {
        self.tls
    }
}

/// The routes in config order and `[relay] port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    routes: Vec<Route>,
    port: u16,
}

impl RouteTable {
    /// A table of `routes`; `port` is `[relay] port` (`None`: [`DEFAULT_PORT`]).
    pub fn new(routes: Vec<Route>, port: Option<u16>) -> RouteTable {
        RouteTable {
            routes,
            port: port.unwrap_or(DEFAULT_PORT),
        }
    }

    /// The port for hosts without one, and for every MX host.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The first route matching `domain` (as sent: any case, U-labels, trailing dot); `None`
    /// means the domain goes to its MX.
    pub fn lookup(&self, domain: &str) -> Option<&Route> {
        let name = normalize(domain)?;
        self.routes
            .iter()
            .find(|r| r.domains.matches_normalized(&name))
    }

    /// The config check between `[relay] domains` and the routes: every relay domain entry must
    /// be covered by one route (an exact name by a route matching it, a `.suffix` by a route
    /// matching every name under it), or its mail would be looked up in its own MX.
    pub fn check_relay_domains(&self, relay_domains: &DomainSet) -> Result<(), ConfigError> {
        for entry in relay_domains.patterns() {
            let covered = self
                .routes
                .iter()
                .any(|r| r.domains.patterns().iter().any(|p| p.covers(entry)));
            if !covered {
                return Err(ConfigError::Unrouted {
                    entry: entry.to_string(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(domains: &[&str], hosts: &[&str], tls: Option<&str>) -> Route {
        Route::new(domains, hosts, tls).unwrap()
    }

    #[test]
    fn hosts_parse_every_written_form() {
        let p = |s: &str| s.parse::<HostSpec>();
        assert_eq!(
            p("127.0.0.1:30025"),
            Ok(HostSpec::Addr("127.0.0.1".parse().unwrap(), Some(30025)))
        );
        assert_eq!(
            p("[::1]:30025"),
            Ok(HostSpec::Addr("::1".parse().unwrap(), Some(30025)))
        );
        assert_eq!(
            p("192.0.2.1"),
            Ok(HostSpec::Addr("192.0.2.1".parse().unwrap(), None))
        );
        assert_eq!(
            p("[2001:db8::1]"),
            Ok(HostSpec::Addr("2001:db8::1".parse().unwrap(), None))
        );
        assert_eq!(p("::1"), Ok(HostSpec::Addr("::1".parse().unwrap(), None)));
        assert_eq!(
            p("MX.Example.NET"),
            Ok(HostSpec::Name("mx.example.net".into(), None))
        );
        assert_eq!(
            p("mx.example.net:2525"),
            Ok(HostSpec::Name("mx.example.net".into(), Some(2525)))
        );
        for bad in [
            "mx.example.net:0",
            "mx.example.net:x",
            "mx:+25",
            "[mx.example.net]",
            "",
            "a..b",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tls_policy_words() {
        for (word, policy) in [
            ("none", TlsPolicy::None),
            ("opportunistic", TlsPolicy::Opportunistic),
            ("required", TlsPolicy::Required),
            ("verify", TlsPolicy::Verify),
        ] {
            assert_eq!(word.parse::<TlsPolicy>(), Ok(policy));
            assert_eq!(policy.to_string(), word);
        }
        assert!("Verify".parse::<TlsPolicy>().is_err());
        assert_eq!(
            route(&["a.test"], &["h.test"], None).tls(),
            TlsPolicy::Opportunistic
        );
        let err = Route::new(&["a.test"], &["h.test"], Some("strict")).unwrap_err();
        assert!(err.to_string().contains("[[relay.route]] tls"), "{err}");
    }

    #[test]
    fn the_first_matching_route_wins() {
        let table = RouteTable::new(
            vec![
                route(
                    &["target.test", ".target.test"],
                    &["127.0.0.1:30025"],
                    Some("none"),
                ),
                route(&[".test"], &["127.0.0.2"], None),
                route(&["*"], &["127.0.0.3"], None),
            ],
            None,
        );
        let first = |d: &str| table.lookup(d).map(|r| r.hosts()[0].clone());
        let h = |s: &str| Some(s.parse::<HostSpec>().unwrap());
        assert_eq!(first("TARGET.test."), h("127.0.0.1:30025"));
        assert_eq!(first("mx.target.test"), h("127.0.0.1:30025"));
        assert_eq!(first("other.test"), h("127.0.0.2"));
        assert_eq!(first("example.org"), h("127.0.0.3"));
        assert_eq!(table.port(), 25);
        let none = RouteTable::new(vec![route(&["a.test"], &["h.test"], None)], Some(2525));
        assert!(none.lookup("b.test").is_none());
        assert_eq!(none.port(), 2525);
    }

    #[test]
    fn every_relay_domain_needs_a_route() {
        let table = RouteTable::new(
            vec![route(
                &["example.org", ".sub.example.org"],
                &["127.0.0.1:30025"],
                None,
            )],
            None,
        );
        let relay = |d: &[&str]| DomainSet::parse("[relay] domains", d, false).unwrap();
        assert!(table
            .check_relay_domains(&relay(&["Example.ORG", ".sub.example.org"]))
            .is_ok());
        assert!(table
            .check_relay_domains(&relay(&["a.sub.example.org"]))
            .is_ok());
        assert!(table
            .check_relay_domains(&relay(&[".a.sub.example.org"]))
            .is_ok());
        let err = table
            .check_relay_domains(&relay(&["example.org", "other.test"]))
            .unwrap_err();
        assert_eq!(
            err,
            ConfigError::Unrouted {
                entry: "other.test".into()
            }
        );
        assert!(err.to_string().contains("other.test"), "{err}");
        // `.example.org` is not covered by a route for `example.org` and `.sub.example.org`.
        assert!(table
            .check_relay_domains(&relay(&[".example.org"]))
            .is_err());
        let any = RouteTable::new(vec![route(&["*"], &["127.0.0.1"], None)], None);
        assert!(any
            .check_relay_domains(&relay(&[".example.org", "x.test"]))
            .is_ok());
    }

    #[test]
    fn a_route_needs_domains_and_hosts() {
        let none: [&str; 0] = [];
        assert!(Route::new(&none, &["h.test"], None).is_err());
        assert!(Route::new(&["a.test"], &none, None).is_err());
        let err = Route::new(&["a.test"], &["h.test:99999"], None).unwrap_err();
        assert!(err.to_string().contains("[[relay.route]] hosts"), "{err}");
    }
}
