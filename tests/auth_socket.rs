//! SMTP AUTH in the server as an operator turns it on (`[plugins.auth-file]`, `[auth]`),
//! over 127.0.0.1 with real clients: swaks and Python's smtplib log in with PLAIN and LOGIN
//! after STARTTLS, a bad password is refused, AUTH without TLS is refused unless
//! `[auth] plaintext = true`, the identity lands in the spool envelope and `Received:` says
//! `ESMTPSA` without naming it.
//!
//! A missing swaks or python3 prints SKIPPED and that test passes, unless `CI` is set.

#[path = "support/auth_server.rs"]
mod auth_server;

use auth_server::{ca, python, start, swaks, PASSWORD, USER};

/// The `AUTH PLAIN` initial response for `user` and `password`.
fn plain(user: &str, password: &str) -> String {
    impulse::proto::sasl::encode_plain("", user, password).unwrap()
}

#[test]
fn swaks_logs_in_with_plain_and_login_after_starttls() {
    for mechanism in ["PLAIN", "LOGIN"] {
        let s = start(|_| {});
        let args = [
            "--tls",
            "--auth",
            mechanism,
            "--auth-user",
            USER,
            "--auth-password",
            PASSWORD,
        ];
        let Some((ok, text)) = swaks(s.addr(0), &args) else {
            return;
        };
        assert!(ok, "{text}");
        assert!(text.contains("235 2.7.0"), "{text}");
        let (env, message) = s.only_message();
        assert_eq!(env.auth.as_deref(), Some(USER), "{mechanism}");
        let received = message.split("\r\n\r\n").next().unwrap();
        assert!(received.contains("with ESMTPSA"), "{received}");
        assert!(
            !received.contains(USER),
            "the identity is not in Received: {received}"
        );
    }
}

#[test]
fn swaks_with_a_bad_password_gets_535_and_nothing_is_queued() {
    let s = start(|_| {});
    let args = [
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        USER,
        "--auth-password",
        "wrong",
    ];
    let Some((ok, text)) = swaks(s.addr(0), &args) else {
        return;
    };
    assert!(!ok, "{text}");
    assert!(text.contains("535 5.7.8"), "{text}");
    assert_eq!(s.server.count(), 0);
}

const SMTPLIB_STARTTLS: &str = r#"
import smtplib, ssl, sys
port, ca, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
s = smtplib.SMTP('localhost', port)
s.ehlo('client.test')
assert not s.has_extn('auth'), 'AUTH offered before TLS'
s.starttls(context=ctx)
s.ehlo('client.test')
assert s.has_extn('auth'), 'no AUTH after STARTTLS'
assert s.esmtp_features['auth'].split() == ['PLAIN', 'LOGIN'], s.esmtp_features['auth']
try:
    s.login(user, 'wrong')
    raise SystemExit('a bad password was accepted')
except smtplib.SMTPAuthenticationError as e:
    assert e.smtp_code == 535, e
# LOGIN explicitly, then a message.
s.user, s.password = user, password
code, text = s.auth('LOGIN', s.auth_login)
assert code == 235, (code, text)
s.sendmail('a@example.org', ['b@example.com'], b'Subject: smtplib\r\n\r\nhello\r\n')
s.quit()
# PLAIN (smtplib's choice among PLAIN and LOGIN).
s = smtplib.SMTP('localhost', port)
s.starttls(context=ctx)
s.login(user, password)
s.quit()
print('ok')
"#;

#[test]
fn smtplib_logs_in_after_starttls_and_a_bad_password_is_535() {
    let s = start(|_| {});
    let port = s.addr(0).port().to_string();
    let Some(out) = python(SMTPLIB_STARTTLS, &[&port, &ca(&s.certs), USER, PASSWORD]) else {
        return;
    };
    assert!(out.contains("ok"), "{out}");
    let (env, _) = s.only_message();
    assert_eq!(env.auth.as_deref(), Some(USER));
}

