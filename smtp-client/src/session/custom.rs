//! Custom states: what they see of the session ([`ClientContext`]) and how their
//! [`StateAction`]s move the machine.

use std::net::SocketAddr;

use hooks_api::{ClientArgs, ClientContext, ClientState, StateAction};
use smtp_proto::{Capabilities, Reply};

use super::{Await, Flow, Session};
use crate::error::Error;
use crate::message::local_reply;
use crate::registry::{Builtin, StateId};

/// What the client shows a custom state.
pub(crate) struct Shared {
    pub(crate) caps: Capabilities,
    pub(crate) session_args: ClientArgs,
    pub(crate) message_args: ClientArgs,
    pub(crate) peer: Option<SocketAddr>,
    pub(crate) peer_name: Option<String>,
    pub(crate) tls_active: bool,
}

impl ClientContext for Shared {
    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }
    fn session_args(&mut self) -> &mut ClientArgs {
        &mut self.session_args
    }
    fn message_args(&mut self) -> &mut ClientArgs {
        &mut self.message_args
    }
    fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }
    fn peer_name(&self) -> Option<&str> {
        self.peer_name.as_deref()
    }
    fn tls_active(&self) -> bool {
        self.tls_active
    }
}

impl Session {
    pub(super) fn with_custom(
        &mut self,
        id: StateId,
        f: impl FnOnce(&mut dyn ClientState, &mut dyn ClientContext) -> StateAction,
    ) -> StateAction {
        // A state that panicked is dropped: it answers `panicked()` from then on. States
        // from hooks-api registrations are guarded there too; this covers the ones given to
        // `register_state` directly.
        let Some(mut state) = self.customs.get_mut(id.index()).and_then(Option::take) else {
            return StateAction::panicked();
        };
        let shared = &mut self.shared;
        let run = std::panic::AssertUnwindSafe(|| f(state.as_mut(), shared));
        match std::panic::catch_unwind(run) {
            Ok(action) => {
                self.customs[id.index()] = Some(state);
                action
            }
            Err(_) => {
                log::error!("client: custom state {} panicked; failing", id.0);
                StateAction::panicked()
            }
        }
    }

    pub(super) fn on_custom_reply(&mut self, id: StateId, reply: &Reply) -> Flow {
        let action = self.with_custom(id, |state, cx| state.on_reply(cx, reply));
        self.custom_action(id, action)
    }

    pub(super) fn custom_action(&mut self, id: StateId, action: StateAction) -> Flow {
        let name = self
            .machine
            .get_state(id)
            .map_or("?", |e| e.name())
            .to_owned();
        match action {
            StateAction::Send(bytes) => {
                log::debug!("client: custom state {name} sends a command");
                self.send(&bytes, Await::CustomReply(id));
                Flow::Wait
            }
            StateAction::Next => Flow::Next,
            StateAction::Skip => {
                log::debug!("client: custom state {name} skipped");
                Flow::Next
            }
            StateAction::Goto(target) => match self.machine.find(&target) {
                Some(target) => Flow::Goto(target),
                None => {
                    log::warn!("client: state {name} went to unknown state {target:?}");
                    self.state_failed(local_reply(
                        451,
                        (4, 3, 0),
                        "client state went to an unknown state",
                    ))
                }
            },
            StateAction::Fail { reply } => {
                log::info!(
                    "client: state {name} failed with {} {}",
                    reply.code(),
                    reply.text()
                );
                self.state_failed(reply)
            }
        }
    }

    /// A state failed: the current message if there is one, else the whole session.
    fn state_failed(&mut self, reply: Reply) -> Flow {
        if self.txn.as_ref().is_some_and(|t| !t.finished) {
            self.fail_message(&reply, None);
            Flow::Goto(Builtin::Rset.id())
        } else {
            self.refuse(Error::Refused(reply))
        }
    }
}
