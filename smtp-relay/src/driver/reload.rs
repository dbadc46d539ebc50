//! New settings for a running relay ([`Relay::reload`](super::Relay::reload), on SIGHUP):
//! the routes (the DNS threads' route table), the nameservers and DNS timeout (the DNS threads
//! start a new resolver and an empty cache), the retry policy (intervals, expiry, delay
//! warning, down time) and connections per destination (the scheduler's
//! [`ScheduleConfig`](crate::schedule::ScheduleConfig)) and messages per connection. Queued messages keep their records; a retry interval changed
//! applies from each recipient's next failure on, a `max_age` at its next check.
//!
//! What it does not change: the host name, the connection total, the plugins' client states and hooks, the jitter seed (each takes effect at the
//! next start), nor, while the nameservers stay the same, anything the DNS threads have
//! cached (DNS answers keep their TTL).

use crate::route::RouteTable;

use super::{Driver, RelaySettings};

/// What a DNS thread is asked.
#[derive(Debug)]
pub(crate) enum DnsRequest {
    /// Route this domain.
    Lookup(String),
    /// Route with this table from now on.
    Routes(RouteTable),
    /// Ask these nameservers (empty: the system's), with this timeout, from now on; forget
    /// what the old ones answered.
    Resolver {
        /// The recursive nameservers.
        nameservers: Vec<std::net::SocketAddr>,
        /// Per query and server.
        timeout: std::time::Duration,
    },
}

impl Driver {
    /// Puts `new` in force for what comes next (see the module doc).
    pub(super) fn reload_settings(&mut self, new: RelaySettings) {
        let resolver_changed = new.nameservers != self.settings.nameservers
            || new.dns_timeout != self.settings.dns_timeout;
        for dns in &self.dns {
            let _ = dns.send(DnsRequest::Routes(new.routes.clone()));
            if resolver_changed {
                let _ = dns.send(DnsRequest::Resolver {
                    nameservers: new.nameservers.clone(),
                    timeout: new.dns_timeout,
                });
            }
        }
        if resolver_changed {
            log::info!(
                "relay: nameservers {:?}, DNS timeout {:?} from now on",
                new.nameservers,
                new.dns_timeout
            );
            self.settings.nameservers = new.nameservers.clone();
            self.settings.dns_timeout = new.dns_timeout;
        }
        self.scheduler.set_config(new.schedule.clone());
        let s = &mut self.settings;
        s.routes = new.routes;
        s.schedule.retry = new.schedule.retry;
        s.schedule.connections_per_destination = new.schedule.connections_per_destination;
        s.messages_per_connection = new.messages_per_connection;
        log::info!(
            "relay: settings reloaded (routes, retry, connections per destination, messages per connection)"
        );
    }
}
