//! The relay driver over real sockets: messages committed to a spool are delivered to a
//! loopback next hop, bounced with a notification, or deferred and retried with their state
//! recorded, and a restarted relay picks up where the last one stopped.
#![allow(clippy::disallowed_methods)] // a test plays the clock and the peers

use std::time::Duration;

use impulse_test_support::sink::Sink;
use smtp_relay::driver::{Relay, RelaySettings};
use smtp_relay::Status;
use smtp_spool::Spool;

mod common;
use common::{assert_contains_all, commit, drained, first_deferred, start, state, until, WAIT};

/// `target.test` and `sender.test` routed to `hop`.
fn settings(hop: std::net::SocketAddr) -> RelaySettings {
    common::relay_settings_to(&["target.test", "sender.test"], hop)
}

#[test]
fn a_committed_message_is_delivered_and_leaves_the_spool() {
    let sink = Sink::start();
    let (_dir, spool, relay) = start(settings(sink.addr));
    let id = commit(
        &spool,
        "a@sender.test",
        &["b@target.test", "c@target.test"],
        "Subject: hi\r\n\r\nhello\r\n.leading dot\r\n",
    );
    let got = sink.wait_for(1, WAIT);
    assert_eq!(got.len(), 1, "delivered once");
    assert_eq!(got[0].from, "a@sender.test");
    assert_eq!(got[0].to, vec!["b@target.test", "c@target.test"]);
    assert!(
        got[0].data.contains("hello\r\n.leading dot\r\n"),
        "{:?}",
        got[0].data
    );
    assert!(drained(&spool), "{id} left the spool");
    assert_eq!(
        spool.read_state(id).unwrap(),
        None,
        "its record went with it"
    );
    relay.shutdown();
}

#[test]
fn a_message_queued_before_the_start_is_delivered_after_it() {
    let sink = Sink::start();
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let id = commit(
        &spool,
        "a@sender.test",
        &["b@target.test"],
        "Subject: old\r\n\r\nx\r\n",
    );
    let relay = Relay::start(spool.clone(), settings(sink.addr)).unwrap();
    assert_eq!(sink.wait_for(1, WAIT).len(), 1);
    assert!(drained(&spool), "{id} left the spool");
    relay.shutdown();
}

#[test]
fn a_refused_recipient_bounces_with_a_notification_to_the_sender() {
    let sink = Sink::with_rule(|rcpt| {
        rcpt.starts_with("nobody@")
            .then_some("550 5.1.1 <nobody@target.test>: no such user\r\n")
    });
    let (_dir, spool, relay) = start(settings(sink.addr));
    commit(
        &spool,
        "a@sender.test",
        &["b@target.test", "nobody@target.test"],
        "Subject: half\r\nMessage-ID: <m1@sender.test>\r\n\r\nbody\r\n",
    );
    // The message for b, then the notification for a.
    let got = sink.wait_for(2, WAIT);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].to, vec!["b@target.test"]);
    let dsn = &got[1];
    assert_eq!(dsn.from, "", "notifications come from the null sender");
    assert_eq!(dsn.to, vec!["a@sender.test"]);
    assert_contains_all(
        &dsn.data,
        &[
            "Auto-Submitted: auto-replied",
            "multipart/report; report-type=delivery-status",
            "Reporting-MTA: dns; relay.test",
            "Final-Recipient: rfc822; nobody@target.test",
            "Action: failed",
            "Status: 5.1.1",
            "Diagnostic-Code: smtp; 550 5.1.1 <nobody@target.test>: no such user",
            "Message-ID: <m1@sender.test>",
        ],
    );
    assert!(
        !dsn.data.contains("\r\nbody\r\n"),
        "headers only without RET=FULL"
    );
    assert!(drained(&spool), "all done");
    relay.shutdown();
}

