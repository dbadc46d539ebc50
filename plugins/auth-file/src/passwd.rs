//! Adding or changing a user: Argon2id hashing and an atomic rewrite of the user file
//! (what `impulse-passwd` does).

use std::io::Write;
use std::path::Path;

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;

use crate::users::check_user;

/// Hashes `password` with Argon2id and the crate's default parameters (19 MiB, 2 passes, 1
/// lane: the OWASP recommendation), as a PHC string.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// The file's text with `user`'s line set to `hash`: the first line for `user` is replaced
/// in place, or a line is appended. Comments and other users are kept as they are.
pub fn upsert_line(text: &str, user: &str, hash: &str) -> String {
    let mut out = String::with_capacity(text.len() + user.len() + hash.len() + 2);
    let mut done = false;
    for line in text.lines() {
        let trimmed = line.trim();
        let is_user =
            !trimmed.starts_with('#') && trimmed.split_once(':').is_some_and(|(u, _)| u == user);
        if is_user {
            if !done {
                out.push_str(&format!("{user}:{hash}\n"));
                done = true;
            }
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !done {
        out.push_str(&format!("{user}:{hash}\n"));
    }
    out
}

/// Sets `user`'s password hash in the file at `path`, creating the file (mode 0600) if
/// needed. The new contents are written to a temporary file in the same directory, synced,
/// and renamed over the old one, so readers see the old or the new file, never a mix.
pub fn set_user(path: &Path, user: &str, hash: &str) -> Result<(), String> {
    check_user(user)?;
    let shown = path.display();
    let old = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot read {shown}: {e}")),
    };
    let text = upsert_line(old.as_deref().unwrap_or(""), user, hash);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        if old.is_some() {
            let permissions = std::fs::metadata(path)?.permissions();
            file.set_permissions(permissions)?;
        }
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {shown}: {e}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::UserDb;

    #[test]
    fn upsert_replaces_or_appends() {
        let text = "# users\nalice:old\nbob:b\nalice:dup\n";
        assert_eq!(
            upsert_line(text, "alice", "new"),
            "# users\nalice:new\nbob:b\n"
        );
        assert_eq!(upsert_line(text, "carol", "c"), format!("{text}carol:c\n"));
        assert_eq!(upsert_line("", "x", "h"), "x:h\n");
        // A commented-out line is not the user.
        assert_eq!(
            upsert_line("#alice:old", "alice", "n"),
            "#alice:old\nalice:n\n"
        );
    }

    #[test]
    fn set_user_writes_a_verifiable_argon2id_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        let hash = hash_password("correct horse").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        set_user(&path, "alice", &hash).unwrap();
        set_user(&path, "bob", &hash).unwrap();
        let db = UserDb::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(db.len(), 2);
        assert!(db.verify("alice", b"correct horse"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(set_user(&path, "bad user", &hash).is_err());
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
