//! Adding states to the client's state machine (Momentum's `register_smtp_client_state`).
//!
//! ```sh
//! cargo run --example embedded_server &            # a server on 127.0.0.1:2525
//! cargo run --example custom_client_state -- 127.0.0.1:2525
//! ```
//!
//! Two custom states are registered with `StateRegistry::register_state`:
//!
//! - `show-capabilities`, after the built-in `ehlo`: sends nothing, notes what the server
//!   offers, and moves on (`StateAction::Next`) — once per connection;
//! - `noop-before-mail`, after `auth`, so at the start of every transaction, right before
//!   MAIL FROM: sends `NOOP`, checks the `250`, and fails the message with the server's
//!   reply otherwise.
//!
//! The program prints the chain the way Momentum's `smtp_get_state_machine`,
//! `smtp_get_state` and the default `smtp_next_state` walk it, sends one message, and prints
//! what the states noted.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use impulse::client::driver::blocking::{Client, Options};
use impulse::client::smtp_proto::Reply;
use impulse::client::{
    Anchor, ClientContext, ClientState, Message, RecipientOutcome, StateAction, StateKind,
    StateMachine, StateRegistry,
};

/// What the states noted, in order; shared by every instance.
pub type Notes = Arc<Mutex<Vec<String>>>;

/// Notes the capabilities after EHLO.
struct ShowCapabilities {
    notes: Notes,
}

impl ClientState for ShowCapabilities {
    fn name(&self) -> &str {
        "show-capabilities"
    }

    fn enter(&mut self, cx: &mut dyn ClientContext) -> StateAction {
        let lines: Vec<String> = cx.capabilities().iter().map(|c| c.to_line()).collect();
        note(&self.notes, format!("capabilities: {}", lines.join(", ")));
        StateAction::Next
    }

    fn on_reply(&mut self, _: &mut dyn ClientContext, _: &Reply) -> StateAction {
        StateAction::Next // It never sends a command, so no reply comes.
    }
}

/// Sends NOOP before each MAIL FROM.
struct NoopBeforeMail {
    notes: Notes,
}

impl ClientState for NoopBeforeMail {
    fn name(&self) -> &str {
        "noop-before-mail"
    }

    fn enter(&mut self, _: &mut dyn ClientContext) -> StateAction {
        StateAction::command("NOOP")
    }

    fn on_reply(&mut self, _: &mut dyn ClientContext, reply: &Reply) -> StateAction {
        note(
            &self.notes,
            format!("NOOP: {} {}", reply.code(), reply.text()),
        );
        if reply.code() == 250 {
            StateAction::Next
        } else {
            StateAction::Fail {
                reply: reply.clone(),
            }
        }
    }
}

fn note(notes: &Notes, line: String) {
    if let Ok(mut notes) = notes.lock() {
        notes.push(line);
    }
}

/// The built-in chain plus the two states, which note into `notes`; says which ids they got.
pub fn machine(
    notes: &Notes,
    out: &mut dyn Write,
) -> Result<Arc<StateMachine>, Box<dyn std::error::Error>> {
    let mut registry = StateRegistry::new();
    let shared = notes.clone();
    let id = registry.register_state(
        "show-capabilities",
        Anchor::After("ehlo".into()),
        move || {
            Box::new(ShowCapabilities {
                notes: shared.clone(),
            })
        },
    )?;
    writeln!(out, "registered show-capabilities as state {}", id.0)?;
    let shared = notes.clone();
    let id = registry.register_state(
        "noop-before-mail",
        Anchor::After("auth".into()),
        move || {
            Box::new(NoopBeforeMail {
                notes: shared.clone(),
            })
        },
    )?;
    writeln!(out, "registered noop-before-mail as state {}", id.0)?;
    Ok(registry.build())
}

/// The chain from its head, following each state's default successor, one
/// `id name kind` line per state.
pub fn chain(machine: &StateMachine) -> Vec<String> {
    let mut lines = Vec::new();
    let mut at = Some(machine.state_machine());
    while let Some(id) = at {
        let Some(state) = machine.get_state(id) else {
            break;
        };
        let kind = match state.kind() {
            StateKind::Builtin(_) => "built-in",
            StateKind::Custom(_) => "custom",
        };
        lines.push(format!("{:>2} {} {kind}", id.0, state.name()));
        at = machine.successor(id);
    }
    lines
}

/// Prints the chain, sends one message to `server` through it, prints the notes and the
/// outcomes; returns the outcomes.
pub fn run(
    server: SocketAddr,
    out: &mut dyn Write,
) -> Result<Vec<RecipientOutcome>, Box<dyn std::error::Error>> {
    let notes = Notes::default();
    let machine = machine(&notes, out)?;
    writeln!(out, "chain:")?;
    for line in chain(&machine) {
        writeln!(out, "  {line}")?;
    }

    let options = Options {
        machine: Some(machine),
        ..Options::new("client.example")
    };
    let mut conn = Client::connect(server, options)?;
    let message = Message::new(
        "sender@example.org",
        ["postmaster@example.com"],
        "Subject: custom client states\r\n\r\nA NOOP went ahead of this message.\r\n",
    );
    let outcomes = conn.send(&message)?;
    conn.quit()?;

    writeln!(out, "the states noted:")?;
    for line in notes.lock().map(|n| n.clone()).unwrap_or_default() {
        writeln!(out, "  {line}")?;
    }
    for o in &outcomes {
        writeln!(
            out,
            "{}: {:?} {} {} ({})",
            o.recipient,
            o.kind,
            o.reply.code(),
            o.reply.text(),
            o.class.name
        )?;
    }
    Ok(outcomes)
}

#[allow(dead_code)] // Not used when a test includes this file for `run`.
fn main() {
    let server = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2525".to_owned());
    let server: SocketAddr = match server.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("custom_client_state: {server:?}: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(server, &mut std::io::stdout()) {
        eprintln!("custom_client_state: {e}");
        std::process::exit(1);
    }
}
