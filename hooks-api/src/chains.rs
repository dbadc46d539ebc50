//! [`Chains`]: one hook chain per hook point, generated from the [hook table](crate::points).
//! A [`Registrar`](crate::Registrar) fills one; a [`Registry`](crate::Registry) merges them.
//!
//! What this module does not do: register or run hooks (the registrar and the registry
//! generate those methods from the same table).

use std::sync::Arc;

use crate::context::{
    AuthCtx, CommandCtx, ConnectCtx, DataStartCtx, DisconnectCtx, HeloCtx, MailCtx, MessageCtx,
    QueueCtx, RcptCtx,
};
use crate::hook::{sort_chain, Entry, HookPoint, HookResult, Order};
use crate::relay::{AttemptCtx, BounceCtx, DeliveryOutcomeCtx, RouteCtx};

/// Generates the struct `$chains` of chains, one per entry of a hook table whose points are
/// the enum `$points`.
macro_rules! chains_struct {
    ($chains:ident, $points:ident; $( $point:ident, $name:ident($($method:ident),*), $ctx:ident, $shape:ident,
        $side:ident $(($($how:tt)*))?, $check:ident, $doc:literal; )*) => {
        /// The hook chains of every point, each in run order once sorted.
        #[derive(Default, Clone)]
        pub(crate) struct $chains {
            $( pub(crate) $name: Vec<Entry<dyn for<'a, 'b> Fn(&'b mut $ctx<'a>) -> HookResult + Send + Sync>>, )*
        }

        impl $chains {
            /// Moves `other`'s hooks in and re-sorts every chain.
            pub(crate) fn append(&mut self, other: &mut $chains) {
                $( self.$name.append(&mut other.$name); sort_chain(&mut self.$name); )*
            }

            /// `(point, plugin, order)` of every hook, chain by chain in protocol order, each
            /// chain in run order.
            pub(crate) fn summary(&self) -> Vec<($points, Arc<str>, Order)> {
                let mut out = Vec::new();
                $( out.extend(self.$name.iter().map(|e| ($points::$point, e.plugin.clone(), e.order))); )*
                out
            }

            /// The number of hooks at `point`.
            pub(crate) fn len(&self, point: $points) -> usize {
                match point {
                    $( $points::$point => self.$name.len(), )*
                }
            }
        }
    };
}

/// [`Chains`] from the hook table.
macro_rules! chains {
    ($($entries:tt)*) => {
        chains_struct!(Chains, HookPoint; $($entries)*);
    };
}

crate::hook_points!(chains);
