//! The dispatch methods of [`Registry`] (`dispatch_*`, and `resume_*` for chain points),
//! generated from the [hook table](crate::points), and the point-specific checks the table
//! names.
//!
//! Part of the registry layer. What it does not do: decide when a point is dispatched, or
//! wait for a pending verdict (the caller resumes the chain when the completion arrives).

use crate::context::{
    AuthCtx, CommandCtx, ConnectCtx, Ctx, DataStartCtx, DisconnectCtx, HeloCtx, MailCtx,
    MessageCtx, Queue, QueueCtx, RcptCtx,
};
use crate::hook::{no_check, run_chain, settle, HookPoint};
use crate::registry::Registry;
use crate::relay::{AttemptCtx, BounceCtx, DeliveryOutcomeCtx, RouteCtx};
use crate::verdict::{Pending, Verdict};

/// The queue point's check: `Accept` must come with a queue id.
fn queue_check(ctx: &Ctx<'_, Queue<'_>>, verdict: &Verdict) -> Result<(), &'static str> {
    match verdict {
        Verdict::Accept(_) if ctx.queue_id().is_none() => Err("accepted without a queue id"),
        _ => Ok(()),
    }
}

/// The dispatch methods of one point, by the shape of its point.
macro_rules! dispatch_methods {
    (chain, $point:ident, $name:ident, $ctx:ident, $check:ident, $dispatch:ident, $resume:ident) => {
        #[doc = concat!("Runs the `", stringify!($name), "` chain (see [`crate::verdict`] for the rules).")]
        pub fn $dispatch(&self, ctx: &mut $ctx<'_>) -> Verdict {
            run_chain(&self.chains.$name, 0, ctx, HookPoint::$point, |h, c| h(c), $check)
        }

        #[doc = concat!("Resumes the `", stringify!($name), "` chain after a pending verdict completed \
            with `completed`: `Continue` runs the hooks after the one that went pending, \
            anything else is final (validated like any verdict).")]
        pub fn $resume(&self, ctx: &mut $ctx<'_>, pending: Pending, completed: Verdict) -> Verdict {
            let chain = &self.chains.$name;
            let plugin = pending
                .resume_at
                .checked_sub(1)
                .and_then(|i| chain.get(i))
                .map_or("<unknown>", |e| &*e.plugin);
            match completed {
                Verdict::Continue => {
                    run_chain(chain, pending.resume_at, ctx, HookPoint::$point, |h, c| h(c), $check)
                }
                Verdict::Pending(_) => Verdict::local_error(),
                other => settle(other, ctx, HookPoint::$point, plugin, $check),
            }
        }
    };
    (void, $point:ident, $name:ident, $ctx:ident, $check:ident, $dispatch:ident) => {
        #[doc = concat!("Runs every `", stringify!($name), "` hook; panics are logged and \
            contained, verdicts ignored.")]
        pub fn $dispatch(&self, ctx: &mut $ctx<'_>) {
            for entry in &self.chains.$name {
                if let Err(message) = (entry.hook)(ctx) {
                    crate::hook::note_panic();
                    log::error!(
                        "plugin {} panicked in its {} hook: {message}",
                        entry.plugin,
                        HookPoint::$point
                    );
                }
            }
        }
    };
}

/// Generates the dispatch methods from the hook table.
macro_rules! registry_methods {
    ($( $point:ident, $name:ident($on:ident, $($method:ident),*), $ctx:ident, $shape:ident,
        $side:ident $(($($how:tt)*))?, $check:ident, $doc:literal; )*) => {
        impl Registry {
            $( dispatch_methods!($shape, $point, $name, $ctx, $check, $($method),*); )*
        }
    };
}

crate::hook_points!(registry_methods);
