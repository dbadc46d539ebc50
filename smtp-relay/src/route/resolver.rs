//! The DNS answers routing needs, behind a [`Resolver`] trait: MX, A and AAAA lookups that give
//! records with TTLs, NXDOMAIN, or a temporary failure. [`StaticResolver`] answers from a table
//! (tests); [`DnsCache`] keeps answers for their TTL and failures for a short negative TTL,
//! keyed by (name, type), with the time passed in; [`Cached`] puts one in front of a resolver.
//!
//! What it does not do: send a DNS query (the driver's resolver does, on its own thread) or
//! decide what an answer means for delivery (see [`super::mx`]).

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

/// An MX record: a preference and an exchange host name (`.` for a null MX, RFC 7505).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MxRecord {
    /// Lower is tried first.
    pub preference: u16,
    /// The exchange's name, as in the answer.
    pub exchange: String,
}

impl MxRecord {
    /// An MX record.
    pub fn new(preference: u16, exchange: &str) -> MxRecord {
        MxRecord {
            preference,
            exchange: exchange.to_string(),
        }
    }
}

/// One record of an answer and its TTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<T> {
    /// The data.
    pub value: T,
    /// How long it may be cached.
    pub ttl: Duration,
}

/// The answer to one lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<T> {
    /// The records (empty: the name exists but has none of this type, NODATA).
    Records(Vec<Record<T>>),
    /// The name does not exist.
    NxDomain,
    /// SERVFAIL, a timeout or another failure worth retrying; the text says which.
    TempFail(String),
}

impl<T> Lookup<T> {
    /// How long the answer may be cached: the smallest record TTL, `negative` for NODATA,
    /// NXDOMAIN and failures.
    pub fn ttl(&self, negative: Duration) -> Duration {
        match self {
            Lookup::Records(r) if !r.is_empty() => {
                r.iter().map(|r| r.ttl).min().unwrap_or(negative)
            }
            _ => negative,
        }
    }
}

/// The record types routing asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordType {
    /// MX.
    Mx,
    /// A.
    A,
    /// AAAA.
    Aaaa,
}

/// DNS lookups. Names are passed normalised (A-label, lower case, no trailing dot).
pub trait Resolver {
    /// The MX records of `name`.
    fn mx(&mut self, name: &str) -> Lookup<MxRecord>;
    /// The A records of `name`.
    fn a(&mut self, name: &str) -> Lookup<Ipv4Addr>;
    /// The AAAA records of `name`.
    fn aaaa(&mut self, name: &str) -> Lookup<Ipv6Addr>;
}

/// A [`Resolver`] answering from tables: a name without an entry of a type is NODATA when it
/// has an entry of another type, NXDOMAIN otherwise. Counts the lookups it answers.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    mx: HashMap<String, Lookup<MxRecord>>,
    a: HashMap<String, Lookup<Ipv4Addr>>,
    aaaa: HashMap<String, Lookup<Ipv6Addr>>,
    lookups: usize,
}

const STATIC_TTL: Duration = Duration::from_secs(300);

fn records<T: Clone>(values: &[T]) -> Lookup<T> {
    Lookup::Records(
        values
            .iter()
            .map(|v| Record {
                value: v.clone(),
                ttl: STATIC_TTL,
            })
            .collect(),
    )
}

impl StaticResolver {
    /// An empty table: every name is NXDOMAIN.
    pub fn new() -> StaticResolver {
        StaticResolver::default()
    }

    /// Adds MX records (TTL 300 s) for `name`.
    pub fn with_mx(mut self, name: &str, mx: &[(u16, &str)]) -> StaticResolver {
        let mx: Vec<MxRecord> = mx.iter().map(|(p, e)| MxRecord::new(*p, e)).collect();
        self.mx.insert(name.to_string(), records(&mx));
        self
    }

    /// Adds A records (TTL 300 s) for `name`.
    pub fn with_a(mut self, name: &str, addrs: &[Ipv4Addr]) -> StaticResolver {
        self.a.insert(name.to_string(), records(addrs));
        self
    }

    /// Adds AAAA records (TTL 300 s) for `name`.
    pub fn with_aaaa(mut self, name: &str, addrs: &[Ipv6Addr]) -> StaticResolver {
        self.aaaa.insert(name.to_string(), records(addrs));
        self
    }

