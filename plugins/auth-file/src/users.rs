//! The user file: one `user:hash` per line, `#` comments and blank lines ignored.
//!
//! ```text
//! # impulse users
//! alice:$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$V0VYkF...
//! bob:$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW
//! ```
//!
//! Hashes are Argon2 PHC strings (`$argon2id$`, `$argon2i$`, `$argon2d$`) or bcrypt
//! (`$2b$`, `$2a$`, `$2y$`). Every hash is checked when the file is read, so a typo is
//! reported with its line number instead of failing a login later.
//!
//! [`UserFile`] re-reads the file when its modification time or size changes; a re-read that
//! fails keeps the previous contents (and logs why).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// The longest user name accepted in the file, in bytes.
pub const MAX_USER_LEN: usize = 256;

/// A stored password hash, already checked for syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredHash {
    /// An Argon2 PHC string.
    Argon2(String),
    /// A bcrypt hash (`$2b$cost$salt+hash`).
    Bcrypt(String),
}

impl StoredHash {
    /// Checks and classifies a hash string.
    pub fn parse(hash: &str) -> Result<StoredHash, String> {
        if hash.starts_with("$argon2") {
            let phc =
                PasswordHash::new(hash).map_err(|e| format!("invalid Argon2 PHC string: {e}"))?;
            argon2::Algorithm::try_from(phc.algorithm)
                .map_err(|e| format!("invalid Argon2 PHC string: {e}"))?;
            argon2::Params::try_from(&phc)
                .map_err(|e| format!("invalid Argon2 PHC string: {e}"))?;
            if phc.salt.is_none() || phc.hash.is_none() {
                return Err("invalid Argon2 PHC string: no salt or no hash".into());
            }
            Ok(StoredHash::Argon2(hash.to_owned()))
        } else if ["$2b$", "$2a$", "$2y$"].iter().any(|p| hash.starts_with(p)) {
            // `$2b$NN$` followed by 53 characters of bcrypt base64.
            let cost_ok = hash
                .get(4..6)
                .and_then(|c| c.parse::<u32>().ok())
                .is_some_and(|c| (4..=31).contains(&c));
            if !cost_ok || hash.len() != 60 || hash.as_bytes()[6] != b'$' {
                return Err("invalid bcrypt hash (expected $2b$NN$ and 53 characters)".into());
            }
            Ok(StoredHash::Bcrypt(hash.to_owned()))
        } else {
            Err("unsupported hash: expected an Argon2 PHC string ($argon2id$...) or bcrypt ($2b$...)".into())
        }
    }

    /// Whether `password` matches. Constant-time in the hash comparison; the cost is the
    /// hash's own.
    pub fn verify(&self, password: &[u8]) -> bool {
        match self {
            StoredHash::Argon2(phc) => PasswordHash::new(phc)
                .map(|hash| Argon2::default().verify_password(password, &hash).is_ok())
                .unwrap_or(false),
            StoredHash::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
        }
    }

    /// A hash of a random password with the same algorithm and cost as `self`, for checks
    /// against unknown users (so they take as long as checks against known ones).
    pub fn dummy_like(&self) -> StoredHash {
        let random = random_password();
        match self {
            StoredHash::Argon2(phc) => {
                let made = PasswordHash::new(phc).ok().and_then(|hash| {
                    let params = argon2::Params::try_from(&hash).ok()?;
                    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
                    Argon2::default()
                        .hash_password_customized(
                            random.as_bytes(),
                            Some(hash.algorithm),
                            hash.version,
                            params,
                            &salt,
                        )
                        .ok()
                        .map(|h| h.to_string())
                });
                StoredHash::Argon2(made.unwrap_or_else(default_dummy))
            }
            StoredHash::Bcrypt(hash) => {
                let cost = hash[4..6].parse().unwrap_or(bcrypt::DEFAULT_COST);
                match bcrypt::hash(&random, cost) {
                    Ok(h) => StoredHash::Bcrypt(h),
                    Err(_) => StoredHash::Argon2(default_dummy()),
                }
            }
        }
    }
}

fn random_password() -> String {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    salt.as_str().to_owned()
}

