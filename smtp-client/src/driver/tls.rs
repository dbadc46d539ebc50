//! TLS for the drivers: how the server's certificate is checked, the rustls client
//! configuration, and the name the certificate must carry. Shared by every driver, so each
//! makes the same decisions.
//!
//! # Verification defaults
//!
//! | [`TlsMode`] | [`Verify::ByPolicy`] (the default) does |
//! |---|---|
//! | `Opportunistic` | encrypts without checking the certificate (Postfix's `may` level): an active attacker could strip STARTTLS anyway, and refusing a self-signed certificate would only push the mail back to plaintext |
//! | `Required` | checks the chain against the Mozilla roots ([`webpki-roots`](webpki_roots)), or only against the CA certificates of [`TlsOptions::ca_file`], and the name against [`TlsOptions::server_name`] (else the session's `peer_name`, else the server's IP address) |
//!
//! [`Verify::Always`] and [`Verify::Never`] override the mode, for a whole driver here or
//! for one engine destination ([`Destination::verify`](super::engine::Destination::verify)).
//! A ready rustls configuration
//! ([`TlsOptions::config`]) replaces all of this (client certificates, pinning, DANE done by
//! the embedder). The crypto provider is *ring*; TLS 1.2 and 1.3 are offered.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::Error;
use crate::policy::TlsMode;

/// Whether the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Verify {
    /// Check it when the policy requires TLS, not when TLS is opportunistic.
    #[default]
    ByPolicy,
    /// Always check the chain and the name.
    Always,
    /// Never check (encryption only). For tests with self-signed certificates, or to make
    /// required TLS mean "encrypted" rather than "authenticated".
    Never,
}

impl Verify {
    /// Whether the certificate is checked under `mode`.
    pub fn checks(self, mode: TlsMode) -> bool {
        match self {
            Verify::Always => true,
            Verify::Never => false,
            Verify::ByPolicy => mode == TlsMode::Required,
        }
    }
}

/// TLS settings of a driver. See the [module docs](self) for the defaults.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Whether to check the server's certificate.
    pub verify: Verify,
    /// A PEM file of CA certificates to trust instead of the Mozilla roots.
    pub ca_file: Option<PathBuf>,
    /// The name the server's certificate must carry, and the SNI sent; a DNS name or an IP
    /// address. Default: the session's `peer_name`, else the server's IP address.
    pub server_name: Option<String>,
    /// A ready rustls configuration, used as is (the fields above are then ignored, except
    /// `server_name`).
    pub config: Option<Arc<ClientConfig>>,
}

impl TlsOptions {
    /// Whether the certificate is checked under `mode`.
    pub fn verifies(&self, mode: TlsMode) -> bool {
        self.verify.checks(mode)
    }

    /// The rustls client configuration for a session under `mode`. Fails with
    /// [`Error::Tls`] when the CA file cannot be read or holds no certificate.
    pub fn client_config(&self, mode: TlsMode) -> Result<Arc<ClientConfig>, Error> {
        if let Some(config) = &self.config {
            return Ok(config.clone());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(format!("TLS configuration: {e}")))?;
        let config = if self.verifies(mode) {
            builder
                .with_root_certificates(self.roots()?)
                .with_no_client_auth()
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
                .with_no_client_auth()
        };
        Ok(Arc::new(config))
    }

    fn roots(&self) -> Result<RootCertStore, Error> {
        let mut roots = RootCertStore::empty();
        let Some(path) = &self.ca_file else {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            return Ok(roots);
        };
        let bad =
            |e: &dyn std::fmt::Display| Error::Tls(format!("CA file {}: {e}", path.display()));
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))? {
            roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
        }
        if roots.is_empty() {
            return Err(bad(&"no certificate in the file"));
        }
        Ok(roots)
    }

    /// The name to verify and send as SNI: [`server_name`](Self::server_name), else
    /// `peer_name`, else `addr`'s IP address. Fails with [`Error::Tls`] for a name that is
    /// neither a DNS name nor an IP address.
    pub fn server_name(
        &self,
        peer_name: Option<&str>,
        addr: SocketAddr,
    ) -> Result<ServerName<'static>, Error> {
        let Some(name) = self.server_name.as_deref().or(peer_name) else {
            return Ok(ServerName::IpAddress(addr.ip().into()));
        };
        let name = name.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Ok(ServerName::IpAddress(ip.into()));
        }
        ServerName::try_from(name.trim_end_matches('.').to_owned())
            .map_err(|_| Error::Tls(format!("{name:?} is not a valid TLS server name")))
    }
}

/// Accepts any certificate, but still checks that the server holds its key (the handshake
/// signatures): encryption without authentication.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_follows_the_mode_unless_overridden() {
        let by_policy = TlsOptions::default();
        assert!(by_policy.verifies(TlsMode::Required));
        assert!(!by_policy.verifies(TlsMode::Opportunistic));
        let never = TlsOptions {
            verify: Verify::Never,
            ..TlsOptions::default()
        };
        assert!(!never.verifies(TlsMode::Required));
        assert!(never.client_config(TlsMode::Required).is_ok());
        assert!(by_policy.client_config(TlsMode::Required).is_ok());
    }

    #[test]
    fn server_names_and_ca_file_errors() {
        let addr: SocketAddr = "192.0.2.1:25".parse().unwrap();
        let o = TlsOptions::default();
        assert_eq!(
            o.server_name(None, addr).unwrap(),
            ServerName::IpAddress("192.0.2.1".parse::<IpAddr>().unwrap().into())
        );
        assert_eq!(
            o.server_name(Some("mx.example.com."), addr)
                .unwrap()
                .to_str(),
            "mx.example.com"
        );
        assert_eq!(
            o.server_name(Some("[::1]"), addr).unwrap(),
            ServerName::IpAddress("::1".parse::<IpAddr>().unwrap().into())
        );
        assert!(o.server_name(Some("bad name"), addr).is_err());

        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        for path in [empty, dir.path().join("missing.pem")] {
            let o = TlsOptions {
                ca_file: Some(path.clone()),
                ..TlsOptions::default()
            };
            let e = o.client_config(TlsMode::Required).unwrap_err();
            assert!(
                matches!(&e, Error::Tls(m) if m.contains(&*path.to_string_lossy())),
                "{e}"
            );
        }
    }
}
