//! The retry policy as data: when a deferred recipient is tried again, when a message expires,
//! when a delay warning goes out, how long a refusing next hop is left alone.
//!
//! Also [`parse_duration`] for the config's duration strings (`"30s"`, `"5m"`, `"2h"`, `"5d"`,
//! plain seconds) and [`SplitMix64`], the small deterministic generator the jitter draws from:
//! the caller seeds it, so a scheduler never reads a random source and a test replays exactly.
//!
//! What this module does not do: no config file parsing (the binary maps `[relay.retry]` to a
//! [`RetryPolicy`]), no clock reads, no per-message bookkeeping (the scheduler's).

use std::time::Duration;

/// The default retry intervals: 5m, 10m, 20m, 40m, 1h, 2h, 4h (then 4h repeats).
pub const DEFAULT_INTERVALS: [Duration; 7] = [
    Duration::from_secs(5 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(20 * 60),
    Duration::from_secs(40 * 60),
    Duration::from_secs(3600),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(4 * 3600),
];
/// The default `max_age`: five days, then a `4.4.7` bounce.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(5 * 86400);
/// The default `bounce_max_age` for messages from the null sender: two days.
pub const DEFAULT_BOUNCE_MAX_AGE: Duration = Duration::from_secs(2 * 86400);
/// The default time a next hop that keeps refusing connections is left alone: five minutes.
pub const DEFAULT_DOWN_TIME: Duration = Duration::from_secs(5 * 60);

/// When to try again and when to give up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the 1st, 2nd, ... failed attempt; the last one repeats. Never empty
    /// (an empty list is read as [`DEFAULT_INTERVALS`]).
    pub intervals: Vec<Duration>,
    /// A message older than this is bounced with `4.4.7`.
    pub max_age: Duration,
    /// The same for messages from the null sender (notifications), which are then dropped.
    pub bounce_max_age: Duration,
    /// Send one `Action: delayed` notification once a message is this old; `None`: never.
    pub delay_warning: Option<Duration>,
    /// Spread each wait by up to this many percent either way (0: exact intervals).
    pub jitter_percent: u8,
    /// How long a next hop that keeps refusing connections is marked down.
    pub down_time: Duration,
    /// Consecutive refused connections after which a next hop is marked down.
    pub down_after: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            intervals: DEFAULT_INTERVALS.to_vec(),
            max_age: DEFAULT_MAX_AGE,
            bounce_max_age: DEFAULT_BOUNCE_MAX_AGE,
            delay_warning: None,
            jitter_percent: 0,
            down_time: DEFAULT_DOWN_TIME,
            down_after: 1,
        }
    }
}

impl RetryPolicy {
    /// The wait after a recipient's `failures`-th failed attempt (1 for the first; 0 is read
    /// as 1), jittered with `rng` when [`jitter_percent`](Self::jitter_percent) is set.
    pub fn delay(&self, failures: u32, rng: &mut SplitMix64) -> Duration {
        let list: &[Duration] = if self.intervals.is_empty() {
            &DEFAULT_INTERVALS
        } else {
            &self.intervals
        };
        let i = (failures.max(1) as usize - 1).min(list.len() - 1);
        let base = list[i].as_secs();
        if self.jitter_percent == 0 || base == 0 {
            return Duration::from_secs(base);
        }
        let spread = base * u64::from(self.jitter_percent.min(100)) / 100;
        // Uniform in [base - spread, base + spread].
        let offset = rng.next_u64() % (2 * spread + 1);
        Duration::from_secs((base - spread + offset).max(1))
    }

    /// The age at which a message expires: `bounce_max_age` for the null sender.
    pub fn max_age_for(&self, null_sender: bool) -> Duration {
        if null_sender {
            self.bounce_max_age
        } else {
            self.max_age
        }
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, fast, deterministic generator, seeded by
/// the caller. Not for anything secret; it only spreads retries apart.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator that starts from `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// A duration string that [`parse_duration`] refused; holds the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}: expected a whole number with s, m, h or d (\"30s\", \"5m\", \"2h\", \"5d\") or plain seconds")]
pub struct InvalidDuration(pub String);

/// Parses a config duration: `"1s"`, `"30s"`, `"5m"`, `"2h"`, `"5d"`, or a plain integer
/// (seconds). No sign, no fraction, no spaces inside, no overflow.
pub fn parse_duration(text: &str) -> Result<Duration, InvalidDuration> {
    let bad = || InvalidDuration(text.to_owned());
    let (digits, unit) = match text.as_bytes().last() {
        Some(b's') => (&text[..text.len() - 1], 1),
        Some(b'm') => (&text[..text.len() - 1], 60),
        Some(b'h') => (&text[..text.len() - 1], 3600),
        Some(b'd') => (&text[..text.len() - 1], 86400),
        _ => (text, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(unit).map(Duration::from_secs).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_every_unit_and_plain_seconds() {
        let s = Duration::from_secs;
        assert_eq!(parse_duration("1s"), Ok(s(1)));
        assert_eq!(parse_duration("30s"), Ok(s(30)));
        assert_eq!(parse_duration("5m"), Ok(s(300)));
        assert_eq!(parse_duration("2h"), Ok(s(7200)));
        assert_eq!(parse_duration("5d"), Ok(s(432_000)));
        assert_eq!(parse_duration("90"), Ok(s(90)));
        assert_eq!(parse_duration("0"), Ok(s(0)));
    }

    #[test]
    fn bad_durations_are_refused_naming_the_text() {
        for bad in [
            "",
            "s",
            "5x",
            "-5m",
            "+5m",
            "1.5h",
            " 5m",
            "5 m",
            "5mm",
            "m5",
            "5M",
            "99999999999999999999d",
            "213503982334602d",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert_eq!(err, InvalidDuration(bad.to_owned()));
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn intervals_step_through_the_list_then_the_last_repeats() {
        let p = RetryPolicy::default();
        let mut rng = SplitMix64::new(1);
        let mins: Vec<u64> = (1..=9)
            .map(|n| p.delay(n, &mut rng).as_secs() / 60)
            .collect();
        assert_eq!(mins, [5, 10, 20, 40, 60, 120, 240, 240, 240]);
        assert_eq!(p.delay(0, &mut rng), Duration::from_secs(300));
        assert_eq!(p.max_age_for(false), Duration::from_secs(5 * 86400));
        assert_eq!(p.max_age_for(true), Duration::from_secs(2 * 86400));
        assert_eq!(p.delay_warning, None);
    }

    #[test]
    fn jitter_stays_within_its_bounds_and_replays_from_the_seed() {
        let p = RetryPolicy {
            jitter_percent: 20,
            ..RetryPolicy::default()
        };
        let draw = |seed| {
            let mut rng = SplitMix64::new(seed);
            (0..200)
                .map(|_| p.delay(1, &mut rng).as_secs())
                .collect::<Vec<_>>()
        };
        let a = draw(7);
        assert_eq!(a, draw(7), "same seed, same waits");
        assert_ne!(a, draw(8));
        assert!(a.iter().all(|&d| (240..=360).contains(&d)), "{a:?}");
        assert!(a.iter().any(|&d| d != 300), "jitter is applied");
    }

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // First outputs of the reference implementation seeded with 0.
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }
}
