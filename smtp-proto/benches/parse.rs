//! Command, reply and EHLO parsing: Impulse's `smtp-proto` against the `smtp-proto` crate on
//! crates.io (Stalwart's, here `stalwart_smtp_proto`) on the same inputs, in the same run.
//!
//! Run with `cargo bench --bench parse` (from `smtp-proto/`). Each group has an `impulse` and a
//! `stalwart` line; the ratio of their times is recorded in `docs/BENCHMARKS.md`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use smtp_proto::capability::parse_capabilities;
use smtp_proto::command::{frame_line, Command, Frame, ParseOptions};
use smtp_proto::reply::ReplyParser;

/// A realistic inbound session mix: EHLO, a few transactions with parameters and several
/// recipients, RSET, NOOP, QUIT.
const COMMANDS: &[&[u8]] = &[
    b"EHLO mail-ej1-f54.google.com\r\n",
    b"MAIL FROM:<alice.sender@example.org> SIZE=23456 BODY=8BITMIME\r\n",
    b"RCPT TO:<bob@example.com>\r\n",
    b"RCPT TO:<carol.smith@example.com> NOTIFY=SUCCESS,FAILURE\r\n",
    b"RCPT TO:<dave+tag@sub.example.com>\r\n",
    b"DATA\r\n",
    b"MAIL FROM:<bounces+12345-abcd=example.com@mailer.example.net>\r\n",
    b"RCPT TO:<eve@example.com>\r\n",
    b"DATA\r\n",
    b"RSET\r\n",
    b"MAIL FROM:<> RET=HDRS ENVID=QQ314159\r\n",
    b"RCPT TO:<postmaster@example.com> ORCPT=rfc822;postmaster@example.com\r\n",
    b"DATA\r\n",
    b"NOOP\r\n",
    b"QUIT\r\n",
];

const REPLIES: &[&[u8]] = &[
    b"220 mx.example.com ESMTP ready\r\n",
    b"250 2.1.0 Ok\r\n",
    b"250 2.1.5 Ok\r\n",
    b"354 End data with <CR><LF>.<CR><LF>\r\n",
    b"250 2.0.0 Ok: queued as 4F2B31C0A2\r\n",
    b"550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n\
550-5.1.1 double-checking the recipient's email address for typos or\r\n\
550 5.1.1 unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser\r\n",
    b"221 2.0.0 Bye\r\n",
];

const EHLO: &[u8] = b"250-mx.google.com at your service, [192.0.2.10]\r\n\
250-SIZE 157286400\r\n250-8BITMIME\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n\
250-PIPELINING\r\n250-CHUNKING\r\n250-AUTH LOGIN PLAIN XOAUTH2\r\n250 SMTPUTF8\r\n";

fn total_len(items: &[&[u8]]) -> u64 {
    items.iter().map(|i| i.len() as u64).sum()
}

fn bench_commands(c: &mut Criterion) {
    let mut group = c.benchmark_group("command_parse");
    group.throughput(Throughput::Elements(COMMANDS.len() as u64));
    let options = ParseOptions::default();
    group.bench_function("impulse", |b| {
        b.iter(|| {
            for line in COMMANDS {
                let Frame::Complete(n) = frame_line(line, options.limits.command_line) else {
                    unreachable!()
                };
                black_box(Command::parse(&line[..n], &options).unwrap());
            }
        })
    });
    group.bench_function("impulse_owned", |b| {
        b.iter(|| {
            for line in COMMANDS {
                let Frame::Complete(n) = frame_line(line, options.limits.command_line) else {
                    unreachable!()
                };
                black_box(Command::parse(&line[..n], &options).unwrap().into_owned());
            }
        })
    });
    group.bench_function("stalwart", |b| {
        b.iter(|| {
            for line in COMMANDS {
                black_box(stalwart_smtp_proto::Request::parse(&mut line.iter()).unwrap());
            }
        })
    });
    group.finish();
}

fn bench_replies(c: &mut Criterion) {
    let mut group = c.benchmark_group("reply_parse");
    group.throughput(Throughput::Bytes(total_len(REPLIES)));
    group.bench_function("impulse", |b| {
        b.iter(|| {
            for reply in REPLIES {
                black_box(ReplyParser::new().parse(reply).unwrap().unwrap());
            }
        })
    });
    group.bench_function("stalwart", |b| {
        b.iter(|| {
            for reply in REPLIES {
                let mut receiver =
                    stalwart_smtp_proto::response::parser::ResponseReceiver::default();
                black_box(receiver.parse(&mut reply.iter()).unwrap());
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("ehlo_parse");
    group.throughput(Throughput::Bytes(EHLO.len() as u64));
    group.bench_function("impulse", |b| {
        b.iter(|| {
            let (reply, _) = ReplyParser::new().parse(EHLO).unwrap().unwrap();
            black_box(parse_capabilities(&reply))
        })
    });
    group.bench_function("stalwart", |b| {
        b.iter(|| black_box(stalwart_smtp_proto::EhloResponse::parse(&mut EHLO.iter()).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, bench_commands, bench_replies);
criterion_main!(benches);
