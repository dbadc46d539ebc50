//! Running the `impulse` binary from the root package's tests: [`Impulse`] (one command
//! runner, `impulse send` with the usual envelope arguments) and [`Serve`] (`impulse serve`
//! started on a loopback port, its log followed until it listens; killed on drop).
//!
//! Cargo names the binary only to the root package's tests, so they hand it over: the
//! [`impulse!`](crate::impulse) macro expands `env!("CARGO_BIN_EXE_impulse")` where it is
//! used. Nothing here builds the binary.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The sender most tests use.
pub const FROM: &str = "a@example.org";
/// The recipient most tests use.
pub const TO: &str = "b@example.com";

/// The `impulse` binary of the test that expands it: `Impulse::new(env!("CARGO_BIN_EXE_impulse"))`.
#[macro_export]
macro_rules! impulse {
    () => {
        $crate::cli::Impulse::new(env!("CARGO_BIN_EXE_impulse"))
    };
}

/// The `impulse` binary under test.
#[derive(Debug, Clone)]
pub struct Impulse {
    bin: PathBuf,
}

impl Impulse {
    /// The binary at `bin` (see [`impulse!`](crate::impulse)).
    pub fn new(bin: impl Into<PathBuf>) -> Impulse {
        Impulse { bin: bin.into() }
    }

    /// A command for the binary, no arguments yet.
    pub fn command(&self) -> Command {
        Command::new(&self.bin)
    }

    /// Runs `impulse TOOL --spool SPOOL ARGS` (`tool` is `spool` or `queue`) with
    /// `RUST_LOG=warn` and waits for it.
    pub fn spool_tool(&self, tool: &str, spool: &Path, args: &[&str]) -> Output {
        self.command()
            .arg(tool)
            .arg("--spool")
            .arg(spool)
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run impulse")
    }

    /// Runs `impulse send ARGS` (standard input: `stdin`, or empty) and waits for it.
    pub fn send(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut child = self
            .command()
            .arg("send")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run impulse send");
        let mut input = child.stdin.take().expect("a piped stdin");
        input
            .write_all(stdin.unwrap_or_default())
            .expect("write stdin");
        drop(input);
        child.wait_with_output().expect("impulse send ends")
    }

    /// Starts `impulse serve` with the arguments `args` adds (`--listen 127.0.0.1:0` among
    /// them, or a config that says so) and `RUST_LOG=info`, and reads its log until the
    /// `listening on` line.
    pub fn serve(&self, args: impl FnOnce(&mut Command)) -> Serve {
        let mut command = self.command();
        command.arg("serve");
        args(&mut command);
        let mut child = command
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .expect("run impulse serve");
        let mut log = BufReader::new(child.stderr.take().expect("a piped stderr"));
        let mut startup = String::new();
        let addr = loop {
            let mut line = String::new();
            let n = log.read_line(&mut line).expect("read the log");
            assert!(n > 0, "impulse serve exited: {startup}");
            if let Some(a) = line.trim().split("listening on ").nth(1) {
                break a.to_owned();
            }
            startup.push_str(&line);
        };
        Serve {
            child,
            addr,
            startup,
            log: Some(log),
            drain: None,
        }
    }

    /// Starts `impulse serve --config CONFIG` (the config says where to listen), as
    /// [`serve`](Impulse::serve) does.
    pub fn serve_config(&self, config: &Path) -> Serve {
        self.serve(|c| {
            c.arg("--config").arg(config);
        })
    }
}

/// `--server SERVER --from FROM --to TO`, then `extra`.
pub fn to_server<'a>(server: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--server", server, "--from", FROM, "--to", TO];
    args.extend_from_slice(extra);
    args
}

/// The standard output of a run that must have succeeded; panics with both outputs when it
/// did not.
pub fn succeeded(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The longest [`Serve::log_until`] waits for its line.
pub const LOG_WAIT: Duration = Duration::from_secs(60);

/// A running `impulse serve`; killed and reaped on drop.
#[derive(Debug)]
pub struct Serve {
    child: Child,
    /// Where it listens, as its log said.
    pub addr: String,
    /// The log lines before `listening on`.
    pub startup: String,
    log: Option<BufReader<ChildStderr>>,
    drain: Option<JoinHandle<()>>,
}

impl Serve {
    /// Keeps reading the log on a thread of its own, so the server never blocks on a full
    /// pipe (for tests that do not read the rest of the log).
    pub fn drain_log(&mut self) {
        if let Some(mut log) = self.log.take() {
            self.drain = Some(std::thread::spawn(move || {
                let mut sink = String::new();
                while log.read_line(&mut sink).unwrap_or(0) > 0 {
                    sink.clear();
                }
            }));
        }
    }

    /// Sends SIGTERM (a graceful stop).
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends SIGHUP (reload the configuration).
    pub fn hangup(&self) {
        self.signal("HUP");
    }

    /// Sends the signal `name` (`TERM`, `HUP`, ...) with kill(1).
    pub fn signal(&self, name: &str) {
        assert!(kill(self.child.id(), name), "kill -{name} failed");
    }

    /// Reads the log until a line containing `needle` (returned with the lines before
    /// it); panics when the log ends first or was given to [`drain_log`](Serve::drain_log),
    /// and when the line has not come within [`LOG_WAIT`]: the server is then killed, so a
    /// test never hangs on a line that will not come.
    pub fn log_until(&mut self, needle: &str) -> String {
        let log = self.log.as_mut().expect("the log is still read here");
        let found = Arc::new(AtomicBool::new(false));
        let watchdog = {
            let (found, pid) = (found.clone(), self.child.id());
            std::thread::spawn(move || {
                let deadline = Instant::now() + LOG_WAIT;
                while Instant::now() < deadline {
                    if found.load(Ordering::Acquire) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                kill(pid, "KILL");
            })
        };
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            let n = log.read_line(&mut line).expect("read the log");
            if n == 0 {
                found.store(true, Ordering::Release);
                let _ = watchdog.join();
                panic!("the log ended (or {LOG_WAIT:?} passed) before {needle:?}: {seen}");
            }
            seen.push_str(&line);
            if line.contains(needle) {
                found.store(true, Ordering::Release);
                let _ = watchdog.join();
                return seen;
            }
        }
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self) -> ExitStatus {
        self.child.wait().expect("impulse serve is reaped")
    }

    /// The rest of the log, up to its end (the process has exited or will). Empty once
    /// [`drain_log`](Serve::drain_log) took it.
    pub fn rest_of_log(&mut self) -> String {
        let mut tail = String::new();
        if let Some(log) = self.log.as_mut() {
            let _ = log.read_to_string(&mut tail);
        }
        tail
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends the signal `name` to process `pid` with kill(1); whether kill succeeded.
fn kill(pid: u32, name: &str) -> bool {
    Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("run kill")
        .success()
}
