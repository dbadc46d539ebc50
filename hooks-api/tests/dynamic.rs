//! Builds `tests/plugins/test-plugin` with cargo, loads the `.so` for real and checks the
//! contract end to end: hooks run and reject as configured, ordering holds across host and
//! plugin, a panicking hook is contained, a pending verdict completes from the plugin's
//! thread, and every load failure is the typed error an operator should see.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use hooks_api::smtp_proto::{classify, Capabilities, ForwardPath, Params};
use hooks_api::toml;
use hooks_api::{
    AbiFacts, ChannelPending, ClientArgs, ClientContext, Ctx, Envelope, LoadError, Notes, Order,
    PluginConfig, PluginDecl, Rcpt, Registrar, Registry, SessionInfo, StateAction, Verdict,
};

#[path = "../../tests/support/load_so.rs"]
mod load_so;
use load_so::load_so;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Builds the test plugin (once per variant per test binary) and returns the `.so` path.
fn build(variant: &'static str) -> PathBuf {
    static GOOD: OnceLock<PathBuf> = OnceLock::new();
    static BAD: OnceLock<PathBuf> = OnceLock::new();
    let cell = if variant == "bad-abi" { &BAD } else { &GOOD };
    cell.get_or_init(|| {
        let root = workspace();
        let plugin_dir = root.join("tests/plugins/test-plugin");
        // Build against the host's lock file, so both sides use the same dependency versions.
        std::fs::copy(root.join("Cargo.lock"), plugin_dir.join("Cargo.lock")).unwrap();
        let target_dir = root.join("target/plugin-tests").join(variant);
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(&root)
            .arg("build")
            .arg("--manifest-path")
            .arg(plugin_dir.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir);
        if variant == "bad-abi" {
            cmd.args(["--features", "bad-abi"]);
        }
        let status = cmd.status().expect("run cargo");
        assert!(status.success(), "building the test plugin failed");
        let file = format!(
            "{}test_plugin{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        );
        target_dir.join("debug").join(file)
    })
    .clone()
}

fn configs(text: &str) -> toml::Table {
    toml::from_str(text).unwrap()
}

fn fresh_registry() -> Registry {
    Registry::with_classifier(Box::leak(Box::new(classify::Registry::new())))
}

fn loaded(reject: &str) -> Registry {
    let mut registry = fresh_registry();
    let names = load_so(
        &mut registry,
        build("good"),
        &configs(&format!("[test-plugin]\nreject = '{reject}'")),
    )
    .unwrap();
    assert_eq!(names, ["test-plugin"]);
    registry
}

fn session() -> SessionInfo {
    SessionInfo::new(
        "192.0.2.1:4000".parse().unwrap(),
        "192.0.2.2:25".parse().unwrap(),
    )
}

/// Runs the RCPT chain for `to`, waiting for pending verdicts; returns the verdict and the
/// trace note.
fn rcpt(registry: &Registry, to: &str) -> (Verdict, Option<String>) {
    let envelope = Envelope::new(hooks_api::smtp_proto::Path::Null, Params::default());
    let recipient = ForwardPath::parse(to.as_bytes(), &Default::default())
        .unwrap()
        .into_owned();
    let params = Params::default();
    let source = ChannelPending::new();
    let (mut s, mut c, mut t) = (session(), Notes::new(), Notes::new());
    let event = Rcpt {
        envelope: &envelope,
        recipient: &recipient,
        params: &params,
    };
    let mut ctx = Ctx::new(&mut s, &mut c, &mut t, event).with_pending(&source);
    let mut verdict = registry.dispatch_rcpt(&mut ctx);
    while let Verdict::Pending(pending) = verdict {
        let (ticket, completed) = source
            .wait(Duration::from_secs(10))
            .expect("completion from the plugin's thread");
        assert_eq!(ticket, pending.ticket());
        verdict = registry.resume_rcpt(&mut ctx, pending, completed);
    }
    (verdict, t.get("test-plugin.trace").map(str::to_owned))
}

fn accepted_text(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Accept(Some(reply)) => reply.text(),
        other => panic!("expected an accept, got {other:?}"),
    }
}

