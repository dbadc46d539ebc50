//! The dispatcher without sockets: jobs, connections and time are all simulated, and every
//! action is checked in order.
// Tests read the real clock once, for the instant their simulated clock starts from.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use smtp_proto::Reply;

use super::{Action, ConnId, DispatchConfig, Dispatcher, Job};
use crate::driver::engine::destination::{Destination, NextHop};
use crate::driver::engine::{Delivery, Ticket};
use crate::driver::tls::Verify;
use crate::error::Error;
use crate::message::{Message, OutcomeKind, RecipientOutcome};
use crate::policy::TlsMode;

const IDLE: Duration = Duration::from_secs(5);

pub(super) fn config(connections: usize, attempts: u32, max_deliveries: u32) -> DispatchConfig {
    DispatchConfig {
        connections,
        attempts,
        idle_timeout: IDLE,
        max_deliveries,
        tls: TlsMode::Disabled,
        verify: Verify::ByPolicy,
    }
}

pub(super) fn addr(n: u8) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, n], 25))
}

fn dest(n: u8) -> Destination {
    Destination::to(addr(n))
}

/// A dispatcher, a simulated clock, and what came out of it.
pub(super) struct Sim {
    pub(super) d: Dispatcher,
    now: Instant,
    next_ticket: u64,
    pub(super) deliveries: Vec<Delivery>,
}

impl Sim {
    pub(super) fn new(config: DispatchConfig) -> Sim {
        Sim {
            d: Dispatcher::new(config),
            now: Instant::now(),
            next_ticket: 0,
            deliveries: Vec::new(),
        }
    }

    /// Submits a job of two recipients to `destination`; returns its ticket number.
    pub(super) fn submit(&mut self, destination: &Destination) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let message = Message::new("a@example.org", ["r1@example.net", "r2@example.net"], "x");
        let job = Job {
            ticket: Ticket(ticket),
            destination: destination.clone(),
            message,
        };
        self.d.handle_submit(job, self.now);
        ticket
    }

    /// The actions so far, as short strings (completed deliveries are kept aside too).
    pub(super) fn actions(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(action) = self.d.poll_action() {
            out.push(match action {
                Action::Open { conn, pool } => format!("open c{} {}", conn.0, pool.hop.addr),
                Action::Assign { conn, ticket, .. } => format!("assign c{} t{}", conn.0, ticket.0),
                Action::Close { conn } => format!("close c{}", conn.0),
                Action::Abandon { conn } => format!("abandon c{}", conn.0),
                Action::Complete(delivery) => {
                    let s = format!(
                        "done t{} {:?}×{} attempts {}",
                        delivery.ticket.0,
                        delivery.outcomes[0].kind,
                        delivery.outcomes.len(),
                        delivery.attempts
                    );
                    self.deliveries.push(delivery);
                    s
                }
            });
        }
        out
    }

    pub(super) fn ready(&mut self, conn: u64) {
        self.d.handle_ready(ConnId(conn), self.now);
    }

    /// The job on `conn` ends with every recipient's `code`.
    pub(super) fn done(&mut self, conn: u64, code: u16, retryable: bool) {
        self.finish(conn, outcomes(code, code != 250), retryable, false);
    }

    /// The job on `conn` ends with `outcomes`, on a server that did or did not offer DSN.
    fn finish(&mut self, conn: u64, outcomes: Vec<RecipientOutcome>, retryable: bool, dsn: bool) {
        self.d
            .handle_message_done(ConnId(conn), outcomes, retryable, dsn, self.now);
    }

    pub(super) fn closed(&mut self, conn: u64, error: Option<Error>) {
        self.d.handle_closed(ConnId(conn), error, self.now);
    }

    pub(super) fn advance(&mut self, by: Duration) {
        self.now += by;
        self.d.handle_timeout(self.now);
    }
}

/// Both recipients of a submitted job answered with `code` (marked local or not).
fn outcomes(code: u16, local: bool) -> Vec<RecipientOutcome> {
    let reply = Reply::new(code, None, "scripted");
    ["r1@example.net", "r2@example.net"]
        .iter()
        .map(|r| RecipientOutcome::from_reply(r, reply.clone(), local))
        .collect()
}

