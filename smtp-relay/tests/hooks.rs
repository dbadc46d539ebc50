//! The relay-side hook points over real sockets: a relay started with a plugin registry
//! delivers to loopback sinks, and its route, attempt, delivery-outcome and bounce hooks
//! change where mail goes, what becomes of a recipient, and whether the sender is notified;
//! the shipped `suppression` plugin bounces a recipient that hard-bounced before without
//! handing it to the next hop again; a panicking hook leaves the relay's default.
#![allow(clippy::disallowed_methods)] // a test plays the clock and the peers

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hooks_api::relay::{Disposition, RouteHop};
use hooks_api::{Order, PluginConfig, PluginDecl, Registrar, Registry, Verdict};
use impulse_plugin_suppression as _;
use impulse_test_support::sink::Sink;
use smtp_relay::driver::{Relay, RelaySettings};
use smtp_spool::Spool;

mod common;
use common::{assert_contains_all, commit, drained, relay_settings_to, start, WAIT};

/// `target.test`, `moved.test` and `sender.test` routed to `hop`; the plugins of `registry`.
fn settings(hop: SocketAddr, registry: Registry) -> RelaySettings {
    let mut s = relay_settings_to(&["target.test", "moved.test", "sender.test"], hop);
    s.registry = Some(Arc::new(registry));
    s
}

/// A registry holding one plugin whose `init` is `init`.
fn plugin(
    name: &'static str,
    init: fn(&mut Registrar, &PluginConfig) -> Result<(), String>,
) -> Registry {
    let decl: &'static PluginDecl = Box::leak(Box::new(PluginDecl {
        name,
        version: "1",
        init,
        shutdown: None,
    }));
    let mut registry = Registry::new();
    registry.add(decl, &hooks_api::toml::Table::new()).unwrap();
    registry
}

/// Where the route hook below sends `moved.test`.
static MOVED_TO: OnceLock<SocketAddr> = OnceLock::new();

#[test]
fn a_route_hook_sends_a_domain_to_other_next_hops() {
    let old = Sink::start();
    let new = Sink::start();
    MOVED_TO.set(new.addr).unwrap();
    let registry = plugin("mover", |r, _| {
        r.on_route(Order::First, |ctx| {
            if ctx.domain == "moved.test" {
                let to = *MOVED_TO.get().expect("set by the test");
                ctx.hops = vec![RouteHop::new("new.moved.test", to)];
            }
            Verdict::Continue
        });
        Ok(())
    });
    let (_dir, spool, relay) = start(settings(old.addr, registry));
    commit(
        &spool,
        "a@sender.test",
        &["x@moved.test", "y@target.test"],
        "Subject: moved\r\n\r\nhello\r\n",
    );
    let got = new.wait_for(1, WAIT);
    assert_eq!(got.len(), 1, "moved.test went to the hook's next hop");
    assert_eq!(got[0].to, ["x@moved.test"]);
    let stayed = old.wait_for(1, WAIT);
    assert_eq!(stayed.len(), 1);
    assert_eq!(
        stayed[0].to,
        ["y@target.test"],
        "target.test kept its route"
    );
    assert!(drained(&spool), "all done");
    relay.shutdown();
}

#[test]
fn an_outcome_hook_turns_a_deferral_into_a_bounce_and_a_bounce_hook_adds_a_header() {
    let sink = Sink::with_rule(|rcpt| {
        rcpt.starts_with("full@")
            .then_some("452 4.2.2 <full@target.test>: mailbox full\r\n")
    });
    let registry = plugin("strict", |r, _| {
        r.on_delivery_outcome(Order::First, |ctx| {
            if ctx.disposition == Disposition::Deferred && ctx.reply.code() == 452 {
                Verdict::reject(552, "5.2.2", "mailbox full, not retried")
            } else {
                Verdict::Continue
            }
        })
        .on_bounce(Order::First, |ctx| {
            assert_eq!(ctx.recipients.len(), 1);
            ctx.add_header("X-Impulse-Policy", "strict-quota");
            ctx.add_note("seen by strict");
            Verdict::Continue
        });
        Ok(())
    });
    let (_dir, spool, relay) = start(settings(sink.addr, registry));
    commit(
        &spool,
        "a@sender.test",
        &["full@target.test", "b@target.test"],
        "Subject: quota\r\n\r\nbody\r\n",
    );
    let got = sink.wait_for(2, WAIT);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].to, ["b@target.test"]);
    let dsn = &got[1];
    assert_eq!(
        (dsn.from.as_str(), dsn.to.as_slice()),
        ("", &["a@sender.test".to_owned()][..])
    );
    assert_contains_all(
        &dsn.data,
        &[
            "X-Impulse-Policy: strict-quota\r\n",
            "Final-Recipient: rfc822; full@target.test",
            "Action: failed",
            "Status: 5.2.2",
            "Diagnostic-Code: smtp; 552 5.2.2 mailbox full, not retried",
        ],
    );
    assert!(dsn.data.starts_with("X-Impulse-Policy: strict-quota\r\n"));
    assert!(drained(&spool), "all done");
    relay.shutdown();
}

