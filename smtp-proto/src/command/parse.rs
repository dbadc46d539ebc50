//! [`Command::parse`]: one command line to a [`Command`].

use std::borrow::Cow;

use super::{Command, CommandError, ParseOptions};
use crate::address::{self, AddressError, AddressOptions, Domain, ForwardPath, Mailbox, Path};
use crate::params::{ParamKind, Params};

type Result<T> = std::result::Result<T, CommandError>;

/// The verbs this module types; anything else is [`Command::Other`].
#[derive(Clone, Copy)]
enum Verb {
    Helo,
    Ehlo,
    Mail,
    Rcpt,
    Data,
    Bdat,
    Rset,
    Vrfy,
    Expn,
    Help,
    Noop,
    Quit,
    StartTls,
    Auth,
}

impl Verb {
    /// The typed verb for `name` (case-insensitive), if any.
    #[inline]
    fn lookup(name: &[u8]) -> Option<Verb> {
        let &[a, b, c, d] = name else {
            return name
                .eq_ignore_ascii_case(b"STARTTLS")
                .then_some(Verb::StartTls);
        };
        // Clearing bit 5 upper-cases ASCII letters; no other byte becomes an upper-case letter,
        // so comparing to the upper-case names is a case-insensitive comparison.
        let upper = u32::from_ne_bytes([a, b, c, d]) & u32::from_ne_bytes([!0x20; 4]);
        Some(match &upper.to_ne_bytes() {
            b"HELO" => Verb::Helo,
            b"EHLO" => Verb::Ehlo,
            b"MAIL" => Verb::Mail,
            b"RCPT" => Verb::Rcpt,
            b"DATA" => Verb::Data,
            b"BDAT" => Verb::Bdat,
            b"RSET" => Verb::Rset,
            b"VRFY" => Verb::Vrfy,
            b"EXPN" => Verb::Expn,
            b"HELP" => Verb::Help,
            b"NOOP" => Verb::Noop,
            b"QUIT" => Verb::Quit,
            b"AUTH" => Verb::Auth,
            _ => return None,
        })
    }
}

impl<'a> Command<'a> {
    /// Parses one command line, its line ending included (as delimited by
    /// [`super::frame_line`]). Never panics; allocates only to unescape quoted local parts and
    /// xtext, and for the list of unknown parameters.
    pub fn parse(line: &'a [u8], opts: &ParseOptions) -> Result<Command<'a>> {
        if line.len() > opts.limits.command_line {
            return Err(CommandError::LineTooLong);
        }
        let mut content = match line {
            [rest @ .., b'\r', b'\n'] => rest,
            [rest @ .., b'\n'] if opts.leniency.bare_lf_line_ending => rest,
            [.., b'\n'] => return Err(CommandError::BareLf),
            _ => return Err(CommandError::Unterminated),
        };
        if has_cr_or_lf(content) {
            return Err(if content.contains(&b'\n') {
                CommandError::BareLf
            } else {
                CommandError::BareCr
            });
        }
        if opts.leniency.trailing_whitespace {
            while let [rest @ .., b' ' | b'\t'] = content {
                content = rest;
            }
        }
        // The verb is letters, digits and hyphens up to the first space or the end.
        let verb_len = content
            .iter()
            .position(|&b| !(b.is_ascii_alphanumeric() || b == b'-'))
            .unwrap_or(content.len());
        let (verb, args) = match content.split_at(verb_len) {
            (verb, []) => (verb, None),
            (verb, [b' ', args @ ..]) => (verb, Some(args)),
            _ => return Err(CommandError::InvalidVerb),
        };
        if verb.is_empty() {
            return Err(CommandError::InvalidVerb);
        }
        let Some(known) = Verb::lookup(verb) else {
            return Ok(Command::Other {
                verb: text(verb)?,
                args: args.map(text).transpose()?,
            });
        };
        // Each arm returns its `Result` as is: unwrapping and rewrapping would copy the
        // (large) command once more.
        match known {
            Verb::Helo => match Domain::parse(required(args)?, &ascii(opts)) {
                Ok(domain @ Domain::Name(_)) => Ok(Command::Helo { domain }),
                _ => Err(CommandError::InvalidDomain),
            },
            Verb::Ehlo => match Domain::parse(required(args)?, &ascii(opts)) {
                Ok(domain) => Ok(Command::Ehlo { domain }),
                Err(_) => Err(CommandError::InvalidDomain),
            },
            Verb::Mail => mail(required(args)?, opts),
            Verb::Rcpt => rcpt(required(args)?, opts),
            Verb::Data => none(args, || Command::Data),
            Verb::Bdat => bdat(required(args)?),
            Verb::Rset => none(args, || Command::Rset),
            Verb::Vrfy => Ok(Command::Vrfy {
                arg: text(required(args)?)?,
            }),
            Verb::Expn => Ok(Command::Expn {
                arg: text(required(args)?)?,
            }),
            Verb::Help => Ok(Command::Help {
                arg: args.map(text).transpose()?,
            }),
            Verb::Noop => Ok(Command::Noop {
                arg: args.map(text).transpose()?,
            }),
            Verb::Quit => none(args, || Command::Quit),
            Verb::StartTls => none(args, || Command::StartTls),
            Verb::Auth => auth(required(args)?),
        }
    }
}

/// Whether `line` holds a CR or an LF, eight bytes at a time.
fn has_cr_or_lf(line: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const CRS: u64 = u64::from_ne_bytes([b'\r'; 8]);
    const LFS: u64 = u64::from_ne_bytes([b'\n'; 8]);
    // Whether any byte of `w` is zero (exact: no false positives).
    let has_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGHS != 0;
    let check = |block: [u8; 8]| {
        let w = u64::from_ne_bytes(block);
        has_zero(w ^ CRS) || has_zero(w ^ LFS)
    };
    let mut chunks = line.chunks_exact(8);
    // `chunks_exact` makes the conversions infallible; the fallback has neither CR nor LF.
    if chunks
        .by_ref()
        .any(|chunk| check(chunk.try_into().unwrap_or([0; 8])))
    {
        return true;
    }
    // The last partial block: the line's last eight bytes (overlapping blocks already seen),
    // or, when the line is shorter (`DATA`, `QUIT`...), its bytes one by one (padding a block
    // would cost a variable-length copy, more than the few comparisons).
    match line.len().checked_sub(8) {
        Some(start) => check(line[start..].try_into().unwrap_or([0; 8])),
        None => line.iter().any(|&b| b == b'\r' || b == b'\n'),
    }
}

fn required(args: Option<&[u8]>) -> Result<&[u8]> {
    args.ok_or(CommandError::MissingArguments)
}

/// `command` if there are no arguments. (The command is built by the closure, after the check,
/// rather than passed in and copied.)
fn none(
    args: Option<&[u8]>,
    command: impl FnOnce() -> Command<'static>,
) -> Result<Command<'static>> {
    match args {
        None => Ok(command()),
        Some(_) => Err(CommandError::UnexpectedArguments),
    }
}

