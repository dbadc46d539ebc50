//! Scripted hook answers for the pair's server: per hook point ([`EventKind`]), a queue of
//! [`Answer`]s taken one per event, in order, then the default answer.
//!
//! It stands in for the plugin hooks the real server would run: it does not run `hooks-api`
//! hooks, and it knows nothing of sockets or clocks (an [`Answer::After`] is a duration; the
//! pair turns it into a deadline on its simulated clock).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use smtp_server::factory::{Decision, Decisions, EventKind};

/// How the pair's server answers one event that needs a decision: what a hook verdict
/// would become, with the timing of a hook that went pending.
///
/// At [`EventKind::MessageComplete`], [`Decision::Continue`] and [`Decision::Accept`] mean
/// "commit to the spool" (the default queue hook) and answer `250` with the queue id; any
/// other decision discards the spooled copy and is sent as is. A held answer ([`After`],
/// [`Never`]) is dropped when the connection closes first, and at the end of data the
/// spooled copy with it (nobody was told `250`).
///
/// [`After`]: Answer::After
/// [`Never`]: Answer::Never
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Answer at once (an inline hook).
    Now(Decision),
    /// Go pending and answer after this much simulated time (a hook finished later on a
    /// worker; at the end of data, a slow spool commit).
    After(Duration, Decision),
    /// Go pending and never answer: the factory's decision timeout or the client's reply
    /// timeout ends the wait.
    Never,
}

impl Answer {
    /// [`Answer::Now`] with [`Decision::Continue`]: what every unscripted event gets.
    pub const CONTINUE: Answer = Answer::Now(Decision::Continue);
}

/// The answers still to give, per hook point.
#[derive(Debug, Default)]
pub(crate) struct Script {
    queues: HashMap<EventKind, VecDeque<Answer>>,
    /// Every kind ever scripted: the factories made from now on decide them.
    decided: Decisions,
}

impl Script {
    /// Appends `answers` to the queue of `kind`.
    pub(crate) fn push(&mut self, kind: EventKind, answers: impl IntoIterator<Item = Answer>) {
        self.queues.entry(kind).or_default().extend(answers);
        // Always decided, or never: `set` leaves those as they are.
        self.decided.set(kind, true);
    }

    /// The next answer for an event of `kind` ([`Answer::CONTINUE`] once the queue is empty).
    pub(crate) fn next(&mut self, kind: EventKind) -> Answer {
        self.queues
            .get_mut(&kind)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Answer::CONTINUE)
    }

    /// `base` with every scripted kind decided as well.
    pub(crate) fn decisions(&self, base: Decisions) -> Decisions {
        base.union(self.decided)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smtp_proto::Reply;

    #[test]
    fn answers_come_in_order_then_the_default() {
        let mut script = Script::default();
        let busy = Decision::TempFail(Reply::new(450, None, "busy"));
        script.push(
            EventKind::Rcpt,
            [Answer::Now(busy.clone()), Answer::Now(Decision::Accept)],
        );
        assert_eq!(script.next(EventKind::Rcpt), Answer::Now(busy));
        assert_eq!(script.next(EventKind::Mail), Answer::CONTINUE);
        assert_eq!(script.next(EventKind::Rcpt), Answer::Now(Decision::Accept));
        assert_eq!(script.next(EventKind::Rcpt), Answer::CONTINUE);
    }

    #[test]
    fn scripted_kinds_are_decided() {
        let mut script = Script::default();
        assert_eq!(script.decisions(Decisions::NONE), Decisions::NONE);
        script.push(EventKind::Rcpt, []);
        script.push(EventKind::MessageComplete, [Answer::Never]);
        let d = script.decisions(Decisions::NONE.with(EventKind::Helo));
        assert_eq!(
            d,
            Decisions::NONE.with(EventKind::Helo).with(EventKind::Rcpt)
        );
    }
}