#[test]
fn hooks_run_in_order_and_reject_as_configured() {
    let registry = loaded("blocked@example.com");
    let (v, _) = rcpt(&registry, "<alice@example.com>");
    assert_eq!(accepted_text(&v), "first,p10,p20,p30,last");
    let (v, trace) = rcpt(&registry, "<blocked@example.com>");
    assert!(
        matches!(&v, Verdict::Reject(r) if r.code() == 550 && r.text() == "Rejected by test-plugin")
    );
    assert_eq!(trace.as_deref(), Some("first,p10"));
}

#[test]
fn ordering_holds_across_host_and_plugin_hooks() {
    fn host(r: &mut Registrar, _: &PluginConfig) -> Result<(), String> {
        for (order, tag) in [
            (Order::Priority(15), "host15"),
            (Order::First, "host-first"),
            (Order::Priority(30), "host30"),
        ] {
            r.on_rcpt(order, move |ctx| {
                let notes = ctx.txn_notes();
                let value = format!("{},{tag}", notes.get("test-plugin.trace").unwrap_or("-"));
                notes.set("test-plugin.trace", value);
                Verdict::Continue
            });
        }
        Ok(())
    }
    static HOST: PluginDecl = PluginDecl {
        name: "host",
        version: "0",
        init: host,
        shutdown: None,
    };
    let mut registry = fresh_registry();
    registry.add(&HOST, &toml::Table::new()).unwrap();
    load_so(&mut registry, build("good"), &toml::Table::new()).unwrap();
    assert_eq!(registry.plugin_names(), ["host", "test-plugin"]);
    let (v, _) = rcpt(&registry, "<alice@example.com>");
    // First hooks in registration order (host first), then priorities (ties: host's 30
    // registered before the plugin's), then last.
    assert_eq!(
        accepted_text(&v),
        "-,host-first,first,p10,host15,p20,host30,p30,last"
    );
}

#[test]
fn a_panicking_hook_is_contained() {
    let registry = loaded("");
    let (v, trace) = rcpt(&registry, "<panic@example.com>");
    assert!(matches!(&v, Verdict::TempFail(r) if r.code() == 451
        && r.status().map(|s| s.to_string()).as_deref() == Some("4.3.0")));
    assert_eq!(trace.as_deref(), Some("first,p10,p20"));
    let (v, _) = rcpt(&registry, "<bob@example.com>");
    assert_eq!(accepted_text(&v), "first,p10,p20,p30,last");
    let (v, _) = rcpt(&registry, "<panic@example.com>");
    assert!(matches!(&v, Verdict::TempFail(r) if r.code() == 451));
}

#[test]
fn a_pending_verdict_completes_from_the_plugins_thread() {
    let registry = loaded("");
    let (v, _) = rcpt(&registry, "<slow@example.com>");
    assert_eq!(accepted_text(&v), "first,p10,p20,p30,last");
}

struct Cx(Capabilities, ClientArgs, ClientArgs);

impl ClientContext for Cx {
    fn capabilities(&self) -> &Capabilities {
        &self.0
    }
    fn session_args(&mut self) -> &mut ClientArgs {
        &mut self.1
    }
    fn message_args(&mut self) -> &mut ClientArgs {
        &mut self.2
    }
    fn peer(&self) -> Option<std::net::SocketAddr> {
        None
    }
    fn peer_name(&self) -> Option<&str> {
        Some("mx.example.com")
    }
    fn tls_active(&self) -> bool {
        false
    }
}

