//! Connection caps shared by every loop thread: the global count, the count per client and
//! the connection rate per client. A client is an IPv4 address or an IPv6 /64 (one host
//! commonly holds a whole /64); an IPv4-mapped IPv6 address is its IPv4 address.
//!
//! What it does not do: read the clock (the accept path passes `now`) or answer the client
//! (the accept path writes the `421`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The connection-rate window (`connection_rate_per_ip` is per minute).
const RATE_WINDOW: Duration = Duration::from_secs(60);
/// Rate entries kept before stale ones (windows over) are swept.
const RATE_SWEEP: usize = 4096;

/// The most clients whose connection rate is tracked at once. Past it (a flood from a
/// million /64s), a client not tracked yet is not counted: each new /64 is a new client to
/// the rate limit anyway, and the table cannot grow without end.
const MAX_RATE_CLIENTS: usize = 200_000;

/// Why a connection may not be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The server holds `connections` already: leave it in the listen backlog.
    Full,
    /// This client holds `connections_per_ip` already: `421 4.7.0`.
    PerIp,
    /// This client opened `connection_rate_per_ip` connections in the last minute:
    /// `421 4.7.0`.
    Rate,
}

/// The key a client is counted under: its IPv4 address, or its IPv6 /64.
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

/// One client's connections in the current window.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
}

/// The per-client state behind one mutex.
#[derive(Debug, Default)]
struct PerClient {
    open: HashMap<IpAddr, usize>,
    rate: HashMap<IpAddr, Window>,
    /// Sweep the rate map when it grows past this.
    sweep_at: usize,
    /// When a full rate map was last swept (at most once a second then).
    swept_full: Option<Instant>,
}

/// The counters. The per-client maps are behind a mutex taken once per accept and once per
/// close: short critical sections, never held across I/O. The caps change on a reload
/// ([`set`](ConnLimits::set)).
#[derive(Debug)]
pub(crate) struct ConnLimits {
    max: AtomicUsize,
    max_per_ip: AtomicUsize,
    /// Connections per client per minute; 0: unlimited.
    rate_per_minute: AtomicU32,
    exempt_loopback: AtomicBool,
    total: AtomicUsize,
    per_ip: Mutex<PerClient>,
}

impl ConnLimits {
    pub(crate) fn new(max: usize, max_per_ip: usize, exempt_loopback: bool) -> Self {
        ConnLimits {
            max: AtomicUsize::new(max),
            max_per_ip: AtomicUsize::new(max_per_ip),
            rate_per_minute: AtomicU32::new(0),
            exempt_loopback: AtomicBool::new(exempt_loopback),
            total: AtomicUsize::new(0),
            per_ip: Mutex::new(PerClient {
                sweep_at: RATE_SWEEP,
                ..PerClient::default()
            }),
        }
    }

    /// Limits each client to `n` connections per minute (0: unlimited).
    pub(crate) fn with_rate_per_minute(self, n: u32) -> Self {
        self.rate_per_minute.store(n, Ordering::Relaxed);
        self
    }

    /// New caps (a reload); connections above a lowered cap stay.
    pub(crate) fn set(&self, max: usize, max_per_ip: usize, exempt_loopback: bool, rate: u32) {
        self.max.store(max, Ordering::Relaxed);
        self.max_per_ip.store(max_per_ip, Ordering::Relaxed);
        self.exempt_loopback
            .store(exempt_loopback, Ordering::Relaxed);
        self.rate_per_minute.store(rate, Ordering::Relaxed);
    }

    /// The most simultaneous connections in all (`limits.connections`).
    pub(crate) fn max(&self) -> usize {
        self.max.load(Ordering::Relaxed)
    }

    /// Whether another connection may be accepted at all.
    pub(crate) fn has_room(&self) -> bool {
        self.total.load(Ordering::Acquire) < self.max.load(Ordering::Relaxed)
    }

