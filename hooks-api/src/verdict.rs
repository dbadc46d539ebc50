//! What a hook answers: [`Verdict`], and the machinery of *pending* verdicts
//! ([`Pending`], [`Completer`], [`PendingSource`]).
//!
//! # Chain rules
//!
//! The hooks of one hook point run in their [order](crate::Order). For each hook:
//!
//! | the hook returns | what happens |
//! |---|---|
//! | [`Verdict::Continue`] | the next hook runs; when no hook is left, the chain's result is `Continue` and the host applies its default (see each hook point in [`crate::context`]) |
//! | [`Verdict::Accept`] | the chain ends **with success**: later hooks do not run; the host sends its positive reply, or the one the verdict carries |
//! | [`Verdict::Reject`] | the chain ends; the host sends the 5xx reply |
//! | [`Verdict::TempFail`] | the chain ends; the host sends the 4xx reply |
//! | [`Verdict::Disconnect`] | the chain ends; the host sends the reply and closes the connection |
//! | [`Verdict::Pending`] | the chain pauses; the host parks the connection (without blocking its thread) until the hook's [`Completer`] delivers the real verdict, then resumes with `Registry::resume_*`: a completed `Continue` runs the rest of the chain, anything else is final |
//! | *(the hook panics)* | the panic is caught; the chain ends with `TempFail(451 4.3.0)` and the log names the plugin and the hook point |
//!
//! The disconnect hook point is *void*: every hook runs and verdicts are ignored.
//!
//! # Validation
//!
//! A verdict whose reply does not fit its kind (a `Reject` with a 4xx code, an `Accept` with a
//! 5xx reply, a `Disconnect` with a 2xx reply, ...) is a programming error in the plugin. It is
//! never trusted and never panics: the constructors and the dispatcher turn it into
//! `TempFail(451 4.3.0 Local configuration error, try again later)` — the safe choice for mail,
//! which the client retries — and the dispatcher logs the plugin's name at ERROR level.
//!
//! | kind | reply must be |
//! |---|---|
//! | `Accept(Some(reply))` | 2xx |
//! | `Reject` | 5xx |
//! | `TempFail` | 4xx |
//! | `Disconnect` | 4xx or 5xx (421 is what RFC 5321 §3.8 prescribes; 554 is allowed for policy closes) |

use std::fmt;
use std::sync::mpsc;
use std::time::Duration;

use smtp_proto::{EnhancedStatus, Reply};

/// The reply code and status the host uses for a misbehaving or failed plugin.
const LOCAL_ERROR_TEXT: &str = "Local configuration error, try again later";

/// The verdict of one hook. See the [module docs](self) for the chain rules.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No opinion: the next hook decides.
    Continue,
    /// Success; ends the chain. `Some(reply)` replaces the host's positive reply (must be 2xx),
    /// which an unknown-command or extension hook needs to answer at all.
    Accept(Option<Reply>),
    /// Permanent refusal with a 5xx reply; ends the chain.
    Reject(Reply),
    /// Temporary refusal with a 4xx reply; ends the chain.
    TempFail(Reply),
    /// Send the reply (421, or a 4xx/5xx) and close the connection; ends the chain.
    Disconnect(Reply),
    /// The answer comes later through the [`Completer`] obtained with
    /// [`Ctx::pending`](crate::Ctx::pending).
    Pending(Pending),
}

impl Verdict {
    /// `Accept` with the host's default positive reply.
    pub fn accept() -> Verdict {
        Verdict::Accept(None)
    }

    /// `Accept` with this reply; `code` must be 2xx and `status` (`""` for none) of class 2,
    /// else the result is the local-error temp-fail of the [module docs](self).
    pub fn accept_with(code: u16, status: &str, text: &str) -> Verdict {
        match build(code, status, text, 2) {
            Some(reply) => Verdict::Accept(Some(reply)),
            None => Verdict::local_error(),
        }
    }

    /// `Reject` with a 5xx reply, for example `Verdict::reject(550, "5.7.1", "Not allowed")`.
    /// `status` may be `""` for none. An invalid or non-5xx reply gives the local-error
    /// temp-fail instead (never a panic).
    pub fn reject(code: u16, status: &str, text: &str) -> Verdict {
        match build(code, status, text, 5) {
            Some(reply) => Verdict::Reject(reply),
            None => Verdict::local_error(),
        }
    }

    /// `TempFail` with a 4xx reply, for example `Verdict::temp_fail(451, "4.3.0", "Try later")`.
    /// An invalid or non-4xx reply gives the local-error temp-fail instead.
    pub fn temp_fail(code: u16, status: &str, text: &str) -> Verdict {
        match build(code, status, text, 4) {
            Some(reply) => Verdict::TempFail(reply),
            None => Verdict::local_error(),
        }
    }

    /// `Disconnect` with `421 4.3.2 <text>`: the host sends it and closes the connection.
    pub fn disconnect(text: &str) -> Verdict {
        Verdict::Disconnect(Reply::new(421, Some(EnhancedStatus::new(4, 3, 2)), text))
    }

