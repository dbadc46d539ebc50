//! New settings for a running scheduler: a queued message keeps its record and its due
//! time, and takes the new intervals from its next failure on.

use std::time::Duration;

use super::tests::{dest, hop, meta, qid, Driver, T0};
use super::*;

fn defer_once(s: &mut Scheduler, d: &mut Driver) -> Timestamp {
    let asked = d.run(s);
    assert!(
        matches!(asked.as_slice(), [Action::Resolve { .. }]),
        "{asked:?}"
    );
    s.handle_route("target.test", RouteAnswer::Hops(dest(&[25])));
    let attempt = d
        .run(s)
        .into_iter()
        .find_map(|a| match a {
            Action::Deliver { attempt, .. } => Some(attempt),
            _ => None,
        })
        .expect("a Deliver");
    s.handle_outcome(
        attempt,
        AttemptReport {
            outcomes: vec![RecipientOutcome::Deferred("451 4.2.0 later".into())],
            refused: vec![],
            connected: Some(hop(25)),
        },
    );
    d.run(s);
    s.poll_timeout().expect("due again")
}

#[test]
fn new_intervals_apply_from_the_next_failure_on() {
    let mut s = Scheduler::new(ScheduleConfig::default());
    let mut d = Driver::default();
    s.handle_enqueue(qid(1), meta("a@x.test", &["b@target.test"], T0), T0)
        .unwrap();
    let first = defer_once(&mut s, &mut d);
    assert_eq!(first.0 - T0.0, 300, "the default first interval");
    let mut config = ScheduleConfig::default();
    config.retry.intervals = vec![Duration::from_secs(7)];
    s.set_config(config);
    assert_eq!(s.poll_timeout(), Some(first), "the time already set stays");
    assert_eq!(
        d.record(qid(1)).recipients[0].attempts,
        1,
        "the record stays"
    );
    s.handle_timeout(first);
    let second = defer_once(&mut s, &mut d);
    assert_eq!(second.0 - first.0, 7, "the new interval");
    assert_eq!(s.messages().count(), 1);
}
