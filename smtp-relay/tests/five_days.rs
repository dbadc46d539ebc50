//! Five days of retries on the simulated clock, sans-IO: the real [`Scheduler`] with the
//! default retry policy, each of its attempts an SMTP exchange run in memory by the pair
//! harness (the real client session against the real server factory, one simulated clock)
//! whose server answers every RCPT with a 451. The attempts follow the retry intervals
//! (5m, 10m, 20m, 40m, 1h, 2h, 4h, then 4h again) until `max_age`; then the message expires:
//! a `failed` notification with status 4.4.7 and the last reply as its diagnostic, queued
//! before the record marks the recipients bounced, and the message completed last. The
//! notification is built with `smtp_relay::dsn::build` and checked.
//!
//! Nothing here reads a clock or opens a socket: the scheduler's time is the pair's
//! simulated wall clock, moved only by `Pair::advance`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use impulse_test_support::pair::{Answer, Pair, SERVER_ADDR};
use smtp_client::{Message, OutcomeKind, SessionConfig};
use smtp_proto::{EnhancedStatus, Reply};
use smtp_relay::dsn::{self, Notification, RecipientReport};
use smtp_relay::{
    Action, AttemptReport, BounceKind, BounceRecipient, MessageMeta, MessageState, NextHop,
    RecipientOutcome, RetryPolicy, RouteAnswer, ScheduleConfig, Scheduler, Status, Timestamp,
};
use smtp_server::factory::{Decision, EventKind, FactoryConfig};
use smtp_spool::QueueId;

const BODY: &[u8] = b"From: alice@example.org\r\nSubject: five days\r\n\r\nthe body\r\n";
const RECIPIENTS: [&str; 2] = ["bob@target.test", "carol@target.test"];
const MINUTE: u64 = 60;
const HOUR: u64 = 3600;
const DAY: u64 = 86_400;

/// The reply the next hop gives the `n`th RCPT (0-based): a 451 that names its attempt, so
/// the diagnostic can be told to be the last one.
fn refusal(n: usize) -> Reply {
    let attempt = n / RECIPIENTS.len() + 1;
    Reply::new(
        451,
        Some(EnhancedStatus::new(4, 3, 0)),
        &format!("try again later (attempt {attempt})"),
    )
}

/// A reply on one line, as the relay records it: `451 4.3.0 text`.
fn one_line(reply: &Reply) -> String {
    let mut out = reply.code().to_string();
    if let Some(s) = reply.status() {
        out.push_str(&format!(" {s}"));
    }
    for line in reply.lines().iter().filter(|l| !l.is_empty()) {
        out.push_str(&format!(" {line}"));
    }
    out
}

fn timestamp(at: SystemTime) -> Timestamp {
    Timestamp(at.duration_since(UNIX_EPOCH).unwrap().as_secs())
}

/// The attempt times the default intervals give, as offsets from arrival, up to `max_age`.
fn expected_offsets(max_age: u64) -> Vec<u64> {
    let intervals = [
        5 * MINUTE,
        10 * MINUTE,
        20 * MINUTE,
        40 * MINUTE,
        HOUR,
        2 * HOUR,
        4 * HOUR,
    ];
    let mut at = 0;
    let mut out = vec![0];
    for k in 0.. {
        at += intervals[k.min(intervals.len() - 1)];
        if at >= max_age {
            break;
        }
        out.push(at);
    }
    out
}

/// What the run saw.
struct Run {
    arrival: Timestamp,
    /// When each attempt started, with the recipients it carried.
    attempts: Vec<(Timestamp, Vec<u32>)>,
    /// The last reply of each attempt's first recipient, as recorded.
    replies: Vec<String>,
    /// Every action in order, by name (`resolve`, `deliver`, `persist`, `bounce`, `complete`).
    order: Vec<&'static str>,
    /// Every record written, decoded.
    records: Vec<MessageState>,
    /// The expiry notification's recipients.
    bounce: Option<(BounceKind, Vec<BounceRecipient>)>,
    /// When the message was completed.
    completed: Option<Timestamp>,
}

