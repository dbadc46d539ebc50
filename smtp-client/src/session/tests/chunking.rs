//! BDAT (CHUNKING): lockstep and pipelined, chunk sizes, refusals mid-way and at the end.

use super::{kinds, msg, Fake};
use crate::message::{Message, OutcomeKind};
use crate::policy::Policy;
use crate::session::prepare::crlf_normalise;
use crate::session::SessionConfig;
use crate::StateMachine;

use OutcomeKind::{Bounced, Deferred, Delivered};

const EHLO_CHUNK: &str = "250-mx.test\r\n250-CHUNKING\r\n250-8BITMIME\r\n250 SIZE 1000\r\n";
const EHLO_CHUNK_PIPE: &str = "250-mx.test\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 SIZE 1000\r\n";

fn chunking(ehlo: &str, chunk_size: usize) -> Fake {
    let mut config = SessionConfig::new("client.test");
    config.policy = Policy {
        chunking: true,
        chunk_size,
        ..Policy::default()
    };
    let mut f = Fake::with(StateMachine::builtin(), config);
    f.setup(ehlo);
    f
}

#[test]
fn bdat_lockstep_in_chunks_without_dot_stuffing() {
    let mut f = chunking(EHLO_CHUNK, 8);
    let body = "Subject: t\r\n\r\n.hello\r\n";
    f.queue(Message::new("a@x.test", ["b@y.test"], body));
    assert_eq!(
        f.sent(),
        "MAIL FROM:<a@x.test> SIZE=22\r\n",
        "SIZE of the raw body"
    );
    f.server("250 ok\r\n");
    assert_eq!(f.sent(), "RCPT TO:<b@y.test>\r\n");
    f.server("250 ok\r\n");
    assert_eq!(f.sent(), "BDAT 8\r\nSubject:", "no DATA, first chunk");
    f.server("250 2.0.0 8 octets received\r\n");
    assert_eq!(f.sent(), "BDAT 8\r\n t\r\n\r\n.h");
    f.server("250 2.0.0 8 octets received\r\n");
    assert_eq!(
        f.sent(),
        "BDAT 6 LAST\r\nello\r\n",
        "the dot is not stuffed"
    );
    f.server("250 2.0.0 queued as X\r\n");
    let done = f.done();
    assert_eq!(kinds(&done[0]), [Delivered]);
    assert!(done[0][0].reply.text().contains("queued as X"));
    assert!(f.s.is_idle());
    f.quit();
}

#[test]
fn bdat_pipelined_in_one_flight() {
    let mut f = chunking(EHLO_CHUNK_PIPE, 64 * 1024);
    f.queue(msg(&["b@y.test", "bad@y.test"]));
    assert_eq!(
        f.sent(),
        "MAIL FROM:<a@x.test> SIZE=21\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<bad@y.test>\r\n\
BDAT 21 LAST\r\nSubject: t\r\n\r\nhello\r\n"
    );
    f.server("250 ok\r\n250 ok\r\n550 5.1.1 unknown\r\n250 2.0.0 queued\r\n");
    assert_eq!(kinds(&f.done()[0]), [Delivered, Bounced]);
    assert_eq!(f.sent(), "", "no RSET after a delivered message");
    assert!(f.s.is_idle());
    // The next message goes the same way.
    f.queue(msg(&["c@y.test"]));
    assert!(f.sent().starts_with("MAIL FROM:"));
}

#[test]
fn bdat_when_not_offered_or_not_enabled_uses_data() {
    let mut f = chunking("250-mx.test\r\n250 SIZE 1000\r\n", 8);
    f.queue(msg(&["b@y.test"]));
    f.server("250 ok\r\n");
    f.server("250 ok\r\n");
    assert_eq!(
        f.sent(),
        "MAIL FROM:<a@x.test> SIZE=21\r\nRCPT TO:<b@y.test>\r\nDATA\r\n"
    );
    let mut f = Fake::ready(EHLO_CHUNK);
    f.queue(msg(&["b@y.test"]));
    f.server("250 ok\r\n");
    f.server("250 ok\r\n");
    assert!(f.sent().ends_with("DATA\r\n"), "chunking is off by default");
}

#[test]
fn bdat_chunk_refused_midway_fails_accepted_then_rset() {
    let mut f = chunking(EHLO_CHUNK, 8);
    f.queue(msg(&["b@y.test", "c@y.test"]));
    f.server("250 ok\r\n");
    f.server("250 ok\r\n");
    f.server("550 5.1.1 unknown\r\n");
    assert_eq!(
        f.sent(),
        "MAIL FROM:<a@x.test> SIZE=21\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nBDAT 8\r\nSubject:"
    );
    f.server("452 4.3.1 insufficient storage\r\n");
    assert_eq!(f.sent(), "RSET\r\n", "no further chunk");
    let done = f.done();
    assert_eq!(kinds(&done[0]), [Deferred, Bounced]);
    assert_eq!(done[0][0].reply.code(), 452);
    assert!(!done[0][0].local);
    f.server("250 ok\r\n");
    assert!(f.s.is_idle());

    // Pipelined: the replies to chunks already sent are read and dropped.
    let mut f = chunking(EHLO_CHUNK_PIPE, 8);
    f.queue(msg(&["b@y.test"]));
    let flight = f.sent();
    assert_eq!(flight.matches("BDAT ").count(), 3, "{flight}");
    f.server("250 ok\r\n250 ok\r\n554 5.6.0 bad content\r\n");
    assert_eq!(f.sent(), "", "waits for the replies still due");
    assert_eq!(kinds(&f.done()[0]), [Bounced]);
    f.server("503 5.5.1 no transaction\r\n");
    f.server("503 5.5.1 no transaction\r\n");
    assert_eq!(f.sent(), "RSET\r\n");
    f.server("250 ok\r\n");
    assert!(f.s.is_idle());
    assert_eq!(f.done().len(), 1);
}

