//! The static path: linked as an rlib, `auth-file` is found through `inventory` by
//! `Registry::load_static`, and it is the only plugin there. Also runs `impulse-passwd`.

use std::io::Write;
use std::process::{Command, Stdio};

use hooks_api::smtp_proto::classify;
use hooks_api::toml;
use hooks_api::{HookPoint, Registry};
use impulse_plugin_auth_file as _;

#[test]
fn exactly_auth_file_is_linked() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, "# nobody yet\n").unwrap();
    let configs: toml::Table = toml::from_str(&format!(
        "[auth-file]\nfile = {:?}",
        users.display().to_string()
    ))
    .unwrap();
    let mut registry = Registry::with_classifier(Box::leak(Box::new(classify::Registry::new())));
    let names = registry.load_static(&configs).unwrap();
    assert_eq!(names, ["auth-file"]);
    assert_eq!(registry.plugin_names(), ["auth-file"]);
    assert_eq!(registry.hook_count(HookPoint::Auth), 1);
    assert_eq!(registry.plugins()[0].version, env!("CARGO_PKG_VERSION"));
}

#[test]
fn impulse_passwd_adds_and_replaces_users() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    let run = |user: &str, password: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_impulse-passwd"))
            .arg(&users)
            .arg(user)
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(password.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert!(run("alice", "one\n").0);
    assert!(run("bob", "two\n").0);
    assert!(run("alice", "three\n").0);
    let text = std::fs::read_to_string(&users).unwrap();
    let db = impulse_plugin_auth_file::UserDb::parse(&text).unwrap();
    assert_eq!(db.len(), 2);
    assert!(text.lines().next().unwrap().starts_with("alice:$argon2id$"));
    assert!(db.verify("alice", b"three"));
    assert!(!db.verify("alice", b"one"));
    assert!(db.verify("bob", b"two"));
    let (ok, err) = run("carol", "");
    assert!(!ok);
    assert!(err.contains("empty password"), "{err}");
    let (ok, err) = run("bad:user", "x\n");
    assert!(!ok);
    assert!(
        err.contains("contains whitespace, a control character or ':'"),
        "{err}"
    );
}
