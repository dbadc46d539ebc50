//! The other bounce vocabularies: for each built-in Momentum class, the name a KumoMTA user
//! knows (its `PreDefinedBounceClass` variant) and the PowerMTA bounce category, so reports
//! and rules can be read in either.
//!
//! Where the other scheme has the same class (Invalid Recipient, DNS Failure, Spam Block, Spam
//! Content, Prohibited Attachment, Relaying Denied, Auto-Reply, Transient Failure, Subscribe,
//! Unsubscribe, Challenge-Response: KumoMTA took these from Momentum), the names are exact;
//! elsewhere they are the nearest category (Mailbox Full → `QuotaIssues` / `quota-issues`,
//! Timeout → `MessageExpired` / `message-expired`, Admin Failure → `BadConfiguration` /
//! `bad-configuration`, Mail Block → `PolicyRelated` / `policy-related`), and classes with no
//! counterpart map to `Uncategorized` / `other`.
//!
//! What it does not do: classify (the rules do) or cover user classes (they have only the
//! name they were registered with).

use super::id;

/// The names of one built-in class in the other two vocabularies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OtherNames {
    /// The KumoMTA bounce class (`InvalidRecipient`).
    pub kumomta: &'static str,
    /// The PowerMTA bounce category (`bad-mailbox`).
    pub powermta: &'static str,
}

const fn names(kumomta: &'static str, powermta: &'static str) -> OtherNames {
    OtherNames { kumomta, powermta }
}

/// The built-in classes' other names, by class id.
pub const OTHER_NAMES: [(u16, OtherNames); 20] = [
    (id::UNDETERMINED, names("Uncategorized", "other")),
    (
        id::INVALID_RECIPIENT,
        names("InvalidRecipient", "bad-mailbox"),
    ),
    (id::SOFT_BOUNCE, names("Uncategorized", "other")),
    (id::DNS_FAILURE, names("DNSFailure", "bad-domain")),
    (id::MAILBOX_FULL, names("QuotaIssues", "quota-issues")),
    (id::TOO_LARGE, names("ContentRelated", "content-related")),
    (id::TIMEOUT, names("MessageExpired", "message-expired")),
    (
        id::ADMIN_FAILURE,
        names("BadConfiguration", "bad-configuration"),
    ),
    (id::NO_RCPT, names("InvalidRecipient", "bad-mailbox")),
    (id::GENERIC_BOUNCE, names("Uncategorized", "other")),
    (id::MAIL_BLOCK, names("PolicyRelated", "policy-related")),
    (id::SPAM_BLOCK, names("SpamBlock", "spam-related")),
    (id::SPAM_CONTENT, names("SpamContent", "spam-related")),
    (
        id::PROHIBITED_ATTACHMENT,
        names("ProhibitedAttachment", "virus-related"),
    ),
    (id::RELAYING_DENIED, names("RelayDenied", "relaying-issues")),
    (id::AUTO_REPLY, names("AutoReply", "other")),
    (id::TRANSIENT_FAILURE, names("TransientFailure", "other")),
    (id::SUBSCRIBE, names("Subscribe", "other")),
    (id::UNSUBSCRIBE, names("Unsubscribe", "other")),
    (id::CHALLENGE_RESPONSE, names("ChallengeResponse", "other")),
];

/// The KumoMTA and PowerMTA names of built-in class `class_id`; `None` for a user class.
pub fn other_names(class_id: u16) -> Option<OtherNames> {
    OTHER_NAMES
        .iter()
        .find(|(id, _)| *id == class_id)
        .map(|(_, n)| *n)
}

/// The built-in class ids a KumoMTA class name or PowerMTA category stands for (case
/// insensitive; several when the other scheme is coarser, as `spam-related` is). Empty when
/// the name is unknown.
pub fn ids_for_other_name(name: &str) -> Vec<u16> {
    OTHER_NAMES
        .iter()
        .filter(|(_, n)| {
            n.kumomta.eq_ignore_ascii_case(name) || n.powermta.eq_ignore_ascii_case(name)
        })
        .map(|(id, _)| *id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::BUILTIN_CLASSES;
    use super::*;

    #[test]
    fn every_built_in_class_has_both_names_and_nothing_else_does() {
        for class in BUILTIN_CLASSES {
            let n = other_names(class.id).unwrap_or_else(|| panic!("{} has none", class.id));
            assert!(!n.kumomta.is_empty() && !n.powermta.is_empty());
        }
        assert_eq!(OTHER_NAMES.len(), BUILTIN_CLASSES.len());
        assert_eq!(other_names(200), None);
        assert_eq!(
            other_names(id::INVALID_RECIPIENT).unwrap().powermta,
            "bad-mailbox"
        );
    }

    #[test]
    fn names_lead_back_to_classes() {
        assert_eq!(ids_for_other_name("InvalidRecipient"), [10, 30]);
        assert_eq!(ids_for_other_name("bad-mailbox"), [10, 30]);
        assert_eq!(ids_for_other_name("RELAYDENIED"), [54]);
        assert_eq!(ids_for_other_name("spam-related"), [51, 52]);
        assert!(ids_for_other_name("no-such-thing").is_empty());
    }
}
