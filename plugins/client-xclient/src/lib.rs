//! # impulse-plugin-client-xclient — XCLIENT from the client side
//!
//! A client plugin: it registers one client state, `xclient`, right after the built-in
//! `starttls` state, so that when the session upgrades to TLS the attributes travel
//! encrypted (after STARTTLS the session greets again and the chain runs on from `ehlo`;
//! without TLS, `starttls` skips itself and `xclient` follows the first EHLO). A proxy or a content filter that relays mail for someone else uses it to
//! tell the next server who the real client is, with Postfix's XCLIENT extension (the
//! server side is the `xclient` plugin):
//!
//! ```text
//! C: EHLO proxy.example
//! S: 250-mx.example.com ... 250 XCLIENT NAME ADDR PORT PROTO HELO LOGIN
//! C: XCLIENT ADDR=192.0.2.10 NAME=client.example.org
//! S: 220 mx.example.com ESMTP
//! C: EHLO proxy.example          <- the session starts over: greet again
//! S: 250-mx.example.com ...
//! C: MAIL FROM:<...>
//! ```
//!
//! The attributes come from the plugin's table, and a session may override each one with
//! a per-session client argument named `XCLIENT-<ATTRIBUTE>` (`XCLIENT-ADDR=192.0.2.10`),
//! which the state removes from the session's arguments so that it never reaches MAIL FROM:
//!
//! ```toml
//! [plugins.client-xclient]
//! addr = "192.0.2.10"          # NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT, lower case
//! name = "client.example.org"
//! required = false             # true: fail the session when XCLIENT is absent or refused
//! ```
//!
//! What the state does, per connection:
//!
//! | situation | action |
//! |---|---|
//! | no attribute configured or given | skips itself |
//! | the server does not advertise XCLIENT | skips itself (`required`: fails the session with `550 5.7.0`) |
//! | some attributes are not in the server's XCLIENT line | those are left out (Postfix's rule: send only what is advertised) |
//! | `2xx` (XCLIENT's `220`) | goes back to `ehlo` (`StateAction::Goto`): the server reset the session, the client greets again and learns the capabilities anew; on its second turn the state skips itself |
//! | `4xx`/`5xx` | goes on as the proxy itself (`required`: fails the session with the reply) |
//!
//! Values are sent as xtext (RFC 3461 §4), as XCLIENT requires. This crate checks no value
//! beyond that; the server answers a bad one with `501`.
//!
//! Its `.so`, `libimpulse_plugin_client_xclient.so`, is built by `impulse-plugin-client-xclient-so`
//! (`plugins/client-xclient-so`): this crate has no `.so` entry points, so a binary links it (and
//! other plugins) as it is.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::sync::Arc;

use hooks_api::smtp_proto::params::xtext_encode;
use hooks_api::smtp_proto::{EnhancedStatus, Keyword, Reply};
use hooks_api::{Anchor, ClientContext, ClientState, PluginConfig, Registrar, StateAction};

/// The plugin's name, and its configuration table's.
pub const NAME: &str = "client-xclient";

/// The name of the client state it registers (after `starttls`).
pub const STATE: &str = "xclient";

/// The XCLIENT attributes this plugin knows, in the order it sends them.
pub const ATTRIBUTES: [&str; 8] = [
    "NAME", "ADDR", "PORT", "PROTO", "HELO", "LOGIN", "DESTADDR", "DESTPORT",
];

/// The prefix of the per-session client arguments that override the configured attributes.
pub const ARG_PREFIX: &str = "XCLIENT-";

/// `[plugins.client-xclient]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `NAME`: the client's host name.
    #[serde(default)]
    pub name: Option<String>,
    /// `ADDR`: the client's address.
    #[serde(default)]
    pub addr: Option<String>,
    /// `PORT`: the client's port.
    #[serde(default)]
    pub port: Option<String>,
    /// `PROTO`: `SMTP` or `ESMTP`.
    #[serde(default)]
    pub proto: Option<String>,
    /// `HELO`: the client's HELO name.
    #[serde(default)]
    pub helo: Option<String>,
    /// `LOGIN`: the client's SASL login.
    #[serde(default)]
    pub login: Option<String>,
    /// `DESTADDR`: the address the client connected to.
    #[serde(default)]
    pub destaddr: Option<String>,
    /// `DESTPORT`: the port the client connected to.
    #[serde(default)]
    pub destport: Option<String>,
    /// Fail the session (rather than go on as the proxy) when the server does not offer
    /// XCLIENT or refuses it.
    #[serde(default)]
    pub required: bool,
}

