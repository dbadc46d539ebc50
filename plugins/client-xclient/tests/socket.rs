//! The `xclient` client state in real sessions: the plugin is loaded from its `.so` (and,
//! in one test, found linked in through `inventory`), the client's chain is built from the
//! hooks registry, and the blocking client sends through a recording relay to Impulse's own
//! server running the server-side `xclient` plugin. The relay's transcript shows where the
//! state ran; the spooled envelope and `Received:` header show what it did.
// Socket tests run real peers on threads and wait on the real clock.
#![allow(clippy::disallowed_methods)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use hooks_api::smtp_proto::classify;
use hooks_api::toml;
use hooks_api::Registry;
use impulse_test_support::server::{static_registry, TestServer};
use smtp_client::driver::blocking::{Client, Options};
use smtp_client::{Message, StateMachine, StateRegistry};

use impulse_plugin_client_xclient as _;
use impulse_plugin_xclient as _;

#[path = "../../../tests/support/load_so.rs"]
mod load_so;
use load_so::load_so;

#[path = "../../../tests/support/plugin_so.rs"]
mod build_so;

/// The plugin's `.so`, built once per test binary.
fn plugin_so() -> PathBuf {
    build_so::plugin_so("client-xclient")
}

/// Impulse's server with the server-side xclient plugin, XCLIENT allowed from `authorized`.
fn server(authorized: &str) -> TestServer {
    let config = format!("[xclient]\nauthorized = [{authorized:?}]\n");
    // Relay control sees the reported client: trust the networks these tests report.
    TestServer::builder()
        .registry(static_registry(&config, &["xclient"]))
        .relay_networks(&["127.0.0.0/8", "192.0.2.0/24", "198.51.100.0/24"])
        .start()
}

/// A TCP relay for one connection that records what the client sends.
struct Relay {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<u8>>>,
    thread: JoinHandle<()>,
}

