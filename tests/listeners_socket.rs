//! Listeners with roles over 127.0.0.1: implicit TLS (RFC 8314) with swaks `--tlsc` and
//! smtplib's `SMTP_SSL`, a submission listener refusing MAIL before AUTH (`530 5.7.0`), the
//! PROXY protocol (v1 and v2 headers from a test client: trusted and untrusted sources,
//! `LOCAL`/`UNKNOWN`, malformed, oversize and late headers, and a header before implicit TLS;
//! and Debian's HAProxy in front with `send-proxy` and `send-proxy-v2`), and the
//! configuration errors of a submission listener.
//!
//! A missing swaks, python3 or haproxy prints SKIPPED and that test passes, unless `CI` is set.
// A socket test: it measures the real PROXY header timeout.
#![allow(clippy::disallowed_methods)]

#[path = "support/auth_server.rs"]
mod auth_server;

use std::net::{Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use auth_server::{ca, python, start, swaks, AuthServer, PASSWORD, USER};
use impulse::server::config::{
    ListenerConfig, ListenerRole, ListenerTls, RelayConfig, RouteConfig, ServerConfig,
    DEFAULT_PROXY_TIMEOUT,
};
use impulse::server::{Server, ServerError};
use impulse_test_support::LineClient;

/// A `[[listener]]` on a free loopback port.
fn listener(role: ListenerRole, tls: ListenerTls) -> ListenerConfig {
    let mut l = ListenerConfig::mx("127.0.0.1:0".parse().unwrap());
    l.role = role;
    l.tls = tls;
    l
}

/// A server with one `[[listener]]` besides the `mx` one: it is `addr(1)`.
fn with_listener(l: ListenerConfig) -> AuthServer {
    start(move |c| c.listener.push(l))
}

/// A PROXY listener (`mx`, STARTTLS) believing `proxy_from`.
///
/// Its clients are those the header names, outside the trusted networks: `example.com` is a
/// relay domain (mail for us, accepted from anyone; nothing is delivered) so that they may
/// send to it.
fn proxied(proxy_from: &[&str], timeout: Duration) -> AuthServer {
    proxied_with(proxy_from, timeout, |_| {})
}

/// [`proxied`], its configuration changed by `tweak` last.
fn proxied_with(
    proxy_from: &[&str],
    timeout: Duration,
    tweak: impl FnOnce(&mut ServerConfig),
) -> AuthServer {
    let mut l = listener(ListenerRole::Mx, ListenerTls::Starttls);
    l.proxy_protocol = true;
    l.proxy_from = proxy_from.iter().map(|s| (*s).to_owned()).collect();
    l.proxy_timeout = timeout.into();
    start(move |c| {
        c.listener.push(l);
        c.relay = Some(RelayConfig {
            enabled: false,
            domains: vec!["example.com".into()],
            routes: vec![RouteConfig {
                domains: vec!["example.com".into()],
                hosts: vec!["127.0.0.1:9".into()],
                ..RouteConfig::default()
            }],
            ..RelayConfig::default()
        });
        tweak(c);
    })
}

/// A version 2 header: `command` 0 LOCAL or 1 PROXY, the family byte, the address block.
fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x20 | command);
    h.push(family);
    h.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    h.extend_from_slice(body);
    h
}