#[test]
fn a_deferred_recipient_is_recorded_and_retried_until_it_is_delivered() {
    // Refused connections first: a port with nothing behind it, then a sink takes it.
    let addr = impulse_test_support::peers::free_addr();
    let mut s = settings(addr);
    s.schedule.retry.down_time = Duration::from_secs(1);
    let (_dir, spool, relay) = start(s);
    let id = commit(
        &spool,
        "a@sender.test",
        &["b@target.test"],
        "Subject: later\r\n\r\nx\r\n",
    );
    let recorded = until(WAIT, || {
        state(&spool, id).is_some_and(|s| {
            s.recipients[0].attempts >= 1 && s.recipients[0].status == Status::Deferred
        })
    });
    assert!(recorded, "the failed attempt is in the state record");
    let sink = Sink::on(std::net::TcpListener::bind(addr).unwrap(), |_| None);
    assert_eq!(sink.wait_for(1, WAIT).len(), 1, "delivered on a retry");
    assert!(drained(&spool));
    relay.shutdown();
}

#[test]
fn a_restarted_relay_keeps_the_recorded_schedule_and_never_resends_what_was_done() {
    let sink = Sink::with_rule(|rcpt| {
        rcpt.starts_with("later@")
            .then_some("451 4.2.0 try later\r\n")
    });
    let mut s = settings(sink.addr);
    s.schedule.retry.intervals = vec![Duration::from_secs(3600)];
    let (_dir, spool, relay) = start(s.clone());
    let id = commit(
        &spool,
        "a@sender.test",
        &["now@target.test", "later@target.test"],
        "Subject: two\r\n\r\nx\r\n",
    );
    assert_eq!(sink.wait_for(1, WAIT).len(), 1);
    assert!(until(WAIT, || state(&spool, id)
        .is_some_and(|s| s.recipients[0].status == Status::Delivered)));
    relay.shutdown();
    let before = state(&spool, id).unwrap();
    assert_eq!(before.recipients[1].status, Status::Deferred);
    assert_eq!(before.recipients[1].attempts, 1);
    assert!(
        before.recipients[1]
            .last_reply
            .contains("451 4.2.0 try later"),
        "{before:?}"
    );
    // A new relay on the same spool: nothing is due for an hour, and `now` is done.
    let relay = Relay::start(spool.clone(), s).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.messages().len(), 1, "nothing sent again");
    assert_eq!(state(&spool, id).unwrap(), before);
    relay.shutdown();
}

#[test]
fn queue_commands_apply_without_a_relay_and_a_live_relay_follows_them() {
    use smtp_relay::driver::{offline, Command};
    use smtp_relay::Selection;
    let sink = Sink::start();
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let s = settings(sink.addr);
    let held = commit(
        &spool,
        "a@sender.test",
        &["held@target.test"],
        "Subject: held\r\n\r\nx\r\n",
    );
    let gone = commit(
        &spool,
        "a@sender.test",
        &["gone@target.test"],
        "Subject: gone\r\n\r\nx\r\n",
    );
    let bounced = commit(
        &spool,
        "a@sender.test",
        &["b@target.test"],
        "Subject: bounced\r\n\r\nx\r\n",
    );
    let ids = |id| Selection::Ids(vec![id]);
    assert_eq!(offline::apply(&spool, &s, &Command::Hold(ids(held))), Ok(1));
    assert!(state(&spool, held).unwrap().held);
    assert_eq!(
        offline::apply(&spool, &s, &Command::Delete(ids(gone))),
        Ok(1)
    );
    assert!(spool.read_envelope(gone).is_err(), "deleted");
    assert_eq!(
        offline::apply(&spool, &s, &Command::Bounce(ids(bounced))),
        Ok(1)
    );
    assert!(spool.read_envelope(bounced).is_err(), "bounced and removed");
    let queued = spool.list().unwrap();
    assert_eq!(
        queued.len(),
        2,
        "the held message and the notification: {queued:?}"
    );
    let dsn = queued.iter().find(|e| e.id != held).unwrap();
    assert_eq!(dsn.sender, "");
    assert_eq!(dsn.recipients, vec!["a@sender.test"]);
    // A relay starts: the notification goes, the held message stays until released.
    let relay = Relay::start(spool.clone(), s).unwrap();
    let got = sink.wait_for(1, WAIT);
    assert_eq!(got.len(), 1);
    assert!(
        got[0].data.contains("Status: 5.0.0"),
        "an administrator's bounce: {}",
        got[0].data
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sink.messages().len(), 1, "held");
    assert_eq!(relay.command(Command::Release(ids(held))), Some(1));
    assert_eq!(sink.wait_for(2, WAIT).len(), 2, "released and delivered");
    assert!(drained(&spool));
    relay.shutdown();
}

