//! What the loop needs to know about each listener: the factory configuration its role and
//! TLS mode give ([`ListenerSpec::new`]), whether TLS starts before the banner, and whose
//! PROXY header it believes.
//!
//! It does not bind or accept (the builder and `event_loop/accept.rs` do) nor parse PROXY
//! headers (`proxy.rs`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use smtp_relay::route::control::Network;

use crate::config::{ListenerConfig, ListenerRole, ListenerTls};
use crate::factory::FactoryConfig;

/// The PROXY protocol on a listener.
#[derive(Debug, Clone)]
pub(crate) struct ProxySpec {
    /// The proxies whose header is believed.
    pub from: Vec<Network>,
    /// How long the header may take.
    pub timeout: Duration,
}

impl ProxySpec {
    /// Whether a connection from `ip` may send a header.
    pub(crate) fn trusts(&self, ip: IpAddr) -> bool {
        self.from.iter().any(|n| n.contains(ip))
    }
}

/// One bound listener, as the loop sees it.
#[derive(Debug, Clone)]
pub(crate) struct ListenerSpec {
    /// How its connections' factory configuration differs from the `mx` one.
    tls: ListenerTls,
    /// TLS starts before the banner (RFC 8314).
    pub implicit_tls: bool,
    /// The PROXY protocol, when on.
    pub proxy: Option<ProxySpec>,
    /// Its role, for the log.
    pub role: ListenerRole,
}

impl ListenerSpec {
    /// The listener `config` over the `mx` factory configuration `base` (which says whether
    /// STARTTLS can be offered and whether AUTH is).
    pub(crate) fn new(config: &ListenerConfig, base: &Arc<FactoryConfig>) -> ListenerSpec {
        ListenerSpec {
            tls: config.tls,
            implicit_tls: config.tls == ListenerTls::Implicit && base.tls_available,
            proxy: config.proxy_protocol.then(|| ProxySpec {
                from: config.proxy_networks(),
                timeout: config.proxy_timeout.get(),
            }),
            role: config.role,
        }
    }

    /// The factory configuration of its connections, over the current `mx` one `base` (the
    /// same `Arc` for an `mx` listener with STARTTLS; a reload gives a new `base`).
    pub(crate) fn factory(&self, base: &Arc<FactoryConfig>) -> Arc<FactoryConfig> {
        if self.role == ListenerRole::Mx && self.tls == ListenerTls::Starttls {
            return base.clone();
        }
        let mut factory = (**base).clone();
        match self.tls {
            ListenerTls::Starttls => {}
            // Under implicit TLS the session is encrypted from the start; with `none` there
            // is no TLS: either way STARTTLS is not offered and cannot be required.
            ListenerTls::Implicit | ListenerTls::None => {
                factory.tls_available = false;
                factory.require_tls = false;
            }
        }
        if self.role == ListenerRole::Submission {
            // RFC 6409 §4.3 / RFC 4954 §6: `530 5.7.0` to MAIL before AUTH.
            factory.require_auth = true;
        }
        Arc::new(factory)
    }

    /// What the log says after a listener's address: nothing for an `mx` listener with
    /// STARTTLS, else ` (submission, implicit TLS, PROXY)` or part of it.
    pub(crate) fn describe(&self) -> String {
        let mut what = Vec::new();
        if self.role == ListenerRole::Submission {
            what.push("submission");
        }
        if self.implicit_tls {
            what.push("implicit TLS");
        }
        if self.proxy.is_some() {
            what.push("PROXY");
        }
        if what.is_empty() {
            String::new()
        } else {
            format!(" ({})", what.join(", "))
        }
    }

    /// Whether connections go through a prelude (PROXY header, TLS handshake) before their
    /// factory is made.
    pub(crate) fn has_prelude(&self) -> bool {
        self.implicit_tls || self.proxy.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::factory::AuthConfig;

    fn base(tls: bool) -> Arc<FactoryConfig> {
        let mut f = FactoryConfig::new("mx.test");
        f.tls_available = tls;
        f.auth = Some(AuthConfig::default());
        Arc::new(f)
    }

    #[test]
    fn roles_and_tls_modes_shape_the_factory() {
        let b = base(true);
        let mx = ListenerSpec::new(&ListenerConfig::mx("127.0.0.1:25".parse().unwrap()), &b);
        assert!(Arc::ptr_eq(&mx.factory(&b), &b));
        assert!(!mx.has_prelude());
        let mut sub = ListenerConfig::mx("127.0.0.1:465".parse().unwrap());
        sub.role = ListenerRole::Submission;
        sub.tls = ListenerTls::Implicit;
        let s = ListenerSpec::new(&sub, &b);
        assert!(s.implicit_tls && s.has_prelude());
        assert_eq!(s.describe(), " (submission, implicit TLS)");
        assert_eq!(mx.describe(), "");
        let f = s.factory(&b);
        assert!(f.require_auth && !f.tls_available);
        sub.tls = ListenerTls::None;
        sub.proxy_protocol = true;
        let s = ListenerSpec::new(&sub, &b);
        assert!(!s.implicit_tls && s.has_prelude());
        let proxy = s.proxy.unwrap();
        assert!(proxy.trusts("127.0.0.1".parse().unwrap()));
        assert!(proxy.trusts("::1".parse().unwrap()));
        assert!(!proxy.trusts("192.0.2.1".parse().unwrap()));
        assert_eq!(proxy.timeout, Duration::from_secs(5));
    }
}
