//! What a session waits for ([`Await`]) and what it does next ([`Flow`]).

use crate::error::Stage;
use crate::registry::StateId;

/// The reply a session is waiting for, named after what it awaits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Await {
    Greeting,
    EhloReply,
    HeloReply,
    AuthReply,
    StartTlsReply,
    /// The driver runs the TLS handshake; no reply is due.
    TlsHandshake,
    MailReply,
    /// The reply to the RCPT of this recipient (index into the message's recipients).
    RcptReply(usize),
    DataReply,
    FinalReply,
    /// The reply to one BDAT chunk; `last` for `BDAT <n> LAST`.
    BdatReply {
        last: bool,
    },
    /// The reply to a lone `.` sent after an unwanted `354` (no recipient was accepted).
    DiscardReply,
    RsetReply,
    QuitReply,
    /// The reply to a custom state's command.
    CustomReply(StateId),
}

impl Await {
    pub(super) fn stage(self) -> Stage {
        match self {
            Await::Greeting => Stage::Greeting,
            Await::MailReply => Stage::Mail,
            Await::RcptReply(_) => Stage::Rcpt,
            Await::DataReply => Stage::DataInit,
            Await::FinalReply | Await::DiscardReply | Await::BdatReply { last: true } => {
                Stage::Final
            }
            Await::BdatReply { last: false } => Stage::DataBlock,
            _ => Stage::Command,
        }
    }
}

/// What the machine does after a state ran.
#[derive(Debug)]
pub(crate) enum Flow {
    /// Replies are due: wait for input.
    Wait,
    /// Go to the current state's default successor.
    Next,
    /// Go to this state.
    Goto(StateId),
    /// Nothing to do until a message is queued or the session is closed; resume here.
    Park(StateId),
    /// The session is over (after QUIT).
    Done,
}
