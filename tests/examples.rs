//! Runs `examples/send_mail.rs` and `examples/custom_client_state.rs` against Impulse's own
//! server, started in-process on a free port, and checks what they print and what the server
//! spooled.
//!
//! Each example keeps its work in a `run` function and a thin `main`; this test includes the
//! example's source with `#[path]` and calls `run`, so it checks exactly the code
//! `cargo run --example` runs (cargo builds the example binaries themselves during
//! `cargo test`), without starting a nested cargo from inside a test.

use impulse::client::OutcomeKind;

use impulse_test_support::server::TestServer;

#[allow(dead_code)]
#[path = "../examples/send_mail.rs"]
mod send_mail;

#[allow(dead_code)]
#[path = "../examples/custom_client_state.rs"]
mod custom_client_state;

/// Every message in the server's spool: sender, recipients, stored text.
fn spooled(server: &TestServer) -> Vec<(String, Vec<String>, String)> {
    server
        .spool
        .list()
        .unwrap()
        .iter()
        .map(|e| {
            let text = String::from_utf8(server.stored(e.id)).unwrap();
            (e.sender.clone(), e.recipients.clone(), text)
        })
        .collect()
}

#[test]
fn send_mail_arguments_default_to_the_local_test_server() {
    let args = send_mail::Args::parse(std::iter::empty()).unwrap();
    assert_eq!(args.server, "127.0.0.1:2525".parse().unwrap());
    assert_eq!(args.from, "sender@example.org");
    assert_eq!(args.to, ["postmaster@example.com"]);
    let err = send_mail::Args::parse(["mx.example:25".to_owned()].into_iter()).unwrap_err();
    assert!(err.contains("not an address"), "{err}");
}

#[test]
fn send_mail_delivers_and_prints_each_recipient_with_its_class() {
    let server = TestServer::start();
    let args = send_mail::Args::parse(
        [
            server.addr.to_string(),
            "me@client.test".to_owned(),
            "you@mx.test".to_owned(),
            "bad address@mx.test".to_owned(),
        ]
        .into_iter(),
    )
    .unwrap();
    let mut out = Vec::new();
    let outcomes = send_mail::run(&args, &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert_eq!(outcomes.len(), 2);
    assert_eq!(outcomes[0].kind, OutcomeKind::Delivered);
    // The client refuses the second address itself, before a byte is sent for it.
    assert_eq!(outcomes[1].kind, OutcomeKind::Bounced);
    assert!(outcomes[1].local);

    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("connected to 127.0.0.1:"), "{out}");
    assert!(
        lines[1].starts_with("you@mx.test: Delivered 250 2.0.0 Ok: queued as "),
        "{out}"
    );
    assert!(
        lines[1].ends_with("(1 Undetermined, category Undetermined)"),
        "{out}"
    );
    assert!(
        lines[2].starts_with("bad address@mx.test: Bounced 5"),
        "{out}"
    );
    assert!(lines[2].ends_with("[decided by the client]"), "{out}");

    let stored = spooled(&server);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0, "me@client.test");
    assert_eq!(stored[0].1, ["you@mx.test"]);
    assert!(
        stored[0].2.ends_with(
            "Subject: Impulse send_mail example\r\n\r\nHello from examples/send_mail.rs.\r\n"
        ),
        "{}",
        stored[0].2
    );
    server.stop();
}

#[test]
fn custom_client_state_prints_its_chain_and_runs_noop_before_mail() {
    let server = TestServer::start();
    let mut out = Vec::new();
    let outcomes = custom_client_state::run(server.addr, &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(outcomes[0].is_delivered(), "{outcomes:?}\n{out}");

    let chain: Vec<&str> = out
        .lines()
        .skip_while(|l| *l != "chain:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(str::trim)
        .collect();
    assert_eq!(
        chain,
        [
            "0 connect built-in",
            "1 banner built-in",
            "2 ehlo built-in",
            "11 show-capabilities custom",
            "3 starttls built-in",
            "4 auth built-in",
            "12 noop-before-mail custom",
            "5 mail built-in",
            "6 rcpt built-in",
            "7 data built-in",
            "8 message built-in",
            "9 rset built-in",
            "10 quit built-in",
        ],
        "{out}"
    );
    assert!(
        out.contains("registered show-capabilities as state 11\n"),
        "{out}"
    );
    let notes: Vec<&str> = out
        .lines()
        .skip_while(|l| *l != "the states noted:")
        .skip(1)
        .take(2)
        .map(str::trim)
        .collect();
    assert!(
        notes[0].starts_with("capabilities: ") && notes[0].contains("PIPELINING"),
        "{out}"
    );
    assert!(notes[1].starts_with("NOOP: 250"), "{out}");
    assert!(
        out.contains("postmaster@example.com: Delivered 250 Ok: queued as "),
        "{out}"
    );
    assert_eq!(spooled(&server).len(), 1);
    server.stop();
}
