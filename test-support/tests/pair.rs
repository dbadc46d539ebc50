//! The pair harness on its own: a transaction stored byte-exact, pipelining, a 4xx then a
//! retry, timeouts on both sides, held hook answers — all on the simulated clock.

use std::time::Duration;

use impulse_test_support::pair::{Answer, Pair, WALL_START};
use smtp_client::{Error, Message, OutcomeKind, SessionConfig, Stage};
use smtp_proto::{EnhancedStatus, Reply};
use smtp_server::factory::{CloseReason, Decision, Event, EventKind, FactoryConfig};
use smtp_server::spool::{Envelope, Recipient, SpoolIo};

/// A body with lines that need dot-stuffing on the way (and un-stuffing on arrival).
const BODY: &[u8] = b"Subject: pair\r\n\r\nhello\r\n.a leading dot\r\n..two dots\r\n.\r\nend\r\n";

fn message(to: &[&str]) -> Message {
    Message::new("alice@example.org", to.iter().copied(), BODY)
}

fn pair(to: &[&str]) -> Pair {
    Pair::new(
        FactoryConfig::new("mx.test"),
        SessionConfig::new("client.test"),
        message(to),
    )
}

/// A pair for one recipient with `answers` scripted for `kind`, connected.
fn connected(kind: EventKind, answers: impl IntoIterator<Item = Answer>) -> Pair {
    let mut pair = pair(&["bob@example.com"]);
    pair.script(kind, answers);
    pair.connect();
    pair
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `Received:` header the server wrote for the `n`th message of the latest connection.
fn received(pair: &Pair, n: usize) -> String {
    let headers: Vec<&String> = pair
        .transcript()
        .server_events()
        .iter()
        .filter_map(|(_, e)| match e {
            Event::MessageStart { received, .. } => Some(received),
            _ => None,
        })
        .collect();
    headers[n].clone()
}

#[test]
fn a_transaction_is_stored_byte_exact_with_its_envelope() {
    let mut pair = pair(&["bob@example.com", "carol@example.com"]);
    let outcomes = pair.send();
    let t = pair.transcript();
    assert_eq!(outcomes.len(), 2, "{}", t.text());
    assert!(outcomes.iter().all(|o| o.kind == OutcomeKind::Delivered));

    let stored = pair.stored();
    assert_eq!(stored.len(), 1);
    let s = &stored[0];
    let queued = format!("Ok: queued as {}", s.id);
    assert!(outcomes[0].reply.text().contains(&queued), "{}", t.text());
    let header = received(&pair, 0);
    assert!(header.starts_with("Received: from client.test"), "{header}");
    assert!(
        header.contains("Tue, 14 Nov 2023 22:13:20 +0000"),
        "the simulated wall clock dates it: {header}"
    );
    assert_eq!(text(&s.message), text(&[header.as_bytes(), BODY].concat()));
    assert_eq!(
        s.envelope,
        Envelope {
            sender: "alice@example.org".into(),
            mail_params: s.envelope.mail_params.clone(),
            recipients: vec![
                Recipient::new("bob@example.com"),
                Recipient::new("carol@example.com")
            ],
            peer: "192.0.2.1:40000".into(),
            helo: "client.test".into(),
            received: WALL_START.as_secs(),
            ..Envelope::default()
        }
    );
    assert!(
        s.envelope.mail_params.starts_with("SIZE="),
        "the client's SIZE: {:?}",
        s.envelope.mail_params
    );
    assert_eq!(t.close_reason(), Some(CloseReason::Quit));
    assert_eq!(t.client_done(), Some(None));
    assert!(
        t.text().starts_with(
            "S: 220 mx.test ESMTP Impulse\r\nC: EHLO client.test\r\nS: 250-mx.test\r\n"
        ),
        "{}",
        t.text()
    );
    assert_eq!(pair.elapsed(), Duration::ZERO, "driving takes no time");
}

#[test]
fn the_client_pipelines_mail_rcpt_and_data_and_the_server_answers_in_order() {
    let mut pair = pair(&["bob@example.com", "carol@example.com"]);
    pair.send();
    let params = pair.stored()[0].envelope.mail_params.clone();
    let t = pair.transcript();
    let envelope = t
        .reads()
        .iter()
        .position(|r| r.starts_with(b"MAIL FROM:"))
        .expect("a read starts with MAIL");
    assert_eq!(
        text(&t.reads()[envelope]),
        format!(
            "MAIL FROM:<alice@example.org> {params}\r\n\
             RCPT TO:<bob@example.com>\r\n\
             RCPT TO:<carol@example.com>\r\n\
             DATA\r\n"
        ),
        "one read holds the whole group"
    );
    let answer = t
        .writes()
        .iter()
        .find(|w| w.starts_with(b"250 2.1.0"))
        .expect("a write answers MAIL");
    let answer = text(answer);
    let codes: Vec<&str> = answer.lines().map(|l| &l[..3]).collect();
    assert_eq!(codes, ["250", "250", "250", "354"], "{}", t.text());
}

#[test]
fn without_pipelining_each_command_is_a_read_of_its_own() {
    let mut config = SessionConfig::new("client.test");
    config.policy.pipelining = false;
    let mut pair = Pair::new(
        FactoryConfig::new("mx.test"),
        config,
        message(&["bob@example.com"]),
    );
    assert!(pair.send()[0].is_delivered());
    let reads: Vec<String> = pair.transcript().reads().iter().map(|r| text(r)).collect();
    let params = &pair.stored()[0].envelope.mail_params;
    let mail = format!("MAIL FROM:<alice@example.org> {params}\r\n");
    assert!(reads.contains(&mail), "{reads:?}");
    assert!(reads.contains(&"RCPT TO:<bob@example.com>\r\n".to_owned()));
    assert!(reads.contains(&"DATA\r\n".to_owned()), "{reads:?}");
}

#[test]
fn a_4xx_to_rcpt_is_retried_in_a_new_session_that_succeeds() {
    let mut pair = pair(&["bob@example.com", "carol@example.com"]);
    let busy = Reply::new(450, Some(EnhancedStatus::new(4, 2, 0)), "mailbox busy");
    pair.script(EventKind::Rcpt, [Answer::Now(Decision::TempFail(busy))]);

    let first = pair.send();
    assert_eq!(first[0].kind, OutcomeKind::Deferred, "bob: {:?}", first[0]);
    assert_eq!(first[0].reply.code(), 450);
    assert_eq!(first[1].kind, OutcomeKind::Delivered, "carol");
    assert_eq!(pair.transcript().deferred(), ["bob@example.com"]);

    // Fifteen minutes later, a new session for the deferred recipient.
    pair.advance(Duration::from_secs(15 * 60));
    let again = pair.transcript().deferred();
    pair.set_message(Message::new("alice@example.org", again, BODY));
    let second = pair.send();
    assert_eq!(second.len(), 1);
    assert!(second[0].is_delivered(), "{}", pair.transcript().text());

    assert_eq!(pair.transcripts().len(), 2);
    let stored = pair.stored();
    let rcpts: Vec<Vec<String>> = stored
        .iter()
        .map(|s| {
            s.envelope
                .recipients
                .iter()
                .map(|r| r.address.clone())
                .collect()
        })
        .collect();
    assert_eq!(
        rcpts,
        [
            vec!["carol@example.com".to_owned()],
            vec!["bob@example.com".to_owned()]
        ]
    );
    assert_eq!(stored[1].envelope.received, WALL_START.as_secs() + 15 * 60);
    assert_eq!(
        stored[1].envelope.peer, "192.0.2.1:40001",
        "a new connection"
    );
}

#[test]
fn the_server_times_out_a_silent_client_with_421_on_the_simulated_clock() {
    let mut pair = pair(&["bob@example.com"]);
    pair.connect();
    pair.drive();
    assert!(pair.transcript().outcomes()[0].is_delivered());
    let start = pair.now();

    pair.advance(Duration::from_secs(299));
    assert_eq!(pair.transcript().server_closed(), None, "not yet");
    pair.advance(Duration::from_secs(1));
    let t = pair.transcript();
    assert_eq!(t.close_reason(), Some(CloseReason::Timeout));
    assert_eq!(
        text(t.writes().last().unwrap()),
        "421 4.4.2 mx.test Error: timeout exceeded\r\n"
    );
    assert_eq!(t.server_closed(), Some(start + Duration::from_secs(300)));
    assert!(
        matches!(t.client_done(), Some(Some(_))),
        "the client saw the close: {:?}",
        t.client_done()
    );
}

#[test]
fn the_client_times_out_a_server_that_never_answers_the_end_of_data() {
    // A spool commit that never returns: the end of data has no server-side deadline.
    let mut pair = connected(EventKind::MessageComplete, [Answer::Never]);
    pair.advance(Duration::from_secs(599));
    assert_eq!(pair.transcript().client_done(), None, "still waiting");
    pair.advance(Duration::from_secs(1));
    let t = pair.transcript();
    match t.client_done() {
        Some(Some(Error::Timeout { stage, after })) => {
            assert_eq!(*stage, Stage::Final);
            assert_eq!(*after, Duration::from_secs(600));
        }
        other => panic!(
            "expected a final-reply timeout, got {other:?}\n{}",
            t.text()
        ),
    }
    assert_eq!(t.outcomes()[0].kind, OutcomeKind::Deferred);
    assert_eq!(t.close_reason(), Some(CloseReason::PeerClosed));
    assert!(pair.stored().is_empty(), "nothing was committed");
}

#[test]
fn a_held_answer_arrives_on_the_simulated_clock() {
    // A slow commit: the spool answers after 30 s.
    let mut pair = connected(
        EventKind::MessageComplete,
        [Answer::After(Duration::from_secs(30), Decision::Continue)],
    );
    pair.drive();
    assert!(pair.transcript().outcomes().is_empty());
    let start = pair.now();
    pair.advance(Duration::from_secs(60));
    let t = pair.transcript();
    let (at, _) = t
        .client_events()
        .iter()
        .find(|(_, e)| matches!(e, smtp_client::Event::MessageDone { .. }))
        .expect("the message is done");
    assert_eq!(*at, start + Duration::from_secs(30));
    assert!(t.outcomes()[0].is_delivered());
    assert_eq!(pair.stored().len(), 1);
}

#[test]
fn a_hook_that_never_answers_gets_the_factorys_decision_timeout() {
    let mut pair = connected(EventKind::Rcpt, [Answer::Never]);
    pair.advance(Duration::from_secs(59));
    assert!(pair.transcript().outcomes().is_empty());
    pair.advance(Duration::from_secs(1));
    let t = pair.transcript();
    let outcome = t.outcomes()[0].clone();
    assert_eq!(outcome.kind, OutcomeKind::Deferred, "{}", t.text());
    assert_eq!(outcome.reply.code(), 451);
    assert!(t.server_events().iter().any(|(_, e)| matches!(
        e,
        Event::DecisionTimeout {
            kind: EventKind::Rcpt
        }
    )));
}

#[test]
fn a_null_sender_and_postmaster_are_stored_as_the_server_stores_them() {
    let mut pair = Pair::new(
        FactoryConfig::new("mx.test"),
        SessionConfig::new("client.test"),
        Message::new("", ["Postmaster"], BODY),
    );
    assert!(
        pair.send()[0].is_delivered(),
        "{}",
        pair.transcript().text()
    );
    let envelope = &pair.stored()[0].envelope;
    assert_eq!(envelope.sender, "");
    assert_eq!(envelope.recipients, [Recipient::new("Postmaster")]);
}

#[test]
fn a_message_refused_at_the_end_of_data_leaves_the_spool_empty() {
    let refused = Reply::new(554, Some(EnhancedStatus::new(5, 7, 1)), "Infected");
    let mut pair = connected(
        EventKind::MessageComplete,
        [Answer::Now(Decision::Reject(refused))],
    );
    pair.drive();
    let t = pair.transcript();
    assert_eq!(t.outcomes()[0].kind, OutcomeKind::Bounced, "{}", t.text());
    assert_eq!(t.outcomes()[0].reply.code(), 554);
    assert!(pair.stored().is_empty());
    let tmp = SpoolIo::read_dir(pair.fs(), std::path::Path::new("/spool/tmp")).unwrap();
    assert!(
        tmp.is_empty(),
        "the refused message's tmp file is gone: {tmp:?}"
    );
}

#[test]
fn an_answer_held_past_the_close_is_dropped_with_the_message() {
    // The commit would answer at 700 s; the client gives up at 600 s and closes.
    let mut pair = connected(
        EventKind::MessageComplete,
        [Answer::After(Duration::from_secs(700), Decision::Continue)],
    );
    pair.advance(Duration::from_secs(800));
    let t = pair.transcript();
    assert!(matches!(
        t.client_done(),
        Some(Some(Error::Timeout {
            stage: Stage::Final,
            ..
        }))
    ));
    assert_eq!(t.close_reason(), Some(CloseReason::PeerClosed));
    assert!(
        pair.stored().is_empty(),
        "the held commit went with the close"
    );
}
