//! STARTTLS (the injection defence and the state reset) and AUTH.

use smtp_proto::reply::Reply;
use smtp_proto::sasl::Mechanism;

use super::util::*;
use crate::factory::{AuthConfig, Decision, Event, EventKind, FactoryConfig, State, TlsInfo};

fn tls_config() -> FactoryConfig {
    let mut cfg = config();
    cfg.tls_available = true;
    cfg.auth = Some(AuthConfig::default());
    cfg
}

fn tls_info() -> TlsInfo {
    TlsInfo {
        protocol: "TLSv1.3".into(),
        cipher: "TLS_AES_128_GCM_SHA256".into(),
    }
}

#[test]
fn starttls_discards_injected_plaintext_and_resets() {
    let mut h = Harness::ready(tls_config());
    let ehlo = {
        h.send(b"EHLO client.example\r\n");
        h.output()
    };
    assert!(ehlo.contains("STARTTLS\r\n"), "{ehlo}");
    assert!(!ehlo.contains("AUTH"), "AUTH only after TLS: {ehlo}");
    // The injected MAIL must never be answered.
    let out = h.exchange(b"STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\n");
    assert_eq!(out, "220 2.0.0 Ready to start TLS\r\n");
    assert_eq!(h.f.state(), State::TlsHandshake);
    assert!(h.kinds().contains(&EventKind::StartTls));
    assert!(
        h.input.is_empty(),
        "plaintext after STARTTLS is consumed and dropped"
    );
    // More plaintext before the handshake completes is dropped too.
    assert_eq!(h.exchange(b"RCPT TO:<x@y.example>\r\n"), "");
    h.f.handle_tls_established(tls_info(), h.now).unwrap();
    assert_eq!(h.f.state(), State::AwaitingHelo);
    assert!(h.f.helo().is_none());
    assert!(h.f.envelope().is_none());
    assert_eq!(
        h.exchange(b"MAIL FROM:<a@b.example>\r\n"),
        "503 5.5.1 Error: send HELO/EHLO first\r\n"
    );
    let ehlo = h.exchange(b"EHLO client.example\r\n");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    assert!(ehlo.contains("250 AUTH PLAIN LOGIN\r\n"), "{ehlo}");
    assert_eq!(
        h.exchange(b"STARTTLS\r\n"),
        "554 5.5.1 Error: TLS already active\r\n"
    );
    assert_eq!(h.f.tls().unwrap().protocol, "TLSv1.3");
    // The Received header says ESMTPS.
    h.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n");
    h.send(b".\r\n");
    assert!(String::from_utf8_lossy(&h.body).contains("with ESMTPS"));
}

#[test]
fn starttls_rules() {
    let mut h = Harness::ready(tls_config());
    assert_eq!(
        h.exchange(b"STARTTLS now\r\n"),
        "501 5.5.4 Syntax error, command takes no arguments\r\n"
    );
    h.send(b"MAIL FROM:<a@b.example>\r\n");
    h.output();
    assert_eq!(
        h.exchange(b"STARTTLS\r\n"),
        "503 5.5.1 Error: MAIL transaction in progress\r\n"
    );
    assert!(h.f.handle_tls_established(tls_info(), h.now).is_err());
    // TLS required for mail.
    let mut cfg = tls_config();
    cfg.require_tls = true;
    let mut h = Harness::ready(cfg);
    assert_eq!(
        h.exchange(b"MAIL FROM:<a@b.example>\r\n"),
        "530 5.7.0 Must issue a STARTTLS command first\r\n"
    );
}

fn authed(mechanisms: Vec<Mechanism>, require_tls: bool) -> Harness {
    let mut cfg = config();
    cfg.auth = Some(AuthConfig {
        mechanisms,
        require_tls,
    });
    cfg.require_auth = true;
    Harness::with_decider(
        cfg,
        Box::new(|e| match e {
            Event::Auth { credentials, .. }
                if credentials.authcid == "user" && credentials.password.expose() == "pass" =>
            {
                Decision::Accept
            }
            Event::Auth { .. } => {
                Decision::Reject(Reply::from(smtp_proto::sasl::CREDENTIALS_INVALID))
            }
            Event::MessageComplete { .. } => Decision::Queued("Q".into()),
            _ => Decision::Continue,
        }),
    )
}

