use std::path::Path;
use std::time::Duration;

use smtp_relay::route::{check_recipient, Client, Decision, HostSpec, RcptPath};

use super::*;
use crate::config::ServerConfig;

/// The issue's example `[relay]` block, as written there.
const ISSUE_BLOCK: &str = r#"
[relay]
enabled = true
domains = ["example.org"]
networks = ["127.0.0.0/8", "::1/128"]
port = 25
connections_per_destination = 20
messages_per_connection = 1000

[relay.retry]
intervals = ["5m", "10m", "20m", "40m", "1h", "2h", "4h"]
max_age = "5d"
bounce_max_age = "2d"

[relay.dns]
nameservers = ["127.0.0.1:5300"]
timeout = "5s"

[[relay.route]]
domains = ["target.test", ".target.test"]
hosts = ["127.0.0.1:30025", "[::1]:30025", "mx.example.net"]
tls = "opportunistic"

[[relay.route]]
domains = ["example.org"]
hosts = ["127.0.0.1:2526"]
tls = "none"
verify_recipients = true
"#;

fn parse(text: &str) -> Result<ServerConfig, String> {
    ServerConfig::from_toml(text, Path::new("r.toml")).map_err(|e| e.to_string())
}

fn relay(text: &str) -> RelayConfig {
    parse(text).unwrap().relay.expect("a [relay] table")
}

#[test]
fn no_table_no_relay_and_the_default_policy_trusts_loopback_only() {
    assert_eq!(parse("").unwrap().relay, None);
    let policy = RelayConfig::default_policy();
    let path = RcptPath::parse(b"<a@example.net>", false).unwrap();
    let at = |ip: &str| Client::at(ip.parse().unwrap());
    assert!(matches!(
        check_recipient(&policy, &path, &at("127.0.0.1")),
        Decision::Accept(_)
    ));
    assert!(matches!(
        check_recipient(&policy, &path, &at("::1")),
        Decision::Accept(_)
    ));
    assert!(matches!(
        check_recipient(&policy, &path, &at("192.0.2.7")),
        Decision::Refuse(_)
    ));
    let authenticated = Client {
        authenticated: true,
        ..at("192.0.2.7")
    };
    assert!(matches!(
        check_recipient(&policy, &path, &authenticated),
        Decision::Accept(_)
    ));
}

#[test]
fn the_issue_block_parses_into_every_sans_io_value() {
    let r = relay(ISSUE_BLOCK);
    assert!(r.enabled);
    assert_eq!(r.port, 25);
    assert_eq!(
        r.dns.nameservers().unwrap(),
        ["127.0.0.1:5300".parse().unwrap()]
    );
    assert_eq!(r.dns.timeout.get(), Duration::from_secs(5));

    let routes = r.routes().unwrap();
    let first = routes.lookup("MX.Target.Test.").unwrap();
    assert_eq!(
        first.hosts(),
        [
            HostSpec::Addr("127.0.0.1".parse().unwrap(), Some(30025)),
            HostSpec::Addr("::1".parse().unwrap(), Some(30025)),
            HostSpec::Name("mx.example.net".into(), None),
        ]
    );
    assert_eq!(first.tls(), TlsPolicy::Opportunistic);
    assert_eq!(routes.lookup("example.org").unwrap().tls(), TlsPolicy::None);
    assert!(routes.lookup("elsewhere.test").is_none());
    assert_eq!(routes.port(), 25);
    assert!(r.verifies_recipients("EXAMPLE.org"));
    assert!(!r.verifies_recipients("target.test"));
    // example.org has verify_recipients: no backscatter warning.
    let warnings = r.warnings();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(r.verifies_any());
    assert!(parse(ISSUE_BLOCK).unwrap().relay_delivery().is_some());
    let off = parse(&ISSUE_BLOCK.replace("enabled = true", "enabled = false")).unwrap();
    assert!(off.relay_delivery().is_none() && off.relay.is_some());
    assert!(parse("").unwrap().relay_delivery().is_none());

    let schedule = r.schedule();
    assert_eq!(schedule.connections_per_destination, 20);
    let minutes: Vec<u64> = schedule
        .retry
        .intervals
        .iter()
        .map(|d| d.as_secs() / 60)
        .collect();
    assert_eq!(minutes, [5, 10, 20, 40, 60, 120, 240]);
    assert_eq!(schedule.retry.max_age, Duration::from_secs(5 * 86400));
    assert_eq!(
        schedule.retry.bounce_max_age,
        Duration::from_secs(2 * 86400)
    );
    assert_eq!(schedule.retry.down_time, Duration::from_secs(300));
    assert_eq!(schedule.retry.delay_warning, None);

    let policy = r.policy().unwrap();
    let outside = Client::at("192.0.2.7".parse().unwrap());
    for (rcpt, accepted) in [
        ("<u@example.org>", true),
        ("<u@EXAMPLE.ORG>", true),
        ("<u@example.net>", false),
        ("<u%example.net@example.org>", false),
    ] {
        let path = RcptPath::parse(rcpt.as_bytes(), false).unwrap();
        let d = check_recipient(&policy, &path, &outside);
        // example.org's route verifies: accepted once its next hop agrees.
        let passed = matches!(d, Decision::Accept(_) | Decision::Verify);
        assert_eq!(passed, accepted, "{rcpt}: {d:?}");
    }
}

