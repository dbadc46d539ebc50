//! STARTTLS: the upgrade handshake with the driver, what is forgotten, response injection,
//! refusals in opportunistic and required mode.

use std::time::Duration;

use super::{kinds, msg, Fake};
use crate::message::OutcomeKind;
use crate::policy::{Policy, TlsMode};
use crate::session::SessionConfig;
use crate::{Credentials, Error, StateMachine};
use smtp_proto::sasl::Secret;
use smtp_proto::Keyword;

const EHLO_TLS: &str = "250-mx.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n";

/// A session whose driver can run TLS, greeted, with STARTTLS sent after `ehlo`.
fn tls_session(mode: TlsMode, ehlo: &str) -> Fake {
    let mut config = SessionConfig::new("client.test");
    config.tls_available = true;
    config.policy = Policy {
        tls: mode,
        ..Policy::default()
    };
    let mut f = Fake::with(StateMachine::builtin(), config);
    f.server("220 mx.test ESMTP\r\n");
    assert_eq!(f.sent(), "EHLO client.test\r\n");
    f.server(ehlo);
    f
}

#[test]
fn starttls_upgrade_forgets_capabilities_and_sends_ehlo_again() {
    let mut f = tls_session(TlsMode::Opportunistic, EHLO_TLS);
    assert_eq!(f.sent(), "STARTTLS\r\n");
    assert!(!f.s.poll_tls_upgrade(), "not before the 220");
    f.server("220 2.0.0 go ahead\r\n");
    assert_eq!(f.sent(), "", "nothing is sent while the driver upgrades");
    assert!(f.s.poll_tls_upgrade());
    assert!(!f.s.poll_tls_upgrade(), "reported once");
    assert_eq!(
        f.s.poll_timeout(),
        Some(f.now + Duration::from_secs(300)),
        "the handshake has the command timeout"
    );
    assert!(!f.s.tls_active());

    f.s.handle_tls_established(f.now);
    f.pump();
    assert!(f.s.tls_active());
    assert!(
        !f.s.capabilities().has(Keyword::Pipelining),
        "plaintext capabilities forgotten"
    );
    assert_eq!(f.sent(), "EHLO client.test\r\n");
    // After TLS the server offers SIZE (and STARTTLS again, which is not used twice).
    f.server("250-mx.test\r\n250-SIZE 1000\r\n250 STARTTLS\r\n");
    assert_eq!(f.sent(), "");
    assert!(f.s.is_idle());
    assert_eq!(f.s.capabilities().size(), Some(1000));
    f.queue(msg(&["b@y.test"]));
    assert_eq!(
        f.sent(),
        "MAIL FROM:<a@x.test> SIZE=21\r\n",
        "no PIPELINING after TLS: the new EHLO did not offer it"
    );
    f.server("250 ok\r\n");
    f.server("250 ok\r\n");
    f.server("354 go\r\n");
    f.server("250 ok\r\n");
    assert_eq!(kinds(&f.done()[0]), [OutcomeKind::Delivered]);
    f.sent();
    f.quit();
}

#[test]
fn bytes_after_the_220_abort_the_session_as_injection() {
    // In the same read as the 220.
    let mut f = tls_session(TlsMode::Opportunistic, EHLO_TLS);
    f.queue(msg(&["b@y.test"]));
    f.sent();
    f.server("220 ready\r\n250 injected\r\n");
    assert_eq!(f.sent(), "", "nothing more is sent");
    assert!(!f.s.poll_tls_upgrade(), "no handshake after an injection");
    assert_eq!(f.session_done(), Some(Some(Error::ResponseInjection)));
    let done = f.done();
    assert_eq!(kinds(&done[0]), [OutcomeKind::Deferred]);
    assert_eq!(done[0][0].reply.status().unwrap().to_string(), "4.7.0");
    assert!(done[0][0].reply.text().contains("response injection"));
    assert!(f.s.error().unwrap().is_peer_fault());

    // In a later read, before the driver upgraded (a partial line is enough).
    let mut f = tls_session(TlsMode::Opportunistic, EHLO_TLS);
    f.sent();
    f.server("220 ready\r\n");
    assert!(f.s.poll_tls_upgrade());
    f.server("2");
    assert_eq!(f.session_done(), Some(Some(Error::ResponseInjection)));
    f.s.handle_tls_established(f.now);
    f.pump();
    assert_eq!(f.sent(), "", "a dead session stays dead");
}

