//! DSN (RFC 3461) on the server over real sockets: `DSN` is advertised, `RET`/`ENVID` on MAIL
//! and `NOTIFY`/`ORCPT` on RCPT are accepted and stored in the spooled envelope as the client
//! sent them (the relay passes them on and writes notifications from them), malformed ones
//! get `501 5.5.4`; and Python's smtplib, a real client, sends them the same way.

use std::process::Command;

use impulse::server::spool::Spool;
use impulse_test_support::peers;
use impulse_test_support::server::TestServer;

fn envelope_of_the_only_message(spool: &Spool) -> impulse::server::spool::Envelope {
    let list = spool.list().unwrap();
    assert_eq!(list.len(), 1);
    spool.read_envelope(list[0].id).unwrap()
}

#[test]
fn dsn_parameters_reach_the_spooled_envelope() {
    let server = TestServer::start();
    let mut c = server.connect();
    let ehlo = c.cmd("EHLO client.test");
    assert!(
        ehlo.lines().any(|l| l == "250-DSN" || l == "250 DSN"),
        "{ehlo}"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<s@example.com> RET=FULL RET=HDRS"),
        "501 5.5.4 Duplicate parameter"
    );
    assert_eq!(
        c.cmd(&format!(
            "MAIL FROM:<s@example.com> ENVID={}",
            "e".repeat(101)
        )),
        "501 5.5.4 Invalid ENVID value"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<s@example.com> RET=FULL ENVID=Q+2B1+3D2"),
        "250 2.1.0 Ok"
    );
    assert_eq!(
        c.cmd("RCPT TO:<a@example.net> NOTIFY=NEVER,DELAY"),
        "501 5.5.4 Invalid NOTIFY value"
    );
    assert_eq!(
        c.cmd("RCPT TO:<a@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;A+2Bx@example.net"),
        "250 2.1.5 Ok"
    );
    assert_eq!(
        c.cmd("RCPT TO:<b@example.net> NOTIFY=NEVER"),
        "250 2.1.5 Ok"
    );
    assert_eq!(c.cmd("RCPT TO:<c@example.net>"), "250 2.1.5 Ok");
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: dsn\r\n\r\nbody\r\n.\r\n");
    assert!(c.reply().starts_with("250 2.0.0"));
    c.cmd("QUIT");

    let env = envelope_of_the_only_message(&server.spool);
    assert_eq!(env.mail_params, "RET=FULL ENVID=Q+2B1+3D2");
    let params: Vec<&str> = env.recipients.iter().map(|r| r.params.as_str()).collect();
    assert_eq!(
        params,
        [
            "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;A+2Bx@example.net",
            "NOTIFY=NEVER",
            ""
        ]
    );
    server.stop();
}

const SMTPLIB_DSN: &str = r#"
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))
s.ehlo('client.test')
assert s.has_extn('dsn'), s.esmtp_features
s.sendmail('s@example.com', ['a@example.net', 'b@example.net'],
           b'Subject: dsn\r\n\r\nbody\r\n',
           mail_options=['RET=HDRS', 'ENVID=id+2B42'],
           rcpt_options=['NOTIFY=FAILURE,DELAY', 'ORCPT=rfc822;a@example.net'])
s.quit()
"#;

#[test]
fn smtplib_sends_dsn_parameters_that_are_stored() {
    let Some(python) = peers::program("python3") else {
        return;
    };
    let server = TestServer::start();
    let status = Command::new(python)
        .args(["-c", SMTPLIB_DSN, &server.addr.port().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "the smtplib script failed");
    let env = envelope_of_the_only_message(&server.spool);
    // smtplib adds SIZE itself.
    assert_eq!(env.mail_params, "SIZE=22 RET=HDRS ENVID=id+2B42");
    for r in &env.recipients {
        assert_eq!(r.params, "NOTIFY=FAILURE,DELAY ORCPT=rfc822;a@example.net");
    }
    server.stop();
}
