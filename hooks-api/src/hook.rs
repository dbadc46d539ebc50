//! Hook points ([`HookPoint`], generated from the [hook table](crate::points)), [`Order`],
//! and the chain runner behind `Registry::dispatch_*`.
//!
//! # Ordering
//!
//! Each hook point keeps one chain, sorted by `(group, priority, registration)`:
//!
//! 1. every [`Order::First`] hook, in registration order;
//! 2. every [`Order::Priority`] hook, lowest priority value first; equal priorities in
//!    registration order;
//! 3. every [`Order::Last`] hook, in registration order.
//!
//! Registration order is the order of `Registrar::on_*` calls across all plugins: static
//! plugins initialise in name order, then dynamic plugins in load order (a `.so` holding
//! several plugins initialises them in name order). Momentum's `register_*_hook_first`
//! *prepends*, so its last "first" hook runs first; here "first" hooks keep registration
//! order, which is easier to reason about when several plugins ask to be first.
//!
//! # Panics
//!
//! Every hook is wrapped, when it is registered, in `catch_unwind`; the wrapper is compiled
//! into the plugin's own image. That matters for `.so` plugins: each carries its own copy of
//! the standard library, with its own panic counters, so a panic must be caught by the copy
//! that raised it — a panic unwinding into the host's `catch_unwind` would leave both copies'
//! counters wrong. The dispatcher turns a caught panic into `TempFail(451 4.3.0)` and logs
//! the plugin and the hook point.

use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::context::Ctx;
use crate::verdict::Verdict;

/// Where a hook runs in its chain. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Order {
    /// Before every priority and last hook (Momentum's `register_*_hook_first`).
    First,
    /// Between the first and the last hooks, lowest value first.
    Priority(i32),
    /// After every first and priority hook (Momentum's `register_*_hook_last`).
    Last,
}

impl Order {
    fn key(self) -> (u8, i32) {
        match self {
            Order::First => (0, 0),
            Order::Priority(p) => (1, p),
            Order::Last => (2, 0),
        }
    }
}

impl Default for Order {
    /// `Priority(0)`.
    fn default() -> Self {
        Order::Priority(0)
    }
}

impl fmt::Display for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Order::First => f.write_str("first"),
            Order::Priority(p) => write!(f, "priority {p}"),
            Order::Last => f.write_str("last"),
        }
    }
}

/// Who dispatches a hook point ([`HookPoint::side`]), from the `side` of its entry in the
/// [hook table](crate::points).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Side {
    /// The server, at this stage of a connection.
    Server(ServerStage),
    /// The relay (the queue manager), outside the server's factory.
    Relay,
}

/// When the server dispatches a server-side hook point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServerStage {
    /// On the loop thread, while the factory awaits a decision on the point's event.
    Decision,
    /// On the hook pool, once the whole message was received.
    Message,
    /// When the connection ends.
    Close,
}

/// `Side` of a table entry's `side`.
macro_rules! side {
    (server(decide $kind:ident)) => {
        Side::Server(ServerStage::Decision)
    };
    (server(message)) => {
        Side::Server(ServerStage::Message)
    };
    (server(close)) => {
        Side::Server(ServerStage::Close)
    };
    (relay) => {
        Side::Relay
    };
}

/// Generates the enum `$enum` of hook points from the entries of a hook table.
macro_rules! hook_point_enum {
    ($enum:ident; $( $point:ident, $name:ident($($method:ident),*), $ctx:ident, $shape:ident,
        $side:ident $(($($how:tt)*))?, $check:ident, $doc:literal; )*) => {
        /// The hook points, for logs and summaries: one variant per entry of the
        /// [hook table](crate::points), in protocol order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $enum {
            $( #[doc = $doc] $point, )*
        }

        impl $enum {
            /// How many hook points there are.
            pub const COUNT: usize = [$( $enum::$point ),*].len();

            /// Every hook point, in protocol order.
            pub const ALL: [$enum; $enum::COUNT] = [$( $enum::$point ),*];

            /// The name used in logs and by `impulse plugin check`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $enum::$point => stringify!($name), )*
                }
            }

            /// Who dispatches this point.
            pub fn side(self) -> Side {
                match self {
                    $( $enum::$point => side!($side $(($($how)*))?), )*
                }
            }

            /// `true` for a void point: every hook runs and verdicts are ignored.
            pub fn is_void(self) -> bool {
                match self {
                    $( $enum::$point => stringify!($shape) == "void", )*
                }
            }

            /// This point's position in `ALL` (for tables indexed by point).
            pub fn index(self) -> usize {
                self as usize
            }
        }
    };
}

