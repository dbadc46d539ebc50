//! `Connection::probe_recipient` over loopback against scripted servers: the commands it
//! sends (MAIL FROM:<> with SMTPUTF8 only for a UTF-8 address, RCPT, RSET; never DATA), a
//! UTF-8 address refused locally by a server without SMTPUTF8, and an RCPT answer kept when
//! the server then fails RSET.
// Socket tests run scripted servers on threads and wait on the real clock.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use impulse_test_support::fake::{Fake, Peer};
use smtp_client::driver::blocking::{Client, Options, ProbeAnswer};
use smtp_client::Error;

const EHLO_UTF8: &[u8] = b"250-fake.test\r\n250-PIPELINING\r\n250 SMTPUTF8\r\n";
const EHLO_PLAIN: &[u8] = b"250-fake.test\r\n250 PIPELINING\r\n";

/// Greets, answers EHLO with `ehlo`, then answers MAIL and RCPT (returning the two command
/// lines), RSET with `rset` (or closes when `None`), and QUIT.
fn serve(ehlo: &'static [u8], rset: Option<&'static [u8]>) -> Fake<Vec<String>> {
    Fake::start(move |p: &mut Peer| {
        p.send(b"220 fake.test ESMTP\r\n");
        p.expect("EHLO");
        p.send(ehlo);
        let mail = p.line().unwrap_or_default();
        p.send(b"250 2.1.0 Ok\r\n");
        let rcpt = p.line().unwrap_or_default();
        p.send(b"550 5.1.1 no such user\r\n");
        let mut seen = vec![mail, rcpt];
        let Some(rset) = rset else {
            return seen;
        };
        p.expect("RSET");
        p.send(rset);
        seen.push(p.line().unwrap_or_default());
        p.send(b"221 2.0.0 Bye\r\n");
        seen
    })
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

#[test]
fn a_utf8_address_is_probed_in_an_smtputf8_transaction() {
    let fake = serve(EHLO_UTF8, Some(b"250 2.0.0 Ok\r\n"));
    let mut conn = Client::connect(fake.addr, Options::new("client.test")).unwrap();
    let answer = conn
        .probe_recipient("jörg@example.org", deadline())
        .unwrap();
    let ProbeAnswer::Rcpt(reply) = answer else {
        panic!("{answer:?}");
    };
    assert_eq!(reply.code(), 550);
    conn.quit().unwrap();
    assert_eq!(
        fake.join(),
        [
            "MAIL FROM:<> SMTPUTF8",
            "RCPT TO:<jörg@example.org>",
            "QUIT"
        ]
    );
    // An ASCII one goes without the parameter.
    let fake = serve(EHLO_UTF8, Some(b"250 2.0.0 Ok\r\n"));
    let mut conn = Client::connect(fake.addr, Options::new("client.test")).unwrap();
    conn.probe_recipient("joerg@example.org", deadline())
        .unwrap();
    conn.quit().unwrap();
    assert_eq!(fake.join()[0], "MAIL FROM:<>");
}

#[test]
fn a_utf8_address_is_not_asked_of_a_server_without_smtputf8() {
    let fake = Fake::start(|p: &mut Peer| {
        p.send(b"220 fake.test ESMTP\r\n");
        p.expect("EHLO");
        p.send(EHLO_PLAIN);
        p.rest()
    });
    let mut conn = Client::connect(fake.addr, Options::new("client.test")).unwrap();
    let err = conn
        .probe_recipient("jörg@example.org", deadline())
        .unwrap_err();
    assert!(matches!(err, Error::Misuse(why) if why.contains("SMTPUTF8")));
    // Nor an address that would break out of its brackets.
    let err = conn
        .probe_recipient("a@example.org>\r\nDATA", deadline())
        .unwrap_err();
    assert!(matches!(err, Error::Misuse(_)), "{err:?}");
    drop(conn);
    let sent = fake.join();
    assert!(!sent.contains("MAIL"), "nothing sent: {sent:?}");
}

#[test]
fn the_rcpt_answer_stands_when_the_server_then_fails_rset() {
    // The server closes after its RCPT reply: RSET fails, the answer is kept.
    let fake = serve(EHLO_PLAIN, None);
    let mut conn = Client::connect(fake.addr, Options::new("client.test")).unwrap();
    let answer = conn.probe_recipient("u@example.org", deadline()).unwrap();
    assert!(
        matches!(&answer, ProbeAnswer::Rcpt(r) if r.code() == 550),
        "{answer:?}"
    );
    assert_eq!(fake.join().len(), 2);
}
