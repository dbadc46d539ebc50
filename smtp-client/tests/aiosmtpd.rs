//! AUTH against a real third-party server: Python's aiosmtpd, started in a `python3`
//! subprocess on a free loopback port, with an authenticator that accepts one user and
//! logs every attempt (mechanism, login, verdict) and a handler that writes each message it
//! receives to a file.
//!
//! Without `python3` or the `aiosmtpd` module these tests print a loud SKIPPED and pass —
//! unless `CI` is set, where they fail (`.ci/run` installs the module with pip).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use impulse_test_support::peers::{aiosmtpd_available, PyServer};

use smtp_client::driver::blocking::{Client, Options};
use smtp_client::smtp_proto::classify::{self, Category};
use smtp_client::smtp_proto::sasl::Secret;
use smtp_client::{Credentials, Error, Message};

/// The server: `python3 -c SERVER PORT MESSAGES_FILE AUTH_LOG EXCLUDED_MECHANISMS`.
const SERVER: &str = r#"
import sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, messages, auth_log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
excluded = [m for m in sys.argv[4].split(",") if m]

class Handler:
    async def handle_DATA(self, server, session, envelope):
        with open(messages, "ab") as f:
            f.write(("MAIL %s RCPT %s LOGIN %s\n" % (
                envelope.mail_from, ",".join(envelope.rcpt_tos),
                session.auth_data.login.decode() if session.authenticated else "-")).encode())
            f.write(envelope.original_content)
        return "250 2.0.0 stored by aiosmtpd"

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login == b"alice" and auth_data.password == b"wonder land")
    with open(auth_log, "a") as f:
        f.write("%s %s %s\n" % (mechanism, auth_data.login.decode(), "ok" if ok else "bad"))
    return AuthResult(success=ok, handled=False, auth_data=auth_data)

controller = Controller(Handler(), hostname="127.0.0.1", port=port,
                        authenticator=authenticator, auth_require_tls=False,
                        auth_exclude_mechanism=excluded)
controller.start()
print("READY", flush=True)
while True:
    time.sleep(3600)
"#;

/// A running aiosmtpd, killed on drop.
struct Aiosmtpd {
    /// Kept for its drop, which stops the process.
    _server: PyServer,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
    messages: PathBuf,
    auth_log: PathBuf,
}

impl Aiosmtpd {
    /// Starts the server without the `excluded` mechanisms; `None` when it cannot run here.
    fn start(excluded: &[&str]) -> Option<Aiosmtpd> {
        if !aiosmtpd_available() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let messages = dir.path().join("messages");
        let auth_log = dir.path().join("auth.log");
        let excluded = excluded.join(",");
        let server = PyServer::start(
            SERVER,
            [
                messages.as_os_str(),
                auth_log.as_os_str(),
                excluded.as_ref(),
            ],
        );
        Some(Aiosmtpd {
            addr: server.addr,
            _server: server,
            _dir: dir,
            messages,
            auth_log,
        })
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_default()
    }
}

fn options(password: &str) -> Options {
    let mut o = Options::new("client.test");
    o.session.credentials = Some(Credentials::Password {
        user: "alice".into(),
        password: Secret::new(password),
    });
    o.session.policy.auth_without_tls = true;
    o
}

fn message() -> Message {
    Message::new(
        "sender@client.test",
        ["rcpt@aiosmtpd.test"],
        "Subject: authenticated\r\n\r\nsent after AUTH\r\n",
    )
}

/// Sends one message with good credentials; returns what the handler stored.
fn deliver(server: &Aiosmtpd) -> String {
    let mut conn = Client::connect(server.addr, options("wonder land")).unwrap();
    let outcomes = conn.send(&message()).unwrap();
    assert!(outcomes[0].is_delivered(), "{outcomes:?}");
    assert_eq!(outcomes[0].reply.text(), "stored by aiosmtpd");
    conn.quit().unwrap();
    Aiosmtpd::read(&server.messages)
}

#[test]
fn auth_plain_delivers_when_offered() {
    let Some(server) = Aiosmtpd::start(&[]) else {
        return;
    };
    let stored = deliver(&server);
    assert!(
        stored.starts_with("MAIL sender@client.test RCPT rcpt@aiosmtpd.test LOGIN alice\n"),
        "{stored}"
    );
    assert!(
        stored.ends_with("Subject: authenticated\r\n\r\nsent after AUTH\r\n"),
        "{stored}"
    );
    assert_eq!(Aiosmtpd::read(&server.auth_log), "PLAIN alice ok\n");
}

#[test]
fn auth_login_delivers_when_only_login_is_offered() {
    let Some(server) = Aiosmtpd::start(&["PLAIN"]) else {
        return;
    };
    let stored = deliver(&server);
    assert!(stored.contains("LOGIN alice\n"), "{stored}");
    assert_eq!(Aiosmtpd::read(&server.auth_log), "LOGIN alice ok\n");
}

#[test]
fn a_bad_password_fails_the_session_with_a_classified_535() {
    for excluded in [&[][..], &["PLAIN"][..]] {
        let Some(server) = Aiosmtpd::start(excluded) else {
            return;
        };
        let err = Client::connect(server.addr, options("wrong")).unwrap_err();
        let Error::Refused(reply) = &err else {
            panic!("{err}");
        };
        assert_eq!(reply.code(), 535, "{reply:?}");
        assert_eq!(reply.status().unwrap().to_string(), "5.7.8");
        assert_eq!(err.reply(), *reply, "the recipients would get the 535");
        let class = classify::classify(reply.code(), reply.status(), &reply.text());
        assert_ne!(class.id, classify::id::UNDETERMINED, "{class:?}");
        assert_ne!(class.category, Category::Soft, "{class:?}");
        let mechanism = if excluded.is_empty() {
            "PLAIN"
        } else {
            "LOGIN"
        };
        assert_eq!(
            Aiosmtpd::read(&server.auth_log),
            format!("{mechanism} alice bad\n")
        );
        assert_eq!(Aiosmtpd::read(&server.messages), "", "nothing delivered");
    }
}
