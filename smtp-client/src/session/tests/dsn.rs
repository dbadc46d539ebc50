//! RFC 3461 parameters passed on only to a server that offers DSN, and which reply decided
//! each recipient (the stage of its outcome).

use super::{kinds, msg, Fake, EHLO_PLAIN};
use crate::dsn::{Dsn, Notify, Orcpt, RcptDsn, Ret};
use crate::error::Stage;
use crate::message::{Message, OutcomeKind};

use OutcomeKind::{Bounced, Delivered};

const EHLO_DSN: &str = "250-mx.test\r\n250-DSN\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n";

const SUCCESS: Notify = Notify {
    success: true,
    failure: false,
    delay: false,
};

fn with_dsn(to: &[&str]) -> Message {
    let mut m = msg(to).with_dsn(Dsn {
        ret: Some(Ret::Hdrs),
        envid: Some("id 1+x".into()),
        recipients: vec![
            RcptDsn {
                notify: Some(SUCCESS),
                orcpt: Some(Orcpt {
                    addr_type: "rfc822".into(),
                    addr: "orig=1@z.test".into(),
                }),
            },
            RcptDsn::notify(Notify::NEVER),
        ],
    });
    // The message's own DSN parameters win over the arguments'.
    m.args.add("NOTIFY", "FAILURE").unwrap();
    m.args.add("ENVID", "other").unwrap();
    m.args.add("X-KEEP", "yes").unwrap();
    m
}

/// Serves one non-pipelined transaction whose RCPTs are all accepted; returns what the
/// client sent up to DATA.
fn envelope(f: &mut Fake, rcpts: usize) -> String {
    let mut sent = f.sent();
    for _ in 0..=rcpts {
        f.server("250 ok\r\n");
        sent.push_str(&f.sent());
    }
    sent
}

#[test]
fn a_server_that_offers_dsn_gets_ret_envid_notify_and_orcpt_added_when_missing() {
    let mut f = Fake::ready(EHLO_DSN);
    f.queue(with_dsn(&["b@y.test", "c+1@y.test", "d@y.test"]));
    assert_eq!(
        envelope(&mut f, 3),
        "MAIL FROM:<a@x.test> RET=HDRS ENVID=id+201+2Bx X-KEEP=yes\r\n\
         RCPT TO:<b@y.test> NOTIFY=SUCCESS ORCPT=rfc822;orig+3D1@z.test\r\n\
         RCPT TO:<c+1@y.test> NOTIFY=NEVER ORCPT=rfc822;c+2B1@y.test\r\n\
         RCPT TO:<d@y.test> ORCPT=rfc822;d@y.test\r\n\
         DATA\r\n"
    );
}

#[test]
fn a_server_without_dsn_gets_none_of_them() {
    let mut f = Fake::ready(EHLO_PLAIN);
    f.queue(with_dsn(&["b@y.test", "c@y.test"]));
    assert_eq!(
        envelope(&mut f, 2),
        "MAIL FROM:<a@x.test> SIZE=21 X-KEEP=yes\r\n\
         RCPT TO:<b@y.test>\r\n\
         RCPT TO:<c@y.test>\r\n\
         DATA\r\n"
    );
}

#[test]
fn without_dsn_parameters_the_arguments_go_out_as_before() {
    let mut f = Fake::ready(EHLO_DSN);
    let mut m = msg(&["b@y.test"]);
    m.args.add("NOTIFY", "FAILURE").unwrap();
    f.queue(m);
    assert_eq!(
        envelope(&mut f, 1),
        "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test> NOTIFY=FAILURE\r\nDATA\r\n"
    );
}

#[test]
fn an_unusable_orcpt_is_replaced_and_an_overlong_envid_refused_before_sending() {
    let mut f = Fake::ready(EHLO_DSN);
    let bad_type = Orcpt {
        addr_type: "rfc 822\r\n".into(),
        addr: "x@z.test".into(),
    };
    let m = msg(&["b@y.test"]).with_dsn(Dsn {
        recipients: vec![RcptDsn {
            notify: None,
            orcpt: Some(bad_type),
        }],
        ..Dsn::default()
    });
    f.queue(m);
    assert_eq!(
        envelope(&mut f, 1),
        "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test> ORCPT=rfc822;b@y.test\r\nDATA\r\n"
    );
    f.server("354 go\r\n");
    f.sent();
    f.server("250 ok\r\n");

    let long = msg(&["b@y.test"]).with_dsn(Dsn {
        envid: Some("x".repeat(101)),
        ..Dsn::default()
    });
    f.queue(long);
    assert_eq!(f.sent(), "", "nothing sent");
    let done = f.done();
    let o = &done[1][0];
    assert_eq!(
        (o.kind, o.reply.code(), o.local, o.stage),
        (Bounced, 501, true, None)
    );
}

#[test]
fn each_outcome_says_which_reply_decided_it() {
    let mut f = Fake::ready(EHLO_PLAIN);
    f.queue(msg(&["full@y.test", "ok@y.test", "gone@y.test"]));
    f.sent();
    for reply in [
        "250 ok\r\n",
        "552 5.2.2 mailbox full\r\n",
        "250 ok\r\n",
        "550 5.1.1 no such user\r\n",
        "354 go\r\n",
    ] {
        f.server(reply);
    }
    f.sent();
    f.server("552 5.3.4 message too big\r\n");
    let done = f.done();
    assert_eq!(kinds(&done[0]), [Bounced, Bounced, Bounced]);
    let stages: Vec<_> = done[0].iter().map(|o| o.stage).collect();
    assert_eq!(
        stages,
        [Some(Stage::Rcpt), Some(Stage::Final), Some(Stage::Rcpt)]
    );
    assert!(done[0][0].at_rcpt(), "a 552 to RCPT (RFC 5321 §4.5.3.1.10)");
    assert!(!done[0][1].at_rcpt(), "a 552 at end of data");
    assert!(done[0].iter().all(|o| !o.local));
}

#[test]
fn a_refused_mail_or_data_and_a_local_decision_have_their_stages() {
    let mut f = Fake::ready(EHLO_PLAIN);
    f.queue(msg(&["b@y.test"]));
    f.server("550 5.7.1 sender refused\r\n");
    f.queue(msg(&["c@y.test"]));
    for reply in ["250 ok\r\n", "250 ok\r\n", "554 5.5.1 no DATA for you\r\n"] {
        f.server(reply);
    }
    f.server("250 ok\r\n");
    // Refused before sending: a non-ASCII recipient to a server without SMTPUTF8.
    f.queue(msg(&["d@y.test", "ü@y.test"]));
    for reply in ["250 ok\r\n", "250 ok\r\n", "354 go\r\n", "250 ok\r\n"] {
        f.server(reply);
    }
    let done = f.done();
    assert_eq!(done[0][0].stage, Some(Stage::Mail));
    assert_eq!(done[1][0].stage, Some(Stage::DataInit));
    assert_eq!(kinds(&done[2]), [Delivered, Bounced]);
    assert_eq!(done[2][0].stage, Some(Stage::Final));
    assert_eq!((done[2][1].local, done[2][1].stage), (true, None));
}
