//! What a new connection to a next hop starts with: its session configuration (peer address
//! and name, the destination's TLS mode) and its STARTTLS setup (the rustls configuration for
//! that mode, made once per mode and shared, and the name to verify and send as SNI).
//!
//! It does not open sockets; the event loop does, with what this gives it.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::ClientConfig;

use super::destination::{Destination, NextHop};
use super::{Settings, TlsSetup};
use crate::driver::tls::TlsOptions;
use crate::error::Error;
use crate::policy::TlsMode;
use crate::session::SessionConfig;

/// Session and TLS settings for the connections of any destination.
#[derive(Debug)]
pub(super) struct Openers {
    /// The builder's destination's STARTTLS setup, made at `build`.
    default_tls: Option<TlsSetup>,
    /// rustls configurations made so far, per TLS mode.
    configs: HashMap<TlsMode, Arc<ClientConfig>>,
}

impl Openers {
    /// `default_tls` was made for the builder's session, whose policy has `mode`.
    pub(super) fn new(default_tls: Option<TlsSetup>, mode: TlsMode) -> Self {
        let mut configs = HashMap::new();
        if let Some((config, _)) = &default_tls {
            configs.insert(mode, config.clone());
        }
        Openers {
            default_tls,
            configs,
        }
    }

    /// The session configuration and STARTTLS setup of a connection to `hop` for
    /// `destination`. The builder's own destination uses the builder's session as it is;
    /// another one gets `hop`'s address and name as the peer, and its own TLS mode. Fails with
    /// [`Error::Tls`] when that mode needs a TLS configuration the options cannot make.
    pub(super) fn setup(
        &mut self,
        settings: &Settings,
        destination: &Destination,
        hop: &NextHop,
    ) -> Result<(SessionConfig, Option<TlsSetup>), Error> {
        if *destination == settings.default {
            return Ok((settings.session.clone(), self.default_tls.clone()));
        }
        let mut session = settings.session.clone();
        session.peer = Some(hop.addr);
        session.peer_name = hop.name.clone();
        let mode = destination.tls.unwrap_or(settings.session.policy.tls);
        session.policy.tls = mode;
        session.tls_available = mode != TlsMode::Disabled;
        if mode == TlsMode::Disabled {
            return Ok((session, None));
        }
        let config = match self.configs.get(&mode) {
            Some(config) => config.clone(),
            None => {
                let config = settings.tls.client_config(mode)?;
                self.configs.insert(mode, config.clone());
                config
            }
        };
        // The hop's own name first: a relay's next hops are found under their names.
        let name = match hop.name.as_deref() {
            Some(name) => TlsOptions::default().server_name(Some(name), hop.addr)?,
            None => settings.tls.server_name(None, hop.addr)?,
        };
        Ok((session, Some((config, name))))
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use rustls::pki_types::ServerName;

    use super::Openers;
    use crate::driver::engine::destination::{Destination, NextHop};
    use crate::driver::engine::Engine;
    use crate::policy::TlsMode;
    use crate::session::SessionConfig;

    #[test]
    fn each_destination_gets_its_peer_tls_mode_and_server_name() {
        let addr: SocketAddr = "192.0.2.1:25".parse().unwrap();
        let mut session = SessionConfig::new("client.test");
        session.peer = Some(addr);
        session.peer_name = Some("builder.test".into());
        session.policy.tls = TlsMode::Disabled;
        let mut settings = Engine::builder(addr).session(session).settings;
        settings.default = Destination::new([NextHop::named(addr, "builder.test")]);
        let mut openers = Openers::new(None, TlsMode::Disabled);

        // The builder's destination: its session as configured, no TLS.
        let own = settings.default.clone();
        let (config, tls) = openers.setup(&settings, &own, &own.hops()[0]).unwrap();
        assert_eq!(config.peer_name.as_deref(), Some("builder.test"));
        assert!(!config.tls_available && tls.is_none());

        // Another destination: the hop is the peer, its TLS mode applies, and its name is
        // the one checked and sent as SNI.
        let mx: SocketAddr = "192.0.2.9:2525".parse().unwrap();
        let hop = NextHop::named(mx, "mx.other.test");
        let other = Destination::new([hop.clone()]).tls(TlsMode::Required);
        let (config, tls) = openers.setup(&settings, &other, &hop).unwrap();
        assert_eq!(config.peer, Some(mx));
        assert_eq!(config.peer_name.as_deref(), Some("mx.other.test"));
        assert_eq!(config.policy.tls, TlsMode::Required);
        assert!(config.tls_available);
        let (first, name) = tls.expect("a TLS setup");
        assert_eq!(name, ServerName::try_from("mx.other.test").unwrap());
        // The rustls configuration is made once per mode.
        let (_, again) = openers.setup(&settings, &other, &hop).unwrap();
        assert!(std::sync::Arc::ptr_eq(&first, &again.unwrap().0));

        // Without a name the address is checked; a destination may turn TLS off.
        let bare = NextHop::new(mx);
        let plain = Destination::new([bare.clone()]).tls(TlsMode::Disabled);
        let (config, tls) = openers.setup(&settings, &plain, &bare).unwrap();
        assert!(!config.tls_available && tls.is_none());
        let opportunistic = Destination::new([bare.clone()]).tls(TlsMode::Opportunistic);
        let (_, tls) = openers.setup(&settings, &opportunistic, &bare).unwrap();
        assert_eq!(tls.unwrap().1, ServerName::IpAddress(mx.ip().into()));
    }
}
