//! The scheduler's cost per message: 100,000 messages enqueued, routed and delivered (each
//! deferred once, then delivered), persists and completions confirmed, on the simulated clock.
//!
//! Run with `cargo bench -p smtp-relay --bench schedule`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use smtp_relay::{
    Action, AttemptReport, Destination, MessageMeta, MessageState, NextHop, RecipientOutcome,
    RouteAnswer, ScheduleConfig, Scheduler, Timestamp,
};
use smtp_spool::QueueId;

const MESSAGES: u64 = 100_000;
const T0: Timestamp = Timestamp(1_700_000_000);

/// Answers every action; the `n`-th report of a message defers it, the next delivers it.
fn drain(s: &mut Scheduler, dest: &Destination, defer: bool) -> usize {
    let mut delivered = 0;
    while let Some(a) = s.poll_action() {
        match a {
            Action::Resolve { domain } => s.handle_route(&domain, RouteAnswer::Hops(dest.clone())),
            Action::Deliver {
                attempt,
                recipients,
                ..
            } => {
                let outcome = if defer {
                    RecipientOutcome::Deferred("451 4.2.0 later".into())
                } else {
                    RecipientOutcome::Delivered("250 2.0.0 Ok".into())
                };
                let report = AttemptReport {
                    outcomes: vec![outcome; recipients.len()],
                    refused: vec![],
                    connected: None,
                };
                s.handle_outcome(attempt, report);
            }
            Action::Persist { id, .. } => s.handle_persisted(id),
            Action::Bounce { id, .. } => s.handle_bounce_queued(id),
            Action::Complete { .. } => delivered += 1,
        }
    }
    delivered
}

fn enqueue_and_drain(c: &mut Criterion) {
    let dest: Destination = Arc::from(vec![NextHop {
        host: "sink.test".into(),
        addr: SocketAddr::from(([127, 0, 0, 1], 25)),
    }]);
    let mut g = c.benchmark_group("schedule");
    g.sample_size(10);
    g.throughput(Throughput::Elements(MESSAGES));
    g.bench_function("enqueue, defer once, deliver 100k", |b| {
        b.iter(|| {
            let config = ScheduleConfig {
                connections_per_destination: usize::MAX,
                ..ScheduleConfig::default()
            };
            let mut s = Scheduler::new(config);
            for n in 0..MESSAGES {
                let meta = MessageMeta {
                    sender: "sender@example.org".into(),
                    size: 4096,
                    state: MessageState::new(T0, [("rcpt@sink.test", "")]),
                };
                s.handle_enqueue(QueueId::from_parts(n, 1), meta, T0)
                    .unwrap();
                if n % 1000 == 999 {
                    drain(&mut s, &dest, true);
                }
            }
            drain(&mut s, &dest, true);
            assert_eq!(s.len() as u64, MESSAGES, "all deferred");
            s.handle_timeout(T0.after(Duration::from_secs(3600)));
            assert_eq!(drain(&mut s, &dest, false) as u64, MESSAGES);
        })
    });
    g.finish();
}

criterion_group!(benches, enqueue_and_drain);
criterion_main!(benches);