#[test]
fn an_empty_table_is_every_default() {
    let r = relay("[relay]\n");
    assert_eq!(r, RelayConfig::default());
    assert!(r.enabled);
    assert_eq!(r.networks, ["127.0.0.0/8", "::1/128"]);
    assert_eq!(r.schedule().retry, RetryPolicy::default());
    assert_eq!(r.messages_per_connection, 1000);
    assert!(r.dns.nameservers().unwrap().is_empty());
    assert_eq!(r.policy().unwrap(), RelayConfig::default_policy());
}

#[test]
fn durations_may_be_as_short_as_one_second() {
    let r = relay(
        "[relay]\ndown_time = \"1s\"\ndelay_warning = \"4h\"\n[relay.retry]\nintervals = [\"1s\", 2]\n\
         max_age = \"1s\"\nbounce_max_age = \"1s\"\n[relay.dns]\ntimeout = \"1s\"\n",
    );
    let p = r.retry_policy();
    assert_eq!(
        p.intervals,
        [Duration::from_secs(1), Duration::from_secs(2)]
    );
    assert_eq!(p.max_age, Duration::from_secs(1));
    assert_eq!(p.down_time, Duration::from_secs(1));
    assert_eq!(p.delay_warning, Some(Duration::from_secs(4 * 3600)));
}

#[test]
fn every_error_names_its_key_and_line() {
    for (text, key, line) in [
        ("[relay]\ndomains = [\"*\"]\n", "relay.domains", 2),
        ("[relay]\ndomains = [\"a..b\"]\n", "relay.domains", 2),
        (
            "[relay]\n\ndomains = [\"example.org\"]\n",
            "relay.domains",
            3,
        ),
        (
            "[relay]\nnetworks = [\"10.0.0.0/33\"]\n",
            "relay.networks",
            2,
        ),
        (
            "[relay]\nnetworks = [\"mx.example\"]\n",
            "relay.networks",
            2,
        ),
        ("[relay]\nport = 0\n", "relay.port", 2),
        (
            "[relay]\nconnections_per_destination = 0\n",
            "relay.connections_per_destination",
            2,
        ),
        (
            "[relay]\nmessages_per_connection = 0\n",
            "relay.messages_per_connection",
            2,
        ),
        ("[relay]\ndown_time = 0\n", "relay.down_time", 2),
        (
            "[relay]\ndelay_warning = \"0s\"\n",
            "relay.delay_warning",
            2,
        ),
        (
            "[relay.retry]\nintervals = []\n",
            "relay.retry.intervals",
            2,
        ),
        (
            "[relay.retry]\nintervals = [\"5m\", 0]\n",
            "relay.retry.intervals",
            2,
        ),
        (
            "[relay.retry]\nmax_age = \"0s\"\n",
            "relay.retry.max_age",
            2,
        ),
        (
            "[relay.retry]\nbounce_max_age = 0\n",
            "relay.retry.bounce_max_age",
            2,
        ),
        ("[relay.dns]\ntimeout = 0\n", "relay.dns.timeout", 2),
        (
            "[relay.dns]\nnameservers = [\"ns.example\"]\n",
            "relay.dns.nameservers",
            2,
        ),
        (
            "[relay.dns]\nnameservers = [\"127.0.0.1:0\"]\n",
            "relay.dns.nameservers",
            2,
        ),
        (
            "[[relay.route]]\ndomains = [\"a.test\"]\nhosts = [\"h:99999\"]\n",
            "relay.route[0].hosts",
            3,
        ),
        (
            "[[relay.route]]\ndomains = [\"a.test\"]\nhosts = [\"h\"]\n\
             [[relay.route]]\ndomains = [\"b.test\"]\nhosts = [\"h\"]\ntls = \"strict\"\n",
            "relay.route[1].tls",
            7,
        ),
        (
            "[[relay.route]]\ndomains = [\"a..test\"]\nhosts = [\"h\"]\n",
            "relay.route[0].domains",
            2,
        ),
        (
            "[[relay.route]]\ndomains = [\"a.test\"]\nhosts = []\n",
            "relay.route[0].hosts",
            3,
        ),
    ] {
        let err = parse(text).unwrap_err();
        assert!(err.contains(&format!(": {key}: ")), "{text}: {err}");
        assert!(
            err.contains(&format!("r.toml line {line}:")),
            "{text}: {err}"
        );
    }
}

