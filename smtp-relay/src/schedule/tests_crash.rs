//! Crashes: the scheduler is dropped after any action and rebuilt from the last persisted
//! records, as a restart would. A recipient recorded as delivered is never attempted again,
//! a message completes only when its record says it is done, and no message is lost.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;

use super::tests::{dest, meta, qid, T0};
use super::*;
use crate::state::MessageState;

const RCPTS: [&str; 3] = ["a@one.test", "b@one.test", "c@two.test"];

/// Rebuilds a scheduler from what is on "disk": every message still in the spool, with its
/// record when it has one.
fn restart(
    spool: &HashSet<QueueId>,
    disk: &HashMap<QueueId, Vec<u8>>,
    now: Timestamp,
) -> Scheduler {
    let mut s = Scheduler::new(ScheduleConfig::default());
    let mut ids: Vec<_> = spool.iter().copied().collect();
    ids.sort();
    for id in ids {
        let mut m = meta("s@x.test", &RCPTS, T0);
        if let Some(record) = disk.get(&id) {
            m.state = MessageState::decode(record).expect("a written record decodes");
        }
        s.handle_enqueue(id, m, now).unwrap();
    }
    s
}

fn outcome(choice: u8) -> RecipientOutcome {
    match choice % 3 {
        0 => RecipientOutcome::Delivered("250 ok".into()),
        1 => RecipientOutcome::Deferred("451 4.3.0 later".into()),
        _ => RecipientOutcome::Bounced {
            reply: "550 5.1.1 no such user".into(),
            at_rcpt: true,
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn crashes_never_redeliver_a_recorded_recipient_nor_lose_a_message(
        crashes in proptest::collection::vec(any::<bool>(), 400),
        choices in proptest::collection::vec(any::<u8>(), 400),
    ) {
        let mut spool: HashSet<QueueId> = (1..=3).map(qid).collect();
        let mut disk: HashMap<QueueId, Vec<u8>> = HashMap::new();
        let mut now = T0;
        let mut s = restart(&spool, &disk, now);
        let mut notified: HashSet<(QueueId, u32)> = HashSet::new();
        for step in 0..400 {
            let choice = choices[step];
            let Some(action) = s.poll_action() else {
                match s.poll_timeout() {
                    Some(t) => { now = t; s.handle_timeout(t); continue; }
                    None => break,
                }
            };
            match action {
                Action::Resolve { domain } => {
                    let answer = if choice % 5 == 0 {
                        RouteAnswer::Temporary("SERVFAIL".into())
                    } else {
                        RouteAnswer::Hops(dest(&[25]))
                    };
                    s.handle_route(&domain, answer);
                }
                Action::Deliver { attempt, id, recipients, .. } => {
                    if let Some(record) = disk.get(&id) {
                        let rec = MessageState::decode(record).unwrap();
                        for &i in &recipients {
                            prop_assert_ne!(rec.recipients[i as usize].status, Status::Delivered,
                                "recipient {} of {} was recorded as delivered", i, id);
                            prop_assert_ne!(rec.recipients[i as usize].status, Status::Bounced);
                        }
                    }
                    let outcomes = recipients.iter().enumerate()
                        .map(|(k, _)| outcome(choice.wrapping_add(k as u8))).collect();
                    s.handle_outcome(attempt, AttemptReport { outcomes, ..Default::default() });
                }
                Action::Persist { id, record } => {
                    if let Some(old) = disk.get(&id) {
                        let old = MessageState::decode(old).unwrap();
                        let new = MessageState::decode(&record).unwrap();
                        for (i, (o, n)) in old.recipients.iter().zip(&new.recipients).enumerate() {
                            prop_assert!(!o.status.is_final() || o.status == n.status,
                                "a final status never changes");
                            if n.status == Status::Bounced && o.status != Status::Bounced {
                                prop_assert!(notified.contains(&(id, i as u32)),
                                    "bounced only after a notification was queued");
                            }
                        }
                    }
                    disk.insert(id, record);
                    s.handle_persisted(id);
                }
                Action::Bounce { id, recipients, .. } => {
                    for r in &recipients {
                        notified.insert((id, r.index));
                    }
                    s.handle_bounce_queued(id);
                }
                Action::Complete { id } => {
                    let rec = MessageState::decode(&disk[&id]).unwrap();
                    prop_assert!(rec.is_done(), "completed only when the record says done");
                    for (i, r) in rec.recipients.iter().enumerate() {
                        if r.status == Status::Bounced {
                            prop_assert!(notified.contains(&(id, i as u32)),
                                "a bounced recipient was notified");
                        }
                    }
                    spool.remove(&id);
                    disk.remove(&id);
                }
            }
            if crashes[step] && choice % 4 == 0 {
                s = restart(&spool, &disk, now);
            }
        }
        // No message is lost: every one is either completed or still queued.
        for id in &spool {
            prop_assert!(s.message(*id).is_some(), "{} is still queued", id);
        }
    }
}
