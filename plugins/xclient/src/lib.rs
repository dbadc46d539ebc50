//! # impulse-plugin-xclient — Postfix's XCLIENT extension
//!
//! The `xclient` plugin registers the `XCLIENT` ESMTP extension, with which a trusted proxy
//! (a load balancer, a content filter, an nginx mail proxy) tells the server who the real
//! client is:
//!
//! ```text
//! C: XCLIENT NAME=mail.example.org ADDR=192.0.2.10 PORT=40001 HELO=mail.example.org
//! S: 220 mx.example.com ESMTP
//! ```
//!
//! ```toml
//! [plugins.xclient]
//! authorized = ["127.0.0.0/8", "::1/128"]   # the default; networks allowed to use XCLIENT
//! hostname = "mx.example.com"              # in the 220 reply; default: [local address]
//! ```
//!
//! The keyword is advertised (`XCLIENT NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT`)
//! only to peers in `authorized`. The verb answers:
//!
//! | situation | reply |
//! |---|---|
//! | inside a mail transaction | `503 5.5.1 Error: MAIL transaction in progress` |
//! | no attribute, unknown attribute, bad value | `501 5.5.4 Syntax: ...` / `Bad XCLIENT attribute name: ...` / `Bad ADDR syntax: ...` |
//! | peer not in `authorized` | `550 5.7.0 Error: insufficient authorization` |
//! | success | the session is updated ([`command::apply`]), a session reset is requested, and the reply is `220 <hostname> ESMTP`: the client greets again |
//!
//! Authorization, and whether XCLIENT is advertised, are decided on the connection's real
//! peer ([`SessionInfo::real_peer`](hooks_api::SessionInfo::real_peer), never rewritten), so a
//! proxy may send XCLIENT again in the same connection after reporting any client. The real
//! peer is also kept in the connection note `xclient.real-peer` for other plugins.
//!
//! A transaction is detected through the transaction note `xclient.mail`, which this
//! plugin's MAIL hook (registered last) sets when a sender is accepted, and which the host
//! empties when the transaction ends. (A MAIL hook earlier in the chain that *accepts*
//! ends the chain before it; XCLIENT then still resets the session, transaction included.)
//!
//! What this crate does not do: XFORWARD, or any check of what the proxy claims.
//!
//! Its `.so`, `libimpulse_plugin_xclient.so`, is built by `impulse-plugin-xclient-so`
//! (`plugins/xclient-so`): this crate has no `.so` entry points, so a binary links it (and
//! other plugins) as it is.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cidr;
pub mod command;

use std::net::SocketAddr;
use std::sync::Arc;

use hooks_api::{EsmtpExtension, ExtensionCtx, Order, PluginConfig, Registrar, Verdict};

pub use cidr::Cidr;
pub use command::{apply, parse, Attr, SyntaxError, Value, ATTRIBUTES};

/// The plugin's name, and its configuration table's.
pub const NAME: &str = "xclient";

/// The transaction note set by the MAIL hook.
pub const MAIL_NOTE: &str = "xclient.mail";
/// The connection note holding the peer before the first XCLIENT.
pub const REAL_PEER_NOTE: &str = "xclient.real-peer";

/// `[plugins.xclient]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Networks allowed to use XCLIENT (default loopback only).
    #[serde(default = "default_authorized")]
    pub authorized: Vec<String>,
    /// The host name in the `220` reply (default: the local address in brackets).
    #[serde(default)]
    pub hostname: Option<String>,
}

fn default_authorized() -> Vec<String> {
    vec!["127.0.0.0/8".to_owned(), "::1/128".to_owned()]
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Xclient {
    authorized: Vec<Cidr>,
    hostname: Option<String>,
}

impl Xclient {
    /// Checks `config`; an error names the offending entry.
    pub fn new(config: &Config) -> Result<Xclient, String> {
        let authorized = config
            .authorized
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.parse::<Cidr>()
                    .map_err(|e| format!("authorized[{i}]: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(h) = &config.hostname {
            if h.is_empty() || !h.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!(
                    "hostname {h:?} is empty or has spaces or control characters"
                ));
            }
        }
        Ok(Xclient {
            authorized,
            hostname: config.hostname.clone(),
        })
    }

    /// Whether `peer` may use XCLIENT.
    pub fn is_authorized(&self, peer: SocketAddr) -> bool {
        self.authorized.iter().any(|n| n.contains(peer.ip()))
    }

    /// The verb handler. See the [crate docs](crate) for the replies.
    pub fn handle(&self, ctx: &mut ExtensionCtx<'_>, args: &str) -> Verdict {
        if ctx.txn_notes().contains(MAIL_NOTE) {
            return Verdict::reject(503, "5.5.1", "Error: MAIL transaction in progress");
        }
        let attrs = match parse(args) {
            Ok(attrs) => attrs,
            Err(e) => return Verdict::reject(501, "5.5.4", &e.text()),
        };
        let real_peer = ctx.session().real_peer;
        if !self.is_authorized(real_peer) {
            hooks_api::log::info!("xclient: refused XCLIENT from unauthorized {real_peer}");
            return Verdict::reject(550, "5.7.0", "Error: insufficient authorization");
        }
        ctx.conn_notes().set(REAL_PEER_NOTE, real_peer.to_string());
        let before = ctx.session().peer;
        // `Ctx` lends one `&mut` at a time: change a copy next to the notes, then store it.
        let mut session = ctx.session().clone();
        apply(&attrs, &mut session, ctx.conn_notes());
        *ctx.session_mut() = session;
        hooks_api::log::info!(
            "xclient: {real_peer} says the client is {} (was {before})",
            ctx.session().peer
        );
        ctx.request_session_reset();
        let host = match &self.hostname {
            Some(h) => h.clone(),
            None => format!("[{}]", ctx.session().local.ip()),
        };
        Verdict::accept_with(220, "", &format!("{host} ESMTP"))
    }
}

/// Reads the configuration and registers the extension and the MAIL hook.
pub fn init(r: &mut Registrar, config: &PluginConfig) -> Result<(), String> {
    let config: Config = config.deserialize()?;
    let xclient = Arc::new(Xclient::new(&config).map_err(|e| format!("[plugins.xclient] {e}"))?);
    let (advertise, handle) = (xclient.clone(), xclient);
    r.esmtp_extension(
        EsmtpExtension::new("XCLIENT")
            .params(ATTRIBUTES)
            .advertise_if(move |session| advertise.is_authorized(session.real_peer))
            .handler(move |ctx, args| handle.handle(ctx, args)),
    );
    r.on_mail(Order::Last, |ctx| {
        ctx.txn_notes().set(MAIL_NOTE, "1");
        Verdict::Continue
    });
    Ok(())
}

hooks_api::plugin!("xclient", env!("CARGO_PKG_VERSION"), init);

#[cfg(test)]
mod tests;