#[test]
fn the_wildcard_and_unrouted_domains_are_refused_with_reasons() {
    let err = parse("[relay]\ndomains = [\"example.org\", \"*\"]\n").unwrap_err();
    assert!(err.contains("open relay"), "{err}");
    let err = parse(
        "[relay]\ndomains = [\"example.org\", \"other.test\"]\n\
         [[relay.route]]\ndomains = [\"example.org\"]\nhosts = [\"127.0.0.1:2526\"]\n",
    )
    .unwrap_err();
    assert!(
        err.contains("\"other.test\" has no [[relay.route]]"),
        "{err}"
    );
    // A `*` route may serve every relay domain; `*` stays refused in `[relay] domains`.
    relay(
        "[relay]\ndomains = [\"example.org\", \".example.net\"]\n\
         [[relay.route]]\ndomains = [\"*\"]\nhosts = [\"127.0.0.1:2526\"]\n",
    );
    let err = parse("[relay]\nenabeld = true\n").unwrap_err();
    assert!(err.contains("enabeld"), "{err}");
    let err = parse("[[relay.route]]\ndomains = [\"a.test\"]\nhost = [\"h\"]\n").unwrap_err();
    assert!(err.contains("host"), "{err}");
}

#[test]
fn a_relay_domain_without_recipient_validation_is_warned_about() {
    let r = relay(
        "[relay]\ndomains = [\"example.org\", \".sub.example.net\"]\n\
         [[relay.route]]\ndomains = [\".example.net\"]\nhosts = [\"127.0.0.1\"]\nverify_recipients = true\n\
         [[relay.route]]\ndomains = [\"example.org\"]\nhosts = [\"127.0.0.1\"]\n",
    );
    let warnings = r.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("\"example.org\""), "{warnings:?}");
    assert!(warnings[0].contains("backscatter"), "{warnings:?}");
    let with_file = RelayConfig {
        recipients: Some("r.txt".into()),
        ..r
    };
    assert!(with_file.warnings().is_empty());
}

#[test]
fn the_recipients_file_is_read_into_the_policy_and_errors_name_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("recipients");
    std::fs::write(&file, "# ours\nalice@example.org\n@sub.example.org\n").unwrap();
    let r = RelayConfig {
        domains: vec!["example.org".into(), ".example.org".into()],
        recipients: Some(file.clone()),
        ..RelayConfig::default()
    };
    let policy = r.policy().unwrap();
    let outside = Client::at("192.0.2.7".parse().unwrap());
    let decide = |rcpt: &str| {
        check_recipient(
            &policy,
            &RcptPath::parse(rcpt.as_bytes(), false).unwrap(),
            &outside,
        )
    };
    assert!(matches!(decide("<ALICE@Example.org>"), Decision::Accept(_)));
    assert!(matches!(
        decide("<anyone@sub.example.org>"),
        Decision::Accept(_)
    ));
    match decide("<bob@example.org>") {
        Decision::Refuse(reply) => assert_eq!(
            String::from_utf8(reply.to_bytes()).unwrap(),
            "550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown\r\n"
        ),
        other => panic!("{other:?}"),
    }

    std::fs::write(&file, "alice@example.org\nnot an address\n").unwrap();
    let err = r.policy().unwrap_err().to_string();
    assert!(
        err.contains("relay.recipients") && err.contains("line 2"),
        "{err}"
    );
    let missing = RelayConfig {
        recipients: Some(dir.path().join("absent")),
        ..r
    };
    let err = missing.policy().unwrap_err().to_string();
    assert!(err.contains("relay.recipients: cannot read"), "{err}");
}

