//! Where a job goes: a [`Destination`] is an ordered list of [`NextHop`]s plus the settings
//! its connections share (TLS policy, certificate verification, connection limit, messages
//! per connection), and a [`PoolKey`] says which connections are interchangeable.
//!
//! It does not resolve names (the caller passes socket addresses, an MX lookup is the
//! relay's business) and holds no connection state: the [dispatcher](super::dispatch) keeps
//! one pool of connections per [`PoolKey`], shared by every destination that lists it.

use std::net::SocketAddr;

use crate::driver::tls::Verify;
use crate::policy::TlsMode;

/// One server to try: a socket address, and the host name it was found under (used for
/// SNI and the certificate check, and handed to custom states as the session's `peer_name`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NextHop {
    /// The address to connect to.
    pub addr: SocketAddr,
    /// The server's host name (an MX name), if known.
    pub name: Option<String>,
}

impl NextHop {
    /// A next hop known by its address only.
    pub fn new(addr: SocketAddr) -> Self {
        NextHop { addr, name: None }
    }

    /// A next hop with its host name.
    pub fn named(addr: SocketAddr, name: impl Into<String>) -> Self {
        NextHop {
            addr,
            name: Some(name.into()),
        }
    }
}

impl std::fmt::Display for NextHop {
    /// `host[ip]:port` as a mail log's `relay=` shows it, `[ip]:port` without a name.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.name.as_deref().unwrap_or("");
        write!(f, "{name}[{}]:{}", self.addr.ip(), self.addr.port())
    }
}

/// What makes two connections interchangeable: the server (its address and port, and the
/// name checked in its certificate and sent as SNI), the TLS mode, and whether the
/// certificate is checked. The engine pools connections per key: a job may go on an idle
/// connection of any key one of its destination's hops has, whichever destination opened
/// it, and a destination's [`max_connections`](Destination::max_connections) counts the
/// connections of a key, not of the destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    /// The server, with the name it was found under.
    pub hop: NextHop,
    /// The STARTTLS policy of its sessions (the engine's when the destination sets none).
    pub tls: TlsMode,
    /// Whether the certificate is checked (always `false` when TLS is disabled).
    pub verify: bool,
}

/// Where jobs go and how their connections behave. Settings left unset take the engine's
/// ([`EngineBuilder`](super::EngineBuilder)): its session policy's TLS mode, its
/// [TLS options](super::EngineBuilder::tls)' verification, its `connections` and its
/// `max_deliveries_per_connection`. Connections are pooled per [`PoolKey`] of a hop, so
/// destinations that share a hop (and its TLS settings) share its connections.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    pub(crate) hops: Vec<NextHop>,
    pub(crate) tls: Option<TlsMode>,
    pub(crate) verify: Option<Verify>,
    pub(crate) max_connections: Option<usize>,
    pub(crate) max_deliveries: Option<u32>,
}

impl Destination {
    /// A destination that tries `hops` in order. An empty list is given one hop that
    /// cannot be reached (`0.0.0.0:0`): its jobs fail as a refused connection would.
    pub fn new(hops: impl IntoIterator<Item = NextHop>) -> Self {
        let mut hops: Vec<NextHop> = hops.into_iter().collect();
        if hops.is_empty() {
            hops.push(NextHop::new(SocketAddr::from(([0, 0, 0, 0], 0))));
        }
        Destination {
            hops,
            tls: None,
            verify: None,
            max_connections: None,
            max_deliveries: None,
        }
    }

    /// A destination of one next hop.
    pub fn to(addr: SocketAddr) -> Self {
        Destination::new([NextHop::new(addr)])
    }

    /// The STARTTLS policy of this destination's sessions.
    pub fn tls(mut self, mode: TlsMode) -> Self {
        self.tls = Some(mode);
        self
    }

