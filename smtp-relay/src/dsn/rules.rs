//! The RFC 3461 rules as functions: whether a notification is due, what a successful
//! delivery to the next hop means for `NOTIFY=SUCCESS`, and the DSN parameters passed on to a
//! next hop that offers DSN.
//!
//! What it does not do: build the notification (see [`super::build`]) or decide when
//! delivery has failed (the scheduler does).

use std::borrow::Cow;

use smtp_proto::params::{Notify, Orcpt, Ret};
use smtp_proto::{Mailbox, Params};

use super::Action;

/// Whether a notification of `action` is sent for a recipient with `notify` (its `NOTIFY`,
/// `None` when absent) of a message from `sender` (`""` for the null sender). Never for the
/// null sender (RFC 5321 §6.1) or under `NOTIFY=NEVER`; an absent `NOTIFY` means
/// `FAILURE,DELAY` (RFC 3461 §4.1).
pub fn wants_notification(sender: &str, notify: Option<Notify>, action: &Action) -> bool {
    if sender.is_empty() {
        return false;
    }
    let notify = notify.unwrap_or(Notify {
        success: false,
        failure: true,
        delay: true,
    });
    match action {
        Action::Failed => notify.failure,
        Action::Delayed { .. } => notify.delay,
        Action::Delivered | Action::Relayed => notify.success,
    }
}

/// What a recipient accepted by a next hop asks of Impulse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnAccepted {
    /// Nothing: no success notification was asked, or the next hop offers DSN and got the
    /// parameters, so the notification is its to send.
    Nothing,
    /// Send a `relayed` notification (RFC 3461 §5.2.2): success was asked and the next hop
    /// does not offer DSN.
    NotifyRelayed,
}

/// [`OnAccepted`] for a recipient with `notify` of a message from `sender`, accepted by a next
/// hop that does (`hop_offers_dsn`) or does not offer DSN.
pub fn on_accepted(sender: &str, notify: Option<Notify>, hop_offers_dsn: bool) -> OnAccepted {
    if !hop_offers_dsn && wants_notification(sender, notify, &Action::Relayed) {
        OnAccepted::NotifyRelayed
    } else {
        OnAccepted::Nothing
    }
}

/// The RCPT parameters for a next hop: to one that offers DSN, `NOTIFY` as received and
/// `ORCPT` as received or, when missing, `rfc822;` and the recipient; to one that does not,
/// none.
pub fn rcpt_params(
    notify: Option<Notify>,
    orcpt: Option<&Orcpt<'_>>,
    recipient: &Mailbox<'_>,
    hop_offers_dsn: bool,
) -> Params<'static> {
    if !hop_offers_dsn {
        return Params::default();
    }
    let orcpt = match orcpt {
        Some(o) => Orcpt {
            addr_type: Cow::Owned(o.addr_type.to_string()),
            addr: Cow::Owned(o.addr.to_string()),
        },
        None => Orcpt {
            addr_type: Cow::Borrowed("rfc822"),
            addr: Cow::Owned(recipient.to_string()),
        },
    };
    Params {
        notify,
        orcpt: Some(orcpt),
        ..Params::default()
    }
}

/// The DSN part of the MAIL parameters for a next hop: `RET` and `ENVID` as received to one
/// that offers DSN, none to one that does not.
pub fn mail_params(ret: Option<Ret>, envid: Option<&str>, hop_offers_dsn: bool) -> Params<'static> {
    if !hop_offers_dsn {
        return Params::default();
    }
    Params {
        ret,
        envid: envid.map(|e| Cow::Owned(e.to_string())),
        ..Params::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smtp_proto::address::AddressOptions;
    use std::time::UNIX_EPOCH;

    const SUCCESS: Notify = Notify {
        success: true,
        failure: false,
        delay: false,
    };

    fn wire(p: &Params<'_>) -> String {
        let mut out = Vec::new();
        p.write_to(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn never_to_the_null_sender_and_never_under_notify_never() {
        let delayed = Action::Delayed {
            will_retry_until: UNIX_EPOCH,
        };
        for action in [
            Action::Failed,
            delayed.clone(),
            Action::Delivered,
            Action::Relayed,
        ] {
            assert!(!wants_notification("", None, &action));
            assert!(!wants_notification("", Some(SUCCESS), &action));
            assert!(!wants_notification(
                "a@b.test",
                Some(Notify::NEVER),
                &action
            ));
        }
        assert!(wants_notification("a@b.test", None, &Action::Failed));
        assert!(wants_notification("a@b.test", None, &delayed));
        assert!(!wants_notification("a@b.test", None, &Action::Delivered));
        assert!(!wants_notification(
            "a@b.test",
            Some(SUCCESS),
            &Action::Failed
        ));
        assert!(wants_notification(
            "a@b.test",
            Some(SUCCESS),
            &Action::Relayed
        ));
    }

    #[test]
    fn success_is_passed_on_or_reported_as_relayed() {
        assert_eq!(
            on_accepted("a@b.test", Some(SUCCESS), true),
            OnAccepted::Nothing
        );
        assert_eq!(
            on_accepted("a@b.test", Some(SUCCESS), false),
            OnAccepted::NotifyRelayed
        );
        assert_eq!(on_accepted("a@b.test", None, false), OnAccepted::Nothing);
        assert_eq!(on_accepted("", Some(SUCCESS), false), OnAccepted::Nothing);
    }

    #[test]
    fn rcpt_params_pass_notify_and_add_orcpt_when_missing() {
        let opts = AddressOptions::default();
        let rcpt = Mailbox::parse(b"user+x@example.org", &opts).unwrap();
        let p = rcpt_params(Some(SUCCESS), None, &rcpt, true);
        assert_eq!(
            wire(&p),
            " NOTIFY=SUCCESS ORCPT=rfc822;user+2Bx@example.org"
        );
        let given = Orcpt {
            addr_type: "rfc822".into(),
            addr: "orig@example.net".into(),
        };
        let p = rcpt_params(None, Some(&given), &rcpt, true);
        assert_eq!(wire(&p), " ORCPT=rfc822;orig@example.net");
        assert!(rcpt_params(Some(SUCCESS), Some(&given), &rcpt, false).is_empty());
    }

    #[test]
    fn mail_params_pass_ret_and_envid() {
        let p = mail_params(Some(Ret::Hdrs), Some("id 1"), true);
        assert_eq!(wire(&p), " RET=HDRS ENVID=id+201");
        assert!(mail_params(Some(Ret::Full), Some("x"), false).is_empty());
    }
}