/// Drives the scheduler through its call order against the pair until the message is
/// completed (or a safety limit of simulated time passes).
fn run(pair: &mut Pair, scheduler: &mut Scheduler, id: QueueId) -> Run {
    let hop = NextHop {
        host: "mx.test".into(),
        addr: SERVER_ADDR.parse().unwrap(),
    };
    let arrival = timestamp(pair.wall());
    let state = MessageState::new(arrival, RECIPIENTS.iter().map(|r| (*r, "")));
    let meta = MessageMeta {
        sender: "alice@example.org".into(),
        size: BODY.len() as u64,
        state,
    };
    scheduler.handle_enqueue(id, meta, arrival).unwrap();
    let mut out = Run {
        arrival,
        attempts: Vec::new(),
        replies: Vec::new(),
        order: Vec::new(),
        records: Vec::new(),
        bounce: None,
        completed: None,
    };
    let limit = arrival.after(Duration::from_secs(7 * DAY));
    loop {
        // Step 3: carry out every action, in order; the answers go straight back in.
        while let Some(action) = scheduler.poll_action() {
            let now = timestamp(pair.wall());
            match action {
                Action::Resolve { domain } => {
                    out.order.push("resolve");
                    assert_eq!(domain, "target.test");
                    let hops = RouteAnswer::Hops(vec![hop.clone()].into());
                    scheduler.handle_route(&domain, hops);
                }
                Action::Deliver {
                    attempt,
                    hops,
                    id: got,
                    recipients,
                } => {
                    out.order.push("deliver");
                    assert_eq!(got, id);
                    assert_eq!(&*hops, std::slice::from_ref(&hop));
                    out.attempts.push((now, recipients.clone()));
                    let to: Vec<&str> =
                        recipients.iter().map(|&i| RECIPIENTS[i as usize]).collect();
                    pair.set_message(Message::new("alice@example.org", to, BODY));
                    let outcomes = pair.send();
                    assert_eq!(
                        outcomes.len(),
                        recipients.len(),
                        "{}",
                        pair.transcript().text()
                    );
                    let report = AttemptReport {
                        outcomes: outcomes
                            .iter()
                            .map(|o| {
                                assert_eq!(o.kind, OutcomeKind::Deferred, "{o:?}");
                                RecipientOutcome::Deferred(one_line(&o.reply))
                            })
                            .collect(),
                        refused: Vec::new(),
                        connected: Some(hop.clone()),
                    };
                    scheduler.handle_outcome(attempt, report);
                }
                Action::Persist { id: got, record } => {
                    out.order.push("persist");
                    assert_eq!(got, id);
                    let state = MessageState::decode(&record).expect("the record decodes");
                    out.records.push(state);
                    scheduler.handle_persisted(id);
                }
                Action::Bounce {
                    id: got,
                    kind,
                    recipients,
                } => {
                    out.order.push("bounce");
                    assert_eq!(got, id);
                    assert!(out.bounce.is_none(), "one notification");
                    out.bounce = Some((kind, recipients));
                    scheduler.handle_bounce_queued(id);
                }
                Action::Complete { id: got } => {
                    out.order.push("complete");
                    assert_eq!(got, id);
                    out.completed = Some(now);
                }
            }
        }
        if let Some(last) = out.records.last() {
            if let Some(r) = last.recipients.first() {
                if out.replies.len() < out.attempts.len() && r.status == Status::Deferred {
                    out.replies.push(r.last_reply.clone());
                }
            }
        }
        if out.completed.is_some() {
            assert!(scheduler.is_quiescent());
            return out;
        }
        // Step 4: sleep (on the simulated clock) until the scheduler's next deadline.
        let due = scheduler
            .poll_timeout()
            .expect("a waiting message is due some time");
        assert!(due <= limit, "still queued after seven days");
        let now = timestamp(pair.wall());
        pair.advance(due.since(now));
        // Step 2: the time first.
        scheduler.handle_timeout(timestamp(pair.wall()));
    }
}

