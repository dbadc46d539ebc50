//! Shared by the tests that load first-party plugins from their `.so` files (the root
//! `tests/plugin_*.rs` and `plugins/*/tests/`, which include it with `#[path]`): runs
//! `cargo build` of the workspace's plugin `.so` crates (`plugins/NAME-so`) the way an
//! operator would, into `target/plugin-tests/first-party` (a target directory of its own, so
//! the outer `cargo test` lock is not contended), and names the files it produces.
//!
//! What it does not do: load the libraries (each test does, through `Registry::load_dynamic`
//! or `impulse plugin check`), or build the out-of-workspace test plugin
//! (`tests/plugins/test-plugin`, built by the tests that use it).
#![allow(dead_code)] // each including test binary uses its own part

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The first-party plugins that ship a `.so`, by plugin name (`plugins/NAME-so`).
pub const FIRST_PARTY: [&str; 5] = [
    "auth-file",
    "bounce-rules",
    "client-xclient",
    "suppression",
    "xclient",
];

/// The workspace root: the nearest directory above the including crate whose manifest has a
/// `[workspace]` table.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|manifest| manifest.lines().any(|l| l.trim() == "[workspace]"))
        })
        .expect("a workspace manifest above CARGO_MANIFEST_DIR")
        .to_owned()
}

/// The target directory the plugin `.so` tests build into.
pub fn target_dir() -> PathBuf {
    workspace_root().join("target/plugin-tests/first-party")
}

/// The cargo package that builds `plugin`'s `.so`: `impulse-plugin-NAME-so`.
pub fn so_package(plugin: &str) -> String {
    format!("impulse-plugin-{plugin}-so")
}

/// The file `plugin`'s `.so` crate builds in `dir` (a profile directory such as
/// `target/debug`): `libimpulse_plugin_NAME.so`, with the platform's prefix and suffix.
pub fn so_file(dir: &Path, plugin: &str) -> PathBuf {
    dir.join(format!(
        "{}impulse_plugin_{}{}",
        std::env::consts::DLL_PREFIX,
        plugin.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    ))
}

/// Runs `cargo build ARGS --target-dir TARGET` in the workspace root and asserts it
/// succeeded.
pub fn cargo_build(target: &Path, args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .current_dir(workspace_root())
        .arg("build")
        .args(args)
        .arg("--target-dir")
        .arg(target)
        .status()
        .expect("run cargo");
    assert!(status.success(), "cargo build {} failed", args.join(" "));
}

/// Builds the `.so` of each of `plugins` not yet built by this test binary, all in one
/// `cargo build -p impulse-plugin-NAME-so ...` (debug), and returns their paths in order.
pub fn plugin_sos(plugins: &[&str]) -> Vec<PathBuf> {
    static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let target = target_dir();
    let missing: Vec<String> = plugins
        .iter()
        .filter(|p| !built.contains_key(**p))
        .map(|p| so_package(p))
        .collect();
    if !missing.is_empty() {
        let args: Vec<&str> = missing.iter().flat_map(|p| ["-p", p.as_str()]).collect();
        cargo_build(&target, &args);
        for plugin in plugins {
            built.insert((*plugin).to_owned(), so_file(&target.join("debug"), plugin));
        }
    }
    plugins.iter().map(|p| built[*p].clone()).collect()
}

/// Builds `plugin`'s `.so` (once per test binary) and returns its path.
pub fn plugin_so(plugin: &str) -> PathBuf {
    plugin_sos(&[plugin]).remove(0)
}