/// Address options without UTF-8, for HELO/EHLO (RFC 6531 §3.7.1: ASCII or A-labels).
fn ascii(opts: &ParseOptions) -> AddressOptions {
    AddressOptions {
        smtputf8: false,
        limits: opts.limits,
    }
}

/// A free-text argument: non-empty UTF-8 without control characters, not starting or ending
/// with a space.
fn text(arg: &[u8]) -> Result<Cow<'_, str>> {
    let ok = match arg {
        [] | [b' ', ..] | [.., b' '] => false,
        _ => arg.iter().all(|&b| b >= b' ' && b != 0x7f),
    };
    if !ok {
        return Err(CommandError::InvalidArguments);
    }
    std::str::from_utf8(arg)
        .map(Cow::Borrowed)
        .map_err(|_| CommandError::InvalidArguments)
}

/// Strips a case-insensitive `prefix` (`FROM:` or `TO:`) and, if tolerated, the spaces after it.
fn after_prefix<'a>(args: &'a [u8], prefix: &[u8], opts: &ParseOptions) -> Result<&'a [u8]> {
    let mut rest = match args.get(..prefix.len()) {
        Some(p) if p.eq_ignore_ascii_case(prefix) => &args[prefix.len()..],
        _ => return Err(CommandError::InvalidArguments),
    };
    if opts.leniency.space_after_colon {
        while let [b' ', tail @ ..] = rest {
            rest = tail;
        }
    }
    Ok(rest)
}

/// Splits `<path> SP params` into the path token and the parameter text.
fn split_path(rest: &[u8]) -> Result<(&[u8], &[u8])> {
    let len = address::token_len(rest);
    let (path, tail) = rest.split_at(len);
    match tail {
        [] => Ok((path, tail)),
        [b' ', params @ ..] if !params.is_empty() => Ok((path, params)),
        _ => Err(CommandError::InvalidArguments),
    }
}

/// `part`, a suffix of the arguments, as text when the arguments are UTF-8 (`args_text`).
#[inline]
fn suffix_text<'a>(args_text: Option<&'a str>, part: &[u8]) -> Option<&'a str> {
    args_text.and_then(|t| t.get(t.len().checked_sub(part.len())?..))
}

/// The path token, a prefix of `rest` (a suffix of the arguments), as text when the arguments
/// are UTF-8.
#[inline]
fn path_text<'a>(args_text: Option<&'a str>, rest: &[u8], path: &[u8]) -> Option<&'a str> {
    suffix_text(args_text, rest).and_then(|r| r.get(..path.len()))
}

// `mail` and `rcpt` check the encoding of their arguments once, up front, and hand the path and
// the parameters down as `&str` when it is valid, rather than have each piece check its own.
// When it is not, the pieces are parsed from bytes as before and report the error where
// the invalid byte lies, in the same order.

