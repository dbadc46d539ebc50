use std::net::TcpListener;
use std::sync::mpsc;

use super::*;
use crate::route::Route;

#[test]
fn refusals_quote_the_next_hop_on_one_line_and_keep_its_5_1_x_code() {
    let hop = Reply::new(
        550,
        Some(EnhancedStatus::new(5, 1, 10)),
        "No such\nuser here",
    );
    let r = Answer::Unknown(hop).refusal("u@example.org").unwrap();
    assert_eq!(
        String::from_utf8(r.to_bytes()).unwrap(),
        "550 5.1.10 <u@example.org>: Recipient address rejected: 550 5.1.10 No such user here\r\n"
    );
    let other = Reply::new(554, Some(EnhancedStatus::new(5, 7, 1)), "policy");
    let r = Answer::Unknown(other).refusal("u@example.org").unwrap();
    assert_eq!(r.status(), Some(EnhancedStatus::new(5, 1, 1)));
    assert_eq!(r.code(), 550);
    let plain = Answer::Unknown(Reply::new(550, None, "unknown"));
    assert!(plain
        .refusal("u@x")
        .unwrap()
        .text()
        .ends_with(": 550 unknown"));

    let r = Answer::Unverified("127.0.0.1:9: refused\r\nx".into())
        .refusal("u@example.org")
        .unwrap();
    assert_eq!(r.code(), 450);
    assert_eq!(r.status(), Some(EnhancedStatus::new(4, 1, 1)));
    assert_eq!(r.lines().len(), 1, "no line can be injected");
    assert!(r
        .text()
        .contains("unverified address: 127.0.0.1:9: refused"));
    assert_eq!(Answer::Valid.refusal("u@x"), None);
    assert_eq!(
        busy_reply("u@x").status(),
        Some(EnhancedStatus::new(4, 3, 2))
    );
}

fn settings(hop: &str) -> VerifySettings {
    settings_tls(hop, "none")
}

fn settings_tls(hop: &str, tls: &str) -> VerifySettings {
    let route = Route::new(&["example.org"], &[hop], Some(tls)).unwrap();
    let mut s = VerifySettings::new(RouteTable::new(vec![route], None), "mx.test");
    s.timeout = Duration::from_secs(10);
    s
}

#[test]
fn a_full_queue_is_busy_at_once_and_waiters_of_one_address_share_a_probe() {
    // A next hop that accepts connections and never speaks: probes wait for their deadline.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let hop = silent.local_addr().unwrap().to_string();
    let verifier = Verifier::start(settings(&hop), 1).unwrap();
    let (tx, rx) = mpsc::channel::<Answer>();
    let waiter = |tx: &mpsc::Sender<Answer>| {
        let tx = tx.clone();
        move || -> Waiter { Box::new(move |a: &Answer| drop(tx.send(a.clone()))) }
    };
    assert_eq!(
        verifier.verify("a@example.org", "example.org", waiter(&tx)),
        Verify::Waiting
    );
    // The same address (any case) joins the probe under way: no new job.
    for _ in 0..3 {
        assert_eq!(
            verifier.verify("A@Example.org", "example.org", waiter(&tx)),
            Verify::Waiting
        );
    }
    // One thread busy with the first probe, at most QUEUE_PER_THREAD more may wait.
    let mut busy = false;
    for i in 0..=QUEUE_PER_THREAD + 1 {
        match verifier.verify(&format!("u{i}@example.org"), "example.org", waiter(&tx)) {
            Verify::Waiting => {}
            Verify::Busy => busy = true,
            Verify::Cached(a) => panic!("nothing is cached yet: {a:?}"),
        }
    }
    assert!(busy, "a full queue is answered at once");
    drop(verifier);
    drop(silent);
    let first = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(matches!(first, Answer::Unverified(_)), "{first:?}");
    for _ in 0..3 {
        assert_eq!(rx.recv_timeout(Duration::from_secs(30)).unwrap(), first);
    }
}

#[test]
fn a_required_tls_route_is_probed_over_starttls_to_a_self_signed_next_hop() {
    use impulse_test_support::tls::{self_signed, FakeServer, Script};
    let hop = FakeServer::start(Script::Normal, self_signed());
    let verifier = Verifier::start(settings_tls(&hop.addr.to_string(), "required"), 1).unwrap();
    let (tx, rx) = mpsc::channel::<Answer>();
    let waiting = verifier.verify("u@example.org", "example.org", move || -> Waiter {
        Box::new(move |a: &Answer| drop(tx.send(a.clone())))
    });
    assert_eq!(waiting, Verify::Waiting);
    let answer = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(answer, Answer::Valid);
    let seen = hop.finish();
    assert_eq!(seen.handshake_error, None);
    assert!(
        seen.plain_text().contains("STARTTLS"),
        "{}",
        seen.plain_text()
    );
    assert!(
        !seen.plain_text().contains("RCPT"),
        "the probe's envelope never in plaintext: {}",
        seen.plain_text()
    );
    assert!(
        seen.tls_text().contains("RCPT TO:<u@example.org>"),
        "{}",
        seen.tls_text()
    );
    assert!(!seen.tls_text().contains("DATA"), "{}", seen.tls_text());
    assert_eq!(verifier.counts().valid, 1);
}

#[test]
fn a_job_queued_longer_than_a_probe_takes_is_answered_without_a_probe() {
    // One thread, busy for 2 s with a next hop that never speaks; the address behind it is
    // taken once a probe may last only 0.5 s: it waited longer than that, so no probe.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let hop = silent.local_addr().unwrap().to_string();
    let mut s = settings(&hop);
    s.timeout = Duration::from_secs(2);
    let verifier = Verifier::start(s.clone(), 1).unwrap();
    let (tx, rx) = mpsc::channel::<(String, Answer)>();
    let waiter = |who: &str| {
        let (tx, who) = (tx.clone(), who.to_owned());
        move || -> Waiter { Box::new(move |a: &Answer| drop(tx.send((who, a.clone())))) }
    };
    assert_eq!(
        verifier.verify("a@example.org", "example.org", waiter("a")),
        Verify::Waiting
    );
    assert_eq!(
        verifier.verify("b@example.org", "example.org", waiter("b")),
        Verify::Waiting
    );
    s.timeout = Duration::from_millis(500);
    verifier.reload(s);
    let first = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(first.0, "a");
    assert!(
        matches!(&first.1, Answer::Unverified(why) if why != "queued too long"),
        "{first:?}"
    );
    let second = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(
        second,
        ("b".into(), Answer::Unverified("queued too long".into()))
    );
    assert_eq!(verifier.counts().unverified, 2);
    // Not cached: the next RCPT for b gets a probe of its own.
    assert_eq!(
        verifier.verify("b@example.org", "example.org", waiter("b")),
        Verify::Waiting
    );
}