#[test]
fn auth_plain_and_login() {
    let mut h = authed(vec![Mechanism::Plain, Mechanism::Login], false);
    let ehlo = h.exchange(b"EHLO c.example\r\n");
    assert!(ehlo.contains("250 AUTH PLAIN LOGIN\r\n"), "{ehlo}");
    assert_eq!(
        h.exchange(b"MAIL FROM:<a@b.example>\r\n"),
        "530 5.7.0 Authentication required\r\n"
    );
    // PLAIN with a wrong password, as an initial response ("\0user\0bad").
    assert_eq!(
        h.exchange(b"AUTH PLAIN AHVzZXIAYmFk\r\n"),
        "535 5.7.8 Authentication credentials invalid\r\n"
    );
    // LOGIN, step by step.
    assert_eq!(h.exchange(b"AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
    assert_eq!(h.f.state(), State::AuthExchange);
    assert_eq!(h.exchange(b"dXNlcg==\r\n"), "334 UGFzc3dvcmQ6\r\n");
    assert_eq!(
        h.exchange(b"cGFzcw==\r\n"),
        "235 2.7.0 Authentication successful\r\n"
    );
    assert_eq!(h.f.authenticated(), Some("user"));
    assert_eq!(
        h.exchange(b"AUTH PLAIN\r\n"),
        "503 5.5.1 Already authenticated\r\n"
    );
    h.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n");
    h.send(b".\r\n");
    assert!(String::from_utf8_lossy(&h.body).contains("with ESMTPA"));
    let auth = h.events.iter().find_map(|e| match e {
        Event::MessageComplete { envelope, .. } => envelope.auth.clone(),
        _ => None,
    });
    assert_eq!(auth.as_deref(), Some("user"));
}

#[test]
fn auth_failures() {
    let mut h = authed(vec![Mechanism::Plain], false);
    h.send(b"EHLO c.example\r\n");
    h.output();
    assert_eq!(
        h.exchange(b"AUTH LOGIN\r\n"),
        "504 5.5.4 Unrecognized authentication type\r\n"
    );
    assert_eq!(h.exchange(b"AUTH PLAIN\r\n"), "334 \r\n");
    assert_eq!(
        h.exchange(b"*\r\n"),
        "501 5.7.0 Authentication cancelled\r\n"
    );
    assert_eq!(h.exchange(b"AUTH PLAIN\r\n"), "334 \r\n");
    assert_eq!(
        h.exchange(b"!!!!\r\n"),
        "501 5.5.2 Cannot Base64-decode client response\r\n"
    );
    // An AUTH line over 12288 bytes: 500 5.5.6, and the session stays in sync.
    h.send(b"AUTH PLAIN\r\n");
    h.output();
    let mut long = vec![b'A'; 13000];
    long.extend_from_slice(b"\r\nNOOP\r\n");
    assert_eq!(
        h.exchange(&long),
        "500 5.5.6 Authentication Exchange line is too long\r\n250 2.0.0 Ok\r\n"
    );
    // Continue fails closed.
    let mut cfg = config();
    cfg.auth = Some(AuthConfig {
        mechanisms: vec![Mechanism::Plain],
        require_tls: false,
    });
    let mut h = Harness::with_decider(cfg, Box::new(|_| Decision::Continue));
    h.send(b"EHLO c.example\r\n");
    h.output();
    assert_eq!(
        h.exchange(b"AUTH PLAIN AHVzZXIAcGFzcw==\r\n"),
        "535 5.7.8 Error: authentication failed\r\n"
    );
    // TLS required for AUTH.
    let mut h = authed(vec![Mechanism::Plain], true);
    h.send(b"EHLO c.example\r\n");
    h.output();
    assert_eq!(
        h.exchange(b"AUTH PLAIN AHVzZXIAcGFzcw==\r\n"),
        "538 5.7.11 Encryption required for requested authentication mechanism\r\n"
    );
}
