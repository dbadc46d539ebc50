//! [`Registrar`]: what a plugin's `init` registers into.
//!
//! | to register | call |
//! |---|---|
//! | a hook | `r.on_NAME(order, closure)` for every point of the [hook table](crate::points): `on_connect` / `on_helo` / `on_auth` / `on_mail` / `on_rcpt` / `on_data_start` / `on_message` / `on_queue` / `on_disconnect` / `on_unknown_command`, and on the relay side `on_route` / `on_attempt` / `on_delivery_outcome` / `on_bounce` ([`crate::relay`]) |
//! | an ESMTP extension | [`r.esmtp_extension(EsmtpExtension::new(..)...)`](Registrar::esmtp_extension) |
//! | a client state | [`r.client_state(name, anchor, factory)`](Registrar::client_state) |
//! | a bounce class | [`r.bounce_class(id, name, description, category)`](Registrar::bounce_class) |
//! | a classification rule | [`r.bounce_rule(Rule::new(..)...)`](Registrar::bounce_rule) |
//!
//! Registration mistakes (an invalid keyword, a duplicate) do not need handling in `init`:
//! the host reports them after `init` returns, as
//! [`LoadError::InvalidRegistration`](crate::LoadError::InvalidRegistration).
//!
//! Never call `smtp_proto::classify::register_class` from a plugin: a `.so` has its own copy
//! of that global registry, invisible to the server. [`Registrar::bounce_class`] hands the
//! class to the host, which registers it in *its* registry.

use std::sync::Arc;

use smtp_proto::classify::{Category, Rule};

use crate::abi::HostLog;
use crate::chains::Chains;
use crate::client::{Anchor, ClientState, ClientStateRegistration};
use crate::context::{
    AuthCtx, CommandCtx, ConnectCtx, DataStartCtx, DisconnectCtx, HeloCtx, MailCtx, MessageCtx,
    QueueCtx, RcptCtx,
};
use crate::extension::{EsmtpExtension, RegisteredExtension};
use crate::hook::{guarded, Entry, HookResult, Order};
use crate::relay::{AttemptCtx, BounceCtx, DeliveryOutcomeCtx, RouteCtx};
use crate::verdict::Verdict;

/// A bounce class a plugin registers (delegated to [`smtp_proto::classify`] by the host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassRegistration {
    /// The plugin.
    pub plugin: Arc<str>,
    /// The class id (not 0, not a built-in one).
    pub id: u16,
    /// The class name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Its category.
    pub category: Category,
}

/// A classification rule a plugin registers.
#[derive(Debug, Clone)]
pub struct RuleRegistration {
    /// The plugin.
    pub plugin: Arc<str>,
    /// The rule.
    pub rule: Rule,
}

type Shutdown = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// A plugin known to a registrar.
pub(crate) struct PluginRecord {
    pub(crate) name: Arc<str>,
    pub(crate) version: String,
    pub(crate) shutdown: Option<Shutdown>,
}

/// Collects what plugins register. The host creates one, calls each plugin's `init` with
/// it, then merges it into its [`Registry`](crate::Registry). See the [module docs](self).
pub struct Registrar {
    pub(crate) plugins: Vec<PluginRecord>,
    pub(crate) chains: Chains,
    pub(crate) extensions: Vec<RegisteredExtension>,
    pub(crate) client_states: Vec<ClientStateRegistration>,
    pub(crate) classes: Vec<ClassRegistration>,
    pub(crate) rules: Vec<RuleRegistration>,
    pub(crate) problems: Vec<(Arc<str>, String)>,
    pub(crate) host_log: Option<HostLog>,
    current: Arc<str>,
    seq: u64,
}

impl Registrar {
    /// An empty registrar whose hooks are numbered from `seq` (so registration order
    /// continues across loads).
    pub(crate) fn new(seq: u64) -> Self {
        Registrar {
            plugins: Vec::new(),
            chains: Chains::default(),
            extensions: Vec::new(),
            client_states: Vec::new(),
            classes: Vec::new(),
            rules: Vec::new(),
            problems: Vec::new(),
            host_log: None,
            current: Arc::from("<none>"),
            seq,
        }
    }

    /// The next hook sequence number (host side).
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// Starts the registrations of plugin `name`. Runs in the image of the caller: for a
    /// `.so`, in the plugin, so the shutdown guard uses the plugin's panic machinery.
    pub(crate) fn begin_plugin(&mut self, name: &str, version: &str, shutdown: Option<fn()>) {
        self.current = Arc::from(name);
        let shutdown = shutdown.map(|f| Box::new(move || guarded(f)) as Shutdown);
        self.plugins.push(PluginRecord {
            name: self.current.clone(),
            version: version.to_owned(),
            shutdown,
        });
    }

