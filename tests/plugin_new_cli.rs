//! `impulse plugin new NAME` as a new extension author uses it: the crate it writes builds
//! with no edit, `impulse plugin check` accepts the `.so`, the crate's own test loads it, and
//! `impulse serve --plugin` runs its hook.

#![allow(clippy::disallowed_methods)] // runs cargo and a server, as an author would

use std::path::Path;
use std::process::Command;

use impulse_test_support::line::LineClient;

fn cargo(args: &[&str], dir: &Path, target: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "cargo {args:?} in the new crate failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_new_plugin_builds_loads_and_runs_with_no_edit() {
    let impulse = impulse_test_support::impulse!();
    let dir = tempfile::tempdir().unwrap();
    let krate = dir.path().join("hello-plugin");
    let out = impulse
        .command()
        .args(["plugin", "new", "hello-plugin", "--dir"])
        .arg(&krate)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for file in [
        "Cargo.toml",
        "Cargo.lock",
        "src/lib.rs",
        "tests/load.rs",
        "README.md",
    ] {
        assert!(krate.join(file).is_file(), "{file} missing");
    }
    // A second time into the same place is refused, and a bad name too.
    let again = impulse
        .command()
        .args(["plugin", "new", "hello-plugin", "--dir"])
        .arg(&krate)
        .output()
        .unwrap();
    assert!(!again.status.success());
    let bad = impulse
        .command()
        .args(["plugin", "new", "Bad_Name"])
        .output()
        .unwrap();
    assert!(!bad.status.success());

    // One target directory for every run of this test: the dependencies build once.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-new");
    cargo(&["build"], &krate, &target);
    let so = target.join(format!(
        "debug/{}hello_plugin{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    let check = impulse
        .command()
        .args(["plugin", "check"])
        .arg(&so)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        report.contains("plugin hello-plugin 0.1.0") && report.contains("helo"),
        "{report}"
    );
    cargo(&["test"], &krate, &target);

    let spool = dir.path().join("spool");
    let mut serve = impulse.serve(|c| {
        c.args(["--listen", "127.0.0.1:0", "--spool"])
            .arg(&spool)
            .arg("--plugin")
            .arg(&so);
    });
    assert!(
        serve.startup.contains("plugins [hello-plugin]"),
        "{}",
        serve.startup
    );
    let mut client = LineClient::connect(serve.addr.parse().unwrap());
    assert!(client.reply().starts_with("220 "));
    assert!(client.cmd("EHLO author.test").starts_with("250"));
    assert!(client.cmd("QUIT").starts_with("221"));
    serve.terminate();
    assert!(serve.wait().success());
    let log = serve.rest_of_log();
    assert!(
        log.contains("hello-plugin: 127.0.0.1:") && log.contains("greeted as author.test"),
        "{log}"
    );
}
