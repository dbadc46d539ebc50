//! The translations between the relay's types and the hook events, without sockets: route
//! outcomes through route hooks, and a screened batch merged back into its report.

use std::net::SocketAddr;

use hooks_api::{Order, PluginConfig, PluginDecl, Registrar, Registry, Verdict};
use smtp_proto::{EnhancedStatus, Reply};

use super::*;

fn registry(init: fn(&mut Registrar, &PluginConfig) -> Result<(), String>) -> Registry {
    let decl: &'static PluginDecl = Box::leak(Box::new(PluginDecl {
        name: "driver-test",
        version: "1",
        init,
        shutdown: None,
    }));
    let classifier = Box::leak(Box::new(smtp_proto::classify::Registry::new()));
    let mut registry = Registry::with_classifier(classifier);
    registry.add(decl, &hooks_api::toml::Table::new()).unwrap();
    registry
}

fn hop(name: &str, port: u16, tls: TlsPolicy) -> NextHop {
    NextHop {
        name: name.into(),
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        tls,
    }
}

fn route_with(r: &Registry, domain: &str, outcome: RouteOutcome) -> (RouteAnswer, TlsPolicy) {
    route(Some(r), "relay.test", domain, outcome)
}

#[test]
fn route_verdicts_and_edits_become_scheduler_answers() {
    let r = registry(|r, _| {
        r.on_route(Order::First, |ctx| match ctx.domain {
            "refused.test" => Verdict::reject(550, "5.7.1", "we do not deliver there"),
            "later.test" => Verdict::temp_fail(451, "4.7.0", "not now"),
            "added.test" => {
                let addr = SocketAddr::from(([127, 0, 0, 1], 9));
                ctx.hops.insert(0, RouteHop::new("extra.test", addr));
                Verdict::Continue
            }
            "rescued.test" => {
                ctx.failure = None;
                let addr = SocketAddr::from(([127, 0, 0, 1], 7));
                ctx.hops = vec![RouteHop::new("rescue.test", addr)];
                Verdict::Continue
            }
            _ => Verdict::Continue,
        });
        Ok(())
    });
    let hops = RouteOutcome::Hops(vec![hop("mx.test", 25, TlsPolicy::Required)]);
    let (answer, _) = route_with(&r, "refused.test", hops.clone());
    assert_eq!(
        answer,
        RouteAnswer::Refused("550 5.7.1 we do not deliver there".into())
    );
    let (answer, _) = route_with(&r, "later.test", hops.clone());
    assert_eq!(answer, RouteAnswer::Temporary("451 4.7.0 not now".into()));

    // An added hop takes the route's TLS policy; the order is the hook's.
    let (answer, tls) = route_with(&r, "added.test", hops.clone());
    assert_eq!(tls, TlsPolicy::Required);
    let RouteAnswer::Hops(got) = answer else {
        panic!("{answer:?}")
    };
    let names: Vec<&str> = got.iter().map(|h| &*h.host).collect();
    assert_eq!(names, ["extra.test", "mx.test"]);

    // An untouched lookup failure keeps its meaning; a cleared one gives the hook's hops.
    let null_mx = Reply::new(556, EnhancedStatus::parse("5.1.10"), "null MX");
    let failed = RouteOutcome::Permanent(null_mx);
    assert_eq!(
        route_with(&r, "other.test", failed.clone()).0,
        RouteAnswer::NullMx
    );
    let (answer, tls) = route_with(&r, "rescued.test", failed);
    assert_eq!(tls, TlsPolicy::Opportunistic);
    assert!(matches!(answer, RouteAnswer::Hops(h) if &*h[0].host == "rescue.test"));
}

#[test]
fn a_panicking_route_hook_leaves_the_lookup_as_it_was() {
    let r = registry(|r, _| {
        r.on_route(Order::First, |ctx| {
            ctx.hops.clear();
            panic!("half way")
        });
        Ok(())
    });
    let hops = RouteOutcome::Hops(vec![hop("mx.test", 25, TlsPolicy::None)]);
    let (answer, tls) = route_with(&r, "x.test", hops);
    assert_eq!(tls, TlsPolicy::None);
    assert!(matches!(answer, RouteAnswer::Hops(h) if h.len() == 1));
}

#[test]
fn a_screened_batch_is_merged_back_in_order() {
    let bounced = RecipientOutcome::Bounced {
        reply: "550 5.1.1 suppressed".into(),
        at_rcpt: false,
    };
    let screen = Screen {
        decided: vec![(1, bounced.clone())],
    };
    assert!(!screen.is_whole(3));
    assert_eq!(screen.attempted(&[10, 11, 12]), [10, 12]);
    let mut known = HashMap::new();
    screen.remember(&mut known, &[10, 11, 12], "relay.test");
    assert_eq!(known.get(&11).map(String::as_str), Some("relay.test"));
    assert_eq!(known.len(), 1);
    let report = AttemptReport {
        outcomes: vec![
            RecipientOutcome::Delivered("250 ok".into()),
            RecipientOutcome::Deferred("451 later".into()),
        ],
        ..Default::default()
    };
    let merged = screen.merge(3, report);
    assert_eq!(
        merged.outcomes,
        [
            RecipientOutcome::Delivered("250 ok".into()),
            bounced,
            RecipientOutcome::Deferred("451 later".into()),
        ]
    );
    let whole = Screen {
        decided: vec![(0, RecipientOutcome::LocalFailure("451 4.7.1 later".into()))],
    };
    assert!(whole.is_whole(1));
    assert_eq!(whole.merge(1, AttemptReport::default()).outcomes.len(), 1);
}
