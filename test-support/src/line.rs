//! A line-by-line SMTP client for scripted socket sessions ([`LineClient`]): it writes what
//! the test says, byte for byte, and reads whole replies. It has no SMTP logic of its own
//! (no EHLO, no dot-stuffing): tests that want a real client use smtp-client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long a read may wait before the test fails instead of hanging.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A client that sends one line at a time and reads whole replies.
#[derive(Debug)]
pub struct LineClient {
    /// The socket's read side, buffered.
    pub r: BufReader<TcpStream>,
    /// The socket, for writing raw bytes (a message body) or shutting down.
    pub w: TcpStream,
}

impl LineClient {
    /// Connects with a [`READ_TIMEOUT`]; reads nothing yet (the banner is the first
    /// [`reply`](LineClient::reply)).
    pub fn connect(addr: SocketAddr) -> LineClient {
        let s = TcpStream::connect(addr).expect("connect to the test server");
        s.set_read_timeout(Some(READ_TIMEOUT))
            .expect("a read timeout");
        LineClient {
            r: BufReader::new(s.try_clone().expect("a second handle")),
            w: s,
        }
    }

    /// Writes `bytes` as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).expect("write to the server");
    }

    /// One reply, its lines joined with `\n`, line endings removed (see [`read_reply`]).
    pub fn reply(&mut self) -> String {
        read_reply(&mut self.r)
    }

    /// Sends `line` and CRLF, returns the reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Reads until the server closes; returns what it sent meanwhile.
    pub fn rest(&mut self) -> String {
        let mut s = String::new();
        let _ = self.r.read_to_string(&mut s);
        s
    }
}

/// One complete reply from any reader (a socket, a TLS stream): its lines joined with `\n`,
/// line endings removed. Panics when the peer closes first.
pub fn read_reply(r: &mut impl BufRead) -> String {
    let mut out = String::new();
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).expect("read from the server");
        assert!(n > 0, "connection closed; so far: {out:?}");
        out.push_str(line.trim_end());
        if line.as_bytes().get(3) != Some(&b'-') {
            return out;
        }
        out.push('\n');
    }
}
