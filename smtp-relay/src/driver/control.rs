//! The queue commands' way into a running server: a Unix socket in the spool directory
//! ([`SOCKET`]), one writer per spool. `impulse queue flush|hold|release|delete|bounce`
//! connect to it when a server owns the spool; the server applies the command through its
//! relay, or (a server that does not deliver) straight to the spool with [`super::offline`].
//!
//! The protocol is one line each way: `VERB [ID ...]\n` (`flush`, `hold`, `release`,
//! `delete`, `bounce`; `flush` alone means every message), answered `ok N\n` (the number of
//! messages it applied to) or `error TEXT\n`. The socket is created mode 0600 inside the
//! spool directory, so only its owner (and root) can command the queue.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use smtp_spool::QueueId;

use super::Command;
use crate::schedule::Selection;

/// The control socket's file name in the spool directory.
pub const SOCKET: &str = "control";

/// The longest request line read (a few thousand ids).
const MAX_LINE: u64 = 256 * 1024;

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

fn answer(stream: UnixStream, handler: &Handler) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut line = String::new();
    let read = BufReader::new(io::Read::take(stream, MAX_LINE)).read_line(&mut line);
    let reply = match read {
        Ok(_) if line.ends_with('\n') => match decode(line.trim_end()) {
            Ok(command) => {
                log::info!("control: {}", encode(&command));
                match handler(command) {
                    Ok(n) => format!("ok {n}\n"),
                    Err(e) => format!("error {}\n", e.replace('\n', " ")),
                }
            }
            Err(e) => format!("error {e}\n"),
        },
        Ok(_) => "error the request must be one line\n".to_string(),
        Err(e) => format!("error {e}\n"),
    };
    let _ = out.write_all(reply.as_bytes());
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
}
