//! The dispatcher's books of destinations and pools: a destination is interned with one
//! pool per next hop ([`PoolKey`]), a pool knows the destinations that list it, and both are
//! forgotten once nothing refers to them (so their number stays bounded by the jobs and
//! connections there are); a pool's idle connections, and which of its destinations has
//! waited longest. Which job goes where, and when to open or close, is decided elsewhere.

use std::collections::{BTreeSet, VecDeque};

use super::{ConnId, Dest, DestinationId, Dispatcher, Queued};
use crate::driver::engine::destination::{Destination, PoolKey};

/// A pool's number within one dispatcher (never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct PoolId(u64);

/// The connections of one [`PoolKey`].
#[derive(Debug)]
pub(super) struct Pool {
    pub(super) key: PoolKey,
    /// Its connections (opening, ready, busy or closing): what `max_connections` counts.
    pub(super) conns: usize,
    /// Ready connections without a job, the most recently idle last.
    pub(super) idle: Vec<ConnId>,
    /// The destinations that list it among their next hops (a set: a server many domains
    /// name, such as a large mailbox provider's, may be listed by thousands).
    pub(super) dests: BTreeSet<DestinationId>,
    /// Those with a job waiting, by the submit number of their first waiting job: a ready
    /// connection takes the first (no scan of every destination the pool serves). Kept in
    /// step by the only ways a destination's queue changes: [`Dispatcher::enqueue`],
    /// [`Dispatcher::dequeue`] and [`Dispatcher::take_all_waiting`].
    pub(super) waiting: BTreeSet<(u64, DestinationId)>,
}

impl Dispatcher {
    /// The id of destination `spec`, made (with its pools) when it has none.
    pub(super) fn intern(&mut self, spec: Destination) -> DestinationId {
        if let Some(&id) = self.index.get(&spec) {
            return id;
        }
        let id = DestinationId(self.next_dest);
        self.next_dest += 1;
        let pools = spec
            .hops
            .iter()
            .map(|hop| {
                let key = spec.pool_key(hop, self.config.tls, self.config.verify);
                let pool = self.intern_pool(key);
                if let Some(p) = self.pools.get_mut(&pool) {
                    p.dests.insert(id);
                }
                pool
            })
            .collect();
        let dest = Dest {
            max_connections: spec.max_connections.unwrap_or(usize::MAX),
            max_deliveries: spec.max_deliveries.unwrap_or(self.config.max_deliveries),
            spec: spec.clone(),
            pools,
            waiting: VecDeque::new(),
            conns: 0,
            setting_up: 0,
            in_flight: 0,
            hop: 0,
            failures: 0,
            last_failure: None,
            blocked: false,
        };
        self.index.insert(spec, id);
        self.dests.insert(id, dest);
        id
    }

    fn intern_pool(&mut self, key: PoolKey) -> PoolId {
        if let Some(&id) = self.pool_index.get(&key) {
            return id;
        }
        let id = PoolId(self.next_pool);
        self.next_pool += 1;
        self.pool_index.insert(key.clone(), id);
        self.pools.insert(
            id,
            Pool {
                key,
                conns: 0,
                idle: Vec::new(),
                dests: BTreeSet::new(),
                waiting: BTreeSet::new(),
            },
        );
        id
    }

    /// Forgets destination `id` once it has no job, no connection opened for it, and does
    /// not wait for room; then the pools only it listed and without connections.
    pub(super) fn forget_if_empty(&mut self, id: DestinationId) {
        let empty = self.dests.get(&id).is_some_and(|d| {
            d.conns == 0 && d.in_flight == 0 && d.waiting.is_empty() && !d.blocked
        });
        if !empty {
            return;
        }
        let Some(d) = self.dests.remove(&id) else {
            return;
        };
        self.index.remove(&d.spec);
        for pool in d.pools {
            if let Some(p) = self.pools.get_mut(&pool) {
                p.dests.remove(&id);
            }
            self.forget_pool_if_empty(pool);
        }
    }

