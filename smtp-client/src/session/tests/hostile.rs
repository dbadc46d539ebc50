//! A hostile server: huge replies, endless lines, garbage and surplus replies while
//! pipelining. The session stays bounded, classifies, and never panics.

use std::time::Duration;

use proptest::prelude::*;

use super::{kinds, msg, Fake, EHLO_PIPE, EHLO_PLAIN};
use crate::message::{Event, OutcomeKind};
use crate::session::SessionConfig;
use crate::Error;
use crate::StateMachine;
use smtp_proto::ReplyError;

fn cap(f: &Fake) -> usize {
    f.s.policy.limits.reply_bytes + 1
}

#[test]
fn a_100000_line_reply_is_refused_early_and_bounded() {
    let mut f = Fake::ready(EHLO_PLAIN);
    f.queue(msg(&["b@y.test"]));
    let line = "250-this is one of very many lines\r\n";
    let mut fed = 0;
    for _ in 0..100_000 {
        f.server(line);
        assert!(f.s.inbuf.len() <= cap(&f));
        fed += 1;
        if f.s.is_done() {
            break;
        }
    }
    assert!(
        fed <= 256,
        "refused after the line limit, not at the end ({fed})"
    );
    assert!(matches!(
        f.s.error(),
        Some(Error::InvalidReply(ReplyError::TooManyLines { .. }))
    ));
    let done = f.done();
    assert_eq!(kinds(&done[0]), [OutcomeKind::Deferred]);
    assert_eq!(done[0][0].reply.code(), 451);
    assert_eq!(done[0][0].reply.status().unwrap().to_string(), "4.5.0");
}

#[test]
fn a_1_mib_line_without_lf_is_refused_and_bounded() {
    let mut f = Fake::ready(EHLO_PLAIN);
    f.queue(msg(&["b@y.test"]));
    let mut huge = b"250 ".to_vec();
    huge.resize(1024 * 1024, b'x');
    f.server_bytes(&huge);
    assert!(f.s.inbuf.len() <= cap(&f));
    assert!(matches!(
        f.s.error(),
        Some(Error::InvalidReply(ReplyError::LineTooLong { .. }))
    ));
    assert_eq!(kinds(&f.done()[0]), [OutcomeKind::Deferred]);
    // And in small pieces.
    let mut f = Fake::ready(EHLO_PLAIN);
    f.queue(msg(&["b@y.test"]));
    f.server("250 ");
    for _ in 0..1024 {
        f.server_bytes(&[b'x'; 1024]);
        assert!(f.s.inbuf.len() <= cap(&f));
    }
    assert!(f.s.is_done());
}

#[test]
fn garbage_while_pipelining_is_classified() {
    let mut f = Fake::ready(EHLO_PIPE);
    f.queue(msg(&["b@y.test", "c@y.test"]));
    f.sent();
    f.server("250 ok\r\nHELLO I AM NOT SMTP\r\n");
    assert!(matches!(
        f.s.error(),
        Some(Error::InvalidReply(ReplyError::InvalidCode { .. }))
    ));
    assert_eq!(f.sent(), "", "nothing more is sent");
    assert_eq!(kinds(&f.done()[0]), [OutcomeKind::Deferred; 2]);
}

#[test]
fn surplus_replies_are_unsolicited() {
    // More replies than commands in the flight: caught before the body leaves.
    let mut f = Fake::ready(EHLO_PIPE);
    f.queue(msg(&["b@y.test"]));
    f.sent();
    f.server("250 ok\r\n250 ok\r\n354 go\r\n250 2.0.0 fake delivery\r\n");
    assert_eq!(f.s.error(), Some(&Error::Unsolicited));
    assert_eq!(
        f.sent(),
        "",
        "the body is not sent into a desynchronised stream"
    );
    assert_eq!(kinds(&f.done()[0]), [OutcomeKind::Deferred]);

    // A reply when none is due.
    let mut f = Fake::ready(EHLO_PLAIN);
    f.server("250 surprise\r\n");
    assert_eq!(f.s.error(), Some(&Error::Unsolicited));

    // A 421 when idle: the server is leaving.
    let mut f = Fake::ready(EHLO_PLAIN);
    f.server("421 4.3.2 shutting down\r\n");
    assert!(matches!(f.s.error(), Some(Error::Refused(r)) if r.code() == 421));
}

#[test]
fn a_421_mid_flight_defers_everything() {
    let mut f = Fake::ready(EHLO_PIPE);
    f.queue(msg(&["b@y.test"]));
    f.queue(msg(&["c@y.test"]));
    f.sent();
    f.server("421 4.7.0 too many connections\r\n");
    assert_eq!(f.sent(), "");
    let done = f.done();
    assert_eq!(done.len(), 2);
    assert!(done
        .iter()
        .all(|d| kinds(d) == [OutcomeKind::Deferred] && d[0].reply.code() == 421));
}

