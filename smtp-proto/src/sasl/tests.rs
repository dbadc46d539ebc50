use super::*;
use crate::limits::MAX_AUTH_LINE;
use proptest::prelude::*;

fn creds(authzid: &str, authcid: &str, password: &str) -> Credentials {
    Credentials {
        authzid: authzid.into(),
        authcid: authcid.into(),
        password: Secret::new(password),
    }
}

#[test]
fn rfc4616_examples_decode() {
    // RFC 4616 §4: "<NUL>tim<NUL>tanstaaftanstaaf" and "Ursel<NUL>Kurt<NUL>xipj3plmq".
    assert_eq!(
        decode_plain(b"AHRpbQB0YW5zdGFhZnRhbnN0YWFm"),
        Ok(creds("", "tim", "tanstaaftanstaaf"))
    );
    assert_eq!(
        decode_plain(b"VXJzZWwAS3VydAB4aXBqM3BsbXE="),
        Ok(creds("Ursel", "Kurt", "xipj3plmq"))
    );
    // RFC 4954 §4 example: AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=
    assert_eq!(
        decode_plain(b"dGVzdAB0ZXN0ADEyMzQ="),
        Ok(creds("test", "test", "1234"))
    );
}

#[test]
fn rfc4616_examples_encode() {
    assert_eq!(
        encode_plain("", "tim", "tanstaaftanstaaf").unwrap(),
        "AHRpbQB0YW5zdGFhZnRhbnN0YWFm"
    );
    assert_eq!(
        encode_plain("Ursel", "Kurt", "xipj3plmq").unwrap(),
        "VXJzZWwAS3VydAB4aXBqM3BsbXE="
    );
}

#[test]
fn plain_rejects_malformed_messages() {
    let long = "a".repeat(256);
    let cases: &[(&[u8], &str)] = &[
        (b"", "missing NUL separator"),
        (b"tim", "missing NUL separator"),
        (b"\0tim", "missing NUL separator"),
        (b"\0tim\0pass\0word", "NUL inside a field"),
        (b"\0\0pass", "empty authcid"),
        (b"\0tim\0", "empty password"),
        (b"\0t\xffm\0pass", "authcid is not UTF-8"),
        (b"\xc3\0tim\0pass", "authzid is not UTF-8"),
        (b"\0tim\0\xfe", "password is not UTF-8"),
    ];
    for (msg, reason) in cases {
        assert_eq!(
            parse_plain(msg),
            Err(SaslError::Malformed(reason)),
            "{msg:?}"
        );
    }
    let too_long = format!("\0{long}\0pw");
    assert_eq!(
        parse_plain(too_long.as_bytes()),
        Err(SaslError::Malformed("authcid longer than 255 octets"))
    );
    let max = "a".repeat(255);
    let ok = format!("{max}\0{max}\0{max}");
    assert!(parse_plain(ok.as_bytes()).is_ok());
    assert_eq!(
        SaslError::Malformed("x").reply().to_string(),
        "501 5.5.2 Malformed authentication response"
    );
}

#[test]
fn plain_encoder_refuses_bad_fields() {
    assert!(matches!(
        encode_plain("", "", "pw"),
        Err(SaslError::InvalidCredential(_))
    ));
    assert!(encode_plain("", "tim", "").is_err());
    assert!(encode_plain("", "t\0m", "pw").is_err());
    assert!(encode_plain(&"z".repeat(256), "tim", "pw").is_err());
}

#[test]
fn plain_server_exchange_with_and_without_initial_response() {
    let mut s = SaslServer::start(&Mechanism::Plain, Some(b"AHRpbQB0YW5zdGFhZnRhbnN0YWFm"));
    assert_eq!(
        s.poll_step(),
        Some(ServerStep::Credentials(creds(
            "",
            "tim",
            "tanstaaftanstaaf"
        )))
    );
    assert_eq!(s.poll_step(), None);
    assert!(s.is_finished());

    let mut s = SaslServer::start(&Mechanism::Plain, None);
    assert_eq!(s.poll_step(), Some(ServerStep::Challenge("")));
    assert_eq!(challenge_line(b""), "334 ");
    assert_eq!(s.poll_step(), None);
    s.handle_response(b"AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n");
    assert!(matches!(s.poll_step(), Some(ServerStep::Credentials(_))));

    // "=" is an empty initial response, which is not a valid PLAIN message.
    let mut s = SaslServer::start(&Mechanism::Plain, Some(b"="));
    assert_eq!(
        s.poll_step(),
        Some(ServerStep::Failed(SaslError::Malformed(
            "missing NUL separator"
        )))
    );
}

