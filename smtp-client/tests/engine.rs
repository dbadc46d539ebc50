//! The mio engine over real sockets: against Impulse's own server (connections counted by
//! its connect and disconnect hooks, messages counted in the spool), against Postfix's
//! `smtp-sink` with its failure injection, and against a scripted server for the races
//! neither produces on demand. Every test checks that each submitted message gets exactly
//! one delivery.
// Socket tests run real peers on threads and wait on the real clock.
#![allow(clippy::disallowed_methods)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use impulse_test_support::fake::{Script, Scripted};
use impulse_test_support::peers::Sink;
use impulse_test_support::server::TestServer;
use smtp_client::driver::engine::{Delivery, Engine, EngineBuilder, Ticket};
use smtp_client::smtp_proto::Reply;
use smtp_client::{
    Anchor, ClientContext, ClientState, Message, OutcomeKind, SessionConfig, StateAction,
    StateRegistry,
};

fn message(n: usize, rcpts: &[&str]) -> Message {
    let body = format!("Subject: engine test {n}\r\n\r\n.leading dot\r\nbody of message {n}\r\n");
    Message::new("sender@client.test", rcpts.iter().copied(), body)
}

fn builder(addr: SocketAddr) -> EngineBuilder {
    let mut session = SessionConfig::new("client.test");
    session.policy.command_retries = 0;
    Engine::builder(addr)
        .session(session)
        .connect_timeout(Duration::from_secs(5))
}

/// Submits `n` messages to `rcpts` and collects their deliveries; fails on a duplicate,
/// a missing or an unknown ticket.
fn run(engine: &Engine, n: usize, rcpts: &[&str]) -> Vec<Delivery> {
    let rx = engine.deliveries();
    let mut tickets = HashSet::new();
    for i in 0..n {
        tickets.insert(engine.submit(message(i, rcpts)).unwrap());
    }
    let mut out = Vec::new();
    let mut seen: HashSet<Ticket> = HashSet::new();
    while out.len() < n {
        let d = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("a delivery for every message");
        assert!(tickets.contains(&d.ticket), "unknown ticket {:?}", d.ticket);
        assert!(
            seen.insert(d.ticket),
            "ticket {:?} reported twice",
            d.ticket
        );
        assert_eq!(d.outcomes.len(), rcpts.len());
        out.push(d);
    }
    assert!(
        rx.recv_timeout(Duration::from_millis(100)).is_err(),
        "no extra delivery"
    );
    out
}

fn kinds(d: &Delivery) -> Vec<OutcomeKind> {
    d.outcomes.iter().map(|o| o.kind).collect()
}

/// An Impulse server whose connect and disconnect hooks count into the statics of `$name`.
macro_rules! counted_server {
    ($name:ident) => {
        mod $name {
            use super::*;
            use smtp_client::hooks_api::{Order, PluginConfig, PluginDecl, Registrar, Verdict};
            pub static CONNECTS: AtomicUsize = AtomicUsize::new(0);
            pub static DISCONNECTS: AtomicUsize = AtomicUsize::new(0);
            fn init(r: &mut Registrar, _: &PluginConfig) -> Result<(), String> {
                r.on_connect(Order::First, |_| {
                    CONNECTS.fetch_add(1, Ordering::SeqCst);
                    Verdict::Continue
                });
                r.on_disconnect(Order::First, |_| {
                    DISCONNECTS.fetch_add(1, Ordering::SeqCst);
                });
                Ok(())
            }
            pub static DECL: PluginDecl = PluginDecl {
                name: stringify!($name),
                version: "1.0.0",
                init,
                shutdown: None,
            };
        }
    };
}

