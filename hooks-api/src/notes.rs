//! [`Notes`]: string notes plugins leave for each other.
//!
//! The host keeps two stores per connection and hands both to every hook
//! ([`Ctx::conn_notes`](crate::Ctx::conn_notes), [`Ctx::txn_notes`](crate::Ctx::txn_notes)):
//! the *connection* store lives until the connection closes; the *transaction* store is
//! emptied when a transaction ends (after the queue hooks, on `RSET`, on a new `HELO`/`EHLO`).
//! Prefix keys with your plugin's name (`"auth-file.user"`) so plugins do not collide.

use std::collections::HashMap;

/// A note store: string keys to string values. See the [module docs](self).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notes {
    map: HashMap<String, String>,
}

impl Notes {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// Sets `key` to `value` and returns the previous value.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) -> Option<String> {
        self.map.insert(key.into(), value.into())
    }

    /// Removes `key` and returns its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.map.remove(key)
    }

    /// `true` when `key` is set.
    pub fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// The number of notes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// `true` when there are no notes.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Removes every note (the host does this when a transaction ends).
    pub fn clear(&mut self) {
        self.map.clear();
    }

    /// All notes, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_set_remove() {
        let mut notes = Notes::new();
        assert!(notes.is_empty());
        assert_eq!(notes.set("a.user", "bob"), None);
        assert_eq!(notes.set("a.user", "alice"), Some("bob".to_owned()));
        assert_eq!(notes.get("a.user"), Some("alice"));
        assert!(notes.contains("a.user"));
        assert_eq!(notes.get("missing"), None);
        assert_eq!(notes.len(), 1);
        assert_eq!(notes.iter().collect::<Vec<_>>(), [("a.user", "alice")]);
        assert_eq!(notes.remove("a.user"), Some("alice".to_owned()));
        assert_eq!(notes.remove("a.user"), None);
        notes.set("x", "1");
        notes.clear();
        assert!(notes.is_empty());
    }
}
