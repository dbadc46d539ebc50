//! `[auth]` and `[[listener]]`: SMTP AUTH, and listeners with a role (MX or submission), a
//! TLS mode (STARTTLS, implicit TLS of RFC 8314, none) and the HAProxy PROXY protocol; with
//! their range and consistency checks, each error naming its key (`listener[1].tls`).
//!
//! What it does not do: know whether a plugin can verify AUTH (the server builder checks that
//! with the registry: [`check_auth_hook`]), nor bind anything.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};
use smtp_proto::sasl::Mechanism;
use smtp_relay::route::control::Network;

use super::{ConfigDuration, ConfigError, ServerConfig};

/// The networks whose PROXY header is believed when `proxy_from` is not given: loopback.
pub const DEFAULT_PROXY_FROM: [&str; 2] = ["127.0.0.1/32", "::1/128"];
/// How long a client of a `proxy_protocol` listener may take to send its PROXY header when
/// `proxy_timeout` is not given.
pub const DEFAULT_PROXY_TIMEOUT: ConfigDuration = ConfigDuration::from_secs(5);

/// `[auth]`: SMTP AUTH (RFC 4954), offered when a plugin handles AUTH (auth-file).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// The mechanisms offered, in order: `PLAIN`, `LOGIN` (the ones implemented).
    pub mechanisms: Vec<String>,
    /// Offer and accept AUTH without TLS. Off by default: AUTH is offered only after
    /// STARTTLS (or on an implicit-TLS listener), and `538 5.7.11` before it.
    pub plaintext: bool,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            mechanisms: vec!["PLAIN".to_owned(), "LOGIN".to_owned()],
            plaintext: false,
        }
    }
}

impl AuthSettings {
    /// The configured mechanisms, parsed (the names were validated).
    pub fn parsed_mechanisms(&self) -> Vec<Mechanism> {
        self.mechanisms
            .iter()
            .filter_map(|m| Mechanism::from_name(m))
            .collect()
    }
}

/// What a listener is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ListenerRole {
    /// Mail from other servers (port 25): AUTH offered when configured, never required.
    #[default]
    Mx,
    /// Mail from users' programs (port 587 or 465, RFC 6409): MAIL before AUTH gets
    /// `530 5.7.0`, and AUTH needs TLS unless `[auth] plaintext`.
    Submission,
}

/// How a listener speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ListenerTls {
    /// STARTTLS offered when `[tls]` has a certificate (RFC 3207).
    #[default]
    Starttls,
    /// TLS from the first byte, before the banner (RFC 8314, port 465). Needs `[tls]`.
    Implicit,
    /// Plaintext only: no STARTTLS.
    None,
}

/// One `[[listener]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// The address to bind (port 0: any free port).
    pub address: SocketAddr,
    /// `mx` (default) or `submission`.
    #[serde(default)]
    pub role: ListenerRole,
    /// `starttls` (default), `implicit` or `none`.
    #[serde(default)]
    pub tls: ListenerTls,
    /// Every connection starts with an HAProxy PROXY header (v1 or v2); the address in it
    /// is the client for logs, limits, relay control and `Received:`.
    #[serde(default)]
    pub proxy_protocol: bool,
    /// The proxies whose PROXY header is believed (networks, `10.0.0.0/8`); a connection
    /// from anywhere else is closed. Default: loopback.
    #[serde(default = "default_proxy_from")]
    pub proxy_from: Vec<String>,
    /// How long the PROXY header may take to arrive (default 5 s), then the connection is
    /// closed.
    #[serde(default = "default_proxy_timeout")]
    pub proxy_timeout: ConfigDuration,
}

fn default_proxy_from() -> Vec<String> {
    DEFAULT_PROXY_FROM.iter().map(|s| (*s).to_owned()).collect()
}

fn default_proxy_timeout() -> ConfigDuration {
    DEFAULT_PROXY_TIMEOUT
}

