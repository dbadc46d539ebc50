//! The blocking client against a hostile fake server over a real socket: bare-code replies,
//! a 100,000-line EHLO reply, a 1 MiB line without LF, garbage and surplus replies while
//! pipelining, replies dribbled byte by byte, replies before their command, a disconnect in
//! the middle of a reply. The client must not panic, must end the session as soon as a
//! limit is passed (the error says which), must give every recipient an outcome with a
//! bounce class, and must be done within a few seconds.
// Socket tests run real peers on threads and wait on the real clock.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use impulse_test_support::fake::{Fake, Peer};

use smtp_client::driver::blocking::{Client, Connection, Options};
use smtp_client::smtp_proto::ReplyError;
use smtp_client::{Error, Message, OutcomeKind, RecipientOutcome};

/// How long any scenario may take, end to end.
const QUICK: Duration = Duration::from_secs(5);

fn options() -> Options {
    let mut o = Options::new("client.test");
    o.session.policy.greeting_timeout = QUICK;
    o.session.policy.command_timeout = QUICK;
    o.session.policy.data_init_timeout = QUICK;
    o.session.policy.final_timeout = QUICK;
    o.session.policy.command_retries = 0;
    o
}

fn message(rcpts: &[&str]) -> Message {
    Message::new(
        "a@client.test",
        rcpts.iter().copied(),
        "Subject: hostile\r\n\r\nbody\r\n",
    )
}

const EHLO_PIPE: &[u8] = b"250-fake.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n";

/// Greets and answers EHLO with `ehlo`.
fn greet(p: &mut Peer, ehlo: &[u8]) {
    p.send(b"220 fake.test ESMTP\r\n");
    p.expect("EHLO");
    p.send(ehlo);
}

/// Greets, offers PIPELINING and reads the pipelined MAIL, `rcpts` RCPTs and DATA.
fn pipelined(p: &mut Peer, rcpts: usize) {
    greet(p, EHLO_PIPE);
    p.expect("MAIL");
    for _ in 0..rcpts {
        p.expect("RCPT");
    }
    p.expect("DATA");
}

/// Connects to `addr` with `options` and sends one message to `rcpts`; the connection stays
/// open for the test to quit.
fn send(addr: SocketAddr, options: Options, rcpts: &[&str]) -> (Connection, Vec<RecipientOutcome>) {
    let mut conn = Client::connect(addr, options).unwrap();
    let outcomes = conn.send(&message(rcpts)).unwrap();
    (conn, outcomes)
}

/// Every recipient was deferred locally by a session error, with a classified reply.
fn assert_deferred(outcomes: &[RecipientOutcome], n: usize) {
    assert_eq!(outcomes.len(), n, "{outcomes:?}");
    for o in outcomes {
        assert_eq!(o.kind, OutcomeKind::Deferred, "{o:?}");
        assert!(o.local, "{o:?}");
        assert_eq!(o.reply.code() / 100, 4, "{o:?}");
        assert!(o.class.id != 0 && !o.class.name.is_empty(), "{o:?}");
    }
}

#[test]
fn bare_code_replies_are_enough_to_deliver() {
    let started = Instant::now();
    let fake = Fake::start(|p| {
        p.send(b"220\r\n");
        p.expect("EHLO");
        p.send(b"250-fake.test\r\n250\r\n");
        p.serve_transaction([b"250\r\n", b"250\r\n", b"354\r\n", b"250\r\n", b"221\r\n"]);
    });
    let (conn, outcomes) = send(fake.addr, options(), &["b@fake.test"]);
    assert!(outcomes[0].is_delivered(), "{outcomes:?}");
    assert_eq!(outcomes[0].reply.code(), 250);
    conn.quit().unwrap();
    fake.join();
    assert!(started.elapsed() < QUICK);
}

#[test]
fn a_100000_line_ehlo_reply_ends_the_session_at_the_line_limit() {
    let started = Instant::now();
    let fake = Fake::start(|p| {
        p.send(b"220 fake.test ESMTP\r\n");
        p.expect("EHLO");
        let mut written = 0;
        while written < 100_000 && p.send(b"250-this is one of very many lines\r\n") {
            written += 1;
        }
        written
    });
    let err = Client::connect(fake.addr, options()).unwrap_err();
    assert!(
        matches!(err, Error::InvalidReply(ReplyError::TooManyLines { .. })),
        "{err}"
    );
    // The client closed the socket once the limit was passed; the server's writes then
    // fail or land in the kernel's buffers, never in the client's memory.
    let written = fake.join();
    assert!(written > 0);
    assert!(started.elapsed() < QUICK);
}

#[test]
fn a_1_mib_line_without_lf_ends_the_session_at_the_line_limit() {
    let started = Instant::now();
    let fake = Fake::start(|p| {
        greet(p, b"250 fake.test\r\n");
        p.expect("MAIL");
        let mut line = b"250 ".to_vec();
        line.resize(1024 * 1024, b'x');
        p.send(&line);
        p.rest()
    });
    let (conn, outcomes) = send(fake.addr, options(), &["b@fake.test", "c@fake.test"]);
    assert_deferred(&outcomes, 2);
    let err = conn.quit().unwrap_err();
    assert!(
        matches!(err, Error::InvalidReply(ReplyError::LineTooLong { .. })),
        "{err}"
    );
    assert_eq!(
        fake.join(),
        "",
        "nothing after MAIL: no RCPT into a broken stream"
    );
    assert!(started.elapsed() < QUICK);
}

