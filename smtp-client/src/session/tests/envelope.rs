//! MAIL/RCPT/DATA sequencing, pipelining, and what is refused before sending.

use super::{kinds, msg, Fake, EHLO_PIPE, EHLO_PLAIN};
use crate::message::{Message, OutcomeKind};
use crate::session::SessionConfig;
use crate::StateMachine;

use OutcomeKind::{Bounced, Deferred, Delivered};

#[test]
fn partial_rcpt_acceptance_still_sends_data() {
    let mut f = Fake::ready(EHLO_PLAIN);
    f.queue(msg(&["ok1@y.test", "bad@y.test", "ok2@y.test"]));
    f.sent();
    f.server("250 ok\r\n");
    assert_eq!(f.sent(), "RCPT TO:<ok1@y.test>\r\n");
    f.server("250 ok\r\n");
    assert_eq!(f.sent(), "RCPT TO:<bad@y.test>\r\n");
    f.server("550 5.1.1 user unknown\r\n");
    assert_eq!(f.sent(), "RCPT TO:<ok2@y.test>\r\n");
    f.server("250 ok\r\n");
    assert_eq!(f.sent(), "DATA\r\n");
    f.server("354 go\r\n");
    f.sent();
    f.server("250 2.0.0 ok\r\n");
    let done = f.done();
    assert_eq!(kinds(&done[0]), [Delivered, Bounced, Delivered]);
    assert_eq!(done[0][1].class.id, 10, "Invalid Recipient");
    assert_eq!(done[0][1].category().as_str(), "Hard");
    assert!(!done[0][1].local);
}

#[test]
fn all_rcpts_rejected_means_no_data_then_rset_and_quit() {
    let mut f = Fake::ready(EHLO_PLAIN);
    f.queue(msg(&["x@y.test", "z@y.test"]));
    f.server("250 ok\r\n");
    f.sent();
    f.server("550 5.1.1 no\r\n");
    f.sent();
    f.server("450 4.2.1 try later\r\n");
    // 4xx RCPTs are retried twice (NetX default) before giving up.
    assert_eq!(f.sent(), "RCPT TO:<z@y.test>\r\n");
    f.server("450 4.2.1 try later\r\n");
    f.server("450 4.2.1 try later\r\n");
    assert_eq!(f.sent(), "RCPT TO:<z@y.test>\r\nRSET\r\n", "no DATA");
    let done = f.done();
    assert_eq!(kinds(&done[0]), [Bounced, Deferred]);
    f.server("250 ok\r\n");
    f.quit();
}

#[test]
fn a_503_is_followed_by_rset() {
    let mut f = Fake::ready(EHLO_PLAIN);
    f.queue(msg(&["b@y.test"]));
    f.server("503 5.5.1 bad sequence\r\n");
    assert_eq!(f.sent(), "MAIL FROM:<a@x.test> SIZE=21\r\nRSET\r\n");
    assert_eq!(kinds(&f.done()[0]), [Bounced]);
    f.server("250 ok\r\n");
    // The next message starts afresh.
    f.queue(msg(&["c@y.test"]));
    assert!(f.sent().starts_with("MAIL FROM:"));
    f.server("250 ok\r\n");
    f.server("503 5.5.1 need MAIL\r\n");
    assert_eq!(f.sent(), "RCPT TO:<c@y.test>\r\nRSET\r\n");
}

#[test]
fn rejected_message_ends_in_quit() {
    let mut f = Fake::ready(EHLO_PLAIN);
    f.queue(msg(&["b@y.test"]));
    f.queue(msg(&["c@y.test"]));
    for reply in ["250 ok\r\n", "250 ok\r\n", "354 go\r\n"] {
        f.server(reply);
    }
    f.sent();
    f.server("554 5.7.1 spam content\r\n");
    assert_eq!(f.sent(), "QUIT\r\n");
    let done = f.done();
    assert_eq!(kinds(&done[0]), [Bounced]);
    assert_eq!(done[0][0].class.id, 52, "Spam Content");
    assert_eq!(
        kinds(&done[1]),
        [Deferred],
        "the queued message is not attempted"
    );
    assert!(done[1][0].local);
    f.server("221 bye\r\n");
    assert_eq!(f.session_done(), Some(None));
}

#[test]
fn pipelining_sends_one_flight_and_matches_replies_in_order() {
    let mut f = Fake::ready(EHLO_PIPE);
    f.queue(msg(&["b@y.test", "c@y.test", "d@y.test"]));
    assert_eq!(
        f.sent(),
        "MAIL FROM:<a@x.test> SIZE=21\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\n\
         RCPT TO:<d@y.test>\r\nDATA\r\n"
    );
    // Replies split anywhere.
    f.server("250 ok\r\n250 ok\r\n55");
    f.server("0 5.1.1 no such user\r\n451 4.3.0 later\r\n354 go\r\n");
    assert_eq!(f.sent(), "Subject: t\r\n\r\nhello\r\n.\r\n");
    f.server("250 2.0.0 ok\r\n");
    let done = f.done();
    assert_eq!(kinds(&done[0]), [Delivered, Bounced, Deferred]);
    assert_eq!(done[0][1].recipient, "c@y.test");
}

