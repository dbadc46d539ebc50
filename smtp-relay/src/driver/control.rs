//! The queue commands' way into a running server: a Unix socket in the spool directory
//! ([`SOCKET`]), one writer per spool. `impulse queue flush|hold|release|delete|bounce`
//! connect to it when a server owns the spool; the server applies the command through its
//! relay, or (a server that does not deliver) straight to the spool with [`super::offline`].
//!
//! The protocol is one line each way: `VERB [ID ...]\n` (`flush`, `hold`, `release`,
//! `delete`, `bounce`; `flush` alone means every message), answered `ok N\n` (the number of
//! messages it applied to) or `error TEXT\n`. The socket is created mode 0600 inside the
//! spool directory, so only its owner (and root) can command the queue.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use smtp_spool::QueueId;

use super::dns::{time_left, timed_out};
use super::Command;
use crate::schedule::Selection;

/// The control socket's file name in the spool directory.
pub const SOCKET: &str = "control";

/// The longest request line read (a few thousand ids).
const MAX_LINE: usize = 256 * 1024;

/// How long one request may take in all, its line read and its answer written: a client
/// that trickles or stops reading does not hold the control thread (or shutdown) longer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest answer line: an error never echoes a whole request back.
const MAX_ANSWER: usize = 512;

/// What carries out a command: `Ok(count)` or a reason.
pub type Handler = Arc<dyn Fn(Command) -> Result<usize, String> + Send + Sync>;

/// The control socket of the spool at `spool_dir`.
pub fn socket_path(spool_dir: &Path) -> PathBuf {
    spool_dir.join(SOCKET)
}

/// A command as a request line (without the newline).
pub fn encode(command: &Command) -> String {
    let (verb, selection) = match command {
        Command::Flush(s) => ("flush", s),
        Command::Hold(s) => ("hold", s),
        Command::Release(s) => ("release", s),
        Command::Delete(s) => ("delete", s),
        Command::Bounce(s) => ("bounce", s),
    };
    let mut line = verb.to_string();
    if let Selection::Ids(ids) = selection {
        for id in ids {
            line.push(' ');
            line.push_str(&id.to_string());
        }
    }
    line
}