#[test]
fn nameservers_take_a_port_or_default_to_53() {
    let dns = DnsConfig {
        nameservers: vec![
            "192.0.2.53".into(),
            "[::1]:5300".into(),
            "::1".into(),
            "[::1]".into(),
        ],
        ..DnsConfig::default()
    };
    let want: Vec<SocketAddr> = ["192.0.2.53:53", "[::1]:5300", "[::1]:53", "[::1]:53"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    assert_eq!(dns.nameservers().unwrap(), want);
}

#[test]
fn shown_config_reads_back_the_same() {
    let c = parse(ISSUE_BLOCK).unwrap();
    let shown = toml::to_string(&c).unwrap();
    assert!(shown.contains("[relay.retry]"), "{shown}");
    assert!(shown.contains("[[relay.route]]"), "{shown}");
    assert_eq!(parse(&shown).unwrap(), c, "{shown}");
}

#[test]
fn the_commented_example_section_is_a_valid_relay_table() {
    let example = include_str!("../../../../impulse.example.toml");
    assert_eq!(parse(example).unwrap().relay, None, "commented out");
    let start = example.find("# [relay]\n").expect("the [relay] example");
    let uncommented: String = example[start..]
        .lines()
        .filter(|l| !l.starts_with("# # ") && l.trim() != "#")
        .map(|l| format!("{}\n", l.strip_prefix("# ").unwrap_or(l)))
        .collect();
    let r = relay(&uncommented);
    assert_eq!(r.domains, ["example.org"]);
    assert_eq!(r.recipients, Some("/etc/impulse/recipients".into()));
    assert_eq!(r.delay_warning, Some(ConfigDuration::from_secs(4 * 3600)));
    assert_eq!(
        r.dns.nameservers().unwrap(),
        ["127.0.0.1:5300".parse().unwrap()]
    );
    assert_eq!(
        r.routes()
            .unwrap()
            .lookup("a.example.org")
            .unwrap()
            .hosts()
            .len(),
        3
    );
    assert!(!r.verifies_recipients("example.org"));
    assert_eq!(
        r.verify,
        VerifyConfig::default(),
        "[relay.verify] shows the defaults"
    );
}

#[test]
fn relay_verify_has_defaults_reads_durations_and_refuses_nonsense() {
    let r = relay(ISSUE_BLOCK);
    assert_eq!(r.verify, VerifyConfig::default());
    let s = r.verify_settings("mx.test").unwrap();
    assert_eq!(s.ttls.positive, Duration::from_secs(7 * 86400));
    assert_eq!(s.ttls.negative, Duration::from_secs(3 * 3600));
    assert_eq!(s.ttls.tempfail, Duration::from_secs(60));
    assert_eq!(s.timeout, Duration::from_secs(30));
    assert_eq!((s.cache_size, r.verify.threads), (100_000, 4));
    assert_eq!(s.nameservers, ["127.0.0.1:5300".parse().unwrap()]);
    assert_eq!(s.helo, "mx.test");
    assert!(s.routes.lookup("example.org").is_some());

    let text = format!(
        "{ISSUE_BLOCK}\n[relay.verify]\npositive_ttl = \"1d\"\nnegative_ttl = 600\n\
         tempfail_ttl = \"5s\"\ntimeout = \"10s\"\ncache_size = 5\nthreads = 1\n"
    );
    let s = relay(&text).verify_settings("mx.test").unwrap();
    assert_eq!(s.ttls.positive, Duration::from_secs(86400));
    assert_eq!(s.ttls.negative, Duration::from_secs(600));
    assert_eq!(s.ttls.tempfail, Duration::from_secs(5));
    assert_eq!((s.timeout, s.cache_size), (Duration::from_secs(10), 5));

    // Relay control knows which relay domains are verified.
    let policy = relay(ISSUE_BLOCK).policy_with(None).unwrap();
    assert!(policy.verifies("example.org") && !policy.verifies("target.test"));
    let path = RcptPath::parse(b"<who@example.org>", false).unwrap();
    let outside = Client::at("192.0.2.7".parse().unwrap());
    assert_eq!(check_recipient(&policy, &path, &outside), Decision::Verify);

    for (bad, key) in [
        ("timeout = 0", "relay.verify.timeout"),
        ("cache_size = 0", "relay.verify.cache_size"),
        ("threads = 0", "relay.verify.threads"),
        ("threads = 65", "relay.verify.threads"),
        ("tempfail = \"1m\"", "tempfail"),
    ] {
        let err = parse(&format!("{ISSUE_BLOCK}\n[relay.verify]\n{bad}\n")).unwrap_err();
        assert!(err.contains(key), "{bad}: {err}");
    }
    // The session's wait for a pending hook must outlast the probe.
    let err = parse(&format!("[timeouts]\nhook = \"30s\"\n{ISSUE_BLOCK}")).unwrap_err();
    assert!(err.contains("relay.verify.timeout"), "{err}");
    let without = ISSUE_BLOCK.replace("verify_recipients = true", "");
    assert!(parse(&format!("[timeouts]\nhook = \"30s\"\n{without}")).is_ok());
}
