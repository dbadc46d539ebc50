//! The scheduler driven as a driver would drive it, in memory, on a simulated clock.

use std::collections::HashMap;
use std::net::SocketAddr;

use std::time::Duration;

use super::*;
use crate::retry::RetryPolicy;
use crate::state::MessageState;

pub(super) const T0: Timestamp = Timestamp(1_700_000_000);

pub(super) fn qid(n: u64) -> QueueId {
    QueueId::from_parts(n, 1)
}

pub(super) fn hop(port: u16) -> NextHop {
    NextHop {
        host: "mx.target.test".into(),
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

pub(super) fn dest(ports: &[u16]) -> Destination {
    ports.iter().map(|&p| hop(p)).collect::<Vec<_>>().into()
}

pub(super) fn meta(sender: &str, rcpts: &[&str], arrival: Timestamp) -> MessageMeta {
    MessageMeta {
        sender: sender.into(),
        size: 100,
        state: MessageState::new(arrival, rcpts.iter().map(|r| (*r, ""))),
    }
}

/// The driver's side: records written, notifications committed, the other actions in order.
#[derive(Default)]
pub(super) struct Driver {
    pub disk: HashMap<QueueId, Vec<u8>>,
    pub log: Vec<Action>,
}

impl Driver {
    /// Carries out every action: Persist and Bounce are confirmed at once, Complete removes
    /// the record; returns the Resolve and Deliver actions for the test to answer.
    pub fn run(&mut self, s: &mut Scheduler) -> Vec<Action> {
        let mut out = Vec::new();
        while let Some(a) = s.poll_action() {
            self.log.push(a.clone());
            match &a {
                Action::Persist { id, record } => {
                    self.disk.insert(*id, record.clone());
                    s.handle_persisted(*id);
                }
                Action::Bounce { id, .. } => s.handle_bounce_queued(*id),
                Action::Complete { id } => {
                    self.disk.remove(id);
                }
                Action::Resolve { .. } | Action::Deliver { .. } => out.push(a),
            }
        }
        out
    }

    pub fn record(&self, id: QueueId) -> MessageState {
        MessageState::decode(&self.disk[&id]).unwrap()
    }
}

fn exact() -> ScheduleConfig {
    ScheduleConfig::default()
}

fn deliver_of(actions: &[Action]) -> (AttemptId, Vec<u32>, Destination) {
    let found = actions.iter().find_map(|a| match a {
        Action::Deliver {
            attempt,
            recipients,
            hops,
            ..
        } => Some((*attempt, recipients.clone(), hops.clone())),
        _ => None,
    });
    found.expect("a Deliver")
}

fn report(outcomes: Vec<RecipientOutcome>) -> AttemptReport {
    AttemptReport {
        outcomes,
        refused: vec![],
        connected: Some(hop(25)),
    }
}

fn kinds(log: &[Action]) -> Vec<&'static str> {
    log.iter()
        .map(|a| match a {
            Action::Resolve { .. } => "resolve",
            Action::Deliver { .. } => "deliver",
            Action::Persist { .. } => "persist",
            Action::Bounce { .. } => "bounce",
            Action::Complete { .. } => "complete",
        })
        .collect()
}

/// One attempt of message `id`: answer the Resolve with `route`, the Deliver with `outcome`.
fn attempt(s: &mut Scheduler, d: &mut Driver, outcome: RecipientOutcome) -> Vec<Action> {
    let asked = d.run(s);
    assert!(
        matches!(asked.as_slice(), [Action::Resolve { .. }]),
        "{asked:?}"
    );
    s.handle_route("target.test", RouteAnswer::Hops(dest(&[25])));
    let (a, rcpts, _) = deliver_of(&d.run(s));
    s.handle_outcome(a, report(vec![outcome; rcpts.len()]));
    d.run(s)
}

/// A scheduler on `config` holding messages 1..=n from `sender` to `rcpts`, enqueued at T0,
/// and the driver that carries out its actions (nothing run yet).
fn queued(config: ScheduleConfig, n: u64, sender: &str, rcpts: &[&str]) -> (Scheduler, Driver) {
    let mut s = Scheduler::new(config);
    for n in 1..=n {
        s.handle_enqueue(qid(n), meta(sender, rcpts, T0), T0)
            .unwrap();
    }
    (s, Driver::default())
}

/// Carries out what is asked, answers the Resolve of `target.test` with next hops on
/// `ports`, and returns the Deliver that follows.
fn routed(s: &mut Scheduler, d: &mut Driver, ports: &[u16]) -> (AttemptId, Vec<u32>, Destination) {
    d.run(s);
    s.handle_route("target.test", RouteAnswer::Hops(dest(ports)));
    deliver_of(&d.run(s))
}

#[test]
fn delivered_at_the_first_try_is_persisted_then_completed() {
    let (mut s, mut d) = queued(exact(), 1, "a@x.test", &["b@target.test"]);
    assert_eq!(
        d.run(&mut s),
        [Action::Resolve {
            domain: "target.test".into()
        }]
    );
    s.handle_route("target.test", RouteAnswer::Hops(dest(&[25])));
    let asked = d.run(&mut s);
    assert_eq!(
        asked,
        [Action::Deliver {
            attempt: AttemptId(0),
            hops: dest(&[25]),
            id: qid(1),
            recipients: vec![0]
        }]
    );
    s.handle_outcome(
        AttemptId(0),
        report(vec![RecipientOutcome::Delivered("250 2.0.0 Ok".into())]),
    );
    d.run(&mut s);
    assert_eq!(kinds(&d.log), ["resolve", "deliver", "persist", "complete"]);
    let Action::Persist { record, .. } = &d.log[2] else {
        unreachable!()
    };
    let rec = MessageState::decode(record).unwrap();
    assert_eq!(rec.recipients[0].status, Status::Delivered);
    assert_eq!(rec.recipients[0].attempts, 1);
    assert!(s.is_empty() && s.is_quiescent());
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn a_4xx_is_retried_at_the_configured_intervals_then_delivered() {
    let (mut s, mut d) = queued(exact(), 1, "a@x.test", &["b@target.test"]);
    let mut now = T0;
    let mut times = vec![];
    for n in 1..=4u32 {
        attempt(
            &mut s,
            &mut d,
            RecipientOutcome::Deferred("451 4.2.0 later".into()),
        );
        let rec = d.record(qid(1));
        assert_eq!(rec.recipients[0].status, Status::Deferred);
        assert_eq!(rec.recipients[0].attempts, n);
        assert_eq!(rec.recipients[0].last_reply, "451 4.2.0 later");
        let next = s.poll_timeout().unwrap();
        assert_eq!(rec.recipients[0].next_attempt, next);
        times.push(next.0 - now.0);
        // Nothing happens before the due time.
        s.handle_timeout(Timestamp(next.0 - 1));
        assert!(d.run(&mut s).is_empty());
        now = next;
        s.handle_timeout(now);
    }
    assert_eq!(times, [300, 600, 1200, 2400]);
    attempt(&mut s, &mut d, RecipientOutcome::Delivered("250 ok".into()));
    assert!(matches!(d.log.last(), Some(Action::Complete { .. })));
    assert!(d.disk.is_empty());
}

#[test]
fn five_days_of_4xx_end_in_a_447_bounce_queued_before_the_bounced_mark() {
    let (mut s, mut d) = queued(exact(), 1, "a@x.test", &["b@target.test"]);
    let mut attempts = 0;
    loop {
        let asked = d.run(&mut s);
        if asked.is_empty() {
            match s.poll_timeout() {
                Some(t) => s.handle_timeout(t),
                None => break,
            }
            continue;
        }
        attempts += 1;
        s.handle_route("target.test", RouteAnswer::Hops(dest(&[25])));
        let (a, _, _) = deliver_of(&d.run(&mut s));
        s.handle_outcome(
            a,
            report(vec![RecipientOutcome::Deferred("451 4.2.0 later".into())]),
        );
    }
    // 5m, 10m, 20m, 40m, 1h, 2h, then 4h until five days: 7 + (5d - 4h15m) / 4h attempts.
    assert_eq!(attempts, 7 + (5 * 86400 - 4 * 3600 - 900) / (4 * 3600));
    let tail: Vec<_> = kinds(&d.log).into_iter().rev().take(3).collect();
    assert_eq!(tail, ["complete", "persist", "bounce"]);
    let n = d.log.len();
    let Action::Bounce {
        kind, recipients, ..
    } = &d.log[n - 3]
    else {
        unreachable!()
    };
    assert_eq!(*kind, BounceKind::Failed);
    assert_eq!(recipients[0].status, "4.4.7");
    assert_eq!(recipients[0].reply, "451 4.2.0 later");
    let Action::Persist { record, .. } = &d.log[n - 2] else {
        unreachable!()
    };
    let rec = MessageState::decode(record).unwrap();
    assert_eq!(rec.recipients[0].status, Status::Bounced);
    assert_eq!(s.len(), 0);
}

#[test]
fn permanent_route_failures_bounce_with_their_status_and_no_attempt() {
    for (answer, status) in [
        (RouteAnswer::NoSuchDomain, "5.1.2"),
        (RouteAnswer::NullMx, "5.1.10"),
        (RouteAnswer::MxLoop, "5.4.6"),
    ] {
        let (mut s, mut d) = queued(exact(), 1, "a@x.test", &["b@target.test"]);
        d.run(&mut s);
        s.handle_route("target.test", answer);
        d.run(&mut s);
        assert_eq!(
            kinds(&d.log),
            ["resolve", "persist", "bounce", "persist", "complete"]
        );
        let Action::Bounce { recipients, .. } = &d.log[2] else {
            unreachable!()
        };
        assert_eq!(recipients[0].status, status);
        assert!(recipients[0].reply.contains(status), "{:?}", recipients[0]);
        // The first record still says pending: the bounced mark follows the notification.
        let Action::Persist { record, .. } = &d.log[1] else {
            unreachable!()
        };
        let first = MessageState::decode(record).unwrap();
        assert_eq!(first.recipients[0].status, Status::Pending);
        assert_eq!(first.recipients[0].attempts, 0);
    }
}

#[test]
fn a_temporary_route_failure_defers_without_counting_an_attempt() {
    let (mut s, mut d) = queued(exact(), 1, "a@x.test", &["b@target.test"]);
    d.run(&mut s);
    s.handle_route("target.test", RouteAnswer::Temporary("SERVFAIL".into()));
    d.run(&mut s);
    let rec = d.record(qid(1));
    assert_eq!(rec.recipients[0].status, Status::Deferred);
    assert_eq!(rec.recipients[0].attempts, 0);
    assert_eq!(s.poll_timeout(), Some(T0.after(Duration::from_secs(300))));
}

#[test]
fn the_null_sender_never_gets_a_notification() {
    let (mut s, mut d) = queued(exact(), 1, "", &["b@target.test"]);
    attempt(
        &mut s,
        &mut d,
        RecipientOutcome::Bounced {
            reply: "550 5.1.1 no such user".into(),
            at_rcpt: true,
        },
    );
    assert_eq!(
        kinds(&d.log),
        ["resolve", "deliver", "persist", "persist", "complete"]
    );
    // And a null-sender message expires after bounce_max_age, silently.
    let (mut s, mut d) = deferred_by_dns("", 1);
    let two_days = T0.after(Duration::from_secs(2 * 86400));
    s.handle_timeout(two_days);
    d.run(&mut s);
    assert!(!d.log.iter().any(|a| matches!(a, Action::Bounce { .. })));
    assert!(matches!(d.log.last(), Some(Action::Complete { .. })));
}

#[test]
fn mixed_outcomes_in_one_attempt() {
    let rcpts = [
        "a@target.test",
        "b@target.test",
        "c@target.test",
        "d@target.test",
    ];
    let (mut s, mut d) = queued(exact(), 1, "s@x.test", &rcpts);
    let (a, batch, _) = routed(&mut s, &mut d, &[25]);
    assert_eq!(batch, [0, 1, 2, 3], "one batch per message and destination");
    s.handle_outcome(
        a,
        report(vec![
            RecipientOutcome::Delivered("250 ok".into()),
            RecipientOutcome::Deferred("451 4.3.0 later".into()),
            RecipientOutcome::Bounced {
                reply: "550 5.1.1 no such user".into(),
                at_rcpt: true,
            },
            RecipientOutcome::Bounced {
                reply: "552 5.2.2 mailbox full".into(),
                at_rcpt: true,
            },
        ]),
    );
    d.run(&mut s);
    let bounces: Vec<_> = d
        .log
        .iter()
        .filter_map(|a| match a {
            Action::Bounce { recipients, .. } => Some(recipients.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(bounces.len(), 1);
    assert_eq!(bounces[0].len(), 1);
    assert_eq!(bounces[0][0].address, "c@target.test");
    assert_eq!(bounces[0][0].status, "5.1.1");
    assert_eq!(bounces[0][0].class, Some(10));
    let rec = d.record(qid(1));
    let st: Vec<_> = rec.recipients.iter().map(|r| r.status).collect();
    assert_eq!(
        st,
        [
            Status::Delivered,
            Status::Deferred,
            Status::Bounced,
            Status::Deferred
        ],
        "552 to RCPT is temporary"
    );
    // The next attempt carries only the open recipients.
    s.handle_timeout(s.poll_timeout().unwrap());
    let (_, batch, _) = routed(&mut s, &mut d, &[25]);
    assert_eq!(batch, [1, 3]);
}

#[test]
fn recipients_of_domains_with_one_destination_go_in_one_batch() {
    let (mut s, mut d) = queued(exact(), 1, "s@x.test", &["a@one.test", "b@two.test"]);
    assert_eq!(d.run(&mut s).len(), 2);
    s.handle_route("one.test", RouteAnswer::Hops(dest(&[25])));
    assert!(d.run(&mut s).is_empty(), "waits for every route");
    s.handle_route("two.test", RouteAnswer::Hops(dest(&[25])));
    let (_, batch, _) = deliver_of(&d.run(&mut s));
    assert_eq!(batch, [0, 1]);
}

#[test]
fn a_local_failure_defers_and_is_classified_as_local() {
    let local = RecipientOutcome::LocalFailure("plugin state failed".into());
    assert_eq!(local.verdict(), Verdict::Deferred { local: true });
    let remote = RecipientOutcome::Bounced {
        reply: "552 5.3.4 too big".into(),
        at_rcpt: false,
    };
    assert_eq!(
        remote.verdict(),
        Verdict::Bounced,
        "552 after DATA is permanent"
    );
    let (mut s, mut d) = queued(exact(), 1, "s@x.test", &["b@target.test"]);
    attempt(&mut s, &mut d, local);
    let rec = d.record(qid(1));
    assert_eq!(rec.recipients[0].status, Status::Deferred);
    assert_eq!(rec.recipients[0].last_reply, "plugin state failed");
}

#[test]
fn the_connection_limit_per_destination_holds_back_batches() {
    let config = ScheduleConfig {
        connections_per_destination: 1,
        ..exact()
    };
    let (mut s, mut d) = queued(config, 2, "s@x.test", &["b@target.test"]);
    assert_eq!(d.run(&mut s).len(), 1, "one Resolve for both");
    s.handle_route("target.test", RouteAnswer::Hops(dest(&[25])));
    let asked = d.run(&mut s);
    assert_eq!(asked.len(), 1);
    let (a, _, _) = deliver_of(&asked);
    s.handle_outcome(a, report(vec![RecipientOutcome::Delivered("250".into())]));
    let asked = d.run(&mut s);
    let (b, _, _) = deliver_of(&asked);
    assert_ne!(a, b);
    s.handle_outcome(b, report(vec![RecipientOutcome::Delivered("250".into())]));
    d.run(&mut s);
    assert!(s.is_empty());
}

#[test]
fn a_down_next_hop_makes_messages_wait_without_burning_attempts() {
    let (mut s, mut d) = queued(exact(), 1, "s@x.test", &["b@target.test"]);
    let (a, _, _) = routed(&mut s, &mut d, &[25]);
    s.handle_outcome(
        a,
        AttemptReport {
            outcomes: vec![RecipientOutcome::ConnectionFailed(
                "connection refused".into(),
            )],
            refused: vec![hop(25)],
            connected: None,
        },
    );
    d.run(&mut s);
    assert_eq!(d.record(qid(1)).recipients[0].attempts, 1);
    // A second message for the same next hop, one minute later: it waits for the down time.
    let t1 = T0.after(Duration::from_secs(60));
    s.handle_enqueue(qid(2), meta("s@x.test", &["c@target.test"], t1), t1)
        .unwrap();
    d.run(&mut s);
    s.handle_route("target.test", RouteAnswer::Hops(dest(&[25])));
    assert!(d.run(&mut s).is_empty(), "no Deliver to a down next hop");
    assert_eq!(s.message(qid(2)).unwrap().recipients[0].attempts, 0);
    assert_eq!(s.poll_timeout(), Some(T0.after(Duration::from_secs(300))));
    // A flush clears the down mark and attempts at once.
    assert_eq!(s.handle_flush(&Selection::Ids(vec![qid(2)])), 1);
    let (_, batch, hops) = routed(&mut s, &mut d, &[25]);
    assert_eq!((batch, hops), (vec![0], dest(&[25])));
}

#[test]
fn only_the_next_hops_that_are_up_are_handed_out() {
    let config = ScheduleConfig {
        retry: RetryPolicy {
            down_time: Duration::from_secs(3600),
            ..RetryPolicy::default()
        },
        ..exact()
    };
    let (mut s, mut d) = queued(config, 1, "s@x.test", &["b@target.test"]);
    let (a, _, _) = routed(&mut s, &mut d, &[25, 26]);
    s.handle_outcome(
        a,
        AttemptReport {
            outcomes: vec![RecipientOutcome::Deferred("451 later".into())],
            refused: vec![hop(25)],
            connected: Some(hop(26)),
        },
    );
    d.run(&mut s);
    s.handle_timeout(s.poll_timeout().unwrap());
    let (_, _, hops) = routed(&mut s, &mut d, &[25, 26]);
    assert_eq!(hops, dest(&[26]));
}

/// Messages 1..=n from `sender`, deferred by a DNS failure at T0 (the log cleared).
fn deferred_by_dns(sender: &str, n: u64) -> (Scheduler, Driver) {
    let (mut s, mut d) = queued(exact(), n, sender, &["b@target.test"]);
    d.run(&mut s);
    s.handle_route("target.test", RouteAnswer::Temporary("SERVFAIL".into()));
    d.run(&mut s);
    d.log.clear();
    (s, d)
}

#[test]
fn hold_release_delete_and_bounce() {
    let (mut s, mut d) = deferred_by_dns("s@x.test", 3);
    // Held: persisted, never attempted nor expired.
    assert_eq!(s.handle_hold(&Selection::Ids(vec![qid(1)])), 1);
    d.run(&mut s);
    assert!(d.record(qid(1)).held);
    s.handle_timeout(T0.after(Duration::from_secs(6 * 86400)));
    d.run(&mut s);
    assert!(
        s.message(qid(1)).is_some(),
        "a held message does not expire"
    );
    assert_eq!(
        s.message(qid(1)).unwrap().recipients[0].status,
        Status::Deferred
    );
    // The others expired meanwhile.
    assert_eq!(s.len(), 1);
    d.log.clear();
    // Released past its age: it expires now.
    assert_eq!(s.handle_release(&Selection::All), 1);
    d.run(&mut s);
    assert_eq!(kinds(&d.log), ["persist", "bounce", "persist", "complete"]);

    let (mut s, mut d) = deferred_by_dns("s@x.test", 2);
    assert_eq!(s.handle_delete(&Selection::Ids(vec![qid(1), qid(9)])), 1);
    assert_eq!(s.handle_bounce(&Selection::Ids(vec![qid(2)])), 1);
    d.run(&mut s);
    assert_eq!(kinds(&d.log), ["complete", "bounce", "persist", "complete"]);
    let Action::Bounce { recipients, .. } = &d.log[1] else {
        unreachable!()
    };
    assert_eq!(recipients[0].status, "5.0.0");
    assert!(s.is_empty());
}

#[test]
fn the_delay_warning_goes_out_once() {
    let config = ScheduleConfig {
        retry: RetryPolicy {
            delay_warning: Some(Duration::from_secs(3600)),
            ..RetryPolicy::default()
        },
        ..exact()
    };
    let (mut s, mut d) = queued(config, 1, "s@x.test", &["b@target.test"]);
    let end = T0.after(Duration::from_secs(86400));
    loop {
        for a in d.run(&mut s) {
            if let Action::Resolve { domain } = a {
                s.handle_route(&domain, RouteAnswer::Temporary("SERVFAIL".into()));
            }
        }
        d.run(&mut s);
        match s.poll_timeout().filter(|&t| t < end) {
            Some(t) => s.handle_timeout(t),
            None => break,
        }
    }
    let warnings: Vec<_> = d
        .log
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::Bounce {
                    kind: BounceKind::Delayed,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(warnings.len(), 1);
    assert!(d.record(qid(1)).delay_warned);
}

#[test]
fn a_reloaded_record_keeps_its_schedule_and_its_owed_notifications() {
    let mut state = MessageState::new(T0, [("a@target.test", ""), ("b@target.test", "")]);
    state.recipients[0].status = Status::Delivered;
    state.recipients[0].next_attempt = Timestamp(0);
    state.recipients[0].relayed_owed = true;
    state.recipients[1].status = Status::Deferred;
    state.recipients[1].next_attempt = T0.after(Duration::from_secs(900));
    let mut s = Scheduler::new(exact());
    let mut d = Driver::default();
    let meta = MessageMeta {
        sender: "s@x.test".into(),
        size: 10,
        state,
    };
    s.handle_enqueue(qid(1), meta.clone(), T0).unwrap();
    assert_eq!(
        s.handle_enqueue(qid(1), meta, T0),
        Err(ScheduleError::Duplicate(qid(1)))
    );
    assert!(d.run(&mut s).is_empty());
    assert_eq!(kinds(&d.log), ["bounce", "persist"]);
    assert!(matches!(
        &d.log[0],
        Action::Bounce { kind: BounceKind::Relayed, recipients, .. } if recipients[0].index == 0
    ));
    assert_eq!(s.poll_timeout(), Some(T0.after(Duration::from_secs(900))));
    assert!(!d.record(qid(1)).recipients[0].relayed_owed);
}

#[test]
fn shutdown_stops_new_work_but_takes_reports() {
    let (mut s, mut d) = queued(exact(), 1, "s@x.test", &["b@target.test"]);
    let (a, _, _) = routed(&mut s, &mut d, &[25]);
    s.handle_shutdown();
    assert!(!s.is_quiescent());
    s.handle_outcome(a, report(vec![RecipientOutcome::Deferred("451".into())]));
    d.run(&mut s);
    assert!(s.is_quiescent());
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(d.record(qid(1)).recipients[0].attempts, 1);
    assert_eq!(
        s.handle_enqueue(qid(2), meta("s@x.test", &["b@t.test"], T0), T0),
        Err(ScheduleError::ShutDown)
    );
}
