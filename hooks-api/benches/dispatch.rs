//! Hook dispatch cost: a chain of 10 no-op hooks per phase (connect, helo, mail, rcpt), all
//! returning `Continue`. Criterion reports the time per chain; divide by 10 for the time per
//! hook (the target is under 50 ns per hook).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use hooks_api::smtp_proto::{ForwardPath, Params, Path};
use hooks_api::toml;
use hooks_api::{
    Connect, Ctx, Envelope, Helo, Mail, Notes, Order, PluginConfig, PluginDecl, Rcpt, Registrar,
    Registry, SessionInfo, Verdict,
};

fn init(r: &mut Registrar, _: &PluginConfig) -> Result<(), String> {
    for i in 0..10 {
        r.on_connect(Order::Priority(i), |_| Verdict::Continue);
        r.on_helo(Order::Priority(i), |ctx| {
            black_box(ctx.name);
            Verdict::Continue
        });
        r.on_mail(Order::Priority(i), |_| Verdict::Continue);
        r.on_rcpt(Order::Priority(i), |ctx| {
            black_box(ctx.recipient);
            Verdict::Continue
        });
    }
    Ok(())
}

static BENCH: PluginDecl = PluginDecl {
    name: "bench",
    version: "0",
    init,
    shutdown: None,
};

fn dispatch(c: &mut Criterion) {
    let mut registry = Registry::new();
    registry.add(&BENCH, &toml::Table::new()).unwrap();
    let mut session = SessionInfo::new(
        "192.0.2.1:4000".parse().unwrap(),
        "192.0.2.2:25".parse().unwrap(),
    );
    let (mut conn, mut txn) = (Notes::new(), Notes::new());
    let envelope = Envelope::new(Path::Null, Params::default());
    let recipient = ForwardPath::parse(b"<bob@example.com>", &Default::default())
        .unwrap()
        .into_owned();
    let params = Params::default();

    let mut group = c.benchmark_group("10 no-op hooks");
    group.bench_function("connect", |b| {
        b.iter(|| {
            let mut ctx = Ctx::new(&mut session, &mut conn, &mut txn, Connect);
            black_box(registry.dispatch_connect(&mut ctx))
        })
    });
    group.bench_function("helo", |b| {
        b.iter(|| {
            let event = Helo {
                name: "client.example.com",
                extended: true,
            };
            let mut ctx = Ctx::new(&mut session, &mut conn, &mut txn, event);
            black_box(registry.dispatch_helo(&mut ctx))
        })
    });
    group.bench_function("mail", |b| {
        b.iter(|| {
            let event = Mail {
                sender: &envelope.sender,
                params: &params,
            };
            let mut ctx = Ctx::new(&mut session, &mut conn, &mut txn, event);
            black_box(registry.dispatch_mail(&mut ctx))
        })
    });
    group.bench_function("rcpt", |b| {
        b.iter(|| {
            let event = Rcpt {
                envelope: &envelope,
                recipient: &recipient,
                params: &params,
            };
            let mut ctx = Ctx::new(&mut session, &mut conn, &mut txn, event);
            black_box(registry.dispatch_rcpt(&mut ctx))
        })
    });
    group.finish();
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