#[test]
fn bdat_last_refused_resets_and_no_recipient_sends_nothing() {
    let mut f = chunking(EHLO_CHUNK, 1024);
    f.queue(msg(&["b@y.test"]));
    f.server("250 ok\r\n");
    f.server("250 ok\r\n");
    assert!(f
        .sent()
        .ends_with("BDAT 21 LAST\r\nSubject: t\r\n\r\nhello\r\n"));
    f.server("554 5.7.1 spam\r\n");
    assert_eq!(kinds(&f.done()[0]), [Bounced]);
    assert_eq!(f.sent(), "RSET\r\n", "the server may hold the transaction");
    f.server("250 ok\r\n");
    assert_eq!(f.sent(), "QUIT\r\n", "quit after a rejected message");

    // Lockstep, every RCPT refused: no BDAT at all.
    let mut f = chunking(EHLO_CHUNK, 1024);
    f.queue(msg(&["b@y.test"]));
    f.server("250 ok\r\n");
    f.server("550 5.1.1 unknown\r\n");
    assert_eq!(
        f.sent(),
        "MAIL FROM:<a@x.test> SIZE=21\r\nRCPT TO:<b@y.test>\r\nRSET\r\n"
    );

    // Pipelined, every RCPT refused: the chunk's refusal changes no outcome.
    let mut f = chunking(EHLO_CHUNK_PIPE, 1024);
    f.queue(msg(&["b@y.test"]));
    f.sent();
    f.server("250 ok\r\n550 5.1.1 unknown\r\n554 5.5.1 no valid recipients\r\n");
    let done = f.done();
    assert_eq!(kinds(&done[0]), [Bounced]);
    assert_eq!(done[0][0].reply.code(), 550);
    assert_eq!(f.sent(), "RSET\r\n");
    f.server("250 ok\r\n");
    assert!(f.s.is_idle(), "no QUIT: the content was not refused");
}

#[test]
fn bdat_empty_body_and_line_endings() {
    let mut f = chunking(EHLO_CHUNK, 8);
    f.queue(Message::new("a@x.test", ["b@y.test"], ""));
    f.server("250 ok\r\n");
    f.server("250 ok\r\n");
    assert!(f.sent().ends_with("BDAT 0 LAST\r\n"));
    f.server("250 ok\r\n");
    assert_eq!(kinds(&f.done()[0]), [Delivered]);

    assert_eq!(crlf_normalise(b"a\nb\rc\r\nd"), b"a\r\nb\r\nc\r\nd\r\n");
    assert_eq!(crlf_normalise(b"\r"), b"\r\n");
    assert_eq!(crlf_normalise(b"x\r\n"), b"x\r\n");
    assert_eq!(crlf_normalise(b""), b"");
}

#[test]
fn bdat_pipelined_keeps_a_window_of_chunks_in_flight() {
    // 21 bytes in chunks of 2: ten chunks and `BDAT 1 LAST`; at most four in flight.
    let mut f = chunking(EHLO_CHUNK_PIPE, 2);
    f.queue(msg(&["b@y.test"]));
    let flight = f.sent();
    assert!(flight.starts_with("MAIL FROM:<a@x.test> SIZE=21\r\nRCPT TO:<b@y.test>\r\n"));
    assert_eq!(flight.matches("BDAT 2\r\n").count(), 4, "{flight}");
    f.server("250 ok\r\n250 ok\r\n");
    assert_eq!(f.sent(), "", "envelope replies free no chunk");
    let mut body = flight
        .split("RCPT TO:<b@y.test>\r\n")
        .nth(1)
        .unwrap()
        .to_owned();
    for _ in 0..10 {
        assert!(f.s.expect.len() <= 4);
        f.server("250 2.0.0 2 octets\r\n");
        body.push_str(&f.sent());
    }
    assert!(body.ends_with("BDAT 1 LAST\r\n\n"), "{body}");
    assert_eq!(body.matches("BDAT ").count(), 11);
    let payload = body
        .replace("BDAT 2\r\n", "")
        .replace("BDAT 1 LAST\r\n", "");
    assert_eq!(payload, "Subject: t\r\n\r\nhello\r\n");
    f.server("250 2.0.0 queued\r\n");
    assert_eq!(kinds(&f.done()[0]), [Delivered]);
    assert!(f.s.is_idle());
}
