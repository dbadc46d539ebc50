//! # impulse-plugin-bounce-rules — user bounce classes and rules from the configuration
//!
//! The `bounce-rules` plugin registers bounce classes and classification rules written in
//! the server configuration, through [`Registrar::bounce_class`] and
//! [`Registrar::bounce_rule`] (so they land in the host's `smtp_proto::classify` registry,
//! even from a `.so`):
//!
//! ```toml
//! [[plugins.bounce-rules.class]]
//! id = 200
//! name = "Greylisted"
//! description = "The receiver greylisted the message."
//! category = "soft"                 # hard, soft, block, admin, undetermined
//!
//! [[plugins.bounce-rules.rule]]
//! class = 200                       # one of the classes above, or a built-in one
//! priority = 900                    # higher wins; built-in rules use 0 to 1000
//! codes = "450-451"                 # or 451, or "451"
//! status = "4.7.*"                  # optional enhanced status pattern
//! text = ["greylist", "try again later"]   # or one string; any needle, ignoring case
//! ```
//!
//! Every entry is checked at `init`; an error names the entry (`class[0] (id 10): id 10 is
//! the built-in class "Invalid Recipient"`, `rule[2]: codes "500-400": empty range`) and
//! the server does not start. A class id or name another plugin registered is refused by
//! the host when it merges the registrations.
//!
//! What this crate does not do: classify anything itself, or change the built-in rules.
//!
//! Its `.so`, `libimpulse_plugin_bounce_rules.so`, is built by `impulse-plugin-bounce-rules-so`
//! (`plugins/bounce-rules-so`): this crate has no `.so` entry points, so a binary links it (and
//! other plugins) as it is.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;

use hooks_api::{PluginConfig, Registrar};

pub use config::{category, code_range, Class, ClassEntry, Codes, Config, RuleEntry, Rules, Texts};

/// The plugin's name, and its configuration table's.
pub const NAME: &str = "bounce-rules";

/// Validates the configuration and registers its classes, then its rules.
pub fn init(r: &mut Registrar, config: &PluginConfig) -> Result<(), String> {
    let config: Config = config.deserialize()?;
    let rules = config
        .validate()
        .map_err(|e| format!("[plugins.bounce-rules] {e}"))?;
    for c in &rules.classes {
        r.bounce_class(c.id, &c.name, &c.description, c.category);
    }
    for rule in rules.rules {
        r.bounce_rule(rule);
    }
    hooks_api::log::info!(
        "bounce-rules: {} classes, {} rules",
        config.class.len(),
        config.rule.len()
    );
    Ok(())
}

hooks_api::plugin!("bounce-rules", env!("CARGO_PKG_VERSION"), init);