#[test]
fn a_bounce_hook_suppresses_the_notification() {
    let sink = Sink::with_rule(|rcpt| {
        rcpt.starts_with("nobody@")
            .then_some("550 5.1.1 <nobody@target.test>: no such user\r\n")
    });
    let registry = plugin("quiet", |r, _| {
        r.on_bounce(Order::First, |ctx| {
            if ctx.sender == "a@sender.test" {
                Verdict::reject(550, "", "this sender wants no notifications")
            } else {
                Verdict::Continue
            }
        });
        Ok(())
    });
    let (_dir, spool, relay) = start(settings(sink.addr, registry));
    let id = commit(
        &spool,
        "a@sender.test",
        &["b@target.test", "nobody@target.test"],
        "Subject: half\r\n\r\nbody\r\n",
    );
    assert_eq!(sink.wait_for(1, WAIT).len(), 1);
    assert!(
        drained(&spool),
        "{id} done, its bounced recipient recorded as such"
    );
    std::thread::sleep(Duration::from_millis(500));
    let got = sink.messages();
    assert_eq!(got.len(), 1, "no notification: {got:?}");
    assert_eq!(got[0].to, ["b@target.test"]);
    relay.shutdown();
}

/// RCPTs the sink below saw for `gone@target.test`.
static GONE_RCPTS: AtomicUsize = AtomicUsize::new(0);

#[test]
fn the_suppression_plugin_bounces_at_once_a_recipient_that_hard_bounced_before() {
    let sink = Sink::with_rule(|rcpt| {
        if rcpt == "gone@target.test" {
            GONE_RCPTS.fetch_add(1, Ordering::SeqCst);
            return Some("550 5.1.1 <gone@target.test>: user unknown\r\n");
        }
        None
    });
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("suppressed");
    let configs: hooks_api::toml::Table = hooks_api::toml::from_str(&format!(
        "[suppression]\nfile = {:?}\n",
        list.display().to_string()
    ))
    .unwrap();
    let mut registry = Registry::new();
    assert_eq!(
        registry.load_static_configured(&configs).unwrap(),
        ["suppression"]
    );
    let spool = Spool::open(dir.path().join("spool")).unwrap();
    let relay = Relay::start(spool.clone(), settings(sink.addr, registry)).unwrap();

    // First message: gone@ hard-bounces at the next hop, and goes on the list.
    commit(
        &spool,
        "a@sender.test",
        &["gone@target.test", "b@target.test"],
        "Subject: first\r\n\r\nx\r\n",
    );
    let got = sink.wait_for(2, WAIT);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[1].data.contains("Status: 5.1.1"), "{}", got[1].data);
    assert!(drained(&spool));
    assert_eq!(GONE_RCPTS.load(Ordering::SeqCst), 1);
    assert_eq!(
        std::fs::read_to_string(&list).unwrap(),
        "gone@target.test\n"
    );

    // Second message: gone@ is bounced without an attempt; c@ is delivered.
    commit(
        &spool,
        "a@sender.test",
        &["Gone@target.test", "c@target.test"],
        "Subject: second\r\n\r\nx\r\n",
    );
    let got = sink.wait_for(4, WAIT);
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[2].to, ["c@target.test"]);
    let dsn = &got[3];
    assert_eq!(dsn.to, ["a@sender.test"]);
    assert_contains_all(
        &dsn.data,
        &[
            "Final-Recipient: rfc822; Gone@target.test",
            "Status: 5.1.1",
            "recipient suppressed after an earlier hard bounce",
        ],
    );
    assert!(drained(&spool));
    assert_eq!(
        GONE_RCPTS.load(Ordering::SeqCst),
        1,
        "the next hop never saw RCPT for the suppressed recipient again"
    );
    relay.shutdown();
}

#[test]
fn panicking_relay_hooks_leave_the_relays_defaults() {
    let sink = Sink::with_rule(|rcpt| {
        rcpt.starts_with("nobody@")
            .then_some("550 5.1.1 <nobody@target.test>: no such user\r\n")
    });
    let registry = plugin("broken", |r, _| {
        r.on_route(Order::First, |ctx| {
            ctx.hops.clear();
            panic!("route hook")
        })
        .on_attempt(Order::First, |_| panic!("attempt hook"))
        .on_delivery_outcome(Order::First, |_| panic!("outcome hook"))
        .on_bounce(Order::First, |_| panic!("bounce hook"));
        Ok(())
    });
    let (_dir, spool, relay) = start(settings(sink.addr, registry));
    commit(
        &spool,
        "a@sender.test",
        &["b@target.test", "nobody@target.test"],
        "Subject: broken\r\n\r\nbody\r\n",
    );
    let got = sink.wait_for(2, WAIT);
    assert_eq!(
        got.len(),
        2,
        "delivered and notified as without hooks: {got:?}"
    );
    assert_eq!(got[0].to, ["b@target.test"]);
    assert!(got[1]
        .data
        .contains("Final-Recipient: rfc822; nobody@target.test"));
    assert!(drained(&spool));
    relay.shutdown();
}
