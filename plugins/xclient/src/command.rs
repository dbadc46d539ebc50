//! Parsing `XCLIENT attr=value ...` ([`parse`]) and applying it to a session ([`apply`]).
//!
//! Values are xtext (RFC 3461 §4): `+XX` escapes are decoded. Every attribute may also be
//! `[UNAVAILABLE]` (the proxy does not know it) or `[TEMPUNAVAIL]` (it could not find it out
//! just now), compared ignoring case. Attribute names are case-insensitive; a repeated
//! attribute's last value wins. The whole command is checked before anything is applied.

use std::net::IpAddr;

use hooks_api::smtp_proto::params::xtext_decode;
use hooks_api::{Notes, SessionInfo};

/// The attributes XCLIENT accepts, in the order they are advertised.
pub const ATTRIBUTES: [&str; 8] = [
    "NAME", "ADDR", "PORT", "PROTO", "HELO", "LOGIN", "DESTADDR", "DESTPORT",
];

/// The longest value accepted (Postfix truncates HELO names at 255).
pub const MAX_VALUE: usize = 255;

/// An XCLIENT attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attr {
    /// The client's host name (from reverse DNS).
    Name,
    /// The client's address: IPv4, or IPv6 with or without an `IPV6:` prefix.
    Addr,
    /// The client's port.
    Port,
    /// `SMTP` or `ESMTP`: how the client greeted.
    Proto,
    /// The client's HELO/EHLO name.
    Helo,
    /// The SASL login name the client authenticated with.
    Login,
    /// The server address the client connected to.
    DestAddr,
    /// The server port the client connected to.
    DestPort,
}

impl Attr {
    /// The attribute for `name`, ignoring ASCII case.
    pub fn from_name(name: &str) -> Option<Attr> {
        let i = ATTRIBUTES
            .iter()
            .position(|a| a.eq_ignore_ascii_case(name))?;
        Some(
            [
                Attr::Name,
                Attr::Addr,
                Attr::Port,
                Attr::Proto,
                Attr::Helo,
                Attr::Login,
                Attr::DestAddr,
                Attr::DestPort,
            ][i],
        )
    }

    /// The upper-case name.
    pub fn name(self) -> &'static str {
        ATTRIBUTES[self as usize]
    }
}

/// A decoded attribute value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `[UNAVAILABLE]`.
    Unavailable,
    /// `[TEMPUNAVAIL]`.
    TempUnavail,
    /// An IP address (ADDR, DESTADDR).
    Ip(IpAddr),
    /// A port (PORT, DESTPORT).
    Port(u16),
    /// `true` for `ESMTP`, `false` for `SMTP` (PROTO).
    Esmtp(bool),
    /// Text (NAME, HELO, LOGIN).
    Text(String),
}

impl Value {
    /// The value as written in notes: the special values in brackets, addresses and ports
    /// in decimal, PROTO as `SMTP`/`ESMTP`.
    pub fn note(&self) -> String {
        match self {
            Value::Unavailable => "[UNAVAILABLE]".to_owned(),
            Value::TempUnavail => "[TEMPUNAVAIL]".to_owned(),
            Value::Ip(ip) => ip.to_string(),
            Value::Port(p) => p.to_string(),
            Value::Esmtp(true) => "ESMTP".to_owned(),
            Value::Esmtp(false) => "SMTP".to_owned(),
            Value::Text(t) => t.clone(),
        }
    }
}

/// Why an XCLIENT command is malformed; each becomes a `501 5.5.4` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyntaxError {
    /// No attribute at all.
    Empty,
    /// A word without `=`, or an attribute XCLIENT does not know.
    BadName(String),
    /// A known attribute with a value that is not valid for it.
    BadValue(Attr, String),
}

impl SyntaxError {
    /// The reply text (after `501 5.5.4 `), as Postfix words it.
    pub fn text(&self) -> String {
        match self {
            SyntaxError::Empty => "Syntax: XCLIENT attribute=value...".to_owned(),
            SyntaxError::BadName(word) => format!("Bad XCLIENT attribute name: {word}"),
            SyntaxError::BadValue(attr, value) => {
                format!("Bad {} syntax: {value}", attr.name())
            }
        }
    }
}

