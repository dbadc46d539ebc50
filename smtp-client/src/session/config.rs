//! How a session is set up ([`SessionConfig`]): the EHLO name, credentials, policy, what
//! custom states learn of the server, and whether the driver can run TLS. It does not hold
//! any per-connection state.

use std::net::SocketAddr;

use hooks_api::ClientArgs;

use crate::message::Credentials;
use crate::policy::Policy;

/// How a session is set up.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The name sent with EHLO/HELO: a domain name or an address literal.
    pub helo_name: String,
    /// AUTH credentials; AUTH is skipped without them.
    pub credentials: Option<Credentials>,
    /// Timeouts, retries and the rest.
    pub policy: Policy,
    /// The server's address, for custom states.
    pub peer: Option<SocketAddr>,
    /// The server's host name (the MX name), for custom states.
    pub peer_name: Option<String>,
    /// Per-session client arguments (Momentum's `smtp_client_args`): `NOTIFY` and `ORCPT`
    /// go on every RCPT TO, every other keyword on MAIL FROM.
    pub session_args: ClientArgs,
    /// The driver can run a TLS handshake on this connection ([`Session::poll_tls_upgrade`](super::Session::poll_tls_upgrade)).
    /// Off by default: a session without it never sends STARTTLS, and one whose policy
    /// requires TLS fails with [`Error::TlsUnavailable`](crate::Error::TlsUnavailable). Drivers with TLS set it.
    pub tls_available: bool,
}

impl SessionConfig {
    /// A configuration with this EHLO name and everything else default.
    pub fn new(helo_name: impl Into<String>) -> Self {
        SessionConfig {
            helo_name: helo_name.into(),
            credentials: None,
            policy: Policy::default(),
            peer: None,
            peer_name: None,
            session_args: ClientArgs::new(),
            tls_available: false,
        }
    }
}
