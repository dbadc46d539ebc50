//! A private Postfix for socket tests: a real Postfix instance (`master`, `smtpd`, `qmgr`,
//! `smtp`, ...) with its own `main.cf`, `master.cf`, queue and log in a temporary directory,
//! its smtpd on a free `127.0.0.1` port, started with `postfix -c DIR start` and stopped on
//! drop. Two roles ([`Role`]): a final hop that keeps the mail it accepts for some domains in
//! its HOLD queue (where [`Postfix::held`] and [`Postfix::message`] read it back), or a relay
//! whose `relayhost` is a given address (Postfix relaying *into* the server under test), fed
//! through its smtpd or [`Postfix::sendmail`].
//!
//! Postfix's master must start as root and needs the `postfix` user and the `postdrop`
//! group: without them (or without Postfix) [`Postfix::start`] returns `None` after
//! [`missing`] (a loud SKIPPED, a failure when `CI` is set). It uses
//! nothing of the system's Postfix configuration and no DNS; it listens on loopback only.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::peers::{find_program, free_addr, missing};

/// What the private Postfix does with the mail it accepts.
#[derive(Debug, Clone, Copy)]
pub enum Role<'a> {
    /// Accepts mail for these domains (and from loopback clients for any domain) and keeps
    /// every message in the HOLD queue: nothing is delivered on.
    Hold(&'a [&'a str]),
    /// Relays everything it accepts to this next hop (`relayhost = [ip]:port`), retrying a
    /// deferred message within seconds.
    Relay(SocketAddr),
}

/// A running private Postfix (see the module doc); stopped on drop.
#[derive(Debug)]
pub struct Postfix {
    /// Where its smtpd listens.
    pub addr: SocketAddr,
    bin: PathBuf,
    dir: tempfile::TempDir,
}

const SBIN: &[&str] = &["/usr/sbin", "/usr/lib/postfix/sbin"];

fn line_starts(file: &str, prefix: &str) -> bool {
    std::fs::read_to_string(file)
        .map(|s| s.lines().any(|l| l.starts_with(prefix)))
        .unwrap_or(false)
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Why a private Postfix cannot run here, if it cannot; else the `postfix` command.
fn usable() -> Result<PathBuf, &'static str> {
    let bin =
        find_program("postfix", SBIN).ok_or("the postfix command (apt-get install postfix)")?;
    find_program("postcat", SBIN).ok_or("postcat (Postfix)")?;
    if !running_as_root() {
        return Err("root (Postfix's master starts as root)");
    }
    if !line_starts("/etc/passwd", "postfix:") {
        return Err("a 'postfix' user (the Debian package creates it)");
    }
    if !line_starts("/etc/group", "postdrop:") {
        return Err("a 'postdrop' group (the Debian package creates it)");
    }
    Ok(bin)
}

fn main_cf(dir: &Path, role: Role<'_>) -> String {
    let d = dir.display();
    let mut cf = format!(
        "compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = {d}/maillog
maillog_file_prefixes = {d}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = postfix.test
mydomain = test
myorigin = $myhostname
mydestination =
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
disable_dns_lookups = yes
biff = no
in_flow_delay = 0
smtpd_relay_restrictions = permit_mynetworks, permit_auth_destination, reject
"
    );
    match role {
        Role::Hold(domains) => {
            cf.push_str(&format!("relay_domains = {}\n", domains.join(", ")));
            // Keep every accepted message: HOLD on every recipient.
            cf.push_str("smtpd_recipient_restrictions = check_recipient_access static:HOLD\n");
        }
        Role::Relay(hop) => {
            cf.push_str(&format!(
                "relay_domains =
relayhost = [{}]:{}
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
smtp_tls_security_level = none
",
                hop.ip(),
                hop.port()
            ));
        }
    }
    cf
}

fn master_cf(addr: SocketAddr) -> String {
    format!(
        "{addr} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"
    )
}

