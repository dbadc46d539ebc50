//! The `xclient` client state in real sessions: the plugin is loaded from its `.so` (and,
//! in one test, found linked in through `inventory`), the client's chain is built from the
//! hooks registry, and the blocking client sends through a recording relay to Impulse's own
//! server running the server-side `xclient` plugin. The relay's transcript shows where the
//! state ran; the spooled envelope and `Received:` header show what it did.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use hooks_api::smtp_proto::classify;
use hooks_api::toml;
use hooks_api::Registry;
use smtp_client::driver::blocking::{Client, Options};
use smtp_client::{Message, StateMachine, StateRegistry};
use smtp_server::config::ServerConfig;
use smtp_server::spool::Spool;
use smtp_server::{Server, ServerHandle};

use impulse_plugin_client_xclient as _;
use impulse_plugin_xclient as _;

#[path = "../../../tests/support/plugin_so.rs"]
mod build_so;

/// The plugin's `.so`, built once per test binary.
fn plugin_so() -> PathBuf {
    build_so::plugin_so("client-xclient")
}

/// Impulse's server with the server-side xclient plugin, XCLIENT allowed from `authorized`.
fn server(authorized: &str, spool: &Spool) -> ServerHandle {
    let configs: toml::Table =
        toml::from_str(&format!("[xclient]\nauthorized = [{authorized:?}]\n")).unwrap();
    let mut registry = Registry::new();
    assert_eq!(
        registry.load_static_configured(&configs).unwrap(),
        ["xclient"]
    );
    Server::builder()
        .config(ServerConfig {
            workers: 1,
            ..ServerConfig::default()
        })
        .hostname("mx.test")
        .listen("127.0.0.1:0".parse().unwrap())
        .registry(Arc::new(registry))
        .spool(spool.clone())
        .build()
        .unwrap()
        .spawn()
        .unwrap()
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

/// Sends one message through a relay to `handle` with `machine` and returns the client's
/// transcript.
fn send(handle: &ServerHandle, machine: Arc<StateMachine>, options: Options) -> String {
    let relay = Relay::start(handle.local_addrs()[0]);
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
fn spooled(spool: &Spool) -> (String, String, String) {
    let list = spool.list().unwrap();
    assert_eq!(list.len(), 1);
    let env = spool.read_envelope(list[0].id).unwrap();
    let mut message = String::new();
    spool
        .open_message(list[0].id)
        .unwrap()
        .read_to_string(&mut message)
        .unwrap();
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
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let handle = server("127.0.0.0/8", &spool);

    let transcript = send(&handle, machine, Options::new("proxy.test"));
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

    let (peer, helo, received) = spooled(&spool);
    assert!(peer.starts_with("192.0.2.7:"), "{peer}");
    assert_eq!(helo, "client-helo.example");
    assert_eq!(
        received,
        "Received: from client-helo.example (client.example [192.0.2.7])"
    );
    handle.shutdown();
    handle.join().unwrap();
}

#[test]
fn session_arguments_override_the_config_and_never_reach_mail_from() {
    let registry = loaded("[client-xclient]\naddr = '192.0.2.7'\nname = 'client.example'\n");
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let handle = server("127.0.0.0/8", &spool);

    let mut options = Options::new("proxy.test");
    options
        .session
        .session_args
        .add("XCLIENT-ADDR", "198.51.100.9")
        .unwrap();
    let transcript = send(&handle, machine(&registry), options);
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
    let (peer, helo, _) = spooled(&spool);
    assert!(peer.starts_with("198.51.100.9:"), "{peer}");
    assert_eq!(helo, "proxy.test", "no HELO attribute: the client's own");
    handle.shutdown();
    handle.join().unwrap();
}

#[test]
fn skipped_when_the_server_does_not_offer_xclient() {
    let registry = loaded("[client-xclient]\naddr = '192.0.2.7'\n");
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    // Loopback is not authorized: XCLIENT is not advertised to the relay.
    let handle = server("10.0.0.0/8", &spool);

    let transcript = send(&handle, machine(&registry), Options::new("proxy.test"));
    assert!(!transcript.contains("XCLIENT"), "{transcript}");
    assert_eq!(transcript.matches("EHLO").count(), 1, "{transcript}");
    let (peer, _, _) = spooled(&spool);
    assert!(peer.starts_with("127.0.0.1:"), "{peer}");
    handle.shutdown();
    handle.join().unwrap();
}

#[test]
fn required_fails_the_session_when_xclient_is_absent() {
    let registry = loaded("[client-xclient]\naddr = '192.0.2.7'\nrequired = true\n");
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let handle = server("10.0.0.0/8", &spool);
    let options = Options {
        machine: Some(machine(&registry)),
        ..Options::new("proxy.test")
    };
    let err = Client::connect(handle.local_addrs()[0], options).unwrap_err();
    match &err {
        smtp_client::Error::Refused(reply) => {
            assert_eq!(reply.code(), 550);
            assert_eq!(reply.text(), "the server does not offer XCLIENT");
        }
        other => panic!("{other:?}"),
    }
    assert!(spool.list().unwrap().is_empty());
    handle.shutdown();
    handle.join().unwrap();
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
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let handle = server("127.0.0.0/8", &spool);
    let transcript = send(&handle, machine, Options::new("proxy.test"));
    assert!(
        transcript.starts_with(
            "EHLO proxy.test\r\nXCLIENT NAME=static.example ADDR=192.0.2.8\r\nEHLO proxy.test\r\n"
        ),
        "{transcript}"
    );
    let (peer, _, received) = spooled(&spool);
    assert!(peer.starts_with("192.0.2.8:"), "{peer}");
    assert!(
        received.contains("(static.example [192.0.2.8])"),
        "{received}"
    );
    handle.shutdown();
    handle.join().unwrap();
}

/// Loads the plugin library at `path` into `registry`.
fn load_so(
    registry: &mut hooks_api::Registry,
    path: impl AsRef<std::path::Path>,
    configs: &hooks_api::toml::Table,
) -> Result<Vec<String>, hooks_api::LoadError> {
    // SAFETY: the tests load only libraries built from this workspace (the plugin under
    // test) or the system's own (libc, to check the refusal), whose initialisers are sound.
    unsafe { registry.load_dynamic(path, configs) }
}