/// Commits a message whose envelope carries DSN parameters: `RET=HDRS ENVID=e1` on MAIL,
/// `NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;orig@sender.test` on its one RCPT.
fn commit_with_dsn(spool: &Spool, to: &str) -> smtp_spool::QueueId {
    let mut env = common::envelope("a@sender.test", &[to]);
    env.mail_params = "RET=HDRS ENVID=e1".into();
    env.recipients[0].params = "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;orig@sender.test".into();
    common::commit_envelope(spool, &env, "Subject: dsn\r\n\r\nx\r\n")
}

#[test]
fn dsn_parameters_go_to_a_next_hop_that_offers_dsn_and_nothing_is_owed() {
    let sink = Sink::with_dsn();
    let (_dir, spool, relay) = start(settings(sink.addr));
    commit_with_dsn(&spool, "b@target.test");
    assert_eq!(sink.wait_for(1, WAIT).len(), 1);
    let commands = sink.commands();
    let mail = commands.iter().find(|l| l.starts_with("MAIL")).unwrap();
    assert!(
        mail.contains("RET=HDRS") && mail.contains("ENVID=e1"),
        "{mail}"
    );
    let rcpt = commands.iter().find(|l| l.starts_with("RCPT")).unwrap();
    assert!(rcpt.contains("NOTIFY=SUCCESS,FAILURE"), "{rcpt}");
    assert!(rcpt.contains("ORCPT=rfc822;orig@sender.test"), "{rcpt}");
    assert!(drained(&spool), "done, nothing owed");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sink.messages().len(), 1, "the next hop notifies, not us");
    relay.shutdown();
}

#[test]
fn success_asked_of_a_next_hop_without_dsn_gets_a_relayed_notification() {
    let sink = Sink::start();
    let (_dir, spool, relay) = start(settings(sink.addr));
    commit_with_dsn(&spool, "b@target.test");
    let got = sink.wait_for(2, WAIT);
    assert_eq!(got.len(), 2, "the message, then the notification");
    let rcpt = sink
        .commands()
        .into_iter()
        .find(|l| l.starts_with("RCPT"))
        .unwrap();
    assert!(
        !rcpt.contains("NOTIFY"),
        "no DSN parameters without DSN: {rcpt}"
    );
    let dsn = &got[1];
    assert_eq!(dsn.from, "");
    assert_eq!(dsn.to, vec!["a@sender.test"]);
    assert_contains_all(
        &dsn.data,
        &[
            "Action: relayed",
            "Original-Envelope-Id: e1",
            "Original-Recipient: rfc822; orig@sender.test",
            "Final-Recipient: rfc822; b@target.test",
        ],
    );
    assert!(drained(&spool));
    relay.shutdown();
}

#[test]
fn a_next_hop_greeting_with_554_defers_and_never_bounces() {
    use impulse_test_support::fake::{Script, Scripted};
    let hop = Scripted::start(|_| Script::RefuseGreeting);
    let (_dir, spool, relay) = start(settings(hop.addr));
    let id = commit(
        &spool,
        "a@sender.test",
        &["b@target.test"],
        "Subject: x\r\n\r\nx\r\n",
    );
    let state = first_deferred(&spool, id);
    assert!(state.recipients[0].last_reply.contains("554"), "{state:?}");
    assert_eq!(
        spool.list().unwrap().len(),
        1,
        "no notification, the message stays"
    );
    relay.shutdown();
}
