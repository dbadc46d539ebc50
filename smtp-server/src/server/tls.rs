//! STARTTLS on the server side: the rustls configuration from PEM files, and one
//! connection's TLS layer between its socket and its factory.
//!
//! After the factory's `220 2.0.0 Ready to start TLS` has been written in plaintext, the
//! connection gets a [`rustls::ServerConnection`]: socket bytes go to rustls, the plaintext it
//! yields goes to the factory, and the factory's replies go through rustls to the socket.
//! Whatever the client sent in plaintext after STARTTLS is discarded, never read as TLS
//! (CVE-2011-0411). When the handshake completes, the factory learns the protocol and cipher
//! ([`Factory::handle_tls_established`](crate::factory::Factory::handle_tls_established)).

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConnection;

use super::ServerError;
use crate::factory::TlsInfo;

/// The most plaintext rustls buffers for sending before the factory's output waits.
const SEND_BUFFER: usize = 64 * 1024;

/// Loads a certificate chain and its private key (PEM files) into a rustls server
/// configuration: TLS 1.2 and 1.3 with rustls' safe defaults (ring), no client certificates.
pub fn load_server_config(
    cert: &Path,
    key: &Path,
) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    let bad = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
        ServerError::Tls(format!("{what} {}: {e}", path.display()))
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad("cannot read certificates from", cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("bad certificate in", cert, &e))?;
    if chain.is_empty() {
        return Err(bad("no certificate in", cert, &"(empty)"));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| bad("cannot read a private key from", key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| bad("the key does not fit the certificate in", cert, &e))?;
    Ok(Arc::new(config))
}

/// What happened on a TLS read.
pub(crate) enum TlsRead {
    /// Plaintext was appended (maybe none yet: the handshake moved).
    Data,
    /// Nothing to read now.
    WouldBlock,
    /// The peer closed (close_notify or end of file).
    Closed,
    /// A TLS error: the alert is queued; write it, then close.
    Failed(rustls::Error),
    /// The socket failed.
    Io(io::Error),
}

/// One connection's TLS layer.
pub(crate) struct TlsLayer {
    conn: ServerConnection,
    /// close_notify was queued.
    close_notify: bool,
}

impl TlsLayer {
    pub(crate) fn new(config: &Arc<rustls::ServerConfig>) -> Result<TlsLayer, rustls::Error> {
        let mut conn = ServerConnection::new(config.clone())?;
        conn.set_buffer_limit(Some(SEND_BUFFER));
        Ok(TlsLayer {
            conn,
            close_notify: false,
        })
    }

    /// Reads TLS records from the socket (once) and appends the plaintext they carry to
    /// `out`, using `scratch` for the plaintext.
    pub(crate) fn read(
        &mut self,
        sock: &mut impl Read,
        scratch: &mut [u8],
        out: &mut Vec<u8>,
    ) -> TlsRead {
        match self.conn.read_tls(sock) {
            Ok(0) => return TlsRead::Closed,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return TlsRead::WouldBlock,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return TlsRead::Data,
            Err(e) => return TlsRead::Io(e),
        }
        let state = match self.conn.process_new_packets() {
            Ok(state) => state,
            Err(e) => return TlsRead::Failed(e),
        };
        let before = out.len();
        let mut want = state.plaintext_bytes_to_read();
        while want > 0 {
            match self.conn.reader().read(scratch) {
                Ok(0) => break,
                Ok(n) => {
                    out.extend_from_slice(&scratch[..n]);
                    want = want.saturating_sub(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => return TlsRead::Closed,
            }
        }
        if state.peer_has_closed() && out.len() == before {
            return TlsRead::Closed;
        }
        TlsRead::Data
    }

    /// Takes plaintext to send; returns how much it took (less when its buffer is full).
    pub(crate) fn send(&mut self, plaintext: &[u8]) -> usize {
        self.conn.writer().write(plaintext).unwrap_or(0)
    }

    /// Writes pending TLS records to the socket until it would block; `Ok(true)` when
    /// everything is out.
    pub(crate) fn write_out(&mut self, sock: &mut impl Write) -> io::Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Records wait to be written to the socket.
    pub(crate) fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// The handshake is still running.
    pub(crate) fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Queues a close_notify alert, once: later calls do nothing.
    pub(crate) fn close(&mut self) {
        if !self.close_notify {
            self.close_notify = true;
            self.conn.send_close_notify();
        }
    }

    /// The negotiated protocol and cipher suite, for the factory and the spool envelope.
    pub(crate) fn info(&self) -> TlsInfo {
        let protocol = match self.conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
            Some(v) => format!("{v:?}"),
            None => "TLS".to_owned(),
        };
        let cipher = self
            .conn
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default();
        TlsInfo { protocol, cipher }
    }

    /// The name the client asked for (SNI), if any.
    pub(crate) fn sni(&self) -> Option<&str> {
        self.conn.server_name()
    }
}