impl ListenerConfig {
    /// An `mx` listener on `address` with STARTTLS and no PROXY protocol: what each entry of
    /// `listen` stands for.
    pub fn mx(address: SocketAddr) -> ListenerConfig {
        ListenerConfig {
            address,
            role: ListenerRole::Mx,
            tls: ListenerTls::Starttls,
            proxy_protocol: false,
            proxy_from: default_proxy_from(),
            proxy_timeout: DEFAULT_PROXY_TIMEOUT,
        }
    }

    /// The parsed `proxy_from` networks (the entries were validated; a bad one is skipped).
    pub fn proxy_networks(&self) -> Vec<Network> {
        self.proxy_from
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect()
    }

    /// Whether a PROXY header from `ip` is believed.
    pub fn trusts_proxy(&self, ip: IpAddr) -> bool {
        self.proxy_networks().iter().any(|n| n.contains(ip))
    }
}

impl ServerConfig {
    /// Every listener to bind: one `mx` listener per `listen` address, then the
    /// `[[listener]]` tables, in order.
    pub fn listeners(&self) -> Vec<ListenerConfig> {
        self.listen
            .iter()
            .map(|a| ListenerConfig::mx(*a))
            .chain(self.listener.iter().cloned())
            .collect()
    }

    /// The `[auth]` and `[[listener]]` checks of [`validate`](ServerConfig::validate).
    pub(super) fn validate_listeners(&self) -> Result<(), ConfigError> {
        let bad = |key: String, message: String| Err(ConfigError::invalid(key, message));
        if self.listen.is_empty() && self.listener.is_empty() {
            return bad(
                "listen".into(),
                "at least one address is needed (in listen or a [[listener]] table)".into(),
            );
        }
        if self.auth.mechanisms.is_empty() {
            return bad(
                "auth.mechanisms".into(),
                "name at least one of PLAIN, LOGIN".into(),
            );
        }
        let mut seen = Vec::new();
        for m in &self.auth.mechanisms {
            match Mechanism::from_name(m) {
                Some(mech @ (Mechanism::Plain | Mechanism::Login)) => {
                    if seen.contains(&mech) {
                        return bad("auth.mechanisms".into(), format!("{m:?} is listed twice"));
                    }
                    seen.push(mech);
                }
                _ => {
                    return bad(
                        "auth.mechanisms".into(),
                        format!("{m:?} is not supported (PLAIN and LOGIN are)"),
                    )
                }
            }
        }
        let has_cert = self.tls.cert.is_some() && self.tls.key.is_some();
        let mut addresses: Vec<SocketAddr> = self.listen.clone();
        for (i, l) in self.listener.iter().enumerate() {
            let key = |leaf: &str| format!("listener[{i}].{leaf}");
            if l.address.port() != 0 && addresses.contains(&l.address) {
                return bad(
                    key("address"),
                    format!("{} is already a listener", l.address),
                );
            }
            addresses.push(l.address);
            if l.tls == ListenerTls::Implicit && !has_cert {
                return bad(key("tls"), "implicit TLS needs [tls] cert and key".into());
            }
            if l.role == ListenerRole::Submission {
                match l.tls {
                    ListenerTls::None if !self.auth.plaintext => {
                        return bad(
                            key("tls"),
                            "a submission listener without TLS could never accept AUTH: \
                             set [auth] plaintext = true, or use tls = \"starttls\" or \
                             \"implicit\""
                                .into(),
                        )
                    }
                    ListenerTls::Starttls if !has_cert && !self.auth.plaintext => {
                        return bad(
                            key("tls"),
                            "a submission listener with STARTTLS needs [tls] cert and key \
                             (AUTH is only offered under TLS unless [auth] plaintext = true)"
                                .into(),
                        )
                    }
                    _ => {}
                }
            }
            if l.proxy_protocol && l.proxy_from.is_empty() {
                return bad(
                    key("proxy_from"),
                    "proxy_protocol needs at least one trusted proxy network".into(),
                );
            }
            for n in &l.proxy_from {
                if let Err(e) = n.parse::<Network>() {
                    return bad(key("proxy_from"), format!("{n:?}: {e}"));
                }
            }
            if l.proxy_timeout.is_zero() {
                return bad(key("proxy_timeout"), "must be > 0 seconds".into());
            }
        }
        Ok(())
    }
}

