//! What a decision the factory waits for will complete: the parked command and its data.
//!
//! What it does not do: decide anything (the driver does) or hold replies.

use smtp_proto::address::{ForwardPath, Path};
use smtp_proto::params::Params;

use super::EventKind;

/// What a pending decision will complete, with the data it needs.
#[derive(Debug)]
pub(super) enum Pending {
    Connect,
    Helo {
        name: String,
        extended: bool,
    },
    Auth {
        authcid: String,
    },
    Mail {
        from: Path<'static>,
        params: Params<'static>,
    },
    Rcpt {
        to: ForwardPath<'static>,
        params: Params<'static>,
    },
    DataStart,
    /// The DataStart decision for a message sent with BDAT: then this chunk is read.
    BdatStart {
        size: u64,
        last: bool,
    },
    MessageComplete,
    Extension,
    Unknown,
}

impl Pending {
    pub(super) fn kind(&self) -> EventKind {
        match self {
            Pending::Connect => EventKind::Connect,
            Pending::Helo { .. } => EventKind::Helo,
            Pending::Auth { .. } => EventKind::Auth,
            Pending::Mail { .. } => EventKind::Mail,
            Pending::Rcpt { .. } => EventKind::Rcpt,
            Pending::DataStart | Pending::BdatStart { .. } => EventKind::DataStart,
            Pending::MessageComplete => EventKind::MessageComplete,
            Pending::Extension => EventKind::Extension,
            Pending::Unknown => EventKind::Unknown,
        }
    }
}
