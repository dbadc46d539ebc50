//! STARTTLS and BDAT through the blocking driver over real sockets, against a scripted
//! rustls server (`impulse_test_support::tls`): a message byte-exact under TLS with EHLO sent again,
//! certificate verification defaults, a response injection after the `220`, and required
//! TLS against a server without STARTTLS.

use impulse_test_support::tls::{certs, FakeServer, Script};
use smtp_client::driver::blocking::{Client, Options};
use smtp_client::driver::tls::Verify;
use smtp_client::{Error, Message, OutcomeKind, Policy, RecipientOutcome, TlsMode};

fn options(mode: TlsMode) -> Options {
    let mut o = Options::new("client.test");
    o.session.policy = Policy {
        tls: mode,
        ..Policy::default()
    };
    o
}

const BODY: &[u8] = b"Subject: over TLS\r\n\r\n.a line starting with a dot\r\nend\r\n";

#[test]
fn required_tls_verified_against_the_ca_sends_the_message_byte_exact() {
    let certs = certs();
    let server = FakeServer::start(Script::Normal, certs.server_config.clone());
    let mut o = options(TlsMode::Required);
    o.tls.ca_file = Some(certs.ca_file.clone());
    o.session.peer_name = Some("localhost".into());
    let mut conn = Client::connect(server.addr, o).expect("connect");
    assert!(conn.is_tls());
    assert!(conn.session().tls_active());
    let outcomes = conn
        .send(&Message::new("a@x.test", ["b@y.test", "c@y.test"], BODY))
        .unwrap();
    assert!(
        outcomes.iter().all(RecipientOutcome::is_delivered),
        "{outcomes:?}"
    );
    assert!(outcomes[0].reply.text().contains("DATA1"));
    conn.quit().unwrap();

    let record = server.finish();
    assert_eq!(record.handshake_error, None);
    assert_eq!(record.sni.as_deref(), Some("localhost"));
    assert_eq!(record.plain_text(), "EHLO client.test\r\nSTARTTLS\r\n");
    let tls = record.tls_text();
    assert!(
        tls.starts_with("EHLO client.test\r\nMAIL FROM:<a@x.test> SIZE=56\r\n"),
        "EHLO again, then SIZE (offered only under TLS; the stuffed size): {tls}"
    );
    assert!(tls.ends_with(".\r\nQUIT\r\n"), "{tls}");
    assert_eq!(record.message, BODY);
}

#[test]
fn bdat_under_tls_when_chunking_is_offered_after_starttls() {
    let certs = certs();
    let server = FakeServer::start(Script::Normal, certs.server_config.clone());
    let mut o = options(TlsMode::Opportunistic);
    o.session.policy.chunking = true;
    o.session.policy.chunk_size = 16;
    let mut conn = Client::connect(server.addr, o).expect("connect");
    assert!(conn.is_tls(), "opportunistic encrypts without verifying");
    let outcomes = conn
        .send(&Message::new("a@x.test", ["b@y.test"], BODY))
        .unwrap();
    assert_eq!(outcomes[0].kind, OutcomeKind::Delivered, "{outcomes:?}");
    assert!(outcomes[0].reply.text().contains("BDAT1"));
    conn.quit().unwrap();
    let record = server.finish();
    assert_eq!(record.message, BODY, "the dot is not stuffed under BDAT");
    let tls = record.tls_text();
    assert_eq!(tls.matches("BDAT 16\r\n").count(), 3, "{tls}");
    assert_eq!(BODY.len(), 55);
    assert!(tls.contains("BDAT 7 LAST\r\n"), "{tls}");
    assert!(tls.contains("MAIL FROM:<a@x.test> SIZE=55\r\n"), "{tls}");
    assert!(!tls.contains("DATA\r\n"));
}

