//! Timeouts, retries, the reset limit, AUTH and STARTTLS rules.

use std::time::Duration;

use smtp_proto::sasl::Secret;

use super::{kinds, msg, Fake, EHLO_PLAIN};
use crate::message::{Credentials, OutcomeKind};
use crate::policy::{Policy, TlsMode};
use crate::session::SessionConfig;
use crate::{Error, Stage, StateMachine};

fn with_policy(policy: Policy) -> Fake {
    let mut config = SessionConfig::new("client.test");
    config.policy = policy;
    Fake::with(StateMachine::builtin(), config)
}

#[test]
fn greeting_timeout_defers_queued_messages() {
    let mut f = Fake::new();
    f.queue(msg(&["b@y.test"]));
    f.advance(Duration::from_secs(299));
    assert!(f.done().is_empty());
    f.advance(Duration::from_secs(1));
    assert_eq!(kinds(&f.done()[0]), [OutcomeKind::Deferred]);
    assert!(matches!(
        f.session_done(),
        Some(Some(Error::Timeout {
            stage: Stage::Greeting,
            ..
        }))
    ));
    // Errors stick: later input changes nothing.
    f.server("220 late\r\n");
    assert_eq!(f.sent(), "");
    assert!(matches!(f.s.error(), Some(Error::Timeout { .. })));
}

#[test]
fn each_stage_has_its_timeout() {
    let policy = Policy::default();
    let mut f = Fake::ready(EHLO_PLAIN);
    f.queue(msg(&["b@y.test"]));
    assert_eq!(f.s.poll_timeout(), Some(f.now + policy.command_timeout));
    f.server("250 ok\r\n");
    f.server("250 ok\r\n");
    assert_eq!(f.s.poll_timeout(), Some(f.now + policy.data_init_timeout));
    f.server("354 go\r\n");
    assert_eq!(f.s.poll_timeout(), Some(f.now + policy.final_timeout));
    f.advance(policy.final_timeout);
    assert!(matches!(
        f.session_done(),
        Some(Some(Error::Timeout {
            stage: Stage::Final,
            ..
        }))
    ));
    assert_eq!(f.done()[0][0].class.id, 24, "Timeout");
}

#[test]
fn mail_4xx_is_retried_then_deferred_and_5xx_never() {
    let mut f = Fake::ready(EHLO_PLAIN);
    f.queue(msg(&["b@y.test"]));
    let mail = f.sent();
    for _ in 0..2 {
        f.server("451 4.3.0 busy\r\n");
        assert_eq!(f.sent(), mail);
    }
    f.server("451 4.3.0 busy\r\n");
    assert_eq!(f.sent(), "", "no RSET: MAIL was never accepted");
    assert_eq!(kinds(&f.done()[0]), [OutcomeKind::Deferred]);

    let mut f = with_policy(Policy {
        command_retries: 0,
        ..Policy::default()
    });
    f.setup(EHLO_PLAIN);
    f.queue(msg(&["b@y.test"]));
    f.sent();
    f.server("550 5.7.1 go away\r\n");
    assert_eq!(f.sent(), "");
    assert_eq!(kinds(&f.done()[0]), [OutcomeKind::Bounced]);
}

#[test]
fn the_reset_limit_ends_the_session() {
    let mut f = with_policy(Policy {
        max_resets: 1,
        ..Policy::default()
    });
    f.setup(EHLO_PLAIN);
    for _ in 0..3 {
        f.queue(msg(&["b@y.test"]));
    }
    f.sent();
    f.server("250 ok\r\n");
    f.server("550 5.1.1 no\r\n");
    assert_eq!(f.sent(), "RCPT TO:<b@y.test>\r\nRSET\r\n");
    f.server("250 ok\r\n");
    f.sent();
    f.server("250 ok\r\n");
    f.server("550 5.1.1 no\r\n");
    assert_eq!(f.sent(), "RCPT TO:<b@y.test>\r\nQUIT\r\n");
    let done = f.done();
    assert_eq!(done.len(), 3);
    assert_eq!(kinds(&done[2]), [OutcomeKind::Deferred]);
    assert!(done[2][0].reply.text().contains("reset limit"));
}

