//! Real third-party peers for socket tests, each a child process on a free loopback port,
//! waited for until it listens and killed on drop: Postfix's `smtp-sink` ([`Sink`]) and
//! Python scripts such as aiosmtpd servers ([`PyServer`]).
//!
//! A peer that is not installed makes the test print a loud SKIPPED and pass — unless `CI`
//! is set, where it fails ([`missing`]). Nothing here installs anything.

use std::ffi::OsStr;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Says that `what` is not installed (`how` tells how to get it): a loud SKIPPED, or a
/// failure when `CI` is set.
pub fn missing(what: &str, how: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} not found and CI is set: {how}"
    );
    eprintln!("\n*** SKIPPED: {what} not found ({how}) ***\n");
}

/// A loopback address with a port nobody listens on right now, for a peer to listen on.
///
/// The port comes from below the kernel's ephemeral range (which `bind(port 0)` and every
/// outgoing connection draw from), and no port is handed out twice in one process: a port
/// from `bind(port 0)`, released for a child to take, could meanwhile be handed to a
/// parallel test, or become the local end of a connection, and the child would then fail
/// to listen while the wait for it talked to someone else.
pub fn free_addr() -> SocketAddr {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (low, high) = unclaimed_ports();
    let span = high - low;
    if span < 1024 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        return listener.local_addr().expect("its address");
    }
    // Each process starts at its own place, so test binaries run one after the other
    // (whose ports may linger in TIME_WAIT) do not retrace each other's steps.
    let start = std::process::id().wrapping_mul(2_654_435_761) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = low + (start + n) % span;
        let addr = SocketAddr::from(([127, 0, 0, 1], port as u16));
        if TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no free loopback port in {low}..{high}");
}

/// Ports `[low, high)` that neither `bind(port 0)` nor an outgoing connection will take: up
/// to 12,000 below the start of `/proc/sys/net/ipv4/ip_local_port_range`, from 10,000 up.
fn unclaimed_ports() -> (u32, u32) {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    let high = ephemeral_low.min(65_536);
    (high.saturating_sub(12_000).max(10_000).min(high), high)
}

/// A child process listening on `addr`; killed and reaped on drop.
#[derive(Debug)]
pub struct Listening {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Listening {
    /// Spawns `command` and waits up to `patience` until `addr` accepts connections.
    /// Panics when it exits first or never listens.
    pub fn spawn(mut command: Command, addr: SocketAddr, patience: Duration) -> Listening {
        let child = command.spawn().expect("spawn the peer");
        let mut peer = Listening { child, addr };
        let start = Instant::now();
        while TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = peer.child.try_wait() {
                panic!("the peer exited with {status} before listening on {addr}");
            }
            assert!(
                start.elapsed() < patience,
                "the peer did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Whoever answered, it was not this child if the child has already given up.
        if let Ok(Some(status)) = peer.child.try_wait() {
            panic!("the peer exited with {status}; something else listens on {addr}");
        }
        peer
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The program `name` on `PATH`, else in one of `more` (directories).
pub fn find_program(name: &str, more: &[&str]) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain(more.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The program `name` on `PATH`; when it is not there, [`missing`] says so.
pub fn program(name: &str) -> Option<PathBuf> {
    let found = find_program(name, &[]);
    if found.is_none() {
        missing(name, "install it (see .ci/run)");
    }
    found
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A running `smtp-sink` (Postfix), looked up on `PATH`, then in `/usr/sbin` and
/// `/usr/lib/postfix/sbin`; killed on drop.
#[derive(Debug)]
pub struct Sink {
    _peer: Listening,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Sink {
    /// Starts `smtp-sink ARGS 127.0.0.1:PORT 256`; `None` (after [`missing`]) when it is not
    /// installed.
    pub fn start(args: &[&str]) -> Option<Sink> {
        let Some(bin) = find_program("smtp-sink", &["/usr/sbin", "/usr/lib/postfix/sbin"]) else {
            missing(
                "smtp-sink (Postfix)",
                "looked on PATH, /usr/sbin and /usr/lib/postfix/sbin",
            );
            return None;
        };
        let addr = free_addr();
        let mut cmd = Command::new(bin);
        cmd.args(args);
        if running_as_root() {
            cmd.args(["-u", "nobody"]);
        }
        cmd.arg(addr.to_string())
            .arg("256")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let peer = Listening::spawn(cmd, addr, Duration::from_secs(10));
        Some(Sink { _peer: peer, addr })
    }
}

/// Whether `python3` can import aiosmtpd; when not, [`missing`] says so (`.ci/run`
/// installs the module with pip).
pub fn aiosmtpd_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        missing("python3 with aiosmtpd", "pip install aiosmtpd; see .ci/run");
    }
    ok
}

/// A `python3 -c SCRIPT PORT ARGS...` server on a free loopback port, killed on drop.
#[derive(Debug)]
pub struct PyServer {
    _peer: Listening,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl PyServer {
    /// Starts the script with a free port as its first argument, then `args`, and waits (up
    /// to 20 s) until it accepts connections.
    pub fn start<I, S>(script: &str, args: I) -> PyServer
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let addr = free_addr();
        let mut cmd = Command::new("python3");
        cmd.args(["-c", script, &addr.port().to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let peer = Listening::spawn(cmd, addr, Duration::from_secs(20));
        PyServer { _peer: peer, addr }
    }
}
