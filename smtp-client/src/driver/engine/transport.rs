//! The byte stream under one engine connection: plain TCP, or (after STARTTLS) a rustls
//! `ClientConnection` over the same non-blocking `mio::net::TcpStream`.
//!
//! The socket stays where it is (registered with the poller under the connection's token)
//! when TLS starts; only the layer above it changes, so the event loop does not re-register
//! anything. Under TLS, [`Transport::read`] returns decrypted bytes (reading and processing
//! records as needed, the handshake included) and [`Transport::write`] takes plaintext and
//! sends what records it can; [`Transport::flush`] sends records still held back by a full
//! socket. The rustls state is allocated when STARTTLS starts, not before.

use std::io::{self, ErrorKind, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

/// How much plaintext rustls may hold before [`Transport::write`] takes no more (the
/// socket is full): the engine's output is then back-pressured as over plain TCP.
const TLS_BUFFER_LIMIT: usize = 16 * 1024;

/// A connection's byte stream.
#[derive(Debug)]
pub(crate) struct Transport {
    tcp: TcpStream,
    layer: Layer,
}

/// What runs over the socket.
#[derive(Debug)]
enum Layer {
    /// Plain TCP.
    Plain,
    /// TLS (boxed: a plain connection pays one pointer for it).
    Tls(Box<ClientConnection>),
}

impl Transport {
    /// Plain TCP over `tcp`.
    pub(crate) fn plain(tcp: TcpStream) -> Self {
        Transport {
            tcp,
            layer: Layer::Plain,
        }
    }

    /// The socket, to register with the poller.
    pub(crate) fn socket(&mut self) -> &mut TcpStream {
        &mut self.tcp
    }

    /// Starts a TLS client handshake on the socket (the first flight is sent by the next
    /// [`flush`](Self::flush)). Fails when rustls refuses the configuration.
    pub(crate) fn start_tls(
        &mut self,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<(), rustls::Error> {
        let mut tls = ClientConnection::new(config, name)?;
        tls.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
        self.layer = Layer::Tls(Box::new(tls));
        Ok(())
    }

    /// `true` while a TLS handshake runs.
    pub(crate) fn is_handshaking(&self) -> bool {
        matches!(&self.layer, Layer::Tls(tls) if tls.is_handshaking())
    }

    /// `true` once TLS carries the stream.
    pub(crate) fn is_tls(&self) -> bool {
        matches!(self.layer, Layer::Tls(_))
    }

    /// Reads bytes from the server (`Ok(0)` at end of stream). Under TLS: decrypted bytes;
    /// `WouldBlock` when no whole record is in yet (or the handshake is still running); a
    /// TLS error (a bad certificate, for instance) as `InvalidData`.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let tls = match &mut self.layer {
            Layer::Plain => return self.tcp.read(buf),
            Layer::Tls(tls) => tls,
        };
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                // The server closed without close_notify: the same as a plain close.
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if tls.read_tls(&mut self.tcp)? == 0 {
                return Ok(0);
            }
            if let Err(e) = tls.process_new_packets() {
                // Tell the server why (the alert rustls queued), as far as the socket takes it.
                let _ = tls.write_tls(&mut self.tcp);
                return Err(io::Error::new(ErrorKind::InvalidData, e));
            }
        }
    }

    /// Writes bytes for the server; returns how many were taken (`WouldBlock` when none:
    /// under TLS, only when rustls holds its limit of records and the socket is full, so a
    /// writable event will come).
    pub(crate) fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Layer::Plain = self.layer {
            return self.tcp.write(buf);
        }
        // Room first: records held back since the last write go out before new ones.
        self.flush()?;
        let Layer::Tls(tls) = &mut self.layer else {
            return Ok(0);
        };
        let n = tls.writer().write(buf)?;
        self.flush()?;
        if n == 0 && !buf.is_empty() {
            return Err(ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    /// Sends the TLS records waiting (handshake messages, encrypted output, alerts) until
    /// none is left or the socket is full. Nothing to do over plain TCP.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        let Layer::Tls(tls) = &mut self.layer else {
            return Ok(());
        };
        while tls.wants_write() {
            match tls.write_tls(&mut self.tcp) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
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
            Err(e) if e.kind() == ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Closes both directions (after a TLS close_notify, as far as the socket takes it).
    pub(crate) fn close(&mut self) {
        if let Layer::Tls(tls) = &mut self.layer {
            tls.send_close_notify();
            let _ = self.flush();
        }
        let _ = self.tcp.shutdown(Shutdown::Both);
    }
}
