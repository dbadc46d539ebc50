//! The dispatcher's pools without sockets: destinations that share a next hop share its
//! connections and its limit, other TLS settings make other pools, and the next-hop
//! fallback works as it does without sharing.

use super::tests::{addr, config, s, Sim};
use crate::driver::engine::destination::{Destination, NextHop};
use crate::driver::tls::Verify;
use crate::error::Error;
use crate::policy::TlsMode;

fn named(n: u8, name: &str) -> NextHop {
    NextHop::named(addr(n), name)
}

#[test]
fn destinations_that_share_a_next_hop_share_its_idle_connection() {
    let mut sim = Sim::new(config(4, 3, 100));
    // Two domains whose MX lists name the same hosts in another order.
    let one = Destination::new([named(1, "mx1.test"), named(2, "mx2.test")]);
    let two = Destination::new([named(2, "mx2.test"), named(1, "mx1.test")]);
    sim.submit(&one);
    sim.ready(0);
    sim.done(0, 250, false);
    sim.ready(0);
    sim.submit(&two);
    sim.done(0, 250, false);
    assert_eq!(
        sim.actions(),
        s(&[
            "open c0 192.0.2.1:25",
            "assign c0 t0",
            "done t0 Delivered×2 attempts 1",
            "assign c0 t1",
            "done t1 Delivered×2 attempts 1",
        ]),
        "the second domain's message went on the first one's connection"
    );
    assert_eq!(sim.deliveries[1].next_hop, Some(named(1, "mx1.test")));
    assert_eq!(sim.d.counters().opened, 1);
    // An idle connection to a later hop is taken rather than a new one opened to the first.
    sim.ready(0);
    sim.submit(&two);
    sim.submit(&two);
    sim.ready(1);
    assert_eq!(
        sim.actions(),
        s(&["assign c0 t2", "open c1 192.0.2.2:25", "assign c1 t3"])
    );
    // With a connection idle to each host, a destination takes the one of its first hop.
    for c in [0, 1] {
        sim.done(c, 250, false);
        sim.ready(c);
    }
    sim.actions();
    sim.submit(&two);
    sim.submit(&one);
    assert_eq!(sim.actions(), s(&["assign c1 t4", "assign c0 t5"]));
}

#[test]
fn the_connection_limit_counts_per_next_hop_over_destinations() {
    let mut sim = Sim::new(config(10, 3, 100));
    let a = Destination::new([named(1, "mx.test")]).max_connections(1);
    // Another destination (another message limit) naming the same server.
    let b = Destination::new([named(1, "mx.test"), named(2, "mx2.test")])
        .max_connections(1)
        .max_deliveries_per_connection(50);
    sim.submit(&a);
    sim.submit(&b);
    sim.submit(&a);
    assert_eq!(sim.actions(), s(&["open c0 192.0.2.1:25"]), "one for both");
    let key = |d: &Destination| d.pool_key(&d.hops()[0], TlsMode::Disabled, Verify::ByPolicy);
    assert_eq!(key(&a), key(&b));
    assert_eq!(sim.d.pool_connections(&key(&a)), 1);
    // The oldest job goes first, whichever destination it is for.
    for _ in 0..3 {
        sim.ready(0);
        sim.done(0, 250, false);
    }
    assert_eq!(
        sim.actions(),
        s(&[
            "assign c0 t0",
            "done t0 Delivered×2 attempts 1",
            "assign c0 t1",
            "done t1 Delivered×2 attempts 1",
            "assign c0 t2",
            "done t2 Delivered×2 attempts 1",
        ])
    );
    // A destination with a higher limit may open more to the same server; the limit of the
    // destination whose job asks is the one that counts.
    let c = Destination::new([named(1, "mx.test")]).max_connections(2);
    sim.submit(&c);
    sim.submit(&c);
    sim.submit(&a);
    assert_eq!(
        sim.actions(),
        s(&["open c1 192.0.2.1:25"]),
        "c's second job and a's wait: two connections is c's limit, one is a's"
    );
    assert_eq!(sim.d.pool_connections(&key(&a)), 2);
}

#[test]
fn another_tls_name_mode_or_verification_is_another_pool() {
    let mut sim = Sim::new(config(10, 3, 100));
    let base = Destination::new([named(1, "a.test")]);
    let others = [
        Destination::new([named(1, "b.test")]),
        base.clone().tls(TlsMode::Required),
        base.clone().tls(TlsMode::Required).verify(Verify::Never),
        Destination::new([NextHop::new(addr(1))]),
    ];
    sim.submit(&base);
    sim.ready(0);
    sim.done(0, 250, false);
    sim.ready(0);
    sim.actions();
    for (i, other) in others.iter().enumerate() {
        sim.submit(other);
        assert_eq!(
            sim.actions(),
            vec![format!("open c{} 192.0.2.1:25", i + 1)],
            "{other:?} does not take a.test's idle connection"
        );
    }
    // The same settings spelt out are the same pool.
    sim.submit(&base.clone().tls(TlsMode::Disabled));
    assert_eq!(sim.actions(), s(&["assign c0 t5"]));
}

