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