#[test]
fn five_days_of_451s_end_in_a_4_4_7_bounce_on_the_retry_schedule() {
    let mut pair = Pair::new(
        FactoryConfig::new("mx.test"),
        SessionConfig::new("relay.test"),
        Message::new("alice@example.org", RECIPIENTS, BODY),
    );
    // Every RCPT of every attempt is refused for now (more answers than attempts).
    pair.script(
        EventKind::Rcpt,
        (0..400).map(|n| Answer::Now(Decision::TempFail(refusal(n)))),
    );
    let policy = RetryPolicy::default();
    assert_eq!(policy.max_age, Duration::from_secs(5 * DAY), "the default");
    assert_eq!(policy.jitter_percent, 0, "no jitter by default");
    let mut scheduler = Scheduler::new(ScheduleConfig {
        retry: policy,
        connections_per_destination: 20,
        seed: 7,
    });
    let id = QueueId::from_parts(1_700_000_000_000_000, 42);
    let run = run(&mut pair, &mut scheduler, id);

    // The attempt times follow the intervals, both recipients in each attempt.
    let offsets: Vec<u64> = run
        .attempts
        .iter()
        .map(|(t, _)| t.0 - run.arrival.0)
        .collect();
    let expected = expected_offsets(5 * DAY);
    assert_eq!(offsets, expected);
    assert_eq!(
        offsets.len(),
        35,
        "8 attempts to the last interval, then 27 at 4h"
    );
    assert!(run.attempts.iter().all(|(_, r)| r == &[0, 1]));
    // One SMTP session per attempt, each a new connection that got 451 to both RCPTs.
    assert_eq!(pair.transcripts().len(), offsets.len());
    for (t, (at, _)) in pair.transcripts().iter().zip(&run.attempts) {
        let opened = t.opened() - pair.transcripts()[0].opened();
        assert_eq!(opened.as_secs(), at.0 - run.arrival.0, "the pair's clock");
        assert_eq!(t.deferred(), RECIPIENTS, "{}", t.text());
    }
    // Each attempt's record holds its own reply, and the time of the next attempt.
    assert_eq!(run.replies.len(), offsets.len());
    for (k, reply) in run.replies.iter().enumerate() {
        assert_eq!(reply, &one_line(&refusal(2 * k)), "attempt {}", k + 1);
    }
    let deferred: Vec<&MessageState> = run
        .records
        .iter()
        .filter(|s| s.recipients.iter().all(|r| r.status == Status::Deferred))
        .collect();
    assert_eq!(deferred.len(), offsets.len(), "one record per attempt");
    for (k, state) in deferred.iter().enumerate() {
        let next = expected
            .get(k + 1)
            .map_or(run.arrival.0 + 5 * DAY, |o| run.arrival.0 + o);
        for r in &state.recipients {
            assert_eq!(r.attempts as usize, k + 1);
            // The last wait is cut at the expiry: the message is due then, not later.
            assert!(r.next_attempt.0 >= next, "attempt {}: {r:?}", k + 1);
        }
    }

    // Expiry at exactly max_age: the notification first, then the record, then complete.
    assert_eq!(
        run.completed,
        Some(run.arrival.after(Duration::from_secs(5 * DAY)))
    );
    let tail: Vec<&str> = run.order.iter().rev().take(3).rev().copied().collect();
    assert_eq!(tail, ["bounce", "persist", "complete"], "{:?}", run.order);
    let last = run.records.last().unwrap();
    assert!(last.recipients.iter().all(|r| r.status == Status::Bounced));
    assert!(last.recipients.iter().all(|r| r.attempts == 35));
    let (kind, bounced) = run.bounce.clone().expect("an expiry notification");
    assert_eq!(kind, BounceKind::Failed);
    let last_reply = one_line(&refusal(2 * 34 + 1));
    assert_eq!(bounced.len(), 2);
    for (b, want) in bounced.iter().zip(RECIPIENTS) {
        assert_eq!(b.address, want);
        assert_eq!(b.status, "4.4.7");
        assert!(
            b.reply
                .starts_with("451 4.3.0 try again later (attempt 35)"),
            "{b:?}"
        );
    }
    assert_eq!(bounced[1].reply, last_reply);

    // The notification, as the driver builds it from that action.
    let at = |t: Timestamp| UNIX_EPOCH + Duration::from_secs(t.0);
    let envelope = dsn::Envelope {
        sender: "alice@example.org".into(),
        envid: None,
        ret: None,
        arrival: at(run.arrival),
    };
    let last_attempt = run.attempts.last().unwrap().0;
    let reports: Vec<RecipientReport> = bounced
        .iter()
        .map(|b| {
            let status = EnhancedStatus::parse(&b.status).unwrap();
            let wire = format!("{}\r\n", b.reply);
            let (reply, _) = Reply::parse(wire.as_bytes()).unwrap().unwrap();
            RecipientReport::new(&b.address, dsn::Action::Failed, status)
                .remote("mx.test", reply)
                .last_attempt(at(last_attempt))
        })
        .collect();
    let bytes = dsn::build(&Notification {
        reporting_mta: "relay.test",
        envelope: &envelope,
        recipients: &reports,
        original: b"From: alice@example.org\r\nSubject: five days\r\n\r\n",
        date: at(run.completed.unwrap()),
        token: "Q1.failed",
    });
    let text = String::from_utf8(bytes).unwrap();
    for want in [
        "From: MAILER-DAEMON@relay.test",
        "To: alice@example.org",
        "Auto-Submitted: auto-replied",
        "report-type=delivery-status",
        "Reporting-MTA: dns; relay.test",
        // 2023-11-14 22:13:20 UTC, five days on.
        "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000",
        "Date: Sun, 19 Nov 2023 22:13:20 +0000",
        "Final-Recipient: rfc822; bob@target.test",
        "Final-Recipient: rfc822; carol@target.test",
        "Action: failed",
        "Status: 4.4.7",
        "Remote-MTA: dns; mx.test",
        "Diagnostic-Code: smtp; 451 4.3.0 try again later (attempt 35)",
        "Content-Type: text/rfc822-headers",
        "Subject: five days",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
    let last_date = "Last-Attempt-Date: Sun, 19 Nov 2023 18:28:20 +0000";
    assert_eq!(
        last_attempt.0 - run.arrival.0,
        5 * DAY - 3 * HOUR - 45 * MINUTE,
        "the last attempt's offset"
    );
    assert_eq!(text.matches(last_date).count(), 2, "{text}");
    assert!(!text.contains("the body"), "headers only without RET");
}