#[test]
fn required_tls_refuses_an_unknown_issuer_or_a_wrong_name() {
    let certs = certs();
    // The default roots do not know the test CA.
    let server = FakeServer::start(Script::Normal, certs.server_config.clone());
    let err = Client::connect(server.addr, options(TlsMode::Required)).unwrap_err();
    assert!(
        matches!(&err, Error::Tls(m) if m.contains("UnknownIssuer")),
        "{err}"
    );
    assert_eq!(err.reply().code(), 451);
    assert_eq!(err.reply().status().unwrap().to_string(), "4.7.5");
    let record = server.finish();
    assert!(record.handshake_error.is_some());
    assert!(record.tls.is_empty());

    // The right CA, the wrong name.
    let server = FakeServer::start(Script::Normal, certs.server_config.clone());
    let mut o = options(TlsMode::Required);
    o.tls.ca_file = Some(certs.ca_file.clone());
    o.tls.server_name = Some("mx.other.test".into());
    let err = Client::connect(server.addr, o).unwrap_err();
    assert!(
        matches!(&err, Error::Tls(m) if m.contains("not valid for name")),
        "{err}"
    );
    server.finish();

    // Verification turned off: required means encrypted only.
    let server = FakeServer::start(Script::Normal, certs.server_config.clone());
    let mut o = options(TlsMode::Required);
    o.tls.verify = Verify::Never;
    let conn = Client::connect(server.addr, o).expect("connect");
    assert!(conn.is_tls());
    conn.quit().unwrap();
    let record = server.finish();
    assert_eq!(record.sni, None, "no SNI for an IP address");
    assert_eq!(record.tls_text(), "EHLO client.test\r\nQUIT\r\n");
}

#[test]
fn bytes_after_the_starttls_220_abort_without_another_byte() {
    let certs = certs();
    let server = FakeServer::start(Script::InjectAfter220, certs.server_config.clone());
    let err = Client::connect(server.addr, options(TlsMode::Opportunistic)).unwrap_err();
    assert_eq!(err, Error::ResponseInjection);
    assert!(err.is_peer_fault());
    let outcome = RecipientOutcome::from_reply("b@y.test", err.reply(), true);
    assert_eq!(outcome.kind, OutcomeKind::Deferred);
    let record = server.finish();
    assert_eq!(
        record.plain_text(),
        "EHLO client.test\r\nSTARTTLS\r\n",
        "nothing after STARTTLS: no handshake, no QUIT"
    );
}

#[test]
fn required_tls_without_starttls_sends_only_quit() {
    let certs = certs();
    let server = FakeServer::start(Script::NoStartTls, certs.server_config.clone());
    let err = Client::connect(server.addr, options(TlsMode::Required)).unwrap_err();
    assert!(matches!(err, Error::TlsUnavailable(_)), "{err}");
    let outcome = RecipientOutcome::from_reply("b@y.test", err.reply(), true);
    assert_eq!(outcome.kind, OutcomeKind::Deferred);
    let record = server.finish();
    assert_eq!(record.plain_text(), "EHLO client.test\r\nQUIT\r\n");

    // Opportunistic goes on in plaintext.
    let server = FakeServer::start(Script::NoStartTls, certs.server_config.clone());
    let mut conn = Client::connect(server.addr, options(TlsMode::Opportunistic)).unwrap();
    assert!(!conn.is_tls());
    let outcomes = conn
        .send(&Message::new("a@x.test", ["b@y.test"], BODY))
        .unwrap();
    assert!(outcomes[0].is_delivered());
    conn.quit().unwrap();
    assert_eq!(server.finish().message, BODY);
}

#[test]
fn a_large_body_in_pipelined_bdat_chunks_under_tls() {
    let certs = certs();
    let server = FakeServer::start(Script::Normal, certs.server_config.clone());
    let mut o = options(TlsMode::Opportunistic);
    o.session.policy.chunking = true;
    let mut conn = Client::connect(server.addr, o).expect("connect");
    let mut body = b"Subject: large\r\n\r\n".to_vec();
    let mut n = 0u32;
    while body.len() < 300_000 {
        body.extend_from_slice(format!("line {n} of a large message\r\n").as_bytes());
        n += 1;
    }
    let outcomes = conn
        .send(&Message::new("a@x.test", ["b@y.test"], body.clone()))
        .unwrap();
    assert!(outcomes[0].is_delivered(), "{outcomes:?}");
    conn.quit().unwrap();
    let record = server.finish();
    assert_eq!(record.message.len(), body.len());
    assert!(record.message == body, "byte-exact");
    let chunks = body.len().div_ceil(64 * 1024);
    let tls = String::from_utf8_lossy(&record.tls);
    assert_eq!(tls.matches("BDAT 65536\r\n").count(), chunks - 1);
    assert_eq!(tls.matches(" LAST\r\n").count(), 1);
}