#[test]
fn garbage_while_pipelining_defers_every_recipient() {
    let started = Instant::now();
    let fake = Fake::start(|p| {
        pipelined(p, 2);
        p.send(b"250 2.1.0 ok\r\n\x00\xff\x1b[2J not smtp at all\r\n");
        p.rest()
    });
    let (conn, outcomes) = send(fake.addr, options(), &["b@fake.test", "c@fake.test"]);
    assert_deferred(&outcomes, 2);
    let err = conn.quit().unwrap_err();
    assert!(matches!(err, Error::InvalidReply(_)), "{err}");
    assert!(err.is_peer_fault());
    assert_eq!(fake.join(), "", "the body never follows garbage");
    assert!(started.elapsed() < QUICK);
}

#[test]
fn surplus_replies_while_pipelining_are_unsolicited_and_the_body_is_held_back() {
    let started = Instant::now();
    let fake = Fake::start(|p| {
        pipelined(p, 1);
        // A "delivery" before the body was sent: a desynchronised (or injecting) server.
        p.send(b"250 ok\r\n250 ok\r\n354 go ahead\r\n250 2.0.0 fake delivery\r\n");
        p.rest()
    });
    let (conn, outcomes) = send(fake.addr, options(), &["b@fake.test"]);
    assert_deferred(&outcomes, 1);
    assert_eq!(outcomes[0].reply.status().unwrap().to_string(), "4.5.0");
    assert_eq!(conn.quit().unwrap_err(), Error::Unsolicited);
    assert!(!fake.join().contains("Subject"), "the body is not sent");
    assert!(started.elapsed() < QUICK);
}

#[test]
fn replies_dribbled_byte_by_byte_are_reassembled() {
    let started = Instant::now();
    let fake = Fake::start(|p| {
        let dribble = |p: &mut Peer, bytes: &[u8]| {
            for b in bytes {
                p.send(std::slice::from_ref(b));
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        dribble(p, b"220-fake.test\r\n220 ESMTP\r\n");
        p.expect("EHLO");
        dribble(p, EHLO_PIPE);
        p.expect("MAIL");
        p.expect("RCPT");
        p.expect("DATA");
        dribble(p, b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n");
        while p.line().is_some_and(|l| l != ".") {}
        dribble(p, b"250 2.0.0 queued\r\n");
        p.expect("QUIT");
        dribble(p, b"221 2.0.0 bye\r\n");
    });
    let (conn, outcomes) = send(fake.addr, options(), &["b@fake.test"]);
    assert!(outcomes[0].is_delivered(), "{outcomes:?}");
    assert_eq!(outcomes[0].reply.text(), "queued");
    conn.quit().unwrap();
    fake.join();
    assert!(started.elapsed() < QUICK);
}

#[test]
fn a_reply_inside_the_greeting_or_ahead_of_ehlo_ends_the_session() {
    // Another code in the middle of the multi-line greeting.
    let fake = Fake::start(|p| {
        p.send(b"220-fake.test\r\n250 surprise\r\n");
        p.rest()
    });
    let err = Client::connect(fake.addr, options()).unwrap_err();
    assert!(
        matches!(err, Error::InvalidReply(ReplyError::MixedCodes { .. })),
        "{err}"
    );
    assert_eq!(fake.join(), "", "no EHLO after a broken greeting");

    // A reply to the EHLO the client has not sent yet, in the greeting's segment.
    let fake = Fake::start(|p| {
        p.send(b"220 fake.test ESMTP\r\n250 fake.test\r\n");
        p.rest()
    });
    let err = Client::connect(fake.addr, options()).unwrap_err();
    assert_eq!(err, Error::Unsolicited);
    assert_eq!(fake.join(), "", "no EHLO into a stream that is ahead of us");
}

#[test]
fn a_disconnect_in_the_middle_of_a_reply_defers_every_recipient() {
    let started = Instant::now();
    let fake = Fake::start(|p| {
        pipelined(p, 2);
        p.send(b"250 2.1.0 ok\r\n250-2.1.5 first line of a multi-line rep");
        // Dropping the peer closes the connection.
    });
    let (conn, outcomes) = send(fake.addr, options(), &["b@fake.test", "c@fake.test"]);
    fake.join();
    assert_deferred(&outcomes, 2);
    assert_eq!(outcomes[0].reply.code(), 451);
    assert_eq!(conn.quit().unwrap_err(), Error::PeerClosed);
    assert!(started.elapsed() < QUICK);
}

#[test]
fn a_silent_server_times_out_with_a_classified_deferral() {
    let fake = Fake::start(|p| {
        greet(p, b"250 fake.test\r\n");
        p.expect("MAIL");
        // Never answers; waits for the client to give up.
        p.rest()
    });
    let mut o = options();
    o.session.policy.command_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let (conn, outcomes) = send(fake.addr, o, &["b@fake.test"]);
    assert_deferred(&outcomes, 1);
    assert_eq!(outcomes[0].class.id, 24, "Timeout");
    assert!(matches!(conn.quit(), Err(Error::Timeout { .. })));
    fake.join();
    assert!(started.elapsed() < Duration::from_secs(3));
}