    /// Forgets pool `pool` once it has no connection and no destination lists it.
    pub(super) fn forget_pool_if_empty(&mut self, pool: PoolId) {
        let empty = self
            .pools
            .get(&pool)
            .is_some_and(|p| p.conns == 0 && p.dests.is_empty());
        if empty {
            if let Some(p) = self.pools.remove(&pool) {
                self.pool_index.remove(&p.key);
            }
        }
    }

    /// The destination of pool `pool` whose first waiting job was submitted first.
    pub(super) fn oldest_waiting(&self, pool: PoolId) -> Option<DestinationId> {
        self.pools.get(&pool)?.waiting.first().map(|&(_, id)| id)
    }

    /// Queues `job` for destination `id`: last, or first (a job back from a broken
    /// connection keeps its turn).
    pub(super) fn enqueue(&mut self, id: DestinationId, job: Queued, first: bool) {
        let before = self.front_seq(id);
        let Some(d) = self.dests.get_mut(&id) else {
            return;
        };
        if first {
            d.waiting.push_front(job);
        } else {
            d.waiting.push_back(job);
        }
        self.waiting += 1;
        self.requeued(id, before);
    }

    /// Takes destination `id`'s first waiting job, now on a connection (in flight).
    pub(super) fn dequeue(&mut self, id: DestinationId) -> Option<Queued> {
        let d = self.dests.get_mut(&id)?;
        let job = d.waiting.pop_front()?;
        d.in_flight += 1;
        self.waiting -= 1;
        self.requeued(id, Some(job.seq));
        Some(job)
    }

    /// Takes every job waiting for destination `id`.
    pub(super) fn take_all_waiting(&mut self, id: DestinationId) -> Vec<Queued> {
        let Some(d) = self.dests.get_mut(&id) else {
            return Vec::new();
        };
        let jobs: Vec<Queued> = d.waiting.drain(..).collect();
        self.waiting -= jobs.len();
        self.requeued(id, jobs.first().map(|q| q.seq));
        jobs
    }

    /// The submit number of destination `id`'s first waiting job, if it has one.
    fn front_seq(&self, id: DestinationId) -> Option<u64> {
        self.dests.get(&id)?.waiting.front().map(|q| q.seq)
    }

    /// Destination `id`'s waiting jobs changed, its first one having been `before` (its
    /// submit number): its pools' indexes of waiting destinations follow.
    fn requeued(&mut self, id: DestinationId, before: Option<u64>) {
        let Some(d) = self.dests.get(&id) else {
            return;
        };
        let after = d.waiting.front().map(|q| q.seq);
        if before == after {
            return;
        }
        for pool in &d.pools {
            if let Some(p) = self.pools.get_mut(pool) {
                if let Some(seq) = before {
                    p.waiting.remove(&(seq, id));
                }
                if let Some(seq) = after {
                    p.waiting.insert((seq, id));
                }
            }
        }
    }

    /// Takes `conn` out of pool `pool`'s idle connections.
    pub(super) fn take_idle(&mut self, pool: PoolId, conn: ConnId) {
        if let Some(p) = self.pools.get_mut(&pool) {
            p.idle.retain(|&i| i != conn);
        }
        self.idle_conns -= 1;
        self.idle.cancel(conn);
    }

    /// Panics unless every pool's index of waiting destinations is exactly what a scan of
    /// its destinations finds (tests call it after each step).
    #[cfg(test)]
    pub(super) fn check_waiting_index(&self) {
        for (id, p) in &self.pools {
            let scanned: BTreeSet<(u64, DestinationId)> = p
                .dests
                .iter()
                .filter_map(|d| Some((self.dests.get(d)?.waiting.front()?.seq, *d)))
                .collect();
            assert_eq!(p.waiting, scanned, "pool {id:?}");
        }
    }
}
