//! Factory events that need a decision: dispatching the plugin hooks on the loop thread,
//! mapping verdicts to [`Decision`]s, and parking a connection whose hook went pending
//! until the completion arrives through [`LoopPending`] (crossbeam channel + `Waker`).

use std::cell::Cell;
use std::time::Instant;

use hooks_api::{
    Auth, Command, Completion, Connect, Ctx, DataStart, Helo, HookPoint, Mail, Pending,
    PendingSource, Rcpt, Registry, SessionInfo, Verdict,
};

use super::common::{ConnKey, LoopSender, Msg, Waiting};
use super::conn::Conn;
use super::event_loop::Loop;
use crate::factory::{Decision, Event, EventKind, SessionUpdate};

/// What an extension verb handler changed in the session, and whether it asked for a reset.
type Changed = Option<(SessionUpdate, bool)>;

/// A verdict that is not `Pending`, as the factory's decision. Hook verdicts map one to one.
pub(crate) fn decision(verdict: Verdict) -> Decision {
    match verdict {
        Verdict::Continue => Decision::Continue,
        Verdict::Accept(None) => Decision::Accept,
        Verdict::Accept(Some(reply)) => Decision::Reply(reply),
        Verdict::Reject(reply) => Decision::Reject(reply),
        Verdict::TempFail(reply) => Decision::TempFail(reply),
        Verdict::Disconnect(reply) => Decision::Disconnect(reply),
        Verdict::Pending(_) => match Verdict::local_error() {
            Verdict::TempFail(reply) => Decision::TempFail(reply),
            _ => Decision::Continue,
        },
    }
}

/// The loop's [`PendingSource`]: a completion sends `(connection, ticket, verdict)` to the
/// loop's channel and wakes its `Poll`.
pub(crate) struct LoopPending<'a> {
    pub sender: &'a LoopSender,
    pub key: ConnKey,
    pub next: Cell<u64>,
}

impl PendingSource for LoopPending<'_> {
    fn completion(&self) -> (u64, Completion) {
        let ticket = self.next.get();
        self.next.set(ticket.wrapping_add(1));
        let sender = self.sender.clone();
        let key = self.key;
        (
            ticket,
            Box::new(move |verdict| {
                sender.send(Msg::Verdict {
                    key,
                    ticket,
                    verdict,
                });
            }),
        )
    }
}

/// What changed between two views of the session, as the factory's input.
fn session_update(before: &SessionInfo, after: &SessionInfo) -> SessionUpdate {
    fn changed<T: PartialEq + Clone>(a: &T, b: &T) -> Option<T> {
        (a != b).then(|| b.clone())
    }
    SessionUpdate {
        peer: changed(&before.peer, &after.peer),
        local: changed(&before.local, &after.local),
        client_name: changed(&before.client_name, &after.client_name),
        helo: changed(&before.helo, &after.helo),
        esmtp: changed(&before.ehlo, &after.ehlo),
        auth: changed(&before.auth, &after.auth),
    }
}

/// Runs (or, with `resume`, resumes) the hook chain for `event` on `conn`. An extension
/// verb handler's session changes are returned in `changed`.
fn run_chain(
    registry: &Registry,
    conn: &mut Conn,
    event: &Event,
    source: &dyn PendingSource,
    resume: Option<(Pending, Verdict)>,
    changed: &mut Changed,
) -> Verdict {
    let Conn {
        factory,
        session,
        conn_notes,
        txn_notes,
        ..
    } = conn;
    // The hooks borrow the factory's envelope as it is.
    let env = factory.envelope().map(|e| &e.transaction);
    macro_rules! chain {
        ($ev:expr, $dispatch:ident, $resume:ident) => {{
            let mut ctx = Ctx::new(session, conn_notes, txn_notes, $ev).with_pending(source);
            match resume {
                None => registry.$dispatch(&mut ctx),
                Some((p, v)) => registry.$resume(&mut ctx, p, v),
            }
        }};
    }
    match event {
        Event::Connect { .. } => chain!(Connect, dispatch_connect, resume_connect),
        Event::Helo { name, extended } => chain!(
            Helo {
                name,
                extended: *extended
            },
            dispatch_helo,
            resume_helo
        ),
        Event::Auth {
            mechanism,
            credentials,
        } => chain!(
            Auth {
                mechanism,
                authcid: &credentials.authcid,
                authzid: &credentials.authzid,
                password: &credentials.password,
            },
            dispatch_auth,
            resume_auth
        ),
        Event::Mail { from, params } => chain!(
            Mail {
                sender: from,
                params
            },
            dispatch_mail,
            resume_mail
        ),
        Event::Rcpt { to, params } => {
            let Some(envelope) = env else {
                return Verdict::local_error();
            };
            chain!(
                Rcpt {
                    envelope,
                    recipient: to,
                    params
                },
                dispatch_rcpt,
                resume_rcpt
            )
        }
        Event::DataStart => {
            let Some(envelope) = env else {
                return Verdict::local_error();
            };
            chain!(
                DataStart { envelope },
                dispatch_data_start,
                resume_data_start
            )
        }
        Event::Unknown { verb, args } => chain!(
            Command::new(verb, args.as_deref().unwrap_or("")),
            dispatch_unknown_command,
            resume_unknown_command
        ),
        Event::Extension { verb, args } => {
            // An extension handler is a single hook: a completed verdict is final.
            if let Some((_, completed)) = resume {
                return match completed {
                    Verdict::Continue => Verdict::accept(),
                    other => other,
                };
            }
            let Some(ext) = registry.extension(verb) else {
                return Verdict::reject(502, "5.5.1", "Command not implemented");
            };
            let args = args.as_deref().unwrap_or("");
            let before = session.clone();
            let mut ctx = Ctx::new(session, conn_notes, txn_notes, Command::new(verb, args))
                .with_pending(source);
            let verdict = ext.call(&mut ctx, args);
            let reset = ctx.session_reset_requested();
            let update = session_update(&before, session);
            if reset || !update.is_empty() {
                *changed = Some((update, reset));
            }
            verdict
        }
        _ => Verdict::Continue,
    }
}

