//! Everything decided about a message before a byte of it is sent: address syntax, SIZE,
//! 8BITMIME and SMTPUTF8 needs, client arguments as MAIL/RCPT parameters, the DSN
//! parameters (RFC 3461: only to a server that offers DSN, see [`crate::dsn`]),
//! dot-stuffing.

use hooks_api::ClientArgs;
use smtp_proto::address::{AddressError, AddressOptions, AddressRole};
use smtp_proto::limits::MAX_ENVID;
use smtp_proto::params::ParamKind;
use smtp_proto::Reply;
use smtp_proto::{dot_stuff, Capabilities, Command, ForwardPath, Keyword, Limits, Params, Path};

use crate::dsn::orcpt_for;
use crate::message::{local_reply, Message};

/// A message ready to go: the wire form of its commands and body.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// `MAIL FROM:<..> params` CRLF.
    pub(crate) mail: Vec<u8>,
    /// `(recipient index, RCPT TO:<..> params CRLF)` for every recipient that passed.
    pub(crate) rcpts: Vec<(usize, Vec<u8>)>,
    /// Recipients refused locally, with the reply they get.
    pub(crate) refused: Vec<(usize, Reply)>,
    /// For DATA: the dot-stuffed body, end-of-data line included. For BDAT: the body with
    /// its line endings normalised to CR LF, nothing added.
    pub(crate) body: Vec<u8>,
}

/// RCPT parameters; every other client argument goes on MAIL.
fn is_rcpt_param(key: &str) -> bool {
    key.eq_ignore_ascii_case("NOTIFY") || key.eq_ignore_ascii_case("ORCPT")
}

/// The RFC 3461 parameters, which a message's [`Dsn`](crate::dsn::Dsn) governs.
fn is_dsn_param(key: &str) -> bool {
    is_rcpt_param(key) || key.eq_ignore_ascii_case("RET") || key.eq_ignore_ascii_case("ENVID")
}

/// Refuses the bytes that would break out of `<...>` or inject a line, whatever the parser
/// says: CR, LF, NUL, `<` and `>`.
pub(crate) fn raw_address_ok(addr: &str) -> bool {
    !addr
        .bytes()
        .any(|b| matches!(b, b'\r' | b'\n' | 0 | b'<' | b'>'))
}

fn address_reply(e: AddressError, role: AddressRole) -> Reply {
    e.reply(role).into()
}

