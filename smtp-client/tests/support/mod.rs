//! Peers for the client's socket tests: Postfix's `smtp-sink`, Impulse's own server with
//! connection counters, and a scripted server for the cases neither can produce.
//!
//! `smtp-sink` is looked up on `PATH`, then in `/usr/sbin` and `/usr/lib/postfix/sbin`.
//! Without it the tests that need it print a loud SKIPPED and pass — unless `CI` is set,
//! where they fail.

#![allow(dead_code)]

pub mod python;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn sink_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain(["/usr/sbin".into(), "/usr/lib/postfix/sbin".into()])
        .map(|dir| dir.join("smtp-sink"))
        .find(|p| p.is_file())
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A running `smtp-sink`, killed on drop.
pub struct Sink {
    child: Child,
    pub addr: SocketAddr,
}

impl Sink {
    /// Starts `smtp-sink ARGS 127.0.0.1:PORT 256`; `None` (after a loud SKIPPED) when it is
    /// not installed and `CI` is unset.
    pub fn start(args: &[&str]) -> Option<Sink> {
        let Some(bin) = sink_binary() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "smtp-sink not found and CI is set"
            );
            eprintln!("\n*** SKIPPED: smtp-sink (Postfix) not found on PATH, /usr/sbin or /usr/lib/postfix/sbin ***\n");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut cmd = Command::new(bin);
        cmd.args(args);
        if running_as_root() {
            cmd.args(["-u", "nobody"]);
        }
        cmd.arg(addr.to_string())
            .arg("256")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().expect("spawn smtp-sink");
        let sink = Sink { child, addr };
        let start = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "smtp-sink did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(sink)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
}

/// A tiny ESMTP server on a std thread: one thread per connection, each following the
/// script `pick(connection number)` chooses. Counts connections and accepted messages.
pub struct Scripted {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    pub messages: Arc<AtomicUsize>,
    /// NOOP commands received.
    pub noops: Arc<AtomicUsize>,
}

impl Scripted {
    pub fn start(pick: fn(usize) -> Script) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let messages = Arc::new(AtomicUsize::new(0));
        let noops = Arc::new(AtomicUsize::new(0));
        let (c, m, o) = (connections.clone(), messages.clone(), noops.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let n = c.fetch_add(1, Ordering::SeqCst);
                let (m, o) = (m.clone(), o.clone());
                std::thread::spawn(move || serve(stream, pick(n), &m, &o));
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

fn serve(stream: TcpStream, script: Script, messages: &AtomicUsize, noops: &AtomicUsize) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut out = stream.try_clone().unwrap();
    let mut lines = BufReader::new(stream);
    let mut say = |s: &str| out.write_all(s.as_bytes()).is_ok();
    if script == Script::NeverGreet {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut lines, &mut sink);
        return;
    }
    let greeting = if script == Script::RefuseGreeting {
        "554 5.3.2 scripted.test no service here\r\n"
    } else {
        "220 scripted.test ESMTP\r\n"
    };
    if !say(greeting) {
        return;
    }
    let mut line = String::new();
    let mut in_data = false;
    loop {
        line.clear();
        match lines.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if in_data {
            if line == ".\r\n" {
                in_data = false;
                messages.fetch_add(1, Ordering::SeqCst);
                if !say("250 2.0.0 queued\r\n") {
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
                say("221 2.0.0 bye\r\n");
                return;
            }
            _ if script == Script::RefuseGreeting => "503 5.5.1 no service\r\n",
            "EHLO" => "250-scripted.test\r\n250 PIPELINING\r\n",
            "MAIL" if script == Script::CloseAtMail => return,
            "MAIL" | "RCPT" | "RSET" | "NOOP" => "250 2.0.0 ok\r\n",
            "DATA" => {
                in_data = true;
                "354 go on\r\n"
            }
            _ => "502 5.5.2 unknown\r\n",
        };
        if !say(reply) {
            return;
        }
    }
}
