//! Test support for STARTTLS: a throw-away CA and server certificate made with rcgen
//! ([`certs`]), a self-signed one ([`self_signed`]), and a small scripted SMTP server on 127.0.0.1:0 whose TLS side is rustls
//! ([`FakeServer`]). It offers STARTTLS in plaintext and SIZE and CHUNKING only under TLS (so
//! a client that uses them after STARTTLS proves it sent EHLO again), and records every byte
//! it received.
//!
//! The fake server is a script, not an SMTP implementation: it checks no syntax and keeps no
//! state beyond what its [`Script`] needs. Impulse's own server with TLS is
//! [`TestServer`](crate::server::TestServer) with `[tls]` configured.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection, StreamOwned,
};

use crate::line::LineClient;

/// A client's TLS session over a socket, read line by line ([`starttls`]).
pub type TlsClient = std::io::BufReader<StreamOwned<ClientConnection, TcpStream>>;

impl Certs {
    /// A rustls client configuration that trusts this CA only.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        use rustls::pki_types::pem::PemObject;
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(&self.ca_file).expect("the CA's PEM file"))
            .expect("the CA certificate");
        Arc::new(
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }
}

/// STARTTLS on `client` (past its EHLO): `220`, then a handshake for `localhost` with
/// `config`, completed here. The TLS session, or why the handshake failed (a certificate
/// the client does not trust, ...).
pub fn starttls(mut client: LineClient, config: Arc<ClientConfig>) -> Result<TlsClient, String> {
    let reply = client.cmd("STARTTLS");
    if !reply.starts_with("220 ") {
        return Err(format!("STARTTLS answered {reply}"));
    }
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a server name");
    let mut conn = ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    let mut tcp = client.w;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
    }
    Ok(std::io::BufReader::new(StreamOwned::new(conn, tcp)))
}

/// Sends `line` and CRLF over TLS, returns the reply.
pub fn tls_cmd(t: &mut TlsClient, line: &str) -> String {
    t.get_mut()
        .write_all(format!("{line}\r\n").as_bytes())
        .expect("write over TLS");
    t.get_mut().flush().expect("flush over TLS");
    crate::line::read_reply(t)
}

/// A CA, a server certificate it signed (for `localhost` and `127.0.0.1`), their PEM files.
pub struct Certs {
    /// The temporary directory holding the PEM files (removed on drop).
    pub dir: tempfile::TempDir,
    /// The CA certificate (PEM): what a client trusts.
    pub ca_file: PathBuf,
    /// The server's certificate chain (PEM: leaf then CA).
    pub cert_file: PathBuf,
    /// The server's private key (PEM, PKCS#8).
    pub key_file: PathBuf,
    /// A rustls server configuration with that chain and key.
    pub server_config: Arc<ServerConfig>,
}

