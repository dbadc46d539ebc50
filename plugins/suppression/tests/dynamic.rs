//! Builds `suppression` as a `.so` with cargo, loads it into a `Registry`, and checks that its
//! relay-side hooks cross the boundary and work from there.

use hooks_api::relay::{Attempt, DeliveryOutcome, Disposition, RelayScope};
use hooks_api::smtp_proto::{classify, EnhancedStatus, Reply};
use hooks_api::toml;
use hooks_api::{HookPoint, Order, Registry, Verdict};

#[path = "../../../tests/support/load_so.rs"]
mod load_so;
use load_so::load_so;

#[path = "../../../tests/support/plugin_so.rs"]
mod build_so;

#[test]
fn the_so_registers_its_relay_hooks_and_they_suppress() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("suppressed");
    std::fs::write(&file, "known@t.test\n").unwrap();
    let configs: toml::Table = toml::from_str(&format!(
        "[suppression]\nfile = {:?}\n",
        file.display().to_string()
    ))
    .unwrap();
    let mut registry = Registry::new();
    let so = build_so::plugin_so("suppression");
    assert_eq!(
        load_so(&mut registry, so, &configs).unwrap(),
        ["suppression"]
    );
    let summary = registry.summary("suppression").unwrap();
    assert_eq!(
        summary.hooks,
        [
            (HookPoint::Attempt, Order::First),
            (HookPoint::DeliveryOutcome, Order::Last)
        ]
    );
    let mut scope = RelayScope::new("relay.test");
    let mut ctx = scope.ctx(Attempt::new("Q1", "", "known@t.test", 0));
    assert!(matches!(
        registry.dispatch_attempt(&mut ctx),
        Verdict::Reject(_)
    ));
    let reply = Reply::new(550, EnhancedStatus::parse("5.1.1"), "no such user");
    let class = classify::classify_reply_text("550 5.1.1 no such user");
    let event = DeliveryOutcome::new("Q1", "", "new@t.test", Disposition::Bounced, &reply, class);
    let mut ctx = scope.ctx(event);
    assert_eq!(
        registry.dispatch_delivery_outcome(&mut ctx),
        Verdict::Continue
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "known@t.test\nnew@t.test\n"
    );
}
