//! [`Cidr`]: an IPv4 or IPv6 network (`127.0.0.0/8`, `::1/128`, or a bare address).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A network: an address and a prefix length. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The network, with the host bits cleared.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` lies in the network. An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`,
    /// what a dual-stack socket reports) is compared as the IPv4 address it maps.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                mask32(u32::from(ip), self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask128(u128::from(ip), self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask32(v: u32, prefix: u8) -> u32 {
    v & u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(v: u128, prefix: u8) -> u128 {
    v & u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

/// Why a network does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CidrError(String);

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CidrError {}

impl FromStr for Cidr {
    type Err = CidrError;

    /// Parses `addr/prefix` or a bare address (a /32 or /128). Host bits set below the
    /// prefix (`10.1.2.3/8`) are an error: it is usually a typo.
    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| CidrError(format!("{s:?} is not an IP address or network")))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| CidrError(format!("{s:?}: prefix length must be 0 to {max}")))?,
        };
        let clean = match network {
            IpAddr::V4(v) => mask32(u32::from(v), prefix) == u32::from(v),
            IpAddr::V6(v) => mask128(u128::from(v), prefix) == u128::from(v),
        };
        if !clean {
            return Err(CidrError(format!(
                "{s:?} has host bits set below the /{prefix} prefix"
            )));
        }
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn matches_v4_and_v6() {
        let lo: Cidr = "127.0.0.0/8".parse().unwrap();
        assert!(lo.contains(ip("127.0.0.1")));
        assert!(lo.contains(ip("127.255.255.254")));
        assert!(!lo.contains(ip("128.0.0.1")));
        assert!(!lo.contains(ip("::1")));
        assert!(lo.contains(ip("::ffff:127.0.0.1")), "v4-mapped");
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let one: Cidr = "::1/128".parse().unwrap();
        assert!(one.contains(ip("::1")) && !one.contains(ip("::2")));
        let host: Cidr = "192.0.2.7".parse().unwrap();
        assert_eq!(host.prefix(), 32);
        assert!(host.contains(ip("192.0.2.7")) && !host.contains(ip("192.0.2.8")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        let all6: Cidr = "::/0".parse().unwrap();
        assert!(all6.contains(ip("2001:db8::1")));
        assert_eq!(v6.to_string(), "2001:db8::/32");
    }

    #[test]
    fn refuses_bad_networks() {
        for (s, why) in [
            ("localhost", "is not an IP address"),
            ("127.0.0.0/33", "prefix length must be 0 to 32"),
            ("::1/129", "prefix length must be 0 to 128"),
            ("10.0.0.0/x", "prefix length"),
            ("10.1.2.3/8", "host bits set"),
            ("", "is not an IP address"),
        ] {
            let err = s.parse::<Cidr>().unwrap_err().to_string();
            assert!(err.contains(why), "{s}: {err}");
        }
    }
}
