//! ESMTP extensions a plugin adds to the server (Momentum's `esmtp_extensions_register`):
//! an EHLO keyword with its parameters, an optional verb handler, and the MAIL/RCPT
//! parameters the extension makes legal. The server merges its built-in extensions and
//! these into one EHLO keyword registry.
//!
//! ```
//! use hooks_api::{EsmtpExtension, Verdict};
//!
//! let ext = EsmtpExtension::new("XPING")
//!     .param("FAST")
//!     .mail_param("XPRIO")
//!     .advertise_if(|session| session.is_tls())
//!     .handler(|ctx, args| Verdict::accept_with(250, "2.0.0", &format!("pong {args}")));
//! assert_eq!(ext.ehlo_line(), "XPING FAST");
//! ```

use std::fmt;
use std::sync::Arc;

use crate::context::ExtensionCtx;
use crate::hook::{guarded, HookResult};
use crate::session::SessionInfo;
use crate::verdict::Verdict;

type Handler = dyn for<'a, 'b> Fn(&'b mut ExtensionCtx<'a>, &str) -> HookResult + Send + Sync;
type Predicate = dyn Fn(&SessionInfo) -> Result<bool, String> + Send + Sync;

/// An ESMTP extension. Build it with [`EsmtpExtension::new`] and the builder methods, then
/// hand it to [`Registrar::esmtp_extension`](crate::Registrar::esmtp_extension).
#[derive(Clone)]
pub struct EsmtpExtension {
    keyword: String,
    ehlo_params: Vec<String>,
    handler: Option<Arc<Handler>>,
    advertise: Option<Arc<Predicate>>,
    mail_params: Vec<String>,
    rcpt_params: Vec<String>,
}

impl EsmtpExtension {
    /// An extension advertising `keyword` (stored upper-case). The keyword must be an
    /// RFC 5321 `ehlo-keyword` (letters, digits, `-`; first a letter or digit); the registry
    /// refuses the plugin otherwise.
    pub fn new(keyword: &str) -> Self {
        EsmtpExtension {
            keyword: keyword.to_ascii_uppercase(),
            ehlo_params: Vec::new(),
            handler: None,
            advertise: None,
            mail_params: Vec::new(),
            rcpt_params: Vec::new(),
        }
    }

    /// Adds one EHLO parameter (`XCLIENT NAME ADDR ...`: `NAME`, `ADDR`, ...).
    pub fn param(mut self, param: &str) -> Self {
        self.ehlo_params.push(param.to_owned());
        self
    }

