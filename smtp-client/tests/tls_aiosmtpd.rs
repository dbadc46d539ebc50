//! STARTTLS against a real third-party server: Python's aiosmtpd with an `ssl.SSLContext`
//! loaded from an rcgen certificate and `require_starttls=True`, in a `python3` subprocess on
//! a free loopback port; its handler writes each message it receives (and whether the
//! session was encrypted) to a file. Both drivers: the blocking client, and the mio engine
//! over several TLS connections at once.
//!
//! Without `python3` or the `aiosmtpd` module these tests print a loud SKIPPED and pass —
//! unless `CI` is set, where they fail (`.ci/run` installs the module with pip).

use impulse_test_support::tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use impulse_test_support::peers::{aiosmtpd_available, PyServer};

use smtp_client::driver::blocking::{Client, Options};
use smtp_client::driver::engine::Engine;
use smtp_client::driver::tls::TlsOptions;
use smtp_client::{Error, Message, Policy, SessionConfig, TlsMode};

/// `python3 -c SERVER PORT CERT KEY MESSAGES_FILE`.
const SERVER: &str = r#"
import ssl, sys, time
from aiosmtpd.controller import Controller

port, cert, key, messages = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)

class Handler:
    async def handle_DATA(self, server, session, envelope):
        with open(messages, "ab") as f:
            f.write(("MAIL %s RCPT %s TLS %s\n" % (
                envelope.mail_from, ",".join(envelope.rcpt_tos),
                "yes" if server._tls_protocol is not None else "no")).encode())
            f.write(envelope.original_content)
        return "250 2.0.0 stored by aiosmtpd"

controller = Controller(Handler(), hostname="127.0.0.1", port=port,
                        tls_context=context, require_starttls=True)
controller.start()
print("READY", flush=True)
while True:
    time.sleep(3600)
"#;

/// A running aiosmtpd with STARTTLS, killed on drop.
struct Aiosmtpd {
    /// Kept for its drop, which stops the process.
    _server: PyServer,
    addr: SocketAddr,
    messages: PathBuf,
    certs: tls::Certs,
}

impl Aiosmtpd {
    fn start() -> Option<Aiosmtpd> {
        if !aiosmtpd_available() {
            return None;
        }
        let certs = tls::certs();
        let messages = certs.dir.path().join("messages");
        let server = PyServer::start(
            SERVER,
            [
                certs.cert_file.as_os_str(),
                certs.key_file.as_os_str(),
                messages.as_os_str(),
            ],
        );
        Some(Aiosmtpd {
            addr: server.addr,
            _server: server,
            messages,
            certs,
        })
    }

    fn messages(&self) -> Vec<u8> {
        std::fs::read(&self.messages).unwrap_or_default()
    }
}

fn options(mode: TlsMode) -> Options {
    let mut o = Options::new("client.test");
    o.session.policy = Policy {
        tls: mode,
        ..Policy::default()
    };
    o
}

#[test]
fn required_starttls_verified_against_the_test_ca_delivers() {
    let Some(server) = Aiosmtpd::start() else {
        return;
    };
    let mut o = options(TlsMode::Required);
    o.tls.ca_file = Some(server.certs.ca_file.clone());
    let mut conn = Client::connect(server.addr, o).expect("connect with STARTTLS");
    assert!(conn.is_tls());
    let body = b"Subject: aiosmtpd over TLS\r\n\r\n.dot line\r\nbody\r\n";
    let outcomes = conn
        .send(&Message::new(
            "a@x.test",
            ["b@y.test", "c@y.test"],
            &body[..],
        ))
        .unwrap();
    assert!(outcomes.iter().all(|o| o.is_delivered()), "{outcomes:?}");
    assert!(outcomes[0].reply.text().contains("stored by aiosmtpd"));
    conn.quit().unwrap();
    let stored = server.messages();
    let mut expected = b"MAIL a@x.test RCPT b@y.test,c@y.test TLS yes\n".to_vec();
    expected.extend_from_slice(body);
    assert_eq!(
        String::from_utf8_lossy(&stored),
        String::from_utf8_lossy(&expected)
    );
}

#[test]
fn aiosmtpd_refuses_plaintext_and_the_default_roots_refuse_its_certificate() {
    let Some(server) = Aiosmtpd::start() else {
        return;
    };
    // STARTTLS disabled: aiosmtpd requires it, so MAIL is refused (530) and nothing is stored.
    let mut conn = Client::connect(server.addr, options(TlsMode::Disabled)).unwrap();
    let outcomes = conn
        .send(&Message::new(
            "a@x.test",
            ["b@y.test"],
            "Subject: x\r\n\r\nx\r\n",
        ))
        .unwrap();
    assert_eq!(outcomes[0].reply.code(), 530, "{outcomes:?}");
    let _ = conn.quit();

    // Required with the Mozilla roots: the test CA is unknown.
    let err = Client::connect(server.addr, options(TlsMode::Required)).unwrap_err();
    assert!(
        matches!(&err, Error::Tls(m) if m.contains("UnknownIssuer")),
        "{err}"
    );
    assert!(server.messages().is_empty());
}

#[test]
fn the_engine_delivers_over_several_verified_tls_connections() {
    let Some(server) = Aiosmtpd::start() else {
        return;
    };
    let mut session = SessionConfig::new("client.test");
    session.policy.tls = TlsMode::Required;
    let engine = Engine::builder(server.addr)
        .connections(4)
        .max_deliveries_per_connection(5)
        .session(session)
        .tls(TlsOptions {
            ca_file: Some(server.certs.ca_file.clone()),
            ..TlsOptions::default()
        })
        .build()
        .unwrap();
    let rx = engine.deliveries();
    let n = 20;
    for i in 0..n {
        let body = format!("Subject: engine {i}\r\n\r\n.dot line\r\nbody {i}\r\n");
        engine
            .submit(Message::new("a@x.test", ["b@y.test"], body))
            .unwrap();
    }
    for _ in 0..n {
        let d = rx.recv_timeout(Duration::from_secs(60)).unwrap();
        assert!(d.is_delivered(), "{:?}", d.outcomes);
        assert!(d.outcomes[0].reply.text().contains("stored by aiosmtpd"));
    }
    let stats = engine.stats();
    engine.shutdown();
    assert!(stats.connections_opened >= 4, "{stats:?}");
    assert_eq!(stats.connections_failed, 0, "{stats:?}");
    let stored = String::from_utf8_lossy(&server.messages()).into_owned();
    assert_eq!(stored.matches(" TLS yes\n").count(), n, "{stored}");
    assert!(!stored.contains(" TLS no\n"), "{stored}");
    for i in 0..n {
        let body = format!("Subject: engine {i}\r\n\r\n.dot line\r\nbody {i}\r\n");
        assert!(stored.contains(&body), "message {i} byte-exact: {stored}");
    }
}
