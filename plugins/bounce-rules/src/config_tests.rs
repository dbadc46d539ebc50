use hooks_api::smtp_proto::classify::{self, Category};
use hooks_api::smtp_proto::EnhancedStatus;
use hooks_api::toml;

use super::*;

const SAMPLE: &str = r#"
[[class]]
id = 200
name = "Greylisted"
description = "The receiver greylisted the message."
category = "soft"

[[class]]
id = 201
name = "Policy Block Here"
category = "BLOCK"

[[rule]]
class = 200
priority = 900
codes = "450-451"
status = "4.7.*"
text = ["greylist", "try again later"]

[[rule]]
class = 201
priority = 950
codes = 554
text = "blocked by policy"

[[rule]]
class = 10
priority = 960
text = "no mailbox here by that name"
"#;

fn config(text: &str) -> Config {
    toml::from_str(text).unwrap()
}

fn error(text: &str) -> String {
    config(text).validate().unwrap_err()
}

#[test]
fn sample_validates_and_classifies() {
    let rules = config(SAMPLE).validate().unwrap();
    assert_eq!(rules.classes.len(), 2);
    assert_eq!(rules.classes[0].category, Category::Soft);
    assert_eq!(rules.classes[1].category, Category::Block);
    assert_eq!(rules.classes[1].description, "");
    assert_eq!(rules.rules.len(), 3);
    let registry = classify::Registry::new();
    for c in &rules.classes {
        registry
            .register_class(c.id, &c.name, &c.description, c.category)
            .unwrap();
    }
    for r in rules.rules {
        registry.register_rule(r).unwrap();
    }
    let st = |s| EnhancedStatus::parse(s);
    let cases = [
        (451, st("4.7.1"), "Greylisted, please try again later", 200),
        (450, st("4.7.0"), "Try again later", 200),
        // Outside the code range or the status pattern: the built-in rules decide.
        (452, st("4.7.1"), "greylisted", 70),
        (451, None, "greylisted", 70),
        (554, st("5.7.1"), "Message BLOCKED BY POLICY", 201),
        (550, st("5.1.1"), "No mailbox here by that name", 10),
    ];
    for (code, status, text, class) in cases {
        assert_eq!(
            registry.classify(code, status, text).id,
            class,
            "{code} {text}"
        );
    }
}

#[test]
fn codes_and_categories() {
    assert_eq!(code_range(&Codes::Code(550)), Ok((550, 550)));
    assert_eq!(code_range(&Codes::Range("450-451".into())), Ok((450, 451)));
    assert_eq!(code_range(&Codes::Range(" 421 ".into())), Ok((421, 421)));
    for bad in ["500-400", "4xx", "199", "600", "450-", "-450", "45"] {
        assert!(code_range(&Codes::Range(bad.into())).is_err(), "{bad}");
    }
    assert!(code_range(&Codes::Code(70000)).is_err());
    assert_eq!(category("HARD"), Some(Category::Hard));
    assert_eq!(category("Undetermined"), Some(Category::Undetermined));
    assert_eq!(category("permanent"), None);
}

#[test]
fn errors_name_the_entry() {
    let class = |id: u16, name: &str, category: &str| {
        format!("[[class]]\nid = {id}\nname = {name:?}\ncategory = {category:?}\n")
    };
    let cases = [
        (
            class(200, "X", "sof"),
            "class[0] (id 200): unknown category \"sof\"",
        ),
        (
            class(10, "X", "hard"),
            "class[0] (id 10): id 10 is the built-in class \"Invalid Recipient\"",
        ),
        (class(0, "X", "hard"), "class[0] (id 0): id 0 is reserved"),
        (
            format!("{}{}", class(200, "A", "soft"), class(200, "B", "soft")),
            "class[1] (id 200): id 200 is already used by class[0]",
        ),
        (
            format!("{}{}", class(200, "A", "soft"), class(201, "a", "soft")),
            "class[1] (id 201): the name \"a\" is taken by class \"A\"",
        ),
        (
            class(200, "mailbox full", "soft"),
            "class[0] (id 200): the name \"mailbox full\" is taken by class \"Mailbox Full\"",
        ),
        (
            class(200, " ", "soft"),
            "class[0] (id 200): name must be 1 to 64 bytes",
        ),
        (
            "[[rule]]\nclass = 300\npriority = 1".into(),
            "rule[0]: class 300 is neither a built-in class nor defined in [[class]]",
        ),
        (
            "[[rule]]\nclass = 10\npriority = 1\ncodes = '500-400'".into(),
            "rule[0]: codes \"500-400\": empty range (500 > 400)",
        ),
        (
            "[[rule]]\nclass = 10\npriority = 1\ncodes = 'abc'".into(),
            "rule[0]: codes \"abc\": expected a reply code",
        ),
        (
            "[[rule]]\nclass = 10\npriority = 1\nstatus = '6.1.1'".into(),
            "rule[0]: status \"6.1.1\": expected a pattern",
        ),
        (
            "[[rule]]\nclass = 10\npriority = 1\ntext = ['ok', '']".into(),
            "rule[0]: text: empty needle",
        ),
        (
            "[[rule]]\nclass = 10\npriority = 1\ntext = []".into(),
            "rule[0]: text: empty list",
        ),
    ];
    for (text, expected) in cases {
        let err = error(&text);
        assert!(err.starts_with(expected), "{text}\n{err}");
    }
    let unknown_key: Result<Config, _> =
        toml::from_str("[[class]]\nid = 200\nname = 'x'\ncategory = 'soft'\ncolour = 1");
    assert!(unknown_key.unwrap_err().to_string().contains("colour"));
}

#[test]
fn an_empty_configuration_registers_nothing() {
    assert_eq!(Config::default().validate().unwrap(), Rules::default());
}
