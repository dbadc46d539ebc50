//! [`Sink`]: a small recording ESMTP server on `127.0.0.1:0` for relay tests. It answers
//! each RCPT by a rule the test gives (by address), accepts DATA, and keeps every message
//! it accepted with its envelope, so a test can see what a relay delivered, to whom and how
//! often. PIPELINING is offered (commands are answered one by one as they are read, which
//! is what a pipelining client expects), and nothing else.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::fake::Peer;

/// One message a [`Sink`] accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The reverse-path, without brackets (empty for `<>`).
    pub from: String,
    /// The accepted recipients, without brackets.
    pub to: Vec<String>,
    /// The message as sent, dot-unstuffed, with CRLF line endings.
    pub data: String,
}

/// The reply a [`Sink`] gives a recipient, whole with its CRLF, or `None` for `250 2.1.5 Ok`.
pub type RcptRule = fn(&str) -> Option<&'static str>;

/// A recording ESMTP sink (see the module doc).
#[derive(Debug, Clone)]
pub struct Sink {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Connections accepted.
    pub connections: Arc<AtomicUsize>,
    messages: Arc<Mutex<Vec<Received>>>,
    commands: Arc<Mutex<Vec<String>>>,
}

impl Sink {
    /// A sink accepting every recipient.
    pub fn start() -> Sink {
        Sink::with_rule(|_| None)
    }

    /// A sink answering RCPT by `rule`.
    pub fn with_rule(rule: RcptRule) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        Sink::on(listener, rule)
    }

    /// A sink on a listener the test bound (to know the port before the sink starts).
    pub fn on(listener: TcpListener, rule: RcptRule) -> Sink {
        Sink::serving(listener, rule, false)
    }

    /// A sink accepting every recipient that also offers `DSN` (RFC 3461).
    pub fn with_dsn() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        Sink::serving(listener, |_| None, true)
    }

    fn serving(listener: TcpListener, rule: RcptRule, dsn: bool) -> Sink {
        let addr = listener.local_addr().expect("its address");
        let connections = Arc::new(AtomicUsize::new(0));
        let messages = Arc::new(Mutex::new(Vec::new()));
        let commands = Arc::new(Mutex::new(Vec::new()));
        let (c, m, l) = (connections.clone(), messages.clone(), commands.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                c.fetch_add(1, Ordering::SeqCst);
                let (m, l) = (m.clone(), l.clone());
                std::thread::spawn(move || {
                    let mut peer = Peer::new(stream, Duration::from_secs(30));
                    serve(&mut peer, rule, dsn, &m, &l)
                });
            }
        });
        Sink {
            addr,
            connections,
            messages,
            commands,
        }
    }

    /// Every command line it read (not the message data), in order, over all connections.
    pub fn commands(&self) -> Vec<String> {
        self.commands.lock().expect("the sink's lock").clone()
    }

    /// What it accepted so far.
    pub fn messages(&self) -> Vec<Received> {
        self.messages.lock().expect("the sink's lock").clone()
    }

    /// Waits up to `limit` until it holds at least `n` messages; returns them.
    pub fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let got = self.messages();
            if got.len() >= n || start.elapsed() > limit {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn path(arg: &str) -> String {
    let start = arg.find('<').map_or(0, |i| i + 1);
    let end = arg[start..].find('>').map_or(arg.len(), |i| start + i);
    arg[start..end].to_string()
}

fn serve(
    peer: &mut Peer,
    rule: RcptRule,
    dsn: bool,
    messages: &Mutex<Vec<Received>>,
    commands: &Mutex<Vec<String>>,
) {
    if !peer.send(b"220 sink.test ESMTP\r\n") {
        return;
    }
    let mut from = None::<String>;
    let mut to = Vec::new();
    while let Some(line) = peer.line() {
        commands.lock().expect("the sink's lock").push(line.clone());
        let upper = line.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            if dsn {
                "250-sink.test\r\n250-PIPELINING\r\n250-DSN\r\n250 8BITMIME\r\n".into()
            } else {
                "250-sink.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n".into()
            }
        } else if upper.starts_with("HELO") {
            "250 sink.test\r\n".into()
        } else if upper.starts_with("MAIL FROM:") {
            from = Some(path(&line[10..]));
            to.clear();
            "250 2.1.0 Ok\r\n".into()
        } else if upper.starts_with("RCPT TO:") {
            let rcpt = path(&line[8..]);
            match rule(&rcpt) {
                Some(r) => r.into(),
                None => {
                    to.push(rcpt);
                    "250 2.1.5 Ok\r\n".into()
                }
            }
        } else if upper == "DATA" {
            if from.is_none() || to.is_empty() {
                "554 5.5.1 no valid recipients\r\n".into()
            } else {
                if !peer.send(b"354 go ahead\r\n") {
                    return;
                }
                let mut data = String::new();
                loop {
                    match peer.line() {
                        Some(l) if l == "." => break,
                        Some(l) => {
                            data.push_str(l.strip_prefix('.').unwrap_or(&l));
                            data.push_str("\r\n");
                        }
                        None => return,
                    }
                }
                let got = Received {
                    from: from.take().unwrap_or_default(),
                    to: std::mem::take(&mut to),
                    data,
                };
                messages.lock().expect("the sink's lock").push(got);
                "250 2.0.0 Ok: queued\r\n".into()
            }
        } else if upper == "RSET" {
            from = None;
            to.clear();
            "250 2.0.0 Ok\r\n".into()
        } else if upper == "NOOP" {
            "250 2.0.0 Ok\r\n".into()
        } else if upper == "QUIT" {
            peer.send(b"221 2.0.0 Bye\r\n");
            return;
        } else {
            "502 5.5.2 not implemented\r\n".into()
        };
        if !peer.send(reply.as_bytes()) {
            return;
        }
    }
}
