//! Range and consistency checks of a parsed [`ServerConfig`], each error naming its key, and
//! the lookup of a key's line in the file it came from.
//!
//! What it does not do: check anything outside the configuration itself (files it names,
//! plugin tables, certificates): `impulse config check` does those with the plugin registry
//! and the TLS loader.

use super::{is_valid_hostname, ConfigError, ServerConfig};

/// The most event-loop threads, hook-pool threads or spool sync threads accepted: far above
/// what any machine needs, low enough that a typo (`workers = 10000`) is caught.
pub const MAX_THREADS: usize = 1024;

impl ServerConfig {
    /// Checks ranges and consistency; the first problem found is returned, naming its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| Err(ConfigError::invalid(key, message));
        self.validate_listeners()?;
        if !self.hostname.is_empty() && !is_valid_hostname(&self.hostname) {
            return bad(
                "hostname",
                format!("{:?} is not a valid domain name", self.hostname),
            );
        }
        let l = &self.limits;
        if l.command_line < 512 {
            return bad(
                "limits.command_line",
                format!("{} is below RFC 5321's 512", l.command_line),
            );
        }
        if l.recipients < 1 {
            return bad(
                "limits.recipients",
                "must be at least 1 (RFC 5321 asks for 100)".into(),
            );
        }
        if l.message_size < 65_536 {
            return bad(
                "limits.message_size",
                format!("{} is below RFC 5321's 64 KB minimum", l.message_size),
            );
        }
        if l.soft_errors > l.hard_errors {
            return bad(
                "limits.soft_errors",
                format!(
                    "{} must not exceed limits.hard_errors ({})",
                    l.soft_errors, l.hard_errors
                ),
            );
        }
        for (key, value) in [
            ("limits.connections", l.connections),
            ("limits.connections_per_ip", l.connections_per_ip),
        ] {
            if value == 0 {
                return bad(key, "must be > 0".into());
            }
        }
        let t = &self.timeouts;
        for (key, value) in [
            ("timeouts.command", t.command),
            ("timeouts.data", t.data),
            ("timeouts.hook", t.hook),
        ] {
            if value.is_zero() {
                return bad(key, "must be > 0 seconds".into());
            }
        }
        for (key, value, zero_ok) in [
            ("workers", self.workers, true),
            ("pool_threads", self.pool_threads, false),
            ("spool.sync_threads", self.spool.sync_threads, false),
        ] {
            if value == 0 && !zero_ok {
                return bad(key, "must be > 0".into());
            }
            if value > MAX_THREADS {
                return bad(key, format!("{value} is more than {MAX_THREADS} threads"));
            }
        }
        if self.smtp.banner.contains(['\r', '\n']) {
            return bad("smtp.banner", "must be one line".into());
        }
        match (&self.tls.cert, &self.tls.key) {
            (Some(_), None) => return bad("tls.key", "tls.cert is set but tls.key is not".into()),
            (None, Some(_)) => return bad("tls.cert", "tls.key is set but tls.cert is not".into()),
            (None, None) if self.tls.required => {
                return bad("tls.required", "needs tls.cert and tls.key".into())
            }
            _ => {}
        }
        if let Some(relay) = &self.relay {
            relay.validate()?;
            // The session waits for a probe as for any pending hook: at most `[timeouts] hook`.
            if relay.verifies_any() && relay.verify.timeout.get() >= self.timeouts.hook.get() {
                return bad(
                    "relay.verify.timeout",
                    format!(
                        "must be shorter than timeouts.hook ({}), which ends the wait for it",
                        self.timeouts.hook
                    ),
                );
            }
        }
        Ok(())
    }
}

/// The 1-based line where the dotted `key` (`limits.command_line`, `workers`) is set in the
/// TOML `text`, under its `[table]` header (or as a dotted key); `None` when the value is not
/// in the text (a default, or a command-line override).
pub(super) fn line_of(text: &str, key: &str) -> Option<usize> {
    let (table, leaf) = key.rsplit_once('.').unwrap_or(("", key));
    let mut current = String::new();
    // `[[name]]` headers seen so far, by name: the N-th table is `name[N]` (`listener[1].tls`).
    let mut arrays: Vec<(String, usize)> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(header) = line.strip_prefix('[') {
            let array = header.starts_with('[');
            let name = header.trim_start_matches('[');
            let name = name.split(']').next().unwrap_or("");
            current = name.replace(' ', "");
            if array {
                let index = match arrays.iter_mut().find(|(a, _)| *a == current) {
                    Some((_, count)) => {
                        *count += 1;
                        *count - 1
                    }
                    None => {
                        arrays.push((current.clone(), 1));
                        0
                    }
                };
                current = format!("{current}[{index}]");
            }
            continue;
        }
        let Some((lhs, _)) = line.split_once('=') else {
            continue;
        };
        let lhs = lhs.trim().replace(' ', "");
        let full = if current.is_empty() {
            lhs.clone()
        } else {
            format!("{current}.{lhs}")
        };
        if full == key || (current == table && lhs == leaf) {
            return Some(n + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn error(text: &str) -> String {
        ServerConfig::from_toml(text, Path::new("a.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn every_value_error_names_its_key_and_line() {
        for (text, key, line) in [
            ("[timeouts]\ncommand = 0\n", "timeouts.command", 2),
            ("# x\n\n[timeouts]\ndata = 0\n", "timeouts.data", 4),
            (
                "[limits]\nconnections_per_ip = 0\n",
                "limits.connections_per_ip",
                2,
            ),
            ("workers = 100000\n", "workers", 1),
            ("pool_threads = 0\n", "pool_threads", 1),
            ("spool.sync_threads = 5000\n", "spool.sync_threads", 1),
            ("[tls]\ncert = \"c.pem\"\n", "tls.key", 0),
            ("[smtp]\nbanner = \"a\\nb\"\n", "smtp.banner", 2),
        ] {
            let err = error(text);
            assert!(err.contains(&format!(": {key}: ")), "{text}: {err}");
            if line > 0 {
                assert!(
                    err.contains(&format!("a.toml line {line}:")),
                    "{text}: {err}"
                );
            } else {
                assert!(err.contains("a.toml:"), "{text}: {err}");
            }
        }
    }

    #[test]
    fn line_lookup_follows_tables() {
        let text = "workers = 2\n[limits]\nrecipients = 5\n[timeouts]\ncommand = 1\n";
        assert_eq!(line_of(text, "workers"), Some(1));
        assert_eq!(line_of(text, "limits.recipients"), Some(3));
        assert_eq!(line_of(text, "timeouts.command"), Some(5));
        assert_eq!(line_of(text, "limits.command"), None);
        assert_eq!(line_of(text, "timeouts.data"), None);
        let text = "[[listener]]\naddress = 1\n[[listener]]\naddress = 2\ntls = 3\n";
        assert_eq!(line_of(text, "listener[0].address"), Some(2));
        assert_eq!(line_of(text, "listener[1].address"), Some(4));
        assert_eq!(line_of(text, "listener[1].tls"), Some(5));
        assert_eq!(line_of(text, "listener[0].tls"), None);
        let routes = "[[relay.route]]\nhosts = [\"a\"]\n[relay.dns]\nhosts = 1\n\
                      [[relay.route]]\ndomains = []\nhosts = [\"b\"]\n";
        assert_eq!(line_of(routes, "relay.route[0].hosts"), Some(2));
        assert_eq!(line_of(routes, "relay.route[1].hosts"), Some(7));
        assert_eq!(line_of(routes, "relay.route[2].hosts"), None);
    }
}