    /// The verdict the host substitutes for a misbehaving plugin:
    /// `TempFail(451 4.3.0 Local configuration error, try again later)`.
    pub fn local_error() -> Verdict {
        Verdict::TempFail(local_error_reply())
    }

    /// The verdict for a hook that panicked: `TempFail(451 4.3.0 ...)`.
    pub fn panicked() -> Verdict {
        Verdict::TempFail(Reply::new(
            451,
            Some(EnhancedStatus::new(4, 3, 0)),
            "Temporary local problem, try again later",
        ))
    }

    /// `true` for [`Verdict::Continue`].
    pub fn is_continue(&self) -> bool {
        matches!(self, Verdict::Continue)
    }

    /// The reply this verdict carries, if any.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Verdict::Accept(reply) => reply.as_ref(),
            Verdict::Reject(r) | Verdict::TempFail(r) | Verdict::Disconnect(r) => Some(r),
            Verdict::Continue | Verdict::Pending(_) => None,
        }
    }

    /// Checks the reply class against the kind (see the [module docs](self)); returns the
    /// verdict unchanged when it fits, else `Err(local_error)` for the caller to log.
    pub fn validated(self) -> Result<Verdict, Verdict> {
        let fits = match &self {
            Verdict::Continue | Verdict::Pending(_) | Verdict::Accept(None) => true,
            Verdict::Accept(Some(r)) => r.code() / 100 == 2,
            Verdict::Reject(r) => r.code() / 100 == 5,
            Verdict::TempFail(r) => r.code() / 100 == 4,
            Verdict::Disconnect(r) => matches!(r.code() / 100, 4 | 5),
        };
        if fits {
            Ok(self)
        } else {
            Err(Verdict::local_error())
        }
    }
}

fn local_error_reply() -> Reply {
    Reply::new(451, Some(EnhancedStatus::new(4, 3, 0)), LOCAL_ERROR_TEXT)
}

fn build(code: u16, status: &str, text: &str, class: u16) -> Option<Reply> {
    if code / 100 != class {
        return None;
    }
    let status = if status.is_empty() {
        None
    } else {
        Some(EnhancedStatus::parse(status)?)
    };
    Reply::try_new(code, status, text).ok()
}

/// A verdict that will be known later. Obtained with [`Ctx::pending`](crate::Ctx::pending)
/// together with its [`Completer`]; return it as `Verdict::Pending(pending)`.
///
/// The dispatcher records where the chain stopped; the host keeps this value while the
/// connection waits and hands it back to `Registry::resume_*` with the completed verdict.
#[derive(Debug, PartialEq, Eq)]
pub struct Pending {
    pub(crate) ticket: u64,
    pub(crate) resume_at: usize,
}

impl Pending {
    /// The host's ticket for this wait: the value its [`PendingSource`] returned with the
    /// completion, so the host can match a completion to the connection waiting for it.
    pub fn ticket(&self) -> u64 {
        self.ticket
    }

    /// The index, in the hook point's chain, of the hook that runs next if the completed
    /// verdict is `Continue`.
    pub fn resume_at(&self) -> usize {
        self.resume_at
    }
}

/// The host's notification for one pending verdict: called at most once, from any thread.
pub type Completion = Box<dyn FnOnce(Verdict) + Send>;

/// What the host gives contexts so hooks can go pending: the server wires a
/// crossbeam-channel sender and a `mio::Waker` behind it.
pub trait PendingSource {
    /// Makes the notification for one pending verdict and the ticket identifying it.
    fn completion(&self) -> (u64, Completion);
}

/// The hook's handle on a pending verdict. Move it to a worker thread and call
/// [`complete`](Completer::complete) once the answer is known.
///
/// Completing twice is impossible (`complete` consumes the completer). A completer dropped
/// without completing — a plugin bug, or a worker that panicked — completes with
/// `TempFail(451 4.3.0)`, so no connection can hang on a lost completer.
pub struct Completer {
    notify: Option<Completion>,
}

impl Completer {
    pub(crate) fn new(notify: Option<Completion>) -> Self {
        Completer { notify }
    }

    /// Delivers the verdict to the waiting connection. Completing with `Pending` is
    /// meaningless and delivers the local-error temp-fail instead.
    pub fn complete(mut self, verdict: Verdict) {
        let verdict = match verdict {
            Verdict::Pending(_) => Verdict::local_error(),
            other => other,
        };
        if let Some(notify) = self.notify.take() {
            notify(verdict);
        }
    }
}

impl Drop for Completer {
    fn drop(&mut self) {
        if let Some(notify) = self.notify.take() {
            notify(Verdict::temp_fail(
                451,
                "4.3.0",
                "Temporary local problem, try again later",
            ));
        }
    }
}

impl fmt::Debug for Completer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completer")
            .field("armed", &self.notify.is_some())
            .finish()
    }
}