/// Parses the arguments of XCLIENT (everything after the verb).
pub fn parse(args: &str) -> Result<Vec<(Attr, Value)>, SyntaxError> {
    let mut out = Vec::new();
    for word in args.split_ascii_whitespace() {
        let shown: String = word.chars().take(64).collect();
        let Some((name, raw)) = word.split_once('=') else {
            return Err(SyntaxError::BadName(shown));
        };
        let attr = Attr::from_name(name).ok_or(SyntaxError::BadName(shown))?;
        let bad = || SyntaxError::BadValue(attr, raw.chars().take(64).collect());
        let text = xtext_decode(raw.as_bytes()).map_err(|_| bad())?;
        out.push((attr, value(attr, &text).ok_or_else(bad)?));
    }
    if out.is_empty() {
        return Err(SyntaxError::Empty);
    }
    Ok(out)
}

fn value(attr: Attr, text: &str) -> Option<Value> {
    if text.eq_ignore_ascii_case("[UNAVAILABLE]") {
        return Some(Value::Unavailable);
    }
    if text.eq_ignore_ascii_case("[TEMPUNAVAIL]") {
        return Some(Value::TempUnavail);
    }
    if text.is_empty() || text.len() > MAX_VALUE || text.chars().any(char::is_control) {
        return None;
    }
    match attr {
        Attr::Addr | Attr::DestAddr => {
            let bare = match text.get(..5) {
                Some(p) if p.eq_ignore_ascii_case("IPV6:") => &text[5..],
                _ => text,
            };
            bare.parse().ok().map(Value::Ip)
        }
        Attr::Port | Attr::DestPort => {
            let ok = text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
            ok.then(|| text.parse().ok()).flatten().map(Value::Port)
        }
        Attr::Proto => match text.to_ascii_uppercase().as_str() {
            "SMTP" => Some(Value::Esmtp(false)),
            "ESMTP" => Some(Value::Esmtp(true)),
            _ => None,
        },
        Attr::Name | Attr::Helo => {
            (!text.contains(char::is_whitespace)).then(|| Value::Text(text.to_owned()))
        }
        Attr::Login => Some(Value::Text(text.to_owned())),
    }
}

