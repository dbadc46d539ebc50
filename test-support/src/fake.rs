//! Scripted fake SMTP servers on `127.0.0.1:0`, for the client cases no real server produces
//! on demand: [`Fake`] runs one closure over one connection (the test writes the script),
//! [`Scripted`] serves every connection with one of a few canned behaviours ([`Script`]) and
//! counts what it saw. The STARTTLS one is in [`tls`](crate::tls).
//!
//! They are scripts, not SMTP servers: they check no syntax and store nothing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The server side of one connection.
#[derive(Debug)]
pub struct Peer {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Peer {
    /// The accepted `stream`, reads timing out after `timeout`.
    pub fn new(stream: TcpStream, timeout: Duration) -> Peer {
        let _ = stream.set_read_timeout(Some(timeout));
        // Replies go out as they are written (no Nagle wait behind a delayed ACK).
        let _ = stream.set_nodelay(true);
        Peer {
            r: BufReader::new(stream.try_clone().expect("a second handle")),
            w: stream,
        }
    }

    /// Reads one line, its line ending kept; `None` when the client closed.
    pub fn raw_line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.r.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line),
        }
    }

    /// Reads one command line (without CRLF); `None` when the client closed.
    pub fn line(&mut self) -> Option<String> {
        self.raw_line().map(|l| l.trim_end().to_owned())
    }

    /// Reads a line and checks its verb.
    pub fn expect(&mut self, verb: &str) {
        let line = self.line().unwrap_or_default();
        assert!(
            line.to_ascii_uppercase().starts_with(verb),
            "expected {verb}, got {line:?}"
        );
    }

    /// Writes `bytes`; `false` when the client is gone.
    pub fn send(&mut self, bytes: &[u8]) -> bool {
        self.w.write_all(bytes).is_ok()
    }

    /// Serves one transaction to its end with these replies: MAIL, one RCPT, DATA and its
    /// body up to the lone `.`, then QUIT (`replies` = [mail, rcpt, data, end of data, quit],
    /// each a whole reply with its CRLF).
    pub fn serve_transaction(&mut self, replies: [&[u8]; 5]) {
        let [mail, rcpt, data, done, quit] = replies;
        self.expect("MAIL");
        self.send(mail);
        self.expect("RCPT");
        self.send(rcpt);
        self.expect("DATA");
        self.send(data);
        while self.line().is_some_and(|l| l != ".") {}
        self.send(done);
        self.expect("QUIT");
        self.send(quit);
    }

    /// [`serve_transaction`](Peer::serve_transaction) with the usual positive replies.
    pub fn accept_transaction(&mut self) {
        self.serve_transaction([
            b"250 2.1.0 Ok\r\n",
            b"250 2.1.5 Ok\r\n",
            b"354 go ahead\r\n",
            b"250 2.0.0 Ok: queued\r\n",
            b"221 2.0.0 Bye\r\n",
        ]);
    }

    /// Reads until the client closes; returns everything it sent.
    pub fn rest(&mut self) -> String {
        let mut out = Vec::new();
        let _ = self.r.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// A fake server for one connection running `script`; [`join`](Fake::join) returns what
/// the script returned.
#[derive(Debug)]
pub struct Fake<T> {
    /// Where it listens.
    pub addr: SocketAddr,
    thread: JoinHandle<T>,
}

impl<T: Send + 'static> Fake<T> {
    /// Listens, and runs `script` on a thread over the first connection (reads time out
    /// after 10 s).
    pub fn start(script: impl FnOnce(&mut Peer) -> T + Send + 'static) -> Fake<T> {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("its address");
        let thread = std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("a connection");
            script(&mut Peer::new(stream, Duration::from_secs(10)))
        });
        Fake { addr, thread }
    }

    /// Waits for the script to end; panics if it did.
    pub fn join(self) -> T {
        self.thread.join().expect("the fake server's script failed")
    }
}