    /// The name of the plugin whose `init` is running.
    pub fn plugin_name(&self) -> &str {
        &self.current
    }

    pub(crate) fn entry<H: ?Sized>(&mut self, order: Order, hook: Arc<H>) -> Entry<H> {
        let seq = self.seq;
        self.seq += 1;
        Entry {
            plugin: self.current.clone(),
            order,
            seq,
            hook,
        }
    }

    /// Registers an ESMTP extension (Momentum's `esmtp_extensions_register`): its EHLO
    /// keyword, its verb handler and its MAIL/RCPT parameters. A keyword another plugin
    /// registered, or an invalid one, fails the plugin's load.
    pub fn esmtp_extension(&mut self, extension: EsmtpExtension) -> &mut Self {
        if let Some(reason) = extension.invalid_reason() {
            self.problems.push((self.current.clone(), reason));
        }
        self.extensions.push(RegisteredExtension {
            plugin: self.current.clone(),
            extension,
        });
        self
    }

    /// Registers a client state named `name`, inserted at `insert_after`; `factory` makes
    /// one instance per client connection. Panics in the factory or the state are
    /// contained (the state fails the message with `451 4.3.0`).
    pub fn client_state<F>(&mut self, name: &str, insert_after: Anchor, factory: F) -> &mut Self
    where
        F: Fn() -> Box<dyn ClientState> + Send + Sync + 'static,
    {
        if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_graphic()) {
            self.problems.push((
                self.current.clone(),
                format!("invalid client state name {name:?}"),
            ));
        }
        self.client_states.push(ClientStateRegistration::new(
            self.current.clone(),
            name,
            insert_after,
            factory,
        ));
        self
    }

    /// Registers a bounce class (Momentum's `smtp_error_register_class`), applied by the host
    /// to its classification registry after `init`.
    pub fn bounce_class(
        &mut self,
        id: u16,
        name: &str,
        description: &str,
        category: Category,
    ) -> &mut Self {
        self.classes.push(ClassRegistration {
            plugin: self.current.clone(),
            id,
            name: name.to_owned(),
            description: description.to_owned(),
            category,
        });
        self
    }

    /// Registers a classification rule, applied after the plugin's classes (so it may name
    /// them).
    pub fn bounce_rule(&mut self, rule: Rule) -> &mut Self {
        self.rules.push(RuleRegistration {
            plugin: self.current.clone(),
            rule,
        });
        self
    }
}

/// One `Registrar::on_*` method, by the shape of its point.
macro_rules! registrar_method {
    (chain, $name:ident, $ctx:ident, $on:ident) => {
        #[doc = concat!("Registers a `", stringify!($name), "` hook at `order`. See [`",
            stringify!($ctx), "`](crate::", stringify!($ctx), ") for what `Continue` means there.")]
        pub fn $on<F>(&mut self, order: Order, hook: F) -> &mut Self
        where
            F: for<'a, 'b> Fn(&'b mut $ctx<'a>) -> Verdict + Send + Sync + 'static,
        {
            let hook: Arc<dyn for<'a, 'b> Fn(&'b mut $ctx<'a>) -> HookResult + Send + Sync> =
                Arc::new(move |ctx: &mut $ctx<'_>| guarded(|| hook(ctx)));
            let entry = self.entry(order, hook);
            self.chains.$name.push(entry);
            self
        }
    };
    (void, $name:ident, $ctx:ident, $on:ident) => {
        #[doc = concat!("Registers a `", stringify!($name), "` hook at `order`. ",
            stringify!($name), " hooks are void: all run, whatever the others do.")]
        pub fn $on<F>(&mut self, order: Order, hook: F) -> &mut Self
        where
            F: for<'a, 'b> Fn(&'b mut $ctx<'a>) + Send + Sync + 'static,
        {
            let hook: Arc<dyn for<'a, 'b> Fn(&'b mut $ctx<'a>) -> HookResult + Send + Sync> =
                Arc::new(move |ctx: &mut $ctx<'_>| guarded(|| hook(ctx)).map(|()| Verdict::Continue));
            let entry = self.entry(order, hook);
            self.chains.$name.push(entry);
            self
        }
    };
}

/// Generates the `Registrar::on_*` methods from the hook table.
macro_rules! registrar_methods {
    ($( $point:ident, $name:ident($on:ident $(, $method:ident)*), $ctx:ident, $shape:ident,
        $side:ident $(($($how:tt)*))?, $check:ident, $doc:literal; )*) => {
        impl Registrar {
            $( registrar_method!($shape, $name, $ctx, $on); )*
        }
    };
}

crate::hook_points!(registrar_methods);