pub(super) fn s(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn jobs_open_connections_up_to_the_cap_and_reuse_them() {
    let mut sim = Sim::new(config(2, 3, 100));
    for _ in 0..3 {
        sim.submit(&dest(1));
    }
    assert_eq!(
        sim.actions(),
        s(&["open c0 192.0.2.1:25", "open c1 192.0.2.1:25"])
    );
    sim.ready(1);
    assert_eq!(sim.actions(), s(&["assign c1 t0"]));
    sim.done(1, 250, false);
    sim.ready(1);
    assert_eq!(
        sim.actions(),
        s(&["done t0 Delivered×2 attempts 1", "assign c1 t1"])
    );
    sim.ready(0);
    assert_eq!(sim.actions(), s(&["assign c0 t2"]));
    assert_eq!(
        sim.deliveries[0].next_hop,
        Some(NextHop::new(addr(1))),
        "which next hop took it"
    );
    assert_eq!(sim.d.counters().opened, 2);
}

#[test]
fn a_connection_that_died_before_the_body_retries_on_another() {
    let mut sim = Sim::new(config(1, 3, 100));
    sim.submit(&dest(1));
    sim.ready(0);
    assert_eq!(sim.actions(), s(&["open c0 192.0.2.1:25", "assign c0 t0"]));
    // The server closed the connection as MAIL went out.
    sim.done(0, 451, true);
    assert_eq!(sim.actions(), s(&[]), "not reported: it goes again");
    sim.closed(0, Some(Error::PeerClosed));
    assert_eq!(sim.actions(), s(&["open c1 192.0.2.1:25"]));
    sim.ready(1);
    sim.done(1, 250, false);
    assert_eq!(
        sim.actions(),
        s(&["assign c1 t0", "done t0 Delivered×2 attempts 2"])
    );
    assert_eq!(sim.d.counters().retries, 1);
    assert_eq!(sim.d.counters().setups_failed, 0, "it was set up");
}

#[test]
fn a_job_whose_body_was_sent_is_never_sent_again() {
    let mut sim = Sim::new(config(1, 3, 100));
    sim.submit(&dest(1));
    sim.ready(0);
    sim.actions();
    sim.done(0, 451, false);
    assert_eq!(sim.actions(), s(&["done t0 Deferred×2 attempts 1"]));
    assert_eq!(sim.d.counters().retries, 0);
}

#[test]
fn retries_stop_after_the_attempts_and_a_delivered_recipient_stops_them() {
    let mut sim = Sim::new(config(1, 2, 100));
    sim.submit(&dest(1));
    sim.ready(0);
    sim.done(0, 451, true);
    sim.closed(0, Some(Error::PeerClosed));
    sim.ready(1);
    sim.done(1, 451, true);
    assert_eq!(
        sim.actions(),
        s(&[
            "open c0 192.0.2.1:25",
            "assign c0 t0",
            "open c1 192.0.2.1:25",
            "assign c1 t0",
            "done t0 Deferred×2 attempts 2",
        ])
    );
    // One recipient delivered: the job is over, whatever broke after.
    sim.submit(&dest(1));
    sim.ready(1);
    let reply = |code| RecipientOutcome::from_reply("r", Reply::new(code, None, "x"), false);
    sim.finish(1, vec![reply(250), reply(451)], true, false);
    assert_eq!(
        sim.actions(),
        s(&["assign c1 t1", "done t1 Delivered×2 attempts 1"])
    );
}

#[test]
fn failed_set_ups_in_a_row_fail_every_waiting_job() {
    let mut sim = Sim::new(config(1, 2, 100));
    for _ in 0..3 {
        sim.submit(&dest(1));
    }
    sim.closed(0, Some(Error::Io("refused".into())));
    let refused = Reply::new(554, None, "no service");
    sim.closed(1, Some(Error::Refused(refused)));
    assert_eq!(
        sim.actions(),
        s(&[
            "open c0 192.0.2.1:25",
            "open c1 192.0.2.1:25",
            "done t0 Bounced×2 attempts 0",
            "done t1 Bounced×2 attempts 0",
            "done t2 Bounced×2 attempts 0",
        ])
    );
    let d = &sim.deliveries[0];
    assert_eq!(d.outcomes[0].reply.code(), 554, "the server's reply");
    assert!(d.outcomes[0].local);
    assert_eq!(d.next_hop, None, "no connection was set up");
    assert_eq!(sim.d.counters().setups_failed, 2);
    assert_eq!(sim.d.waiting(), 0);
    // A job submitted later gets connections of its own.
    sim.submit(&dest(1));
    assert_eq!(sim.actions(), s(&["open c2 192.0.2.1:25"]));
}

#[test]
fn a_connection_that_gets_ready_resets_the_failures() {
    let mut sim = Sim::new(config(1, 2, 100));
    sim.submit(&dest(1));
    sim.closed(0, Some(Error::PeerClosed));
    sim.ready(1);
    sim.done(1, 250, false);
    sim.submit(&dest(1));
    sim.closed(1, None);
    sim.closed(2, Some(Error::PeerClosed));
    assert_eq!(
        sim.actions(),
        s(&[
            "open c0 192.0.2.1:25",
            "open c1 192.0.2.1:25",
            "assign c1 t0",
            "done t0 Delivered×2 attempts 1",
            "open c2 192.0.2.1:25",
            "open c3 192.0.2.1:25",
        ]),
        "one failure in a row since c1 was ready: t1 still waits"
    );
}

#[test]
fn a_connection_is_closed_at_its_message_limit() {
    let mut sim = Sim::new(config(1, 3, 2));
    for _ in 0..3 {
        sim.submit(&dest(1));
    }
    for _ in 0..2 {
        sim.ready(0);
        sim.done(0, 250, false);
    }
    sim.ready(0);
    sim.closed(0, None);
    assert_eq!(
        sim.actions(),
        s(&[
            "open c0 192.0.2.1:25",
            "assign c0 t0",
            "done t0 Delivered×2 attempts 1",
            "assign c0 t1",
            "done t1 Delivered×2 attempts 1",
            "close c0",
            "open c1 192.0.2.1:25",
        ])
    );
    // A destination's own limit wins over the engine's.
    let mut sim = Sim::new(config(1, 3, 100));
    let one = dest(1).max_deliveries_per_connection(1);
    sim.submit(&one);
    sim.ready(0);
    sim.done(0, 250, false);
    sim.ready(0);
    assert_eq!(sim.actions().last().map(String::as_str), Some("close c0"));
}

#[test]
fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let mut sim = Sim::new(config(1, 3, 100));
    sim.submit(&dest(1));
    sim.ready(0);
    sim.done(0, 250, false);
    sim.ready(0);
    sim.actions();
    assert_eq!(sim.d.poll_timeout(), Some(sim.now + IDLE));
    sim.advance(IDLE - Duration::from_millis(1));
    assert_eq!(sim.actions(), s(&[]));
    // A job in time takes the idle connection and stops its clock.
    sim.submit(&dest(1));
    assert_eq!(sim.actions(), s(&["assign c0 t1"]));
    assert_eq!(sim.d.poll_timeout(), None);
    sim.done(0, 250, false);
    sim.ready(0);
    sim.actions();
    sim.advance(IDLE);
    assert_eq!(sim.actions(), s(&["close c0"]));
    sim.closed(0, None);
    assert_eq!(sim.actions(), s(&[]));
    assert_eq!(sim.d.connections(), 0);
}

