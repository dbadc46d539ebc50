//! Builds `auth-file` as a `.so` with cargo, loads it into a `Registry` with a
//! configuration table, and drives the AUTH chain as the server does: accepted, rejected,
//! `538` without TLS, and pending verdicts completed from the plugin's own thread.

use std::path::PathBuf;
use std::sync::{mpsc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use argon2::password_hash::{PasswordHasher, SaltString};
use hooks_api::smtp_proto::sasl::Secret;
use hooks_api::smtp_proto::{classify, Mechanism};
use hooks_api::toml;
use hooks_api::{
    Auth, Completion, Ctx, HookPoint, LoadError, Notes, Order, PendingSource, Registry,
    SessionInfo, TlsInfo, Verdict,
};

#[path = "../../../tests/support/load_so.rs"]
mod load_so;
use load_so::load_so;

#[path = "../../../tests/support/plugin_so.rs"]
mod build_so;

/// The plugin's `.so`, built once per test binary.
fn plugin_so() -> PathBuf {
    build_so::plugin_so("auth-file")
}

/// A cheap Argon2id hash (the parameters travel in the PHC string).
fn argon2id(password: &str) -> String {
    let params = argon2::Params::new(8, 1, 1, None).unwrap();
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    a.hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

struct Loaded {
    registry: Registry,
    _dir: tempfile::TempDir,
}

fn load(extra: &str) -> Loaded {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    let bob = bcrypt::hash("hunter2", 4).unwrap();
    std::fs::write(
        &users,
        format!("# test users\nalice:{}\nbob:{bob}\n", argon2id("secret")),
    )
    .unwrap();
    let text = format!(
        "[auth-file]\nfile = {:?}\n{extra}",
        users.display().to_string()
    );
    let configs: toml::Table = toml::from_str(&text).unwrap();
    let mut registry = Registry::with_classifier(Box::leak(Box::new(classify::Registry::new())));
    let names = load_so(&mut registry, plugin_so(), &configs).unwrap();
    assert_eq!(names, ["auth-file"]);
    Loaded {
        registry,
        _dir: dir,
    }
}

/// A pending source that records which thread delivered each completion. (Only whether it
/// is the dispatching thread: a thread the `.so` spawned has its name in the plugin's copy
/// of the standard library, not in ours.)
struct Recording {
    tx: mpsc::Sender<(u64, Verdict, ThreadId)>,
    rx: Mutex<mpsc::Receiver<(u64, Verdict, ThreadId)>>,
}

impl Recording {
    fn new() -> Self {
        let (tx, rx) = mpsc::channel();
        Recording {
            tx,
            rx: Mutex::new(rx),
        }
    }
}

impl PendingSource for Recording {
    fn completion(&self) -> (u64, Completion) {
        let tx = self.tx.clone();
        (
            7,
            Box::new(move |verdict| {
                let _ = tx.send((7, verdict, std::thread::current().id()));
            }),
        )
    }
}

/// Dispatches AUTH as the server does; returns the final verdict and, when the hook went
/// pending, whether another thread completed it.
fn auth(registry: &Registry, tls: bool, user: &str, password: &str) -> (Verdict, Option<bool>) {
    let mut session = SessionInfo::new(
        "192.0.2.1:40000".parse().unwrap(),
        "192.0.2.2:587".parse().unwrap(),
    );
    if tls {
        session.tls = Some(TlsInfo::new("TLSv1.3", "TLS13_AES_256_GCM_SHA384"));
    }
    let (mut c, mut t) = (Notes::new(), Notes::new());
    let password = Secret::new(password);
    let event = Auth {
        mechanism: &Mechanism::Plain,
        authcid: user,
        authzid: "",
        password: &password,
    };
    let source = Recording::new();
    let mut ctx = Ctx::new(&mut session, &mut c, &mut t, event).with_pending(&source);
    match registry.dispatch_auth(&mut ctx) {
        Verdict::Pending(pending) => {
            let (ticket, completed, thread) = source
                .rx
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(20))
                .expect("a completion from the plugin's thread");
            assert_eq!(ticket, pending.ticket());
            (
                registry.resume_auth(&mut ctx, pending, completed),
                Some(thread != std::thread::current().id()),
            )
        }
        other => (other, None),
    }
}

fn wire(v: &Verdict) -> String {
    String::from_utf8(v.reply().expect("a reply").to_bytes()).unwrap()
}

#[test]
fn good_credentials_are_accepted_from_the_plugins_thread() {
    let loaded = load("");
    let registry = &loaded.registry;
    assert_eq!(
        registry.chain(HookPoint::Auth),
        [("auth-file".to_owned(), Order::Priority(0))]
    );
    let (verdict, thread) = auth(registry, true, "alice", "secret");
    assert_eq!(verdict, Verdict::accept());
    assert_eq!(thread, Some(true), "pending, completed from another thread");
    let (verdict, _) = auth(registry, true, "bob", "hunter2");
    assert_eq!(verdict, Verdict::accept());
}

#[test]
fn bad_password_and_unknown_user_get_the_same_535() {
    let loaded = load("");
    for (user, password) in [("alice", "wrong"), ("bob", "secret"), ("mallory", "secret")] {
        let (verdict, thread) = auth(&loaded.registry, true, user, password);
        assert_eq!(thread, Some(true));
        assert!(matches!(verdict, Verdict::Reject(_)), "{verdict:?}");
        assert_eq!(
            wire(&verdict),
            "535 5.7.8 Authentication credentials invalid\r\n"
        );
    }
}

#[test]
fn tls_is_the_servers_decision() {
    // Without TLS the hook verifies: the server answered 538 already unless `[auth] plaintext`.
    let loaded = load("");
    let (verdict, _) = auth(&loaded.registry, false, "alice", "secret");
    assert_eq!(verdict, Verdict::accept());
}

#[test]
fn an_unreadable_user_file_fails_init_with_the_reason() {
    let configs: toml::Table =
        toml::from_str("[auth-file]\nfile = '/nonexistent/impulse/users'").unwrap();
    let mut registry = Registry::with_classifier(Box::leak(Box::new(classify::Registry::new())));
    let err = load_so(&mut registry, plugin_so(), &configs).unwrap_err();
    match &err {
        LoadError::InitFailed { plugin, reason } => {
            assert_eq!(plugin, "auth-file");
            assert!(
                reason.starts_with("cannot read user file /nonexistent/impulse/users: "),
                "{reason}"
            );
        }
        other => panic!("expected InitFailed, got {other:?}"),
    }
    let err = load_so(&mut registry, plugin_so(), &toml::Table::new()).unwrap_err();
    assert!(
        err.to_string().contains("[plugins.auth-file]") && err.to_string().contains("file"),
        "{err}"
    );
    assert!(registry.plugin_names().is_empty());
}
