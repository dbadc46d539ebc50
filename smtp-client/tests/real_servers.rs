//! The blocking driver over real sockets: against Postfix's `smtp-sink` (with its failure
//! injection) and against Impulse's own server (messages checked byte-exact in the spool).
//!
//! `smtp-sink` is looked up on `PATH`, then in `/usr/sbin` and `/usr/lib/postfix/sbin`.
//! Without it these tests print a loud SKIPPED and pass — unless `CI` is set, where they
//! fail.
// Socket tests run real peers on threads and wait on the real clock.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use smtp_client::driver::blocking::{Client, Connection, Options};
use smtp_client::smtp_proto::sasl::Secret;
use smtp_client::smtp_proto::Keyword;
use smtp_client::{Credentials, Error, Message, OutcomeKind, Policy};

use impulse_test_support::peers::Sink;

/// Opens a blocking connection to the sink.
fn connect(sink: &Sink, options: Options) -> Result<Connection, Error> {
    Client::connect(sink.addr, options)
}

fn message(n: usize, rcpts: &[&str]) -> Message {
    let body = format!("Subject: test {n}\r\n\r\n.leading dot\r\nbody of message {n}\r\n");
    Message::new("sender@client.test", rcpts.iter().copied(), body)
}

fn options() -> Options {
    let mut o = Options::new("client.test");
    o.session.policy.command_retries = 0;
    o
}

fn kinds(outcomes: &[smtp_client::RecipientOutcome]) -> Vec<OutcomeKind> {
    outcomes.iter().map(|o| o.kind).collect()
}

#[test]
fn sink_takes_many_messages_over_one_pipelined_connection() {
    let Some(sink) = Sink::start(&[]) else { return };
    let mut conn = connect(&sink, options()).unwrap();
    assert!(conn.session().capabilities().has(Keyword::Pipelining));
    let messages: Vec<Message> = (0..5)
        .map(|i| message(i, &["a@sink.test", "b@sink.test"]))
        .collect();
    let all = conn.send_all(&messages).unwrap();
    assert_eq!(all.len(), 5);
    for outcomes in &all {
        assert_eq!(kinds(outcomes), [OutcomeKind::Delivered; 2], "{outcomes:?}");
    }
    let one = conn.send(&message(9, &["c@sink.test"])).unwrap();
    assert!(one[0].is_delivered());
    conn.quit().unwrap();
}

#[test]
fn sink_hard_rcpt_reject_means_no_data_and_the_session_goes_on() {
    let Some(sink) = Sink::start(&["-f", "RCPT"]) else {
        return;
    };
    let mut conn = connect(&sink, options()).unwrap();
    for i in 0..2 {
        let outcomes = conn
            .send(&message(i, &["a@sink.test", "b@sink.test"]))
            .unwrap();
        assert_eq!(kinds(&outcomes), [OutcomeKind::Bounced; 2]);
        assert_eq!(outcomes[0].reply.code(), 500);
        assert!(!outcomes[0].local);
    }
    conn.quit().unwrap();
}

#[test]
fn sink_soft_mail_reject_is_deferred() {
    let Some(sink) = Sink::start(&["-r", "MAIL"]) else {
        return;
    };
    let mut o = options();
    o.session.policy.command_retries = 2;
    let mut conn = connect(&sink, o).unwrap();
    let outcomes = conn.send(&message(0, &["a@sink.test"])).unwrap();
    assert_eq!(kinds(&outcomes), [OutcomeKind::Deferred]);
    assert_eq!(outcomes[0].reply.code(), 450);
    assert_eq!(outcomes[0].class.id, 70, "Transient Failure");
    conn.quit().unwrap();
}

#[test]
fn sink_rejecting_the_dot_ends_the_session() {
    let Some(sink) = Sink::start(&["-f", "."]) else {
        return;
    };
    let mut conn = connect(&sink, options()).unwrap();
    let outcomes = conn.send(&message(0, &["a@sink.test"])).unwrap();
    assert_eq!(kinds(&outcomes), [OutcomeKind::Bounced]);
    assert!(
        conn.send(&message(1, &["a@sink.test"])).is_err(),
        "QUIT after a rejected message"
    );
    conn.quit().unwrap();
}

#[test]
fn sink_disconnect_and_421_are_deferred() {
    let Some(sink) = Sink::start(&["-q", "DATA"]) else {
        return;
    };
    let mut conn = connect(&sink, options()).unwrap();
    let outcomes = conn.send(&message(0, &["a@sink.test"])).unwrap();
    assert_eq!(kinds(&outcomes), [OutcomeKind::Deferred]);
    assert!(matches!(conn.quit(), Err(Error::PeerClosed)));

    let Some(sink) = Sink::start(&["-Q", "RCPT"]) else {
        return;
    };
    let mut conn = connect(&sink, options()).unwrap();
    let outcomes = conn.send(&message(0, &["a@sink.test"])).unwrap();
    assert_eq!(kinds(&outcomes), [OutcomeKind::Deferred]);
    assert_eq!(outcomes[0].reply.code(), 421);
}

