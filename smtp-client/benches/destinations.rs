//! The client engine's dispatcher with many destinations on one server: 5,000 messages,
//! submitted round-robin over 1, 100, 1,000 or 10,000 destinations whose next-hop lists all start
//! with the same loopback server (domains whose MX lists share their first host), delivered
//! over at most 20 connections to it. The destinations share that server's pool, so every
//! connection that comes free picks the oldest waiting job among all of them: the figure
//! shows what the pool's index of waiting destinations costs as their number grows.
//!
//! The next hop is test-support's scripted ESMTP server on 127.0.0.1 (a thread per
//! connection, PIPELINING); the second hop of each destination, never needed, is a distinct
//! loopback port nothing listens on. After each N it prints how many connections were opened
//! for how many messages (the same ratio for every N: connections are not churned).
//!
//! Run with `cargo bench -p smtp-client --bench destinations`.
// A benchmark waits for deliveries on the real clock.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use impulse_test_support::fake::{Script, Scripted};
use smtp_client::driver::engine::{Destination, Engine, NextHop};
use smtp_client::{Message, SessionConfig};

const MESSAGES: usize = 5_000;
const CONNECTIONS: usize = 20;

fn message(n: usize) -> Message {
    let body = format!("Subject: bench {n}\r\n\r\nbody {n}\r\n");
    Message::new("sender@client.test", ["rcpt@dest.test"], body)
}

/// `count` destinations, each `[server, a port of its own nobody listens on]`.
fn destinations(server: SocketAddr, count: usize) -> Vec<Destination> {
    (0..count)
        .map(|i| {
            let spare = SocketAddr::from(([127, 0, 0, 1], 1 + i as u16));
            Destination::new([
                NextHop::named(server, "mx.shared.test"),
                NextHop::new(spare),
            ])
            .max_connections(CONNECTIONS)
        })
        .collect()
}

fn many_destinations(c: &mut Criterion) {
    let server = Scripted::start(|_| Script::Serve);
    let mut session = SessionConfig::new("client.test");
    session.policy.command_retries = 0;
    let engine = Engine::builder(server.addr)
        .session(session)
        .connections(CONNECTIONS)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("an engine");
    let rx = engine.deliveries();
    let mut g = c.benchmark_group("engine destinations");
    g.sample_size(10);
    g.throughput(Throughput::Elements(MESSAGES as u64));
    for count in [1, 100, 1_000, 10_000] {
        let dests = destinations(server.addr, count);
        let before = engine.stats();
        g.bench_with_input(
            BenchmarkId::new("5k messages", count),
            &dests,
            |b, dests| {
                b.iter(|| {
                    for n in 0..MESSAGES {
                        let d = dests[n % dests.len()].clone();
                        engine.submit_to(d, message(n)).expect("submitted");
                    }
                    for _ in 0..MESSAGES {
                        let d = rx
                            .recv_timeout(Duration::from_secs(60))
                            .expect("a delivery for every message");
                        assert!(d.is_delivered(), "{:?}", d.outcomes);
                    }
                })
            },
        );
        let after = engine.stats();
        eprintln!(
            "{count} destinations: {} connections opened for {} messages",
            after.connections_opened - before.connections_opened,
            after.deliveries - before.deliveries
        );
    }
    g.finish();
    engine.shutdown();
}

criterion_group!(benches, many_destinations);
criterion_main!(benches);