/// The check only the server can make, with its plugins: a submission listener needs a
/// plugin that verifies AUTH (`has_auth_hook`, e.g. `[plugins.auth-file]`), else no client
/// could ever send mail through it.
pub fn check_auth_hook(config: &ServerConfig, has_auth_hook: bool) -> Result<(), ConfigError> {
    if has_auth_hook {
        return Ok(());
    }
    match config
        .listener
        .iter()
        .position(|l| l.role == ListenerRole::Submission)
    {
        Some(i) => Err(ConfigError::invalid(
            format!("listener[{i}].role"),
            "a submission listener needs a plugin that verifies AUTH (for example a \
             [plugins.auth-file] table); none is configured",
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn parse(text: &str) -> Result<ServerConfig, String> {
        ServerConfig::from_toml(text, Path::new("l.toml")).map_err(|e| e.to_string())
    }

    const TLS: &str = "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n";

    #[test]
    fn listener_tables_parse_with_their_defaults() {
        let c = parse(&format!(
            "{TLS}[[listener]]\naddress = \"0.0.0.0:587\"\nrole = \"submission\"\n\
             [[listener]]\naddress = \"[::]:465\"\nrole = \"submission\"\ntls = \"implicit\"\n\
             [[listener]]\naddress = \"127.0.0.1:25\"\nproxy_protocol = true\n\
             proxy_from = [\"10.0.0.0/8\"]\nproxy_timeout = \"2s\"\n"
        ))
        .unwrap();
        // Tables without `listen`: only the tables are bound.
        assert!(c.listen.is_empty());
        let l = c.listeners();
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].role, ListenerRole::Submission);
        assert_eq!(l[0].tls, ListenerTls::Starttls);
        assert!(!l[0].proxy_protocol);
        assert_eq!(l[0].proxy_from, DEFAULT_PROXY_FROM);
        assert_eq!(l[1].tls, ListenerTls::Implicit);
        assert_eq!(l[2].role, ListenerRole::Mx);
        assert!(l[2].trusts_proxy("10.1.2.3".parse().unwrap()));
        assert!(!l[2].trusts_proxy("127.0.0.1".parse().unwrap()));
        assert_eq!(l[2].proxy_timeout, ConfigDuration::from_secs(2));
        assert_eq!(c.auth, AuthSettings::default());
    }

    #[test]
    fn listen_stays_the_mx_shorthand() {
        let c = parse(
            "listen = [\"127.0.0.1:2525\"]\n[auth]\nplaintext = true\n\
             [[listener]]\naddress = \"127.0.0.1:587\"\nrole = \"submission\"\ntls = \"none\"\n",
        )
        .unwrap();
        let l = c.listeners();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0], ListenerConfig::mx("127.0.0.1:2525".parse().unwrap()));
        assert_eq!(l[1].role, ListenerRole::Submission);
        // No table: the default listen address.
        assert_eq!(parse("").unwrap().listeners().len(), 1);
        assert!(parse("listen = []\n")
            .unwrap_err()
            .contains("listen: at least one"));
    }

    #[test]
    fn bad_listeners_name_their_key_and_line() {
        for (text, key, line) in [
            (
                "[[listener]]\naddress = \"127.0.0.1:465\"\ntls = \"implicit\"\n".to_owned(),
                "listener[0].tls",
                3,
            ),
            (
                format!(
                    "{TLS}[[listener]]\naddress = \"127.0.0.1:25\"\n\
                     [[listener]]\naddress = \"127.0.0.1:587\"\nrole = \"submission\"\n\
                     tls = \"none\"\n"
                ),
                "listener[1].tls",
                9,
            ),
            (
                "[[listener]]\naddress = \"127.0.0.1:587\"\nrole = \"submission\"\n".to_owned(),
                "listener[0].tls",
                0,
            ),
            (
                "[[listener]]\naddress = \"127.0.0.1:25\"\nproxy_from = [\"10.0.0.0/33\"]\n"
                    .to_owned(),
                "listener[0].proxy_from",
                3,
            ),
            (
                "[[listener]]\naddress = \"127.0.0.1:25\"\nproxy_protocol = true\n\
                 proxy_from = []\n"
                    .to_owned(),
                "listener[0].proxy_from",
                4,
            ),
            (
                "[[listener]]\naddress = \"127.0.0.1:25\"\nproxy_timeout = 0\n".to_owned(),
                "listener[0].proxy_timeout",
                3,
            ),
            (
                "listen = [\"127.0.0.1:25\"]\n[[listener]]\naddress = \"127.0.0.1:25\"\n"
                    .to_owned(),
                "listener[0].address",
                3,
            ),
            (
                "[auth]\nmechanisms = [\"PLAIN\", \"CRAM-MD5\"]\n".to_owned(),
                "auth.mechanisms",
                2,
            ),
            ("[auth]\nmechanisms = []\n".to_owned(), "auth.mechanisms", 2),
            (
                "[auth]\nmechanisms = [\"login\", \"LOGIN\"]\n".to_owned(),
                "auth.mechanisms",
                2,
            ),
        ] {
            let err = parse(&text).unwrap_err();
            assert!(err.contains(&format!(": {key}: ")), "{text}: {err}");
            if line > 0 {
                assert!(
                    err.contains(&format!("l.toml line {line}:")),
                    "{text}: {err}"
                );
            }
        }
        let err =
            parse("[[listener]]\naddress = \"127.0.0.1:25\"\nrole = \"relay\"\n").unwrap_err();
        assert!(err.contains("relay"), "{err}");
    }

    #[test]
    fn the_listen_override_replaces_only_the_mx_shorthand() {
        let mut c = parse(
            "listen = [\"127.0.0.1:25\"]\n[auth]\nplaintext = true\n\
             [[listener]]\naddress = \"127.0.0.1:587\"\nrole = \"submission\"\n",
        )
        .unwrap();
        c.apply(crate::config::Overrides {
            listen: vec!["127.0.0.1:2525".parse().unwrap()],
            ..Default::default()
        })
        .unwrap();
        let l = c.listeners();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].address, "127.0.0.1:2525".parse().unwrap());
        assert_eq!(l[1].address, "127.0.0.1:587".parse().unwrap());
        assert_eq!(l[1].role, ListenerRole::Submission);
    }

    #[test]
    fn config_show_round_trips_the_new_keys() {
        let c = parse(&format!(
            "{TLS}[auth]\nmechanisms = [\"LOGIN\"]\n[[listener]]\naddress = \"[::1]:465\"\n\
             role = \"submission\"\ntls = \"implicit\"\nproxy_protocol = true\n\
             proxy_timeout = \"1m\"\n"
        ))
        .unwrap();
        let text = toml::to_string(&c).unwrap();
        assert!(text.contains("proxy_timeout = \"1m\""), "{text}");
        assert_eq!(parse(&text).unwrap(), c, "{text}");
    }

    #[test]
    fn submission_with_plaintext_auth_needs_no_certificate() {
        let c = parse(
            "[auth]\nplaintext = true\n[[listener]]\naddress = \"127.0.0.1:587\"\n\
             role = \"submission\"\n",
        )
        .unwrap();
        assert!(c.auth.plaintext);
        assert_eq!(
            c.auth.parsed_mechanisms(),
            vec![Mechanism::Plain, Mechanism::Login]
        );
    }

    #[test]
    fn a_submission_listener_needs_an_auth_hook() {
        let c = parse(&format!(
            "{TLS}[[listener]]\naddress = \"127.0.0.1:25\"\n\
             [[listener]]\naddress = \"127.0.0.1:587\"\nrole = \"submission\"\n"
        ))
        .unwrap();
        let err = check_auth_hook(&c, false).unwrap_err();
        assert_eq!(err.key(), Some("listener[1].role"));
        assert!(err.to_string().contains("AUTH"), "{err}");
        check_auth_hook(&c, true).unwrap();
        check_auth_hook(&ServerConfig::default(), false).unwrap();
    }
}
