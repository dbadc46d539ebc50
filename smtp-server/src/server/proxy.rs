//! The HAProxy PROXY protocol header (versions 1 and 2), parsed from the first bytes of a
//! connection: [`parse`] says whether the bytes so far hold a whole header (and how long it
//! is), need more, or can never become one.
//!
//! Sans-IO: bytes in, a [`Header`] out. It does not decide whom to believe (the listener's
//! `proxy_from` does), read sockets or keep time (the loop's prelude does), and ignores the
//! TLVs of version 2 (they are skipped, within the size cap).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The longest version 1 header, CRLF included (the specification's 107 bytes).
pub(crate) const MAX_V1: usize = 107;
/// The longest version 2 header accepted, its 16-byte fixed part included: room for the
/// addresses and the usual TLVs; a longer one is refused.
pub(crate) const MAX_V2: usize = 16 + 1008;

/// The version 2 signature.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The version 1 prefix.
const V1_PREFIX: &[u8; 6] = b"PROXY ";

/// What a complete header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Header {
    /// A proxied TCP connection: the client's address and the address it connected to.
    Proxied {
        /// The client.
        source: SocketAddr,
        /// The address the client connected to (the proxy's front).
        destination: SocketAddr,
    },
    /// No client address: version 1 `UNKNOWN`, version 2 `LOCAL` (the proxy's own health
    /// checks), or a family other than TCP over IPv4/IPv6. Such a connection is never
    /// taken for a proxied client.
    Unknown,
}

/// Why the bytes can never be a valid header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ProxyError {
    /// They do not start with either version's signature.
    #[error("no PROXY header")]
    NotProxy,
    /// A header, but not a well-formed one.
    #[error("malformed PROXY header: {0}")]
    Malformed(&'static str),
    /// Longer than [`MAX_V1`] or [`MAX_V2`].
    #[error("PROXY header too long")]
    TooLong,
}

/// The bytes so far: a complete header and its length, or `None` when more bytes are needed.
pub(crate) fn parse(buf: &[u8]) -> Result<Option<(Header, usize)>, ProxyError> {
    let is_prefix = |sig: &[u8]| {
        let n = buf.len().min(sig.len());
        buf[..n] == sig[..n]
    };
    if is_prefix(V2_SIGNATURE) {
        if buf.len() < 16 {
            return Ok(None);
        }
        return parse_v2(buf);
    }
    if is_prefix(V1_PREFIX) {
        if buf.len() < V1_PREFIX.len() {
            return Ok(None);
        }
        return parse_v1(buf);
    }
    Err(ProxyError::NotProxy)
}

fn parse_v1(buf: &[u8]) -> Result<Option<(Header, usize)>, ProxyError> {
    let window = &buf[..buf.len().min(MAX_V1)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        return if buf.len() >= MAX_V1 {
            Err(ProxyError::TooLong)
        } else {
            Ok(None)
        };
    };
    let line = window[..lf]
        .strip_suffix(b"\r")
        .ok_or(ProxyError::Malformed("v1 line does not end in CRLF"))?;
    let line = std::str::from_utf8(line).map_err(|_| ProxyError::Malformed("v1 not ASCII"))?;
    let mut parts = line.split(' ');
    parts.next(); // "PROXY"
    let header = match parts.next() {
        Some("UNKNOWN") => Header::Unknown,
        Some(family @ ("TCP4" | "TCP6")) => {
            let fields: Vec<&str> = parts.collect();
            let [src, dst, sport, dport] = fields[..] else {
                return Err(ProxyError::Malformed(
                    "v1 needs two addresses and two ports",
                ));
            };
            let ip = |s: &str| -> Result<IpAddr, ProxyError> {
                let ip = if family == "TCP4" {
                    s.parse::<Ipv4Addr>().map(IpAddr::V4)
                } else {
                    s.parse::<Ipv6Addr>().map(IpAddr::V6)
                };
                ip.map_err(|_| ProxyError::Malformed("v1 address"))
            };
            let port = |s: &str| -> Result<u16, ProxyError> {
                let digits = !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
                let no_leading_zero = s == "0" || !s.starts_with('0');
                match s.parse::<u16>() {
                    Ok(p) if digits && no_leading_zero => Ok(p),
                    _ => Err(ProxyError::Malformed("v1 port")),
                }
            };
            Header::Proxied {
                source: SocketAddr::new(ip(src)?, port(sport)?),
                destination: SocketAddr::new(ip(dst)?, port(dport)?),
            }
        }
        _ => {
            return Err(ProxyError::Malformed(
                "v1 protocol is not TCP4, TCP6 or UNKNOWN",
            ))
        }
    };
    Ok(Some((header, lf + 1)))
}

