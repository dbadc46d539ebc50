//! `impulse config check` and `impulse config show` as an operator runs them, and `impulse
//! serve` refusing what `check` refuses.

use std::path::Path;
use std::process::Output;

fn impulse(args: &[&str]) -> Output {
    impulse_test_support::impulse!()
        .command()
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run impulse")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `impulse config <command> --config <file>`.
fn config(command: &str, file: &str) -> Output {
    impulse(&["config", command, "--config", file])
}

/// What `out` printed, after asserting that it succeeded.
fn succeeded(out: &Output) -> String {
    assert!(out.status.success(), "{}", stderr(out));
    String::from_utf8(out.stdout.clone()).expect("UTF-8 on stdout")
}

/// What `out` wrote to stderr, after asserting that it refused its configuration (status 1);
/// `what` names the case in a failure.
fn refused(out: &Output, what: &str) -> String {
    assert_eq!(out.status.code(), Some(1), "{what}");
    stderr(out)
}

/// `impulse config show` of `file`, after checking that what it prints is itself a valid
/// configuration that `show` prints again the same (but for its first line).
fn show_round_trip(dir: &Path, file: &str) -> String {
    let shown = succeeded(&config("show", file));
    let again = write(dir, "shown.toml", &shown);
    let shown_again = succeeded(&config("show", &again));
    let body = |s: &str| s.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(body(&shown), body(&shown_again));
    shown
}

#[test]
fn check_accepts_the_example_and_the_defaults() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/impulse.example.toml");
    let text = succeeded(&config("check", example));
    assert!(
        text.contains("OK") && text.contains("bounce-rules"),
        "{text}"
    );
    succeeded(&impulse(&["config", "check"]));
}

#[test]
fn check_names_the_key_and_line_of_the_first_error() {
    let dir = tempfile::tempdir().unwrap();
    for (text, want) in [
        (
            "# c\n[timeouts]\ncommand = 0\n",
            "timeouts.command: must be > 0 seconds",
        ),
        (
            "workers = 5000\n",
            "line 1: workers: 5000 is more than 1024 threads",
        ),
        ("[limits]\nrecipent = 5\n", "recipent"),
        (
            "[plugins.no-such-plugin]\nx = 1\n",
            "[plugins.no-such-plugin]: no plugin",
        ),
        (
            "[tls]\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n",
            "tls.cert / tls.key",
        ),
    ] {
        let file = write(dir.path(), "bad.toml", text);
        let out = config("check", &file);
        let err = refused(&out, text);
        assert!(err.contains(want), "{text}: {err}");
        if want.starts_with("timeouts") {
            assert!(err.contains("bad.toml line 3"), "{err}");
        }
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn check_refuses_a_key_that_does_not_belong_to_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["mx.test".to_owned()]).unwrap();
    let cert_file = write(dir.path(), "cert.pem", &cert.cert.pem());
    let key_file = write(dir.path(), "key.pem", &cert.key_pair.serialize_pem());
    let other = write(
        dir.path(),
        "other.pem",
        &rcgen::KeyPair::generate().unwrap().serialize_pem(),
    );
    let text = |key: &str| {
        format!(
            "[tls]\ncert = \"{cert_file}\"\nkey = \"{key}\"\n[spool]\ndir = \"{}\"\n",
            dir.path().join("spool").display()
        )
    };
    let good = write(dir.path(), "good.toml", &text(&key_file));
    assert!(succeeded(&config("check", &good)).contains("STARTTLS"));
    assert!(!dir.path().join("spool").exists(), "check creates nothing");
    let bad = write(dir.path(), "bad.toml", &text(&other));
    let err = refused(&config("check", &bad), "another key");
    assert!(err.contains("tls.cert / tls.key"), "{err}");
}

#[test]
fn check_refuses_a_spool_that_is_not_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "plain-file", "x");
    let cfg = write(
        dir.path(),
        "c.toml",
        &format!("[spool]\ndir = \"{file}\"\n"),
    );
    let err = refused(&config("check", &cfg), &cfg);
    assert!(err.contains("spool.dir"), "{err}");
    let cfg = write(
        dir.path(),
        "c.toml",
        "[spool]\ndir = \"/nonexistent-parent/spool\"\n",
    );
    let err = refused(&config("check", &cfg), &cfg);
    assert!(err.contains("spool.dir"), "{err}");
}