    /// Makes every lookup of `name` of type `rtype` give `TempFail` (a SERVFAIL).
    pub fn with_failure(mut self, name: &str, rtype: RecordType) -> StaticResolver {
        let name = name.to_string();
        let fail = "SERVFAIL".to_string();
        match rtype {
            RecordType::Mx => _ = self.mx.insert(name, Lookup::TempFail(fail)),
            RecordType::A => _ = self.a.insert(name, Lookup::TempFail(fail)),
            RecordType::Aaaa => _ = self.aaaa.insert(name, Lookup::TempFail(fail)),
        }
        self
    }

    /// How many lookups it answered.
    pub fn lookups(&self) -> usize {
        self.lookups
    }

    fn exists(&self, name: &str) -> bool {
        self.mx.contains_key(name) || self.a.contains_key(name) || self.aaaa.contains_key(name)
    }

    fn answer<T: Clone>(&self, table: &HashMap<String, Lookup<T>>, name: &str) -> Lookup<T> {
        match table.get(name) {
            Some(answer) => answer.clone(),
            None if self.exists(name) => Lookup::Records(Vec::new()),
            None => Lookup::NxDomain,
        }
    }
}

impl Resolver for StaticResolver {
    fn mx(&mut self, name: &str) -> Lookup<MxRecord> {
        self.lookups += 1;
        self.answer(&self.mx, name)
    }

    fn a(&mut self, name: &str) -> Lookup<Ipv4Addr> {
        self.lookups += 1;
        self.answer(&self.a, name)
    }

    fn aaaa(&mut self, name: &str) -> Lookup<Ipv6Addr> {
        self.lookups += 1;
        self.answer(&self.aaaa, name)
    }
}

/// How long a failure, NXDOMAIN or NODATA is cached when not told otherwise.
pub const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
struct Entry<T> {
    answer: Lookup<T>,
    expires: Instant,
}

/// A TTL cache of answers keyed by (name, type). Time is passed in.
#[derive(Debug, Clone)]
pub struct DnsCache {
    negative_ttl: Duration,
    mx: HashMap<String, Entry<MxRecord>>,
    a: HashMap<String, Entry<Ipv4Addr>>,
    aaaa: HashMap<String, Entry<Ipv6Addr>>,
}

impl Default for DnsCache {
    fn default() -> DnsCache {
        DnsCache::new(DEFAULT_NEGATIVE_TTL)
    }
}

impl DnsCache {
    /// An empty cache keeping failures and empty answers for `negative_ttl`.
    pub fn new(negative_ttl: Duration) -> DnsCache {
        DnsCache {
            negative_ttl,
            mx: HashMap::new(),
            a: HashMap::new(),
            aaaa: HashMap::new(),
        }
    }

    /// Drops every entry that has expired at `now`.
    pub fn expire(&mut self, now: Instant) {
        self.mx.retain(|_, e| e.expires > now);
        self.a.retain(|_, e| e.expires > now);
        self.aaaa.retain(|_, e| e.expires > now);
    }

    /// How many answers it holds (expired ones included until [`DnsCache::expire`]).
    pub fn len(&self) -> usize {
        self.mx.len() + self.a.len() + self.aaaa.len()
    }

    /// Whether it holds no answer.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn cached<T: Clone>(
    map: &mut HashMap<String, Entry<T>>,
    name: &str,
    now: Instant,
    negative_ttl: Duration,
    ask: impl FnOnce() -> Lookup<T>,
) -> Lookup<T> {
    if let Some(entry) = map.get(name).filter(|e| e.expires > now) {
        return entry.answer.clone();
    }
    let answer = ask();
    let expires = now + answer.ttl(negative_ttl);
    map.insert(
        name.to_string(),
        Entry {
            answer: answer.clone(),
            expires,
        },
    );
    answer
}

/// A [`Resolver`] that answers from a [`DnsCache`] and asks `inner` on a miss, at time `now`.
#[derive(Debug)]
pub struct Cached<'a, R> {
    /// The cache.
    pub cache: &'a mut DnsCache,
    /// The resolver asked on a miss.
    pub inner: &'a mut R,
    /// The time of the lookups.
    pub now: Instant,
}