fn parse_v2(buf: &[u8]) -> Result<Option<(Header, usize)>, ProxyError> {
    let version_command = buf[12];
    if version_command >> 4 != 2 {
        return Err(ProxyError::Malformed("v2 version is not 2"));
    }
    let family = buf[13];
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let total = 16 + len;
    if total > MAX_V2 {
        return Err(ProxyError::TooLong);
    }
    if buf.len() < total {
        return Ok(None);
    }
    let body = &buf[16..total];
    let header = match version_command & 0x0f {
        // LOCAL: the proxy speaks for itself; the addresses (if any) are ignored.
        0x0 => Header::Unknown,
        0x1 => match family {
            // TCP over IPv4.
            0x11 => {
                if body.len() < 12 {
                    return Err(ProxyError::Malformed("v2 IPv4 addresses truncated"));
                }
                let ip = |at: usize| {
                    IpAddr::V4(Ipv4Addr::new(
                        body[at],
                        body[at + 1],
                        body[at + 2],
                        body[at + 3],
                    ))
                };
                let port = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
                Header::Proxied {
                    source: SocketAddr::new(ip(0), port(8)),
                    destination: SocketAddr::new(ip(4), port(10)),
                }
            }
            // TCP over IPv6.
            0x21 => {
                if body.len() < 36 {
                    return Err(ProxyError::Malformed("v2 IPv6 addresses truncated"));
                }
                let ip = |at: usize| {
                    let mut octets = [0u8; 16];
                    octets.copy_from_slice(&body[at..at + 16]);
                    IpAddr::V6(Ipv6Addr::from(octets))
                };
                let port = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
                Header::Proxied {
                    source: SocketAddr::new(ip(0), port(32)),
                    destination: SocketAddr::new(ip(16), port(34)),
                }
            }
            // UNSPEC, UDP, UNIX sockets: no client address we can use.
            _ => Header::Unknown,
        },
        _ => {
            return Err(ProxyError::Malformed(
                "v2 command is neither LOCAL nor PROXY",
            ))
        }
    };
    Ok(Some((header, total)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// A version 2 header: command (0 LOCAL, 1 PROXY), family byte, address block, TLVs.
    pub(crate) fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(family);
        h.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        h.extend_from_slice(body);
        h
    }

    #[test]
    fn v1_tcp4_tcp6_and_unknown() {
        let text = b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\r\nEHLO x\r\n";
        let (h, n) = parse(text).unwrap().unwrap();
        assert_eq!(n, 44);
        assert_eq!(
            h,
            Header::Proxied {
                source: addr("192.0.2.7:40000"),
                destination: addr("198.51.100.1:25"),
            }
        );
        let text = b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 587\r\n";
        let (h, n) = parse(text).unwrap().unwrap();
        assert_eq!(n, text.len());
        assert!(
            matches!(h, Header::Proxied { source, .. } if source == addr("[2001:db8::7]:40000"))
        );
        let text = b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
        assert_eq!(parse(text).unwrap(), Some((Header::Unknown, text.len())));
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\n").unwrap(),
            Some((Header::Unknown, 15))
        );
    }

    #[test]
    fn v1_needs_more_until_its_line_ends() {
        let text = b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\r\n";
        for n in 0..text.len() {
            assert_eq!(parse(&text[..n]), Ok(None), "{n} bytes");
        }
    }

    #[test]
    fn v1_refuses_what_is_not_one() {
        for bad in [
            &b"PROXY TCP4 192.0.2.7 198.51.100.1 40000\r\n"[..],
            b"PROXY TCP4 2001:db8::7 198.51.100.1 1 2\r\n",
            b"PROXY TCP6 192.0.2.7 198.51.100.1 1 2\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 65536 25\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 025 25\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 +25 25\r\n",
            b"PROXY TCP4  192.0.2.7 198.51.100.1 1 2\r\n",
            b"PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 1 2\n",
            b"PROXY \xff\r\n",
        ] {
            assert!(
                matches!(parse(bad), Err(ProxyError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(parse(b"EHLO client\r\n"), Err(ProxyError::NotProxy));
        assert_eq!(parse(b"\x16\x03\x01"), Err(ProxyError::NotProxy));
        let long = [&b"PROXY UNKNOWN "[..], &[b'x'; 120]].concat();
        assert_eq!(parse(&long), Err(ProxyError::TooLong));
    }

    #[test]
    fn v2_ipv4_ipv6_local_and_unspec() {
        let mut body = vec![192, 0, 2, 7, 198, 51, 100, 1];
        body.extend_from_slice(&40000u16.to_be_bytes());
        body.extend_from_slice(&25u16.to_be_bytes());
        // A TLV after the addresses is skipped.
        body.extend_from_slice(&[0x04, 0x00, 0x02, b'o', b'k']);
        let mut h = v2(1, 0x11, &body);
        let len = h.len();
        h.extend_from_slice(b"EHLO x\r\n");
        assert_eq!(
            parse(&h).unwrap(),
            Some((
                Header::Proxied {
                    source: addr("192.0.2.7:40000"),
                    destination: addr("198.51.100.1:25"),
                },
                len
            ))
        );
        for n in 0..len {
            assert_eq!(parse(&h[..n]), Ok(None), "{n} bytes");
        }
        let mut body = "2001:db8::7".parse::<Ipv6Addr>().unwrap().octets().to_vec();
        body.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        body.extend_from_slice(&[0x9c, 0x40, 0x02, 0x4b]);
        let h = v2(1, 0x21, &body);
        assert_eq!(
            parse(&h).unwrap(),
            Some((
                Header::Proxied {
                    source: addr("[2001:db8::7]:40000"),
                    destination: addr("[2001:db8::1]:587"),
                },
                h.len()
            ))
        );
        // LOCAL, even with addresses; UNSPEC; a UNIX socket.
        for h in [
            v2(0, 0x11, &[0; 12]),
            v2(0, 0, &[]),
            v2(1, 0, &[]),
            v2(1, 0x31, &[0; 216]),
        ] {
            assert_eq!(parse(&h).unwrap(), Some((Header::Unknown, h.len())));
        }
    }

    #[test]
    fn v2_refuses_bad_versions_commands_truncations_and_oversize() {
        let mut wrong_version = v2(1, 0x11, &[0; 12]);
        wrong_version[12] = 0x11;
        let mut wrong_command = v2(1, 0x11, &[0; 12]);
        wrong_command[12] = 0x22;
        for bad in [
            wrong_version,
            wrong_command,
            v2(1, 0x11, &[0; 8]),
            v2(1, 0x21, &[0; 20]),
        ] {
            assert!(
                matches!(parse(&bad), Err(ProxyError::Malformed(_))),
                "{bad:?}"
            );
        }
        // The declared length alone is enough to refuse: nothing more is waited for.
        let mut huge = v2(1, 0x11, &[]);
        huge[14..16].copy_from_slice(&65535u16.to_be_bytes());
        assert_eq!(parse(&huge), Err(ProxyError::TooLong));
        assert!(parse(&v2(1, 0x11, &vec![0; MAX_V2 - 16]))
            .unwrap()
            .is_some());
        assert_eq!(
            parse(&v2(1, 0x11, &vec![0; MAX_V2 - 15])),
            Err(ProxyError::TooLong)
        );
    }

    proptest::proptest! {
        /// Any bytes, and any bytes after either signature: an answer, never a panic, and a
        /// complete header never longer than the input or the cap.
        #[test]
        fn any_input_is_answered(
            tail in proptest::collection::vec(proptest::num::u8::ANY, 0..1200),
            prefix in 0usize..3,
        ) {
            let mut bytes = match prefix {
                0 => Vec::new(),
                1 => V1_PREFIX.to_vec(),
                _ => V2_SIGNATURE.to_vec(),
            };
            bytes.extend_from_slice(&tail);
            if let Ok(Some((_, n))) = parse(&bytes) {
                proptest::prop_assert!(n <= bytes.len() && n <= MAX_V2);
            }
        }
    }

    #[test]
    fn no_input_makes_it_panic() {
        // Every prefix and every single-byte change of both versions.
        let mut v4 = vec![192, 0, 2, 7, 198, 51, 100, 1, 0, 1, 0, 2];
        v4.extend_from_slice(&[1, 0, 1, 9]);
        let samples = [
            v2(1, 0x11, &v4),
            b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 587\r\n".to_vec(),
        ];
        for sample in samples {
            for n in 0..=sample.len() {
                let _ = parse(&sample[..n]);
            }
            for i in 0..sample.len() {
                for b in [0u8, 0x0a, 0x0d, 0x20, 0x21, 0xff] {
                    let mut s = sample.clone();
                    s[i] = b;
                    let _ = parse(&s);
                }
            }
        }
    }
}
