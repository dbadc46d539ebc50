//! From a recipient domain to an ordered list of next hops: a static route's hosts through
//! A/AAAA, or RFC 5321 §5 and RFC 7505 over MX answers.
//!
//! MX records are sorted by preference and shuffled within a preference by a seed passed in;
//! no MX means an implicit MX of preference 0 on the domain's own A/AAAA; a null MX (`0 .`)
//! is a permanent `556 5.1.10`; NXDOMAIN is a permanent `5.1.2`; SERVFAIL or a timeout is
//! temporary. An MX list naming this host (its name, or an address it listens on) is a loop:
//! records of that preference and worse are dropped, and with none left the answer is a
//! permanent `5.4.6`. An MX host without addresses is skipped. At most
//! [`MAX_ADDRESSES`] addresses are tried per attempt, of at least two hosts when there are two.
//! A host's IPv4 addresses come before its IPv6 ones.
//!
//! What it does not do: send queries (a [`Resolver`] answers), cache (put a
//! [`super::resolver::Cached`] in front) or connect.

use std::net::{IpAddr, SocketAddr};

use smtp_proto::{EnhancedStatus, Reply};

use super::domain::normalize;
use super::resolver::{Lookup, MxRecord, Resolver};
use super::table::{HostSpec, RouteTable, TlsPolicy};

/// At most this many addresses are tried per delivery attempt (Postfix's
/// `smtp_mx_address_limit`).
pub const MAX_ADDRESSES: usize = 5;

/// One place to deliver to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NextHop {
    /// The host name, for SNI and certificate checks (the address as text for a static
    /// address).
    pub name: String,
    /// Where to connect.
    pub addr: SocketAddr,
    /// How to use STARTTLS.
    pub tls: TlsPolicy,
}

/// What routing gives for a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteOutcome {
    /// Try these, in order.
    Hops(Vec<NextHop>),
    /// Bounce every recipient of the domain with this reply; no attempt is made.
    Permanent(Reply),
    /// Defer every recipient of the domain with this reply.
    Temporary(Reply),
}

/// This host as loop detection sees it: its host names and the addresses it listens on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalHost {
    names: Vec<String>,
    addrs: Vec<IpAddr>,
}

impl LocalHost {
    /// This host: `names` (any case, normalised here) and its listen addresses.
    pub fn new<S: AsRef<str>>(names: &[S], addrs: &[IpAddr]) -> LocalHost {
        LocalHost {
            names: names.iter().filter_map(|n| normalize(n.as_ref())).collect(),
            addrs: addrs.iter().map(|a| a.to_canonical()).collect(),
        }
    }

