//! Python peers (aiosmtpd) for the client's socket tests: one start-up, wait-for-listen and
//! kill-on-drop for every script.

use std::ffi::OsStr;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether `python3` can import aiosmtpd. Prints a loud SKIPPED when not — and fails when
/// `CI` is set (`.ci/run` installs the module with pip).
pub fn aiosmtpd_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 with aiosmtpd not found and CI is set: install it (see .ci/run)"
        );
        eprintln!(
            "\n*** SKIPPED: python3 -c 'import aiosmtpd' failed (pip install aiosmtpd) ***\n"
        );
    }
    ok
}

/// A `python3 -c SCRIPT PORT ARGS...` server on a free loopback port, killed on drop.
pub struct PyServer {
    child: Child,
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
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let child = Command::new("python3")
            .args(["-c", script, &port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn python3");
        let mut server = PyServer { child, addr };
        let start = Instant::now();
        while TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("the Python server exited with {status} before listening");
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the Python server did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
