//! The bytes of a notification: headers, the human-readable part, the delivery-status part
//! and the returned message, with a boundary that occurs in none of them.
//!
//! What it does not do: decide whether a notification is due (see [`super::rules`]).

use std::fmt::Write;

use smtp_proto::params::{xtext_encode, Ret};
use smtp_proto::Reply;

use super::date::rfc5322;
use super::{Action, Notification, RecipientReport};

/// Builds the notification: a complete message with CRLF line endings.
pub fn build(n: &Notification<'_>) -> Vec<u8> {
    let text = human_part(n);
    let status = status_part(n);
    let full = n.envelope.ret == Some(Ret::Full);
    let returned = if full {
        n.original
    } else {
        headers_of(n.original)
    };
    let boundary = boundary(n, &[text.as_bytes(), status.as_bytes(), returned]);
    let eight_bit = |b: &[u8]| if b.is_ascii() { "7bit" } else { "8bit" };
    let any_8bit = !(text.is_ascii() && status.is_ascii() && returned.is_ascii());

    let mut out = String::new();
    let host = n.reporting_mta;
    let _ = write!(
        out,
        "From: MAILER-DAEMON@{host}\r\n\
         To: {to}\r\n\
         Subject: {subject}\r\n\
         Date: {date}\r\n\
         Message-ID: <{token}@{host}>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status;\r\n\
         \tboundary=\"{boundary}\"\r\n\
         Content-Transfer-Encoding: {cte}\r\n\
         \r\n\
         This is a MIME-encapsulated message.\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: {text_cte}\r\n\
         Content-Description: Notification\r\n\
         \r\n\
         {text}\
         \r\n\
         --{boundary}\r\n\
         Content-Type: message/delivery-status\r\n\
         Content-Transfer-Encoding: {status_cte}\r\n\
         Content-Description: Delivery report\r\n\
         \r\n\
         {status}\
         \r\n\
         --{boundary}\r\n\
         Content-Type: {returned_type}\r\n\
         Content-Transfer-Encoding: {returned_cte}\r\n\
         Content-Description: {returned_what}\r\n\
         \r\n",
        to = n.envelope.sender,
        subject = subject(n.recipients),
        date = rfc5322(n.date),
        token = n.token,
        cte = if any_8bit { "8bit" } else { "7bit" },
        text_cte = eight_bit(text.as_bytes()),
        status_cte = eight_bit(status.as_bytes()),
        returned_type = if full {
            "message/rfc822"
        } else {
            "text/rfc822-headers"
        },
        returned_cte = eight_bit(returned),
        returned_what = if full {
            "Undelivered message"
        } else {
            "Undelivered message headers"
        },
    );
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(returned);
    if !returned.ends_with(b"\n") {
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    bytes
}

fn subject(recipients: &[RecipientReport]) -> &'static str {
    let has = |f: fn(&Action) -> bool| recipients.iter().any(|r| f(&r.action));
    if has(|a| *a == Action::Failed) {
        "Undelivered Mail Returned to Sender"
    } else if has(|a| matches!(a, Action::Delayed { .. })) {
        "Delayed Mail (still being retried)"
    } else if has(|a| *a == Action::Relayed) {
        "Relayed Mail (no further notifications)"
    } else {
        "Successful Mail Delivery Report"
    }
}

fn human_part(n: &Notification<'_>) -> String {
    let mut s = format!(
        "This is the mail system at host {}.\r\n\r\nYour message",
        n.reporting_mta
    );
    let _ = write!(s, " of {}:\r\n\r\n", rfc5322(n.envelope.arrival));
    for r in n.recipients {
        let what = match r.action {
            Action::Failed => "could not be delivered and will not be retried",
            Action::Delayed { .. } => "has not been delivered yet; delivery is still being tried",
            Action::Delivered => "was delivered",
            Action::Relayed => "was relayed to a system that sends no further notifications",
        };
        let _ = write!(s, "  <{}>: {what} ({})", r.final_recipient, r.status);
        if let Some((mta, reply)) = &r.remote {
            let _ = write!(s, "\r\n    {mta} said: {}", one_line(reply));
        }
        s.push_str("\r\n");
    }
    s
}

fn status_part(n: &Notification<'_>) -> String {
    let mut s = format!("Reporting-MTA: dns; {}\r\n", n.reporting_mta);
    if let Some(envid) = &n.envelope.envid {
        let printable = envid.bytes().all(|b| (0x20..0x7f).contains(&b));
        let value = if printable {
            envid.clone()
        } else {
            xtext_encode(envid).into_owned()
        };
        let _ = write!(s, "Original-Envelope-Id: {value}\r\n");
    }
    let _ = write!(s, "Arrival-Date: {}\r\n", rfc5322(n.envelope.arrival));
    for r in n.recipients {
        s.push_str("\r\n");
        if let Some((kind, addr)) = &r.original {
            let _ = write!(s, "Original-Recipient: {kind}; {}\r\n", xtext_encode(addr));
        }
        let _ = write!(
            s,
            "Final-Recipient: rfc822; {}\r\nAction: {}\r\nStatus: {}\r\n",
            r.final_recipient,
            r.action.as_str(),
            r.status
        );
        if let Some((mta, reply)) = &r.remote {
            let _ = write!(
                s,
                "Remote-MTA: dns; {mta}\r\nDiagnostic-Code: smtp; {}\r\n",
                one_line(reply)
            );
        }
        if let Some(at) = r.last_attempt {
            let _ = write!(s, "Last-Attempt-Date: {}\r\n", rfc5322(at));
        }
        if let Action::Delayed { will_retry_until } = r.action {
            let _ = write!(s, "Will-Retry-Until: {}\r\n", rfc5322(will_retry_until));
        }
    }
    s
}

/// A reply on one line: `550 5.1.1 first line second line`.
fn one_line(reply: &Reply) -> String {
    let mut s = reply.code().to_string();
    if let Some(status) = reply.status() {
        let _ = write!(s, " {status}");
    }
    for line in reply.lines() {
        let clean: String = line.chars().filter(|c| !c.is_control()).collect();
        if !clean.is_empty() {
            s.push(' ');
            s.push_str(&clean);
        }
    }
    s
}

/// The header section of `message`, up to and including the line ending before the first
/// empty line (the whole message when it has no body).
pub(super) fn headers_of(message: &[u8]) -> &[u8] {
    if message.starts_with(b"\r\n") || message.starts_with(b"\n") {
        return &[];
    }
    let mut i = 0;
    while let Some(off) = message[i..].iter().position(|&b| b == b'\n') {
        let end = i + off + 1;
        let rest = &message[end..];
        if rest.starts_with(b"\r\n") || rest.starts_with(b"\n") {
            return &message[..end];
        }
        i = end;
    }
    message
}

/// A boundary built from the token that occurs in none of `parts`.
fn boundary(n: &Notification<'_>, parts: &[&[u8]]) -> String {
    // 1 + 56 + `.` and a counter stays within the 70 characters of RFC 2046.
    let base: String = format!("{}/{}", n.token, n.reporting_mta)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "./-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(56)
        .collect();
    let mut candidate = format!("={base}");
    let mut attempt = 0u32;
    while parts.iter().any(|p| contains(p, candidate.as_bytes())) {
        attempt += 1;
        candidate = format!("={base}.{attempt}");
    }
    candidate
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