#[test]
fn show_prints_every_default_and_reads_back_as_the_same_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "c.toml",
        "hostname = \"mx.example.org\"\n[limits]\nrecipients = 50\n",
    );
    let shown = show_round_trip(dir.path(), &cfg);
    for key in [
        "recipients = 50",
        "command = \"5m\"",
        "error_sleep = \"1s\"",
        "sync_threads = 16",
        "[tls]",
    ] {
        assert!(shown.contains(key), "{key} missing from\n{shown}");
    }
}

#[test]
fn serve_refuses_a_table_for_a_plugin_it_does_not_have() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "c.toml",
        &format!(
            "listen = [\"127.0.0.1:0\"]\n[spool]\ndir = \"{}\"\n[plugins.auth-fil]\nusers = \"x\"\n",
            dir.path().join("spool").display()
        ),
    );
    let err = refused(&impulse(&["serve", "--config", &cfg]), "serve");
    assert!(err.contains("[plugins.auth-fil]"), "{err}");
}

#[test]
fn check_covers_the_relay_table_and_show_prints_it() {
    let dir = tempfile::tempdir().unwrap();
    let recipients = write(
        dir.path(),
        "recipients",
        "alice@example.org\n@sub.example.org\n",
    );
    let good = format!(
        "[relay]\ndomains = [\"example.org\", \".example.org\"]\nrecipients = {recipients:?}\n\
         [relay.retry]\nintervals = [\"1s\", \"5m\"]\n\
         [[relay.route]]\ndomains = [\"example.org\", \".example.org\"]\nhosts = [\"127.0.0.1:2526\"]\n"
    );
    let cfg = write(dir.path(), "relay.toml", &good);
    let out = config("check", &cfg);
    let text = succeeded(&out);
    assert!(
        text.contains("relay on, domains [example.org, .example.org], 1 route"),
        "{text}"
    );
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));

    // Without recipient validation: a warning, and still OK.
    let unvalidated = write(
        dir.path(),
        "warn.toml",
        "[relay]\ndomains = [\"example.org\"]\n\
         [[relay.route]]\ndomains = [\"example.org\"]\nhosts = [\"127.0.0.1:2526\"]\n",
    );
    let out = config("check", &unvalidated);
    succeeded(&out);
    assert!(stderr(&out).contains("warning: relay.domains: \"example.org\" has neither"));

    for (text, want) in [
        (
            "[relay]\ndomains = [\"*\"]\n".to_owned(),
            "relay.toml line 2: relay.domains: \"*\" is not allowed",
        ),
        (
            "[relay]\ndomains = [\"example.org\"]\n".to_owned(),
            "relay.domains: \"example.org\" has no [[relay.route]]",
        ),
        (
            "[relay.retry]\nmax_age = \"5 days\"\n".to_owned(),
            "invalid duration",
        ),
        (
            "[[relay.route]]\ndomains = [\"a.test\"]\nhosts = [\"h\"]\ntls = \"sometimes\"\n"
                .to_owned(),
            "relay.toml line 4: relay.route[0].tls",
        ),
        (
            good.replace(&recipients, "/nonexistent/recipients"),
            "relay.recipients: cannot read /nonexistent/recipients",
        ),
    ] {
        let cfg = write(dir.path(), "relay.toml", &text);
        let err = refused(&config("check", &cfg), &text);
        assert!(err.contains(want), "{text}: {err}");
    }

    let cfg = write(dir.path(), "relay.toml", &good);
    let shown = show_round_trip(dir.path(), &cfg);
    for key in [
        "[relay]",
        "enabled = true",
        "networks = [\"127.0.0.0/8\", \"::1/128\"]",
        "connections_per_destination = 20",
        "down_time = \"5m\"",
        "[relay.retry]",
        "intervals = [\"1s\", \"5m\"]",
        "max_age = \"5d\"",
        "[relay.dns]",
        "timeout = \"5s\"",
        "[[relay.route]]",
    ] {
        assert!(shown.contains(key), "{key} missing from\n{shown}");
    }
}
