//! [`List`]: the suppression list, in memory and in its file.
//!
//! The file holds one address per line; blank lines and lines starting with `#` are ignored,
//! and angle brackets around an address are allowed. Addresses are compared ignoring ASCII
//! case. New entries are appended to the file as they are recorded, so the list survives a
//! restart; the file is read once, at start.
//!
//! What this module does not do: decide what a hard bounce is (the plugin's hooks do).

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// At most this many addresses are kept; past it, new hard bounces are logged, not recorded.
pub const MAX_ENTRIES: usize = 1_000_000;
/// A file larger than this is refused at start.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;
/// The longest address kept, in bytes (RFC 5321 §4.5.3.1.3 paths are at most 256 octets).
pub const MAX_ADDRESS: usize = 320;

/// An address as the list keeps it: trimmed, without angle brackets, ASCII lower-case.
/// `None` for something that is not an address (no `@`, too long, spaces or controls inside).
pub fn normalize(address: &str) -> Option<String> {
    let a = address.trim();
    let a = a
        .strip_prefix('<')
        .and_then(|a| a.strip_suffix('>'))
        .unwrap_or(a);
    let ok = !a.is_empty()
        && a.len() <= MAX_ADDRESS
        && a.contains('@')
        && !a.starts_with('@')
        && !a.ends_with('@')
        && !a.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then(|| a.to_ascii_lowercase())
}

/// The suppression list (see the [module docs](self)). Shared by the plugin's hooks, which
/// run on the relay's threads.
#[derive(Debug)]
pub struct List {
    path: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    addresses: HashSet<String>,
    file: Option<File>,
}

impl List {
    /// Reads the list from `path`; a file that does not exist yet is an empty list (it is
    /// created with the first entry). The error names the file, and the line for an entry
    /// that is not an address.
    pub fn open(path: &Path) -> Result<List, String> {
        let mut addresses = HashSet::new();
        match std::fs::metadata(path) {
            Ok(m) if m.len() > MAX_FILE_BYTES => {
                return Err(format!(
                    "{}: larger than {MAX_FILE_BYTES} bytes",
                    path.display()
                ))
            }
            Ok(_) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                for (n, line) in text.lines().enumerate() {
                    let line = line.trim();
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    let address = normalize(line).ok_or_else(|| {
                        format!(
                            "{} line {}: not an address: {line:?}",
                            path.display(),
                            n + 1
                        )
                    })?;
                    if addresses.len() >= MAX_ENTRIES {
                        return Err(format!(
                            "{}: more than {MAX_ENTRIES} addresses",
                            path.display()
                        ));
                    }
                    addresses.insert(address);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
                if parent.is_some_and(|p| !p.is_dir()) {
                    return Err(format!("{}: its directory does not exist", path.display()));
                }
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
        Ok(List {
            path: path.to_owned(),
            inner: Mutex::new(Inner {
                addresses,
                file: None,
            }),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many addresses are on the list.
    pub fn len(&self) -> usize {
        self.lock().addresses.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `address` is on the list.
    pub fn contains(&self, address: &str) -> bool {
        normalize(address).is_some_and(|a| self.lock().addresses.contains(&a))
    }

    /// Puts `address` on the list and appends it to the file. `Ok(false)` when it was on the
    /// list already, or is not an address, or the list is full (logged); `Err` when the file
    /// could not be written (the address stays on the list in memory).
    pub fn record(&self, address: &str) -> Result<bool, String> {
        let Some(address) = normalize(address) else {
            return Ok(false);
        };
        let mut inner = self.lock();
        if inner.addresses.contains(&address) {
            return Ok(false);
        }
        if inner.addresses.len() >= MAX_ENTRIES {
            hooks_api::log::warn!(
                "suppression: the list is full ({MAX_ENTRIES} addresses); {address} not added"
            );
            return Ok(false);
        }
        inner.addresses.insert(address.clone());
        if inner.file.is_none() {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| format!("{}: {e}", self.path.display()))?;
            inner.file = Some(file);
        }
        let line = format!("{address}\n");
        match inner.file.as_mut().map(|f| f.write_all(line.as_bytes())) {
            Some(Ok(())) | None => Ok(true),
            Some(Err(e)) => {
                // Reopen next time: the file may have been moved or its disk filled.
                inner.file = None;
                Err(format!("{}: {e}", self.path.display()))
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves a consistent set: keep using it.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised_and_non_addresses_refused() {
        assert_eq!(
            normalize(" <Bob@Example.ORG> ").as_deref(),
            Some("bob@example.org")
        );
        assert_eq!(normalize("a@b").as_deref(), Some("a@b"));
        for bad in ["", "<>", "bob", "@example.org", "bob@", "a b@c", "a@b\u{7}"] {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
        assert_eq!(normalize(&format!("{}@x", "a".repeat(MAX_ADDRESS))), None);
    }

    #[test]
    fn the_file_is_read_at_start_and_appended_to() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("suppressed");
        std::fs::write(
            &path,
            "# hard bounces\n\nold@example.org\n<Older@Example.org>\n",
        )
        .unwrap();
        let list = List::open(&path).unwrap();
        assert_eq!(list.len(), 2);
        assert!(list.contains("OLD@example.org"));
        assert!(list.contains("<older@example.org>"));
        assert_eq!(list.record("new@example.org"), Ok(true));
        assert_eq!(list.record("NEW@example.org"), Ok(false), "once");
        assert_eq!(list.record("not an address"), Ok(false));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.ends_with("<Older@Example.org>\nnew@example.org\n"),
            "{text:?}"
        );
        let again = List::open(&path).unwrap();
        assert_eq!(again.len(), 3);
    }

    #[test]
    fn a_missing_file_is_an_empty_list_and_a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("later");
        let list = List::open(&path).unwrap();
        assert!(list.is_empty());
        assert!(!path.exists(), "created with the first entry");
        assert_eq!(list.record("a@b.test"), Ok(true));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a@b.test\n");

        std::fs::write(&path, "a@b.test\nnot an address\n").unwrap();
        let err = List::open(&path).unwrap_err();
        assert!(
            err.ends_with("line 2: not an address: \"not an address\""),
            "{err}"
        );
        let err = List::open(&dir.path().join("no/such/dir/file")).unwrap_err();
        assert!(err.contains("its directory does not exist"), "{err}");
    }
}