    /// Counts a connection from `ip` accepted at `now`, or says why not.
    pub(crate) fn acquire(&self, ip: IpAddr, now: Instant) -> Result<(), Refusal> {
        if self.total.fetch_add(1, Ordering::AcqRel) >= self.max.load(Ordering::Relaxed) {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Full);
        }
        let exempt = self.exempt_loopback.load(Ordering::Relaxed) && ip.is_loopback();
        let (max_per_ip, rate_per_minute) = (
            self.max_per_ip.load(Ordering::Relaxed),
            self.rate_per_minute.load(Ordering::Relaxed),
        );
        let key = client_key(ip);
        let mut guard = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let clients = &mut *guard;
        let n = clients.open.get(&key).copied().unwrap_or(0);
        let refusal = if n >= max_per_ip && !exempt {
            Some(Refusal::PerIp)
        } else if rate_per_minute > 0
            && !exempt
            && (clients.rate.len() < MAX_RATE_CLIENTS || clients.rate.contains_key(&key))
        {
            let window = clients.rate.entry(key).or_insert(Window {
                start: now,
                count: 0,
            });
            if now.saturating_duration_since(window.start) >= RATE_WINDOW {
                *window = Window {
                    start: now,
                    count: 0,
                };
            }
            if window.count >= rate_per_minute {
                Some(Refusal::Rate)
            } else {
                window.count += 1;
                None
            }
        } else {
            None
        };
        let full = clients.rate.len() >= MAX_RATE_CLIENTS;
        let sweep = clients.rate.len() > clients.sweep_at
            && (!full
                || clients
                    .swept_full
                    .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1)));
        if sweep {
            if full {
                clients.swept_full = Some(now);
            }
            clients
                .rate
                .retain(|_, w| now.saturating_duration_since(w.start) < RATE_WINDOW);
            // Twice what is live, so sweeps stay amortised, and never past the cap, so a
            // full table is swept again once it is full.
            clients.sweep_at = RATE_SWEEP
                .max(2 * clients.rate.len())
                .min(MAX_RATE_CLIENTS - 1);
        }
        if let Some(refusal) = refusal {
            drop(guard);
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(refusal);
        }
        *clients.open.entry(key).or_insert(0) += 1;
        Ok(())
    }

    /// Forgets a connection counted by [`acquire`](ConnLimits::acquire).
    pub(crate) fn release(&self, ip: IpAddr) {
        let key = client_key(ip);
        let mut clients = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = clients.open.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                clients.open.remove(&key);
            }
        }
        drop(clients);
        self.total.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_and_release() {
        let t0 = Instant::now();
        let l = ConnLimits::new(3, 2, true);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(l.acquire(a, t0), Ok(()));
        assert_eq!(l.acquire(a, t0), Ok(()));
        assert_eq!(l.acquire(a, t0), Err(Refusal::PerIp));
        assert_eq!(l.acquire(b, t0), Ok(()));
        assert!(!l.has_room());
        assert_eq!(l.acquire(b, t0), Err(Refusal::Full));
        l.release(a);
        assert!(l.has_room());
        assert_eq!(l.acquire(b, t0), Ok(()));
    }

    #[test]
    fn loopback_may_be_exempt() {
        let t0 = Instant::now();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let l = ConnLimits::new(10, 1, true);
        assert_eq!(l.acquire(lo, t0), Ok(()));
        assert_eq!(l.acquire(lo, t0), Ok(()));
        let l = ConnLimits::new(10, 1, false);
        assert_eq!(l.acquire(lo, t0), Ok(()));
        assert_eq!(l.acquire(lo, t0), Err(Refusal::PerIp));
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let t0 = Instant::now();
        let l = ConnLimits::new(10, 2, true);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(l.acquire(a, t0), Ok(()));
        assert_eq!(l.acquire(b, t0), Ok(()));
        assert_eq!(l.acquire(a, t0), Err(Refusal::PerIp), "same /64");
        assert_eq!(l.acquire(other, t0), Ok(()), "another /64");
        l.release(b);
        assert_eq!(l.acquire(a, t0), Ok(()));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn the_rate_is_per_client_per_minute() {
        let t0 = Instant::now();
        let l = ConnLimits::new(100, 100, true).with_rate_per_minute(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let v6_same: IpAddr = "2001:db8::2".parse().unwrap();
        assert_eq!(l.acquire(a, t0), Ok(()));
        l.release(a);
        assert_eq!(l.acquire(a, t0 + Duration::from_secs(1)), Ok(()));
        l.release(a);
        // Closed or not, a third connection within the minute is refused.
        assert_eq!(
            l.acquire(a, t0 + Duration::from_secs(2)),
            Err(Refusal::Rate)
        );
        assert_eq!(l.acquire(v6, t0), Ok(()));
        assert_eq!(l.acquire(v6_same, t0), Ok(()));
        assert_eq!(l.acquire(v6_same, t0), Err(Refusal::Rate), "the same /64");
        // A minute later, a new window.
        assert_eq!(l.acquire(a, t0 + Duration::from_secs(60)), Ok(()));
        // Loopback is exempt.
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..5 {
            assert_eq!(l.acquire(lo, t0), Ok(()));
        }
        // A refused connection is not counted in the total.
        assert!(l.has_room());
    }

    #[test]
    fn the_rate_table_is_bounded_under_a_flood_of_new_clients() {
        let t0 = Instant::now();
        let l = ConnLimits::new(usize::MAX, usize::MAX, false).with_rate_per_minute(1);
        let v6 = |i: u64| -> IpAddr {
            let hi = (0x2001_0db8u128 << 96) | (u128::from(i) << 64);
            IpAddr::V6(hi.into())
        };
        let tracked = v6(0);
        assert_eq!(l.acquire(tracked, t0), Ok(()));
        // A flood of new /64s within the minute: every one is let in, the table stops at
        // its cap, and a client tracked before it filled is still limited.
        for i in 1..(MAX_RATE_CLIENTS as u64 + 1000) {
            let ip = v6(i);
            assert_eq!(l.acquire(ip, t0), Ok(()));
            l.release(ip);
        }
        assert_eq!(l.per_ip.lock().unwrap().rate.len(), MAX_RATE_CLIENTS);
        assert_eq!(l.acquire(tracked, t0), Err(Refusal::Rate));
        // Once their windows are over, the next accept sweeps them out.
        let later = t0 + RATE_WINDOW + Duration::from_secs(1);
        assert_eq!(l.acquire(v6(1), later), Ok(()));
        assert_eq!(l.per_ip.lock().unwrap().rate.len(), 1);
    }

    #[test]
    fn new_caps_apply_at_once() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let now = Instant::now();
        let l = ConnLimits::new(10, 1, true);
        assert_eq!(l.acquire(a, now), Ok(()));
        assert_eq!(l.acquire(a, now), Err(Refusal::PerIp));
        l.set(1, 5, true, 0);
        assert!(!l.has_room());
        assert_eq!(l.acquire(a, now), Err(Refusal::Full));
        l.set(10, 5, true, 1);
        assert_eq!(l.acquire(a, now), Ok(()), "the first of the minute");
        assert_eq!(l.acquire(a, now), Err(Refusal::Rate), "one a minute");
        l.set(10, 5, true, 0);
        assert_eq!(l.acquire(a, now), Ok(()));
    }
}