/// What a [`Scripted`] server does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// A well-behaved ESMTP server with PIPELINING.
    Serve,
    /// Greets and answers EHLO, then closes without a word when MAIL arrives.
    CloseAtMail,
    /// Serves one message, then closes without a word while the client is idle.
    CloseAfterOneMessage,
    /// Greets with `554 5.3.2`, then answers only QUIT.
    RefuseGreeting,
    /// Accepts the connection and never says a word (reads until the client leaves).
    NeverGreet,
    /// Accepts the connection, says nothing for two seconds, then closes it.
    SilentThenClose,
    /// Serves up to DATA, answers `354`, reads one line of the body and closes.
    DropInData,
    /// Greets, then answers EHLO with bytes that are no SMTP reply.
    Garbage,
}

/// A tiny ESMTP server on a std thread: one thread per connection, each following the
/// script `pick(connection number)` chooses. Counts connections and accepted messages.
#[derive(Debug)]
pub struct Scripted {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Connections accepted.
    pub connections: Arc<AtomicUsize>,
    /// Messages accepted (`250` after the end of data).
    pub messages: Arc<AtomicUsize>,
    /// NOOP commands received.
    pub noops: Arc<AtomicUsize>,
}

impl Scripted {
    /// Listens, and serves every connection on a thread of its own.
    pub fn start(pick: fn(usize) -> Script) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("its address");
        let connections = Arc::new(AtomicUsize::new(0));
        let messages = Arc::new(AtomicUsize::new(0));
        let noops = Arc::new(AtomicUsize::new(0));
        let (c, m, o) = (connections.clone(), messages.clone(), noops.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let n = c.fetch_add(1, Ordering::SeqCst);
                let (m, o) = (m.clone(), o.clone());
                std::thread::spawn(move || {
                    let mut peer = Peer::new(stream, Duration::from_secs(30));
                    serve(&mut peer, pick(n), &m, &o)
                });
            }
        });
        Scripted {
            addr,
            connections,
            messages,
            noops,
        }
    }
}

fn serve(peer: &mut Peer, script: Script, messages: &AtomicUsize, noops: &AtomicUsize) {
    if script == Script::NeverGreet {
        peer.rest();
        return;
    }
    if script == Script::SilentThenClose {
        let _ = peer.w.set_read_timeout(Some(Duration::from_secs(2)));
        peer.rest();
        return;
    }
    let greeting = if script == Script::RefuseGreeting {
        "554 5.3.2 scripted.test no service here\r\n"
    } else {
        "220 scripted.test ESMTP\r\n"
    };
    if !peer.send(greeting.as_bytes()) {
        return;
    }
    let mut in_data = false;
    while let Some(line) = peer.raw_line() {
        if in_data {
            if line == ".\r\n" {
                in_data = false;
                messages.fetch_add(1, Ordering::SeqCst);
                if !peer.send(b"250 2.0.0 queued\r\n") {
                    return;
                }
                if script == Script::CloseAfterOneMessage {
                    return;
                }
            }
            continue;
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        if verb == "NOOP" {
            noops.fetch_add(1, Ordering::SeqCst);
        }
        let reply = match verb.as_str() {
            "QUIT" => {
                peer.send(b"221 2.0.0 bye\r\n");
                return;
            }
            _ if script == Script::RefuseGreeting => "503 5.5.1 no service\r\n",
            "EHLO" if script == Script::Garbage => "\u{1}\u{7f}garbage, not a reply\r\n",
            "EHLO" => "250-scripted.test\r\n250 PIPELINING\r\n",
            "MAIL" if script == Script::CloseAtMail => return,
            "MAIL" | "RCPT" | "RSET" | "NOOP" => "250 2.0.0 ok\r\n",
            "DATA" if script == Script::DropInData => {
                peer.send(b"354 go on\r\n");
                peer.raw_line();
                return;
            }
            "DATA" => {
                in_data = true;
                "354 go on\r\n"
            }
            _ => "502 5.5.2 unknown\r\n",
        };
        if !peer.send(reply.as_bytes()) {
            return;
        }
    }
}
