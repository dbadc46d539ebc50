//! `impulse plugin check FILE.so`: load a plugin the way the server would and report what it
//! is and what it registers, or why it cannot be loaded.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use impulse::hooks::{toml, AbiFacts, LoadError, Registry};

/// Runs the check and prints the report (stdout) or the error (stderr).
pub fn check(file: &Path, config: Option<&Path>) -> ExitCode {
    match report(file, config) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(text) => {
            eprint!("{text}");
            ExitCode::FAILURE
        }
    }
}

/// The plugins table from a config file: its `[plugins]` table when it has one, else the
/// whole file.
fn plugin_configs(config: Option<&Path>) -> Result<toml::Table, String> {
    let Some(path) = config else {
        return Ok(toml::Table::new());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("error: cannot read {}: {e}\n", path.display()))?;
    let mut table: toml::Table =
        toml::from_str(&text).map_err(|e| format!("error: {}: {e}\n", path.display()))?;
    match table.remove("plugins") {
        Some(toml::Value::Table(plugins)) => Ok(plugins),
        _ => Ok(table),
    }
}

fn abi_lines(out: &mut String, label: &str, facts: &AbiFacts) {
    let _ = writeln!(out, "{label}:");
    let _ = writeln!(out, "  abi version:       {}", facts.abi_version);
    if facts.abi_version != AbiFacts::host().abi_version {
        let _ = writeln!(
            out,
            "  (other fields not read: their layout depends on the ABI version)"
        );
        return;
    }
    let _ = writeln!(out, "  hooks-api version: {}", facts.hooks_api_version);
    let _ = writeln!(out, "  rustc:             {}", facts.rustc_version);
    let _ = writeln!(out, "  target:            {}", facts.target);
    let _ = writeln!(out, "  layout:            {:016x}", facts.layout);
}

/// The report, or the error text.
pub fn report(file: &Path, config: Option<&Path>) -> Result<String, String> {
    let configs = plugin_configs(config)?;
    let mut out = String::new();
    let _ = writeln!(out, "file: {}", file.display());
    let fail = |mut out: String, e: LoadError| {
        let _ = writeln!(out, "error: {e}");
        Err(out)
    };
    // SAFETY: the operator named this file as a plugin to check; loading it runs its
    // initialisers, as loading it in `impulse serve` would.
    let facts = match unsafe { impulse::hooks::loader::read_abi(file) } {
        Ok(facts) => facts,
        Err(e) => return fail(out, e),
    };
    abi_lines(&mut out, "plugin ABI", &facts);
    if let Err(e) = facts.check(file) {
        abi_lines(&mut out, "server ABI", &AbiFacts::host());
        return fail(out, e);
    }
    let mut registry = Registry::new();
    // SAFETY: as above; the ABI guard has passed.
    let names = match unsafe { registry.load_dynamic(file, &configs) } {
        Ok(names) => names,
        Err(e) => return fail(out, e),
    };
    for name in names {
        let Some(s) = registry.summary(&name) else {
            continue;
        };
        let _ = writeln!(out, "plugin {} {}", s.info.name, s.info.version);
        let _ = writeln!(out, "  hooks:");
        for (point, order) in &s.hooks {
            let _ = writeln!(out, "    {point:<16} {order}");
        }
        for ext in &s.extensions {
            let _ = writeln!(out, "  esmtp extension:   {ext}");
        }
        for (state, after) in &s.client_states {
            let _ = writeln!(out, "  client state:      {state} (after {after})");
        }
        for (id, class) in &s.classes {
            let _ = writeln!(out, "  bounce class:      {id} {class}");
        }
        if s.rules > 0 {
            let _ = writeln!(out, "  bounce rules:      {}", s.rules);
        }
    }
    registry.shutdown();
    Ok(out)
}
