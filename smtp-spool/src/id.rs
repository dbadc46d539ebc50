//! Queue ids: unique, sortable by time, safe as file names.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// Number of characters in a queue id.
pub const QUEUE_ID_LEN: usize = 20;

/// Hex digits holding the time part of an id (microseconds since the Unix epoch).
const TIME_DIGITS: usize = 14;

/// The identifier of a spooled message, also its file name in `<spool>/queue/`.
///
/// Twenty lower-case hex digits: fourteen of a strictly increasing microsecond timestamp
/// (the wall clock, bumped by one when two ids fall in the same microsecond, so ids made by
/// one process never repeat and sort in creation order), then six of a per-process salt
/// (random bits mixed with the process id) that keeps two processes sharing a spool apart.
/// The file is created with `O_EXCL`, so even a salt collision cannot overwrite a message.
///
/// An id given by an operator goes through [`QueueId::parse`], which accepts exactly this
/// shape: no `/`, no `..`, nothing a path could be built from.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId([u8; QUEUE_ID_LEN]);

/// The error for a string that is not a queue id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid queue id {0:?}: expected {QUEUE_ID_LEN} lower-case hex digits")]
pub struct InvalidQueueId(pub String);

impl QueueId {
    /// Makes a fresh id from the clock, a process-wide counter and the process salt.
    pub fn generate() -> QueueId {
        static LAST: AtomicU64 = AtomicU64::new(0);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        let prev = LAST
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(now.max(last + 1))
            })
            .unwrap_or(0);
        let micros = now.max(prev + 1) & ((1u64 << (4 * TIME_DIGITS)) - 1);
        QueueId::from_parts(micros, salt())
    }

    /// Builds an id from its time part (microseconds, the low 56 bits are kept) and its salt
    /// (the low 24 bits are kept). Used by [`QueueId::generate`] and by tests.
    pub fn from_parts(micros: u64, salt: u32) -> QueueId {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; QUEUE_ID_LEN];
        for (i, slot) in out[..TIME_DIGITS].iter_mut().enumerate() {
            let shift = 4 * (TIME_DIGITS - 1 - i);
            *slot = HEX[((micros >> shift) & 0xf) as usize];
        }
        for (i, slot) in out[TIME_DIGITS..].iter_mut().enumerate() {
            let shift = 4 * (QUEUE_ID_LEN - TIME_DIGITS - 1 - i);
            *slot = HEX[((salt >> shift) & 0xf) as usize];
        }
        QueueId(out)
    }

    /// Validates an id given by an operator or read from a directory listing.
    ///
    /// Accepts exactly [`QUEUE_ID_LEN`] lower-case hex digits; anything else (`../x`, an
    /// upper-case id, a name with a suffix) is refused.
    pub fn parse(s: &str) -> Result<QueueId, InvalidQueueId> {
        let bytes = s.as_bytes();
        if bytes.len() != QUEUE_ID_LEN
            || !bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(InvalidQueueId(s.to_owned()));
        }
        let mut out = [0u8; QUEUE_ID_LEN];
        out.copy_from_slice(bytes);
        Ok(QueueId(out))
    }

    /// The id as a string (also the file name).
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The time part: microseconds since the Unix epoch when the id was made.
    pub fn micros(&self) -> u64 {
        u64::from_str_radix(&self.as_str()[..TIME_DIGITS], 16).unwrap_or(0)
    }
}

/// The per-process salt: random bits from the std hasher's keys, mixed with the pid.
fn salt() -> u32 {
    static SALT: OnceLock<u32> = OnceLock::new();
    *SALT.get_or_init(|| {
        let mut h = RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        (h.finish() & 0xff_ffff) as u32
    })
}

impl FromStr for QueueId {
    type Err = InvalidQueueId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        QueueId::parse(s)
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QueueId({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_unique_sorted_and_valid() {
        let ids: Vec<QueueId> = (0..10_000).map(|_| QueueId::generate()).collect();
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1], "{:?} !< {:?}", pair[0], pair[1]);
        }
        for id in &ids {
            assert_eq!(QueueId::parse(id.as_str()), Ok(*id));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64;
        assert!(ids[0].micros() <= now + 1_000_000 && ids[0].micros() > now - 60_000_000);
    }

    #[test]
    fn operator_ids_are_validated() {
        for bad in [
            "",
            "../x",
            "../../../../etc/passwd",
            "0000000000000000000/",
            "00000000000000000000/..",
            "0123456789ABCDEF0123",
            "0123456789abcdef012",
            "0123456789abcdef01234",
            "0123456789abcdef012g",
            "0123456789abcdef012\0",
            "..",
        ] {
            assert!(QueueId::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(QueueId::parse("0123456789abcdef0123").is_ok());
    }

    #[test]
    fn parts_round_trip() {
        let id = QueueId::from_parts(0x01_2345_6789_abcd, 0xabcdef);
        assert_eq!(id.as_str(), "0123456789abcdabcdef");
        assert_eq!(id.micros(), 0x01_2345_6789_abcd);
    }
}