/// A request line back as a command.
pub fn decode(line: &str) -> Result<Command, String> {
    let mut words = line.split_ascii_whitespace();
    let verb = words.next().ok_or("empty request")?;
    let ids = words
        .map(|w| QueueId::parse(w).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let selection = if ids.is_empty() {
        Selection::All
    } else {
        Selection::Ids(ids)
    };
    if selection == Selection::All && verb != "flush" {
        return Err(format!("{verb} needs at least one queue id"));
    }
    Ok(match verb {
        "flush" => Command::Flush(selection),
        "hold" => Command::Hold(selection),
        "release" => Command::Release(selection),
        "delete" => Command::Delete(selection),
        "bounce" => Command::Bounce(selection),
        other => return Err(format!("unknown command {other:?}")),
    })
}

/// A running control socket; its thread stops and the socket file is removed when dropped
/// (the handler, and what it holds, go with the thread).
#[derive(Debug)]
pub struct ControlSocket {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ControlSocket {
    /// Listens on the control socket of `spool_dir` (replacing a stale one: the caller owns
    /// the spool's lock, so no other process serves it) and answers on a thread of its own.
    pub fn start(spool_dir: &Path, handler: Handler) -> io::Result<ControlSocket> {
        let path = socket_path(spool_dir);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let listener = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("impulse-control".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if stopped.load(Ordering::Acquire) {
                        return;
                    }
                    match stream {
                        Ok(s) => answer(s, &handler),
                        Err(e) => log::warn!("control socket: {e}"),
                    }
                }
            })?;
        Ok(ControlSocket {
            path,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wakes the thread out of `accept`; it sees the flag and ends.
        if UnixStream::connect(&self.path).is_ok() {
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn answer(mut stream: UnixStream, handler: &Handler) {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut reply = match read_request(&mut stream, deadline) {
        Ok(Some(line)) => match decode(line.trim_end()) {
            Ok(command) => {
                log::info!("control: {}", encode(&command));
                match handler(command) {
                    Ok(n) => format!("ok {n}"),
                    Err(e) => format!("error {}", e.replace('\n', " ")),
                }
            }
            Err(e) => format!("error {e}"),
        },
        Ok(None) => "error the request must be one line".to_string(),
        Err(e) => format!("error {e}"),
    };
    if reply.len() > MAX_ANSWER {
        let mut end = MAX_ANSWER;
        while !reply.is_char_boundary(end) {
            end -= 1;
        }
        reply.truncate(end);
    }
    reply.push('\n');
    let left = deadline.saturating_duration_since(Instant::now());
    if stream
        .set_write_timeout(Some(left.max(Duration::from_millis(100))))
        .is_ok()
    {
        let _ = stream.write_all(reply.as_bytes());
    }
}

/// Reads one request line, every read under the request's one `deadline`. `Ok(None)`: the
/// client closed before a newline, or sent more than [`MAX_LINE`] bytes without one.
fn read_request(stream: &mut UnixStream, deadline: Instant) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        stream.set_read_timeout(Some(time_left(deadline)?))?;
        // A read timeout shows as `WouldBlock` on Unix sockets: `timed_out` says TimedOut.
        let n = stream.read(&mut buf).map_err(timed_out)?;
        if n == 0 {
            return Ok(None);
        }
        // Only the bytes just read can hold the newline.
        if let Some(end) = buf[..n].iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&buf[..=end]);
            return String::from_utf8(line)
                .map(Some)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"));
        }
        line.extend_from_slice(&buf[..n]);
        if line.len() > MAX_LINE {
            return Ok(None);
        }
    }
}

/// Sends `command` to the server that owns `spool_dir`. `Err` with `NotFound` or
/// `ConnectionRefused` when none listens; `Ok(Err(reason))` when it refused the command.
pub fn request(spool_dir: &Path, command: &Command) -> io::Result<Result<usize, String>> {
    let mut stream = UnixStream::connect(socket_path(spool_dir))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.write_all(format!("{}\n", encode(command)).as_bytes())?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    let line = line.trim_end();
    if let Some(n) = line.strip_prefix("ok ") {
        return n
            .parse()
            .map(Ok)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, line.to_string()));
    }
    match line.strip_prefix("error ") {
        Some(e) => Ok(Err(e.to_string())),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected answer {line:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_bad_ones_are_refused() {
        let id = QueueId::generate();
        for c in [
            Command::Flush(Selection::All),
            Command::Flush(Selection::Ids(vec![id])),
            Command::Hold(Selection::Ids(vec![id, id])),
            Command::Release(Selection::Ids(vec![id])),
            Command::Delete(Selection::Ids(vec![id])),
            Command::Bounce(Selection::Ids(vec![id])),
        ] {
            assert_eq!(decode(&encode(&c)), Ok(c));
        }
        assert!(decode("").is_err());
        assert!(decode("delete").unwrap_err().contains("at least one"));
        assert!(decode("explode 1").is_err());
        assert!(decode("hold ../etc/passwd").is_err());
    }

    #[test]
    fn a_command_reaches_the_handler_over_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let id = QueueId::generate();
        let handler: Handler = Arc::new(move |c| match c {
            Command::Hold(Selection::Ids(ids)) => Ok(ids.len()),
            _ => Err("only hold here".into()),
        });
        let socket = ControlSocket::start(dir.path(), handler).unwrap();
        let hold = Command::Hold(Selection::Ids(vec![id, id]));
        assert_eq!(request(dir.path(), &hold).unwrap(), Ok(2));
        let flush = Command::Flush(Selection::All);
        assert_eq!(
            request(dir.path(), &flush).unwrap(),
            Err("only hold here".into())
        );
        let mode = std::fs::metadata(socket_path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        drop(socket);
        assert!(request(dir.path(), &hold).is_err(), "gone with its owner");
    }
    #[test]
    fn a_long_request_is_not_echoed_and_a_stalled_one_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let handler: Handler = Arc::new(|_| Ok(0));
        let _socket = ControlSocket::start(dir.path(), handler).unwrap();
        let path = socket_path(dir.path());
        // A 200 KB verb: refused, and the answer stays one short line.
        let mut long = UnixStream::connect(&path).unwrap();
        long.write_all(format!("{}\n", "x".repeat(200_000)).as_bytes())
            .unwrap();
        let mut answer = String::new();
        BufReader::new(long).read_line(&mut answer).unwrap();
        assert!(answer.starts_with("error "), "{answer}");
        assert!(answer.len() <= MAX_ANSWER + 1, "{} bytes", answer.len());
        // A client that never ends its line is answered within the request's deadline,
        // and the socket serves the next one.
        let started = Instant::now();
        let mut stalled = UnixStream::connect(&path).unwrap();
        stalled.write_all(b"hold").unwrap();
        let mut answer = String::new();
        BufReader::new(stalled).read_line(&mut answer).unwrap();
        assert!(answer.contains("timed out"), "{answer}");
        assert!(started.elapsed() < REQUEST_TIMEOUT + Duration::from_secs(3));
        let flush = Command::Flush(Selection::All);
        assert_eq!(request(dir.path(), &flush).unwrap(), Ok(0));
    }
}
