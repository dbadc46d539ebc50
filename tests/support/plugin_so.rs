//! Shared by the first-party plugins' `.so` tests in `plugins/*/tests/` (included with
//! `#[path]`): builds one plugin's cdylib with cargo into `target/plugin-tests/first-party`
//! (a target directory of its own, so the outer `cargo test` lock is not contended) and
//! returns the library's path.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds `package`'s library and returns the path of `lib<lib_name>.so` (platform prefix and
/// suffix). Call it once per test binary (behind a `OnceLock`).
pub fn build_plugin_so(package: &str, lib_name: &str) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = workspace.join("target/plugin-tests/first-party");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .current_dir(&workspace)
        .args(["build", "--lib", "-p", package, "--target-dir"])
        .arg(&target)
        .status()
        .expect("run cargo");
    assert!(status.success(), "building the {package} plugin failed");
    let file = format!(
        "{}{lib_name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    target.join("debug").join(file)
}
