//! The chain of client states: Momentum's `register_smtp_client_state`,
//! `smtp_get_state_machine` and `smtp_get_state`.
//!
//! A [`StateRegistry`] starts with the built-in states in their default order
//!
//! `connect → banner → ehlo → starttls → auth → mail → rcpt → data → message → rset → quit`
//!
//! and takes custom states ([`hooks_api::ClientState`] factories) inserted after any state
//! already in the chain, or at the front ([`Anchor::Front`], Momentum's `insert_after = -1`).
//! Insertion is linked-list insertion, as in Momentum: a state inserted after `ehlo` runs
//! right after `ehlo`, before any state inserted there earlier. To run after another custom
//! state, anchor on its name. Freeze the registry into a [`StateMachine`] (shared by every
//! session through an `Arc`) with [`StateRegistry::build`].

use std::fmt;
use std::sync::Arc;

use hooks_api::client::StateFactory;
use hooks_api::{Anchor, ClientState, ClientStateRegistration};

/// A state's id: its index in the registry (built-ins first, in chain order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateId(pub u32);

impl StateId {
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

/// The built-in states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Builtin {
    /// The session starts here; nothing is sent.
    Connect,
    /// Waits for the greeting.
    Banner,
    /// EHLO, falling back to HELO when EHLO is refused with 5xx.
    Ehlo,
    /// STARTTLS when the [`TlsMode`](crate::TlsMode) asks for it, the server offers it and
    /// the driver can run TLS; after the handshake the session goes back to `ehlo`.
    StartTls,
    /// AUTH, when credentials are configured.
    Auth,
    /// MAIL FROM (with PIPELINING: MAIL, every RCPT and DATA in one flight).
    Mail,
    /// RCPT TO, one per recipient.
    Rcpt,
    /// DATA; nothing when the body goes by BDAT (CHUNKING offered and
    /// [`Policy::chunking`](crate::Policy::chunking) on).
    Data,
    /// The message body (after DATA, or as BDAT chunks) and the final reply.
    Message,
    /// RSET, when a transaction must be abandoned.
    Rset,
    /// QUIT, or back to `mail` while messages are queued.
    Quit,
}

impl Builtin {
    /// Every built-in, in default chain order.
    pub const ALL: [Builtin; 11] = [
        Builtin::Connect,
        Builtin::Banner,
        Builtin::Ehlo,
        Builtin::StartTls,
        Builtin::Auth,
        Builtin::Mail,
        Builtin::Rcpt,
        Builtin::Data,
        Builtin::Message,
        Builtin::Rset,
        Builtin::Quit,
    ];

    /// The registered name (lower case).
    pub fn name(self) -> &'static str {
        match self {
            Builtin::Connect => "connect",
            Builtin::Banner => "banner",
            Builtin::Ehlo => "ehlo",
            Builtin::StartTls => "starttls",
            Builtin::Auth => "auth",
            Builtin::Mail => "mail",
            Builtin::Rcpt => "rcpt",
            Builtin::Data => "data",
            Builtin::Message => "message",
            Builtin::Rset => "rset",
            Builtin::Quit => "quit",
        }
    }

    /// The built-in's fixed id.
    pub fn id(self) -> StateId {
        StateId(Builtin::ALL.iter().position(|b| *b == self).unwrap_or(0) as u32)
    }
}

/// What a registry entry runs.
#[derive(Clone)]
pub enum StateKind {
    /// A built-in state.
    Builtin(Builtin),
    /// A custom state: the factory makes one instance per session.
    Custom(Arc<StateFactory>),
}

impl fmt::Debug for StateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateKind::Builtin(b) => f.debug_tuple("Builtin").field(b).finish(),
            StateKind::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// One state of the chain (Momentum's `smtp_state`).
#[derive(Debug, Clone)]
pub struct StateEntry {
    id: StateId,
    name: String,
    kind: StateKind,
    next: Option<StateId>,
}

impl StateEntry {
    /// The state's id.
    pub fn id(&self) -> StateId {
        self.id
    }

    /// The state's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Built-in or custom.
    pub fn kind(&self) -> &StateKind {
        &self.kind
    }

