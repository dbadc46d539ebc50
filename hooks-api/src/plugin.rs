//! Plugin declarations: [`PluginDecl`], collected with `inventory`, and the
//! [`plugin!`](crate::plugin!) macro that submits one.

use crate::config::PluginConfig;
use crate::registrar::Registrar;

/// A plugin's declaration: its name, version and lifecycle functions.
///
/// Submit one per plugin with [`plugin!`](crate::plugin!). A binary that links the crate
/// finds it with `Registry::from_static`; a `.so` built with
/// [`export_plugin!`](crate::export_plugin!) hands it to the host that loads it.
#[derive(Debug)]
pub struct PluginDecl {
    /// The plugin's name: unique in a server, used for its configuration table and in logs.
    pub name: &'static str,
    /// The plugin's version, for operators.
    pub version: &'static str,
    /// Registers the plugin's hooks, extensions, client states and classes. An `Err` stops
    /// the server from starting, with the reason shown to the operator.
    pub init: fn(&mut Registrar, &PluginConfig) -> Result<(), String>,
    /// Called once when the server shuts down, in reverse initialisation order.
    pub shutdown: Option<fn()>,
}

inventory::collect!(PluginDecl);

/// Every plugin declaration linked into this image (the binary, or the `.so` the caller is
/// compiled into), sorted by name.
pub fn linked_plugins() -> Vec<&'static PluginDecl> {
    let mut decls: Vec<&'static PluginDecl> = inventory::iter::<PluginDecl>.into_iter().collect();
    decls.sort_by_key(|d| d.name);
    decls
}

/// Declares a plugin: `plugin!(name, version, init)` or
/// `plugin!(name, version, init, shutdown = f)`.
///
/// ```
/// use hooks_api::{Order, PluginConfig, Registrar, Verdict};
///
/// fn init(r: &mut Registrar, _config: &PluginConfig) -> Result<(), String> {
///     r.on_helo(Order::Priority(0), |ctx| {
///         if ctx.name.eq_ignore_ascii_case("localhost") {
///             Verdict::reject(550, "5.7.1", "Liar")
///         } else {
///             Verdict::Continue
///         }
///     });
///     Ok(())
/// }
///
/// hooks_api::plugin!("no-localhost", env!("CARGO_PKG_VERSION"), init);
/// ```
#[macro_export]
macro_rules! plugin {
    ($name:expr, $version:expr, $init:path $(,)?) => {
        $crate::inventory::submit! {
            $crate::PluginDecl { name: $name, version: $version, init: $init, shutdown: ::core::option::Option::None }
        }
    };
    ($name:expr, $version:expr, $init:path, shutdown = $shutdown:path $(,)?) => {
        $crate::inventory::submit! {
            $crate::PluginDecl { name: $name, version: $version, init: $init, shutdown: ::core::option::Option::Some($shutdown) }
        }
    };
}
