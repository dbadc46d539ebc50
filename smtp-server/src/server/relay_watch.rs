//! Re-reading `[relay] recipients` when the file changes, on a thread of its own
//! (`impulse-relay-recipients`), so the loops never touch the file: once per
//! [`CHECK_INTERVAL`] it compares the file's modification time, size and inode with those
//! it last read, and on a change reads and parses it and swaps the new policy into the
//! [`RelayControl`] every connection consults.
//!
//! A file that cannot be read or does not parse leaves the table in force as it was (with a
//! warning in the log), so a half-written file never empties it; write the new file beside
//! the old one and rename it over.
//!
//! A reload (SIGHUP) puts new relay control in force through [`RelaySwap::put`]: the new
//! `[relay]` table (domains, networks, the recipients file, read at once) replaces the one
//! the watcher re-reads the file with, under the same lock, so a file change seen at that
//! moment can never bring back the old domains.
//!
//! What it does not do: delivery settings (the relay's own, `smtp_relay::driver::Relay::reload`),
//! or watch a recipients file when the server started without a `[relay]` table (a table
//! added by a reload is put in force, its file is watched from the next start).

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use parking_lot::Mutex;
use smtp_relay::route::RelayPolicy;

use crate::config::{read_recipients, ConfigError, RelayConfig};
use crate::factory::RelayControl;

/// How often the file's metadata is checked.
pub(crate) const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// What identifies one version of the file: modification time, size and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    ino: u64,
}

fn stamp(path: &std::path::Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
        ino: m.ino(),
    })
}

/// The relay control every connection consults and the `[relay]` table it came from: what a
/// reload swaps and the watcher re-reads the recipients file with. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct RelaySwap {
    control: Arc<RelayControl>,
    config: Arc<Mutex<Option<RelayConfig>>>,
}

impl RelaySwap {
    /// A swap over `control`, whose policy came from `config`.
    pub(crate) fn new(control: Arc<RelayControl>, config: Option<RelayConfig>) -> RelaySwap {
        RelaySwap {
            control,
            config: Arc::new(Mutex::new(config)),
        }
    }

    /// The relay control `config` describes, its recipients file read now (a reload does
    /// this before it accepts anything: a file that does not load refuses the reload).
    pub(crate) fn prepare(config: Option<&RelayConfig>) -> Result<RelayPolicy, ConfigError> {
        match config {
            Some(r) => r.policy(),
            None => Ok(RelayConfig::default_policy()),
        }
    }

    /// Puts `policy` (from [`prepare`](Self::prepare)) in force, with `config` as the table
    /// the watcher reads the file with from now on.
    pub(crate) fn put(&self, config: Option<RelayConfig>, policy: RelayPolicy) {
        let mut slot = self.config.lock();
        self.control.replace(policy);
        *slot = config;
    }
}

/// What the watcher needs, prepared when the server is built (the file read once then).
#[derive(Debug)]
pub(crate) struct Watch {
    swap: RelaySwap,
    seen: Option<Stamp>,
}

impl Watch {
    /// The version of `config`'s recipients file now (`None`: no file, or none named).
    /// Take it before reading the file for the policy, and pass it to [`Watch::new`].
    pub(crate) fn stamp_now(config: &RelayConfig) -> Option<Stamp> {
        stamp(config.recipients.as_deref()?)
    }

    /// A watch over the recipients file of the table in `swap` (whichever it names at each
    /// check); `seen` is the version noted before the policy in force was read from it.
    pub(crate) fn new(swap: RelaySwap, seen: Option<Stamp>) -> Watch {
        Watch { swap, seen }
    }

    /// One check: re-reads the file when it changed. Returns whether a new table is in force.
    fn check(&mut self) -> bool {
        // Held until the new policy is in force: a reload waits, never overtaken.
        let slot = self.swap.config.lock();
        let Some(config) = slot.as_ref() else {
            return false;
        };
        let Some(path) = config.recipients.clone() else {
            self.seen = None;
            return false;
        };
        let now = stamp(&path);
        if now == self.seen {
            return false;
        }
        self.seen = now;
        let policy = read_recipients(&path).and_then(|t| config.policy_with(Some(t)));
        match policy {
            Ok(policy) => {
                self.swap.control.replace(policy);
                log::info!("relay recipients reloaded from {}", path.display());
                true
            }
            Err(e) => {
                log::warn!("relay recipients not reloaded, the previous table stays: {e}");
                false
            }
        }
    }