/// A dummy Argon2id hash with the default parameters.
fn default_dummy() -> String {
    crate::passwd::hash_password(&random_password()).unwrap_or_default()
}

/// The users of one file, read and checked.
#[derive(Debug, Clone, Default)]
pub struct UserDb {
    users: HashMap<String, StoredHash>,
    dummy: OnceLock<StoredHash>,
}

impl UserDb {
    /// Parses the file's text; errors name the line (`line 3: ...`).
    pub fn parse(text: &str) -> Result<UserDb, String> {
        let mut users = HashMap::new();
        let mut first_line: HashMap<String, usize> = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| format!("line {n}: expected user:hash"))?;
            check_user(user).map_err(|e| format!("line {n}: {e}"))?;
            let hash = StoredHash::parse(hash.trim()).map_err(|e| format!("line {n}: {e}"))?;
            if let Some(first) = first_line.insert(user.to_owned(), n) {
                return Err(format!(
                    "line {n}: user {user:?} is already defined on line {first}"
                ));
            }
            users.insert(user.to_owned(), hash);
        }
        Ok(UserDb {
            users,
            dummy: OnceLock::new(),
        })
    }

    /// The number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// `true` when the file defines no user.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The stored hash of `user`.
    pub fn get(&self, user: &str) -> Option<&StoredHash> {
        self.users.get(user)
    }

    /// Checks `password` for `user`. An unknown user costs one verification against a dummy
    /// hash shaped like the file's hashes, so timing does not reveal which users exist.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        if let Some(hash) = self.users.get(user) {
            return hash.verify(password);
        }
        let dummy = self.dummy.get_or_init(|| match self.users.values().next() {
            Some(hash) => hash.dummy_like(),
            None => StoredHash::Argon2(default_dummy()),
        });
        let _ = dummy.verify(password);
        false
    }
}

/// Checks a user name: not empty, at most [`MAX_USER_LEN`] bytes, no whitespace, control
/// characters or `:`.
pub fn check_user(user: &str) -> Result<(), String> {
    if user.is_empty() {
        return Err("empty user name".into());
    }
    if user.len() > MAX_USER_LEN {
        return Err(format!("user name longer than {MAX_USER_LEN} bytes"));
    }
    if user
        .chars()
        .any(|c| c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "user name {user:?} contains whitespace, a control character or ':'"
        ));
    }
    Ok(())
}

/// The file's identity for change detection: modification time and size.
type Stamp = (Option<SystemTime>, u64);

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let meta = std::fs::metadata(path)?;
    Ok((meta.modified().ok(), meta.len()))
}

/// Reads and parses the file at `path`; errors name the file.
pub fn read_file(path: &Path) -> Result<UserDb, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read user file {}: {e}", path.display()))?;
    UserDb::parse(&text).map_err(|e| format!("user file {}: {e}", path.display()))
}

/// A user file that follows changes on disk: see the [module docs](self).
#[derive(Debug)]
pub struct UserFile {
    path: PathBuf,
    state: Mutex<(Stamp, Arc<UserDb>)>,
}

impl UserFile {
    /// Reads the file now; an unreadable or invalid file is an error naming it.
    pub fn open(path: impl Into<PathBuf>) -> Result<UserFile, String> {
        let path = path.into();
        let stamp =
            stamp(&path).map_err(|e| format!("cannot read user file {}: {e}", path.display()))?;
        let db = read_file(&path)?;
        Ok(UserFile {
            path,
            state: Mutex::new((stamp, Arc::new(db))),
        })
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current users, re-reading the file first if its modification time or size
    /// changed (one `stat`). A failed re-read keeps the previous users.
    pub fn current(&self) -> Arc<UserDb> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match stamp(&self.path) {
            Ok(now) if now != state.0 => match read_file(&self.path) {
                Ok(db) => {
                    hooks_api::log::info!(
                        "auth-file: reloaded {} ({} users)",
                        self.path.display(),
                        db.len()
                    );
                    *state = (now, Arc::new(db));
                }
                Err(e) => {
                    hooks_api::log::warn!("auth-file: {e}; keeping the previous users");
                    state.0 = now;
                }
            },
            Ok(_) => {}
            Err(e) => hooks_api::log::warn!(
                "auth-file: cannot stat {}: {e}; keeping the previous users",
                self.path.display()
            ),
        }
        state.1.clone()
    }

