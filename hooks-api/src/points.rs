//! The hook table: every hook point, declared once, in [`hook_points!`](crate::hook_points).
//!
//! Everything that lists hook points is generated from this table, so the lists cannot drift
//! apart: [`HookPoint`](crate::HookPoint) (with [`HookPoint::ALL`](crate::HookPoint::ALL),
//! its names and its [`Side`](crate::Side)), the chains a registrar and a registry hold, the
//! registration methods (`Registrar::on_*`), the dispatch methods (`Registry::dispatch_*`,
//! `Registry::resume_*`), and, in `smtp-server`, which factory events a point decides and
//! which points have hooks.
//!
//! # One entry per point
//!
//! An entry reads `Point, name(on, dispatch, resume), ContextAlias, shape, side, check, "doc";`:
//!
//! - `Point` is the [`HookPoint`](crate::HookPoint) variant;
//! - `name` is the point's name in logs and in `impulse plugin check`; in parentheses follow
//!   the names of its methods, `on_name`, `dispatch_name` and (for a chain) `resume_name`;
//! - `ContextAlias` is the hook's context type, a `Ctx<'a, Event<'a>>` alias of
//!   [`crate::context`] (or of the module that defines the point's event);
//! - `shape` is `chain` (verdicts follow the chain rules of [`crate::verdict`], a hook may
//!   go pending, `resume_name` continues the chain) or `void` (every hook runs, verdicts
//!   are ignored, hooks return `()`);
//! - `side` says who dispatches the point: `server(decide Kind)` — the server's connection
//!   state machine, while the factory awaits a decision on its `EventKind::Kind` event;
//!   `server(message)` — the server, on its hook pool, once the message is received;
//!   `server(close)` — the server, when a connection ends; `relay` — the relay, outside the
//!   server's factory (the server ignores such points);
//! - `check` is a point-specific check of final verdicts (`no_check`, or a function of the
//!   registry layer such as `queue_check`);
//! - `"doc"` documents the variant.
//!
//! Adding a point is one entry here plus its handler: the event type and its context alias,
//! and the code that builds the event and calls `dispatch_name` where the point happens. The
//! relay-side `route` point, for example, is
//!
//! ```text
//! Route, route(on_route, dispatch_route, resume_route),
//!     RouteCtx, chain, relay, no_check, "A recipient domain needs next hops (relay).";
//! ```
//!
//! with its event and alias in [`crate::relay`], and nothing in the server changed for it. A point whose context crosses the `.so` boundary in a
//! new shape is an ABI change: bump [`ABI_VERSION`](crate::abi::ABI_VERSION).
//!
//! What this module does not do: it holds no code. Each layer expands the table with a
//! generator of its own (`hook.rs`, `chains.rs`, `registrar.rs`, `registry.rs`; the server's
//! `server/hooks.rs`).

/// The hook table (see the [module docs](crate::points)). Calls `$callback!` with every
/// entry: `Point, name(on, dispatch, resume), ContextAlias, shape, side, check, "doc";`, in
/// protocol order.
#[doc(hidden)]
#[macro_export]
macro_rules! hook_points {
    ($callback:ident) => {
        $callback! {
            Connect, connect(on_connect, dispatch_connect, resume_connect),
                ConnectCtx, chain, server(decide Connect), no_check, "A client connected.";
            Helo, helo(on_helo, dispatch_helo, resume_helo),
                HeloCtx, chain, server(decide Helo), no_check, "HELO or EHLO.";
            Auth, auth(on_auth, dispatch_auth, resume_auth),
                AuthCtx, chain, server(decide Auth), no_check, "AUTH credentials to verify.";
            Mail, mail(on_mail, dispatch_mail, resume_mail),
                MailCtx, chain, server(decide Mail), no_check, "MAIL FROM.";
            Rcpt, rcpt(on_rcpt, dispatch_rcpt, resume_rcpt),
                RcptCtx, chain, server(decide Rcpt), no_check, "RCPT TO.";
            DataStart, data_start(on_data_start, dispatch_data_start, resume_data_start),
                DataStartCtx, chain, server(decide DataStart), no_check, "DATA or the first BDAT.";
            Message, message(on_message, dispatch_message, resume_message),
                MessageCtx, chain, server(message), no_check, "The whole message was received.";
            Queue, queue(on_queue, dispatch_queue, resume_queue),
                QueueCtx, chain, server(message), queue_check, "Someone must take responsibility for the message.";
            Disconnect, disconnect(on_disconnect, dispatch_disconnect),
                DisconnectCtx, void, server(close), no_check, "The connection is closing (void).";
            UnknownCommand, unknown_command(on_unknown_command, dispatch_unknown_command, resume_unknown_command),
                CommandCtx, chain, server(decide Unknown), no_check, "A command the server does not know.";
            Route, route(on_route, dispatch_route, resume_route),
                RouteCtx, chain, relay, no_check, "A recipient domain needs next hops (relay).";
            Attempt, attempt(on_attempt, dispatch_attempt, resume_attempt),
                AttemptCtx, chain, relay, no_check, "A recipient is about to be attempted (relay).";
            DeliveryOutcome, delivery_outcome(on_delivery_outcome, dispatch_delivery_outcome, resume_delivery_outcome),
                DeliveryOutcomeCtx, chain, relay, no_check, "An attempt decided a recipient (relay).";
            Bounce, bounce(on_bounce, dispatch_bounce, resume_bounce),
                BounceCtx, chain, relay, no_check, "A notification is about to be queued (relay).";
        }
    };
}