/// The hook point and the factory event kind of every `server(decide Kind)` entry of the
/// hook table; relay-side points and the server's other stages have none.
macro_rules! decided_by_factory {
    ($( $point:ident, $name:ident($($method:ident),*), $ctx:ident, $shape:ident,
        $side:ident $(($($how:tt)*))?, $check:ident, $doc:literal; )*) => {
        /// The factory event a server hook point decides, for points the server dispatches
        /// while the factory awaits a decision.
        pub(crate) fn decided_kind(point: HookPoint) -> Option<EventKind> {
            $( decided_by_factory!(@kind point, $point, $side $(($($how)*))?); )*
            None
        }
    };
    (@kind $p:ident, $point:ident, server(decide $kind:ident)) => {
        if $p == HookPoint::$point {
            return Some(EventKind::$kind);
        }
    };
    (@kind $p:ident, $point:ident, $($side:tt)*) => {};
}

hooks_api::hook_points!(decided_by_factory);

/// The hook point deciding factory events of `kind`, if any.
pub(crate) fn deciding_point(kind: EventKind) -> Option<HookPoint> {
    HookPoint::ALL
        .into_iter()
        .find(|&point| decided_kind(point) == Some(kind))
}

impl Loop {
    /// Whether any hook handles events of this kind (else the factory's default applies).
    /// Extension verbs always have their handler.
    fn hooked(&self, kind: EventKind) -> bool {
        kind == EventKind::Extension || self.shared.hooks.decides(kind)
    }

    /// Decides an event that needs a decision, running the hooks (or resuming them with a
    /// completed verdict). A pending verdict parks the connection.
    pub(crate) fn decide(
        &mut self,
        key: usize,
        event: Event,
        resume: Option<(Pending, Verdict)>,
        now: Instant,
    ) {
        let kind = event.kind();
        let mut changed = None;
        let verdict = if self.hooked(kind) {
            let registry = self.shared.registry.clone();
            let source = LoopPending {
                sender: &self.sender,
                key: self.conns[key].key(),
                next: Cell::new(self.ticket),
            };
            let conn = &mut self.conns[key];
            sync_session(conn);
            let started = Instant::now();
            let v = run_chain(&registry, conn, &event, &source, resume, &mut changed);
            if let Some(point) = deciding_point(kind) {
                self.shared.metrics.hook_time(point, started.elapsed());
            }
            self.ticket = source.next.get();
            v
        } else {
            Verdict::Continue
        };
        let conn = &mut self.conns[key];
        if let Some((update, reset)) = changed {
            log::debug!(
                "{} {kind:?}: session update {update:?}, reset={reset}",
                conn.client()
            );
            conn.factory.handle_session_update(update, reset);
            sync_session(conn);
        }
        match verdict {
            Verdict::Pending(pending) => {
                log::debug!("{} {kind:?} hook pending", conn.client());
                conn.waiting = Waiting::Hook {
                    event: Box::new(event),
                    pending,
                };
            }
            verdict => {
                if kind == EventKind::Helo && self.shared.hooks.advertise_if {
                    // Per-session EHLO keywords: hide those whose condition is false now.
                    sync_session(conn);
                    let session = &conn.session;
                    let hidden = self.shared.registry.extensions().iter().filter_map(|e| {
                        let ext = &e.extension;
                        (ext.is_conditional() && !ext.advertised_to(session))
                            .then(|| ext.keyword().to_owned())
                    });
                    conn.factory.hide_extensions(hidden);
                }
                let d = decision(verdict);
                if let Err(e) = conn.factory.handle_decision(d, now) {
                    log::error!("{}: {e}", conn.client());
                }
            }
        }
    }