    /// Checks `password` for `user` against the current users. The lock is held for the
    /// `stat` (and a re-read) only, not during the verification.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        self.current().verify(user, password)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cheap Argon2id hash, for tests.
    pub(crate) fn cheap_argon2(password: &str) -> String {
        let params = argon2::Params::new(8, 1, 1, None).unwrap();
        let argon = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        argon
            .hash_password(password.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    #[test]
    fn parses_users_comments_and_blank_lines() {
        let a = cheap_argon2("secret");
        let b = bcrypt::hash("hunter2", 4).unwrap();
        let text = format!("# users\n\nalice:{a}\n  bob:{b}  \r\n");
        let db = UserDb::parse(&text).unwrap();
        assert_eq!(db.len(), 2);
        assert!(matches!(db.get("alice"), Some(StoredHash::Argon2(_))));
        assert!(matches!(db.get("bob"), Some(StoredHash::Bcrypt(_))));
    }

    #[test]
    fn errors_name_the_line() {
        let a = cheap_argon2("x");
        let cases = [
            ("alice".to_owned(), "line 1: expected user:hash"),
            (format!("# c\n:{a}"), "line 2: empty user name"),
            ("alice:plain".to_owned(), "line 1: unsupported hash"),
            (
                "alice:$argon2id$garbage".to_owned(),
                "line 1: invalid Argon2",
            ),
            ("alice:$2b$99$abc".to_owned(), "line 1: invalid bcrypt"),
            (
                format!("a:{a}\nb:{a}\na:{a}"),
                "line 3: user \"a\" is already defined on line 1",
            ),
            (format!("a b:{a}"), "line 1: user name \"a b\" contains"),
        ];
        for (text, expected) in cases {
            let err = UserDb::parse(&text).unwrap_err();
            assert!(err.starts_with(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn argon2_and_bcrypt_verify() {
        let a = StoredHash::parse(&cheap_argon2("secret")).unwrap();
        assert!(a.verify(b"secret"));
        assert!(!a.verify(b"Secret"));
        let b = StoredHash::parse(&bcrypt::hash("hunter2", 4).unwrap()).unwrap();
        assert!(b.verify(b"hunter2"));
        assert!(!b.verify(b"hunter3"));
        // $2y$ (PHP) hashes are the same algorithm.
        let y = bcrypt::hash("pw", 4).unwrap().replacen("$2b$", "$2y$", 1);
        assert!(StoredHash::parse(&y).unwrap().verify(b"pw"));
    }

    #[test]
    fn unknown_users_never_verify_and_use_a_dummy_like_the_file() {
        let db = UserDb::parse(&format!("alice:{}", cheap_argon2("pw"))).unwrap();
        assert!(db.verify("alice", b"pw"));
        assert!(!db.verify("mallory", b"pw"));
        let Some(StoredHash::Argon2(dummy)) = db.dummy.get() else {
            panic!("no dummy")
        };
        assert!(dummy.contains("m=8,t=1,p=1"), "{dummy}");
        let bdb = UserDb::parse(&format!("bob:{}", bcrypt::hash("pw", 5).unwrap())).unwrap();
        assert!(!bdb.verify("nobody", b"pw"));
        assert!(matches!(bdb.dummy.get(), Some(StoredHash::Bcrypt(h)) if h.starts_with("$2b$05$")));
    }

    #[test]
    fn the_file_is_reloaded_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        std::fs::write(&path, format!("alice:{}\n", cheap_argon2("one"))).unwrap();
        let file = UserFile::open(&path).unwrap();
        assert!(file.verify("alice", b"one"));
        // A different size is a change even within the file system's time granularity.
        std::fs::write(&path, format!("alice:{}\n# new\n", cheap_argon2("two"))).unwrap();
        assert!(file.verify("alice", b"two"));
        // A broken file keeps the previous users.
        std::fs::write(&path, "garbage").unwrap();
        assert!(file.verify("alice", b"two"));
        let err = UserFile::open(dir.path().join("missing")).unwrap_err();
        assert!(err.starts_with("cannot read user file "), "{err}");
    }
}