#[test]
fn each_destination_has_its_own_pool_and_limit() {
    let mut sim = Sim::new(config(3, 3, 100));
    let a = dest(1).max_connections(1);
    let b = dest(2);
    for _ in 0..3 {
        sim.submit(&a);
        sim.submit(&b);
    }
    assert_eq!(
        sim.actions(),
        s(&[
            "open c0 192.0.2.1:25",
            "open c1 192.0.2.2:25",
            "open c2 192.0.2.2:25",
        ])
    );
    // A connection to b never carries a's jobs.
    sim.ready(1);
    sim.done(1, 250, false);
    sim.ready(1);
    sim.done(1, 250, false);
    sim.ready(1);
    sim.ready(0);
    assert_eq!(
        sim.actions(),
        s(&[
            "assign c1 t1",
            "done t1 Delivered×2 attempts 1",
            "assign c1 t3",
            "done t3 Delivered×2 attempts 1",
            "assign c1 t5",
            "assign c0 t0",
        ])
    );
    assert_eq!(sim.d.waiting(), 2, "t2 and t4 wait for a's one connection");
}

#[test]
fn the_next_hop_is_tried_when_the_first_cannot_be_set_up() {
    let mut sim = Sim::new(config(2, 1, 100));
    let two = Destination::new([NextHop::named(addr(1), "mx1.test"), NextHop::new(addr(2))]);
    sim.submit(&two);
    sim.closed(0, Some(Error::Io("connection refused".into())));
    sim.ready(1);
    sim.done(1, 250, false);
    assert_eq!(
        sim.actions(),
        s(&[
            "open c0 192.0.2.1:25",
            "open c1 192.0.2.2:25",
            "assign c1 t0",
            "done t0 Delivered×2 attempts 1",
        ])
    );
    assert_eq!(sim.deliveries[0].next_hop, Some(NextHop::new(addr(2))));
    // The working hop stays in use; when the last one fails too, the waiting jobs fail and
    // the list starts over.
    sim.ready(1);
    sim.submit(&two);
    sim.submit(&two);
    sim.done(1, 451, false);
    sim.closed(2, Some(Error::Io("connection refused".into())));
    sim.submit(&two);
    assert_eq!(
        sim.actions(),
        s(&[
            "assign c1 t1",
            "open c2 192.0.2.2:25",
            "done t1 Deferred×2 attempts 1",
            "done t2 Deferred×2 attempts 0",
            "open c3 192.0.2.1:25",
        ])
    );
}