impl Postfix {
    /// Starts a private Postfix in `role` and waits (up to 20 s) until its smtpd listens;
    /// `None` (after [`missing`]) when Postfix cannot run here. Panics when it is there but
    /// does not start.
    pub fn start(role: Role<'_>) -> Option<Postfix> {
        let bin = match usable() {
            Ok(bin) => bin,
            Err(what) => {
                missing(&format!("a private Postfix needs {what}"), "see .ci/run");
                return None;
            }
        };
        let dir = tempfile::tempdir().expect("a temporary directory");
        // Postfix's daemons (user postfix) reach the queue and data directories through it.
        chmod(dir.path(), "755");
        for sub in ["conf", "queue", "data"] {
            std::fs::create_dir(dir.path().join(sub)).expect("a Postfix directory");
        }
        let status = Command::new("chown")
            .arg("postfix")
            .arg(dir.path().join("data"))
            .status()
            .expect("run chown");
        assert!(status.success(), "chown postfix data/");
        let addr = free_addr();
        let conf = dir.path().join("conf");
        std::fs::write(conf.join("main.cf"), main_cf(dir.path(), role)).expect("main.cf");
        std::fs::write(conf.join("master.cf"), master_cf(addr)).expect("master.cf");
        let postfix = Postfix { addr, bin, dir };
        let out = postfix.postfix(&["start"]);
        assert!(
            out.status.success(),
            "postfix start failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            postfix.maillog()
        );
        let start = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "Postfix did not listen on {addr}:\n{}",
                postfix.maillog()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(postfix)
    }

    /// Its configuration directory (for `-c` / `-C`).
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("conf")
    }

    fn postfix(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .arg("-c")
            .arg(self.conf())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run postfix")
    }

    /// Its log so far.
    pub fn maillog(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    /// The queue ids of the messages in its HOLD queue.
    pub fn held(&self) -> Vec<String> {
        let mut ids = Vec::new();
        let mut dirs = vec![self.dir.path().join("queue/hold")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                    ids.push(name.to_owned());
                }
            }
        }
        ids.sort();
        ids
    }

    /// Waits up to `limit` until at least `n` messages are held; returns their ids.
    pub fn wait_held(&self, n: usize, limit: Duration) -> Vec<String> {
        let start = Instant::now();
        loop {
            let held = self.held();
            if held.len() >= n || start.elapsed() > limit {
                return held;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A queued message as `postcat -e -h -b -q ID` prints it: the envelope records
    /// (`sender: ...`, `recipient: ...`), then the header and body Postfix stored.
    pub fn message(&self, id: &str) -> String {
        let postcat = find_program("postcat", SBIN).expect("postcat (checked at start)");
        let out = Command::new(postcat)
            .arg("-c")
            .arg(self.conf())
            .args(["-e", "-h", "-b", "-q", id])
            .output()
            .expect("run postcat");
        assert!(
            out.status.success(),
            "postcat -q {id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Submits `message` from `from` to `to` through Postfix's `sendmail -C DIR` (postdrop,
    /// pickup, cleanup, then the queue manager), as a local program would.
    pub fn sendmail(&self, from: &str, to: &[&str], message: &[u8]) -> Output {
        let sendmail = find_program("sendmail", SBIN).expect("Postfix's sendmail");
        let mut child = Command::new(sendmail)
            .arg("-C")
            .arg(self.conf())
            .args(["-i", "-f", from, "--"])
            .args(to)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run sendmail");
        let mut input = child.stdin.take().expect("a piped stdin");
        input.write_all(message).expect("write the message");
        drop(input);
        child.wait_with_output().expect("sendmail ends")
    }

    fn master_pid(&self) -> Option<String> {
        let pid = std::fs::read_to_string(self.dir.path().join("queue/pid/master.pid")).ok()?;
        Some(pid.trim().to_owned()).filter(|p| !p.is_empty())
    }
}

fn chmod(path: &Path, mode: &str) {
    let status = Command::new("chmod")
        .arg(mode)
        .arg(path)
        .status()
        .expect("run chmod");
    assert!(status.success(), "chmod {mode} {}", path.display());
}

/// Whether the process `pid` is gone (or a zombie nobody reaps: stopped all the same).
fn gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Err(_) => true,
        Ok(s) => s
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z')),
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let master = self.master_pid();
        let _ = self.postfix(&["stop"]);
        let Some(pid) = master else { return };
        let start = Instant::now();
        while !gone(&pid) && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if !gone(&pid) {
            let _ = self.postfix(&["abort"]);
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
    }
}
