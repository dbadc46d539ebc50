//! Builds `bounce-rules` as a `.so` with cargo, loads it into a `Registry` with its own
//! classifier, and checks that the configured classes and rules reach the host's registry
//! and decide the classification of sample replies.

use std::path::PathBuf;

use hooks_api::smtp_proto::classify::{self, Category};
use hooks_api::smtp_proto::EnhancedStatus;
use hooks_api::toml;
use hooks_api::{LoadError, Registry};

#[path = "../../../tests/support/load_so.rs"]
mod load_so;
use load_so::load_so;

#[path = "../../../tests/support/plugin_so.rs"]
mod build_so;

/// The plugin's `.so`, built once per test binary.
fn plugin_so() -> PathBuf {
    build_so::plugin_so("bounce-rules")
}

const CONFIG: &str = r#"
[[bounce-rules.class]]
id = 200
name = "Greylisted"
description = "The receiver greylisted the message."
category = "soft"

[[bounce-rules.rule]]
class = 200
priority = 900
codes = "450-451"
status = "4.7.*"
text = ["greylist", "try again later"]
"#;

fn fresh() -> (Registry, &'static classify::Registry) {
    let classifier: &'static classify::Registry = Box::leak(Box::new(classify::Registry::new()));
    (Registry::with_classifier(classifier), classifier)
}

#[test]
fn configured_classes_and_rules_classify_replies() {
    let (mut registry, classifier) = fresh();
    let configs: toml::Table = toml::from_str(CONFIG).unwrap();
    assert_eq!(
        load_so(&mut registry, plugin_so(), &configs).unwrap(),
        ["bounce-rules"]
    );
    let summary = registry.summary("bounce-rules").unwrap();
    assert_eq!(summary.classes, [(200, "Greylisted".to_owned())]);
    assert_eq!(summary.rules, 1);
    assert!(summary.hooks.is_empty() && summary.extensions.is_empty());

    let class = classifier
        .for_id(200)
        .expect("class registered in the host's classifier");
    assert_eq!(class.name, "Greylisted");
    assert_eq!(class.description, "The receiver greylisted the message.");
    assert_eq!(class.category, Category::Soft);

    let got =
        classifier.classify_reply_text("451 4.7.1 <a@example.com>: Greylisted, try again later");
    assert_eq!((got.id, got.name), (200, "Greylisted"));
    let st = EnhancedStatus::parse("4.7.0");
    assert_eq!(
        classifier.classify(450, st, "Please TRY AGAIN LATER").id,
        200
    );
    // Not the configured code range: the built-in rules decide.
    assert_eq!(classifier.classify(421, st, "greylisted").id, 70);
    // The global registry is untouched.
    assert!(classify::for_id(200).is_none());
}

#[test]
fn invalid_entries_fail_init_naming_them() {
    let (mut registry, classifier) = fresh();
    let configs: toml::Table =
        toml::from_str("[[bounce-rules.class]]\nid = 22\nname = 'Full'\ncategory = 'soft'")
            .unwrap();
    let err = load_so(&mut registry, plugin_so(), &configs).unwrap_err();
    assert_eq!(
        err,
        LoadError::InitFailed {
            plugin: "bounce-rules".into(),
            reason: "[plugins.bounce-rules] class[0] (id 22): id 22 is the built-in class \"Mailbox Full\"; choose another id".into(),
        }
    );
    let configs: toml::Table =
        toml::from_str("[[bounce-rules.rule]]\nclass = 777\npriority = 5").unwrap();
    let err = load_so(&mut registry, plugin_so(), &configs).unwrap_err();
    assert!(
        err.to_string().contains("rule[0]: class 777 is neither"),
        "{err}"
    );
    assert!(registry.plugin_names().is_empty());
    assert!(classifier.for_id(777).is_none());
}

#[test]
fn a_class_another_plugin_owns_is_refused_by_the_host() {
    let (mut registry, classifier) = fresh();
    classifier
        .register_class(200, "Taken", "", Category::Hard)
        .unwrap();
    let configs: toml::Table = toml::from_str(CONFIG).unwrap();
    let err = load_so(&mut registry, plugin_so(), &configs).unwrap_err();
    assert_eq!(
        err,
        LoadError::InvalidRegistration {
            plugin: "bounce-rules".into(),
            reason: "bounce class 200 already exists".into(),
        }
    );
}
