//! The metrics endpoint: a tiny HTTP/1.1 responder on a std `TcpListener`, on a thread of
//! its own (`impulse-metrics`). `GET /metrics` is answered `200` with the registry's text
//! (`text/plain; version=0.0.4`); any other method or path `404`; a request head that is
//! malformed, larger than [`MAX_REQUEST`] or not complete within [`READ_TIMEOUT`] `400`.
//! One connection at a time, `Connection: close` after each answer.
//!
//! It does not speak TLS, authenticate, keep connections alive or read request bodies:
//! bind it to loopback or a management network (`[metrics] listen`).
// The responder owns its thread and reads the clock for its deadline; it blocks on its own
// sockets only.
#![allow(clippy::disallowed_methods)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Registry;

/// The largest request head read; a longer one is answered `400`.
pub const MAX_REQUEST: usize = 8 * 1024;
/// How long one request may take in all: its head read and its answer written (one
/// deadline for every read and write, so a client trickling bytes gets no more).
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A running metrics endpoint; [`stop`](MetricsServer::stop) (or dropping it) ends its thread.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` (port 0 picks one) and serves `registry` on a new thread.
    pub fn start(addr: SocketAddr, registry: Arc<Registry>) -> io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("impulse-metrics".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stopping.load(Ordering::Acquire) {
                        break;
                    }
                    match conn {
                        Ok(stream) => {
                            if let Err(e) = answer(stream, &registry) {
                                log::debug!("metrics: {e}");
                            }
                        }
                        Err(e) => {
                            log::debug!("metrics: accept: {e}");
                            // EMFILE and friends: do not spin.
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
            })?;
        log::info!("metrics on http://{addr}/metrics");
        Ok(MetricsServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the thread and waits for it.
    pub fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::Release);
        // Wake the blocking accept with a connection of our own.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        if TcpStream::connect_timeout(&wake, Duration::from_secs(1)).is_ok() {
            let _ = thread.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    Metrics,
    NotFound,
    Bad,
}

/// Reads one request head and answers it.
fn answer(stream: TcpStream, registry: &Registry) -> io::Result<()> {
    let mut stream = Timed {
        stream,
        deadline: Instant::now() + READ_TIMEOUT,
    };
    let request = match read_head(&mut stream) {
        Ok(head) => parse(&head),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
        Err(_) => Request::Bad,
    };
    // The answer has a window of its own: a request that used up its time is still told
    // 400, and a client slow to read a large body is bounded all the same.
    stream.deadline = Instant::now() + READ_TIMEOUT;
    let (status, body) = match request {
        Request::Metrics => ("200 OK", registry.render()),
        Request::NotFound => ("404 Not Found", "not found: try GET /metrics\n".to_owned()),
        Request::Bad => ("400 Bad Request", "bad request\n".to_owned()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

/// A connection whose reads (and then writes) share one deadline.
struct Timed {
    stream: TcpStream,
    deadline: Instant,
}

impl Timed {
    /// The time left, or `TimedOut` once the deadline has passed.
    fn left(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        Ok(left)
    }
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.stream.set_write_timeout(Some(left))?;
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// The request head up to its blank line, at most [`MAX_REQUEST`] bytes.
fn read_head(stream: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            return Ok(head);
        }
        if head.len() > MAX_REQUEST {
            return Err(io::Error::other("request head too large"));
        }
    }
}

/// `GET /metrics HTTP/1.x` (a query string allowed) → metrics; another method or path →
/// not found; anything that is not a request line → bad.
fn parse(head: &[u8]) -> Request {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let Ok(line) = std::str::from_utf8(line) else {
        return Request::Bad;
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Request::Bad;
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Request::Bad;
    }
    let path = target.split('?').next().unwrap_or(target);
    if method == "GET" && path == "/metrics" {
        Request::Metrics
    } else {
        Request::NotFound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(request).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn requests_are_told_apart() {
        assert_eq!(parse(b"GET /metrics HTTP/1.1\r\n\r\n"), Request::Metrics);
        assert_eq!(
            parse(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Request::Metrics
        );
        assert_eq!(parse(b"GET / HTTP/1.1\r\n\r\n"), Request::NotFound);
        assert_eq!(parse(b"POST /metrics HTTP/1.1\r\n\r\n"), Request::NotFound);
        assert_eq!(parse(b"GET /metrics\r\n\r\n"), Request::Bad);
        assert_eq!(parse(b"\xff\xfe\r\n\r\n"), Request::Bad);
        assert_eq!(parse(b"GET metrics HTTP/1.1\r\n\r\n"), Request::Bad);
    }

    #[test]
    fn serves_metrics_over_a_socket() {
        let registry = Arc::new(Registry::new());
        registry.counter("t_total", "T.", &[]).add(5);
        let mut server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), registry).unwrap();
        let addr = server.local_addr();
        let ok = get(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(
            ok.contains("Content-Type: text/plain; version=0.0.4"),
            "{ok}"
        );
        assert!(ok.ends_with("\r\n\r\n# HELP t_total T.\n# TYPE t_total counter\nt_total 5\n"));
        let missing = get(addr, b"GET /other HTTP/1.1\r\n\r\n");
        assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
        let mut huge = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        huge.extend(std::iter::repeat_n(b'a', MAX_REQUEST + 10));
        let big = get(addr, &huge);
        assert!(big.starts_with("HTTP/1.1 400 "), "{big}");
        server.stop();
        assert!(TcpStream::connect(addr).is_err());
    }
    #[test]
    fn a_client_trickling_its_request_gets_one_deadline_in_all() {
        let registry = Arc::new(Registry::new());
        let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), registry).unwrap();
        let addr = server.local_addr();
        let mut slow = TcpStream::connect(addr).unwrap();
        let started = Instant::now();
        // One byte a second: each read is quick, the whole head never comes.
        let request = b"GET /metrics HTTP/1.1\r\nHost: a-rather-long-host-name.test\r\n\r\n";
        let mut answered = String::new();
        for &b in request.iter() {
            if slow.write_all(&[b]).is_err() {
                break;
            }
            slow.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            let mut buf = [0u8; 256];
            match slow.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    answered.push_str(&String::from_utf8_lossy(&buf[..n]));
                    break;
                }
                Err(_) => {} // nothing yet
            }
        }
        let took = started.elapsed();
        assert!(answered.starts_with("HTTP/1.1 400 "), "{answered:?}");
        assert!(
            took < READ_TIMEOUT + Duration::from_secs(3),
            "the slow client held the endpoint for {took:?}"
        );
        // And the next scrape is answered.
        let ok = get(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    }
}