impl Config {
    /// The configured attributes, `(ATTRIBUTE, value)` in [`ATTRIBUTES`] order.
    pub fn attributes(&self) -> Vec<(&'static str, String)> {
        let values = [
            &self.name,
            &self.addr,
            &self.port,
            &self.proto,
            &self.helo,
            &self.login,
            &self.destaddr,
            &self.destport,
        ];
        ATTRIBUTES
            .iter()
            .zip(values)
            .filter_map(|(a, v)| v.as_ref().map(|v| (*a, v.clone())))
            .collect()
    }

    /// Checks the values: not empty, at most 255 bytes, no control characters.
    pub fn check(&self) -> Result<(), String> {
        for (attr, value) in self.attributes() {
            if value.is_empty() || value.len() > 255 || value.chars().any(char::is_control) {
                return Err(format!(
                    "[plugins.{NAME}] {}: {value:?} is empty, longer than 255 bytes or has control characters",
                    attr.to_ascii_lowercase()
                ));
            }
        }
        Ok(())
    }
}

/// The `xclient` client state: one per connection. See the [crate docs](crate).
#[derive(Debug)]
pub struct XclientState {
    config: Arc<Config>,
    /// XCLIENT was accepted: the next turn (after the second EHLO) skips.
    done: bool,
}

impl XclientState {
    /// A state for one connection.
    pub fn new(config: Arc<Config>) -> Self {
        XclientState {
            config,
            done: false,
        }
    }

    /// The attributes for this session: the configured ones, overridden by the session's
    /// `XCLIENT-*` arguments (which are removed from the session's arguments).
    fn attributes(&self, cx: &mut dyn ClientContext) -> Vec<(&'static str, String)> {
        let mut attrs = self.config.attributes();
        for attr in ATTRIBUTES {
            let key = format!("{ARG_PREFIX}{attr}");
            let args = cx.session_args();
            let Some(value) = args.get(&key).map(str::to_owned) else {
                continue;
            };
            args.delete(&key);
            match attrs.iter_mut().find(|(a, _)| *a == attr) {
                Some(slot) => slot.1 = value,
                None => attrs.push((attr, value)),
            }
        }
        attrs.sort_by_key(|(a, _)| ATTRIBUTES.iter().position(|x| x == a));
        attrs
    }

    /// Without XCLIENT: fail when required, else skip.
    fn unavailable(&self, why: &str) -> StateAction {
        if self.config.required {
            StateAction::Fail {
                reply: Reply::new(550, Some(EnhancedStatus::new(5, 7, 0)), why),
            }
        } else {
            hooks_api::log::debug!("{NAME}: {why}; going on without it");
            StateAction::Skip
        }
    }
}

impl ClientState for XclientState {
    fn name(&self) -> &str {
        STATE
    }

    fn enter(&mut self, cx: &mut dyn ClientContext) -> StateAction {
        // Taken on every turn, so the XCLIENT-* arguments never reach MAIL FROM.
        let attrs = self.attributes(cx);
        if self.done || attrs.is_empty() {
            return StateAction::Skip;
        }
        if !cx.capabilities().has(Keyword::Xclient) {
            return self.unavailable("the server does not offer XCLIENT");
        }
        let offered = cx.capabilities().xclient_attributes();
        let mut line = String::from("XCLIENT");
        for (attr, value) in &attrs {
            if offered.iter().any(|o| o.eq_ignore_ascii_case(attr)) {
                line.push(' ');
                line.push_str(attr);
                line.push('=');
                line.push_str(&xtext_encode(value));
            } else {
                hooks_api::log::debug!("{NAME}: the server does not take {attr}; left out");
            }
        }
        if line == "XCLIENT" {
            return self.unavailable("the server takes none of the XCLIENT attributes given");
        }
        StateAction::command(&line)
    }

    fn on_reply(&mut self, _cx: &mut dyn ClientContext, reply: &Reply) -> StateAction {
        if reply.is_positive_completion() {
            // The server started the session over: greet again.
            self.done = true;
            return StateAction::Goto("ehlo".to_owned());
        }
        if self.config.required {
            return StateAction::Fail {
                reply: reply.clone(),
            };
        }
        hooks_api::log::info!(
            "{NAME}: XCLIENT refused with {} {}; going on without it",
            reply.code(),
            reply.text()
        );
        StateAction::Next
    }
}

/// Reads the configuration and registers the `xclient` state after `starttls`.
pub fn init(r: &mut Registrar, config: &PluginConfig) -> Result<(), String> {
    let config: Config = config.deserialize()?;
    config.check()?;
    let config = Arc::new(config);
    r.client_state(STATE, Anchor::After("starttls".to_owned()), move || {
        Box::new(XclientState::new(config.clone()))
    });
    Ok(())
}

hooks_api::plugin!("client-xclient", env!("CARGO_PKG_VERSION"), init);

#[cfg(test)]
mod tests;