/// [`HookPoint`] from the hook table.
macro_rules! hook_point {
    ($($entries:tt)*) => {
        hook_point_enum!(HookPoint; $($entries)*);
    };
}

crate::hook_points!(hook_point);

impl fmt::Display for HookPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// What a wrapped hook returns: its verdict, or the message of the panic it raised.
pub(crate) type HookResult = Result<Verdict, String>;

/// Runs `f`, catching a panic and turning it into its message. Generic, so it is
/// instantiated — and its `catch_unwind` bound to the standard library — in the plugin.
pub(crate) fn guarded<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| panic_message(&*payload))
}

/// Panics of plugin code caught in this process (see [`panics_caught`]).
static PANICS_CAUGHT: AtomicU64 = AtomicU64::new(0);

/// How many panics of plugin code (hooks, verb handlers, advertise predicates, client
/// states) the dispatch caught in this process since it started: the server's
/// `impulse_plugin_panics_total`.
pub fn panics_caught() -> u64 {
    PANICS_CAUGHT.load(Ordering::Relaxed)
}

/// Counts one caught panic (where it is logged).
pub(crate) fn note_panic() {
    PANICS_CAUGHT.fetch_add(1, Ordering::Relaxed);
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// One registered hook.
pub(crate) struct Entry<H: ?Sized> {
    pub(crate) plugin: Arc<str>,
    pub(crate) order: Order,
    pub(crate) seq: u64,
    pub(crate) hook: Arc<H>,
}

impl<H: ?Sized> Clone for Entry<H> {
    fn clone(&self) -> Self {
        Entry {
            plugin: self.plugin.clone(),
            order: self.order,
            seq: self.seq,
            hook: self.hook.clone(),
        }
    }
}

/// Sorts a chain by the rules of the [module docs](self).
pub(crate) fn sort_chain<H: ?Sized>(entries: &mut [Entry<H>]) {
    entries.sort_by_key(|e| (e.order.key(), e.seq));
}

/// Point-specific acceptance check (the queue hook needs a queue id).
pub(crate) type Check<'c, E> = fn(&Ctx<'c, E>, &Verdict) -> Result<(), &'static str>;

/// Runs `entries[start..]` on `ctx` by the chain rules of [`crate::verdict`].
pub(crate) fn run_chain<'c, H: ?Sized, E>(
    entries: &[Entry<H>],
    start: usize,
    ctx: &mut Ctx<'c, E>,
    point: HookPoint,
    call: impl Fn(&H, &mut Ctx<'c, E>) -> HookResult,
    check: Check<'c, E>,
) -> Verdict {
    for (i, entry) in entries.iter().enumerate().skip(start) {
        ctx.pending_issued = false;
        let verdict = match call(&entry.hook, ctx) {
            Ok(v) => v,
            Err(message) => {
                note_panic();
                log::error!(
                    "plugin {} panicked in its {point} hook: {message}; answering 451 4.3.0",
                    entry.plugin
                );
                ctx.faulted = true;
                return Verdict::panicked();
            }
        };
        match settle(verdict, ctx, point, &entry.plugin, check) {
            Verdict::Continue => {}
            Verdict::Pending(mut pending) => {
                pending.resume_at = i + 1;
                return Verdict::Pending(pending);
            }
            other => return other,
        }
    }
    Verdict::Continue
}

/// Validates one verdict of `plugin` at `point`; logs and replaces a bad one.
pub(crate) fn settle<'c, E>(
    verdict: Verdict,
    ctx: &mut Ctx<'c, E>,
    point: HookPoint,
    plugin: &str,
    check: Check<'c, E>,
) -> Verdict {
    let verdict = match verdict.validated() {
        Ok(v) => v,
        Err(replacement) => {
            log::error!(
                "plugin {plugin} returned a verdict whose reply does not fit its kind in its \
                 {point} hook; answering 451 4.3.0"
            );
            ctx.faulted = true;
            return replacement;
        }
    };
    match &verdict {
        Verdict::Continue => verdict,
        Verdict::Pending(_) if !ctx.can_pend() || !ctx.pending_issued => {
            log::error!(
                "plugin {plugin} went pending in its {point} hook, which cannot wait here; \
                 answering 451 4.3.0"
            );
            ctx.faulted = true;
            Verdict::local_error()
        }
        Verdict::Pending(_) => verdict,
        _ => match check(ctx, &verdict) {
            Ok(()) => verdict,
            Err(why) => {
                log::error!("plugin {plugin} in its {point} hook: {why}; answering 451 4.3.0");
                ctx.faulted = true;
                Verdict::local_error()
            }
        },
    }
}

/// No point-specific check.
pub(crate) fn no_check<E>(_: &Ctx<'_, E>, _: &Verdict) -> Result<(), &'static str> {
    Ok(())
}
