//! The relay-side points through a real registry: what hooks see and change, and how a
//! faulty hook is reported to the host.

use std::net::SocketAddr;

use smtp_proto::classify::{self, Category};
use smtp_proto::{EnhancedStatus, Reply};

use crate::*;

fn registry(init: fn(&mut Registrar, &PluginConfig) -> Result<(), String>) -> Registry {
    let decl: &'static PluginDecl = Box::leak(Box::new(PluginDecl {
        name: "relay-test",
        version: "1",
        init,
        shutdown: None,
    }));
    let classifier = Box::leak(Box::new(classify::Registry::new()));
    let mut registry = Registry::with_classifier(classifier);
    registry.add(decl, &toml::Table::new()).unwrap();
    registry
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn a_route_hook_reorders_and_replaces_next_hops() {
    let r = registry(|r, _| {
        r.on_route(Order::First, |ctx| {
            if ctx.domain == "moved.test" {
                ctx.hops = vec![RouteHop::new("new.moved.test", addr(2525))];
                ctx.failure = None;
            } else {
                ctx.hops.reverse();
            }
            Verdict::Continue
        });
        Ok(())
    });
    assert_eq!(r.chain(HookPoint::Route).len(), 1);
    let mut scope = RelayScope::new("relay.test");
    let hops = vec![RouteHop::new("a", addr(1)), RouteHop::new("b", addr(2))];
    let mut ctx: RouteCtx<'_> = scope.ctx(Route::new("two.test", hops, None));
    assert_eq!(r.dispatch_route(&mut ctx), Verdict::Continue);
    assert!(!ctx.hook_faulted());
    let names: Vec<&str> = ctx.hops.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["b", "a"]);
    assert_eq!(ctx.session().helo.as_deref(), Some("relay.test"));

    let nx = Reply::new(550, Some(EnhancedStatus::new(5, 1, 2)), "no such domain");
    let mut ctx: RouteCtx<'_> = scope.ctx(Route::new("moved.test", vec![], Some(nx)));
    assert_eq!(r.dispatch_route(&mut ctx), Verdict::Continue);
    let event = ctx.into_event();
    assert_eq!(event.failure, None);
    assert_eq!(event.hops, [RouteHop::new("new.moved.test", addr(2525))]);
}

#[test]
fn attempt_and_outcome_hooks_answer_with_verdicts() {
    let r = registry(|r, _| {
        r.on_attempt(Order::First, |ctx| {
            if ctx.recipient == "gone@target.test" {
                Verdict::reject(550, "5.1.1", "suppressed")
            } else {
                Verdict::Continue
            }
        })
        .on_delivery_outcome(Order::First, |ctx| {
            match (ctx.disposition, ctx.class.category) {
                (Disposition::Deferred, _) if ctx.reply.code() == 452 => {
                    Verdict::reject(550, "5.2.2", "over quota for too long")
                }
                _ => Verdict::Continue,
            }
        });
        Ok(())
    });
    let mut scope = RelayScope::new("relay.test");
    let mut ctx: AttemptCtx<'_> = scope.ctx(Attempt::new("Q1", "a@s.test", "gone@target.test", 1));
    assert!(
        matches!(r.dispatch_attempt(&mut ctx), Verdict::Reject(ref reply) if reply.code() == 550)
    );
    let mut ctx: AttemptCtx<'_> = scope.ctx(Attempt::new("Q1", "a@s.test", "b@target.test", 0));
    assert_eq!(r.dispatch_attempt(&mut ctx), Verdict::Continue);

    let full = Reply::new(452, Some(EnhancedStatus::new(4, 2, 2)), "mailbox full");
    let class = r.classifier().classify_reply_text("452 4.2.2 mailbox full");
    assert_eq!(class.category, Category::Soft);
    let event = DeliveryOutcome::new("Q1", "", "b@t.test", Disposition::Deferred, &full, class)
        .next_hop(Some("mx.t.test[127.0.0.1]:25"));
    let mut ctx: DeliveryOutcomeCtx<'_> = scope.ctx(event);
    match r.dispatch_delivery_outcome(&mut ctx) {
        Verdict::Reject(reply) => assert_eq!(reply.status().unwrap().to_string(), "5.2.2"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_panicking_or_waiting_relay_hook_is_reported_as_faulted() {
    let r = registry(|r, _| {
        r.on_attempt(Order::First, |_| panic!("boom"))
            .on_bounce(Order::First, |ctx| ctx.pending().0);
        Ok(())
    });
    let mut scope = RelayScope::new("relay.test");
    let mut ctx: AttemptCtx<'_> = scope.ctx(Attempt::new("Q1", "", "b@t.test", 0));
    assert_eq!(r.dispatch_attempt(&mut ctx), Verdict::panicked());
    assert!(ctx.hook_faulted(), "the host applies its default");

    let reported = [Reported::new("b@t.test", "5.1.1", "550 5.1.1 no", Some(10))];
    let mut ctx: BounceCtx<'_> = scope.ctx(Bounce::new(
        "Q1",
        "a@s.test",
        NotificationKind::Failed,
        &reported,
    ));
    assert!(!ctx.can_pend());
    assert_eq!(r.dispatch_bounce(&mut ctx), Verdict::local_error());
    assert!(ctx.hook_faulted());
}

#[test]
fn bounce_hooks_add_only_well_formed_headers_and_notes() {
    let reported = [Reported::new("b@t.test", "5.1.1", "", None)];
    let mut event = Bounce::new("Q1", "a@s.test", NotificationKind::Failed, &reported);
    assert!(event.add_header("X-Suppression", "checked"));
    assert!(!event.add_header("Bad Name", "x"));
    assert!(!event.add_header("X-Colon:", "x"));
    assert!(!event.add_header("X-Inject", "a\r\nBcc: someone@evil.test"));
    assert!(!event.add_header("X-Long", &"v".repeat(relay::MAX_ADDED_HEADER_LEN)));
    assert!(event.add_note("checked by the suppression list"));
    assert!(!event.add_note("two\nlines"));
    for i in 1..relay::MAX_ADDED_HEADERS {
        assert!(event.add_header(&format!("X-N{i}"), "v"));
    }
    assert!(!event.add_header("X-One-Too-Many", "v"));
    assert_eq!(
        event.headers()[0],
        ("X-Suppression".into(), "checked".into())
    );
    assert_eq!(event.notes(), ["checked by the suppression list"]);
}

#[test]
fn the_server_sides_points_are_untouched_by_relay_hooks() {
    let r = registry(|r, _| {
        r.on_route(Order::Last, |_| Verdict::Continue)
            .on_bounce(Order::First, |_| Verdict::reject(550, "", "no"));
        Ok(())
    });
    let summary = r.summary("relay-test").unwrap();
    assert_eq!(
        summary.hooks,
        [
            (HookPoint::Route, Order::Last),
            (HookPoint::Bounce, Order::First)
        ]
    );
    for point in HookPoint::ALL {
        if matches!(point.side(), Side::Server(_)) {
            assert_eq!(r.hook_count(point), 0, "{point}");
        }
    }
}
