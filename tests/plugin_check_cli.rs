//! `impulse plugin check` on first-party plugins built as `.so` files, run as an operator
//! would: the report names the plugin, its version, the ABI facts and its registrations;
//! a missing file is an error with a non-zero exit.

use std::path::PathBuf;

use hooks_api::abi;

#[path = "support/plugin_so.rs"]
mod build_so;

/// `plugin`'s `.so`. The first call builds bounce-rules', suppression's and xclient's in one
/// cargo run.
fn so(plugin: &str) -> PathBuf {
    build_so::plugin_sos(&["bounce-rules", "suppression", "xclient"]);
    build_so::plugin_so(plugin)
}

/// Runs `impulse plugin check ARGS`; returns success, stdout and stderr.
fn check(args: &[&std::ffi::OsStr]) -> (bool, String, String) {
    let out = impulse_test_support::impulse!()
        .command()
        .args(["plugin", "check"])
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .expect("run impulse");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn abi_block() -> String {
    format!(
        "plugin ABI:\n  abi version:       {}\n  hooks-api version: {}\n  rustc:             {}\n  target:            {}\n  layout:            {:016x}\n",
        abi::ABI_VERSION,
        abi::HOOKS_API_VERSION,
        abi::RUSTC_VERSION,
        abi::TARGET,
        hooks_api::entry::LAYOUT
    )
}

#[test]
fn bounce_rules_report_with_its_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("impulse.toml");
    std::fs::write(
        &config,
        r#"
[plugins.bounce-rules]
[[plugins.bounce-rules.class]]
id = 200
name = "Greylisted"
description = "The receiver greylisted the message."
category = "soft"
[[plugins.bounce-rules.rule]]
class = 200
priority = 900
codes = "450-451"
status = "4.7.*"
text = ["greylist", "try again later"]
"#,
    )
    .unwrap();
    let file = so("bounce-rules");
    let (ok, out, err) = check(&["--config".as_ref(), config.as_os_str(), file.as_os_str()]);
    assert!(ok, "{out}{err}");
    let expected = format!(
        "file: {}\n{}plugin bounce-rules {}\n  hooks:\n  bounce class:      200 Greylisted\n  bounce rules:      1\n",
        file.display(),
        abi_block(),
        env!("CARGO_PKG_VERSION"),
    );
    assert_eq!(out, expected);
}

#[test]
fn xclient_report_lists_its_extension_and_hook() {
    let file = so("xclient");
    let (ok, out, err) = check(&[file.as_os_str()]);
    assert!(ok, "{out}{err}");
    assert!(
        out.starts_with(&format!("file: {}\n{}", file.display(), abi_block())),
        "{out}"
    );
    assert!(
        out.ends_with(&format!(
            "plugin xclient {}\n  hooks:\n    mail             last\n  esmtp extension:   XCLIENT NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT\n",
            env!("CARGO_PKG_VERSION")
        )),
        "{out}"
    );
}

#[test]
fn suppression_report_lists_its_relay_side_hooks() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("impulse.toml");
    let list = dir.path().join("suppressed");
    std::fs::write(
        &config,
        format!(
            "[plugins.suppression]\nfile = {:?}\n",
            list.display().to_string()
        ),
    )
    .unwrap();
    let file = so("suppression");
    let (ok, out, err) = check(&["--config".as_ref(), config.as_os_str(), file.as_os_str()]);
    assert!(ok, "{out}{err}");
    assert!(
        out.ends_with(&format!(
            "plugin suppression {}\n  hooks:\n    attempt          first\n    delivery_outcome last\n",
            env!("CARGO_PKG_VERSION")
        )),
        "{out}"
    );
}

#[test]
fn an_invalid_config_is_reported_with_the_plugins_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("impulse.toml");
    std::fs::write(&config, "[plugins.xclient]\nauthorized = ['lan']\n").unwrap();
    let file = so("xclient");
    let (ok, out, err) = check(&["--config".as_ref(), config.as_os_str(), file.as_os_str()]);
    assert!(!ok);
    assert_eq!(out, "");
    assert!(
        err.ends_with("error: plugin xclient failed to initialise: [plugins.xclient] authorized[0]: \"lan\" is not an IP address or network\n"),
        "{err}"
    );
}

#[test]
fn a_missing_file_is_an_error() {
    let (ok, out, err) = check(&["/nonexistent/libnothing.so".as_ref()]);
    assert!(!ok);
    assert_eq!(out, "");
    assert_eq!(
        err,
        "file: /nonexistent/libnothing.so\nerror: plugin file /nonexistent/libnothing.so does not exist\n"
    );
}