impl<R: Resolver> Resolver for Cached<'_, R> {
    fn mx(&mut self, name: &str) -> Lookup<MxRecord> {
        let ttl = self.cache.negative_ttl;
        cached(&mut self.cache.mx, name, self.now, ttl, || {
            self.inner.mx(name)
        })
    }

    fn a(&mut self, name: &str) -> Lookup<Ipv4Addr> {
        let ttl = self.cache.negative_ttl;
        cached(&mut self.cache.a, name, self.now, ttl, || {
            self.inner.a(name)
        })
    }

    fn aaaa(&mut self, name: &str) -> Lookup<Ipv6Addr> {
        let ttl = self.cache.negative_ttl;
        cached(&mut self.cache.aaaa, name, self.now, ttl, || {
            self.inner.aaaa(name)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_static_table_gives_records_nodata_nxdomain_and_failures() {
        let mut r = StaticResolver::new()
            .with_mx("a.test", &[(10, "mx.a.test")])
            .with_a("mx.a.test", &[Ipv4Addr::new(192, 0, 2, 1)])
            .with_failure("b.test", RecordType::Mx);
        assert!(matches!(r.mx("a.test"), Lookup::Records(v) if v.len() == 1));
        assert_eq!(r.a("a.test"), Lookup::Records(vec![]));
        assert_eq!(r.aaaa("mx.a.test"), Lookup::Records(vec![]));
        assert_eq!(r.mx("none.test"), Lookup::NxDomain);
        assert!(matches!(r.mx("b.test"), Lookup::TempFail(_)));
        assert_eq!(r.lookups(), 5);
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a test needs one Instant to count from
    fn the_cache_keeps_answers_for_their_ttl_and_failures_for_the_negative_ttl() {
        let mut inner = StaticResolver::new()
            .with_a("h.test", &[Ipv4Addr::new(192, 0, 2, 1)])
            .with_failure("f.test", RecordType::A);
        let mut cache = DnsCache::new(Duration::from_secs(5));
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let mut ask = |now, name: &str, rtype| {
            let mut c = Cached {
                cache: &mut cache,
                inner: &mut inner,
                now,
            };
            match rtype {
                RecordType::A => drop(c.a(name)),
                RecordType::Aaaa => drop(c.aaaa(name)),
                RecordType::Mx => drop(c.mx(name)),
            }
            c.inner.lookups()
        };
        assert_eq!(ask(at(0), "h.test", RecordType::A), 1);
        assert_eq!(ask(at(299), "h.test", RecordType::A), 1, "within the TTL");
        assert_eq!(
            ask(at(1), "h.test", RecordType::Aaaa),
            2,
            "another type is another key"
        );
        assert_eq!(
            ask(at(300), "h.test", RecordType::A),
            3,
            "expired at its TTL"
        );
        assert_eq!(ask(at(0), "f.test", RecordType::A), 4);
        assert_eq!(
            ask(at(4), "f.test", RecordType::A),
            4,
            "a failure is cached briefly"
        );
        assert_eq!(ask(at(5), "f.test", RecordType::A), 5, "and no longer");
        assert_eq!(ask(at(5), "gone.test", RecordType::Mx), 6);
        assert_eq!(
            ask(at(9), "gone.test", RecordType::Mx),
            6,
            "NXDOMAIN is negative"
        );
        assert_eq!(cache.len(), 4);
        cache.expire(at(599));
        assert_eq!(
            cache.len(),
            1,
            "the A answer refreshed at 300 s lives to 600 s"
        );
        cache.expire(at(600));
        assert!(cache.is_empty());
    }

    #[test]
    fn the_ttl_of_an_answer_is_its_smallest_record_ttl() {
        let answer = Lookup::Records(vec![
            Record {
                value: 1,
                ttl: Duration::from_secs(60),
            },
            Record {
                value: 2,
                ttl: Duration::from_secs(10),
            },
        ]);
        let neg = Duration::from_secs(3);
        assert_eq!(answer.ttl(neg), Duration::from_secs(10));
        assert_eq!(Lookup::<u8>::Records(vec![]).ttl(neg), neg);
        assert_eq!(Lookup::<u8>::NxDomain.ttl(neg), neg);
    }
}
