//! The crate's one error type, grouping every module's error by the module that raised it.
//!
//! Each module has a small, `Copy` error of its own (the parser's view: what exactly was wrong);
//! [`Error`] wraps them so callers that handle several parsers can use `?` and one type.
//! [`Error::reply`] gives the reply a server sends for the error, and [`Error::is_peer_fault`]
//! tells a peer's mistake from a caller's.

use crate::address::{AddressError, AddressRole};
use crate::classify::ClassifyError;
use crate::command::CommandError;
use crate::params::{ParamError, XtextError};
use crate::reply::ReplyError;
use crate::sasl::SaslError;
use crate::status::{EnhancedStatus, ErrorReply};

/// Any error raised by `smtp-proto`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A command line could not be parsed (the peer sent garbage or broke the syntax).
    #[error(transparent)]
    Command(#[from] CommandError),
    /// A reply could not be parsed, or exceeded a limit.
    #[error(transparent)]
    Reply(#[from] ReplyError),
    /// An address (outside a MAIL/RCPT command) could not be parsed.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// An ESMTP parameter could not be parsed.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// An xtext value could not be decoded.
    #[error(transparent)]
    Xtext(#[from] XtextError),
    /// A SASL exchange failed.
    #[error(transparent)]
    Sasl(#[from] SaslError),
    /// The bounce-class registry refused a registration (a caller's mistake).
    #[error(transparent)]
    Classify(#[from] ClassifyError),
}

impl Error {
    /// The reply a server sends for this error.
    ///
    /// Address errors outside a command are answered as recipient-syntax errors (`501 5.1.3`);
    /// [`CommandError::reply`] knows whether an address was a sender or a recipient. A
    /// registration error is the caller's fault and answers `451 4.3.0`.
    pub fn reply(&self) -> ErrorReply {
        match self {
            Error::Command(e) => e.reply(),
            Error::Reply(e) => e.reply(),
            Error::Address(e) => e.reply(AddressRole::Recipient),
            Error::Param(e) => e.reply(),
            Error::Xtext(_) => ErrorReply::new(
                501,
                EnhancedStatus::new(5, 5, 4),
                "Syntax error in parameters: malformed xtext",
            ),
            Error::Sasl(e) => e.reply(),
            Error::Classify(_) => ErrorReply::new(
                451,
                EnhancedStatus::new(4, 3, 0),
                "Local error in processing",
            ),
        }
    }

    /// True when the error is the peer's fault (bad input), false when it is the caller's
    /// (misuse of the API or a refused registration).
    pub fn is_peer_fault(&self) -> bool {
        match self {
            Error::Reply(e) => e.is_peer_fault(),
            Error::Classify(_) => false,
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Command, ParseOptions};

    #[test]
    fn wraps_module_errors_and_keeps_their_replies() {
        let err: Error = Command::parse(b"MAIL FROM:<a b@c>\r\n", &ParseOptions::default())
            .unwrap_err()
            .into();
        assert_eq!(err.reply().code, 501);
        assert_eq!(err.reply().status, EnhancedStatus::new(5, 1, 7));
        assert!(err.is_peer_fault());

        let err: Error = ClassifyError::InvalidId(0).into();
        assert_eq!(err.reply().code, 451);
        assert!(!err.is_peer_fault());

        let err: Error = AddressError::Syntax.into();
        assert_eq!(err.reply().status, EnhancedStatus::new(5, 1, 3));
    }
}
