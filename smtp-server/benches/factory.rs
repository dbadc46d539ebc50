//! The message factory's cost per transaction: a whole EHLO..QUIT session with one 4 KiB
//! message, driven in memory the way the event loop will (each client packet fed once, the
//! replies drained before the next packet), with no I/O and no decisions but the commit.
//!
//! Run with `cargo bench -p smtp-server --bench factory`.
// A benchmark measures the real clock and runs its load on threads.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use smtp_server::factory::{Decision, Event, Factory, FactoryConfig};

/// The client's packets, in order: each one is sent after the previous replies arrived.
fn session() -> Vec<Vec<u8>> {
    let mut body = Vec::with_capacity(4096 + 64);
    body.extend_from_slice(b"From: a@example.org\r\nTo: b@example.com\r\nSubject: bench\r\n\r\n");
    while body.len() < 4096 {
        body.extend_from_slice(b"The quick brown fox jumps over the lazy dog, 0123456789.\r\n");
    }
    vec![
        b"EHLO client.example\r\n".to_vec(),
        b"MAIL FROM:<a@example.org> SIZE=4200\r\nRCPT TO:<b@example.com>\r\nDATA\r\n".to_vec(),
        smtp_proto::data::dot_stuff(&body),
        b"QUIT\r\n".to_vec(),
    ]
}

/// Runs one session; returns the bytes written to the client and body bytes produced.
fn run(config: &Arc<FactoryConfig>, packets: &[Vec<u8>]) -> (usize, usize) {
    let now = Instant::now();
    let mut f = Factory::new(
        Arc::clone(config),
        "192.0.2.1:40000".parse().unwrap(),
        "192.0.2.2:25".parse().unwrap(),
        now,
    );
    let (mut wrote, mut body) = (0, 0);
    let mut drain = |f: &mut Factory| {
        while let Some(b) = f.poll_body() {
            body += b.len();
            f.consume_body();
        }
        while let Some(event) = f.poll_event() {
            if let Event::MessageComplete { .. } = event {
                f.handle_decision(Decision::Queued("0123456789abcdef0123".into()), now)
                    .unwrap();
            }
        }
        while let Some(out) = f.poll_transmit() {
            wrote += out.len();
            let n = out.len();
            f.advance_transmit(n);
        }
    };
    drain(&mut f);
    for packet in packets {
        let mut off = 0;
        while off < packet.len() {
            off += f.handle_input(&packet[off..], now);
            drain(&mut f);
        }
    }
    assert!(f.is_closed());
    (wrote, body)
}

fn bench(c: &mut Criterion) {
    let config = Arc::new(FactoryConfig::new("mx.example"));
    let packets = session();
    let (_, body) = run(&config, &packets);
    assert!(body >= 4096);
    let mut group = c.benchmark_group("factory");
    group.throughput(Throughput::Elements(1));
    group.bench_function("transaction_4k", |b| {
        b.iter(|| black_box(run(&config, black_box(&packets))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