#[test]
fn plaintext_auth_is_refused_unless_configured() {
    let s = start(|_| {});
    let mut c = s.server.connect();
    let ehlo = c.cmd("EHLO client.test");
    assert!(!ehlo.contains("AUTH"), "{ehlo}");
    assert!(ehlo.contains("STARTTLS"), "{ehlo}");
    let reply = c.cmd(&format!("AUTH PLAIN {}", plain(USER, PASSWORD)));
    assert!(reply.starts_with("538 5.7.11"), "{reply}");
    drop(c);

    let s = start(|c| c.auth.plaintext = true);
    let mut c = s.server.connect();
    let ehlo = c.cmd("EHLO client.test");
    assert!(ehlo.contains("AUTH PLAIN LOGIN"), "{ehlo}");
    let reply = c.cmd(&format!("AUTH PLAIN {}", plain(USER, PASSWORD)));
    assert!(reply.starts_with("235 2.7.0"), "{reply}");
    assert!(c.cmd("MAIL FROM:<a@example.org>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<b@example.com>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    assert!(c.cmd("Subject: x\r\n\r\nhi\r\n.").starts_with("250"));
    let (env, message) = s.only_message();
    assert_eq!(env.auth.as_deref(), Some(USER));
    assert!(message.contains("with ESMTPA"), "{message}");
}

const SMTPLIB_PLAINTEXT: &str = r#"
import smtplib, sys
port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = smtplib.SMTP('127.0.0.1', port)
s.ehlo('client.test')
assert s.has_extn('auth')
s.login(user, password)
s.sendmail('a@example.org', ['b@example.com'], b'Subject: plain\r\n\r\nhello\r\n')
s.quit()
print('ok')
"#;

#[test]
fn smtplib_logs_in_without_tls_when_plaintext_is_on() {
    let s = start(|c| c.auth.plaintext = true);
    let port = s.addr(0).port().to_string();
    let Some(out) = python(SMTPLIB_PLAINTEXT, &[&port, USER, PASSWORD]) else {
        return;
    };
    assert!(out.contains("ok"), "{out}");
    assert_eq!(s.only_message().0.auth.as_deref(), Some(USER));
}

#[test]
fn failed_attempts_count_toward_the_error_budget() {
    let s = start(|c| {
        c.auth.plaintext = true;
        c.limits.soft_errors = 1;
        c.limits.hard_errors = 3;
    });
    let mut c = s.server.connect();
    c.cmd("EHLO client.test");
    for _ in 0..2 {
        let reply = c.cmd(&format!("AUTH PLAIN {}", plain(USER, "wrong")));
        assert!(reply.starts_with("535 5.7.8"), "{reply}");
    }
    let reply = c.cmd(&format!("AUTH PLAIN {}", plain(USER, "wrong")));
    assert!(reply.starts_with("535 5.7.8"), "{reply}");
    let rest = c.rest();
    assert!(rest.starts_with("421 4.7.0"), "{rest}");
}

#[test]
fn cancel_a_too_long_response_and_mail_auth_null() {
    let s = start(|c| c.auth.plaintext = true);
    let mut c = s.server.connect();
    c.cmd("EHLO client.test");
    // `*` cancels an exchange (RFC 4954 §4).
    assert!(c.cmd("AUTH LOGIN").starts_with("334 "));
    let reply = c.cmd("*");
    assert!(reply.starts_with("501"), "{reply}");
    // A too-long initial response is a 5xx, and the session goes on.
    let long = "A".repeat(20_000);
    let reply = c.cmd(&format!("AUTH PLAIN {long}"));
    assert!(reply.starts_with('5'), "{reply}");
    assert!(c.cmd("NOOP").starts_with("250"));
    let reply = c.cmd(&format!("AUTH PLAIN {}", plain(USER, PASSWORD)));
    assert!(reply.starts_with("235"), "{reply}");
    // RFC 4954 §5: AUTH=<> on MAIL.
    let reply = c.cmd("MAIL FROM:<a@example.org> AUTH=<>");
    assert!(reply.starts_with("250"), "{reply}");
}