fn auth_session(credentials: Credentials, policy: Policy) -> Fake {
    let mut config = SessionConfig::new("client.test");
    config.credentials = Some(credentials);
    config.policy = policy;
    let mut f = Fake::with(StateMachine::builtin(), config);
    f.server("220 mx\r\n");
    f.sent();
    f
}

fn password() -> Credentials {
    Credentials::Password {
        user: "user".into(),
        password: Secret::new("pass"),
    }
}

fn plaintext_ok() -> Policy {
    Policy {
        auth_without_tls: true,
        ..Policy::default()
    }
}

#[test]
fn auth_plain_then_login() {
    let mut f = auth_session(password(), plaintext_ok());
    f.server("250-mx\r\n250 AUTH LOGIN PLAIN\r\n");
    assert_eq!(f.sent(), "AUTH PLAIN AHVzZXIAcGFzcw==\r\n");
    f.server("235 2.7.0 ok\r\n");
    assert!(f.s.is_idle());

    let mut f = auth_session(password(), plaintext_ok());
    f.server("250-mx\r\n250 AUTH LOGIN\r\n");
    assert_eq!(f.sent(), "AUTH LOGIN dXNlcg==\r\n");
    f.server("334 UGFzc3dvcmQ6\r\n");
    assert_eq!(f.sent(), "cGFzcw==\r\n");
    f.server("235 2.7.0 ok\r\n");
    assert!(f.s.is_idle());
}

#[test]
fn auth_failures_end_the_session() {
    let mut f = auth_session(password(), plaintext_ok());
    f.server("250-mx\r\n250 AUTH PLAIN\r\n");
    f.sent();
    f.server("535 5.7.8 bad credentials\r\n");
    assert_eq!(f.sent(), "QUIT\r\n");
    assert!(matches!(f.s.error(), Some(Error::Refused(r)) if r.code() == 535));

    // XOAUTH2: the error challenge gets an empty line, then the final reply.
    let token = Credentials::OAuth2 {
        user: "u@x".into(),
        token: Secret::new("tok"),
    };
    let mut f = auth_session(token, plaintext_ok());
    f.server("250-mx\r\n250 AUTH XOAUTH2 PLAIN\r\n");
    assert!(f.sent().starts_with("AUTH XOAUTH2 "));
    f.server("334 eyJzdGF0dXMiOiI0MDEifQ==\r\n");
    assert_eq!(f.sent(), "\r\n");
    f.server("535 5.7.8 no\r\n");
    assert_eq!(f.sent(), "QUIT\r\n");

    // Without TLS, AUTH is refused by policy before a secret is sent.
    let mut f = auth_session(password(), Policy::default());
    f.server("250-mx\r\n250 AUTH PLAIN\r\n");
    assert_eq!(f.sent(), "QUIT\r\n");
    assert!(f
        .s
        .error()
        .unwrap()
        .to_string()
        .contains("auth_without_tls"));

    // Not offered.
    let mut f = auth_session(password(), plaintext_ok());
    f.server("250 mx\r\n");
    assert_eq!(f.sent(), "QUIT\r\n");
}

#[test]
fn required_tls_fails_clearly() {
    let mut f = with_policy(Policy {
        tls: TlsMode::Required,
        ..Policy::default()
    });
    f.queue(msg(&["b@y.test"]));
    f.server("220 mx\r\n");
    f.sent();
    f.server("250-mx\r\n250 STARTTLS\r\n");
    assert_eq!(f.sent(), "QUIT\r\n", "never a message in plaintext");
    let done = f.done();
    assert_eq!(kinds(&done[0]), [OutcomeKind::Deferred]);
    assert!(done[0][0].reply.text().contains("TLS not available"));
    assert!(matches!(f.s.error(), Some(Error::TlsUnavailable(_))));
    // Opportunistic goes on in plaintext.
    let mut f = Fake::ready("250-mx\r\n250 STARTTLS\r\n");
    f.queue(msg(&["b@y.test"]));
    assert!(f.sent().starts_with("MAIL FROM:"));
}