    /// The default successor, `None` for the last state.
    pub fn next(&self) -> Option<StateId> {
        self.next
    }

    /// The built-in this entry is, if it is one.
    pub fn builtin(&self) -> Option<Builtin> {
        match self.kind {
            StateKind::Builtin(b) => Some(b),
            StateKind::Custom(_) => None,
        }
    }
}

/// Why a state could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// `insert_after` names no state in the chain (yet).
    #[error("client state {state:?}: no state named {anchor:?} to insert after")]
    UnknownAnchor {
        /// The state being registered.
        state: String,
        /// The anchor that was not found.
        anchor: String,
    },
    /// A state with this name exists already (built-in names are taken).
    #[error("client state {0:?} is already registered")]
    DuplicateName(String),
    /// The name is empty, longer than 64 bytes, or holds a space or control character.
    #[error("invalid client state name {0:?}")]
    InvalidName(String),
}

/// The mutable chain of states. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct StateRegistry {
    entries: Vec<StateEntry>,
    head: StateId,
}

impl Default for StateRegistry {
    fn default() -> Self {
        StateRegistry::new()
    }
}

impl StateRegistry {
    /// The built-in chain.
    pub fn new() -> Self {
        let entries = Builtin::ALL
            .iter()
            .enumerate()
            .map(|(i, b)| StateEntry {
                id: StateId(i as u32),
                name: b.name().to_owned(),
                kind: StateKind::Builtin(*b),
                next: (i + 1 < Builtin::ALL.len()).then(|| StateId(i as u32 + 1)),
            })
            .collect();
        StateRegistry {
            entries,
            head: Builtin::Connect.id(),
        }
    }

    /// The built-in chain plus every client state the plugins in `registry` registered.
    /// Registrations are applied in order; one whose anchor is a custom state registered
    /// later is retried once the others are in, so plugin load order does not matter.
    pub fn from_hooks(registry: &hooks_api::Registry) -> Result<Self, RegistryError> {
        let mut chain = StateRegistry::new();
        chain.register_all(registry.client_states())?;
        Ok(chain)
    }

    /// Registers every registration, retrying those whose anchor is not in yet; fails with
    /// the first error once no more progress can be made.
    pub fn register_all(
        &mut self,
        registrations: &[ClientStateRegistration],
    ) -> Result<(), RegistryError> {
        let mut pending: Vec<&ClientStateRegistration> = registrations.iter().collect();
        while !pending.is_empty() {
            let before = pending.len();
            let mut stuck = Vec::new();
            let mut first_error = None;
            for r in pending {
                match self.register(r) {
                    Ok(_) => {}
                    Err(e @ RegistryError::UnknownAnchor { .. }) => {
                        first_error.get_or_insert(e);
                        stuck.push(r);
                    }
                    Err(e) => return Err(e),
                }
            }
            if stuck.len() == before {
                if let Some(e) = first_error {
                    return Err(e);
                }
            }
            pending = stuck;
        }
        Ok(())
    }

    /// Registers a plugin's state (from [`hooks_api::Registry::client_states`]).
    pub fn register(&mut self, r: &ClientStateRegistration) -> Result<StateId, RegistryError> {
        let (name, anchor) = (r.name().to_owned(), r.insert_after().clone());
        let r = r.clone();
        self.register_state(&name, anchor, move || r.create())
    }

