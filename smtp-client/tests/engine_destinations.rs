//! One engine, many destinations, over real sockets: two scripted servers on loopback as two
//! destinations with their own pools and limits, next-hop fallback past a port nobody
//! listens on, and a destination whose every hop fails while another delivers. Every test
//! checks that each submitted message gets exactly one delivery, naming the next hop used.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use impulse_test_support::fake::{Script, Scripted};
use smtp_client::driver::engine::{Delivery, Destination, Engine, NextHop, Ticket};
use smtp_client::{Message, OutcomeKind, SessionConfig};

fn message(n: usize) -> Message {
    let body = format!("Subject: destination test {n}\r\n\r\nbody {n}\r\n");
    Message::new("sender@client.test", ["a@dest.test", "b@dest.test"], body)
}

fn engine(addr: SocketAddr, connections: usize, attempts: u32) -> Engine {
    let mut session = SessionConfig::new("client.test");
    session.policy.command_retries = 0;
    Engine::builder(addr)
        .session(session)
        .connections(connections)
        .attempts(attempts)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// A port on 127.0.0.1 nobody listens on: connections to it are refused.
fn dead_addr() -> SocketAddr {
    impulse_test_support::peers::free_addr()
}

/// Submits `n` messages to each destination (interleaved) and returns each destination's
/// deliveries; fails on a missing, duplicated or unknown ticket.
fn run(engine: &Engine, n: usize, destinations: &[Destination]) -> Vec<Vec<Delivery>> {
    let rx = engine.deliveries();
    let mut which: HashMap<Ticket, usize> = HashMap::new();
    for i in 0..n {
        for (k, d) in destinations.iter().enumerate() {
            let ticket = engine.submit_to(d.clone(), message(i)).unwrap();
            which.insert(ticket, k);
        }
    }
    let mut out = vec![Vec::new(); destinations.len()];
    for _ in 0..n * destinations.len() {
        let d = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("a delivery for every message");
        let k = which
            .remove(&d.ticket)
            .expect("a known ticket, reported once");
        assert_eq!(d.outcomes.len(), 2);
        out[k].push(d);
    }
    assert!(
        rx.recv_timeout(Duration::from_millis(100)).is_err(),
        "no extra delivery"
    );
    out
}

#[test]
fn two_servers_as_two_destinations_with_their_own_pools_and_limits() {
    let a = Scripted::start(|_| Script::Serve);
    let b = Scripted::start(|_| Script::Serve);
    let engine = engine(a.addr, 4, 3);
    let to_a = Destination::to(a.addr).max_connections(1);
    let b_hop = NextHop::named(b.addr, "mx.b.test");
    let to_b = Destination::new([b_hop.clone()])
        .max_connections(2)
        .max_deliveries_per_connection(5);
    let [for_a, for_b] = <[_; 2]>::try_from(run(&engine, 20, &[to_a, to_b])).unwrap();
    for d in &for_a {
        assert!(d.is_delivered(), "{d:?}");
        assert_eq!(d.next_hop, Some(NextHop::new(a.addr)));
    }
    for d in &for_b {
        assert!(d.is_delivered(), "{d:?}");
        assert_eq!(d.next_hop.as_ref(), Some(&b_hop));
        assert_eq!(
            d.next_hop.as_ref().unwrap().to_string(),
            format!("mx.b.test[127.0.0.1]:{}", b.addr.port())
        );
    }
    assert_eq!(a.messages.load(Ordering::SeqCst), 20);
    assert_eq!(b.messages.load(Ordering::SeqCst), 20);
    assert_eq!(
        a.connections.load(Ordering::SeqCst),
        1,
        "one connection, reused for all of a's messages"
    );
    // Five messages per connection: at least four connections to b over the run.
    assert!(b.connections.load(Ordering::SeqCst) >= 4);
    engine.shutdown();
}

#[test]
fn a_refused_first_hop_falls_back_to_the_next() {
    let dead = dead_addr();
    let b = Scripted::start(|_| Script::Serve);
    let engine = engine(dead, 2, 1);
    let two = Destination::new([NextHop::named(dead, "mx1.test"), NextHop::new(b.addr)]);
    let [d] = <[_; 1]>::try_from(run(&engine, 4, &[two])).unwrap();
    for d in &d {
        assert!(d.is_delivered(), "{d:?}");
        assert_eq!(d.next_hop, Some(NextHop::new(b.addr)));
        assert_eq!(d.attempts, 1);
    }
    assert_eq!(b.messages.load(Ordering::SeqCst), 4);
    assert!(engine.stats().connections_failed >= 1);
    engine.shutdown();
}

#[test]
fn a_destination_whose_hops_all_fail_defers_while_another_delivers() {
    let b = Scripted::start(|_| Script::Serve);
    let engine = engine(b.addr, 3, 2);
    let nowhere = Destination::new([NextHop::new(dead_addr()), NextHop::new(dead_addr())]);
    let [failed, delivered] =
        <[_; 2]>::try_from(run(&engine, 5, &[nowhere, Destination::to(b.addr)])).unwrap();
    for d in &failed {
        assert_eq!(d.count(OutcomeKind::Deferred), 2, "{d:?}");
        assert!(d.outcomes[0].local, "no server said a word");
        assert_eq!(d.attempts, 0);
        assert_eq!(d.next_hop, None, "no connection was set up");
    }
    assert!(delivered.iter().all(Delivery::is_delivered));
    assert_eq!(b.messages.load(Ordering::SeqCst), 5);
    // Two hops × two attempts each before the jobs fail.
    assert!(engine.stats().connections_failed >= 4);
    engine.shutdown();
}
