//! `impulse plugin new NAME`: writes a ready plugin crate, so that an extension author goes
//! from nothing to a loaded `.so` hook with no edit:
//!
//! ```text
//! impulse plugin new my-plugin && cd my-plugin
//! cargo build --release
//! impulse plugin check target/release/libmy_plugin.so
//! impulse serve --plugin target/release/libmy_plugin.so
//! ```
//!
//! The crate: `Cargo.toml` (a `cdylib` + `rlib`, its own workspace, `hooks-api` by path from
//! the source tree this `impulse` was built from, or `--hooks-api`), the source tree's
//! `Cargo.lock` (the same dependency versions as the server: the ABI guard compares the
//! hooks-api version, the compiler and the target), `src/lib.rs` (a HELO hook that logs and
//! continues, the declaration and the `.so` entry points), `tests/load.rs` (loads the built
//! `.so` the way the server does) and a `README.md`.
//!
//! What it does not do: build the crate, or write into a directory that exists.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Writes the crate for plugin `name` into `dir` (default `./NAME`), against the hooks-api
/// crate at `hooks_api` (default: the source tree's).
pub fn run(name: &str, dir: Option<&Path>, hooks_api: Option<&Path>) -> ExitCode {
    match write(name, dir, hooks_api) {
        Ok(dir) => {
            let lib = name.replace('-', "_");
            println!("created plugin crate {name} in {}", dir.display());
            println!("  cd {}", dir.display());
            println!("  cargo build --release");
            println!("  impulse plugin check target/release/lib{lib}.so");
            println!("  impulse serve --plugin target/release/lib{lib}.so");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("impulse plugin new: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `name` can be a crate and plugin name: lower-case letters, digits and `-`,
/// starting with a letter, at most 64 characters.
fn valid_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.ends_with('-')
}

fn write(name: &str, dir: Option<&Path>, hooks_api: Option<&Path>) -> Result<PathBuf, String> {
    if !valid_name(name) {
        return Err(format!(
            "{name:?} is not a plugin name: use lower-case letters, digits and '-', starting \
             with a letter (for example my-plugin)"
        ));
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR"));
    let hooks_api = match hooks_api {
        Some(p) => p.to_path_buf(),
        None => source.join("hooks-api"),
    };
    if !hooks_api.join("Cargo.toml").is_file() {
        return Err(format!(
            "no hooks-api crate at {} (the source tree this impulse was built from): give its \
             path with --hooks-api",
            hooks_api.display()
        ));
    }
    let hooks_api = hooks_api
        .canonicalize()
        .map_err(|e| format!("{}: {e}", hooks_api.display()))?;
    let dir = dir.map_or_else(|| PathBuf::from(name), Path::to_path_buf);
    if dir.exists() {
        return Err(format!("{} exists already", dir.display()));
    }
    let files = [
        ("Cargo.toml", cargo_toml(name, &hooks_api)),
        ("src/lib.rs", lib_rs(name)),
        ("tests/load.rs", load_rs(name)),
        ("README.md", readme(name)),
        (".gitignore", "/target\n".to_owned()),
    ];
    for (file, text) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    // The server's own dependency versions (cargo drops what the plugin does not use).
    let lock = source.join("Cargo.lock");
    if lock.is_file() {
        std::fs::copy(&lock, dir.join("Cargo.lock"))
            .map_err(|e| format!("{}: {e}", lock.display()))?;
    }
    Ok(dir)
}

fn cargo_toml(name: &str, hooks_api: &Path) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
publish = false
description = "An Impulse plugin"

[lib]
# cdylib: the .so that `impulse serve --plugin` loads; rlib: for tests and static linking.
crate-type = ["cdylib", "rlib"]

[dependencies]
# The same hooks-api as the server that loads the plugin (the ABI guard checks it).
hooks-api = {{ path = "{}" }}

# A workspace of its own, wherever the crate sits.
[workspace]
"#,
        hooks_api.display()
    )
}

fn lib_rs(name: &str) -> String {
    format!(
        r#"//! {name}: an Impulse plugin. It logs every HELO/EHLO and lets the session go on.
//!
//! Build it with `cargo build --release`, check it with
//! `impulse plugin check target/release/lib{lib}.so`, and run it with
//! `impulse serve --plugin target/release/lib{lib}.so`. Its `[plugins.{name}]` table in the
//! server's configuration reaches `init` as `config`. Hooks run on the server's event loops:
//! never block in one (go pending instead; see docs/PLUGINS.md).

use hooks_api::{{Order, PluginConfig, Registrar, Verdict}};

/// The plugin's name, and its configuration table's.
pub const NAME: &str = "{name}";

fn init(r: &mut Registrar, _config: &PluginConfig) -> Result<(), String> {{
    r.on_helo(Order::Priority(0), |ctx| {{
        hooks_api::log::info!("{{NAME}}: {{}} greeted as {{}}", ctx.session().peer, ctx.name);
        Verdict::Continue
    }});
    Ok(())
}}

hooks_api::plugin!("{name}", env!("CARGO_PKG_VERSION"), init);

// The `.so` entry points. Keep them in a cdylib-only crate instead if this plugin is ever
// linked into a binary beside other plugins (docs/PLUGINS.md).
hooks_api::export_plugin!();
"#,
        lib = name.replace('-', "_")
    )
}

fn load_rs(name: &str) -> String {
    format!(
        r#"//! Loads the built `.so` the way `impulse serve --plugin` does and checks what it registers.

use hooks_api::{{HookPoint, Registry}};

/// `lib{lib}.so` as `cargo test` built it: beside this test binary in `target/<profile>/deps/`
/// (or in `target/<profile>/` after a `cargo build`).
fn plugin_so() -> std::path::PathBuf {{
    let exe = std::env::current_exe().expect("the test binary's path");
    let deps = exe.parent().expect("target/<profile>/deps");
    let file = format!(
        "{{}}{lib}{{}}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let beside = deps.join(&file);
    if beside.exists() {{
        return beside;
    }}
    deps.parent().expect("target/<profile>").join(file)
}}

#[test]
fn the_so_loads_and_registers_its_hook() {{
    let mut registry = Registry::new();
    // SAFETY: the library is this crate, built by this `cargo test`; its initialisers are
    // the plugin's own.
    let names = unsafe {{ registry.load_dynamic(plugin_so(), &hooks_api::toml::Table::new()) }}
        .expect("the plugin loads");
    assert_eq!(names, ["{name}"]);
    assert_eq!(registry.hook_count(HookPoint::Helo), 1);
}}
"#,
        lib = name.replace('-', "_")
    )
}

fn readme(name: &str) -> String {
    let lib = name.replace('-', "_");
    format!(
        "# {name}\n\nAn Impulse plugin, made by `impulse plugin new {name}`.\n\n```sh\n\
         cargo build --release\n\
         impulse plugin check target/release/lib{lib}.so\n\
         impulse serve --plugin target/release/lib{lib}.so\n\
         cargo test   # loads the built .so as the server does\n```\n\n\
         `src/lib.rs` registers the hooks; the server's `[plugins.{name}]` table is its\n\
         configuration. Rebuild it whenever the server is upgraded: a plugin built against\n\
         another hooks-api or compiler is refused at load, with a message that says so.\n"
    )
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn plugin_names_are_crate_names() {
        for ok in ["my-plugin", "a", "x1-2"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "My", "1x", "a_b", "a-", "a b", "../x", &"a".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
