use proptest::prelude::*;

use super::*;

fn sample() -> MessageState {
    let mut s = MessageState::new(
        Timestamp(1_700_000_000),
        [
            ("bob@example.com", "NOTIFY=SUCCESS"),
            ("carol@example.net", ""),
        ],
    );
    s.recipients[0].status = Status::Delivered;
    s.recipients[0].attempts = 1;
    s.recipients[0].next_attempt = Timestamp(0);
    s.recipients[0].relayed_owed = true;
    s.recipients[0].set_reply("250 2.0.0 Ok");
    s.recipients[1].status = Status::Deferred;
    s.recipients[1].attempts = 2;
    s.recipients[1].next_attempt = Timestamp(1_700_000_900);
    s.recipients[1].set_reply("451 4.2.0 try later");
    s.held = true;
    s
}

#[test]
fn a_record_round_trips_and_has_the_documented_layout() {
    let s = sample();
    let bytes = s.encode();
    assert_eq!(bytes[0], STATE_FORMAT_VERSION);
    assert_eq!(bytes[1], 0b01, "held, no delay warning");
    assert_eq!(&bytes[2..10], &1_700_000_000u64.to_le_bytes());
    assert_eq!(&bytes[10..14], &2u32.to_le_bytes());
    assert_eq!(bytes[14], 2, "delivered");
    assert_eq!(bytes[15], 1, "relayed notification owed");
    assert_eq!(MessageState::decode(&bytes), Ok(s));
}

#[test]
fn status_words_are_the_queue_list_words() {
    let words: Vec<_> = [
        Status::Pending,
        Status::Deferred,
        Status::Delivered,
        Status::Bounced,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(words, ["pending", "deferred", "delivered", "bounced"]);
}

#[test]
fn decode_refuses_what_encode_would_not_write() {
    let good = sample().encode();
    let refuse = |bytes: &[u8]| MessageState::decode(bytes).unwrap_err();
    assert_eq!(refuse(&[]), StateError::Truncated(0));
    let mut v = good.clone();
    v[0] = 2;
    assert_eq!(refuse(&v), StateError::Version(2));
    let mut v = good.clone();
    v[1] = 0x80;
    assert_eq!(refuse(&v), StateError::Flags(0x80));
    let mut v = good.clone();
    v[14] = 4;
    assert_eq!(refuse(&v), StateError::UnknownStatus(4));
    let mut v = good.clone();
    v.push(0);
    assert_eq!(refuse(&v), StateError::TrailingBytes(1));
    assert!(matches!(
        refuse(&good[..good.len() - 1]),
        StateError::Truncated(_)
    ));
    let mut v = good.clone();
    v[10..14].copy_from_slice(&0u32.to_le_bytes());
    assert_eq!(refuse(&v), StateError::RecipientCount(0));
    let mut v = good.clone();
    v[10..14].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(refuse(&v), StateError::RecipientCount(_)));
}

#[test]
fn decode_refuses_inconsistent_states() {
    let mut s = sample();
    s.recipients[1].relayed_owed = true;
    assert_eq!(
        MessageState::decode(&s.encode()),
        Err(StateError::Inconsistent(1))
    );
    let mut s = sample();
    s.recipients[0].next_attempt = Timestamp(5);
    assert_eq!(s.validate(), Err(StateError::Inconsistent(0)));
    let mut s = sample();
    s.recipients[1].address.clear();
    assert_eq!(
        MessageState::decode(&s.encode()),
        Err(StateError::Field {
            index: 1,
            field: "address"
        })
    );
    let mut s = sample();
    s.recipients[1].last_reply = "x".repeat(MAX_REPLY_LEN + 1);
    assert!(s.validate().is_err());
    let mut bytes = sample().encode();
    let at = bytes.len() - 1;
    bytes[at] = 0xff; // the last reply is no longer UTF-8
    assert!(matches!(
        MessageState::decode(&bytes),
        Err(StateError::Field { index: 1, .. })
    ));
}

#[test]
fn replies_are_cut_on_a_character_boundary() {
    let mut r = RecipientState::pending("a@b", "", Timestamp(1));
    let long = "é".repeat(MAX_REPLY_LEN);
    r.set_reply(&long);
    assert!(r.last_reply.len() <= MAX_REPLY_LEN);
    assert!(r.last_reply.len() >= MAX_REPLY_LEN - 1);
    assert_eq!(r.domain(), "b");
    let r = RecipientState::pending("x@Example.ORG.", "", Timestamp(1));
    assert_eq!(r.domain(), "example.org");
}

fn recipient() -> impl Strategy<Value = RecipientState> {
    (
        "[a-z]{1,8}@[a-z]{1,8}\\.test",
        "(NOTIFY=[A-Z,]{1,10})?",
        0u8..4,
        any::<u32>(),
        any::<u64>(),
        "\\PC{0,40}",
        any::<bool>(),
    )
        .prop_map(|(address, params, s, attempts, due, reply, relayed)| {
            let status = [
                Status::Pending,
                Status::Deferred,
                Status::Delivered,
                Status::Bounced,
            ][s as usize];
            let mut r = RecipientState::pending(address, params, Timestamp(due));
            r.status = status;
            r.attempts = attempts;
            r.set_reply(&reply);
            if status.is_final() {
                r.next_attempt = Timestamp(0);
            }
            r.relayed_owed = relayed && status == Status::Delivered;
            r
        })
}

proptest! {
    #[test]
    fn valid_states_round_trip(arrival in any::<u64>(), held in any::<bool>(),
                               warned in any::<bool>(),
                               recipients in proptest::collection::vec(recipient(), 1..20)) {
        let s = MessageState { arrival: Timestamp(arrival), held, delay_warned: warned, recipients };
        prop_assert_eq!(s.validate(), Ok(()));
        let bytes = s.encode();
        prop_assert_eq!(MessageState::decode(&bytes), Ok(s));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_re_encode_identically(
        bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(s) = MessageState::decode(&bytes) {
            prop_assert_eq!(s.encode(), bytes);
        }
    }

    #[test]
    fn flipping_any_byte_of_a_record_never_panics(at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut bytes = sample().encode();
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        if let Ok(s) = MessageState::decode(&bytes) {
            prop_assert_eq!(s.encode(), bytes);
        }
    }
}