/// Applies parsed attributes: the session's peer and local addresses, HELO name, EHLO flag
/// and authenticated identity change; an unavailable address or port leaves the old one;
/// an unavailable NAME, HELO or LOGIN clears it. Every attribute is also noted in `notes` as
/// `xclient.<attr>` (lower case).
pub fn apply(attrs: &[(Attr, Value)], session: &mut SessionInfo, notes: &mut Notes) {
    for (attr, value) in attrs {
        notes.set(
            format!("xclient.{}", attr.name().to_ascii_lowercase()),
            value.note(),
        );
        match (attr, value) {
            (Attr::Addr, Value::Ip(ip)) => session.peer.set_ip(*ip),
            (Attr::Port, Value::Port(p)) => session.peer.set_port(*p),
            (Attr::DestAddr, Value::Ip(ip)) => session.local.set_ip(*ip),
            (Attr::DestPort, Value::Port(p)) => session.local.set_port(*p),
            (Attr::Proto, Value::Esmtp(e)) => session.ehlo = *e,
            (Attr::Name, Value::Text(t)) => session.client_name = Some(t.clone()),
            (Attr::Name, _) => session.client_name = None,
            (Attr::Helo, Value::Text(t)) => session.helo = Some(t.clone()),
            (Attr::Helo, _) => session.helo = None,
            (Attr::Login, Value::Text(t)) => session.auth = Some(t.clone()),
            (Attr::Login, _) => session.auth = None,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_attribute_with_xtext() {
        let attrs = parse(
            "NAME=mail.example.org addr=192.0.2.10 PORT=40001 PROTO=esmtp \
             HELO=client+2Eexample LOGIN=alice+2Bsales DESTADDR=IPV6:2001:db8::25 DESTPORT=587",
        )
        .unwrap();
        assert_eq!(
            attrs,
            [
                (Attr::Name, Value::Text("mail.example.org".into())),
                (Attr::Addr, Value::Ip("192.0.2.10".parse().unwrap())),
                (Attr::Port, Value::Port(40001)),
                (Attr::Proto, Value::Esmtp(true)),
                (Attr::Helo, Value::Text("client.example".into())),
                (Attr::Login, Value::Text("alice+sales".into())),
                (Attr::DestAddr, Value::Ip("2001:db8::25".parse().unwrap())),
                (Attr::DestPort, Value::Port(587)),
            ]
        );
        assert_eq!(
            parse("ADDR=2001:db8::1").unwrap()[0].1,
            Value::Ip("2001:db8::1".parse().unwrap())
        );
    }

    #[test]
    fn special_values() {
        let attrs = parse("NAME=[UNAVAILABLE] ADDR=[TEMPUNAVAIL] LOGIN=[unavailable]").unwrap();
        assert_eq!(
            attrs.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
            [Value::Unavailable, Value::TempUnavail, Value::Unavailable]
        );
        // Escaped brackets decode to the special value too.
        assert_eq!(
            parse("NAME=+5BTEMPUNAVAIL+5D").unwrap()[0].1,
            Value::TempUnavail
        );
    }

    #[test]
    fn syntax_errors_read_like_postfix() {
        let cases = [
            ("", "Syntax: XCLIENT attribute=value..."),
            ("   ", "Syntax: XCLIENT attribute=value..."),
            ("FOO=bar", "Bad XCLIENT attribute name: FOO=bar"),
            ("NAME", "Bad XCLIENT attribute name: NAME"),
            ("ADDR=999.1.1.1", "Bad ADDR syntax: 999.1.1.1"),
            ("ADDR=", "Bad ADDR syntax: "),
            ("PORT=65536", "Bad PORT syntax: 65536"),
            ("PORT=-1", "Bad PORT syntax: -1"),
            ("PROTO=LMTP", "Bad PROTO syntax: LMTP"),
            ("HELO=a+2", "Bad HELO syntax: a+2"),
            ("HELO=a+20b", "Bad HELO syntax: a+20b"),
            ("NAME=x+0Ay", "Bad NAME syntax: x+0Ay"),
            ("NAME=ok ADDR=bad", "Bad ADDR syntax: bad"),
        ];
        for (args, text) in cases {
            assert_eq!(parse(args).unwrap_err().text(), text, "{args:?}");
        }
    }

    #[test]
    fn apply_updates_the_session_and_notes() {
        let mut s = SessionInfo::new(
            "127.0.0.1:5000".parse().unwrap(),
            "127.0.0.1:10025".parse().unwrap(),
        );
        s.helo = Some("proxy".into());
        let mut notes = Notes::new();
        let attrs = parse(
            "NAME=c.example ADDR=IPV6:2001:db8::7 PORT=[UNAVAILABLE] HELO=c.example \
             PROTO=SMTP LOGIN=bob DESTADDR=192.0.2.25 DESTPORT=25",
        )
        .unwrap();
        apply(&attrs, &mut s, &mut notes);
        assert_eq!(s.peer, "[2001:db8::7]:5000".parse().unwrap());
        assert_eq!(s.local, "192.0.2.25:25".parse().unwrap());
        assert_eq!(s.helo.as_deref(), Some("c.example"));
        assert_eq!(s.client_name.as_deref(), Some("c.example"));
        assert!(!s.ehlo);
        assert_eq!(s.auth.as_deref(), Some("bob"));
        assert_eq!(notes.get("xclient.name"), Some("c.example"));
        assert_eq!(notes.get("xclient.port"), Some("[UNAVAILABLE]"));
        assert_eq!(notes.get("xclient.addr"), Some("2001:db8::7"));
        apply(
            &parse("HELO=[TEMPUNAVAIL] LOGIN=[UNAVAILABLE]").unwrap(),
            &mut s,
            &mut notes,
        );
        assert_eq!((s.helo.as_deref(), s.auth.as_deref()), (None, None));
    }
}
