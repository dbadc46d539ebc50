//! The `Received:` trace header (RFC 5321 §4.4) and RFC 5322 dates, without a date crate and
//! without reading the clock: the wall-clock time is an input.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::SystemTime;

/// Formats `time` as an RFC 5322 `date-time` in UTC: `Thu, 01 Jan 1970 00:00:00 +0000`.
/// Times before the Unix epoch are written as the epoch.
pub fn rfc5322_date(time: SystemTime) -> String {
    smtp_proto::date::rfc5322(time)
}

/// Copies `s` into `out`, turning control characters into spaces: nothing a client sent can
/// add a header line or a line break.
fn push_clean(out: &mut String, s: &str) {
    out.extend(s.chars().map(|c| if c.is_control() { ' ' } else { c }));
}

/// What goes into one `Received:` header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TraceInfo<'a> {
    pub helo: &'a str,
    /// The client's host name, when known (XCLIENT NAME): `from helo (name [ip])`.
    pub name: Option<&'a str>,
    pub peer: IpAddr,
    pub hostname: &'a str,
    /// `SMTP`, `ESMTP`, `ESMTPS`, `ESMTPSA`, `UTF8SMTPS`, ... (RFC 3848, RFC 6531 §3.7.3).
    pub protocol: &'a str,
    pub queue_id: Option<&'a str>,
    /// The recipient, only when the message has exactly one (as Postfix does).
    pub recipient: Option<&'a str>,
    pub date: &'a str,
}

/// Builds the header, folded before `by`, `with` and `for` so no line gets long, ending in
/// CRLF:
///
/// ```text
/// Received: from client.example ([192.0.2.1])
///         by mx.example (Impulse) with ESMTPS id 0123abcd
///         for <bob@example.com>; Thu, 01 Jan 1970 00:00:00 +0000
/// ```
pub(crate) fn received_header(t: &TraceInfo<'_>) -> String {
    let mut h = String::with_capacity(160);
    h.push_str("Received: from ");
    push_clean(&mut h, t.helo);
    h.push_str(" (");
    if let Some(name) = t.name {
        push_clean(&mut h, name);
        h.push(' ');
    }
    match t.peer {
        IpAddr::V4(a) => {
            let _ = write!(h, "[{a}])");
        }
        IpAddr::V6(a) => {
            let _ = write!(h, "[IPv6:{a}])");
        }
    }
    h.push_str("\r\n\tby ");
    push_clean(&mut h, t.hostname);
    h.push_str(" (Impulse) with ");
    h.push_str(t.protocol);
    if let Some(id) = t.queue_id {
        h.push_str(" id ");
        push_clean(&mut h, id);
    }
    if let Some(rcpt) = t.recipient {
        h.push_str("\r\n\tfor ");
        push_clean(&mut h, rcpt);
    }
    h.push_str("; ");
    h.push_str(t.date);
    h.push_str("\r\n");
    h
}

/// The `with` protocol name (RFC 3848, RFC 6531 §3.7.3).
pub(crate) fn protocol(esmtp: bool, utf8: bool, tls: bool, auth: bool) -> &'static str {
    match (esmtp, utf8, tls, auth) {
        (false, _, _, _) => "SMTP",
        (true, false, false, false) => "ESMTP",
        (true, false, true, false) => "ESMTPS",
        (true, false, false, true) => "ESMTPA",
        (true, false, true, true) => "ESMTPSA",
        (true, true, false, false) => "UTF8SMTP",
        (true, true, true, false) => "UTF8SMTPS",
        (true, true, false, true) => "UTF8SMTPA",
        (true, true, true, true) => "UTF8SMTPSA",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_has_no_injected_lines() {
        let h = received_header(&TraceInfo {
            helo: "evil\r\nX-Injected: 1",
            name: None,
            peer: "2001:db8::1".parse().unwrap(),
            hostname: "mx.example",
            protocol: "ESMTPSA",
            queue_id: Some("abc\n"),
            recipient: Some("<a@b>"),
            date: "Thu, 01 Jan 1970 00:00:00 +0000",
        });
        assert_eq!(
            h,
            "Received: from evil  X-Injected: 1 ([IPv6:2001:db8::1])\r\n\tby mx.example \
             (Impulse) with ESMTPSA id abc \r\n\tfor <a@b>; Thu, 01 Jan 1970 00:00:00 +0000\r\n"
        );
    }

    #[test]
    fn header_with_a_client_name() {
        let h = received_header(&TraceInfo {
            helo: "client.example",
            name: Some("rdns.example"),
            peer: "192.0.2.7".parse().unwrap(),
            hostname: "mx.example",
            protocol: "ESMTP",
            queue_id: None,
            recipient: None,
            date: "Thu, 01 Jan 1970 00:00:00 +0000",
        });
        assert!(h.starts_with("Received: from client.example (rdns.example [192.0.2.7])\r\n"));
    }
}
