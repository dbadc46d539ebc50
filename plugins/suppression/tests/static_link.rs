//! The static path: linked as an rlib, `suppression` is found through `inventory` by
//! `Registry::load_static_configured` when its table is configured, and its two relay-side
//! hooks record a hard bounce and refuse the recipient from then on.

use hooks_api::relay::{Attempt, DeliveryOutcome, Disposition, RelayScope};
use hooks_api::smtp_proto::{classify, EnhancedStatus, Reply};
use hooks_api::toml;
use hooks_api::{HookPoint, LoadError, Order, Registry, Verdict};
use impulse_plugin_suppression as _;

fn configs(file: &std::path::Path) -> toml::Table {
    toml::from_str(&format!(
        "[suppression]\nfile = {:?}\n",
        file.display().to_string()
    ))
    .unwrap()
}

#[test]
fn hard_bounces_are_recorded_and_then_refused_before_an_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("suppressed");
    let mut registry = Registry::new();
    assert_eq!(
        registry.load_static_configured(&configs(&file)).unwrap(),
        ["suppression"]
    );
    assert_eq!(
        registry.chain(HookPoint::Attempt),
        [("suppression".to_owned(), Order::First)]
    );
    assert_eq!(
        registry.chain(HookPoint::DeliveryOutcome),
        [("suppression".to_owned(), Order::Last)]
    );
    let mut scope = RelayScope::new("relay.test");
    let outcome = |registry: &Registry, scope: &mut RelayScope, to: &str, d, reply: &Reply| {
        let text = format!(
            "{} {} {}",
            reply.code(),
            reply.status().unwrap(),
            reply.lines()[0]
        );
        let class = classify::classify_reply_text(&text);
        let mut ctx = scope.ctx(DeliveryOutcome::new("Q1", "a@s.test", to, d, reply, class));
        assert_eq!(
            registry.dispatch_delivery_outcome(&mut ctx),
            Verdict::Continue
        );
    };
    let unknown = Reply::new(550, EnhancedStatus::parse("5.1.1"), "user unknown");
    let full = Reply::new(452, EnhancedStatus::parse("4.2.2"), "mailbox full");
    let blocked = Reply::new(554, EnhancedStatus::parse("5.7.1"), "blocked by policy");
    let no_domain = Reply::new(550, EnhancedStatus::parse("5.1.2"), "no such domain");
    outcome(
        &registry,
        &mut scope,
        "Gone@T.test",
        Disposition::Bounced,
        &unknown,
    );
    outcome(
        &registry,
        &mut scope,
        "full@t.test",
        Disposition::Deferred,
        &full,
    );
    outcome(
        &registry,
        &mut scope,
        "blocked@t.test",
        Disposition::Bounced,
        &blocked,
    );
    outcome(
        &registry,
        &mut scope,
        "x@nowhere.test",
        Disposition::Bounced,
        &no_domain,
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "gone@t.test\n",
        "hard bounces only"
    );

    let attempt = |registry: &Registry, scope: &mut RelayScope, to: &str| {
        let mut ctx = scope.ctx(Attempt::new("Q2", "a@s.test", to, 0));
        registry.dispatch_attempt(&mut ctx)
    };
    match attempt(&registry, &mut scope, "<gone@t.test>") {
        Verdict::Reject(r) => assert_eq!(
            (
                r.code(),
                r.status().unwrap().to_string(),
                r.lines()[0].as_str()
            ),
            (
                550,
                "5.1.1".into(),
                "recipient suppressed after an earlier hard bounce"
            )
        ),
        other => panic!("{other:?}"),
    }
    for open in ["full@t.test", "blocked@t.test", "x@nowhere.test"] {
        assert_eq!(
            attempt(&registry, &mut scope, open),
            Verdict::Continue,
            "{open}"
        );
    }

    // A restarted server reads the list back.
    let mut again = Registry::new();
    again.load_static_configured(&configs(&file)).unwrap();
    assert!(matches!(
        attempt(&again, &mut scope, "GONE@t.test"),
        Verdict::Reject(_)
    ));
}

#[test]
fn without_its_table_it_stays_inactive_and_a_bad_table_stops_the_start() {
    let mut registry = Registry::new();
    assert!(registry
        .load_static_configured(&toml::Table::new())
        .unwrap()
        .is_empty());
    let bad: toml::Table = toml::from_str("[suppression]\npath = 'x'\n").unwrap();
    let err = Registry::new().load_static_configured(&bad).unwrap_err();
    assert!(
        matches!(&err, LoadError::InitFailed { plugin, reason } if plugin == "suppression" && reason.contains("unknown field `path`")),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("list");
    std::fs::write(&file, "ok@t.test\nnot an address\n").unwrap();
    let err = Registry::new()
        .load_static_configured(&configs(&file))
        .unwrap_err();
    assert!(err.to_string().contains("line 2: not an address"), "{err}");
}
