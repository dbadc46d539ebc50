//! DATA transparency: Impulse's streaming decoder and dot-stuffer against the `smtp-proto`
//! crate on crates.io (Stalwart's, here `stalwart_smtp_proto`) on the same bytes.
//!
//! Run with `cargo bench --bench data` (from `smtp-proto/`); the ratio is printed by criterion
//! as two lines of the same group, and recorded in `docs/BENCHMARKS.md`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use smtp_proto::data::{dot_stuff, DataDecoder, DotStuffer};
use std::hint::black_box;

/// A realistic message: headers, a text body with 76-column lines, some lines starting with a
/// dot, about `size` bytes.
fn message(size: usize) -> Vec<u8> {
    let mut m = Vec::with_capacity(size + 128);
    m.extend_from_slice(
        b"From: Alice <alice@example.org>\r\nTo: Bob <bob@example.com>\r\n\
Subject: quarterly report\r\nMessage-ID: <1234.5678@example.org>\r\n\
Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\n",
    );
    let line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempo\r\n";
    let mut n = 0;
    while m.len() < size {
        if n % 40 == 39 {
            m.extend_from_slice(b".a line that starts with a dot\r\n");
        } else {
            m.extend_from_slice(line);
        }
        n += 1;
    }
    m
}

fn bench_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("data_decode");
    for size in [4 * 1024, 100 * 1024, 1024 * 1024] {
        let wire = dot_stuff(&message(size));
        group.throughput(Throughput::Bytes(wire.len() as u64));
        // Reads of 16 KiB, as a server's socket reads deliver them.
        group.bench_with_input(BenchmarkId::new("impulse", size), &wire, |b, wire| {
            let mut out = Vec::with_capacity(wire.len());
            b.iter(|| {
                out.clear();
                let mut decoder = DataDecoder::new();
                for chunk in wire.chunks(16 * 1024) {
                    let p = decoder.decode(chunk, &mut out);
                    if p.complete {
                        break;
                    }
                }
                black_box(out.len())
            })
        });
        group.bench_with_input(BenchmarkId::new("stalwart", size), &wire, |b, wire| {
            let mut out = Vec::with_capacity(wire.len());
            b.iter(|| {
                out.clear();
                let mut receiver = stalwart_smtp_proto::request::receiver::DataReceiver::new();
                for chunk in wire.chunks(16 * 1024) {
                    if receiver.ingest(&mut chunk.iter(), &mut out) {
                        break;
                    }
                }
                black_box(out.len())
            })
        });
    }
    group.finish();
}

fn bench_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("data_encode");
    for size in [4 * 1024, 1024 * 1024] {
        let body = message(size);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new("impulse", size), &body, |b, body| {
            let mut out = Vec::with_capacity(body.len() + body.len() / 64 + 8);
            b.iter(|| {
                out.clear();
                let mut stuffer = DotStuffer::new();
                for chunk in body.chunks(16 * 1024) {
                    stuffer.encode(chunk, &mut out);
                }
                stuffer.finish(&mut out);
                black_box(out.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_decode, bench_encode);
criterion_main!(benches);