fn chunk() -> impl Strategy<Value = Vec<u8>> {
    let canned = prop::sample::select(vec![
        "220 mx ESMTP\r\n",
        "250-mx\r\n",
        "250-PIPELINING\r\n",
        "250-SIZE 100\r\n",
        "250-8BITMIME\r\n",
        "250-AUTH PLAIN LOGIN\r\n",
        "250-STARTTLS\r\n",
        "250-mx\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 STARTTLS\r\n",
        "250-CHUNKING\r\n",
        "220 go ahead\r\n",
        "454 4.7.0 no TLS now\r\n",
        "250 ok\r\n",
        "250\r\n",
        "354 go\r\n",
        "334 VXNlcm5hbWU6\r\n",
        "550 5.1.1 no\r\n",
        "451 4.3.0 later\r\n",
        "503 5.5.1 sequence\r\n",
        "502 no\r\n",
        "421 bye\r\n",
        "221 bye\r\n",
        "2",
        "\r\n",
        "\n",
        "25",
    ]);
    prop_oneof![
        4 => canned.prop_map(|s| s.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

#[derive(Debug, Clone)]
enum Step {
    Input(Vec<u8>),
    Tick(u64),
    Queue(u8),
    Close,
    Eof,
    /// The driver finished the TLS handshake it was asked for.
    TlsUp,
    /// The driver's TLS handshake failed.
    TlsFail,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => chunk().prop_map(Step::Input),
        1 => (0u64..700).prop_map(Step::Tick),
        1 => (0u8..4).prop_map(Step::Queue),
        1 => Just(Step::Close),
        1 => Just(Step::Eof),
        1 => Just(Step::TlsUp),
        1 => Just(Step::TlsFail),
    ]
}

/// Runs `steps` against `f` like a driver would (TLS only when the session asked for it)
/// and checks the bounds and that every message and the session end exactly once.
fn run(mut f: Fake, steps: Vec<Step>, max_expect: usize) -> Result<(), TestCaseError> {
    let mut queued = 0usize;
    let mut upgrade = false;
    for step in steps {
        match step {
            Step::Input(bytes) => f.server_bytes(&bytes),
            Step::Tick(secs) => f.advance(Duration::from_secs(secs)),
            Step::Queue(n) => {
                let rcpts: Vec<String> = (0..=n).map(|i| format!("r{i}@y.test")).collect();
                let m = crate::Message::new("a@x.test", rcpts, "hi\r\n");
                if f.s.queue_message(m, f.now).is_ok() {
                    queued += 1;
                }
                f.pump();
            }
            Step::Close => f.close(),
            Step::Eof => {
                f.s.handle_eof(f.now);
                f.pump();
            }
            Step::TlsUp if std::mem::take(&mut upgrade) => {
                f.s.handle_tls_established(f.now);
                f.pump();
            }
            Step::TlsFail if std::mem::take(&mut upgrade) => {
                f.s.handle_tls_failed("handshake failure", f.now);
                f.pump();
            }
            Step::TlsUp | Step::TlsFail => {}
        }
        upgrade |= f.s.poll_tls_upgrade();
        prop_assert!(f.s.inbuf.len() <= cap(&f));
        prop_assert!(f.s.expect.len() <= max_expect);
    }
    // Every message gets exactly one MessageDone once the session is over.
    f.s.handle_eof(f.now);
    f.pump();
    prop_assert!(f.s.is_done());
    let done = f
        .events
        .iter()
        .filter(|e| matches!(e, Event::MessageDone { .. }))
        .count();
    prop_assert_eq!(done, queued);
    let ends = f
        .events
        .iter()
        .filter(|e| matches!(e, Event::SessionDone { .. }))
        .count();
    prop_assert_eq!(ends, 1);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_replies_never_panic_and_stay_bounded(steps in prop::collection::vec(step(), 0..60)) {
        run(Fake::new(), steps, 4 + 2)?;
    }

    #[test]
    fn arbitrary_replies_with_starttls_and_bdat_never_panic(
        steps in prop::collection::vec(step(), 0..60),
        depth in 0u8..3,
    ) {
        let mut config = SessionConfig::new("client.test");
        config.tls_available = true;
        config.policy.chunking = true;
        config.policy.chunk_size = 2;
        // Greeted, STARTTLS and CHUNKING offered: the random part starts at the STARTTLS
        // reply (depth 0), at the EHLO reply under TLS (1), or with a message's MAIL, RCPTs
        // and BDAT chunks in flight under TLS (2).
        let mut all = vec![
            Step::Input(b"220 mx ESMTP\r\n".to_vec()),
            Step::Input(b"250-mx\r\n250-CHUNKING\r\n250 STARTTLS\r\n".to_vec()),
        ];
        if depth >= 1 {
            all.push(Step::Input(b"220 go ahead\r\n".to_vec()));
            all.push(Step::TlsUp);
        }
        if depth >= 2 {
            all.push(Step::Input(b"250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n".to_vec()));
            all.push(Step::Queue(1));
        }
        all.extend(steps);
        // MAIL, four RCPTs and two chunks of "hi\r\n" in one flight.
        run(Fake::with(StateMachine::builtin(), config), all, 1 + 4 + 2)?;
    }
}

#[test]
fn a_reply_ahead_of_its_command_is_unsolicited() {
    // Without PIPELINING the RCPT reply cannot arrive before RCPT was sent.
    let mut f = Fake::ready(EHLO_PLAIN);
    f.queue(msg(&["b@y.test"]));
    f.sent();
    f.server("250 ok\r\n250 2.1.5 injected\r\n");
    assert_eq!(f.s.error(), Some(&Error::Unsolicited));
    assert_eq!(f.sent(), "");
}