#[test]
fn login_exchange_server_and_client() {
    let mut server = SaslServer::start(&Mechanism::Login, None);
    let mut client = LoginClient::new("tim", "tanstaaf");
    let Some(ServerStep::Challenge(c1)) = server.poll_step() else {
        panic!("expected a challenge")
    };
    assert_eq!(c1, LOGIN_USERNAME_CHALLENGE);
    assert_eq!(challenge_line(b"Username:"), "334 VXNlcm5hbWU6");
    let a1 = client.handle_challenge(c1.as_bytes()).unwrap();
    assert_eq!(a1, "dGlt");
    server.handle_response(a1.as_bytes());
    let Some(ServerStep::Challenge(c2)) = server.poll_step() else {
        panic!("expected a challenge")
    };
    assert_eq!(c2, LOGIN_PASSWORD_CHALLENGE);
    assert_eq!(challenge_line(b"Password:"), "334 UGFzc3dvcmQ6");
    let a2 = client.handle_challenge(c2.as_bytes()).unwrap();
    assert_eq!(a2, "dGFuc3RhYWY=");
    assert!(client.is_done());
    server.handle_response(format!("{a2}\r\n").as_bytes());
    assert_eq!(
        server.poll_step(),
        Some(ServerStep::Credentials(creds("", "tim", "tanstaaf")))
    );
    // Anything after the password is out of sequence on both sides.
    assert_eq!(
        client.handle_challenge(b"UGFzc3dvcmQ6"),
        Err(SaslError::UnexpectedChallenge)
    );
    server.handle_response(b"dGlt");
    assert_eq!(
        server.poll_step(),
        Some(ServerStep::Failed(SaslError::Sequence))
    );
}

#[test]
fn login_with_initial_response() {
    let mut client = LoginClient::new("tim", "tanstaaf");
    let ir = client.initial_response();
    let mut server = SaslServer::start(&Mechanism::Login, Some(ir.as_bytes()));
    assert_eq!(
        server.poll_step(),
        Some(ServerStep::Challenge(LOGIN_PASSWORD_CHALLENGE))
    );
    let answer = client
        .handle_challenge(LOGIN_PASSWORD_CHALLENGE.as_bytes())
        .unwrap();
    server.handle_response(answer.as_bytes());
    assert_eq!(
        server.poll_step(),
        Some(ServerStep::Credentials(creds("", "tim", "tanstaaf")))
    );
}

#[test]
fn login_client_prompts() {
    // Lower-case and non-standard prompts: by name when recognisable, else by order.
    let mut c = LoginClient::new("u", "p");
    assert_eq!(c.handle_challenge(b"dXNlcm5hbWU6").unwrap(), "dQ=="); // "username:"
    assert_eq!(c.handle_challenge(b"U2VjcmV0Pw==").unwrap(), "cA=="); // "Secret?"
    let mut c = LoginClient::new("u", "p");
    assert_eq!(
        c.handle_challenge(LOGIN_PASSWORD_CHALLENGE.as_bytes()),
        Err(SaslError::UnexpectedChallenge)
    );
    assert_eq!(c.handle_challenge(b"!!!"), Err(SaslError::BadBase64));
}

#[test]
fn login_server_rejects_empty_fields() {
    let mut s = SaslServer::start(&Mechanism::Login, None);
    s.poll_step();
    s.handle_response(b"");
    assert_eq!(
        s.poll_step(),
        Some(ServerStep::Failed(SaslError::Malformed("empty authcid")))
    );
    assert_eq!(s.poll_step(), None);
    // Errors stick: further input is ignored.
    s.handle_response(b"dGlt");
    assert_eq!(s.poll_step(), None);
    assert_eq!(s.error(), Some(&SaslError::Malformed("empty authcid")));
}

#[test]
fn cancellation() {
    for mech in [Mechanism::Plain, Mechanism::Login] {
        let mut s = SaslServer::start(&mech, None);
        assert!(matches!(s.poll_step(), Some(ServerStep::Challenge(_))));
        s.handle_response(b"*\r\n");
        assert_eq!(
            s.poll_step(),
            Some(ServerStep::Failed(SaslError::Cancelled))
        );
        assert_eq!(s.poll_step(), None);
    }
    let reply = SaslError::Cancelled.reply();
    assert_eq!(
        (reply.code, reply.status.to_string()),
        (501, "5.7.0".into())
    );
    assert_eq!(reply.to_string(), "501 5.7.0 Authentication cancelled");
    assert_eq!(
        decode_response_line(b"*", MAX_AUTH_LINE),
        Err(SaslError::Cancelled)
    );
}

