//! What a new connection to a next hop starts with: its session configuration (peer address
//! and name, its pool's TLS mode) and its STARTTLS setup (the rustls configuration for that
//! mode and verification, made once per pair and shared, and the name to verify and send as
//! SNI). Everything comes from the connection's [`PoolKey`], so connections of one pool are
//! set up alike whichever destination asked for them.
//!
//! It does not open sockets; the event loop does, with what this gives it.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::ClientConfig;

use super::destination::PoolKey;
use super::{Settings, TlsSetup};
use crate::driver::tls::{TlsOptions, Verify};
use crate::error::Error;
use crate::policy::TlsMode;
use crate::session::SessionConfig;

/// Session and TLS settings for the connections of any destination.
#[derive(Debug)]
pub(super) struct Openers {
    /// The pool of the builder's destination, and its STARTTLS setup, made at `build`.
    default_key: PoolKey,
    default_tls: Option<TlsSetup>,
    /// rustls configurations made so far, per TLS mode and verification.
    configs: HashMap<(TlsMode, bool), Arc<ClientConfig>>,
}

impl Openers {
    /// `default_tls` was made for the builder's session and destination in `settings`.
    pub(super) fn new(default_tls: Option<TlsSetup>, settings: &Settings) -> Self {
        let default = &settings.default;
        let (mode, verify) = (settings.session.policy.tls, settings.tls.verify);
        let default_key = default.pool_key(&default.hops[0], mode, verify);
        let mut configs = HashMap::new();
        if let Some((config, _)) = &default_tls {
            configs.insert((default_key.tls, default_key.verify), config.clone());
        }
        Openers {
            default_key,
            default_tls,
            configs,
        }
    }

    /// The session configuration and STARTTLS setup of a connection of pool `key`. The
    /// builder's own destination's pool uses the builder's session as it is; another one
    /// gets the hop's address and name as the peer, and the pool's TLS mode and
    /// verification. Fails with [`Error::Tls`] when that mode needs a TLS configuration the
    /// options cannot make.
    pub(super) fn setup(
        &mut self,
        settings: &Settings,
        key: &PoolKey,
    ) -> Result<(SessionConfig, Option<TlsSetup>), Error> {
        if *key == self.default_key {
            return Ok((settings.session.clone(), self.default_tls.clone()));
        }
        let hop = &key.hop;
        let mut session = settings.session.clone();
        session.peer = Some(hop.addr);
        session.peer_name = hop.name.clone();
        let mode = key.tls;
        session.policy.tls = mode;
        session.tls_available = mode != TlsMode::Disabled;
        if mode == TlsMode::Disabled {
            return Ok((session, None));
        }
        let config = match self.configs.get(&(mode, key.verify)) {
            Some(config) => config.clone(),
            None => {
                let verify = if key.verify {
                    Verify::Always
                } else {
                    Verify::Never
                };
                let options = TlsOptions {
                    verify,
                    ..settings.tls.clone()
                };
                let config = options.client_config(mode)?;
                self.configs.insert((mode, key.verify), config.clone());
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
    use crate::driver::engine::destination::{Destination, NextHop, PoolKey};
    use crate::driver::engine::Engine;
    use crate::driver::tls::Verify;
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
        let mut openers = Openers::new(None, &settings);
        let key =
            |d: &Destination, hop: &NextHop| d.pool_key(hop, TlsMode::Disabled, Verify::ByPolicy);

        // The builder's destination: its session as configured, no TLS.
        let own = settings.default.clone();
        let (config, tls) = openers
            .setup(&settings, &key(&own, &own.hops()[0]))
            .unwrap();
        assert_eq!(config.peer_name.as_deref(), Some("builder.test"));
        assert!(!config.tls_available && tls.is_none());

        // Another destination: the hop is the peer, its TLS mode applies, and its name is
        // the one checked and sent as SNI.
        let mx: SocketAddr = "192.0.2.9:2525".parse().unwrap();
        let hop = NextHop::named(mx, "mx.other.test");
        let other = Destination::new([hop.clone()]).tls(TlsMode::Required);
        let (config, tls) = openers.setup(&settings, &key(&other, &hop)).unwrap();
        assert_eq!(config.peer, Some(mx));
        assert_eq!(config.peer_name.as_deref(), Some("mx.other.test"));
        assert_eq!(config.policy.tls, TlsMode::Required);
        assert!(config.tls_available);
        let (first, name) = tls.expect("a TLS setup");
        assert_eq!(name, ServerName::try_from("mx.other.test").unwrap());
        // The rustls configuration is made once per mode.
        let (_, again) = openers.setup(&settings, &key(&other, &hop)).unwrap();
        assert!(std::sync::Arc::ptr_eq(&first, &again.unwrap().0));
        // Another verification is another configuration.
        let encrypted = PoolKey {
            verify: false,
            ..key(&other, &hop)
        };
        let (_, unchecked) = openers.setup(&settings, &encrypted).unwrap();
        assert!(!std::sync::Arc::ptr_eq(&first, &unchecked.unwrap().0));

        // Without a name the address is checked; a destination may turn TLS off.
        let bare = NextHop::new(mx);
        let plain = Destination::new([bare.clone()]).tls(TlsMode::Disabled);
        let (config, tls) = openers.setup(&settings, &key(&plain, &bare)).unwrap();
        assert!(!config.tls_available && tls.is_none());
        let opportunistic = Destination::new([bare.clone()]).tls(TlsMode::Opportunistic);
        let (_, tls) = openers
            .setup(&settings, &key(&opportunistic, &bare))
            .unwrap();
        assert_eq!(tls.unwrap().1, ServerName::IpAddress(mx.ip().into()));
    }
}
