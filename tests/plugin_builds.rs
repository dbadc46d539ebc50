//! The first-party plugins' `.so` files load whatever form of `cargo build` made them, run as
//! an operator would from the checkout: `-p` builds of each `.so` crate, then a workspace
//! build (which also builds `impulse`, whose plugin dependencies once stripped the `.so`
//! entry points through feature unification), then a workspace `--lib` build. After each,
//! every `.so` that build produced is accepted by `impulse plugin check` — the `impulse` of
//! the same build when it built one. And the `impulse` binary itself, which links the
//! plugins, carries no `.so` entry points.
//!
//! All builds share one debug target directory (`target/plugin-tests/first-party`, with the
//! other `.so` tests): the forms differ in what cargo selects and unifies, and each leaves its
//! own `.so` in `debug/`, which is checked before the next build runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use hooks_api::abi;

#[path = "support/plugin_so.rs"]
mod build_so;
use build_so::FIRST_PARTY;

/// A configuration for `impulse plugin check --config`: auth-file needs its user file and
/// suppression its list file; the other plugins start with their defaults.
struct CheckConfig {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl CheckConfig {
    fn new() -> CheckConfig {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users");
        std::fs::write(&users, "# no users yet\n").unwrap();
        let path = dir.path().join("impulse.toml");
        std::fs::write(
            &path,
            format!(
                "[plugins.auth-file]\nfile = {:?}\n[plugins.suppression]\nfile = {:?}\n",
                users.display().to_string(),
                dir.path().join("suppressed").display().to_string()
            ),
        )
        .unwrap();
        CheckConfig { path, _dir: dir }
    }
}

/// Runs `impulse plugin check --config CONFIG FILE` with the `impulse` at `impulse`, and
/// asserts that it accepts `plugin`'s `.so` in `dir` and reports that plugin.
fn assert_loads(impulse: &Path, config: &CheckConfig, dir: &Path, plugin: &str, form: &str) {
    let file = build_so::so_file(dir, plugin);
    let out = Command::new(impulse)
        .args(["plugin", "check", "--config"])
        .arg(&config.path)
        .arg(&file)
        .env("RUST_LOG", "off")
        .output()
        .expect("run impulse");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "after `{form}`, impulse plugin check refused {}:\n{stdout}{stderr}",
        file.display()
    );
    let abi = format!("  abi version:       {}\n", abi::ABI_VERSION);
    let named = format!("\nplugin {plugin} {}\n", env!("CARGO_PKG_VERSION"));
    assert!(
        stdout.starts_with(&format!("file: {}\nplugin ABI:\n{abi}", file.display()))
            && stdout.contains(&named),
        "after `{form}`: {stdout}"
    );
}

/// The symbols `nm ARGS FILE` lists as defined in `file`.
fn defined_symbols(file: &Path, args: &[&str]) -> Vec<String> {
    let out = Command::new("nm")
        .args(args)
        .arg("--defined-only")
        .arg(file)
        .output()
        .expect("run nm (binutils)");
    assert!(out.status.success(), "nm {}", file.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last().map(str::to_owned))
        .collect()
}

#[test]
fn every_form_of_cargo_build_makes_plugins_that_load() {
    let config = CheckConfig::new();
    let target = build_so::target_dir();
    let debug = target.join("debug");
    let this_impulse = Path::new(env!("CARGO_BIN_EXE_impulse"));

    for plugin in FIRST_PARTY {
        let package = build_so::so_package(plugin);
        build_so::cargo_build(&target, &["-p", &package]);
        let form = format!("cargo build -p {package}");
        assert_loads(this_impulse, &config, &debug, plugin, &form);
    }

    build_so::cargo_build(&target, &["--workspace"]);
    let built_impulse = debug.join(format!("impulse{}", std::env::consts::EXE_SUFFIX));
    for plugin in FIRST_PARTY {
        assert_loads(
            &built_impulse,
            &config,
            &debug,
            plugin,
            "cargo build --workspace",
        );
    }

    // The entry points are in the `.so` files, and in none of the plugins `impulse` links.
    let exported = defined_symbols(&build_so::so_file(&debug, "xclient"), &["-D"]);
    for symbol in [abi::ABI_SYMBOL, abi::ENTRY_SYMBOL] {
        assert!(exported.iter().any(|s| s == symbol), "{symbol} in the .so");
    }
    let linked = defined_symbols(&built_impulse, &[]);
    assert!(
        linked.iter().any(|s| s == "main"),
        "nm read impulse's symbols"
    );
    for symbol in [abi::ABI_SYMBOL, abi::ENTRY_SYMBOL] {
        assert!(!linked.iter().any(|s| s == symbol), "{symbol} in impulse");
    }

    build_so::cargo_build(&target, &["--workspace", "--lib"]);
    for plugin in FIRST_PARTY {
        assert_loads(
            this_impulse,
            &config,
            &debug,
            plugin,
            "cargo build --workspace --lib",
        );
    }
}