    /// Starts the thread; it ends when the returned [`Watcher`] is stopped or dropped.
    pub(crate) fn start(self) -> std::io::Result<Watcher> {
        let (stop, stopped) = crossbeam_channel::bounded(0);
        let thread = std::thread::Builder::new()
            .name("impulse-relay-recipients".into())
            .spawn(move || self.run(&stopped))?;
        Ok(Watcher {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    fn run(mut self, stopped: &Receiver<()>) {
        loop {
            match stopped.recv_timeout(CHECK_INTERVAL) {
                Err(RecvTimeoutError::Timeout) => {
                    self.check();
                }
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}

/// The running watcher thread.
#[derive(Debug)]
pub(crate) struct Watcher {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Stops the thread and waits for it (at most one check).
    pub(crate) fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smtp_relay::route::{check_recipient, Client, Decision, RcptPath};

    fn accepts(control: &RelayControl, rcpt: &str) -> bool {
        let path = RcptPath::parse(rcpt.as_bytes(), false).unwrap();
        let outside = Client::at("192.0.2.7".parse().unwrap());
        matches!(
            check_recipient(&control.policy(), &path, &outside),
            Decision::Accept(_)
        )
    }

    #[test]
    fn a_changed_file_is_read_again_and_a_broken_one_keeps_the_old_table() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("recipients");
        std::fs::write(&file, "alice@example.org\n").unwrap();
        let config = RelayConfig {
            domains: vec!["example.org".into()],
            recipients: Some(file.clone()),
            ..RelayConfig::default()
        };
        let seen = Watch::stamp_now(&config);
        let control = Arc::new(RelayControl::new(config.policy().unwrap()));
        let swap = RelaySwap::new(control.clone(), Some(config.clone()));
        let mut watch = Watch::new(swap.clone(), seen);
        assert!(!watch.check(), "unchanged");
        assert!(accepts(&control, "<alice@example.org>"));
        assert!(!accepts(&control, "<bob@example.org>"));

        // A new file renamed over the old one (a new inode, whatever the clock's grain).
        let next = dir.path().join("recipients.new");
        std::fs::write(&next, "alice@example.org\nbob@example.org\n").unwrap();
        std::fs::rename(&next, &file).unwrap();
        assert!(watch.check());
        assert!(accepts(&control, "<bob@example.org>"));

        std::fs::write(&next, "bob@example.org\nnot an address\n").unwrap();
        std::fs::rename(&next, &file).unwrap();
        assert!(!watch.check(), "a broken file is not put in force");
        assert!(accepts(&control, "<alice@example.org>"));
        std::fs::remove_file(&file).unwrap();
        assert!(!watch.check(), "nor a missing one");
        assert!(accepts(&control, "<bob@example.org>"));

        // A reload: new domains, the file read at once, and watched from then on.
        std::fs::write(&file, "carol@example.net\n").unwrap();
        let reloaded = RelayConfig {
            domains: vec!["example.net".into()],
            recipients: Some(file.clone()),
            ..RelayConfig::default()
        };
        let policy = RelaySwap::prepare(Some(&reloaded)).unwrap();
        swap.put(Some(reloaded), policy);
        assert!(accepts(&control, "<carol@example.net>"));
        assert!(
            !accepts(&control, "<bob@example.org>"),
            "the old domains are gone"
        );
        std::fs::write(&next, "carol@example.net\ndave@example.net\n").unwrap();
        std::fs::rename(&next, &file).unwrap();
        assert!(watch.check());
        assert!(accepts(&control, "<dave@example.net>"));
        assert!(
            !accepts(&control, "<alice@example.org>"),
            "nor come back with the file"
        );
    }

    #[test]
    fn the_thread_stops_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("recipients");
        std::fs::write(&file, "@example.org\n").unwrap();
        let config = RelayConfig {
            domains: vec!["example.org".into()],
            recipients: Some(file),
            ..RelayConfig::default()
        };
        let control = Arc::new(RelayControl::new(config.policy().unwrap()));
        let swap = RelaySwap::new(control, Some(config));
        let watcher = Watch::new(swap, None).start().unwrap();
        watcher.stop();
    }
}
