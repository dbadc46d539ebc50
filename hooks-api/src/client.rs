//! Custom states for the SMTP client state machine (Momentum's `register_smtp_client_state`).
//!
//! The client (`smtp-client`) owns the chain of states — connect, banner, EHLO, STARTTLS,
//! AUTH, MAIL, RCPT, DATA, message, RSET, QUIT — and runs it. A plugin inserts a
//! [`ClientState`] after a built-in or custom state ([`Anchor`]) with
//! [`Registrar::client_state`](crate::Registrar::client_state); the client creates one
//! instance per connection with the registered factory.
//!
//! A state's life: the client calls [`ClientState::enter`]; a [`StateAction::Send`] writes
//! the command and the client calls [`ClientState::on_reply`] with the server's reply; any
//! other action moves the machine on. Per-session and per-message [`ClientArgs`] carry the
//! ESMTP parameters the client adds to MAIL FROM / RCPT TO (Momentum's
//! `smtp_client_args_*`).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use smtp_proto::{Capabilities, EnhancedStatus, Reply};

use crate::hook::guarded;

/// What the client does after a state's `enter` or `on_reply`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateAction {
    /// Write these bytes (one command with its CRLF, see [`StateAction::command`]), then call
    /// `on_reply` with the reply.
    Send(Vec<u8>),
    /// Go to the default successor.
    Next,
    /// Go to the state with this name; an unknown name fails the message.
    Goto(String),
    /// The state does not apply here (for example: the capability it needs is not
    /// advertised): go to the default successor, logged as skipped rather than done.
    Skip,
    /// Fail the message (or the connection, before MAIL) with this reply, classified like a
    /// server reply.
    Fail {
        /// The failure, for the log and the bounce class.
        reply: Reply,
    },
}

impl StateAction {
    /// `Send` of one command line: `line` plus CRLF. A line containing CR or LF would
    /// inject a second command, so it gives a `Fail` (`554 5.3.0`) instead.
    pub fn command(line: &str) -> StateAction {
        if line.bytes().any(|b| b == b'\r' || b == b'\n') {
            return StateAction::Fail {
                reply: Reply::new(
                    554,
                    Some(EnhancedStatus::new(5, 3, 0)),
                    "client state built a command with a line break",
                ),
            };
        }
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        StateAction::Send(bytes)
    }

    /// The `Fail` the client uses for a state that panicked: `451 4.3.0`.
    pub fn panicked() -> StateAction {
        StateAction::Fail {
            reply: Reply::new(
                451,
                Some(EnhancedStatus::new(4, 3, 0)),
                "client state failed, try again later",
            ),
        }
    }
}

/// What the client lets a state see and change. Implemented by `smtp-client`.
pub trait ClientContext {
    /// The server's EHLO capabilities (empty after HELO).
    fn capabilities(&self) -> &Capabilities;
    /// The arguments of the whole session.
    fn session_args(&mut self) -> &mut ClientArgs;
    /// The arguments of the current message (cleared between messages).
    fn message_args(&mut self) -> &mut ClientArgs;
    /// The server's address, once connected.
    fn peer(&self) -> Option<SocketAddr>;
    /// The server's host name (the MX name), if known.
    fn peer_name(&self) -> Option<&str>;
    /// `true` when TLS is active.
    fn tls_active(&self) -> bool;
}

/// A custom client state. One instance serves one connection.
pub trait ClientState: Send {
    /// The state's name, as registered (for logs and `Goto`).
    fn name(&self) -> &str;
    /// Called when the machine enters the state.
    fn enter(&mut self, cx: &mut dyn ClientContext) -> StateAction;
    /// Called with the reply to the command `enter` (or a previous `on_reply`) sent.
    fn on_reply(&mut self, cx: &mut dyn ClientContext, reply: &Reply) -> StateAction;
}

/// Where a custom state goes in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchor {
    /// Before every other state, even the banner (Momentum's `insert_after = -1`).
    Front,
    /// After the built-in or custom state with this name.
    After(String),
}

/// A factory of client states.
pub type StateFactory = dyn Fn() -> Box<dyn ClientState> + Send + Sync;

/// A client state registration, made by
/// [`Registrar::client_state`](crate::Registrar::client_state).
#[derive(Clone)]
pub struct ClientStateRegistration {
    pub(crate) plugin: Arc<str>,
    pub(crate) name: String,
    pub(crate) insert_after: Anchor,
    pub(crate) factory: Arc<StateFactory>,
}