#[test]
fn with_shared_pools_a_failed_hop_and_a_dead_connection_fall_back_as_before() {
    let mut sim = Sim::new(config(10, 1, 100));
    let two = Destination::new([named(1, "mx1.test"), named(2, "mx2.test")]);
    let first_only = Destination::new([named(1, "mx1.test")]);
    sim.submit(&two);
    sim.closed(0, Some(Error::Io("connection refused".into())));
    // `two` moved on to its second hop; `first_only` still tries the first.
    sim.submit(&first_only);
    assert_eq!(
        sim.actions(),
        s(&[
            "open c0 192.0.2.1:25",
            "open c1 192.0.2.2:25",
            "open c2 192.0.2.1:25",
        ])
    );
    sim.closed(2, Some(Error::Io("connection refused".into())));
    assert_eq!(
        sim.actions(),
        s(&["done t1 Deferred×2 attempts 0"]),
        "first_only has no other hop"
    );
    // A connection that dies before the body: the job goes to another connection of its
    // destination's current hop.
    let mut sim = Sim::new(config(10, 3, 100));
    sim.submit(&two);
    sim.ready(0);
    sim.submit(&first_only);
    sim.done(0, 451, true);
    sim.closed(0, Some(Error::PeerClosed));
    sim.ready(2);
    sim.ready(1);
    sim.done(1, 250, false);
    assert_eq!(
        sim.actions(),
        s(&[
            "open c0 192.0.2.1:25",
            "assign c0 t0",
            "open c1 192.0.2.1:25",
            "open c2 192.0.2.1:25",
            "assign c2 t0",
            "assign c1 t1",
            "done t1 Delivered×2 attempts 1",
        ])
    );
    assert_eq!(sim.d.counters().retries, 1);
}

#[test]
fn the_index_of_waiting_destinations_follows_every_queue_change() {
    // Thirty domains on two servers (in both orders, with their own limits), their jobs
    // taken, some retried on another connection after a break, some connections lost in
    // set-up: after every step the pools' indexes match a scan of their destinations.
    let mut sim = Sim::new(config(3, 2, 100));
    let dests: Vec<Destination> = (0..30u8)
        .map(|i| {
            match i % 3 {
                0 => Destination::new([named(1, "mx.test")]),
                1 => Destination::new([named(1, "mx.test"), named(2, "mx2.test")]),
                _ => {
                    Destination::new([named(2, "mx2.test"), named(1, "mx.test")]).max_connections(1)
                }
            }
            .max_deliveries_per_connection(u32::from(i % 4) + 1)
        })
        .collect();
    for d in dests.iter().chain(&dests) {
        sim.submit(d);
        sim.d.check_waiting_index();
    }
    let mut step = 0u32;
    while (sim.d.counters().completed as usize) < 2 * dests.len() {
        step += 1;
        assert!(step < 10_000, "the jobs never ended");
        let actions = sim.actions();
        assert!(!actions.is_empty(), "stuck with nothing to do");
        for a in actions {
            let words: Vec<&str> = a.split(' ').collect();
            let conn = |w: &str| w.trim_start_matches('c').parse::<u64>().unwrap();
            match words[0] {
                // Every fifth set-up fails; the others get ready.
                "open" if step % 5 == 0 => sim.closed(conn(words[1]), Some(Error::PeerClosed)),
                "open" => sim.ready(conn(words[1])),
                // Every seventh job breaks before its body and goes back to the queue.
                "assign" => {
                    let c = conn(words[1]);
                    if step % 7 == 0 {
                        sim.done(c, 451, true);
                        sim.closed(c, Some(Error::PeerClosed));
                    } else {
                        sim.done(c, 250, false);
                        sim.ready(c);
                    }
                }
                "close" | "abandon" => sim.closed(conn(words[1]), None),
                _ => {}
            }
            sim.d.check_waiting_index();
        }
    }
    assert!(sim.d.counters().retries > 0, "some went back to the queue");
}

#[test]
fn a_destination_served_by_a_shared_pool_leaves_the_line_for_room() {
    // Under a cap of two, z waits for room to open to mx.test; its job goes on the
    // connection x opened there instead, and z leaves the line: an idle connection of
    // another server is then kept, and z is forgotten once its job is done.
    let mut sim = Sim::new(config(2, 3, 100));
    let x = Destination::new([named(1, "mx.test")]).max_connections(1);
    let y = Destination::new([named(2, "other.test")]);
    let z = Destination::new([named(1, "mx.test"), named(3, "mx3.test")]).max_connections(5);
    sim.submit(&x);
    sim.submit(&y);
    sim.submit(&z);
    assert_eq!(
        sim.actions(),
        s(&["open c0 192.0.2.1:25", "open c1 192.0.2.2:25"])
    );
    assert_eq!(sim.d.blocked.len(), 1, "z waits for room");
    sim.ready(0);
    sim.done(0, 250, false);
    sim.ready(0);
    sim.ready(1);
    sim.done(1, 250, false);
    sim.ready(1);
    assert_eq!(
        sim.actions(),
        s(&[
            "assign c0 t0",
            "done t0 Delivered×2 attempts 1",
            "assign c0 t2",
            "assign c1 t1",
            "done t1 Delivered×2 attempts 1",
        ]),
        "c1 stays open: nobody waits for room any more"
    );
    assert!(sim.d.blocked.is_empty());
    sim.done(0, 250, false);
    let z_id = sim.d.index.get(&z).copied();
    assert_eq!(z_id, None, "z is forgotten with its last job");
    // A new job of z's puts it back in line, and the idle connection makes room.
    sim.submit(&z);
    sim.ready(0);
    assert_eq!(
        sim.actions(),
        s(&["done t2 Delivered×2 attempts 1", "close c1", "assign c0 t3"])
    );
    sim.closed(1, None);
    assert_eq!(sim.actions(), s(&[]), "t3 went on c0 meanwhile");
    assert!(sim.d.blocked.is_empty());
    sim.submit(&z);
    assert_eq!(sim.actions(), s(&["open c2 192.0.2.1:25"]));
}
