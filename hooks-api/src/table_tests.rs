//! Tests of the hook table and of the crate's layering: what one table entry generates, that
//! a new point is one entry, the ABI refusal message, and that no module uses a module of a
//! layer above it.

use std::sync::Arc;

use crate::hook::{sort_chain, Entry, HookResult};
use crate::*;

fn nop(_: &mut Registrar, _: &PluginConfig) -> Result<(), String> {
    Ok(())
}

/// One hook at every point, through the generated `on_*` methods.
fn one_hook_everywhere(r: &mut Registrar, _: &PluginConfig) -> Result<(), String> {
    r.on_connect(Order::First, |_| Verdict::Continue)
        .on_helo(Order::First, |_| Verdict::Continue)
        .on_auth(Order::First, |_| Verdict::Continue)
        .on_mail(Order::First, |_| Verdict::Continue)
        .on_rcpt(Order::First, |_| Verdict::Continue)
        .on_data_start(Order::First, |_| Verdict::Continue)
        .on_message(Order::First, |_| Verdict::Continue)
        .on_queue(Order::First, |_| Verdict::Continue)
        .on_disconnect(Order::First, |_| {})
        .on_unknown_command(Order::First, |_| Verdict::Continue)
        .on_route(Order::First, |_| Verdict::Continue)
        .on_attempt(Order::First, |_| Verdict::Continue)
        .on_delivery_outcome(Order::First, |_| Verdict::Continue)
        .on_bounce(Order::First, |_| Verdict::Continue);
    Ok(())
}

fn registry(init: fn(&mut Registrar, &PluginConfig) -> Result<(), String>) -> Registry {
    let decl: &'static PluginDecl = Box::leak(Box::new(PluginDecl {
        name: "table",
        version: "1",
        init,
        shutdown: None,
    }));
    let classifier = Box::leak(Box::new(smtp_proto::classify::Registry::new()));
    let mut registry = Registry::with_classifier(classifier);
    registry.add(decl, &toml::Table::new()).unwrap();
    registry
}

#[test]
fn every_point_of_the_table_has_a_name_a_side_and_a_chain() {
    assert_eq!(HookPoint::ALL.len(), HookPoint::COUNT);
    let names: Vec<&str> = HookPoint::ALL.iter().map(|p| p.as_str()).collect();
    assert_eq!(
        names,
        [
            "connect",
            "helo",
            "auth",
            "mail",
            "rcpt",
            "data_start",
            "message",
            "queue",
            "disconnect",
            "unknown_command",
            "route",
            "attempt",
            "delivery_outcome",
            "bounce"
        ]
    );
    for (i, point) in HookPoint::ALL.into_iter().enumerate() {
        assert_eq!(point.index(), i);
        assert_eq!(point.to_string(), point.as_str());
        let relay = [
            HookPoint::Route,
            HookPoint::Attempt,
            HookPoint::DeliveryOutcome,
            HookPoint::Bounce,
        ];
        if relay.contains(&point) {
            assert_eq!(point.side(), Side::Relay, "{point}");
        } else {
            assert!(matches!(point.side(), Side::Server(_)), "{point}");
        }
    }
    assert_eq!(HookPoint::Rcpt.side(), Side::Server(ServerStage::Decision));
    assert_eq!(HookPoint::Queue.side(), Side::Server(ServerStage::Message));
    assert_eq!(
        HookPoint::Disconnect.side(),
        Side::Server(ServerStage::Close)
    );
    let void: Vec<HookPoint> = HookPoint::ALL.into_iter().filter(|p| p.is_void()).collect();
    assert_eq!(void, [HookPoint::Disconnect]);

    let empty = registry(nop);
    let full = registry(one_hook_everywhere);
    for point in HookPoint::ALL {
        assert_eq!(empty.hook_count(point), 0, "{point}");
        assert_eq!(full.hook_count(point), 1, "{point}");
        assert_eq!(full.chain(point), [("table".to_owned(), Order::First)]);
    }
    let summary = full.summary("table").unwrap();
    let points: Vec<HookPoint> = summary.hooks.iter().map(|(p, _)| *p).collect();
    assert_eq!(points, HookPoint::ALL, "summary in protocol order");
}

/// The context of the point the test below adds.
pub(crate) struct Expiry;
type ExpiryCtx<'a> = Ctx<'a, Expiry>;

/// The real table plus one more relay-side entry, expanded by the same generators as the
/// crate's `HookPoint` and chains.
macro_rules! plus_expiry {
    ($($entries:tt)*) => {
        hook_point_enum!(TablePoint; $($entries)*
            Expiry, expiry(on_expiry, dispatch_expiry, resume_expiry),
                ExpiryCtx, chain, relay, no_check, "A message is about to expire.";);
        chains_struct!(TableChains, TablePoint; $($entries)*
            Expiry, expiry(on_expiry, dispatch_expiry, resume_expiry),
                ExpiryCtx, chain, relay, no_check, "A message is about to expire.";);
    };
}

crate::hook_points!(plus_expiry);

