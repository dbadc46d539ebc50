//! STARTTLS over real sockets: a rustls client on 127.0.0.1 against the server with a
//! certificate from a throw-away CA (rcgen, shared with the client's TLS tests), loaded from
//! PEM files as an operator configures it (`[tls] cert`, `key`).
// Socket tests run real peers on threads and wait on the real clock.
#![allow(clippy::disallowed_methods)]

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use smtp_server::config::ServerConfig;
use smtp_server::server::{Server, ServerError};
use smtp_server::spool::QueueId;

use impulse_test_support::tls::{certs, Certs};

/// The test CA's certificate, for the client's trust store.
fn ca_der(certs: &Certs) -> CertificateDer<'static> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_file(&certs.ca_file).unwrap()
}

mod support;

use impulse_test_support::line::read_reply as reply;
use impulse_test_support::server::TestServer;

/// A server with STARTTLS from the test CA's certificate files (`required`: `[tls] required`).
struct TlsServer {
    server: TestServer,
    certs: Certs,
}

impl TlsServer {
    fn start(required: bool) -> TlsServer {
        let certs = certs();
        let (cert, key) = (certs.cert_file.clone(), certs.key_file.clone());
        let server = support::start(move |c| {
            c.tls.cert = Some(cert);
            c.tls.key = Some(key);
            c.tls.required = required;
        });
        TlsServer { server, certs }
    }

    fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(ca_der(&self.certs)).unwrap();
        Arc::new(
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }
}

impl std::ops::Deref for TlsServer {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        &self.server
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Plaintext up to and including the `220` to STARTTLS; `extra` is sent in the same packet
/// right after the STARTTLS command.
fn plaintext_until_starttls(s: &TcpStream, extra: &[u8]) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s.try_clone().unwrap();
    assert!(reply(&mut r).starts_with("220 mx.test"));
    w.write_all(b"EHLO client.test\r\n").unwrap();
    let ehlo = reply(&mut r);
    assert!(ehlo.contains("STARTTLS"), "{ehlo}");
    let mut cmd = b"STARTTLS\r\n".to_vec();
    cmd.extend_from_slice(extra);
    w.write_all(&cmd).unwrap();
    assert_eq!(reply(&mut r), "220 2.0.0 Ready to start TLS");
    assert!(r.buffer().is_empty(), "nothing after the 220 in plaintext");
}

type Tls = BufReader<StreamOwned<ClientConnection, TcpStream>>;

fn handshake(server: &TlsServer, s: TcpStream) -> Tls {
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(server.client_config(), name).unwrap();
    BufReader::new(StreamOwned::new(conn, s))
}

fn cmd(t: &mut Tls, line: &str) -> String {
    t.get_mut()
        .write_all(format!("{line}\r\n").as_bytes())
        .unwrap();
    t.get_mut().flush().unwrap();
    reply(t)
}

#[test]
fn a_message_sent_under_tls_is_stored_with_its_tls_record() {
    let server = TlsServer::start(false);
    let s = connect(server.addr);
    plaintext_until_starttls(&s, b"");
    let mut t = handshake(&server, s);
    // RFC 3207 §4.2: the session starts over; EHLO again, STARTTLS no longer offered.
    let ehlo = cmd(&mut t, "EHLO client.test");
    assert!(ehlo.starts_with("250-mx.test"), "{ehlo}");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    assert!(cmd(&mut t, "MAIL FROM:<a@example.org>").starts_with("250 2.1.0"));
    assert!(cmd(&mut t, "RCPT TO:<b@example.com>").starts_with("250 2.1.5"));
    assert!(cmd(&mut t, "DATA").starts_with("354"));
    let queued = cmd(&mut t, "Subject: secret\r\n\r\nover TLS\r\n.");
    assert!(queued.starts_with("250 2.0.0 Ok: queued as "), "{queued}");
    assert!(cmd(&mut t, "QUIT").starts_with("221"));
    let id = QueueId::parse(queued.rsplit(' ').next().unwrap()).unwrap();
    let env = server.spool.read_envelope(id).unwrap();
    let tls = env.tls.expect("the envelope records TLS");
    assert!(tls.starts_with("TLSv1.3 TLS13_"), "{tls}");
    assert!(tls.ends_with(" sni=localhost"), "{tls}");
    let stored = String::from_utf8(server.stored(id)).unwrap();
    assert!(stored.contains("with ESMTPS"), "{stored}");
    assert!(
        stored.ends_with("Subject: secret\r\n\r\nover TLS\r\n"),
        "{stored}"
    );
}