#[test]
fn handshake_failure_and_timeout_defer_everything() {
    let mut f = tls_session(TlsMode::Opportunistic, EHLO_TLS);
    f.queue(msg(&["b@y.test"]));
    f.sent();
    f.server("220 ready\r\n");
    assert!(f.s.poll_tls_upgrade());
    f.s.handle_tls_failed("invalid peer certificate: UnknownIssuer", f.now);
    f.pump();
    assert!(
        matches!(f.session_done(), Some(Some(Error::Tls(ref e))) if e.contains("UnknownIssuer"))
    );
    let done = f.done();
    assert_eq!(kinds(&done[0]), [OutcomeKind::Deferred]);
    assert_eq!(done[0][0].reply.status().unwrap().to_string(), "4.7.5");
    assert_eq!(f.sent(), "", "nothing more in plaintext");

    let mut f = tls_session(TlsMode::Required, EHLO_TLS);
    f.sent();
    f.server("220 ready\r\n");
    f.advance(Duration::from_secs(301));
    assert!(matches!(
        f.session_done(),
        Some(Some(Error::Timeout { .. }))
    ));
}

#[test]
fn refused_starttls_goes_on_in_plaintext_when_opportunistic() {
    let mut f = tls_session(TlsMode::Opportunistic, EHLO_TLS);
    assert_eq!(f.sent(), "STARTTLS\r\n");
    f.server("454 4.7.0 TLS not available due to temporary reason\r\n");
    assert!(!f.s.poll_tls_upgrade());
    assert!(f.s.is_idle());
    assert!(
        f.s.capabilities().has(Keyword::Pipelining),
        "plaintext capabilities kept"
    );
    f.queue(msg(&["b@y.test"]));
    assert_eq!(
        f.sent(),
        "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n"
    );
}

#[test]
fn required_tls_defers_when_refused_or_absent() {
    for refusal in ["454 4.7.0 not now\r\n", "502 5.5.1 unknown command\r\n"] {
        let mut f = tls_session(TlsMode::Required, EHLO_TLS);
        f.queue(msg(&["b@y.test", "c@y.test"]));
        assert_eq!(f.sent(), "STARTTLS\r\n");
        f.server(refusal);
        assert_eq!(f.sent(), "QUIT\r\n", "never a message in plaintext");
        let done = f.done();
        assert_eq!(
            kinds(&done[0]),
            [OutcomeKind::Deferred; 2],
            "a 5xx to STARTTLS defers too"
        );
        assert!(matches!(f.s.error(), Some(Error::TlsUnavailable(_))));
    }
    // Not offered at all: nothing but QUIT after EHLO.
    let mut f = tls_session(TlsMode::Required, "250-mx.test\r\n250 PIPELINING\r\n");
    assert_eq!(f.sent(), "QUIT\r\n");
    assert!(f.s.error().unwrap().to_string().contains("does not offer"));
    let refused = f.s.queue_message(msg(&["b@y.test"]), f.now);
    assert!(matches!(refused, Err(Error::TlsUnavailable(_))));
    // Disabled: STARTTLS is never sent, even when offered.
    let mut f = tls_session(TlsMode::Disabled, EHLO_TLS);
    assert_eq!(f.sent(), "");
    assert!(f.s.is_idle());
}

#[test]
fn auth_waits_for_tls() {
    let mut config = SessionConfig::new("client.test");
    config.tls_available = true;
    config.credentials = Some(Credentials::Password {
        user: "user".into(),
        password: Secret::new("pass"),
    });
    let mut f = Fake::with(StateMachine::builtin(), config);
    f.server("220 mx\r\n");
    f.sent();
    f.server("250-mx\r\n250-AUTH PLAIN\r\n250 STARTTLS\r\n");
    assert_eq!(f.sent(), "STARTTLS\r\n", "no secret in plaintext");
    f.server("220 go\r\n");
    assert!(f.s.poll_tls_upgrade());
    f.s.handle_tls_established(f.now);
    f.pump();
    assert_eq!(f.sent(), "EHLO client.test\r\n");
    f.server("250-mx\r\n250 AUTH PLAIN\r\n");
    assert_eq!(f.sent(), "AUTH PLAIN AHVzZXIAcGFzcw==\r\n");
    f.server("235 2.7.0 ok\r\n");
    assert!(f.s.is_idle());
}

#[test]
fn tls_established_outside_an_upgrade_is_misuse() {
    let mut f = Fake::ready("250 mx\r\n");
    f.s.handle_tls_established(f.now);
    f.pump();
    assert!(matches!(f.session_done(), Some(Some(Error::Misuse(_)))));
}
