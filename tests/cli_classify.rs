//! The `impulse classify` and `impulse classes` commands, run as an operator would.

fn impulse(args: &[&str]) -> (bool, String) {
    let out = impulse_test_support::impulse!()
        .command()
        .args(args)
        .output()
        .expect("run impulse");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn classify_prints_the_bounce_class() {
    let cases = [
        (
            "550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown",
            "10 Invalid Recipient (Hard)",
        ),
        ("552 5.2.2 Mailbox full", "22 Mailbox Full (Soft)"),
        (
            "552 5.3.4 Message size exceeds fixed limit",
            "23 Too Large (Soft)",
        ),
        (
            "554 5.7.1 <x@example.net>: Relay access denied",
            "54 Relaying Denied (Block)",
        ),
        (
            "451 4.3.0 Temporary lookup failure",
            "70 Transient Failure (Soft)",
        ),
        ("no code at all", "1 Undetermined (Undetermined)"),
    ];
    for (reply, expected) in cases {
        let (ok, out) = impulse(&["classify", reply]);
        assert!(ok, "{reply}");
        assert_eq!(out.trim(), expected, "{reply}");
    }
}

#[test]
fn classes_lists_the_twenty_built_ins() {
    let (ok, out) = impulse(&["classes"]);
    assert!(ok);
    let ids: Vec<u16> = out
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        ids,
        [1, 10, 20, 21, 22, 23, 24, 25, 30, 40, 50, 51, 52, 53, 54, 60, 70, 80, 90, 100]
    );
    assert!(out.contains("Relaying Denied"));
}

#[test]
fn classify_and_classes_use_the_configured_bounce_rules() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("impulse.toml");
    std::fs::write(
        &config,
        "[plugins.bounce-rules]\n\
         class = [{ id = 200, name = \"Greylisted\", description = \"The receiver greylisted the message.\", category = \"soft\" }]\n\
         rule = [{ class = 200, priority = 900, codes = \"450-451\", text = [\"greylist\"] }]\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let reply = "451 4.7.1 Greylisted, please try again later";
    let (ok, out) = impulse(&["classify", reply]);
    assert!(ok);
    assert!(out.starts_with("70 "), "without the config: {out}");
    let (ok, out) = impulse(&["classify", "--config", config, reply]);
    assert!(ok);
    assert_eq!(out.trim(), "200 Greylisted (Soft)");
    let (ok, out) = impulse(&["classes", "--config", config]);
    assert!(ok);
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("200  Greylisted")),
        "{out}"
    );
    let (ok, _) = impulse(&["classify", "--config", "/nonexistent.toml", reply]);
    assert!(!ok, "a config that cannot be read is an error");
}

#[test]
fn both_other_vocabularies_show_in_classes_and_in_json() {
    let (ok, out) = impulse(&["classes"]);
    assert!(ok);
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("10 "))
        .unwrap();
    assert!(
        line.contains("InvalidRecipient") && line.contains("bad-mailbox"),
        "{line}"
    );
    let (ok, out) = impulse(&[
        "classify",
        "--json",
        "554 5.7.1 <x@example.net>: Relay access denied",
    ]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["id"], 54);
    assert_eq!(v["name"], "Relaying Denied");
    assert_eq!(v["category"], "Block");
    assert_eq!(v["kumomta"], "RelayDenied");
    assert_eq!(v["powermta"], "relaying-issues");
}