/// Makes a fresh CA and server certificate, writes their PEM files.
pub fn certs() -> Certs {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Impulse test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = localhost().signed_by(&key, &ca, &ca_key).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    let cert_file = dir.path().join("cert.pem");
    let key_file = dir.path().join("key.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    std::fs::write(&cert_file, format!("{}{}", cert.pem(), ca.pem())).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();

    let chain = vec![
        CertificateDer::from(cert.der().to_vec()),
        CertificateDer::from(ca.der().to_vec()),
    ];
    Certs {
        dir,
        ca_file,
        cert_file,
        key_file,
        server_config: server_config(chain, &key),
    }
}

/// A rustls server configuration with a self-signed certificate for `localhost` and
/// `127.0.0.1`: what a next hop that encrypts but cannot be authenticated presents.
pub fn self_signed() -> Arc<ServerConfig> {
    let key = KeyPair::generate().unwrap();
    let cert = localhost().self_signed(&key).unwrap();
    server_config(vec![CertificateDer::from(cert.der().to_vec())], &key)
}

/// A server certificate's parameters: `localhost` and `127.0.0.1`.
fn localhost() -> CertificateParams {
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params
}

/// A rustls server configuration presenting `chain` with `key`.
fn server_config(chain: Vec<CertificateDer<'static>>, key: &KeyPair) -> Arc<ServerConfig> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
    Arc::new(config)
}

/// How the fake server behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// STARTTLS offered and honoured.
    Normal,
    /// STARTTLS answered with `220 ready\r\n250 injected\r\n` in one write.
    InjectAfter220,
    /// STARTTLS never offered.
    NoStartTls,
    /// STARTTLS answered with `220`, then silence: no handshake from the server's side.
    SilentAfter220,
    /// STARTTLS answered with `220`; once the client's first handshake bytes are in, the
    /// server sends these bytes (garbage, or a TLS alert record; nothing: a bare close) and
    /// closes. A connection that does not send STARTTLS is served as under `Normal`.
    FailHandshake(&'static [u8]),
}

/// What the server saw.
#[derive(Debug, Default)]
pub struct Record {
    /// Bytes received in plaintext.
    pub plain: Vec<u8>,
    /// Bytes received under TLS.
    pub tls: Vec<u8>,
    /// The message content (DATA un-stuffed, or the BDAT chunks joined); every message of
    /// the connection, one after the other.
    pub message: Vec<u8>,
    /// Each message's content, in the order they came.
    pub messages: Vec<Vec<u8>>,
    /// The SNI name the client sent.
    pub sni: Option<String>,
    /// Why the TLS handshake failed, if it did.
    pub handshake_error: Option<String>,
}

impl Record {
    /// The plaintext bytes as text.
    pub fn plain_text(&self) -> String {
        String::from_utf8_lossy(&self.plain).into_owned()
    }

    /// The bytes under TLS as text.
    pub fn tls_text(&self) -> String {
        String::from_utf8_lossy(&self.tls).into_owned()
    }

    /// Where bytes received now go: under TLS or in plaintext.
    fn sink(&mut self, tls: bool) -> &mut Vec<u8> {
        if tls {
            &mut self.tls
        } else {
            &mut self.plain
        }
    }
}

/// A fake server for one connection, or several one after the other.
pub struct FakeServer {
    /// Where it listens.
    pub addr: SocketAddr,
    handle: JoinHandle<Vec<Record>>,
}

impl FakeServer {
    /// A server for one connection.
    pub fn start(script: Script, config: Arc<ServerConfig>) -> FakeServer {
        FakeServer::start_many(script, config, 1)
    }

    /// A server for `connections` connections, served one at a time in the order they come.
    pub fn start_many(script: Script, config: Arc<ServerConfig>, connections: usize) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            (0..connections)
                .map(|_| {
                    let (tcp, _) = listener.accept().unwrap();
                    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                    serve(tcp, script, config.clone())
                })
                .collect()
        });
        FakeServer { addr, handle }
    }

    /// Waits for the (first) connection to end and returns what the server saw.
    pub fn finish(self) -> Record {
        self.finish_all().swap_remove(0)
    }

    /// Waits for every connection to end and returns what the server saw on each.
    pub fn finish_all(self) -> Vec<Record> {
        self.handle.join().unwrap()
    }
}

