//! What hooks know about the connection ([`SessionInfo`], [`TlsInfo`]) and the transaction
//! ([`Envelope`], [`Recipient`]). The host builds and updates these values; hooks read them.
//! Every field is already parsed and validated: addresses are `SocketAddr`s, paths are
//! [`smtp_proto`] paths.

use std::net::SocketAddr;

use smtp_proto::{ForwardPath, Params, Path};

/// The connection as the server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The client's address (as a trusted proxy reported it with XCLIENT ADDR/PORT, when
    /// one did).
    pub peer: SocketAddr,
    /// The address the TCP connection came from. Never rewritten: decisions about the
    /// connection itself (may it use XCLIENT?) are made on it.
    pub real_peer: SocketAddr,
    /// Our address the client connected to.
    pub local: SocketAddr,
    /// The client's host name (from reverse DNS, or as a trusted proxy reported it with
    /// XCLIENT NAME), when known.
    pub client_name: Option<String>,
    /// The name the client gave in HELO/EHLO, once it did.
    pub helo: Option<String>,
    /// `true` when the client greeted with EHLO, `false` for HELO (or no greeting yet).
    pub ehlo: bool,
    /// TLS state, once STARTTLS completed (or on an implicit-TLS port).
    pub tls: Option<TlsInfo>,
    /// The authenticated identity (SASL authcid, or authzid when one was granted), once AUTH
    /// succeeded.
    pub auth: Option<String>,
}

impl SessionInfo {
    /// A fresh session: just connected, no HELO, no TLS, not authenticated.
    pub fn new(peer: SocketAddr, local: SocketAddr) -> Self {
        SessionInfo {
            peer,
            real_peer: peer,
            local,
            client_name: None,
            helo: None,
            ehlo: false,
            tls: None,
            auth: None,
        }
    }

    /// `true` when TLS is active.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }
}

/// The TLS parameters of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsInfo {
    /// The protocol version, for example `"TLSv1.3"`.
    pub protocol: String,
    /// The cipher suite, for example `"TLS13_AES_256_GCM_SHA384"`.
    pub cipher: String,
}

impl TlsInfo {
    /// Builds TLS information from the protocol and cipher names.
    pub fn new(protocol: impl Into<String>, cipher: impl Into<String>) -> Self {
        TlsInfo {
            protocol: protocol.into(),
            cipher: cipher.into(),
        }
    }
}

/// One accepted recipient with its RCPT parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recipient {
    /// The forward-path.
    pub path: ForwardPath<'static>,
    /// The RCPT TO parameters (NOTIFY, ORCPT, extension parameters).
    pub params: Params<'static>,
}

impl Recipient {
    /// A recipient from its path and parameters.
    pub fn new(path: ForwardPath<'static>, params: Params<'static>) -> Self {
        Recipient { path, params }
    }
}

/// The envelope of the current transaction: sender, MAIL parameters and the recipients
/// accepted so far (at the RCPT hook, the one being decided is not among them yet).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Envelope {
    /// The reverse-path (`Path::Null` for bounces).
    pub sender: Path<'static>,
    /// The MAIL FROM parameters (SIZE, BODY, SMTPUTF8, ENVID, extension parameters).
    pub mail_params: Params<'static>,
    /// The accepted recipients, in order.
    pub recipients: Vec<Recipient>,
}

impl Envelope {
    /// An envelope with a sender and no recipients yet.
    pub fn new(sender: Path<'static>, mail_params: Params<'static>) -> Self {
        Envelope {
            sender,
            mail_params,
            recipients: Vec::new(),
        }
    }
}