#[test]
fn a_new_point_is_one_table_entry() {
    assert_eq!(TablePoint::COUNT, HookPoint::COUNT + 1);
    assert_eq!(TablePoint::ALL.last(), Some(&TablePoint::Expiry));
    assert_eq!(TablePoint::Expiry.as_str(), "expiry");
    assert_eq!(TablePoint::Expiry.index(), HookPoint::COUNT);
    assert_eq!(TablePoint::Expiry.side(), Side::Relay);
    assert!(!TablePoint::Expiry.is_void());
    // The existing points keep their names and sides.
    for (old, new) in HookPoint::ALL.into_iter().zip(TablePoint::ALL) {
        assert_eq!(old.as_str(), new.as_str());
        assert_eq!(old.side(), new.side());
    }

    // The new point has its chain, merged and summarised like the others.
    let hook: Arc<dyn for<'a, 'b> Fn(&'b mut ExpiryCtx<'a>) -> HookResult + Send + Sync> =
        Arc::new(|_| Ok(Verdict::Continue));
    let mut theirs = TableChains::default();
    for (seq, order) in [(0, Order::Last), (1, Order::First)] {
        theirs.expiry.push(Entry {
            plugin: Arc::from("relay-plugin"),
            order,
            seq,
            hook: hook.clone(),
        });
    }
    let mut chains = TableChains::default();
    chains.append(&mut theirs);
    assert_eq!(chains.len(TablePoint::Expiry), 2);
    assert_eq!(chains.len(TablePoint::Rcpt), 0);
    let summary: Vec<(TablePoint, Order)> = chains
        .summary()
        .into_iter()
        .map(|(p, _, o)| (p, o))
        .collect();
    assert_eq!(
        summary,
        [
            (TablePoint::Expiry, Order::First),
            (TablePoint::Expiry, Order::Last)
        ]
    );
}

#[test]
fn an_abi_mismatch_tells_the_operator_to_rebuild_against_this_hooks_api() {
    let older = AbiFacts {
        abi_version: 1,
        ..AbiFacts::host()
    };
    let err = older.check(std::path::Path::new("old.so")).unwrap_err();
    assert_eq!(
        err,
        LoadError::AbiMismatch {
            path: "old.so".into(),
            field: "abi_version",
            expected: abi::ABI_VERSION.to_string(),
            found: "1".to_owned(),
        }
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "the plugin must be rebuilt against this server's hooks-api {} (plugin ABI {})",
            abi::HOOKS_API_VERSION,
            abi::ABI_VERSION
        )),
        "{text}"
    );
    assert!(text.contains(abi::RUSTC_VERSION), "{text}");
    assert_eq!(AbiFacts::host().check(std::path::Path::new("x.so")), Ok(()));
}

/// Every module, bottom layer first: a module may use only modules before it.
const LAYERS: [(&str, &str); 20] = [
    ("abi", include_str!("abi.rs")),
    ("points", include_str!("points.rs")),
    ("error", include_str!("error.rs")),
    ("config", include_str!("config.rs")),
    ("session", include_str!("session.rs")),
    ("notes", include_str!("notes.rs")),
    ("headers", include_str!("headers.rs")),
    ("verdict", include_str!("verdict.rs")),
    ("context", include_str!("context.rs")),
    ("relay", include_str!("relay.rs")),
    ("hook", include_str!("hook.rs")),
    ("extension", include_str!("extension.rs")),
    ("client", include_str!("client.rs")),
    ("chains", include_str!("chains.rs")),
    ("registrar", include_str!("registrar.rs")),
    ("plugin", include_str!("plugin.rs")),
    ("entry", include_str!("entry.rs")),
    ("loader", include_str!("loader.rs")),
    ("registry", include_str!("registry.rs")),
    ("dispatch", include_str!("dispatch.rs")),
];

/// The modules `source` names as `crate::module` outside comments.
fn modules_used(source: &str) -> Vec<String> {
    let mut used = Vec::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // `crate::Verdict` and friends are the root's re-exports, `crate::inventory` and
            // friends re-exported crates, `$crate::plugin!` a macro: none is a module.
            let is_macro = rest[name.len()..].starts_with('!');
            let external = ["inventory", "log", "serde", "smtp_proto", "toml"];
            if name.starts_with(|c: char| c.is_ascii_lowercase())
                && !is_macro
                && !external.contains(&name.as_str())
                && !used.contains(&name)
            {
                used.push(name);
            }
        }
    }
    used
}

#[test]
fn modules_use_only_the_layers_below_them() {
    let rank = |name: &str| LAYERS.iter().position(|(m, _)| *m == name);
    assert!(modules_used(LAYERS[0].1).is_empty(), "abi is a leaf");
    for (i, (module, source)) in LAYERS.iter().enumerate() {
        for used in modules_used(source) {
            if used == *module {
                continue;
            }
            let Some(j) = rank(&used) else {
                panic!("{module} uses crate::{used}, which is not in LAYERS");
            };
            assert!(j < i, "{module} uses crate::{used}, a layer above it");
        }
    }
    // The check sees uses: the registry uses the loader.
    assert!(modules_used(LAYERS[18].1).contains(&"loader".to_owned()));
}