enum Io {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Io {
    fn stream(&mut self) -> &mut dyn ReadWrite {
        match self {
            Io::Plain(s) => s,
            Io::Tls(s) => s.as_mut(),
        }
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Reads one line (up to LF) a byte at a time, so nothing after it is consumed; `None` at
/// end of stream or on an error.
fn read_line(io: &mut dyn ReadWrite, record: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match io.read(&mut byte) {
            Ok(1) => {
                line.push(byte[0]);
                record.push(byte[0]);
                if byte[0] == b'\n' {
                    return Some(line);
                }
            }
            _ => return None,
        }
    }
}

fn serve(tcp: TcpStream, script: Script, config: Arc<ServerConfig>) -> Record {
    let mut record = Record::default();
    let mut current = Vec::new();
    let mut io = Io::Plain(tcp);
    let say = |io: &mut Io, text: &str| {
        let s = io.stream();
        let _ = s.write_all(text.as_bytes()).and_then(|()| s.flush());
    };
    let fail_handshake = match script {
        Script::FailHandshake(bytes) => Some(bytes),
        _ => None,
    };
    say(&mut io, "220 fake.test ESMTP\r\n");
    loop {
        let tls = matches!(io, Io::Tls(_));
        let Some(line) = read_line(io.stream(), record.sink(tls)) else {
            return record;
        };
        let text = String::from_utf8_lossy(&line).trim_end().to_owned();
        let upper = text.to_ascii_uppercase();
        let verb = upper.split(' ').next().unwrap_or("");
        match verb {
            "EHLO" if tls => say(
                &mut io,
                "250-fake.test\r\n250-PIPELINING\r\n250-SIZE 10000000\r\n250 CHUNKING\r\n",
            ),
            "EHLO" if script == Script::NoStartTls => {
                say(&mut io, "250-fake.test\r\n250 PIPELINING\r\n")
            }
            "EHLO" => say(
                &mut io,
                "250-fake.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n",
            ),
            "STARTTLS" if script == Script::InjectAfter220 => {
                say(&mut io, "220 ready\r\n250 injected\r\n");
                // Record whatever the client sends now, until it closes.
                let s = io.stream();
                let mut rest = Vec::new();
                let _ = s.read_to_end(&mut rest);
                record.plain.extend_from_slice(&rest);
                return record;
            }
            "STARTTLS" if script == Script::SilentAfter220 => {
                say(&mut io, "220 ready\r\n");
                let s = io.stream();
                let mut rest = Vec::new();
                let _ = s.read_to_end(&mut rest);
                return record;
            }
            "STARTTLS" if fail_handshake.is_some() => {
                say(&mut io, "220 ready\r\n");
                let s = io.stream();
                // The client's first flight (not recorded: it is not SMTP).
                let _ = s.read(&mut [0u8; 4096]);
                let bytes = fail_handshake.unwrap_or_default();
                let _ = s.write_all(bytes).and_then(|()| s.flush());
                record.handshake_error = Some("failed by the script".into());
                return record;
            }
            "STARTTLS" if !tls && script == Script::Normal => {
                say(&mut io, "220 2.0.0 ready to start TLS\r\n");
                let Io::Plain(mut tcp) = io else {
                    unreachable!()
                };
                let mut conn = ServerConnection::new(config.clone()).unwrap();
                while conn.is_handshaking() {
                    if let Err(e) = conn.complete_io(&mut tcp) {
                        record.handshake_error = Some(e.to_string());
                        return record;
                    }
                }
                record.sni = conn.server_name().map(str::to_owned);
                io = Io::Tls(Box::new(StreamOwned::new(conn, tcp)));
            }
            "MAIL" | "RCPT" | "RSET" | "NOOP" => say(&mut io, "250 2.0.0 ok\r\n"),
            "DATA" => {
                say(&mut io, "354 go ahead\r\n");
                loop {
                    let Some(line) = read_line(io.stream(), record.sink(tls)) else {
                        return record;
                    };
                    if line == b".\r\n" {
                        break;
                    }
                    let line = line.strip_prefix(b".").unwrap_or(&line);
                    record.message.extend_from_slice(line);
                    current.extend_from_slice(line);
                }
                record.messages.push(std::mem::take(&mut current));
                say(&mut io, "250 2.0.0 queued as DATA1\r\n");
            }
            "BDAT" => {
                let mut words = upper.split(' ').skip(1);
                let size: usize = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                let last = words.next() == Some("LAST");
                let mut chunk = vec![0; size];
                if io.stream().read_exact(&mut chunk).is_err() {
                    return record;
                }
                record.sink(tls).extend_from_slice(&chunk);
                record.message.extend_from_slice(&chunk);
                current.extend_from_slice(&chunk);
                if last {
                    record.messages.push(std::mem::take(&mut current));
                    say(&mut io, "250 2.0.0 queued as BDAT1\r\n");
                } else {
                    say(&mut io, &format!("250 2.0.0 {size} octets received\r\n"));
                }
            }
            "QUIT" => {
                say(&mut io, "221 2.0.0 bye\r\n");
                if let Io::Tls(s) = &mut io {
                    s.conn.send_close_notify();
                    let _ = s.flush();
                }
                return record;
            }
            _ => say(&mut io, "502 5.5.2 unknown command\r\n"),
        }
    }
}
