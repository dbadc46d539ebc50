//! The static path: linked as an rlib, `bounce-rules` is found through `inventory` by
//! `Registry::from_static`, which registers into the process-wide classifier.

use hooks_api::smtp_proto::classify;
use hooks_api::toml;
use hooks_api::Registry;
use impulse_plugin_bounce_rules as _;

#[test]
fn exactly_bounce_rules_is_linked_and_feeds_the_global_classifier() {
    let configs: toml::Table = toml::from_str(
        r#"
        [[bounce-rules.class]]
        id = 300
        name = "Local Quota Policy"
        category = "admin"
        [[bounce-rules.rule]]
        class = 300
        priority = 990
        codes = 552
        text = "quota policy"
        "#,
    )
    .unwrap();
    let registry = Registry::from_static(&configs).unwrap();
    assert_eq!(registry.plugin_names(), ["bounce-rules"]);
    let class = classify::classify_reply_text("552 5.2.2 Rejected by local quota policy");
    assert_eq!((class.id, class.name), (300, "Local Quota Policy"));
    assert_eq!(
        classify::for_id(300).unwrap().category,
        classify::Category::Admin
    );
}