/// A [`PendingSource`] over a standard channel: for tests, tools and simple embedders that
/// can afford to wait on a thread. Completions arrive as `(ticket, verdict)`.
#[derive(Debug)]
pub struct ChannelPending {
    tx: mpsc::Sender<(u64, Verdict)>,
    rx: mpsc::Receiver<(u64, Verdict)>,
    next: std::sync::atomic::AtomicU64,
}

impl Default for ChannelPending {
    fn default() -> Self {
        Self::new()
    }
}

impl ChannelPending {
    /// A new source with its own channel.
    pub fn new() -> Self {
        let (tx, rx) = mpsc::channel();
        ChannelPending {
            tx,
            rx,
            next: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// Waits up to `timeout` for the next completion.
    pub fn wait(&self, timeout: Duration) -> Option<(u64, Verdict)> {
        self.rx.recv_timeout(timeout).ok()
    }
}

impl PendingSource for ChannelPending {
    fn completion(&self) -> (u64, Completion) {
        let ticket = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tx = self.tx.clone();
        (
            ticket,
            Box::new(move |verdict| {
                let _ = tx.send((ticket, verdict));
            }),
        )
    }
}

#[cfg(test)]
// Tests complete pending hooks from other threads, as a worker would.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    fn code(v: &Verdict) -> u16 {
        v.reply().map_or(0, Reply::code)
    }

    #[test]
    fn constructors_build_the_right_reply() {
        let v = Verdict::reject(550, "5.7.1", "Not allowed");
        assert!(matches!(&v, Verdict::Reject(r) if r.code() == 550
            && r.status() == Some(EnhancedStatus::new(5, 7, 1)) && r.text() == "Not allowed"));
        assert!(
            matches!(Verdict::temp_fail(450, "", "busy"), Verdict::TempFail(r) if r.status().is_none())
        );
        assert!(matches!(Verdict::disconnect("bye"), Verdict::Disconnect(r) if r.code() == 421));
        assert!(matches!(
            Verdict::accept_with(250, "2.1.5", "ok"),
            Verdict::Accept(Some(_))
        ));
        assert_eq!(Verdict::accept(), Verdict::Accept(None));
    }

    #[test]
    fn wrong_classes_become_local_error() {
        for v in [
            Verdict::reject(450, "4.1.1", "x"),
            Verdict::reject(550, "4.1.1", "x"),
            Verdict::reject(550, "bogus", "x"),
            Verdict::reject(999, "", "x"),
            Verdict::temp_fail(550, "5.0.0", "x"),
            Verdict::accept_with(550, "", "x"),
        ] {
            assert_eq!(v, Verdict::local_error());
            assert_eq!(code(&v), 451);
        }
    }

    #[test]
    fn validation_of_hand_built_verdicts() {
        let r4 = Reply::new(450, None, "x");
        let r5 = Reply::new(550, None, "x");
        let r2 = Reply::new(250, None, "x");
        assert!(Verdict::Reject(r4.clone()).validated().is_err());
        assert!(Verdict::Reject(r5.clone()).validated().is_ok());
        assert!(Verdict::TempFail(r5.clone()).validated().is_err());
        assert!(Verdict::Accept(Some(r5.clone())).validated().is_err());
        assert!(Verdict::Accept(Some(r2.clone())).validated().is_ok());
        assert!(Verdict::Disconnect(r2).validated().is_err());
        assert!(Verdict::Disconnect(r5).validated().is_ok());
        assert!(Verdict::Disconnect(r4).validated().is_ok());
        assert!(Verdict::Continue.validated().is_ok());
    }

    #[test]
    fn completer_delivers_from_another_thread() {
        let source = ChannelPending::new();
        let (ticket, notify) = source.completion();
        let completer = Completer::new(Some(notify));
        std::thread::spawn(move || completer.complete(Verdict::reject(550, "5.1.1", "no")))
            .join()
            .unwrap();
        let (got, verdict) = source.wait(Duration::from_secs(5)).unwrap();
        assert_eq!(got, ticket);
        assert_eq!(code(&verdict), 550);
    }

    #[test]
    fn dropped_completer_temp_fails() {
        let source = ChannelPending::new();
        let (_, notify) = source.completion();
        drop(Completer::new(Some(notify)));
        let (_, verdict) = source.wait(Duration::from_secs(5)).unwrap();
        assert!(matches!(&verdict, Verdict::TempFail(r) if r.code() == 451
            && r.status() == Some(EnhancedStatus::new(4, 3, 0))));
    }

    #[test]
    fn completing_with_pending_is_refused() {
        let source = ChannelPending::new();
        let (_, notify) = source.completion();
        let pending = Pending {
            ticket: 9,
            resume_at: 0,
        };
        Completer::new(Some(notify)).complete(Verdict::Pending(pending));
        let (_, verdict) = source.wait(Duration::from_secs(5)).unwrap();
        assert_eq!(verdict, Verdict::local_error());
    }
}