#[test]
fn a_failure_on_a_hop_already_left_does_not_count() {
    let mut sim = Sim::new(config(4, 1, 100));
    let two = Destination::new([NextHop::new(addr(1)), NextHop::new(addr(2))]);
    sim.submit(&two);
    sim.submit(&two);
    sim.closed(0, Some(Error::PeerClosed));
    // c1 went to the first hop as well; its failure is old news.
    sim.closed(1, Some(Error::PeerClosed));
    assert_eq!(
        sim.actions(),
        s(&[
            "open c0 192.0.2.1:25",
            "open c1 192.0.2.1:25",
            "open c2 192.0.2.2:25",
            "open c3 192.0.2.2:25",
        ]),
        "two jobs wait, both on the second hop now"
    );
    sim.closed(2, Some(Error::PeerClosed));
    assert_eq!(
        sim.actions(),
        s(&[
            "done t0 Deferred×2 attempts 0",
            "done t1 Deferred×2 attempts 0"
        ])
    );
    assert_eq!(sim.d.counters().setups_failed, 3);
}

#[test]
fn many_destinations_share_the_global_cap_and_idle_connections_make_room() {
    let mut sim = Sim::new(config(2, 3, 100));
    sim.submit(&dest(1));
    sim.submit(&dest(2));
    sim.submit(&dest(3));
    assert_eq!(
        sim.actions(),
        s(&["open c0 192.0.2.1:25", "open c1 192.0.2.2:25"])
    );
    assert!(!sim.d.has_room());
    // c0's job is done and nothing else goes to its destination: it is closed for the
    // third destination rather than left idle.
    sim.ready(0);
    sim.done(0, 250, false);
    sim.ready(0);
    sim.closed(0, None);
    assert_eq!(
        sim.actions(),
        s(&[
            "assign c0 t0",
            "done t0 Delivered×2 attempts 1",
            "close c0",
            "open c2 192.0.2.3:25",
        ])
    );
    // An idle connection is closed at once when another destination wants room.
    sim.ready(1);
    sim.done(1, 250, false);
    sim.ready(1);
    sim.actions();
    sim.submit(&dest(4));
    assert_eq!(sim.actions(), s(&["close c1"]));
    sim.closed(1, None);
    assert_eq!(sim.actions(), s(&["open c3 192.0.2.4:25"]));
}