    /// A pending hook completed: resume its chain.
    pub(crate) fn on_verdict(&mut self, key: usize, ticket: u64, verdict: Verdict, now: Instant) {
        let conn = &mut self.conns[key];
        let waiting = std::mem::replace(&mut conn.waiting, Waiting::Nothing);
        match waiting {
            Waiting::Hook { event, pending } if pending.ticket() == ticket => {
                self.decide(key, *event, Some((pending, verdict)), now);
            }
            other => {
                log::debug!("{}: stale hook completion dropped", conn.client());
                conn.waiting = other;
            }
        }
    }
}

/// Copies what the factory knows about the session into the hooks' view (the factory is
/// the source of truth; extension handlers' changes reach it through
/// [`Factory::handle_session_update`](crate::factory::Factory::handle_session_update)).
pub(crate) fn sync_session(conn: &mut Conn) {
    let f = &conn.factory;
    let s = &mut conn.session;
    s.peer = f.peer();
    s.local = f.local();
    s.helo = f.helo().map(str::to_owned);
    s.ehlo = f.is_esmtp();
    s.auth = f.authenticated().map(str::to_owned);
    if s.client_name.as_deref() != f.client_name() {
        s.client_name = f.client_name().map(str::to_owned);
    }
    if conn.session.tls.is_none() {
        if let Some(tls) = conn.factory.tls() {
            conn.session.tls = Some(hooks_api::TlsInfo::new(&tls.protocol, &tls.cipher));
        }
    }
}

#[cfg(test)]
mod tests {
    use hooks_api::{
        EsmtpExtension, Order, PluginConfig, PluginDecl, Registrar, ServerStage, Side,
    };

    use super::*;
    use crate::factory::Decisions;
    use crate::server::builder::HookSet;

    #[test]
    fn decision_points_map_to_factory_events_and_back() {
        for point in HookPoint::ALL {
            let decided = point.side() == Side::Server(ServerStage::Decision);
            assert_eq!(decided_kind(point).is_some(), decided, "{point}");
            if let Some(kind) = decided_kind(point) {
                assert_eq!(deciding_point(kind), Some(point));
            }
        }
        assert_eq!(
            decided_kind(HookPoint::UnknownCommand),
            Some(EventKind::Unknown)
        );
        assert_eq!(decided_kind(HookPoint::Queue), None);
        assert_eq!(deciding_point(EventKind::MessageComplete), None);
        assert_eq!(deciding_point(EventKind::Extension), None);
    }

    fn hook_set(init: fn(&mut Registrar, &PluginConfig) -> Result<(), String>) -> HookSet {
        let decl: &'static PluginDecl = Box::leak(Box::new(PluginDecl {
            name: "hookset",
            version: "1",
            init,
            shutdown: None,
        }));
        let mut registry = Registry::with_classifier(Box::leak(Box::default()));
        registry.add(decl, &toml::Table::new()).unwrap();
        HookSet::of(&registry)
    }

    #[test]
    fn the_hooked_points_choose_the_factory_decisions() {
        let none = hook_set(|_, _| Ok(()));
        assert_eq!(none.decisions(), Decisions::NONE);
        assert!(!none.message());

        let some = hook_set(|r, _| {
            r.on_rcpt(Order::First, |_| Verdict::Continue)
                .on_unknown_command(Order::First, |_| Verdict::Continue)
                .on_queue(Order::First, |_| Verdict::Continue)
                .on_disconnect(Order::First, |_| {});
            Ok(())
        });
        let expected = Decisions::NONE
            .with(EventKind::Rcpt)
            .with(EventKind::Unknown);
        assert_eq!(some.decisions(), expected);
        assert!(some.message());
        assert!(some.has(HookPoint::Disconnect));
        assert!(!some.has(HookPoint::Mail));

        let conditional = hook_set(|r, _| {
            r.esmtp_extension(EsmtpExtension::new("XCOND").advertise_if(|s| s.is_tls()));
            Ok(())
        });
        let expected = Decisions::NONE.with(EventKind::Helo);
        assert_eq!(conditional.decisions(), expected);
    }
}
