//! [`Registry`]: every loaded plugin's hooks, extensions, client states and classes, and the
//! dispatch API the server and the client call.
//!
//! Build it once at start-up ([`Registry::from_static`], then [`Registry::load_dynamic`] for
//! each configured `.so`), then share it (`Arc<Registry>`) with every worker thread: dispatch
//! takes `&self`. The dispatch methods are generated from the [hook table](crate::points)
//! in `dispatch.rs`.
//!
//! The top layer of the crate: it uses the loader and the entry, never the other way round.
//! What it does not do: decide when a point is dispatched (the server and the relay do).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use smtp_proto::classify;

use crate::chains::Chains;
use crate::client::{Anchor, ClientStateRegistration};
use crate::entry::{init_all, init_guarded};
use crate::error::LoadError;
use crate::extension::RegisteredExtension;
use crate::hook::{HookPoint, Order};
use crate::loader::{entry_error, load_into};
use crate::plugin::{linked_plugins, PluginDecl};
use crate::registrar::{ClassRegistration, Registrar, RuleRegistration};

type Shutdown = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Where a plugin came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// Linked into the binary (found through `inventory`, or added with [`Registry::add`]).
    Static,
    /// Loaded from this `.so`.
    Dynamic(PathBuf),
}

/// A loaded plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Where it came from.
    pub source: PluginSource,
}

/// What one plugin registered, for operators (`impulse plugin check`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSummary {
    /// The plugin.
    pub info: PluginInfo,
    /// Its hooks, `(point, order)`, in run order per point.
    pub hooks: Vec<(HookPoint, Order)>,
    /// The EHLO lines of its ESMTP extensions.
    pub extensions: Vec<String>,
    /// Its client states, `(name, inserted after)`.
    pub client_states: Vec<(String, String)>,
    /// Its bounce classes, `(id, name)`.
    pub classes: Vec<(u16, String)>,
    /// How many classification rules it added.
    pub rules: usize,
}