impl Relay {
    fn start(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let thread = std::thread::spawn(move || {
            let (mut client, _) = listener.accept().unwrap();
            let mut server = TcpStream::connect(upstream).unwrap();
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let down = std::thread::spawn(move || {
                let _ = std::io::copy(&mut s2, &mut c2);
                let _ = c2.shutdown(Shutdown::Write);
            });
            let mut buf = [0u8; 4096];
            loop {
                match client.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        record.lock().unwrap().extend_from_slice(&buf[..n]);
                        if server.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = server.shutdown(Shutdown::Write);
            let _ = down.join();
        });
        Relay { addr, seen, thread }
    }

    /// What the client sent, once the connection is over.
    fn transcript(self) -> String {
        self.thread.join().unwrap();
        let seen = self.seen.lock().unwrap();
        String::from_utf8_lossy(&seen).into_owned()
    }
}

/// The client's chain, built from the plugins in `registry`.
fn machine(registry: &Registry) -> Arc<StateMachine> {
    StateRegistry::from_hooks(registry).unwrap().build()
}

fn loaded(config: &str) -> Registry {
    let configs: toml::Table = toml::from_str(config).unwrap();
    let mut registry = Registry::with_classifier(Box::leak(Box::new(classify::Registry::new())));
    assert_eq!(
        load_so(&mut registry, plugin_so(), &configs).unwrap(),
        ["client-xclient"]
    );
    registry
}

/// Sends one message through a relay to `server` with `machine` and returns the client's
/// transcript.
fn send(server: &TestServer, machine: Arc<StateMachine>, options: Options) -> String {
    let relay = Relay::start(server.addr);
    let mut options = Options {
        machine: Some(machine),
        ..options
    };
    options.session.policy.command_retries = 0;
    let mut conn = Client::connect(relay.addr, options).unwrap();
    let message = Message::new(
        "sender@proxy.test",
        ["rcpt@mx.test"],
        "Subject: proxied\r\n\r\nhello\r\n",
    );
    let outcomes = conn.send(&message).unwrap();
    assert!(outcomes[0].is_delivered(), "{outcomes:?}");
    conn.quit().unwrap();
    relay.transcript()
}

/// The spooled message's envelope peer, HELO and `Received:` line.
fn spooled(server: &TestServer) -> (String, String, String) {
    let ids = server.queued();
    assert_eq!(ids.len(), 1);
    let env = server.spool.read_envelope(ids[0]).unwrap();
    let message = String::from_utf8(server.stored(ids[0])).unwrap();
    let received = message.lines().next().unwrap_or_default().to_owned();
    (env.peer, env.helo, received)
}

fn names(machine: &StateMachine) -> Vec<String> {
    machine
        .registry()
        .chain()
        .iter()
        .map(|e| e.name().to_owned())
        .collect()
}

#[test]
fn loaded_from_the_so_it_sends_xclient_after_ehlo_and_greets_again() {
    let registry = loaded(
        "[client-xclient]\naddr = '192.0.2.7'\nname = 'client.example'\nhelo = 'client-helo.example'\n",
    );
    let machine = machine(&registry);
    assert_eq!(
        names(&machine)[..5],
        ["connect", "banner", "ehlo", "starttls", "xclient"]
    );
    let server = server("127.0.0.0/8");

    let transcript = send(&server, machine, Options::new("proxy.test"));
    let commands: Vec<&str> = transcript.split("\r\n").take(4).collect();
    assert_eq!(
        commands,
        [
            "EHLO proxy.test",
            "XCLIENT NAME=client.example ADDR=192.0.2.7 HELO=client-helo.example",
            "EHLO proxy.test",
            "MAIL FROM:<sender@proxy.test> SIZE=27",
        ],
        "{transcript}"
    );
    assert!(transcript.ends_with("QUIT\r\n"), "{transcript}");
    assert_eq!(transcript.matches("XCLIENT").count(), 1, "{transcript}");

    let (peer, helo, received) = spooled(&server);
    assert!(peer.starts_with("192.0.2.7:"), "{peer}");
    assert_eq!(helo, "client-helo.example");
    assert_eq!(
        received,
        "Received: from client-helo.example (client.example [192.0.2.7])"
    );
    server.stop();
}

#[test]
fn session_arguments_override_the_config_and_never_reach_mail_from() {
    let registry = loaded("[client-xclient]\naddr = '192.0.2.7'\nname = 'client.example'\n");
    let server = server("127.0.0.0/8");

    let mut options = Options::new("proxy.test");
    options
        .session
        .session_args
        .add("XCLIENT-ADDR", "198.51.100.9")
        .unwrap();
    let transcript = send(&server, machine(&registry), options);
    assert!(
        transcript.contains("XCLIENT NAME=client.example ADDR=198.51.100.9\r\n"),
        "{transcript}"
    );
    let mail = transcript
        .split("\r\n")
        .find(|l| l.starts_with("MAIL FROM:"))
        .unwrap();
    assert_eq!(
        mail, "MAIL FROM:<sender@proxy.test> SIZE=27",
        "{transcript}"
    );
    let (peer, helo, _) = spooled(&server);
    assert!(peer.starts_with("198.51.100.9:"), "{peer}");
    assert_eq!(helo, "proxy.test", "no HELO attribute: the client's own");
    server.stop();
}

#[test]
fn skipped_when_the_server_does_not_offer_xclient() {
    let registry = loaded("[client-xclient]\naddr = '192.0.2.7'\n");
    // Loopback is not authorized: XCLIENT is not advertised to the relay.
    let server = server("10.0.0.0/8");

    let transcript = send(&server, machine(&registry), Options::new("proxy.test"));
    assert!(!transcript.contains("XCLIENT"), "{transcript}");
    assert_eq!(transcript.matches("EHLO").count(), 1, "{transcript}");
    let (peer, _, _) = spooled(&server);
    assert!(peer.starts_with("127.0.0.1:"), "{peer}");
    server.stop();
}

#[test]
fn required_fails_the_session_when_xclient_is_absent() {
    let registry = loaded("[client-xclient]\naddr = '192.0.2.7'\nrequired = true\n");
    let server = server("10.0.0.0/8");
    let options = Options {
        machine: Some(machine(&registry)),
        ..Options::new("proxy.test")
    };
    let err = Client::connect(server.addr, options).unwrap_err();
    match &err {
        smtp_client::Error::Refused(reply) => {
            assert_eq!(reply.code(), 550);
            assert_eq!(reply.text(), "the server does not offer XCLIENT");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.count(), 0);
    server.stop();
}

#[test]
fn linked_statically_it_is_found_through_inventory() {
    let configs: toml::Table =
        toml::from_str("[client-xclient]\naddr = '192.0.2.8'\nname = 'static.example'\n").unwrap();
    let mut registry = Registry::with_classifier(Box::leak(Box::new(classify::Registry::new())));
    assert_eq!(
        registry.load_static_configured(&configs).unwrap(),
        ["client-xclient"]
    );
    let machine = machine(&registry);
    let server = server("127.0.0.0/8");
    let transcript = send(&server, machine, Options::new("proxy.test"));
    assert!(
        transcript.starts_with(
            "EHLO proxy.test\r\nXCLIENT NAME=static.example ADDR=192.0.2.8\r\nEHLO proxy.test\r\n"
        ),
        "{transcript}"
    );
    let (peer, _, received) = spooled(&server);
    assert!(peer.starts_with("192.0.2.8:"), "{peer}");
    assert!(
        received.contains("(static.example [192.0.2.8])"),
        "{received}"
    );
    server.stop();
}
