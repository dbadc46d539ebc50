//! `impulse serve --tls-cert FILE --tls-key FILE`: STARTTLS as real clients use it — the
//! project's own `impulse send --tls-required --tls-ca`, swaks `--tls` and Python's smtplib
//! with a verifying SSL context. The certificate comes from a throw-away CA (rcgen).
//!
//! A missing swaks or python3 prints `SKIPPED: ...` and that part is skipped — unless `CI`
//! is set, where it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use impulse_test_support::cli::{self, Impulse, Serve};
use impulse_test_support::peers::program;
use impulse_test_support::tls::certs;

fn impulse() -> Impulse {
    impulse_test_support::impulse!()
}

/// A running `impulse serve` with STARTTLS (killed on drop), and its spool directory.
fn serve(dir: &Path, cert: &Path, key: &Path) -> (Serve, PathBuf) {
    let spool = dir.join("spool");
    let mut server = impulse().serve(|c| {
        c.args(["--listen", "127.0.0.1:0", "--hostname", "tls.test"])
            .arg("--spool")
            .arg(&spool)
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key);
    });
    server.drain_log();
    (server, spool)
}

/// `impulse spool show ID --spool DIR` as text.
fn show(spool: &Path, id: &str) -> String {
    let out = impulse()
        .command()
        .args(["spool", "show", id, "--spool"])
        .arg(spool)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The queue id at the end of a `250 2.0.0 Ok: queued as ID` somewhere in `text`.
fn queued_id(text: &str) -> String {
    let at = text.find("queued as ").expect(text) + "queued as ".len();
    text[at..at + 20].to_owned()
}

#[test]
fn impulse_send_delivers_over_starttls_verified_against_the_ca() {
    let certs = certs();
    let (server, spool) = serve(certs.dir.path(), &certs.cert_file, &certs.key_file);
    let file = certs.dir.path().join("message.eml");
    std::fs::write(&file, b"Subject: over TLS\r\n\r\nhello\r\n").unwrap();
    let out = impulse().send(
        &cli::to_server(
            &server.addr,
            &[
                "--data",
                file.to_str().unwrap(),
                "--tls-required",
                "--tls-ca",
                certs.ca_file.to_str().unwrap(),
            ],
        ),
        None,
    );
    let stdout = cli::succeeded(&out);
    assert!(
        stdout.contains("delivered: 250 2.0.0 Ok: queued as"),
        "{stdout}"
    );
    let envelope = show(&spool, &queued_id(&stdout));
    assert!(envelope.contains("TLSv1.3"), "{envelope}");
}

#[test]
fn swaks_starttls() {
    let Some(swaks) = program("swaks") else {
        return;
    };
    let certs = certs();
    let (server, spool) = serve(certs.dir.path(), &certs.cert_file, &certs.key_file);
    let out = Command::new(swaks)
        .args(["--server", &server.addr, "--from", "a@example.com"])
        .args(["--to", "b@example.com", "--helo", "client.test", "--tls"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "swaks --tls failed:\n{text}");
    assert!(text.contains("TLS started"), "{text}");
    assert!(text.contains("<~  250 2.0.0 Ok: queued as"), "{text}");
    let envelope = show(&spool, &queued_id(&text));
    assert!(envelope.contains("TLSv1."), "{envelope}");
}

#[test]
fn python_smtplib_starttls_with_a_verifying_context() {
    let Some(python) = program("python3") else {
        return;
    };
    let certs = certs();
    let (server, spool) = serve(certs.dir.path(), &certs.cert_file, &certs.key_file);
    let port = server.addr.rsplit(':').next().unwrap().to_owned();
    let script = r#"
import smtplib, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
s = smtplib.SMTP('localhost', port)
s.ehlo('client.test')
assert s.has_extn('starttls')
s.starttls(context=ctx)
s.ehlo('client.test')
assert not s.has_extn('starttls')
s.mail('a@example.com'); s.rcpt('b@example.com')
code, text = s.data(b'Subject: smtplib over TLS\r\n\r\nhi\r\n')
assert code == 250, (code, text)
print(text.decode())
print(s.sock.version())
s.quit()
"#;
    let out = Command::new(python)
        .args(["-c", script, &port])
        .arg(&certs.ca_file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("TLSv1.3"), "{text}");
    let envelope = show(&spool, &queued_id(&text));
    assert!(envelope.contains("TLSv1.3"), "{envelope}");
}