    fn is_name(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    fn is_addr(&self, addr: IpAddr) -> bool {
        self.addrs.contains(&addr.to_canonical())
    }
}

fn reply(code: u16, status: (u8, u16, u16), text: &str) -> Reply {
    Reply::new(
        code,
        Some(EnhancedStatus::new(status.0, status.1, status.2)),
        text,
    )
}

/// Where mail for `domain` goes: the first matching route of `table`, or its MX. `seed`
/// shuffles MX records of equal preference (pass a fresh one per attempt).
pub fn resolve_domain(
    domain: &str,
    table: &RouteTable,
    local: &LocalHost,
    resolver: &mut dyn Resolver,
    seed: u64,
) -> RouteOutcome {
    let Some(name) = normalize(domain) else {
        return RouteOutcome::Permanent(reply(
            550,
            (5, 1, 2),
            &format!("{domain}: invalid domain name"),
        ));
    };
    match table.lookup(&name) {
        Some(route) => static_hops(route.hosts(), route.tls(), table.port(), resolver),
        None => mx_hops(&name, table.port(), local, resolver, seed),
    }
}

/// A host's addresses, or why there are none: `Err(Some(why))` when a lookup failed
/// temporarily, `Err(None)` when the host has none.
type Addresses = Result<Vec<IpAddr>, Option<String>>;

/// The addresses of `name` (A, then AAAA).
fn addresses(name: &str, resolver: &mut dyn Resolver) -> Addresses {
    let mut out = Vec::new();
    let mut temporary = None;
    match resolver.a(name) {
        Lookup::Records(r) => out.extend(r.into_iter().map(|r| IpAddr::V4(r.value))),
        Lookup::NxDomain => {}
        Lookup::TempFail(why) => temporary = Some(why),
    }
    match resolver.aaaa(name) {
        Lookup::Records(r) => out.extend(r.into_iter().map(|r| IpAddr::V6(r.value))),
        Lookup::NxDomain => {}
        Lookup::TempFail(why) => temporary = temporary.or(Some(why)),
    }
    if out.is_empty() {
        Err(temporary)
    } else {
        Ok(out)
    }
}

fn static_hops(
    hosts: &[HostSpec],
    tls: TlsPolicy,
    default_port: u16,
    resolver: &mut dyn Resolver,
) -> RouteOutcome {
    let mut hops = Vec::new();
    for host in hosts {
        match host {
            HostSpec::Addr(ip, port) => hops.push(NextHop {
                name: ip.to_string(),
                addr: SocketAddr::new(*ip, port.unwrap_or(default_port)),
                tls,
            }),
            HostSpec::Name(name, port) => {
                for ip in addresses(name, resolver).unwrap_or_default() {
                    hops.push(NextHop {
                        name: name.clone(),
                        addr: SocketAddr::new(ip, port.unwrap_or(default_port)),
                        tls,
                    });
                }
            }
        }
    }
    if hops.is_empty() {
        // A route is configuration: a host that does not resolve is the operator's to fix,
        // so its mail waits rather than bounces.
        return RouteOutcome::Temporary(reply(
            451,
            (4, 4, 4),
            "no address for any host of the route",
        ));
    }
    RouteOutcome::Hops(hops)
}

fn mx_hops(
    domain: &str,
    port: u16,
    local: &LocalHost,
    resolver: &mut dyn Resolver,
    seed: u64,
) -> RouteOutcome {
    let records: Vec<MxRecord> = match resolver.mx(domain) {
        Lookup::Records(r) => r.into_iter().map(|r| r.value).collect(),
        Lookup::NxDomain => {
            return RouteOutcome::Permanent(reply(
                550,
                (5, 1, 2),
                &format!("{domain}: Host or domain name not found"),
            ))
        }
        Lookup::TempFail(why) => {
            return RouteOutcome::Temporary(reply(
                451,
                (4, 4, 3),
                &format!("{domain}: temporary DNS failure ({why})"),
            ))
        }
    };
    if is_null_mx(&records) {
        return RouteOutcome::Permanent(reply(
            556,
            (5, 1, 10),
            &format!("{domain}: domain does not accept mail (null MX)"),
        ));
    }
    let implicit = records.is_empty();
    let mut ordered = if implicit {
        vec![MxRecord::new(0, domain)]
    } else {
        order_mx(records, seed)
    };
    // Resolve every host once: loop detection needs their addresses.
    let mut hosts: Vec<(MxRecord, Addresses)> = Vec::new();
    for mx in ordered.drain(..) {
        let Some(name) = normalize(&mx.exchange) else {
            continue;
        };
        let addrs = addresses(&name, resolver);
        hosts.push((MxRecord::new(mx.preference, &name), addrs));
    }
    let looping = hosts
        .iter()
        .filter(|(mx, addrs)| {
            local.is_name(&mx.exchange)
                || addrs
                    .as_ref()
                    .is_ok_and(|a| a.iter().any(|ip| local.is_addr(*ip)))
        })
        .map(|(mx, _)| mx.preference)
        .min();
    if let Some(pref) = looping {
        hosts.retain(|(mx, _)| mx.preference < pref);
        if hosts.is_empty() {
            return RouteOutcome::Permanent(reply(
                554,
                (5, 4, 6),
                &format!("{domain}: mail for the domain loops back to myself"),
            ));
        }
    }
    let temporary = hosts
        .iter()
        .find_map(|(_, a)| a.as_ref().err().cloned().flatten());
    let with_addrs: Vec<(String, Vec<IpAddr>)> = hosts
        .into_iter()
        .filter_map(|(mx, a)| a.ok().map(|a| (mx.exchange, a)))
        .collect();
    let hops = limit_addresses(&with_addrs, port);
    if !hops.is_empty() {
        return RouteOutcome::Hops(hops);
    }
    if let Some(why) = temporary {
        return RouteOutcome::Temporary(reply(
            451,
            (4, 4, 3),
            &format!("{domain}: temporary DNS failure looking up the mail hosts ({why})"),
        ));
    }
    if implicit {
        let text = format!("{domain}: Host or domain name not found (no MX and no address)");
        return RouteOutcome::Permanent(reply(550, (5, 1, 2), &text));
    }
    let text = format!("{domain}: no address for any MX host");
    RouteOutcome::Permanent(reply(550, (5, 4, 4), &text))
}

/// RFC 7505: a single MX record whose exchange is the root.
pub fn is_null_mx(records: &[MxRecord]) -> bool {
    matches!(records, [only] if only.exchange.is_empty() || only.exchange == ".")
}

/// Sorts by preference and shuffles records of equal preference with `seed` (a root exchange
/// among other records is not a null MX and is dropped).
pub fn order_mx(mut records: Vec<MxRecord>, seed: u64) -> Vec<MxRecord> {
    records.retain(|r| !(r.exchange.is_empty() || r.exchange == "."));
    records.sort_by_key(|r| r.preference);
    let mut rng = SplitMix64(seed);
    let mut start = 0;
    while start < records.len() {
        let pref = records[start].preference;
        let end = start
            + records[start..]
                .iter()
                .take_while(|r| r.preference == pref)
                .count();
        for i in (start + 1..end).rev() {
            let j = start + (rng.next() % (i - start + 1) as u64) as usize;
            records.swap(i, j);
        }
        start = end;
    }
    records
}

/// The hops of `hosts` (in order, each with its addresses) within [`MAX_ADDRESSES`]; when
/// two or more hosts have addresses, the first may not take every slot.
pub fn limit_addresses(hosts: &[(String, Vec<IpAddr>)], port: u16) -> Vec<NextHop> {
    let mut hops = Vec::new();
    for (i, (name, addrs)) in hosts.iter().enumerate() {
        let room = MAX_ADDRESSES - hops.len();
        let cap = if i == 0 && hosts.len() > 1 {
            room - 1
        } else {
            room
        };
        hops.extend(addrs.iter().take(cap).map(|ip| NextHop {
            name: name.clone(),
            addr: SocketAddr::new(*ip, port),
            tls: TlsPolicy::Opportunistic,
        }));
        if hops.len() == MAX_ADDRESSES {
            break;
        }
    }
    hops
}

/// A small deterministic generator for the shuffle (SplitMix64).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests;