impl ClientStateRegistration {
    pub(crate) fn new<F>(plugin: Arc<str>, name: &str, insert_after: Anchor, factory: F) -> Self
    where
        F: Fn() -> Box<dyn ClientState> + Send + Sync + 'static,
    {
        let owner = plugin.clone();
        let state_name = name.to_owned();
        let factory = move || -> Box<dyn ClientState> {
            match guarded(&factory) {
                Ok(inner) => Box::new(Guarded {
                    inner: Some(inner),
                    plugin: owner.clone(),
                    name: state_name.clone(),
                }),
                Err(message) => {
                    crate::hook::note_panic();
                    log::error!("plugin {owner}: the factory of client state {state_name} panicked: {message}");
                    Box::new(Guarded {
                        inner: None,
                        plugin: owner.clone(),
                        name: state_name.clone(),
                    })
                }
            }
        };
        ClientStateRegistration {
            plugin,
            name: name.to_owned(),
            insert_after,
            factory: Arc::new(factory),
        }
    }

    /// The plugin that registered the state.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// The state's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where it goes in the chain.
    pub fn insert_after(&self) -> &Anchor {
        &self.insert_after
    }

    /// A new instance for one connection. Panics inside the plugin's state are contained:
    /// the state then answers [`StateAction::panicked`].
    pub fn create(&self) -> Box<dyn ClientState> {
        (self.factory)()
    }
}

impl fmt::Debug for ClientStateRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientStateRegistration")
            .field("plugin", &self.plugin)
            .field("name", &self.name)
            .field("insert_after", &self.insert_after)
            .finish_non_exhaustive()
    }
}

/// A plugin state behind the panic guard; `inner` is `None` when the factory panicked.
struct Guarded {
    inner: Option<Box<dyn ClientState>>,
    plugin: Arc<str>,
    name: String,
}

impl Guarded {
    fn run(&mut self, f: impl FnOnce(&mut dyn ClientState) -> StateAction) -> StateAction {
        let Some(inner) = self.inner.as_deref_mut() else {
            return StateAction::panicked();
        };
        guarded(|| f(inner)).unwrap_or_else(|message| {
            crate::hook::note_panic();
            log::error!(
                "plugin {}: client state {} panicked: {message}; failing with 451 4.3.0",
                self.plugin,
                self.name
            );
            self.inner = None;
            StateAction::panicked()
        })
    }
}

impl ClientState for Guarded {
    fn name(&self) -> &str {
        &self.name
    }

    fn enter(&mut self, cx: &mut dyn ClientContext) -> StateAction {
        self.run(|s| s.enter(cx))
    }

    fn on_reply(&mut self, cx: &mut dyn ClientContext, reply: &Reply) -> StateAction {
        self.run(|s| s.on_reply(cx, reply))
    }
}

/// Why [`ClientArgs::add`] refused an argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientArgsError {
    /// The key is already present (delete it first).
    #[error("client argument {0} is already set")]
    Exists(String),
    /// The key is not an ESMTP keyword (letters, digits, `-`; at most 64).
    #[error("invalid client argument name {0:?}")]
    InvalidKey(String),
    /// The value holds a space, `=`, a control character, or is longer than 1000 bytes.
    #[error("invalid value for client argument {0}")]
    InvalidValue(String),
    /// The dictionary holds [`ClientArgs::MAX_ENTRIES`] arguments already.
    #[error("too many client arguments")]
    Full,
}

/// ESMTP arguments the client sends (Momentum's `smtp_client_args`): keyword → value,
/// keywords compared ignoring ASCII case, kept in insertion order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientArgs {
    entries: Vec<(String, String)>,
}

impl ClientArgs {
    /// The most arguments one dictionary holds.
    pub const MAX_ENTRIES: usize = 64;