/// A transaction on an open session (after the banner).
fn send_one(c: &mut LineClient) {
    assert!(c.cmd("EHLO client.test").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<a@example.org>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<b@example.com>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    let reply = c.cmd("Subject: proxied\r\n\r\nhi\r\n.");
    assert!(reply.starts_with("250"), "{reply}");
    c.cmd("QUIT");
}

/// The connection is closed without a byte from the server.
fn closed_silently(c: &mut LineClient) {
    let rest = c.rest();
    assert_eq!(rest, "", "the server said something");
}

#[test]
fn swaks_over_implicit_tls_on_a_submission_listener() {
    let s = with_listener(listener(ListenerRole::Submission, ListenerTls::Implicit));
    let args = [
        "--tlsc",
        "--auth",
        "PLAIN",
        "--auth-user",
        USER,
        "--auth-password",
        PASSWORD,
    ];
    let Some((ok, text)) = swaks(s.addr(1), &args) else {
        return;
    };
    assert!(ok, "{text}");
    assert!(!text.contains("STARTTLS"), "{text}");
    let (env, message) = s.only_message();
    assert_eq!(env.auth.as_deref(), Some(USER));
    assert!(message.contains("with ESMTPSA"), "{message}");
}

const SMTPLIB_SSL: &str = r#"
import smtplib, ssl, sys
port, ca, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
s = smtplib.SMTP_SSL('localhost', port, context=ctx)
s.ehlo('client.test')
assert not s.has_extn('starttls'), 'STARTTLS offered under implicit TLS'
assert s.has_extn('auth'), 'no AUTH under implicit TLS'
code, text = s.mail('a@example.org')
assert code == 530 and text.startswith(b'5.7.0'), (code, text)
s.rset()
s.login(user, password)
s.sendmail('a@example.org', ['b@example.com'], b'Subject: ssl\r\n\r\nhello\r\n')
s.quit()
print('ok')
"#;

#[test]
fn smtplib_smtp_ssl_on_an_implicit_tls_submission_listener() {
    let s = with_listener(listener(ListenerRole::Submission, ListenerTls::Implicit));
    let port = s.addr(1).port().to_string();
    let Some(out) = python(SMTPLIB_SSL, &[&port, &ca(&s.certs), USER, PASSWORD]) else {
        return;
    };
    assert!(out.contains("ok"), "{out}");
    assert_eq!(s.only_message().0.auth.as_deref(), Some(USER));
}

#[test]
fn submission_refuses_mail_before_auth() {
    let s = with_listener(listener(ListenerRole::Submission, ListenerTls::Starttls));
    let mut c = LineClient::connect(s.addr(1));
    assert!(c.reply().starts_with("220 "));
    let ehlo = c.cmd("EHLO client.test");
    assert!(
        ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"),
        "{ehlo}"
    );
    let reply = c.cmd("MAIL FROM:<a@example.org>");
    assert!(reply.starts_with("530 5.7.0"), "{reply}");
    // swaks with STARTTLS but no AUTH is refused; with AUTH it sends.
    let Some((ok, text)) = swaks(s.addr(1), &["--tls"]) else {
        return;
    };
    assert!(!ok && text.contains("530 5.7.0"), "{text}");
    let args = [
        "--tls",
        "--auth",
        "LOGIN",
        "--auth-user",
        USER,
        "--auth-password",
        PASSWORD,
    ];
    let (ok, text) = swaks(s.addr(1), &args).unwrap();
    assert!(ok, "{text}");
    assert_eq!(s.only_message().0.auth.as_deref(), Some(USER));
    // The mx listener of the same server takes mail without AUTH.
    let mut c = s.server.connect();
    send_one(&mut c);
    assert_eq!(s.server.count(), 2);
}

#[test]
fn proxy_v1_and_v2_headers_name_the_client() {
    let s = proxied(&["127.0.0.1/32"], DEFAULT_PROXY_TIMEOUT.get());
    let mut c = LineClient::connect(s.addr(1));
    c.send(b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\r\n");
    assert!(c.reply().starts_with("220 mx.test"));
    send_one(&mut c);
    let (env, message) = s.only_message();
    assert_eq!(env.peer, "192.0.2.7:40000");
    let received = message.split("\r\n\r\n").next().unwrap();
    assert!(received.contains("[192.0.2.7]"), "{received}");
    assert!(!received.contains("127.0.0.1"), "{received}");

    let s = proxied(&["127.0.0.1/32"], DEFAULT_PROXY_TIMEOUT.get());
    let mut body = "2001:db8::7".parse::<Ipv6Addr>().unwrap().octets().to_vec();
    body.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    body.extend_from_slice(&40001u16.to_be_bytes());
    body.extend_from_slice(&25u16.to_be_bytes());
    body.extend_from_slice(&[0x04, 0x00, 0x01, b'x']); // a TLV, skipped
    let mut c = LineClient::connect(s.addr(1));
    // The header and the start of the session in one write.
    let mut bytes = v2(1, 0x21, &body);
    bytes.extend_from_slice(b"NOOP\r\n");
    c.send(&bytes);
    assert!(c.reply().starts_with("220 mx.test"));
    // NOOP before the banner is a pipelining error, as from any client.
    let reply = c.reply();
    assert!(reply.starts_with("554 5.5.0"), "{reply}");
    let mut c = LineClient::connect(s.addr(1));
    c.send(&v2(1, 0x21, &body));
    assert!(c.reply().starts_with("220 mx.test"));
    send_one(&mut c);
    let (env, _) = s.only_message();
    assert_eq!(env.peer, "[2001:db8::7]:40001");
}

#[test]
fn local_and_unknown_headers_name_no_client() {
    let s = proxied(&["127.0.0.1/32"], DEFAULT_PROXY_TIMEOUT.get());
    for header in [b"PROXY UNKNOWN\r\n".to_vec(), v2(0, 0x11, &[0; 12])] {
        let mut c = LineClient::connect(s.addr(1));
        c.send(&header);
        assert!(c.reply().starts_with("220 mx.test"));
        send_one(&mut c);
    }
    for id in s.server.queued() {
        let env = s.server.spool.read_envelope(id).unwrap();
        // Not the proxy's address (which may be trusted): the unspecified one.
        assert_eq!(env.peer, "0.0.0.0:0");
    }
    assert_eq!(s.server.count(), 2);
}

#[test]
fn a_proxy_outside_proxy_from_is_closed() {
    let s = proxied(&["192.0.2.0/24"], DEFAULT_PROXY_TIMEOUT.get());
    let mut c = LineClient::connect(s.addr(1));
    c.send(b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\r\n");
    closed_silently(&mut c);
    // The mx listener is not a PROXY listener.
    let mut c = s.server.connect();
    send_one(&mut c);
}

#[test]
fn connections_waiting_for_their_header_are_capped() {
    let s = proxied_with(&["127.0.0.1/32"], Duration::from_secs(30), |c| {
        c.workers = 1;
        c.limits.connections = 2;
    });
    // Two connections from the trusted proxy that never send their header hold the loop's
    // two places; a third is closed at once, without a word.
    let waiting: Vec<LineClient> = (0..2).map(|_| LineClient::connect(s.addr(1))).collect();
    let started = Instant::now();
    let mut third = LineClient::connect(s.addr(1));
    closed_silently(&mut third);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "closed at once"
    );
    // Once they are gone, a proxied client is served again.
    drop(waiting);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = LineClient::connect(s.addr(1));
        c.send(b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\r\n");
        if c.reply().starts_with("220") {
            break;
        }
        assert!(Instant::now() < deadline, "never served again");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn missing_malformed_and_oversize_headers_are_closed() {
    let s = proxied(&["127.0.0.1/32", "::1/128"], DEFAULT_PROXY_TIMEOUT.get());
    let mut oversize = v2(1, 0x11, &[]);
    oversize[14..16].copy_from_slice(&4000u16.to_be_bytes());
    for bytes in [
        b"EHLO client.test\r\n".to_vec(),
        b"PROXY TCP4 192.0.2.7 198.51.100.1 40000\r\n".to_vec(),
        b"PROXY TCP4 999.0.2.7 198.51.100.1 40000 25\r\n".to_vec(),
        [&b"PROXY UNKNOWN "[..], &[b'x'; 200]].concat(),
        oversize,
        v2(1, 0x11, &[0; 4]),
    ] {
        let mut c = LineClient::connect(s.addr(1));
        c.send(&bytes);
        closed_silently(&mut c);
    }
}

#[test]
fn a_late_header_is_closed_after_its_timeout() {
    let s = proxied(&["127.0.0.1/32"], Duration::from_secs(1));
    let started = Instant::now();
    let mut c = LineClient::connect(s.addr(1));
    c.send(b"PROXY TCP4 192.0.2.7"); // and nothing more
    closed_silently(&mut c);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

const PROXY_THEN_TLS: &str = r#"
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
raw = socket.create_connection(('127.0.0.1', port))
raw.sendall(b'PROXY TCP4 192.0.2.9 198.51.100.1 40002 465\r\n')
ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(raw, server_hostname='localhost')
f = s.makefile('rb')
banner = f.readline()
assert banner.startswith(b'220 '), banner
s.sendall(b'EHLO client.test\r\n')
lines = []
while True:
    line = f.readline()
    lines.append(line.decode().strip())
    if line[3:4] != b'-':
        break
print('\n'.join(lines))
"#;

/// The PROXY header and the TLS ClientHello in one write (memory BIOs), then the session.
const PROXY_AND_HELLO_TOGETHER: &str = r#"
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(incoming, outgoing, server_hostname='localhost')
raw = socket.create_connection(('127.0.0.1', port))
raw.settimeout(10)
try:
    tls.do_handshake()
except ssl.SSLWantReadError:
    pass
raw.sendall(b'PROXY TCP4 192.0.2.10 198.51.100.1 40003 465\r\n' + outgoing.read())
def pump():
    data = raw.recv(65536)
    assert data, 'closed'
    incoming.write(data)
while True:
    try:
        tls.do_handshake()
        break
    except ssl.SSLWantReadError:
        raw.sendall(outgoing.read())
        pump()
raw.sendall(outgoing.read())
text = b''
while b'\r\n' not in text:
    try:
        text += tls.read(4096)
    except ssl.SSLWantReadError:
        pump()
print(text.decode().strip())
"#;

#[test]
fn a_tls_hello_in_the_same_packet_as_the_proxy_header_is_kept() {
    let mut l = listener(ListenerRole::Submission, ListenerTls::Implicit);
    l.proxy_protocol = true;
    let s = with_listener(l);
    let port = s.addr(1).port().to_string();
    let Some(out) = python(PROXY_AND_HELLO_TOGETHER, &[&port, &ca(&s.certs)]) else {
        return;
    };
    assert!(out.starts_with("220 mx.test"), "{out}");
}

#[test]
fn the_proxy_header_comes_before_the_implicit_tls_handshake() {
    let mut l = listener(ListenerRole::Submission, ListenerTls::Implicit);
    l.proxy_protocol = true;
    let s = with_listener(l);
    let port = s.addr(1).port().to_string();
    let Some(out) = python(PROXY_THEN_TLS, &[&port, &ca(&s.certs)]) else {
        return;
    };
    assert!(out.contains("AUTH PLAIN LOGIN"), "{out}");
    assert!(!out.contains("STARTTLS"), "{out}");
}

#[test]
fn submission_needs_an_auth_hook_and_tls_or_plaintext() {
    let mut config = ServerConfig::default();
    config
        .listener
        .push(listener(ListenerRole::Submission, ListenerTls::None));
    config.auth.plaintext = true;
    let dir = tempfile::tempdir().unwrap();
    let err = Server::builder()
        .config(config.clone())
        .listen("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .spool_dir(dir.path().join("spool"))
        .build()
        .unwrap_err();
    match &err {
        ServerError::Config(e) => assert_eq!(e.key(), Some("listener[0].role"), "{e}"),
        other => panic!("not a config error: {other}"),
    }
    config.auth.plaintext = false;
    let err = config.validate().unwrap_err();
    assert_eq!(err.key(), Some("listener[0].tls"), "{err}");
}

#[test]
fn config_check_refuses_a_submission_listener_without_auth() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, "").unwrap();
    let base = "[auth]\nplaintext = true\n\n[[listener]]\naddress = \"127.0.0.1:2587\"\n\
                role = \"submission\"\ntls = \"none\"\n";
    let run = |text: &str| {
        let file = dir.path().join("impulse.toml");
        std::fs::write(&file, text).unwrap();
        impulse_test_support::impulse!()
            .command()
            .args(["config", "check", "--config"])
            .arg(&file)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = run(base);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 6: listener[0].role"), "{err}");
    let with_auth = format!(
        "{base}\n[plugins.auth-file]\nfile = {:?}\n",
        users.display().to_string()
    );
    let out = run(&with_auth);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("127.0.0.1:2587 (submission, no TLS)"),
        "{text}"
    );
}

#[test]
fn the_connection_caps_count_the_client_the_header_names() {
    let mut l = listener(ListenerRole::Mx, ListenerTls::Starttls);
    l.proxy_protocol = true;
    let s = start(move |c| {
        c.limits.connections_per_ip = 1;
        c.listener.push(l);
    });
    let header = |ip: &str| format!("PROXY TCP4 {ip} 198.51.100.1 40000 25\r\n");
    let mut first = LineClient::connect(s.addr(1));
    first.send(header("192.0.2.7").as_bytes());
    assert!(first.reply().starts_with("220 "));
    // The same client again through the same proxy: over its cap.
    let mut again = LineClient::connect(s.addr(1));
    again.send(header("192.0.2.7").as_bytes());
    let rest = again.rest();
    assert!(
        rest.starts_with("421 4.7.0") && rest.contains("192.0.2.7"),
        "{rest}"
    );
    // Another client through the same proxy (a loopback address, counted by its clients).
    let mut other = LineClient::connect(s.addr(1));
    other.send(header("192.0.2.8").as_bytes());
    assert!(other.reply().starts_with("220 "));
    assert!(first.cmd("NOOP").starts_with("250"));
}

#[test]
fn haproxy_in_front_passes_the_real_client_with_v1_and_v2() {
    let Some(haproxy) = impulse_test_support::peers::find_program("haproxy", &["/usr/sbin"]) else {
        impulse_test_support::peers::missing("haproxy", "apt-get install haproxy (see .ci/run)");
        return;
    };
    let s = proxied(&["127.0.0.1/32"], DEFAULT_PROXY_TIMEOUT.get());
    let (v1, v2) = (
        impulse_test_support::peers::free_addr(),
        impulse_test_support::peers::free_addr(),
    );
    let config = format!(
        "global\n  maxconn 64\n\
         defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\
         frontend v1\n  bind {v1}\n  default_backend v1\n\
         frontend v2\n  bind {v2}\n  default_backend v2\n\
         backend v1\n  server impulse {} send-proxy\n\
         backend v2\n  server impulse {} send-proxy-v2\n",
        s.addr(1),
        s.addr(1)
    );
    let file = s.certs.dir.path().join("haproxy.cfg");
    std::fs::write(&file, config).unwrap();
    let mut command = std::process::Command::new(haproxy);
    command
        .arg("-db")
        .arg("-f")
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _haproxy =
        impulse_test_support::peers::Listening::spawn(command, v2, Duration::from_secs(10));
    let mut clients = Vec::new();
    for front in [v1, v2] {
        let mut c = LineClient::connect(front);
        assert!(c.reply().starts_with("220 mx.test"));
        clients.push(c.w.local_addr().unwrap().to_string());
        send_one(&mut c);
    }
    let mut peers: Vec<String> = s
        .server
        .queued()
        .into_iter()
        .map(|id| s.server.spool.read_envelope(id).unwrap().peer)
        .collect();
    peers.sort();
    clients.sort();
    // The address of each test client as HAProxy saw it, not HAProxy's own.
    assert_eq!(peers, clients);
}
