//! A connection's STARTTLS as a state machine: plaintext, STARTTLS accepted and its `220`
//! not yet written, the handshake, and the established session.
//!
//! It holds the connection's [`TlsLayer`] but does no I/O: reading and writing records is
//! the connection's (`conn/mod.rs`), and what the layer does with them is `tls.rs`'s.

use crate::server::tls::TlsLayer;

/// Where a connection stands with TLS.
#[derive(Default)]
pub(crate) enum TlsState {
    /// Plaintext, no STARTTLS accepted (or TLS could not start).
    #[default]
    Plain,
    /// STARTTLS was accepted: TLS starts once the `220` is written.
    AwaitingReplyFlush,
    /// The handshake runs: it reads whatever the factory's state.
    Handshaking(Box<TlsLayer>),
    /// The handshake completed and the factory was told.
    Established(Box<TlsLayer>),
}

impl TlsState {
    /// Implicit TLS (RFC 8314): the handshake finished before the connection's factory was
    /// made, so the session is established from the start.
    pub(crate) fn implicit(layer: TlsLayer) -> TlsState {
        TlsState::Established(Box::new(layer))
    }

    /// STARTTLS was accepted: start TLS once the `220` is out. Returns `false` (and changes
    /// nothing) unless the connection is in plaintext.
    pub(crate) fn start_tls_after_reply(&mut self) -> bool {
        if !matches!(self, TlsState::Plain) {
            return false;
        }
        *self = TlsState::AwaitingReplyFlush;
        true
    }

    /// Whether TLS waits for the `220` to be written.
    pub(crate) fn awaits_reply_flush(&self) -> bool {
        matches!(self, TlsState::AwaitingReplyFlush)
    }

    /// The `220` is out: the handshake starts with `layer`, or (`None`: the layer could not
    /// be made) the connection stays in plaintext. Returns whether the handshake started;
    /// `false` too when no STARTTLS was waiting for its reply.
    pub(crate) fn reply_flushed(&mut self, layer: Option<TlsLayer>) -> bool {
        if !self.awaits_reply_flush() {
            return false;
        }
        match layer {
            Some(layer) => {
                *self = TlsState::Handshaking(Box::new(layer));
                true
            }
            None => {
                *self = TlsState::Plain;
                false
            }
        }
    }

    /// Whether the handshake runs.
    pub(crate) fn is_handshaking(&self) -> bool {
        matches!(self, TlsState::Handshaking(_))
    }

    /// The layer, once the handshake started.
    pub(crate) fn layer(&self) -> Option<&TlsLayer> {
        match self {
            TlsState::Handshaking(l) | TlsState::Established(l) => Some(l),
            TlsState::Plain | TlsState::AwaitingReplyFlush => None,
        }
    }

    /// The layer, once the handshake started.
    pub(crate) fn layer_mut(&mut self) -> Option<&mut TlsLayer> {
        match self {
            TlsState::Handshaking(l) | TlsState::Established(l) => Some(l),
            TlsState::Plain | TlsState::AwaitingReplyFlush => None,
        }
    }

    /// When the handshake has just completed (rustls no longer handshakes): established,
    /// and the layer returned for the factory to be told. `None` otherwise, and every
    /// later time.
    pub(crate) fn handshake_done(&mut self) -> Option<&TlsLayer> {
        if !matches!(self, TlsState::Handshaking(l) if !l.is_handshaking()) {
            return None;
        }
        let TlsState::Handshaking(layer) = std::mem::take(self) else {
            return None;
        };
        *self = TlsState::Established(layer);
        self.layer()
    }

    /// The name the client asked for (SNI), once the handshake started.
    pub(crate) fn sni(&self) -> Option<&str> {
        self.layer().and_then(TlsLayer::sni)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    use super::*;

    /// A server layer for a fresh self-signed `mx.test`, and a client that trusts it.
    fn layer_and_client() -> (TlsLayer, rustls::ClientConnection) {
        let cert = rcgen::generate_simple_self_signed(vec!["mx.test".to_owned()]).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.cert.der().clone()).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("mx.test").unwrap();
        let client = rustls::ClientConnection::new(Arc::new(client), name).unwrap();
        (TlsLayer::new(&Arc::new(config)).unwrap(), client)
    }

    fn layer() -> TlsLayer {
        layer_and_client().0
    }

    #[test]
    fn tls_starts_only_after_the_reply_and_only_once() {
        let mut t = TlsState::default();
        assert!(t.layer().is_none());
        assert!(!t.reply_flushed(Some(layer())), "no STARTTLS accepted");
        assert!(t.start_tls_after_reply());
        assert!(t.awaits_reply_flush());
        assert!(!t.start_tls_after_reply(), "already accepted");
        assert!(t.layer().is_none(), "no layer before the 220 is out");
        assert!(t.reply_flushed(Some(layer())));
        assert!(t.is_handshaking());
        assert!(t.layer().is_some());
        assert!(!t.start_tls_after_reply(), "no STARTTLS under TLS");
        assert!(t.sni().is_none());
    }

    #[test]
    fn a_layer_that_could_not_be_made_leaves_plaintext() {
        let mut t = TlsState::default();
        assert!(t.start_tls_after_reply());
        assert!(!t.reply_flushed(None));
        assert!(matches!(t, TlsState::Plain));
        assert!(t.start_tls_after_reply(), "plaintext again");
    }

    #[test]
    fn a_running_handshake_is_not_done() {
        let mut t = TlsState::default();
        assert!(t.handshake_done().is_none(), "no handshake in plaintext");
        t.start_tls_after_reply();
        t.reply_flushed(Some(layer()));
        // No byte from the client yet: rustls still handshakes.
        assert!(t.handshake_done().is_none());
        assert!(t.is_handshaking());
    }

    #[test]
    fn a_completed_handshake_is_established_once() {
        let (layer, mut client) = layer_and_client();
        let mut t = TlsState::default();
        t.start_tls_after_reply();
        t.reply_flushed(Some(layer));
        let mut scratch = vec![0u8; 16 * 1024];
        let mut plaintext = Vec::new();
        let mut told = 0;
        for _ in 0..10 {
            let mut to_server = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut to_server).unwrap();
            }
            if !to_server.is_empty() {
                let layer = t.layer_mut().unwrap();
                let read = layer.read(&mut to_server.as_slice(), &mut scratch, &mut plaintext);
                assert!(matches!(read, crate::server::tls::TlsRead::Data));
            }
            if let Some(l) = t.handshake_done() {
                assert_eq!(l.sni(), Some("mx.test"));
                told += 1;
            }
            let mut to_client = Vec::new();
            t.layer_mut().unwrap().write_out(&mut to_client).unwrap();
            if !to_client.is_empty() {
                client.read_tls(&mut to_client.as_slice()).unwrap();
                client.process_new_packets().unwrap();
            }
            if !client.is_handshaking() && !client.wants_write() && told > 0 {
                break;
            }
        }
        assert_eq!(told, 1, "told exactly once");
        assert!(matches!(t, TlsState::Established(_)));
        assert!(!t.is_handshaking());
        assert_eq!(t.sni(), Some("mx.test"));
        assert!(t.handshake_done().is_none());
        assert!(plaintext.is_empty());
    }
}
