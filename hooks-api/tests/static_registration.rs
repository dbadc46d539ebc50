//! Static registration: plugins linked into the binary are found through `inventory`, and
//! nothing else is (hooks-api itself submits nothing).

use hooks_api::toml;
use hooks_api::{HookPoint, Order, PluginConfig, Registrar, Registry, Verdict};

fn alpha(r: &mut Registrar, config: &PluginConfig) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct Config {
        banner_check: bool,
    }
    let config: Config = config.deserialize()?;
    if config.banner_check {
        r.on_connect(Order::First, |_| Verdict::Continue);
    }
    Ok(())
}

fn beta(r: &mut Registrar, _: &PluginConfig) -> Result<(), String> {
    r.on_mail(Order::Last, |_| Verdict::Continue);
    Ok(())
}

fn beta_shutdown() {}

hooks_api::plugin!("static-beta", "2.0.0", beta, shutdown = beta_shutdown);
hooks_api::plugin!("static-alpha", env!("CARGO_PKG_VERSION"), alpha);

#[test]
fn exactly_the_linked_plugins_are_registered() {
    let configs: toml::Table = toml::from_str("[static-alpha]\nbanner_check = true").unwrap();
    let mut registry = Registry::from_static(&configs).unwrap();
    // Initialised in name order, whatever the link order.
    assert_eq!(registry.plugin_names(), ["static-alpha", "static-beta"]);
    assert_eq!(registry.plugins()[1].version, "2.0.0");
    assert_eq!(
        registry.chain(HookPoint::Connect),
        [("static-alpha".to_owned(), Order::First)]
    );
    assert_eq!(
        registry.chain(HookPoint::Mail),
        [("static-beta".to_owned(), Order::Last)]
    );
    registry.shutdown();
}

#[test]
fn a_bad_configuration_names_the_plugin() {
    let err = Registry::from_static(&toml::Table::new()).unwrap_err();
    assert!(
        err.to_string().contains("[plugins.static-alpha]")
            && err.to_string().contains("banner_check"),
        "{err}"
    );
}