/// The plugin registry. See the [module docs](self).
pub struct Registry {
    pub(crate) chains: Chains,
    extensions: Vec<RegisteredExtension>,
    client_states: Vec<ClientStateRegistration>,
    classes: Vec<ClassRegistration>,
    rules: Vec<RuleRegistration>,
    plugins: Vec<PluginInfo>,
    shutdowns: Vec<(Arc<str>, Shutdown)>,
    classifier: &'static classify::Registry,
    seq: u64,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl Registry {
    /// An empty registry whose bounce classes go to the global
    /// [`smtp_proto::classify`] registry.
    pub fn new() -> Self {
        Registry::with_classifier(classify::global())
    }

    /// An empty registry whose bounce classes and rules go to `classifier`.
    pub fn with_classifier(classifier: &'static classify::Registry) -> Self {
        Registry {
            chains: Chains::default(),
            extensions: Vec::new(),
            client_states: Vec::new(),
            classes: Vec::new(),
            rules: Vec::new(),
            plugins: Vec::new(),
            shutdowns: Vec::new(),
            classifier,
            seq: 0,
        }
    }

    /// A registry holding every plugin linked into the binary (submitted with
    /// [`plugin!`](crate::plugin!)), initialised in name order; `configs` maps plugin names
    /// to their tables (the server config's `[plugins]` table).
    pub fn from_static(configs: &toml::Table) -> Result<Registry, LoadError> {
        let mut registry = Registry::new();
        registry.load_static(configs)?;
        Ok(registry)
    }

    /// Adds every plugin linked into the binary; see [`Registry::from_static`].
    pub fn load_static(&mut self, configs: &toml::Table) -> Result<Vec<String>, LoadError> {
        self.add_decls(&linked_plugins(), configs)
    }

    /// Adds the plugins linked into the binary that the operator configured: those with a
    /// table in `configs` (`[plugins.NAME]`, empty or not), in name order; the others stay
    /// inactive. A binary that links plugins it does not always want (`impulse` links the
    /// first-party ones) uses this instead of [`Registry::load_static`], so a plugin whose
    /// `init` needs settings does not stop a server that was not asked to run it. Returns
    /// the names of the plugins added.
    pub fn load_static_configured(
        &mut self,
        configs: &toml::Table,
    ) -> Result<Vec<String>, LoadError> {
        let chosen: Vec<&'static PluginDecl> = linked_plugins()
            .into_iter()
            .filter(|d| configs.contains_key(d.name))
            .collect();
        self.add_decls(&chosen, configs)
    }

    /// Adds one plugin declared in code (embedders and tests).
    pub fn add(
        &mut self,
        decl: &'static PluginDecl,
        configs: &toml::Table,
    ) -> Result<(), LoadError> {
        self.add_decls(&[decl], configs).map(|_| ())
    }

    /// Adds a host's own hooks as plugin `name`: `init` registers them like a plugin's
    /// `init` would, but may capture state (a host component shared with the rest of the
    /// program), which a [`PluginDecl`]'s `fn` cannot. A panic in `init` is caught and
    /// reported as [`LoadError`], as for plugins.
    pub fn add_host_hooks(
        &mut self,
        name: &str,
        version: &str,
        init: impl FnOnce(&mut Registrar) -> Result<(), String>,
    ) -> Result<(), LoadError> {
        let mut registrar = Registrar::new(self.seq);
        registrar.begin_plugin(name, version, None);
        init_guarded(name, || init(&mut registrar))
            .map_err(|f| entry_error(f, Path::new("<host>")))?;
        self.absorb(registrar, &PluginSource::Static).map(|_| ())
    }

    fn add_decls(
        &mut self,
        decls: &[&'static PluginDecl],
        configs: &toml::Table,
    ) -> Result<Vec<String>, LoadError> {
        let mut registrar = Registrar::new(self.seq);
        init_all(&mut registrar, decls, configs)
            .map_err(|f| entry_error(f, Path::new("<static>")))?;
        self.absorb(registrar, &PluginSource::Static)
    }

    /// Loads the plugins of a `.so` built with [`export_plugin!`](crate::export_plugin!):
    /// checks its ABI, runs each plugin's `init` with its table from `configs`, and merges
    /// the registrations. Returns the names of the plugins it held. Nothing is merged on
    /// error; the library stays loaded either way.
    ///
    /// # Safety
    ///
    /// Opening the library runs its initialisers before its ABI can be checked, and a
    /// library that passes the check runs its plugins' code in this process. `path` must be
    /// a plugin trusted to be sound to load — in practice, one the operator configured. The
    /// ABI guard then refuses a plugin built against another hooks-api, rustc or target
    /// before any of its Rust code is called.
    #[allow(unsafe_code)] // an `unsafe fn` over the loader's; no unsafe of its own
    pub unsafe fn load_dynamic(
        &mut self,
        path: impl AsRef<Path>,
        configs: &toml::Table,
    ) -> Result<Vec<String>, LoadError> {
        let path = path.as_ref();
        let mut registrar = Registrar::new(self.seq);
        // SAFETY: our caller vouches for the library (see above).
        unsafe { load_into(path, &mut registrar, configs) }?;
        self.absorb(registrar, &PluginSource::Dynamic(path.to_owned()))
    }

    /// Validates a registrar's contents against the registry, then merges them.
    fn absorb(
        &mut self,
        mut r: Registrar,
        source: &PluginSource,
    ) -> Result<Vec<String>, LoadError> {
        let invalid = |plugin: &str, reason: String| LoadError::InvalidRegistration {
            plugin: plugin.to_owned(),
            reason,
        };
        let mut names: Vec<&str> = self.plugins.iter().map(|p| p.name.as_str()).collect();
        for p in &r.plugins {
            if names.contains(&&*p.name) {
                return Err(LoadError::Duplicate {
                    name: p.name.to_string(),
                });
            }
            names.push(&p.name);
        }
        if let Some((plugin, reason)) = r.problems.first() {
            return Err(invalid(plugin, reason.clone()));
        }
        let mut keywords: Vec<&str> = self
            .extensions
            .iter()
            .map(|e| e.extension.keyword())
            .collect();
        for e in &r.extensions {
            if keywords.contains(&e.extension.keyword()) {
                return Err(invalid(
                    &e.plugin,
                    format!(
                        "ESMTP keyword {} is already registered",
                        e.extension.keyword()
                    ),
                ));
            }
            keywords.push(e.extension.keyword());
        }
        let mut states: Vec<&str> = self.client_states.iter().map(|s| s.name()).collect();
        for s in &r.client_states {
            if states.contains(&s.name()) {
                return Err(invalid(
                    s.plugin(),
                    format!("client state {} is already registered", s.name()),
                ));
            }
            states.push(s.name());
        }
        for c in &r.classes {
            if self.classifier.for_id(c.id).is_some() {
                return Err(invalid(
                    &c.plugin,
                    format!("bounce class {} already exists", c.id),
                ));
            }
        }
        for c in &r.classes {
            self.classifier
                .register_class(c.id, &c.name, &c.description, c.category)
                .map_err(|e| invalid(&c.plugin, e.to_string()))?;
        }
        for rule in &r.rules {
            self.classifier
                .register_rule(rule.rule.clone())
                .map_err(|e| invalid(&rule.plugin, e.to_string()))?;
        }
        self.seq = r.seq();
        self.chains.append(&mut r.chains);
        self.extensions.append(&mut r.extensions);
        self.client_states.append(&mut r.client_states);
        self.classes.append(&mut r.classes);
        self.rules.append(&mut r.rules);
        let mut loaded = Vec::new();
        for p in r.plugins {
            log::info!(
                "plugin {} {} loaded ({})",
                p.name,
                p.version,
                match source {
                    PluginSource::Static => "static".to_owned(),
                    PluginSource::Dynamic(path) => path.display().to_string(),
                }
            );
            loaded.push(p.name.to_string());
            self.plugins.push(PluginInfo {
                name: p.name.to_string(),
                version: p.version,
                source: source.clone(),
            });
            if let Some(shutdown) = p.shutdown {
                self.shutdowns.push((p.name, shutdown));
            }
        }
        Ok(loaded)
    }

    /// The loaded plugins, in load order.
    pub fn plugins(&self) -> &[PluginInfo] {
        &self.plugins
    }

    /// The names of the loaded plugins, in load order.
    pub fn plugin_names(&self) -> Vec<&str> {
        self.plugins.iter().map(|p| p.name.as_str()).collect()
    }

    /// Every plugin ESMTP extension, in registration order.
    pub fn extensions(&self) -> &[RegisteredExtension] {
        &self.extensions
    }

    /// The extension whose keyword (and verb) is `keyword`, ignoring ASCII case.
    pub fn extension(&self, keyword: &str) -> Option<&RegisteredExtension> {
        self.extensions
            .iter()
            .find(|e| e.extension.keyword().eq_ignore_ascii_case(keyword))
    }

    /// Every plugin client state, in registration order (the client builds its chain from
    /// these).
    pub fn client_states(&self) -> &[ClientStateRegistration] {
        &self.client_states
    }

    /// The bounce-class registry this registry's plugins register into (the relay classifies
    /// replies for its hooks with it).
    pub fn classifier(&self) -> &'static classify::Registry {
        self.classifier
    }

    /// The number of hooks registered at `point`.
    pub fn hook_count(&self, point: HookPoint) -> usize {
        self.chains.len(point)
    }

    /// The plugins owning the hooks of `point`, in run order.
    pub fn chain(&self, point: HookPoint) -> Vec<(String, Order)> {
        self.chains
            .summary()
            .into_iter()
            .filter(|(p, _, _)| *p == point)
            .map(|(_, plugin, order)| (plugin.to_string(), order))
            .collect()
    }

    /// What `plugin` registered, or `None` if it is not loaded.
    pub fn summary(&self, plugin: &str) -> Option<PluginSummary> {
        let info = self.plugins.iter().find(|p| p.name == plugin)?.clone();
        Some(PluginSummary {
            info,
            hooks: self
                .chains
                .summary()
                .into_iter()
                .filter(|(_, p, _)| &**p == plugin)
                .map(|(point, _, order)| (point, order))
                .collect(),
            extensions: self
                .extensions
                .iter()
                .filter(|e| &*e.plugin == plugin)
                .map(|e| e.extension.ehlo_line())
                .collect(),
            client_states: self
                .client_states
                .iter()
                .filter(|s| s.plugin() == plugin)
                .map(|s| {
                    let anchor = match s.insert_after() {
                        Anchor::Front => "front".to_owned(),
                        Anchor::After(name) => name.clone(),
                    };
                    (s.name().to_owned(), anchor)
                })
                .collect(),
            classes: self
                .classes
                .iter()
                .filter(|c| &*c.plugin == plugin)
                .map(|c| (c.id, c.name.clone()))
                .collect(),
            rules: self.rules.iter().filter(|r| &*r.plugin == plugin).count(),
        })
    }

    /// Calls every plugin's `shutdown`, in reverse load order, once; panics are logged.
    pub fn shutdown(&mut self) {
        for (plugin, shutdown) in self.shutdowns.drain(..).rev() {
            if let Err(message) = shutdown() {
                log::error!("plugin {plugin} panicked in shutdown: {message}");
            }
        }
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("plugins", &self.plugins)
            .field("extensions", &self.extensions)
            .field("client_states", &self.client_states)
            .finish_non_exhaustive()
    }
}