/// Impulse's server with the plugin `decl` and a command timeout of `command_timeout` s.
fn own_server(
    decl: &'static smtp_client::hooks_api::PluginDecl,
    command_timeout: u64,
) -> TestServer {
    let mut registry = smtp_client::hooks_api::Registry::new();
    registry.add(decl, &Default::default()).unwrap();
    TestServer::builder()
        .registry(registry)
        .config(|c| {
            c.timeouts.command = smtp_server::config::ConfigDuration::from_secs(command_timeout)
        })
        .start()
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

counted_server!(many);

#[test]
fn own_server_many_messages_over_few_connections() {
    let server = own_server(&many::DECL, 300);
    let engine = builder(server.addr).connections(4).build().unwrap();
    let deliveries = run(&engine, 120, &["r1@mx.test", "r2@mx.test"]);
    for d in &deliveries {
        assert_eq!(kinds(d), [OutcomeKind::Delivered; 2], "{d:?}");
        assert_eq!(d.outcomes[0].reply.code(), 250);
        assert_eq!(d.attempts, 1);
    }
    let stats = engine.stats();
    engine.shutdown();
    let connects = many::CONNECTS.load(Ordering::SeqCst);
    assert!(
        (1..=4).contains(&connects),
        "{connects} connections at the server"
    );
    assert_eq!(stats.connections_opened as usize, connects);
    assert_eq!(server.spool.list().unwrap().len(), 120);
    wait_for("every connection closed", || {
        many::DISCONNECTS.load(Ordering::SeqCst) == connects
    });
    server.stop();
}

counted_server!(limit);

#[test]
fn own_server_max_deliveries_per_connection() {
    let server = own_server(&limit::DECL, 300);
    let engine = builder(server.addr)
        .connections(2)
        .max_deliveries_per_connection(5)
        .build()
        .unwrap();
    let deliveries = run(&engine, 40, &["r@mx.test"]);
    assert!(deliveries.iter().all(Delivery::is_delivered));
    engine.shutdown();
    // 40 messages, at most 5 per connection: at least 8 connections, and no failures, so
    // exactly 8 unless a connection was closed idle between two messages.
    let connects = limit::CONNECTS.load(Ordering::SeqCst);
    assert!((8..=12).contains(&connects), "{connects} connections");
    assert_eq!(server.spool.list().unwrap().len(), 40);
    server.stop();
}

counted_server!(idle);

#[test]
fn own_server_idle_connections_are_closed() {
    let server = own_server(&idle::DECL, 300);
    let engine = builder(server.addr)
        .connections(3)
        .idle_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    run(&engine, 6, &["r@mx.test"]);
    let open = idle::CONNECTS.load(Ordering::SeqCst);
    assert!(open >= 1);
    wait_for("the idle connections closed by the client", || {
        idle::DISCONNECTS.load(Ordering::SeqCst) == open && engine.stats().connections_open == 0
    });
    // The engine still works afterwards, on a new connection.
    let again = run(&engine, 1, &["r@mx.test"]);
    assert!(again[0].is_delivered());
    assert_eq!(idle::CONNECTS.load(Ordering::SeqCst), open + 1);
    engine.shutdown();
    server.stop();
}

counted_server!(dropped);

#[test]
fn own_server_closing_an_idle_connection_is_survived() {
    // The server's command timeout (1 s) closes the engine's idle connection (421).
    let server = own_server(&dropped::DECL, 1);
    let engine = builder(server.addr)
        .connections(1)
        .idle_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    assert!(run(&engine, 1, &["r@mx.test"])[0].is_delivered());
    wait_for("the server closed the idle connection", || {
        engine.stats().connections_open == 0
    });
    let d = run(&engine, 2, &["r@mx.test"]);
    assert!(d.iter().all(Delivery::is_delivered), "{d:?}");
    assert_eq!(dropped::CONNECTS.load(Ordering::SeqCst), 2);
    assert_eq!(server.spool.list().unwrap().len(), 3);
    engine.shutdown();
    server.stop();
}

#[test]
fn a_connection_closed_before_the_message_was_taken_is_retried_elsewhere() {
    // The first connection is dropped by the server when MAIL arrives: the message was not
    // handed over, so it goes out again on a second connection.
    let server = Scripted::start(|n| {
        if n == 0 {
            Script::CloseAtMail
        } else {
            Script::Serve
        }
    });
    let engine = builder(server.addr).connections(1).build().unwrap();
    let d = run(&engine, 3, &["a@scripted.test", "b@scripted.test"]);
    assert!(d.iter().all(Delivery::is_delivered), "{d:?}");
    assert_eq!(d.iter().map(|d| d.attempts).max(), Some(2));
    assert_eq!(engine.stats().retries, 1);
    assert_eq!(server.messages.load(Ordering::SeqCst), 3);
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
    engine.shutdown();
}

#[test]
fn a_server_that_silently_drops_idle_connections() {
    // Each connection takes one message, then the server closes it without a word while
    // the engine has nothing to send on it.
    let server = Scripted::start(|_| Script::CloseAfterOneMessage);
    let engine = builder(server.addr).connections(2).build().unwrap();
    let d = run(&engine, 10, &["a@scripted.test"]);
    assert!(d.iter().all(Delivery::is_delivered), "{d:?}");
    assert_eq!(server.messages.load(Ordering::SeqCst), 10);
    engine.shutdown();
}

#[test]
fn a_refused_greeting_fails_the_waiting_messages_with_the_servers_reply() {
    let server = Scripted::start(|_| Script::RefuseGreeting);
    let engine = builder(server.addr)
        .connections(1)
        .attempts(2)
        .build()
        .unwrap();
    for d in run(&engine, 3, &["a@scripted.test"]) {
        assert_eq!(kinds(&d), [OutcomeKind::Bounced]);
        assert_eq!(d.outcomes[0].reply.code(), 554);
        assert_eq!(d.attempts, 0, "never given to a connection");
    }
    assert_eq!(server.messages.load(Ordering::SeqCst), 0);
    assert!(engine.stats().connections_failed >= 2);
    engine.shutdown();
}

#[test]
fn shutdown_does_not_wait_for_greetings_that_never_come() {
    // The first connection serves; the others are accepted and never greeted. Once every
    // message went out over the first one, shutdown drops the others at once instead of
    // waiting out the greeting timeout (5 minutes by default).
    let server = Scripted::start(|n| {
        if n == 0 {
            Script::Serve
        } else {
            Script::NeverGreet
        }
    });
    let engine = builder(server.addr).connections(4).build().unwrap();
    let d = run(&engine, 12, &["a@scripted.test"]);
    assert!(d.iter().all(Delivery::is_delivered), "{d:?}");
    assert!(
        server.connections.load(Ordering::SeqCst) >= 2,
        "other connections opened"
    );
    let started = Instant::now();
    engine.shutdown();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        started.elapsed()
    );
    assert_eq!(server.messages.load(Ordering::SeqCst), 12);
}