    /// Whether the servers' certificates are checked, overriding the engine's
    /// [`TlsOptions::verify`](crate::driver::tls::TlsOptions::verify): [`Verify::Never`]
    /// makes required TLS mean "encrypted", [`Verify::Always`] "encrypted to a server whose
    /// certificate is valid for the hop's name" (see [`crate::driver::tls`]).
    pub fn verify(mut self, verify: Verify) -> Self {
        self.verify = Some(verify);
        self
    }

    /// The most connections open at once to one of this destination's next hops, counted
    /// with the connections other destinations opened to it under the same [`PoolKey`]
    /// (at least 1; the engine's global `connections` still applies). It applies when a
    /// job of this destination asks for a connection.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = Some(n.max(1));
        self
    }

    /// Messages sent over one connection before it is closed with QUIT (at least 1).
    pub fn max_deliveries_per_connection(mut self, n: u32) -> Self {
        self.max_deliveries = Some(n.max(1));
        self
    }

    /// The next hops, in the order they are tried.
    pub fn hops(&self) -> &[NextHop] {
        &self.hops
    }

    /// The STARTTLS policy, when set here.
    pub fn tls_mode(&self) -> Option<TlsMode> {
        self.tls
    }

    /// The certificate verification, when set here.
    pub fn verification(&self) -> Option<Verify> {
        self.verify
    }

    /// The pool of `hop` for this destination: its TLS mode and verification, or the
    /// engine's `tls` and `verify` where it sets none.
    pub(crate) fn pool_key(&self, hop: &NextHop, tls: TlsMode, verify: Verify) -> PoolKey {
        let tls = self.tls.unwrap_or(tls);
        PoolKey {
            hop: hop.clone(),
            tls,
            verify: tls != TlsMode::Disabled && self.verify.unwrap_or(verify).checks(tls),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_names_as_a_mail_log_shows_them() {
        let addr: SocketAddr = "192.0.2.7:25".parse().unwrap();
        assert_eq!(
            NextHop::named(addr, "mx1.example.net").to_string(),
            "mx1.example.net[192.0.2.7]:25"
        );
        assert_eq!(NextHop::new(addr).to_string(), "[192.0.2.7]:25");
    }

    #[test]
    fn settings_and_hops() {
        let a: SocketAddr = "192.0.2.1:25".parse().unwrap();
        let d = Destination::to(a)
            .tls(TlsMode::Required)
            .max_connections(0)
            .max_deliveries_per_connection(0);
        assert_eq!(d.hops(), [NextHop::new(a)]);
        assert_eq!(d.tls_mode(), Some(TlsMode::Required));
        assert_eq!((d.max_connections, d.max_deliveries), (Some(1), Some(1)));
        assert_ne!(d, Destination::to(a), "settings make another destination");
        assert_eq!(Destination::new([]).hops().len(), 1);
    }

    #[test]
    fn a_pool_key_takes_the_engines_settings_where_the_destination_sets_none() {
        let hop = NextHop::named("192.0.2.1:25".parse().unwrap(), "mx.test");
        let key = |d: &Destination| d.pool_key(&hop, TlsMode::Opportunistic, Verify::ByPolicy);
        let plain = Destination::new([hop.clone()]);
        assert_eq!(
            (key(&plain).tls, key(&plain).verify),
            (TlsMode::Opportunistic, false)
        );
        let explicit = plain.clone().tls(TlsMode::Opportunistic);
        assert_eq!(
            key(&explicit),
            key(&plain),
            "the same settings, the same pool"
        );
        let required = plain.clone().tls(TlsMode::Required);
        assert!(key(&required).verify, "required TLS checks by default");
        let encrypted = required.clone().verify(Verify::Never);
        assert_eq!(encrypted.verification(), Some(Verify::Never));
        assert!(!key(&encrypted).verify);
        assert_ne!(key(&encrypted), key(&required));
        let off = plain.tls(TlsMode::Disabled).verify(Verify::Always);
        assert!(!key(&off).verify, "nothing to check without TLS");
    }
}
