//! [`PluginConfig`]: a plugin's own table from the server configuration.
//!
//! The operator writes one table per plugin, named after it:
//!
//! ```toml
//! [plugins.auth-file]
//! users = "/etc/impulse/users"
//! ```
//!
//! and the plugin's `init` receives that table (empty when the operator wrote none).

use serde::de::DeserializeOwned;

/// A plugin's configuration table. See the [module docs](self).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginConfig {
    plugin: String,
    table: toml::Table,
}

impl PluginConfig {
    /// A configuration for `plugin` holding `table`.
    pub fn new(plugin: impl Into<String>, table: toml::Table) -> Self {
        PluginConfig {
            plugin: plugin.into(),
            table,
        }
    }

    /// The table named `plugin` in `configs` (the `[plugins]` table), or an empty one.
    pub fn from_configs(plugin: &str, configs: &toml::Table) -> Self {
        let table = match configs.get(plugin) {
            Some(toml::Value::Table(t)) => t.clone(),
            _ => toml::Table::new(),
        };
        PluginConfig::new(plugin, table)
    }

    /// The plugin's name.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// The raw table.
    pub fn table(&self) -> &toml::Table {
        &self.table
    }

    /// One value of the table.
    pub fn get(&self, key: &str) -> Option<&toml::Value> {
        self.table.get(key)
    }

    /// `true` when the operator configured nothing.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Deserializes the table into the plugin's own configuration type; the error names the
    /// plugin and the problem, ready to return from `init`:
    ///
    /// ```
    /// # use hooks_api::PluginConfig;
    /// #[derive(serde::Deserialize)]
    /// struct Config { users: String, #[serde(default)] max_failures: u32 }
    ///
    /// let table: toml::Table = toml::from_str("users = '/etc/users'").unwrap();
    /// let config: Config = PluginConfig::new("auth-file", table).deserialize().unwrap();
    /// assert_eq!((config.users.as_str(), config.max_failures), ("/etc/users", 0));
    /// ```
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, String> {
        toml::Value::Table(self.table.clone())
            .try_into()
            .map_err(|e| format!("invalid [plugins.{}] configuration: {e}", self.plugin))
    }
}
