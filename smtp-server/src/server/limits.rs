//! Connection caps shared by every loop thread: the global count and the count per client
//! address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Why a connection may not be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The server holds `connections` already: leave it in the listen backlog.
    Full,
    /// This address holds `connections_per_ip` already: `421 4.7.0`.
    PerIp,
}

/// The counters. The per-IP map is behind a mutex taken once per accept and once per
/// close: short critical sections, never held across I/O. The caps themselves change on a
/// reload ([`set`](ConnLimits::set)); connections above a lowered cap stay.
#[derive(Debug)]
pub(crate) struct ConnLimits {
    max: AtomicUsize,
    max_per_ip: AtomicUsize,
    exempt_loopback: AtomicBool,
    total: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

impl ConnLimits {
    pub(crate) fn new(max: usize, max_per_ip: usize, exempt_loopback: bool) -> Self {
        ConnLimits {
            max: AtomicUsize::new(max),
            max_per_ip: AtomicUsize::new(max_per_ip),
            exempt_loopback: AtomicBool::new(exempt_loopback),
            total: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
        }
    }

    /// New caps (a reload).
    pub(crate) fn set(&self, max: usize, max_per_ip: usize, exempt_loopback: bool) {
        self.max.store(max, Ordering::Relaxed);
        self.max_per_ip.store(max_per_ip, Ordering::Relaxed);
        self.exempt_loopback
            .store(exempt_loopback, Ordering::Relaxed);
    }

    /// Whether another connection may be accepted at all.
    pub(crate) fn has_room(&self) -> bool {
        self.total.load(Ordering::Acquire) < self.max.load(Ordering::Relaxed)
    }

    /// Counts a connection from `ip`, or says why not.
    pub(crate) fn acquire(&self, ip: IpAddr) -> Result<(), Refusal> {
        if self.total.fetch_add(1, Ordering::AcqRel) >= self.max.load(Ordering::Relaxed) {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Full);
        }
        let mut map = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        let exempt = self.exempt_loopback.load(Ordering::Relaxed) && ip.is_loopback();
        if *n >= self.max_per_ip.load(Ordering::Relaxed) && !exempt {
            drop(map);
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::PerIp);
        }
        *n += 1;
        Ok(())
    }

    /// Forgets a connection counted by [`acquire`](ConnLimits::acquire).
    pub(crate) fn release(&self, ip: IpAddr) {
        let mut map = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&ip);
            }
        }
        drop(map);
        self.total.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_and_release() {
        let l = ConnLimits::new(3, 2, true);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(l.acquire(a), Ok(()));
        assert_eq!(l.acquire(a), Ok(()));
        assert_eq!(l.acquire(a), Err(Refusal::PerIp));
        assert_eq!(l.acquire(b), Ok(()));
        assert!(!l.has_room());
        assert_eq!(l.acquire(b), Err(Refusal::Full));
        l.release(a);
        assert!(l.has_room());
        assert_eq!(l.acquire(b), Ok(()));
    }

    #[test]
    fn loopback_may_be_exempt() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let l = ConnLimits::new(10, 1, true);
        assert_eq!(l.acquire(lo), Ok(()));
        assert_eq!(l.acquire(lo), Ok(()));
        let l = ConnLimits::new(10, 1, false);
        assert_eq!(l.acquire(lo), Ok(()));
        assert_eq!(l.acquire(lo), Err(Refusal::PerIp));
    }

    #[test]
    fn new_caps_apply_at_once() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let l = ConnLimits::new(10, 1, true);
        assert_eq!(l.acquire(a), Ok(()));
        assert_eq!(l.acquire(a), Err(Refusal::PerIp));
        l.set(1, 5, true);
        assert!(!l.has_room());
        assert_eq!(l.acquire(a), Err(Refusal::Full));
        l.set(10, 5, true);
        assert_eq!(l.acquire(a), Ok(()));
    }
}