#[test]
fn shutdown_closes_idle_connections_and_abandons_those_setting_up() {
    let mut sim = Sim::new(config(3, 3, 100));
    for _ in 0..3 {
        sim.submit(&dest(1));
    }
    sim.ready(0);
    sim.ready(1);
    sim.d.handle_shutdown(sim.now);
    assert_eq!(
        sim.actions(),
        s(&[
            "open c0 192.0.2.1:25",
            "open c1 192.0.2.1:25",
            "open c2 192.0.2.1:25",
            "assign c0 t0",
            "assign c1 t1",
        ]),
        "jobs still waiting: nothing closes"
    );
    sim.ready(2);
    sim.done(2, 250, false);
    sim.ready(2);
    sim.done(0, 250, false);
    sim.ready(0);
    sim.done(1, 250, false);
    assert_eq!(
        sim.actions(),
        s(&[
            "assign c2 t2",
            "done t2 Delivered×2 attempts 1",
            "close c2",
            "done t0 Delivered×2 attempts 1",
            "close c0",
            "done t1 Delivered×2 attempts 1",
        ])
    );
    assert!(!sim.d.is_finished());
    for c in 0..3 {
        sim.closed(c, None);
    }
    assert!(sim.d.is_finished());
    // Set-ups still running when the last job is done are dropped, and not failures.
    let mut sim = Sim::new(config(2, 3, 100));
    sim.submit(&dest(1));
    sim.submit(&dest(1));
    sim.ready(0);
    sim.d.handle_shutdown(sim.now);
    sim.done(0, 250, false);
    sim.ready(0);
    assert_eq!(
        sim.actions()[3..],
        s(&["done t0 Delivered×2 attempts 1", "assign c0 t1"])[..]
    );
    sim.done(0, 250, false);
    assert_eq!(
        sim.actions(),
        s(&["done t1 Delivered×2 attempts 1", "abandon c1"])
    );
    sim.ready(0);
    sim.closed(1, Some(Error::Io("engine shut down".into())));
    sim.closed(0, None);
    assert_eq!(sim.actions(), s(&["close c0"]));
    assert!(sim.d.is_finished());
    assert_eq!(sim.d.counters().setups_failed, 0);
}

#[test]
fn an_outcome_missing_recipients_is_filled_in() {
    let mut sim = Sim::new(config(1, 1, 100));
    sim.submit(&dest(1));
    sim.ready(0);
    sim.finish(0, Vec::new(), true, false);
    assert_eq!(
        sim.actions(),
        s(&[
            "open c0 192.0.2.1:25",
            "assign c0 t0",
            "done t0 Deferred×2 attempts 1"
        ])
    );
    assert_eq!(sim.deliveries[0].count(OutcomeKind::Deferred), 2);
}

#[test]
fn a_delivery_says_whether_the_last_connection_offered_dsn() {
    let mut sim = Sim::new(config(1, 3, 100));
    sim.submit(&dest(1));
    sim.submit(&dest(1));
    sim.actions();
    sim.ready(0);
    sim.actions();
    // The first job breaks before its body on a server that offered DSN; it goes to
    // another connection, whose server does not.
    sim.finish(0, outcomes(451, false), true, true);
    sim.ready(0);
    sim.finish(0, outcomes(250, false), false, false);
    sim.ready(0);
    sim.finish(0, outcomes(250, false), false, true);
    sim.actions();
    let offered: Vec<(u64, bool)> = sim
        .deliveries
        .iter()
        .map(|d| (d.ticket.0, d.dsn_offered))
        .collect();
    assert_eq!(offered, [(0, false), (1, true)]);
}