#[test]
fn bad_base64() {
    for bad in [&b"not base64!"[..], b"dGlt=", b"dGl", b"dG\x00lt", b"****"] {
        assert_eq!(
            decode_response_line(bad, MAX_AUTH_LINE),
            Err(SaslError::BadBase64)
        );
    }
    let mut s = SaslServer::start(&Mechanism::Login, Some(b"%%%"));
    assert_eq!(
        s.poll_step(),
        Some(ServerStep::Failed(SaslError::BadBase64))
    );
    assert_eq!(
        SaslError::BadBase64.reply().to_string(),
        "501 5.5.2 Cannot Base64-decode client response"
    );
    assert_eq!(decode_response_line(b"\r\n", MAX_AUTH_LINE), Ok(Vec::new()));
}

#[test]
fn line_length_limit() {
    // 12286 octets + CRLF = 12288 is within the limit (here it fails only as base64, since
    // 12286 is not a multiple of 4); one octet more is too long.
    let at_limit = "A".repeat(MAX_AUTH_LINE - 2);
    assert_eq!(
        decode_response_line(at_limit.as_bytes(), MAX_AUTH_LINE),
        Err(SaslError::BadBase64)
    );
    let fits = "A".repeat(MAX_AUTH_LINE - 4) + "\r\n";
    assert!(decode_response_line(fits.as_bytes(), MAX_AUTH_LINE).is_ok());
    let over = "A".repeat(MAX_AUTH_LINE - 1);
    let err = decode_response_line(over.as_bytes(), MAX_AUTH_LINE).unwrap_err();
    assert_eq!(
        err,
        SaslError::LineTooLong {
            limit: MAX_AUTH_LINE
        }
    );
    assert_eq!(
        err.reply().to_string(),
        "500 5.5.6 Authentication Exchange line is too long"
    );
    let mut s = SaslServer::start_with_limits(
        &Mechanism::Plain,
        None,
        &crate::Limits {
            auth_line: 10,
            ..Default::default()
        },
    );
    s.poll_step();
    s.handle_response(b"AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
    assert_eq!(
        s.poll_step(),
        Some(ServerStep::Failed(SaslError::LineTooLong { limit: 10 }))
    );
    assert_eq!(
        decode_initial_response(over.as_bytes(), MAX_AUTH_LINE),
        Err(SaslError::LineTooLong {
            limit: MAX_AUTH_LINE
        })
    );
}

#[test]
fn unsupported_mechanisms_and_sequence() {
    for mech in [
        Mechanism::XOAuth2,
        Mechanism::CramMd5,
        Mechanism::Other("GSSAPI".into()),
    ] {
        let mut s = SaslServer::start(&mech, None);
        let Some(ServerStep::Failed(e)) = s.poll_step() else {
            panic!("{mech} should fail")
        };
        assert_eq!(e, SaslError::UnsupportedMechanism(mech.to_string()));
        assert_eq!(e.reply(), UNRECOGNIZED_MECHANISM);
    }
    // A response fed before the challenge was polled is out of sequence.
    let mut s = SaslServer::start(&Mechanism::Login, None);
    s.handle_response(b"dGlt");
    assert_eq!(s.poll_step(), Some(ServerStep::Failed(SaslError::Sequence)));
    assert_eq!(SaslError::Sequence.reply().code, 503);
}

#[test]
fn reply_constants() {
    let (code, status, text) = AUTH_SUCCEEDED;
    assert_eq!(
        format!("{code} {status} {text}"),
        "235 2.7.0 Authentication successful"
    );
    let lines = [
        (
            CREDENTIALS_INVALID,
            "535 5.7.8 Authentication credentials invalid",
        ),
        (
            ENCRYPTION_REQUIRED,
            "538 5.7.11 Encryption required for requested authentication mechanism",
        ),
        (
            UNRECOGNIZED_MECHANISM,
            "504 5.5.4 Unrecognized authentication type",
        ),
        (ALREADY_AUTHENTICATED, "503 5.5.1 Already authenticated"),
    ];
    for (reply, line) in lines {
        assert_eq!(reply.to_string(), line);
    }
    assert_eq!(SaslError::EncryptionRequired.reply(), ENCRYPTION_REQUIRED);
}

#[test]
fn xoauth2_vector() {
    // Google's documented example (developers.google.com/gmail/imap/xoauth2-protocol).
    let got = encode_xoauth2(
        "someuser@example.com",
        "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg",
    )
    .unwrap();
    assert_eq!(
        got,
        "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
    );
    assert!(encode_xoauth2("a\x01b", "t").is_err());
    assert!(encode_xoauth2("a", "").is_err());
    let json = decode_xoauth2_challenge(
        b"eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIG1hYyIsInNjb3BlIjoiaHR0cHM6Ly9tYWlsLmdvb2dsZS5jb20vIn0=\r\n",
    )
    .unwrap();
    assert_eq!(
        json,
        r#"{"status":"401","schemes":"bearer mac","scope":"https://mail.google.com/"}"#
    );
    assert_eq!(decode_xoauth2_challenge(b"?"), Err(SaslError::BadBase64));
}

#[test]
fn debug_never_shows_secrets() {
    let c = creds("", "tim", "tanstaaftanstaaf");
    let dbg = format!("{c:?} {c:#?}");
    assert!(!dbg.contains("tanstaaf"), "{dbg}");
    assert!(dbg.contains("tim") && dbg.contains("<redacted>"));
    let client = LoginClient::new("tim", "hunter2");
    assert!(!format!("{client:?}").contains("hunter2"));
    let mut server = SaslServer::start(&Mechanism::Plain, Some(b"AHRpbQB0YW5zdGFhZnRhbnN0YWFm"));
    assert!(!format!("{server:?}").contains("tanstaaf"));
    let step = server.poll_step();
    assert!(!format!("{step:?}").contains("tanstaaf"));
    assert_eq!(Secret::new("x"), Secret::from("x"));
    assert_ne!(Secret::new("x"), Secret::from("y"));
    assert_ne!(Secret::new("x"), Secret::from("xx"));
}

#[test]
fn mechanism_names() {
    assert_eq!("plain".parse(), Ok(Mechanism::Plain));
    assert_eq!("Login".parse(), Ok(Mechanism::Login));
    assert_eq!("xoauth2".parse(), Ok(Mechanism::XOAuth2));
    assert_eq!("cram-md5".parse(), Ok(Mechanism::CramMd5));
    assert_eq!(
        "scram-sha-256".parse(),
        Ok(Mechanism::Other("SCRAM-SHA-256".into()))
    );
    for bad in ["", "PLAIN LOGIN", "X.Y", "ABCDEFGHIJKLMNOPQRSTU", "ÉLAN"] {
        assert_eq!(
            bad.parse::<Mechanism>(),
            Err(SaslError::InvalidMechanismName),
            "{bad}"
        );
    }
    assert_eq!(Mechanism::XOAuth2.to_string(), "XOAUTH2");
    assert_eq!(Mechanism::CramMd5.to_string(), "CRAM-MD5");
    assert_eq!(format!("{:<7}|", Mechanism::Plain), "PLAIN  |");
    assert!(Mechanism::Login.sends_cleartext_password());
    assert!(!Mechanism::XOAuth2.sends_cleartext_password());
    assert_eq!(
        Mechanism::parse_list("login PLAIN  xoauth2 LOGIN bad!name"),
        vec![Mechanism::Login, Mechanism::Plain, Mechanism::XOAuth2]
    );
}

#[test]
fn choosing_a_mechanism() {
    let offered = Mechanism::parse_list("LOGIN CRAM-MD5 PLAIN XOAUTH2");
    assert_eq!(
        choose_mechanism(&offered, CredentialKind::Password),
        Some(Mechanism::Plain)
    );
    assert_eq!(
        choose_mechanism(&offered, CredentialKind::OAuth2Token),
        Some(Mechanism::XOAuth2)
    );
    let offered = Mechanism::parse_list("LOGIN CRAM-MD5");
    assert_eq!(
        choose_mechanism(&offered, CredentialKind::Password),
        Some(Mechanism::Login)
    );
    assert_eq!(
        choose_mechanism(&offered, CredentialKind::OAuth2Token),
        None
    );
    assert_eq!(
        choose_mechanism(
            &Mechanism::parse_list("CRAM-MD5 GSSAPI"),
            CredentialKind::Password
        ),
        None
    );
}

/// A field RFC 4616 allows: UTF-8 without NUL, at most 255 octets.
fn field(min: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>().prop_filter("no NUL", |c| *c != '\0'), min..64)
        .prop_map(|chars| {
            let mut s = String::new();
            for c in chars {
                if s.len() + c.len_utf8() > MAX_PLAIN_FIELD {
                    break;
                }
                s.push(c);
            }
            s
        })
}

proptest! {
    #[test]
    fn plain_round_trip(authzid in field(0), authcid in field(1), password in field(1)) {
        let wire = encode_plain(&authzid, &authcid, &password).unwrap();
        let mut server = SaslServer::start(&Mechanism::Plain, None);
        prop_assert_eq!(server.poll_step(), Some(ServerStep::Challenge("")));
        server.handle_response(wire.as_bytes());
        prop_assert_eq!(
            server.poll_step(),
            Some(ServerStep::Credentials(Credentials {
                authzid,
                authcid,
                password: Secret::new(password),
            }))
        );
    }

    #[test]
    fn server_never_panics(ir in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
                           lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..4)) {
        for mech in [Mechanism::Plain, Mechanism::Login] {
            let mut s = SaslServer::start(&mech, ir.as_deref());
            for line in &lines {
                while s.poll_step().is_some() {}
                s.handle_response(line);
            }
            while s.poll_step().is_some() {}
        }
    }
}
