//! The static path: linked as an rlib, `xclient` is found through `inventory` by
//! `Registry::from_static`, and it is the only plugin there.

use hooks_api::toml;
use hooks_api::Registry;
use impulse_plugin_xclient as _;

#[test]
fn exactly_xclient_is_linked() {
    // xclient registers no bounce class, so the global classifier is untouched.
    let registry = Registry::from_static(&toml::Table::new()).unwrap();
    assert_eq!(registry.plugin_names(), ["xclient"]);
    let ext = registry.extension("XCLIENT").unwrap();
    assert_eq!(&*ext.plugin, "xclient");
    assert!(ext.extension.has_handler());
}
