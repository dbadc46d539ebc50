//! Notifications to the sender: built with [`crate::dsn`] and committed to the spool as a
//! new message from the null sender, which the relay then delivers like any other.

use std::io::Read;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use smtp_proto::params::{ParamKind, Params};
use smtp_proto::{EnhancedStatus, Reply};
use smtp_spool::{Envelope, QueueId, Recipient, Spool};

use super::Meta;
use crate::dsn::{self, rules, Action, Notification, RecipientReport};
use crate::schedule::{BounceKind, BounceRecipient};

/// The original message returned in a notification is cut after this many bytes when the
/// sender asked for all of it (`RET=FULL`); headers alone are never cut.
const MAX_RETURNED: u64 = 10 * 1024 * 1024;

/// What a notification needs beyond the recipients.
pub(crate) struct Occasion<'a> {
    pub hostname: &'a str,
    pub id: QueueId,
    pub kind: BounceKind,
    /// The message's expiry, for `Will-Retry-Until` in a delay warning.
    pub max_age: Duration,
    /// The last next hop of each recipient, by envelope index, when known.
    pub remote: &'a dyn Fn(u32) -> Option<String>,
    /// The plugins whose bounce hooks see the notification.
    pub registry: Option<&'a hooks_api::Registry>,
}

/// Builds and commits the notification for `recipients` of the message `meta` describes.
/// `Ok(None)`: none is due (the null sender, `NOTIFY=NEVER`, or no recipient that asked).
pub(crate) fn queue(
    spool: &Spool,
    occasion: &Occasion<'_>,
    meta: Option<&Meta>,
    recipients: &[BounceRecipient],
) -> Result<Option<QueueId>, String> {
    let Some(meta) = meta else {
        log::warn!("{}: no envelope to notify from", occasion.id);
        return Ok(None);
    };
    let mail = Params::parse(meta.mail_params.trim().as_bytes(), ParamKind::Mail, true)
        .unwrap_or_default();
    let arrival = UNIX_EPOCH + Duration::from_secs(meta.received);
    let now = SystemTime::now();
    let action = match occasion.kind {
        BounceKind::Failed => Action::Failed,
        BounceKind::Delayed => Action::Delayed {
            will_retry_until: arrival + occasion.max_age,
        },
        BounceKind::Relayed => Action::Relayed,
    };
    let mut reports = Vec::new();
    let mut wanted = Vec::new();
    for r in recipients {
        let params =
            Params::parse(r.params.trim().as_bytes(), ParamKind::Rcpt, true).unwrap_or_default();
        if !rules::wants_notification(&meta.sender, params.notify, &action) {
            continue;
        }
        let default = match occasion.kind {
            BounceKind::Failed => EnhancedStatus::new(5, 0, 0),
            BounceKind::Delayed => EnhancedStatus::new(4, 0, 0),
            BounceKind::Relayed => EnhancedStatus::new(2, 0, 0),
        };
        let status = EnhancedStatus::parse(&r.status).unwrap_or(default);
        let mut report = RecipientReport::new(&r.address, action.clone(), status);
        if let Some(o) = &params.orcpt {
            report = report.original_recipient(&o.addr_type, &o.addr);
        }
        if let (Some(reply), Some(mta)) = (parse_reply(&r.reply), (occasion.remote)(r.index)) {
            report = report.remote(&mta, reply).last_attempt(now);
        }
        reports.push(report);
        wanted.push(r);
    }
    if reports.is_empty() {
        return Ok(None);
    }
    let (id, kind, registry) = (occasion.id, occasion.kind, occasion.registry);
    let hostname = occasion.hostname;
    let Some(added) =
        super::hooks::notification(registry, hostname, id, kind, &meta.sender, &wanted)
    else {
        return Ok(None);
    };
    let original = read_original(spool, occasion.id, mail.ret)?;
    let envelope = dsn::Envelope {
        sender: meta.sender.clone(),
        envid: mail.envid.as_deref().map(str::to_owned),
        ret: mail.ret,
        arrival,
    };
    let token = format!(
        "{}.{}.{}",
        occasion.id,
        match occasion.kind {
            BounceKind::Failed => "failed",
            BounceKind::Delayed => "delayed",
            BounceKind::Relayed => "relayed",
        },
        now.duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    );
    let bytes = added.apply(dsn::build(&Notification {
        reporting_mta: occasion.hostname,
        envelope: &envelope,
        recipients: &reports,
        original: &original,
        date: now,
        token: &token,
    }));
    let env = Envelope {
        sender: String::new(),
        mail_params: String::new(),
        recipients: vec![Recipient::new(meta.sender.clone())],
        peer: "local".into(),
        helo: occasion.hostname.to_owned(),
        received: now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        tls: None,
        auth: None,
        notes: std::iter::once(format!("notification for {}", occasion.id))
            .chain(added.notes)
            .collect(),
    };
    let mut writer = spool.begin(&env).map_err(|e| e.to_string())?;
    writer.write_all(&bytes).map_err(|e| e.to_string())?;
    spool
        .commit_blocking(writer)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// A stored one-line reply (`550 5.1.1 text`) back as a [`Reply`].
fn parse_reply(text: &str) -> Option<Reply> {
    if text.is_empty() {
        return None;
    }
    let wire = format!("{text}\r\n");
    Reply::parse(wire.as_bytes()).ok().flatten().map(|(r, _)| r)
}

/// The message to return: all of it (up to [`MAX_RETURNED`]) with `RET=FULL`, else its
/// header section.
fn read_original(
    spool: &Spool,
    id: QueueId,
    ret: Option<smtp_proto::params::Ret>,
) -> Result<Vec<u8>, String> {
    let reader = spool.open_message(id).map_err(|e| e.to_string())?;
    let full = matches!(ret, Some(smtp_proto::params::Ret::Full));
    let limit = if full { MAX_RETURNED } else { 256 * 1024 };
    let mut out = Vec::new();
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    if !full {
        if let Some(end) = find(&out, b"\r\n\r\n") {
            out.truncate(end + 2);
        }
    }
    Ok(out)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