/// Sends NOOP after EHLO.
struct Noop;

impl ClientState for Noop {
    fn name(&self) -> &str {
        "xnoop"
    }
    fn enter(&mut self, _: &mut dyn ClientContext) -> StateAction {
        StateAction::command("NOOP")
    }
    fn on_reply(&mut self, _: &mut dyn ClientContext, reply: &Reply) -> StateAction {
        if reply.is_positive_completion() {
            StateAction::Next
        } else {
            StateAction::Fail {
                reply: reply.clone(),
            }
        }
    }
}

#[test]
fn custom_states_run_on_every_engine_connection() {
    let server = Scripted::start(|_| Script::Serve);
    let mut registry = StateRegistry::new();
    registry
        .register_state("xnoop", Anchor::After("ehlo".into()), || Box::new(Noop))
        .unwrap();
    let engine = builder(server.addr)
        .machine(registry.build())
        .connections(2)
        .max_deliveries_per_connection(2)
        .build()
        .unwrap();
    let d = run(&engine, 8, &["a@scripted.test"]);
    assert!(d.iter().all(Delivery::is_delivered), "{d:?}");
    engine.shutdown();
    let connections = server.connections.load(Ordering::SeqCst);
    assert!(
        connections >= 4,
        "{connections} connections for 8 messages, 2 each"
    );
    assert_eq!(server.noops.load(Ordering::SeqCst), connections);
}