    /// Momentum's `register_smtp_client_state`: inserts a state named `name` right after
    /// `insert_after` and returns its id. `factory` makes one instance per session.
    pub fn register_state<F>(
        &mut self,
        name: &str,
        insert_after: Anchor,
        factory: F,
    ) -> Result<StateId, RegistryError>
    where
        F: Fn() -> Box<dyn ClientState> + Send + Sync + 'static,
    {
        if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(RegistryError::InvalidName(name.to_owned()));
        }
        if self.find(name).is_some() {
            return Err(RegistryError::DuplicateName(name.to_owned()));
        }
        let id = StateId(self.entries.len() as u32);
        let next = match &insert_after {
            Anchor::Front => {
                let old_head = self.head;
                self.head = id;
                Some(old_head)
            }
            Anchor::After(anchor) => {
                let Some(prev) = self.find(anchor) else {
                    return Err(RegistryError::UnknownAnchor {
                        state: name.to_owned(),
                        anchor: anchor.clone(),
                    });
                };
                let prev = &mut self.entries[prev.index()];
                prev.next.replace(id)
            }
        };
        self.entries.push(StateEntry {
            id,
            name: name.to_owned(),
            kind: StateKind::Custom(Arc::new(factory)),
            next,
        });
        Ok(id)
    }

    /// The id of the state named `name` (names compare exactly).
    pub fn find(&self, name: &str) -> Option<StateId> {
        self.entries.iter().find(|e| e.name == name).map(|e| e.id)
    }

    /// Momentum's `smtp_get_state`.
    pub fn get_state(&self, id: StateId) -> Option<&StateEntry> {
        self.entries.get(id.index())
    }

    /// Momentum's `smtp_get_state_machine`: the head of the chain.
    pub fn state_machine(&self) -> StateId {
        self.head
    }

    /// The states in chain order.
    pub fn chain(&self) -> Vec<&StateEntry> {
        let mut out = Vec::with_capacity(self.entries.len());
        let mut at = Some(self.head);
        while let Some(id) = at {
            let Some(entry) = self.get_state(id) else {
                break;
            };
            out.push(entry);
            at = entry.next;
            if out.len() > self.entries.len() {
                break;
            }
        }
        out
    }

    /// Freezes the chain for sessions.
    pub fn build(self) -> Arc<StateMachine> {
        let chain = self.chain();
        let pos = |b: Builtin| chain.iter().position(|e| e.id == b.id()).unwrap_or(0);
        // Custom states between MAIL and the body need a reply per command: no pipelining.
        let customs_in_envelope = chain[pos(Builtin::Mail)..pos(Builtin::Message)]
            .iter()
            .any(|e| e.builtin().is_none());
        Arc::new(StateMachine {
            registry: self,
            customs_in_envelope,
        })
    }
}

/// A frozen [`StateRegistry`], shared by sessions.
#[derive(Debug)]
pub struct StateMachine {
    registry: StateRegistry,
    customs_in_envelope: bool,
}

impl StateMachine {
    /// The built-in chain, frozen.
    pub fn builtin() -> Arc<StateMachine> {
        StateRegistry::new().build()
    }

    /// The registry it was built from.
    pub fn registry(&self) -> &StateRegistry {
        &self.registry
    }

    /// Momentum's `smtp_get_state`.
    pub fn get_state(&self, id: StateId) -> Option<&StateEntry> {
        self.registry.get_state(id)
    }

    /// Momentum's `smtp_get_state_machine`: the head of the chain.
    pub fn state_machine(&self) -> StateId {
        self.registry.head
    }

    /// The id of the state named `name`.
    pub fn find(&self, name: &str) -> Option<StateId> {
        self.registry.find(name)
    }

    /// The default successor of `id`.
    pub fn successor(&self, id: StateId) -> Option<StateId> {
        self.get_state(id).and_then(StateEntry::next)
    }

    /// Momentum's `smtp_next_state`: moves `session` to `state`, or to its current state's
    /// default successor when `None`. Valid only while no reply is due (for example between
    /// messages); see [`Session::next_state`](crate::Session::next_state).
    pub fn next_state(
        &self,
        session: &mut crate::Session,
        state: Option<StateId>,
    ) -> Result<(), crate::Error> {
        session.next_state(state)
    }

    /// `true` when a custom state sits between `mail` and `message`, which turns pipelining
    /// off (each of its commands needs its reply before the next command).
    pub fn customs_in_envelope(&self) -> bool {
        self.customs_in_envelope
    }

    /// A fresh instance of every custom state, indexed by id (`None` for built-ins).
    pub(crate) fn instantiate(&self) -> Vec<Option<Box<dyn ClientState>>> {
        self.registry
            .entries
            .iter()
            .map(|e| match &e.kind {
                StateKind::Builtin(_) => None,
                StateKind::Custom(factory) => Some(factory()),
            })
            .collect()
    }
}
