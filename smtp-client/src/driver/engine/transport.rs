//! The byte stream under one engine connection.
//!
//! The engine reads and writes through [`Transport`] only, so a TLS stream (a rustls
//! `ClientConnection` over the same `mio::net::TcpStream`, after STARTTLS) can be added as one
//! more variant without touching the event loop: `read` then returns decrypted bytes and
//! `write` takes plaintext (a `wants_write` check in the connection's flush would then send
//! the records the TLS stream still holds).

use std::io::{self, Read, Write};
use std::net::Shutdown;

use mio::net::TcpStream;

/// A connection's byte stream.
#[derive(Debug)]
pub(crate) enum Transport {
    /// Plain TCP.
    Plain(TcpStream),
}

impl Transport {
    /// The socket, to register with the poller.
    pub(crate) fn socket(&mut self) -> &mut TcpStream {
        match self {
            Transport::Plain(s) => s,
        }
    }

    /// Reads bytes from the server (`Ok(0)` at end of stream).
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
        }
    }

    /// Writes bytes for the server; returns how many were taken.
    pub(crate) fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
        }
    }

    /// Whether the TCP connect finished: `Ok(true)` connected, `Ok(false)` still connecting,
    /// `Err` failed.
    pub(crate) fn connected(&mut self) -> io::Result<bool> {
        let s = self.socket();
        if let Some(e) = s.take_error()? {
            return Err(e);
        }
        match s.peer_addr() {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Closes both directions.
    pub(crate) fn close(&mut self) {
        let _ = self.socket().shutdown(Shutdown::Both);
    }
}
