//! The one duration type of `impulse.toml`: every duration key takes an integer (seconds, as
//! the `[timeouts]` keys always did) or a string with a unit (`"1s"`, `"30s"`, `"5m"`, `"2h"`,
//! `"5d"`). `impulse config show` writes it back as a string with the largest exact unit.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration read from the config: seconds as an integer, or a string with a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ConfigDuration(pub Duration);

impl ConfigDuration {
    /// `secs` seconds.
    pub const fn from_secs(secs: u64) -> ConfigDuration {
        ConfigDuration(Duration::from_secs(secs))
    }

    /// The duration.
    pub const fn get(self) -> Duration {
        self.0
    }

    /// Whole seconds.
    pub const fn as_secs(self) -> u64 {
        self.0.as_secs()
    }

    /// Whether it is zero (often: "off").
    pub const fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl From<Duration> for ConfigDuration {
    fn from(d: Duration) -> Self {
        ConfigDuration(d)
    }
}

impl From<ConfigDuration> for Duration {
    fn from(d: ConfigDuration) -> Self {
        d.0
    }
}

impl fmt::Display for ConfigDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        let (n, unit) = if secs == 0 {
            (0, "s")
        } else if secs % 86_400 == 0 {
            (secs / 86_400, "d")
        } else if secs % 3_600 == 0 {
            (secs / 3_600, "h")
        } else if secs % 60 == 0 {
            (secs / 60, "m")
        } else {
            (secs, "s")
        };
        write!(f, "{n}{unit}")
    }
}

impl std::str::FromStr for ConfigDuration {
    type Err = smtp_relay::InvalidDuration;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        smtp_relay::parse_duration(text).map(ConfigDuration)
    }
}

impl Serialize for ConfigDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ConfigDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration: whole seconds, or a string such as \"30s\", \"5m\", \"2h\", \"5d\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ConfigDuration, E> {
                Ok(ConfigDuration::from_secs(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ConfigDuration, E> {
                u64::try_from(v)
                    .map(ConfigDuration::from_secs)
                    .map_err(|_| E::custom(format!("a duration cannot be negative ({v})")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ConfigDuration, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Serialize)]
    struct T {
        d: ConfigDuration,
    }

    fn parse(text: &str) -> Result<Duration, String> {
        toml::from_str::<T>(text)
            .map(|t| t.d.0)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn integers_are_seconds_and_strings_carry_a_unit() {
        assert_eq!(parse("d = 30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("d = \"1s\""), Ok(Duration::from_secs(1)));
        assert_eq!(parse("d = \"5m\""), Ok(Duration::from_secs(300)));
        assert_eq!(parse("d = \"2h\""), Ok(Duration::from_secs(7200)));
        assert_eq!(parse("d = \"5d\""), Ok(Duration::from_secs(432_000)));
    }

    #[test]
    fn bad_durations_say_what_is_expected() {
        for bad in [
            "d = -1",
            "d = \"5x\"",
            "d = \"1.5h\"",
            "d = 1.5",
            "d = true",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains("duration"), "{bad}: {e}");
        }
    }

    #[test]
    fn written_back_with_the_largest_exact_unit() {
        for (secs, text) in [
            (0, "0s"),
            (45, "45s"),
            (300, "5m"),
            (7200, "2h"),
            (172_800, "2d"),
            (90, "90s"),
        ] {
            let t = T {
                d: ConfigDuration::from_secs(secs),
            };
            assert_eq!(
                toml::to_string(&t).unwrap().trim(),
                format!("d = \"{text}\"")
            );
            assert_eq!(
                parse(&format!("d = \"{text}\"")),
                Ok(Duration::from_secs(secs))
            );
        }
    }
}
