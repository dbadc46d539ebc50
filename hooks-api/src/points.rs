//! One chain per server hook point: the registration methods (`Registrar::on_*`) and the
//! dispatch methods (`Registry::dispatch_*`, `Registry::resume_*`), generated alike for
//! every point so they cannot drift apart.

use std::sync::Arc;

use crate::context::AuthCtx;
use crate::context::{
    CommandCtx, ConnectCtx, Ctx, DataStartCtx, DisconnectCtx, HeloCtx, MailCtx, MessageCtx, Queue,
    QueueCtx, RcptCtx,
};
use crate::hook::{
    guarded, no_check, run_chain, settle, sort_chain, Entry, HookPoint, HookResult, Order,
};
use crate::registrar::Registrar;
use crate::registry::Registry;
use crate::verdict::{Pending, Verdict};

fn queue_check(ctx: &Ctx<'_, Queue<'_>>, verdict: &Verdict) -> Result<(), &'static str> {
    match verdict {
        Verdict::Accept(_) if ctx.queue_id().is_none() => Err("accepted without a queue id"),
        _ => Ok(()),
    }
}

macro_rules! hook_points {
    ($( $field:ident, $ctx:ident, $point:ident, $on:ident, $dispatch:ident, $resume:ident, $check:path; )*) => {
        /// The hook chains of every point.
        #[derive(Default, Clone)]
        pub(crate) struct Chains {
            $( pub(crate) $field: Vec<Entry<dyn for<'a, 'b> Fn(&'b mut $ctx<'a>) -> HookResult + Send + Sync>>, )*
            pub(crate) disconnect: Vec<Entry<dyn for<'a, 'b> Fn(&'b mut DisconnectCtx<'a>) -> HookResult + Send + Sync>>,
        }

        impl Chains {
            /// Moves `other`'s hooks in and re-sorts every chain.
            pub(crate) fn append(&mut self, other: &mut Chains) {
                $( self.$field.append(&mut other.$field); sort_chain(&mut self.$field); )*
                self.disconnect.append(&mut other.disconnect);
                sort_chain(&mut self.disconnect);
            }

            /// `(point, plugin, order)` of every hook, chain by chain, in run order.
            pub(crate) fn summary(&self) -> Vec<(HookPoint, Arc<str>, Order)> {
                let mut out = Vec::new();
                $( out.extend(self.$field.iter().map(|e| (HookPoint::$point, e.plugin.clone(), e.order))); )*
                out.extend(self.disconnect.iter().map(|e| (HookPoint::Disconnect, e.plugin.clone(), e.order)));
                out
            }
        }

        impl Registrar {
            $(
                #[doc = concat!("Registers a `", stringify!($field), "` hook at `order`. See [`",
                    stringify!($ctx), "`](crate::", stringify!($ctx), ") for what `Continue` means there.")]
                pub fn $on<F>(&mut self, order: Order, hook: F) -> &mut Self
                where
                    F: for<'a, 'b> Fn(&'b mut $ctx<'a>) -> Verdict + Send + Sync + 'static,
                {
                    let hook: Arc<dyn for<'a, 'b> Fn(&'b mut $ctx<'a>) -> HookResult + Send + Sync> =
                        Arc::new(move |ctx: &mut $ctx<'_>| guarded(|| hook(ctx)));
                    let entry = self.entry(order, hook);
                    self.chains.$field.push(entry);
                    self
                }
            )*

            /// Registers a `disconnect` hook at `order`. Disconnect hooks are void: all run,
            /// whatever the others do.
            pub fn on_disconnect<F>(&mut self, order: Order, hook: F) -> &mut Self
            where
                F: for<'a, 'b> Fn(&'b mut DisconnectCtx<'a>) + Send + Sync + 'static,
            {
                let hook: Arc<dyn for<'a, 'b> Fn(&'b mut DisconnectCtx<'a>) -> HookResult + Send + Sync> =
                    Arc::new(move |ctx: &mut DisconnectCtx<'_>| guarded(|| hook(ctx)).map(|()| Verdict::Continue));
                let entry = self.entry(order, hook);
                self.chains.disconnect.push(entry);
                self
            }
        }

        impl Registry {
            $(
                #[doc = concat!("Runs the `", stringify!($field), "` chain (see [`crate::verdict`] for the rules).")]
                pub fn $dispatch(&self, ctx: &mut $ctx<'_>) -> Verdict {
                    run_chain(&self.chains.$field, 0, ctx, HookPoint::$point, |h, c| h(c), $check)
                }

                #[doc = concat!("Resumes the `", stringify!($field), "` chain after a pending verdict completed \
                    with `completed`: `Continue` runs the hooks after the one that went pending, \
                    anything else is final (validated like any verdict).")]
                pub fn $resume(&self, ctx: &mut $ctx<'_>, pending: Pending, completed: Verdict) -> Verdict {
                    let chain = &self.chains.$field;
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
            )*

            /// Runs every `disconnect` hook; panics are logged and contained, verdicts ignored.
            pub fn dispatch_disconnect(&self, ctx: &mut DisconnectCtx<'_>) {
                for entry in &self.chains.disconnect {
                    if let Err(message) = (entry.hook)(ctx) {
                        log::error!("plugin {} panicked in its disconnect hook: {message}", entry.plugin);
                    }
                }
            }
        }
    };
}

hook_points! {
    connect, ConnectCtx, Connect, on_connect, dispatch_connect, resume_connect, no_check;
    helo, HeloCtx, Helo, on_helo, dispatch_helo, resume_helo, no_check;
    auth, AuthCtx, Auth, on_auth, dispatch_auth, resume_auth, no_check;
    mail, MailCtx, Mail, on_mail, dispatch_mail, resume_mail, no_check;
    rcpt, RcptCtx, Rcpt, on_rcpt, dispatch_rcpt, resume_rcpt, no_check;
    data_start, DataStartCtx, DataStart, on_data_start, dispatch_data_start, resume_data_start, no_check;
    message, MessageCtx, Message, on_message, dispatch_message, resume_message, no_check;
    queue, QueueCtx, Queue, on_queue, dispatch_queue, resume_queue, queue_check;
    unknown_command, CommandCtx, UnknownCommand, on_unknown_command, dispatch_unknown_command, resume_unknown_command, no_check;
}
