//! The static path for the first-party plugins: all three linked into one binary as rlibs
//! (the `impulse` package's dependencies, as they are for the binary; none defines the `.so`
//! entry points, which are in the `plugins/*-so` crates, so they link side by side) and
//! found through `inventory` by `Registry::load_static` — exactly these three, initialised
//! in name order.

use hooks_api::smtp_proto::classify;
use hooks_api::toml;
use hooks_api::{HookPoint, Order, Registry};
use impulse_plugin_auth_file as _;
use impulse_plugin_bounce_rules as _;
use impulse_plugin_xclient as _;

#[test]
fn exactly_the_three_first_party_plugins_are_linked() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, "# no users yet\n").unwrap();
    let configs: toml::Table = toml::from_str(&format!(
        r#"
        [auth-file]
        file = {:?}
        [[bounce-rules.class]]
        id = 200
        name = "Greylisted"
        category = "soft"
        [[bounce-rules.rule]]
        class = 200
        priority = 900
        codes = "450-451"
        text = "greylist"
        "#,
        users.display().to_string()
    ))
    .unwrap();
    let classifier: &'static classify::Registry = Box::leak(Box::new(classify::Registry::new()));
    let mut registry = Registry::with_classifier(classifier);
    let names = registry.load_static(&configs).unwrap();
    assert_eq!(names, ["auth-file", "bounce-rules", "xclient"]);
    assert_eq!(
        registry.plugin_names(),
        ["auth-file", "bounce-rules", "xclient"]
    );
    assert_eq!(
        registry.chain(HookPoint::Auth),
        [("auth-file".to_owned(), Order::Priority(0))]
    );
    assert_eq!(&*registry.extension("XCLIENT").unwrap().plugin, "xclient");
    assert_eq!(
        classifier
            .classify_reply_text("451 4.7.1 Greylisted, come back later")
            .id,
        200
    );
}
