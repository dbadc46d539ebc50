//! Shared by the root socket tests (included with `#[path = "support/server.rs"]`): Impulse's
//! own server on `127.0.0.1:0` with a spool in a temporary directory, shut down when dropped,
//! and a line-by-line SMTP client for scripted sessions. Not every test uses every item.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use impulse::hooks::Registry;
use impulse::server::config::ServerConfig;
use impulse::server::spool::{QueueId, Spool};
use impulse::server::{Server, ServerHandle};

/// A running server, named `mx.test`; shut down and joined on drop.
pub struct TestServer {
    handle: Option<ServerHandle>,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its spool.
    pub spool: Spool,
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    /// One loop thread, no plugin, a fresh spool.
    pub fn start() -> TestServer {
        TestServer::with(Registry::new(), 1)
    }

    /// `workers` loop threads running the plugins of `registry`, a fresh spool.
    pub fn with(registry: Registry, workers: usize) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path().join("spool")).unwrap();
        let mut server = TestServer::on(spool, registry, workers);
        server._dir = Some(dir);
        server
    }

    /// A server over an existing spool (to restart on the same one).
    pub fn on(spool: Spool, registry: Registry, workers: usize) -> TestServer {
        let handle = Server::builder()
            .config(ServerConfig {
                workers,
                ..ServerConfig::default()
            })
            .hostname("mx.test")
            .listen("127.0.0.1:0".parse().unwrap())
            .registry(Arc::new(registry))
            .spool(spool.clone())
            .build()
            .unwrap()
            .spawn()
            .unwrap();
        TestServer {
            addr: handle.local_addrs()[0],
            handle: Some(handle),
            spool,
            _dir: None,
        }
    }

    /// How many messages the spool holds.
    pub fn count(&self) -> usize {
        self.spool.list().unwrap().len()
    }

    /// A stored message, `Received:` header included.
    pub fn stored(&self, id: QueueId) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.spool
            .open_message(id)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        bytes
    }

    /// Shuts the server down and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown();
            h.join().unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A client that sends one line at a time and reads whole replies.
pub struct LineClient {
    r: BufReader<TcpStream>,
    /// The socket, for writing raw bytes (a message body).
    pub w: TcpStream,
}

impl LineClient {
    /// Connects with a 10 s read timeout.
    pub fn connect(addr: SocketAddr) -> LineClient {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        LineClient {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        }
    }

    /// One reply, its lines joined with `\n`, line endings removed.
    pub fn reply(&mut self) -> String {
        let mut out = String::new();
        loop {
            let mut line = String::new();
            assert!(self.r.read_line(&mut line).unwrap() > 0, "closed: {out}");
            out.push_str(line.trim_end());
            if line.as_bytes().get(3) != Some(&b'-') {
                return out;
            }
            out.push('\n');
        }
    }

    /// Sends `line` and CRLF, returns the reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.w.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        self.reply()
    }
}