    /// Adds several EHLO parameters.
    pub fn params<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, params: I) -> Self {
        self.ehlo_params
            .extend(params.into_iter().map(|p| p.as_ref().to_owned()));
        self
    }

    /// Makes `keyword` a MAIL FROM parameter the server accepts (it reaches MAIL hooks in
    /// `params.unknown`).
    pub fn mail_param(mut self, keyword: &str) -> Self {
        self.mail_params.push(keyword.to_ascii_uppercase());
        self
    }

    /// Makes `keyword` a RCPT TO parameter the server accepts.
    pub fn rcpt_param(mut self, keyword: &str) -> Self {
        self.rcpt_params.push(keyword.to_ascii_uppercase());
        self
    }

    /// Handles the verb named like the keyword. The handler gets the arguments after the verb
    /// and answers with a verdict: `Accept(Some(reply))` sends that 2xx reply (XCLIENT sends
    /// `220`), `Continue` or `Accept(None)` sends `250 2.0.0 OK`, `Reject`/`TempFail`/
    /// `Disconnect` as anywhere, `Pending` to answer from a worker thread. A panic answers
    /// `451 4.3.0`.
    pub fn handler<F>(mut self, handler: F) -> Self
    where
        F: for<'a, 'b> Fn(&'b mut ExtensionCtx<'a>, &str) -> Verdict + Send + Sync + 'static,
    {
        self.handler = Some(Arc::new(move |ctx: &mut ExtensionCtx<'_>, args: &str| {
            guarded(|| handler(ctx, args))
        }));
        self
    }

    /// Advertises the keyword only to sessions for which `predicate` is true (XCLIENT: only
    /// to authorised client addresses). Without one, the keyword is always advertised. A
    /// predicate that panics counts as false.
    pub fn advertise_if<F>(mut self, predicate: F) -> Self
    where
        F: Fn(&SessionInfo) -> bool + Send + Sync + 'static,
    {
        self.advertise = Some(Arc::new(move |session: &SessionInfo| {
            guarded(|| predicate(session))
        }));
        self
    }

    /// The keyword, upper-case.
    pub fn keyword(&self) -> &str {
        &self.keyword
    }

    /// The EHLO parameters.
    pub fn ehlo_params(&self) -> &[String] {
        &self.ehlo_params
    }

    /// The EHLO line: keyword and parameters separated by spaces.
    pub fn ehlo_line(&self) -> String {
        let mut line = self.keyword.clone();
        for p in &self.ehlo_params {
            line.push(' ');
            line.push_str(p);
        }
        line
    }

    /// The MAIL FROM parameters the extension makes legal.
    pub fn mail_params(&self) -> &[String] {
        &self.mail_params
    }

    /// The RCPT TO parameters the extension makes legal.
    pub fn rcpt_params(&self) -> &[String] {
        &self.rcpt_params
    }

    /// `true` when the extension has a verb handler.
    pub fn has_handler(&self) -> bool {
        self.handler.is_some()
    }

    /// `true` when the extension was built with [`advertise_if`](EsmtpExtension::advertise_if):
    /// the host must ask [`advertised_to`](EsmtpExtension::advertised_to) per session.
    pub fn is_conditional(&self) -> bool {
        self.advertise.is_some()
    }

    /// Whether the keyword is advertised to `session` (host side).
    pub fn advertised_to(&self, session: &SessionInfo) -> bool {
        match &self.advertise {
            None => true,
            Some(predicate) => predicate(session).unwrap_or_else(|message| {
                crate::hook::note_panic();
                log::error!(
                    "the advertise predicate of {} panicked: {message}",
                    self.keyword
                );
                false
            }),
        }
    }

    /// Runs the verb handler (host side) with the rules of [`EsmtpExtension::handler`];
    /// `plugin` names the owner in logs. Without a handler the answer is
    /// `502 5.5.1 Command not implemented`.
    pub fn call(&self, plugin: &str, ctx: &mut ExtensionCtx<'_>, args: &str) -> Verdict {
        let Some(handler) = &self.handler else {
            return Verdict::reject(502, "5.5.1", "Command not implemented");
        };
        ctx.pending_issued = false;
        let verdict = match handler(ctx, args) {
            Ok(v) => v,
            Err(message) => {
                crate::hook::note_panic();
                log::error!(
                    "plugin {plugin} panicked in its {} verb handler: {message}; answering 451 4.3.0",
                    self.keyword
                );
                return Verdict::panicked();
            }
        };
        match crate::hook::settle(
            verdict,
            ctx,
            crate::HookPoint::UnknownCommand,
            plugin,
            crate::hook::no_check,
        ) {
            Verdict::Continue => Verdict::accept(),
            other => other,
        }
    }

    /// Why the registration is invalid, if it is.
    pub(crate) fn invalid_reason(&self) -> Option<String> {
        let keyword_ok = |k: &str| {
            !k.is_empty()
                && k.len() <= 64
                && k.as_bytes()[0].is_ascii_alphanumeric()
                && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if !keyword_ok(&self.keyword) {
            return Some(format!("invalid ESMTP keyword {:?}", self.keyword));
        }
        if let Some(p) = self
            .ehlo_params
            .iter()
            .find(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Some(format!("invalid EHLO parameter {p:?} for {}", self.keyword));
        }
        if let Some(p) = self
            .mail_params
            .iter()
            .chain(&self.rcpt_params)
            .find(|p| !keyword_ok(p))
        {
            return Some(format!(
                "invalid MAIL/RCPT parameter keyword {p:?} for {}",
                self.keyword
            ));
        }
        None
    }
}

impl fmt::Debug for EsmtpExtension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EsmtpExtension")
            .field("keyword", &self.keyword)
            .field("ehlo_params", &self.ehlo_params)
            .field("handler", &self.handler.is_some())
            .field("advertise_if", &self.advertise.is_some())
            .field("mail_params", &self.mail_params)
            .field("rcpt_params", &self.rcpt_params)
            .finish()
    }
}

/// An extension in the registry, with the plugin that registered it.
#[derive(Debug, Clone)]
pub struct RegisteredExtension {
    /// The plugin's name.
    pub plugin: Arc<str>,
    /// The extension.
    pub extension: EsmtpExtension,
}

impl RegisteredExtension {
    /// Runs the verb handler; see [`EsmtpExtension::call`].
    pub fn call(&self, ctx: &mut ExtensionCtx<'_>, args: &str) -> Verdict {
        self.extension.call(&self.plugin, ctx, args)
    }
}