#[test]
fn sink_helo_fallback_and_auth() {
    let Some(sink) = Sink::start(&["-f", "EHLO"]) else {
        return;
    };
    let mut conn = connect(&sink, options()).unwrap();
    assert!(
        conn.session().capabilities().is_empty(),
        "HELO: no extensions"
    );
    let outcomes = conn.send(&message(0, &["a@sink.test"])).unwrap();
    assert!(outcomes[0].is_delivered());
    conn.quit().unwrap();

    let Some(sink) = Sink::start(&[]) else { return };
    let mut o = options();
    o.session.credentials = Some(Credentials::Password {
        user: "user".into(),
        password: Secret::new("secret"),
    });
    o.session.policy.auth_without_tls = true;
    let mut conn = connect(&sink, o).unwrap();
    assert!(conn.send(&message(0, &["a@sink.test"])).unwrap()[0].is_delivered());
    conn.quit().unwrap();
}

#[test]
fn sink_slow_data_reply_times_out_as_a_deferral() {
    // Without pipelining (-p): in a flight, the replies before DATA's are late too, and
    // each waits with its own (MAIL/RCPT) timeout.
    let Some(sink) = Sink::start(&["-p", "-w", "3"]) else {
        return;
    };
    let mut o = options();
    o.session.policy = Policy {
        data_init_timeout: Duration::from_millis(500),
        ..o.session.policy
    };
    let mut conn = connect(&sink, o).unwrap();
    let started = Instant::now();
    let outcomes = conn.send(&message(0, &["a@sink.test"])).unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(kinds(&outcomes), [OutcomeKind::Deferred]);
    assert_eq!(outcomes[0].class.id, 24, "Timeout");
    assert!(matches!(conn.quit(), Err(Error::Timeout { .. })));
}

#[test]
fn tls_required_fails_clearly_at_connect() {
    let Some(sink) = Sink::start(&[]) else { return };
    let mut o = options();
    o.session.policy.tls = smtp_client::TlsMode::Required;
    let err = connect(&sink, o).unwrap_err();
    assert!(matches!(err, Error::TlsUnavailable(_)), "{err}");
    assert!(err.to_string().contains("TLS"));
}

mod impulse {
    use super::*;
    use impulse_test_support::server::TestServer;

    #[test]
    fn impulse_server_spools_what_the_client_sent_byte_exact() {
        let server = TestServer::builder().workers(2).start();
        let mut conn = Client::connect(server.addr, options()).unwrap();
        let bodies: Vec<Vec<u8>> = vec![
            b"Subject: one\r\n\r\n.starts with a dot\r\n..two dots\r\n.\r\nend\r\n".to_vec(),
            "Subject: caf\u{e9}\r\n\r\n8-bit body \u{e9}\r\n"
                .as_bytes()
                .to_vec(),
            b"Subject: three\r\n\r\nno final line ending".to_vec(),
        ];
        let messages: Vec<Message> = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| {
                Message::new(
                    format!("s{i}@client.test"),
                    ["r1@mx.test", "r2@mx.test"],
                    b.clone(),
                )
            })
            .collect();
        let all = conn.send_all(&messages).unwrap();
        for outcomes in &all {
            assert_eq!(kinds(outcomes), [OutcomeKind::Delivered; 2], "{outcomes:?}");
        }
        conn.quit().unwrap();

        let entries = server.spool.list().unwrap();
        assert_eq!(entries.len(), 3);
        for (i, body) in bodies.iter().enumerate() {
            let entry = entries
                .iter()
                .find(|e| e.sender == format!("s{i}@client.test"))
                .expect("message in the spool");
            assert_eq!(entry.recipients, ["r1@mx.test", "r2@mx.test"]);
            let stored = server.stored(entry.id);
            // The server adds its Received: header; the rest is what was sent, the missing
            // final CRLF of the last body added by the client.
            let mut expected = body.clone();
            if !expected.ends_with(b"\r\n") {
                expected.extend_from_slice(b"\r\n");
            }
            assert!(stored.starts_with(b"Received: "));
            assert!(
                stored.ends_with(&expected),
                "{}",
                String::from_utf8_lossy(&stored)
            );
            let header = &stored[..stored.len() - expected.len()];
            assert!(
                !String::from_utf8_lossy(header).contains("Subject:"),
                "only the Received header is added"
            );
        }
        server.stop();
    }
}