#[test]
fn plaintext_pipelined_after_starttls_is_dropped_not_answered() {
    // CVE-2011-0411: a command injected after STARTTLS in the same packet must not be
    // executed under TLS.
    let server = TlsServer::start(false);
    let s = connect(server.addr);
    plaintext_until_starttls(&s, b"MAIL FROM:<injected@example.org>\r\n");
    let mut t = handshake(&server, s);
    assert!(cmd(&mut t, "EHLO client.test").starts_with("250-mx.test"));
    // Had the injected MAIL run, this one would get 503.
    assert!(cmd(&mut t, "MAIL FROM:<a@example.org>").starts_with("250 2.1.0"));
    assert!(cmd(&mut t, "QUIT").starts_with("221"));
}

#[test]
fn tls_required_refuses_mail_in_plaintext() {
    let server = TlsServer::start(true);
    let s = connect(server.addr);
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s.try_clone().unwrap();
    assert!(reply(&mut r).starts_with("220 mx.test"));
    w.write_all(b"EHLO client.test\r\n").unwrap();
    assert!(reply(&mut r).contains("STARTTLS"));
    w.write_all(b"MAIL FROM:<a@example.org>\r\n").unwrap();
    let refused = reply(&mut r);
    assert!(refused.starts_with("530 5.7.0"), "{refused}");
    w.write_all(b"STARTTLS\r\n").unwrap();
    assert!(reply(&mut r).starts_with("220"));
    let mut t = handshake(&server, s);
    assert!(cmd(&mut t, "EHLO client.test").starts_with("250-mx.test"));
    assert!(cmd(&mut t, "MAIL FROM:<a@example.org>").starts_with("250 2.1.0"));
}

#[test]
fn a_broken_handshake_closes_that_connection_only() {
    let server = TlsServer::start(false);
    let s = connect(server.addr);
    plaintext_until_starttls(&s, b"");
    let mut w = s.try_clone().unwrap();
    w.write_all(b"this is not a TLS ClientHello\r\n\r\n")
        .unwrap();
    // The server answers with an alert (or nothing) and closes.
    let mut rest = Vec::new();
    let mut r = s.try_clone().unwrap();
    let _ = r.read_to_end(&mut rest);
    assert!(!String::from_utf8_lossy(&rest).contains("250"), "{rest:?}");
    // The server goes on serving others, TLS included.
    let s = connect(server.addr);
    plaintext_until_starttls(&s, b"");
    let mut t = handshake(&server, s);
    assert!(cmd(&mut t, "EHLO client.test").starts_with("250-mx.test"));
}

#[test]
fn a_client_that_never_finishes_the_handshake_is_timed_out() {
    let certs = certs();
    let (cert, key) = (certs.cert_file.clone(), certs.key_file.clone());
    let server = support::start(move |c| {
        c.tls.cert = Some(cert);
        c.tls.key = Some(key);
        c.timeouts.command = smtp_server::config::ConfigDuration::from_secs(1);
    });
    let s = connect(server.addr);
    plaintext_until_starttls(&s, b"");
    // Silence: the handshake timeout closes the connection, with at most a TLS alert
    // record (content type 21), never a plaintext 421 on a socket that is TLS now.
    let mut rest = Vec::new();
    let started = std::time::Instant::now();
    let _ = s.try_clone().unwrap().read_to_end(&mut rest);
    assert!(started.elapsed() < Duration::from_secs(8));
    assert!(rest.is_empty() || rest[0] == 21, "{rest:?}");
}

#[test]
fn bad_certificate_files_are_refused_at_build_time() {
    let certs = certs();
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let other_key = dir.path().join("other-key.pem");
    std::fs::write(
        &other_key,
        rcgen::KeyPair::generate().unwrap().serialize_pem(),
    )
    .unwrap();
    for (cert, key) in [
        (garbage.clone(), certs.key_file.clone()),
        (certs.cert_file.clone(), garbage.clone()),
        (dir.path().join("missing.pem"), certs.key_file.clone()),
        // No key in the key file.
        (certs.cert_file.clone(), certs.cert_file.clone()),
        // A key that does not belong to the certificate.
        (certs.cert_file.clone(), other_key.clone()),
    ] {
        let mut config = ServerConfig::default();
        config.tls.cert = Some(cert.clone());
        config.tls.key = Some(key.clone());
        let err = Server::builder()
            .config(config)
            .listen("127.0.0.1:0".parse().unwrap())
            .spool_dir(dir.path().join("spool"))
            .build()
            .unwrap_err();
        assert!(
            matches!(err, ServerError::Tls(_)),
            "{cert:?} {key:?}: {err}"
        );
    }
}