    /// An empty dictionary.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `key=value` (`smtp_client_args_add`); an empty value means a bare `KEY`. Fails
    /// when the key exists or either part would not be a valid ESMTP parameter; the caller
    /// decides whether to proceed or fail the message.
    pub fn add(&mut self, key: &str, value: &str) -> Result<(), ClientArgsError> {
        let key_ok = !key.is_empty()
            && key.len() <= 64
            && key.as_bytes()[0].is_ascii_alphanumeric()
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !key_ok {
            return Err(ClientArgsError::InvalidKey(key.to_owned()));
        }
        if value.len() > 1000 || !value.bytes().all(|b| b.is_ascii_graphic() && b != b'=') {
            return Err(ClientArgsError::InvalidValue(key.to_owned()));
        }
        if self.get(key).is_some() {
            return Err(ClientArgsError::Exists(key.to_owned()));
        }
        if self.entries.len() >= Self::MAX_ENTRIES {
            return Err(ClientArgsError::Full);
        }
        self.entries.push((key.to_owned(), value.to_owned()));
        Ok(())
    }

    /// Removes `key` (`smtp_client_args_delete`); `true` when it was present.
    pub fn delete(&mut self, key: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
        before != self.entries.len()
    }

    /// The value of `key` (`smtp_client_args_exists_and_fetch`).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// The number of arguments.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// `true` when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every argument, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The arguments as they follow a MAIL FROM / RCPT TO path: `" KEY=VALUE KEY2"`.
    pub fn to_params_string(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.entries {
            out.push(' ');
            out.push_str(k);
            if !v.is_empty() {
                out.push('=');
                out.push_str(v);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_args_semantics() {
        let mut args = ClientArgs::new();
        args.add("XPRIO", "5").unwrap();
        args.add("SMTPUTF8", "").unwrap();
        assert_eq!(
            args.add("xprio", "6"),
            Err(ClientArgsError::Exists("xprio".into()))
        );
        assert_eq!(args.get("xPrio"), Some("5"));
        assert!(matches!(
            args.add("bad key", "1"),
            Err(ClientArgsError::InvalidKey(_))
        ));
        assert!(matches!(
            args.add("K", "a b"),
            Err(ClientArgsError::InvalidValue(_))
        ));
        assert!(matches!(
            args.add("K", "a\r\n"),
            Err(ClientArgsError::InvalidValue(_))
        ));
        assert_eq!(args.to_params_string(), " XPRIO=5 SMTPUTF8");
        assert!(args.delete("xprio"));
        assert!(!args.delete("xprio"));
        assert_eq!(args.len(), 1);
        for i in 1..ClientArgs::MAX_ENTRIES {
            args.add(&format!("K{i}"), "v").unwrap();
        }
        assert_eq!(args.add("ONE-MORE", ""), Err(ClientArgsError::Full));
    }

    #[test]
    fn command_refuses_line_breaks() {
        assert_eq!(
            StateAction::command("XPING"),
            StateAction::Send(b"XPING\r\n".to_vec())
        );
        assert!(matches!(
            StateAction::command("A\r\nRSET"),
            StateAction::Fail { .. }
        ));
    }

    struct Boom;
    impl ClientState for Boom {
        fn name(&self) -> &str {
            "boom"
        }
        fn enter(&mut self, _: &mut dyn ClientContext) -> StateAction {
            panic!("boom")
        }
        fn on_reply(&mut self, _: &mut dyn ClientContext, _: &Reply) -> StateAction {
            StateAction::Next
        }
    }

    struct Cx(Capabilities, ClientArgs, ClientArgs);
    impl ClientContext for Cx {
        fn capabilities(&self) -> &Capabilities {
            &self.0
        }
        fn session_args(&mut self) -> &mut ClientArgs {
            &mut self.1
        }
        fn message_args(&mut self) -> &mut ClientArgs {
            &mut self.2
        }
        fn peer(&self) -> Option<SocketAddr> {
            None
        }
        fn peer_name(&self) -> Option<&str> {
            None
        }
        fn tls_active(&self) -> bool {
            false
        }
    }

    #[test]
    fn panicking_state_fails_with_451() {
        let reg =
            ClientStateRegistration::new("p".into(), "boom", Anchor::Front, || Box::new(Boom));
        let mut state = reg.create();
        let mut cx = Cx(Capabilities::new(), ClientArgs::new(), ClientArgs::new());
        assert_eq!(state.name(), "boom");
        assert_eq!(state.enter(&mut cx), StateAction::panicked());
        let ok = Reply::new(250, None, "ok");
        assert_eq!(state.on_reply(&mut cx, &ok), StateAction::panicked());
    }
}