#[test]
fn an_unreachable_server_defers_every_message_once() {
    // Nothing listens on `addr`: connections are refused.
    let addr = impulse_test_support::peers::free_addr();
    let engine = builder(addr).connections(2).attempts(2).build().unwrap();
    let d = run(&engine, 5, &["a@nowhere.test", "b@nowhere.test"]);
    for d in &d {
        assert_eq!(kinds(d), [OutcomeKind::Deferred; 2]);
        assert!(d.outcomes[0].local);
        assert_eq!(d.attempts, 0);
        assert_eq!(d.outcomes[0].reply.code(), 451);
    }
    assert!(engine.stats().connections_failed >= 2);
    engine.shutdown();
}

#[test]
fn sink_many_messages_nothing_lost_or_duplicated() {
    let Some(sink) = Sink::start(&[]) else { return };
    let engine = builder(sink.addr)
        .connections(8)
        .queue_capacity(16)
        .build()
        .unwrap();
    let d = run(&engine, 1000, &["a@sink.test", "b@sink.test"]);
    assert!(d.iter().all(Delivery::is_delivered));
    let stats = engine.stats();
    assert!(stats.connections_opened <= 8, "{stats:?}");
    assert_eq!(stats.deliveries, 1000);
    engine.shutdown();
}

#[test]
fn sink_rejects_are_classified_per_recipient() {
    let Some(sink) = Sink::start(&["-f", "RCPT"]) else {
        return;
    };
    let engine = builder(sink.addr).connections(2).build().unwrap();
    for d in run(&engine, 10, &["a@sink.test", "b@sink.test"]) {
        assert_eq!(kinds(&d), [OutcomeKind::Bounced; 2]);
        assert_eq!(d.outcomes[1].reply.code(), 500);
        assert!(!d.outcomes[1].local);
        // smtp-sink's "500 5.5.2 Error: command not recognized" is a generic bounce.
        assert_eq!(d.outcomes[1].class.id, 40, "{:?}", d.outcomes[1].class);
    }
    engine.shutdown();

    let Some(sink) = Sink::start(&["-r", "MAIL"]) else {
        return;
    };
    let engine = builder(sink.addr).connections(2).build().unwrap();
    for d in run(&engine, 10, &["a@sink.test"]) {
        assert_eq!(kinds(&d), [OutcomeKind::Deferred]);
        assert_eq!(d.outcomes[0].reply.code(), 450);
        assert_eq!(d.outcomes[0].class.id, 70, "Transient Failure");
        assert_eq!(d.attempts, 1, "a server's 4xx is not retried here");
    }
    engine.shutdown();
}

#[test]
fn sink_disconnect_before_the_body_retries_then_defers() {
    let Some(sink) = Sink::start(&["-q", "DATA"]) else {
        return;
    };
    let engine = builder(sink.addr)
        .connections(2)
        .attempts(3)
        .build()
        .unwrap();
    for d in run(&engine, 4, &["a@sink.test"]) {
        assert_eq!(kinds(&d), [OutcomeKind::Deferred]);
        assert_eq!(d.attempts, 3);
    }
    assert_eq!(engine.stats().retries, 8);
    engine.shutdown();
}

#[test]
fn sink_disconnect_after_the_body_is_deferred_not_resent() {
    let Some(sink) = Sink::start(&["-q", "."]) else {
        return;
    };
    let engine = builder(sink.addr).connections(2).build().unwrap();
    for d in run(&engine, 4, &["a@sink.test"]) {
        assert_eq!(kinds(&d), [OutcomeKind::Deferred]);
        assert_eq!(d.attempts, 1, "the body was sent: never sent twice");
        assert_eq!(d.outcomes[0].reply.code(), 451);
    }
    assert_eq!(engine.stats().retries, 0);
    engine.shutdown();
}