fn mail<'a>(args: &'a [u8], opts: &ParseOptions) -> Result<Command<'a>> {
    let args_text = std::str::from_utf8(args).ok();
    let rest = after_prefix(args, b"FROM:", opts)?;
    let (path, params) = split_path(rest)?;
    // RFC 6531 §3.4: the SMTPUTF8 parameter is what permits UTF-8 in this very command.
    let smtputf8 = params
        .split(|&b| b == b' ')
        .any(|p| p.eq_ignore_ascii_case(b"SMTPUTF8"));
    let addr = AddressOptions {
        smtputf8,
        limits: opts.limits,
    };
    let text = path_text(args_text, rest, path);
    let from = if path.first() == Some(&b'<') {
        match text {
            Some(text) => Path::parse_str(text, &addr),
            None => Path::parse(path, &addr),
        }
    } else if opts.leniency.missing_angle_brackets && !path.is_empty() {
        match text {
            Some(text) => Mailbox::parse_str(text, &addr),
            None => Mailbox::parse(path, &addr),
        }
        .map(Path::Mailbox)
    } else {
        Err(AddressError::Syntax)
    }
    .map_err(CommandError::Sender)?;
    let mut result = Ok(Command::Mail {
        from,
        params: Params::default(),
    });
    let params_text = suffix_text(args_text, params);
    fill_params(&mut result, params, params_text, ParamKind::Mail, smtputf8);
    result
}

fn rcpt<'a>(args: &'a [u8], opts: &ParseOptions) -> Result<Command<'a>> {
    let args_text = std::str::from_utf8(args).ok();
    let rest = after_prefix(args, b"TO:", opts)?;
    let (path, params) = split_path(rest)?;
    let addr = AddressOptions {
        smtputf8: opts.smtputf8,
        limits: opts.limits,
    };
    let text = path_text(args_text, rest, path);
    let to = if path.first() == Some(&b'<') {
        match text {
            Some(text) => ForwardPath::parse_str(text, &addr),
            None => ForwardPath::parse(path, &addr),
        }
    } else if !opts.leniency.missing_angle_brackets || path.is_empty() {
        Err(AddressError::Syntax)
    } else if path.eq_ignore_ascii_case(b"postmaster") {
        Ok(ForwardPath::Postmaster)
    } else {
        match text {
            Some(text) => Mailbox::parse_str(text, &addr),
            None => Mailbox::parse(path, &addr),
        }
        .map(ForwardPath::Mailbox)
    }
    .map_err(CommandError::Recipient)?;
    let mut result = Ok(Command::Rcpt {
        to,
        params: Params::default(),
    });
    let params_text = suffix_text(args_text, params);
    fill_params(
        &mut result,
        params,
        params_text,
        ParamKind::Rcpt,
        opts.smtputf8,
    );
    result
}

/// Parses the parameters of the `MAIL` or `RCPT` command in `result` where they lie, rather
/// than apart and then moved in: the command is a couple of hundred bytes, worth not copying.
/// `text` is `input` when it is known to be UTF-8.
fn fill_params<'a>(
    result: &mut Result<Command<'a>>,
    input: &'a [u8],
    text: Option<&'a str>,
    kind: ParamKind,
    smtputf8: bool,
) {
    if let Ok(Command::Mail { params, .. } | Command::Rcpt { params, .. }) = result {
        let parsed = match text {
            Some(text) => params.parse_str_into(text, kind, smtputf8),
            None => params.parse_into(input, kind, smtputf8),
        };
        if let Err(e) = parsed {
            *result = Err(e.into());
        }
    }
}

/// `BDAT chunk-size [SP "LAST"]` (RFC 3030 §2).
fn bdat(args: &[u8]) -> Result<Command<'static>> {
    let (size, last) = match args.iter().position(|&b| b == b' ') {
        Some(sp) if args[sp + 1..].eq_ignore_ascii_case(b"LAST") => (&args[..sp], true),
        Some(_) => return Err(CommandError::InvalidArguments),
        None => (args, false),
    };
    if size.is_empty() || !size.iter().all(u8::is_ascii_digit) {
        return Err(CommandError::InvalidArguments);
    }
    let size = std::str::from_utf8(size)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(CommandError::InvalidArguments)?;
    Ok(Command::Bdat { size, last })
}

/// `AUTH mechanism [SP initial-response]` (RFC 4954 §4).
fn auth(args: &[u8]) -> Result<Command<'_>> {
    let (mechanism, response) = match args.iter().position(|&b| b == b' ') {
        Some(sp) => (&args[..sp], Some(&args[sp + 1..])),
        None => (args, None),
    };
    let mech_ok = (1..=20).contains(&mechanism.len())
        && mechanism
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !mech_ok {
        return Err(CommandError::AuthMechanism);
    }
    let initial_response = match response {
        None => None,
        Some(b"=") => Some(Cow::Borrowed("")),
        Some(r) if is_base64(r) => Some(text(r).map_err(|_| CommandError::AuthInitialResponse)?),
        Some(_) => return Err(CommandError::AuthInitialResponse),
    };
    let mechanism = text(mechanism)?;
    Ok(Command::Auth {
        mechanism,
        initial_response,
    })
}

/// Canonical base64 syntax: a non-empty multiple of 4 characters, `=` padding only at the end.
fn is_base64(s: &[u8]) -> bool {
    let body = s
        .strip_suffix(b"==")
        .or_else(|| s.strip_suffix(b"="))
        .unwrap_or(s);
    !s.is_empty()
        && s.len() % 4 == 0
        && body
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}
