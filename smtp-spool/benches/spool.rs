//! Spool commits per second for 4 KiB messages, with 1 and 20 concurrent committers: the
//! effect of group commit (20 committers share directory fsyncs and overlap file fsyncs).
//!
//! Runs on the real file system, in the target directory (`CARGO_TARGET_TMPDIR`), so the
//! figures are those of the disk under `target/`. Run with
//! `cargo bench -p smtp-spool --bench spool`; figures are recorded in `docs/SPOOL.md`.
// A benchmark measures the real clock and runs its load on threads.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use smtp_spool::{Envelope, Recipient, Spool};

fn envelope() -> Envelope {
    Envelope {
        sender: "alice@example.org".into(),
        mail_params: "SIZE=4096".into(),
        recipients: vec![Recipient::new("bob@example.com")],
        peer: "127.0.0.1:40000".into(),
        helo: "client.example.org".into(),
        received: 1_700_000_000,
        ..Envelope::default()
    }
}

fn store(spool: &Spool, env: &Envelope, body: &[u8]) {
    let mut w = spool.begin(env).unwrap();
    w.write_all(body).unwrap();
    spool.commit_blocking(w).unwrap();
}

/// Empties the queue between samples (not timed) so the directory stays small.
fn clear(spool: &Spool) {
    for e in spool.list().unwrap() {
        std::fs::remove_file(spool.dir().join("queue").join(e.id.as_str())).unwrap();
    }
}

fn bench_commit(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let env = envelope();
    let body = vec![b'x'; 4096];
    let mut group = c.benchmark_group("spool_commit_4k");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    for committers in [1usize, 20] {
        let before = spool.stats();
        group.bench_with_input(
            BenchmarkId::new("committers", committers),
            &committers,
            |b, &k| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for t in 0..k as u64 {
                            let n = iters / k as u64 + u64::from(t < iters % k as u64);
                            let (spool, env, body) = (&spool, &env, &body);
                            s.spawn(move || (0..n).for_each(|_| store(spool, env, body)));
                        }
                    });
                    let elapsed = start.elapsed();
                    clear(&spool);
                    elapsed
                })
            },
        );
        let after = spool.stats();
        let commits = after.commits - before.commits;
        let fsyncs = after.dir_fsyncs - before.dir_fsyncs;
        eprintln!(
            "{committers} committer(s): {commits} commits, {fsyncs} queue-directory fsyncs \
             ({:.1} commits per directory fsync)",
            commits as f64 / fsyncs.max(1) as f64
        );
    }
    group.finish();
}

criterion_group!(benches, bench_commit);
criterion_main!(benches);