/// The body as BDAT sends it: every bare CR and bare LF becomes CR LF (as DATA's encoder
/// does, so no bare line ending leaves the client), and a last line without an ending gets
/// one — the same bytes DATA delivers, without the dot-stuffing.
pub(crate) fn crlf_normalise(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 2);
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                i += if body.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
            }
            b'\n' => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            _ => {
                let run = body[i..]
                    .iter()
                    .position(|&b| b == b'\r' || b == b'\n')
                    .map_or(body.len(), |p| i + p);
                out.extend_from_slice(&body[i..run]);
                i = run;
            }
        }
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Checks `message` against the server's capabilities and builds its commands. `Err` fails
/// the whole message with that reply, before anything is sent.
pub(crate) fn prepare(
    message: &Message,
    caps: &Capabilities,
    session_args: &ClientArgs,
    message_args: &ClientArgs,
    limits: Limits,
    chunking: bool,
) -> Result<Prepared, Reply> {
    let opts = AddressOptions {
        smtputf8: true,
        limits,
    };
    let utf8_offered = caps.has(Keyword::SmtpUtf8);
    if !raw_address_ok(&message.from) {
        return Err(address_reply(AddressError::Syntax, AddressRole::Sender));
    }
    let from_text = format!("<{}>", message.from);
    let from = Path::parse(from_text.as_bytes(), &opts)
        .map_err(|e| address_reply(e, AddressRole::Sender))?;
    let mut needs_utf8 = !message.from.is_ascii();
    if needs_utf8 && !utf8_offered {
        return Err(local_reply(
            553,
            (5, 6, 7),
            "Non-ASCII sender needs SMTPUTF8, which the server does not offer",
        ));
    }

    let mut refused = Vec::new();
    let mut paths = Vec::new();
    for (i, rcpt) in message.recipients.iter().enumerate() {
        if !raw_address_ok(rcpt) {
            refused.push((
                i,
                address_reply(AddressError::Syntax, AddressRole::Recipient),
            ));
            continue;
        }
        let text = format!("<{rcpt}>");
        match ForwardPath::parse(text.as_bytes(), &opts) {
            Ok(_) if !rcpt.is_ascii() && !utf8_offered => refused.push((
                i,
                local_reply(
                    553,
                    (5, 6, 7),
                    "Non-ASCII recipient needs SMTPUTF8, which the server does not offer",
                ),
            )),
            Ok(path) => {
                needs_utf8 |= !rcpt.is_ascii();
                paths.push((i, path.into_owned()));
            }
            Err(e) => refused.push((i, address_reply(e, AddressRole::Recipient))),
        }
    }

    let eight_bit = !message.body.is_ascii();
    if eight_bit && !caps.has(Keyword::EightBitMime) {
        return Err(local_reply(
            554,
            (5, 6, 3),
            "Message has 8-bit content and the server does not offer 8BITMIME",
        ));
    }
    let (body, size) = if chunking {
        let body = crlf_normalise(&message.body);
        let size = body.len() as u64;
        (body, size)
    } else {
        let body = dot_stuff(&message.body);
        let size = body.len().saturating_sub(3) as u64;
        (body, size)
    };
    if let Some(max) = caps.size().filter(|&max| max > 0) {
        if size > max {
            return Err(local_reply(
                552,
                (5, 3, 4),
                &format!("Message size {size} exceeds the server's SIZE limit {max}"),
            ));
        }
    }

    let mut mail_params = String::new();
    let mut rcpt_params = String::new();
    if caps.size().is_some() {
        mail_params.push_str(&format!(" SIZE={size}"));
    }
    if eight_bit {
        mail_params.push_str(" BODY=8BITMIME");
    }
    if needs_utf8 {
        mail_params.push_str(" SMTPUTF8");
    }
    let session_only = session_args
        .iter()
        .filter(|(k, _)| message_args.get(k).is_none());
    // A message with DSN parameters of its own sends those, and only to a server that
    // offers DSN: the arguments' RFC 3461 keywords give way.
    let governed = |key: &str| message.dsn.is_some() && is_dsn_param(key);
    for (key, value) in session_only.chain(message_args.iter()) {
        if governed(key) {
            log::debug!("client: argument {key} ignored: the message has DSN parameters");
            continue;
        }
        let params = if is_rcpt_param(key) {
            &mut rcpt_params
        } else {
            &mut mail_params
        };
        params.push(' ');
        params.push_str(key);
        if !value.is_empty() {
            params.push('=');
            params.push_str(value);
        }
    }
    let parse = |text: &str, kind| {
        Params::parse(text.trim_start().as_bytes(), kind, needs_utf8)
            .map(Params::into_owned)
            .map_err(|e| -> Reply { e.reply().into() })
    };
    let mut mail_params = parse(&mail_params, ParamKind::Mail)?;
    let rcpt_params = parse(&rcpt_params, ParamKind::Rcpt)?;
    let dsn = message.dsn.as_ref().filter(|_| caps.has(Keyword::Dsn));
    if let Some(dsn) = dsn {
        if dsn.envid.as_ref().is_some_and(|e| e.len() > MAX_ENVID) {
            return Err(local_reply(
                501,
                (5, 5, 4),
                "ENVID longer than RFC 3461 allows",
            ));
        }
        mail_params.ret = dsn.ret;
        mail_params.envid = dsn.envid.clone().map(Into::into);
    }
    let mail = Command::Mail {
        from,
        params: mail_params,
    }
    .to_bytes();
    let rcpts = paths
        .into_iter()
        .map(|(i, to)| {
            let mut params = rcpt_params.clone();
            if let Some(dsn) = dsn {
                let r = dsn.recipient(i);
                let address = message.recipients.get(i).map_or("", String::as_str);
                params.notify = r.notify;
                params.orcpt = Some(orcpt_for(r.orcpt.as_ref(), address));
            }
            (i, Command::Rcpt { to, params }.to_bytes())
        })
        .collect();
    Ok(Prepared {
        mail,
        rcpts,
        refused,
        body,
    })
}