#[test]
fn pipelining_with_no_accepted_rcpt_terminates_data_and_resets() {
    let mut f = Fake::ready(EHLO_PIPE);
    f.queue(msg(&["b@y.test"]));
    f.sent();
    // A broken server accepts DATA although no RCPT was accepted.
    f.server("250 ok\r\n550 5.1.1 no\r\n354 go\r\n");
    assert_eq!(f.sent(), ".\r\n", "no body for nobody");
    f.server("554 5.5.1 no valid recipients\r\n");
    assert_eq!(f.sent(), "RSET\r\n");
    assert_eq!(kinds(&f.done()[0]), [Bounced]);
    // Usually: DATA refused.
    f.server("250 ok\r\n");
    f.queue(msg(&["b@y.test"]));
    f.sent();
    f.server("250 ok\r\n550 5.1.1 no\r\n554 5.5.1 no valid recipients\r\n");
    assert_eq!(f.sent(), "RSET\r\n");
    assert_eq!(f.done()[1][0].reply.code(), 550, "the RCPT reply decides");
}

#[test]
fn pipelined_mail_refusal_decides_for_every_recipient() {
    let mut f = Fake::ready(EHLO_PIPE);
    f.queue(msg(&["b@y.test", "c@y.test"]));
    f.sent();
    f.server("550 5.7.1 sender blocked\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n");
    f.server("503 5.5.1 need MAIL\r\n");
    let done = f.done();
    assert!(done[0].iter().all(|o| o.reply.code() == 550));
    assert_eq!(f.sent(), "RSET\r\n");
}

#[test]
fn size_is_honoured_before_sending() {
    let mut f = Fake::ready(EHLO_PLAIN);
    let big = Message::new("a@x.test", ["b@y.test"], vec![b'x'; 2000]);
    f.queue(big);
    assert_eq!(f.sent(), "", "nothing sent");
    let done = f.done();
    assert_eq!(done[0][0].class.id, 23, "Too Large");
    assert_eq!(done[0][0].class.name, "Too Large");
    assert!(done[0][0].local);
    assert!(f.s.is_idle());
}

#[test]
fn utf8_and_8bit_need_their_extensions() {
    let mut f = Fake::ready(EHLO_PLAIN);
    f.queue(Message::new("jos\u{e9}@x.test", ["b@y.test"], "hi\r\n"));
    assert_eq!(f.sent(), "");
    assert_eq!(f.done()[0][0].reply.code(), 553);
    // A non-ASCII recipient alone is refused; the others go.
    f.queue(Message::new(
        "a@x.test",
        ["b@y.test", "\u{e9}@y.test"],
        "hi\r\n",
    ));
    assert_eq!(f.sent(), "MAIL FROM:<a@x.test> SIZE=4\r\n");
    f.server("250 ok\r\n");
    assert_eq!(f.sent(), "RCPT TO:<b@y.test>\r\n");

    let mut f = Fake::ready("250-mx\r\n250 SIZE\r\n");
    f.queue(Message::new("a@x.test", ["b@y.test"], "caf\u{e9}\r\n"));
    assert_eq!(f.sent(), "");
    assert_eq!(f.done()[0][0].reply.status().unwrap().to_string(), "5.6.3");

    let mut f = Fake::ready(EHLO_PIPE);
    f.queue(Message::new(
        "jos\u{e9}@x.test",
        ["b@y.test"],
        "caf\u{e9}\r\n",
    ));
    assert!(f
        .sent()
        .starts_with("MAIL FROM:<jos\u{e9}@x.test> SIZE=7 BODY=8BITMIME SMTPUTF8\r\n"));
}

#[test]
fn injected_addresses_are_refused_before_a_byte_is_sent() {
    for bad in [
        "a@x.test>\r\nRCPT TO:<evil@z",
        "a@x\r\n.test",
        "a\0@x.test",
        "a@x.test> X",
    ] {
        let mut f = Fake::ready(EHLO_PIPE);
        f.queue(Message::new(bad, ["b@y.test"], "hi\r\n"));
        assert_eq!(f.sent(), "", "sender {bad:?}");
        assert_eq!(kinds(&f.done()[0]), [Bounced]);

        f.queue(Message::new("a@x.test", [bad, "b@y.test"], "hi\r\n"));
        let sent = f.sent();
        assert!(!sent.contains("evil") && !sent.contains('\0'), "{sent:?}");
        assert_eq!(sent.matches("RCPT").count(), 1, "{sent:?}");
    }
}

#[test]
fn client_args_become_mail_and_rcpt_parameters() {
    let mut config = SessionConfig::new("client.test");
    config.session_args.add("XPRIO", "5").unwrap();
    config.session_args.add("NOTIFY", "FAILURE").unwrap();
    let mut f = Fake::with(StateMachine::builtin(), config);
    f.setup(EHLO_PLAIN);
    let mut m = msg(&["b@y.test"]);
    m.args.add("ENVID", "QQ314159").unwrap();
    m.args.add("XPRIO", "9").unwrap();
    f.queue(m);
    assert_eq!(
        f.sent(),
        "MAIL FROM:<a@x.test> SIZE=21 ENVID=QQ314159 XPRIO=9\r\n",
        "message args override session args"
    );
    f.server("250 ok\r\n");
    assert_eq!(f.sent(), "RCPT TO:<b@y.test> NOTIFY=FAILURE\r\n");

    // A parameter that clashes with one the client adds fails the message unsent.
    let mut f = Fake::ready(EHLO_PLAIN);
    let mut m = msg(&["b@y.test"]);
    m.args.add("SIZE", "1").unwrap();
    f.queue(m);
    assert_eq!(f.sent(), "");
    assert_eq!(kinds(&f.done()[0]), [Bounced]);
}