#[test]
fn extension_client_state_and_classes_reach_the_host() {
    let classifier: &'static classify::Registry = Box::leak(Box::new(classify::Registry::new()));
    let mut registry = Registry::with_classifier(classifier);
    load_so(&mut registry, build("good"), &toml::Table::new()).unwrap();

    let ext = registry.extension("xtest").expect("XTEST registered");
    assert_eq!(ext.extension.ehlo_line(), "XTEST ECHO");
    assert_eq!(ext.extension.mail_params(), ["XTEST-ID"]);
    let (mut s, mut c, mut t) = (session(), Notes::new(), Notes::new());
    let mut ctx = Ctx::new(
        &mut s,
        &mut c,
        &mut t,
        hooks_api::Command::new("XTEST", "ping"),
    );
    assert!(
        matches!(ext.call(&mut ctx, "ping"), Verdict::Accept(Some(r)) if r.text() == "xtest ping")
    );

    let states = registry.client_states();
    assert_eq!(states.len(), 1);
    let mut state = states[0].create();
    let mut caps = Capabilities::new();
    caps.insert_line("XTEST");
    let mut cx = Cx(caps, ClientArgs::new(), ClientArgs::new());
    assert_eq!(
        state.enter(&mut cx),
        StateAction::Send(b"XTEST hello\r\n".to_vec())
    );

    assert_eq!(
        classifier
            .classify_reply_text("550 5.0.0 test-plugin-bounce")
            .id,
        250
    );
    let summary = registry.summary("test-plugin").unwrap();
    assert_eq!(summary.hooks.len(), 5);
    assert_eq!(summary.classes, [(250, "Test Class".to_owned())]);
    assert_eq!(
        summary.client_states,
        [("xtest-state".to_owned(), "ehlo".to_owned())]
    );
    registry.shutdown();
}

#[test]
fn abi_facts_match_the_host() {
    assert_eq!(
        // SAFETY: the test plugin is built from this workspace.
        unsafe { hooks_api::loader::read_abi(&build("good")) }.unwrap(),
        AbiFacts::host()
    );
}

#[test]
fn a_wrong_abi_version_is_refused() {
    let path = build("bad-abi");
    let err = load_so(&mut fresh_registry(), &path, &toml::Table::new()).unwrap_err();
    assert_eq!(
        err,
        LoadError::AbiMismatch {
            path: path.clone(),
            field: "abi_version",
            expected: hooks_api::abi::ABI_VERSION.to_string(),
            found: "999".to_owned(),
        }
    );
    assert!(err.to_string().contains("abi_version is \"999\""), "{err}");
}

#[test]
fn missing_files_and_non_plugins_are_typed_errors() {
    let missing = workspace().join("target/no-such-plugin.so");
    assert_eq!(
        load_so(&mut fresh_registry(), &missing, &toml::Table::new()).unwrap_err(),
        LoadError::FileMissing { path: missing }
    );

    let not_a_library = workspace().join("Cargo.toml");
    assert!(matches!(
        load_so(&mut fresh_registry(), &not_a_library, &toml::Table::new()),
        Err(LoadError::Open { .. })
    ));

    if let Some(libc) = libc_path() {
        assert_eq!(
            load_so(&mut fresh_registry(), &libc, &toml::Table::new()).unwrap_err(),
            LoadError::NotAPlugin {
                path: libc,
                symbol: "impulse_plugin_abi"
            }
        );
    }
}

/// The C library this process runs with, from `/proc/self/maps`.
fn libc_path() -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| {
            Path::new(p)
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("libc.so"))
        })
        .map(PathBuf::from)
}

#[test]
fn init_failures_panics_and_duplicates_are_typed_errors() {
    let path = build("good");
    assert_eq!(
        load_so(
            &mut fresh_registry(),
            &path,
            &configs("[test-plugin]\nfail = true")
        )
        .unwrap_err(),
        LoadError::InitFailed {
            plugin: "test-plugin".to_owned(),
            reason: "configured to fail".to_owned()
        }
    );
    assert_eq!(
        load_so(
            &mut fresh_registry(),
            &path,
            &configs("[test-plugin]\npanic_in_init = true")
        )
        .unwrap_err(),
        LoadError::EntryPanicked {
            plugin: "test-plugin".to_owned(),
            message: "configured to panic".to_owned()
        }
    );
    let mut registry = fresh_registry();
    load_so(&mut registry, &path, &toml::Table::new()).unwrap();
    assert_eq!(
        load_so(&mut registry, &path, &toml::Table::new()).unwrap_err(),
        LoadError::Duplicate {
            name: "test-plugin".to_owned()
        }
    );
    assert_eq!(registry.plugin_names(), ["test-plugin"]);
}
