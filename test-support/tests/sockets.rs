//! The socket helpers on their own: a TestServer takes a message a LineClient sends, a
//! restart on the same spool finds it, the fake servers follow their scripts, and the CLI
//! runner's `succeeded` refuses a failed run.

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Output};

use impulse_test_support::cli;
use impulse_test_support::fake::{Fake, Script, Scripted};
use impulse_test_support::line::LineClient;
use impulse_test_support::server::TestServer;
use smtp_server::hooks_api::Registry;
use smtp_server::spool::Spool;

#[test]
fn a_test_server_spools_what_a_line_client_sends_and_restarts_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let server = TestServer::builder()
        .workers(2)
        .spool(spool.clone())
        .start();
    let mut c = server.connect();
    assert!(c.cmd("EHLO client.test").starts_with("250-mx.test\n"));
    assert!(c.cmd("MAIL FROM:<a@example.org>").starts_with("250 2.1.0"));
    assert!(c.cmd("RCPT TO:<b@example.com>").starts_with("250 2.1.5"));
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: t\r\n\r\nhi\r\n.\r\n");
    assert!(c.reply().starts_with("250 2.0.0 Ok: queued as "));
    assert!(c.cmd("QUIT").starts_with("221"));
    let ids = server.queued();
    assert_eq!(ids.len(), 1);
    assert!(server.stored(ids[0]).ends_with(b"\r\n\r\nhi\r\n"));

    server.stop();
    let again = TestServer::on(spool, Registry::new(), 1);
    assert_eq!(again.count(), 1, "the restarted server sees the message");
}

#[test]
fn a_fresh_spool_without_stock_has_an_empty_tmp_dir_and_goes_with_the_server() {
    let server = TestServer::builder().no_tmp_stock().start();
    let dir = server.spool.dir().to_path_buf();
    assert_eq!(std::fs::read_dir(dir.join("tmp")).unwrap().count(), 0);
    server.stop();
    assert!(!dir.exists(), "the temporary spool is removed");
}

#[test]
fn a_fake_runs_its_script_and_scripted_servers_count() {
    let fake = Fake::start(|p| {
        p.send(b"220 fake.test\r\n");
        p.expect("NOOP");
        p.send(b"250 ok\r\n");
        p.rest()
    });
    let mut c = LineClient::connect(fake.addr);
    assert_eq!(c.reply(), "220 fake.test");
    assert_eq!(c.cmd("NOOP"), "250 ok");
    c.send(b"bye\r\n");
    drop(c);
    assert_eq!(fake.join(), "bye\r\n");

    let scripted = Scripted::start(|_| Script::RefuseGreeting);
    let mut c = LineClient::connect(scripted.addr);
    assert!(c.reply().starts_with("554 5.3.2"));
    assert_eq!(c.cmd("NOOP"), "503 5.5.1 no service");
    assert_eq!(c.cmd("QUIT"), "221 2.0.0 bye");
    assert_eq!(c.rest(), "");
    assert_eq!(scripted.noops.load(std::sync::atomic::Ordering::SeqCst), 1);
}

fn output(code: i32, stdout: &str) -> Output {
    Output {
        status: ExitStatus::from_raw(code << 8),
        stdout: stdout.as_bytes().to_vec(),
        stderr: b"why".to_vec(),
    }
}

#[test]
fn succeeded_returns_stdout_of_a_run_that_succeeded() {
    assert_eq!(cli::succeeded(&output(0, "fine")), "fine");
}

#[test]
#[should_panic(expected = "half\nwhy")]
fn succeeded_refuses_a_failed_run() {
    cli::succeeded(&output(1, "half"));
}
