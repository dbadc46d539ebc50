//! DNS for the relay: a stub resolver over hickory-proto on blocking sockets, on the relay's
//! DNS thread (never on a server loop thread, never on the relay's own thread).
//!
//! Why not hickory-resolver: it is async-only and would bring a tokio runtime into a process
//! built on mio and plain threads; the relay needs three record types from a recursive
//! resolver it is pointed at, which is one UDP exchange (TCP when the answer is truncated).
//! hickory-proto does the wire format; this module does the exchange: each nameserver in
//! turn, a random query id checked against the answer, the question echoed back, the
//! configured timeout per server.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType as WireType};

use crate::route::{Lookup, MxRecord, Record, Resolver};

/// The largest UDP answer read (EDNS is not sent, so a server answers at most 512 bytes; a
/// larger buffer costs nothing and tolerates servers that ignore that).
const UDP_BUFFER: usize = 4096;

/// The nameservers of `/etc/resolv.conf` (`nameserver` lines, port 53), or none.
pub fn system_nameservers() -> Vec<SocketAddr> {
    read_resolv_conf(Path::new("/etc/resolv.conf"))
}

/// The `nameserver` lines of a resolv.conf file.
pub fn read_resolv_conf(path: &Path) -> Vec<SocketAddr> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    parse_resolv_conf(&text)
}

/// The `nameserver` lines of resolv.conf text, as port-53 socket addresses.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then_some(())?;
            let word = words.next()?;
            // `fe80::1%eth0`: a scope is not usable here.
            let ip: IpAddr = word.split('%').next()?.parse().ok()?;
            Some(SocketAddr::new(ip, 53))
        })
        .collect()
}

/// A stub resolver asking `nameservers` in order, `timeout` each.
#[derive(Debug, Clone)]
pub struct StubResolver {
    nameservers: Vec<SocketAddr>,
    timeout: Duration,
    /// Lookups sent (for metrics and tests).
    pub queries: u64,
}

impl StubResolver {
    /// A resolver over these servers (an empty list answers every lookup with a temporary
    /// failure).
    pub fn new(nameservers: Vec<SocketAddr>, timeout: Duration) -> StubResolver {
        StubResolver {
            nameservers,
            timeout: timeout.max(Duration::from_millis(10)),
            queries: 0,
        }
    }

    fn lookup(&mut self, name: &str, kind: WireType) -> Result<Message, String> {
        let qname = Name::from_ascii(format!("{name}.")).map_err(|e| format!("{name}: {e}"))?;
        if self.nameservers.is_empty() {
            return Err("no nameserver configured".into());
        }
        let mut last = String::new();
        for server in self.nameservers.clone() {
            self.queries += 1;
            match exchange(server, &qname, kind, self.timeout) {
                Ok(answer) => match answer.metadata.response_code {
                    ResponseCode::NoError | ResponseCode::NXDomain => return Ok(answer),
                    code => last = format!("{server}: {} for {kind} {name}", mnemonic(code)),
                },
                Err(e) => last = format!("{server}: {e} for {kind} {name}"),
            }
        }
        Err(last)
    }
}

/// The RFC 1035 mnemonic of a response code, as operators grep for it (`SERVFAIL`).
fn mnemonic(code: ResponseCode) -> String {
    match code {
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        other => format!("rcode {}", u16::from(other)),
    }
}

/// One query to one server: UDP, then TCP when the answer is truncated, all within
/// `timeout` (datagrams that are not the answer do not extend it).
fn exchange(
    server: SocketAddr,
    name: &Name,
    kind: WireType,
    timeout: Duration,
) -> io::Result<Message> {
    let mut query = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(name.clone(), kind));
    let wire = query
        .to_vec()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let bind: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let deadline = Instant::now() + timeout;
    let left = || time_left(deadline);
    let socket = UdpSocket::bind(bind)?;
    socket.connect(server)?;
    socket.send(&wire)?;
    let mut buf = vec![0u8; UDP_BUFFER];
    let answer = loop {
        socket.set_read_timeout(Some(left()?))?;
        let n = socket.recv(&mut buf).map_err(timed_out)?;
        match Message::from_vec(&buf[..n]) {
            // A stray or forged datagram: keep waiting for ours.
            Ok(m) if !answers(&m, &query) => continue,
            Ok(m) => break m,
            Err(_) => continue,
        }
    };
    if !answer.metadata.truncation {
        return Ok(answer);
    }
    let mut tcp = TcpStream::connect_timeout(&server, left()?).map_err(timed_out)?;
    tcp.set_write_timeout(Some(left()?))?;
    let len = u16::try_from(wire.len()).map_err(|_| io::ErrorKind::InvalidInput)?;
    let mut framed = Vec::with_capacity(wire.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(&wire);
    tcp.write_all(&framed).map_err(timed_out)?;
    let mut len = [0u8; 2];
    read_within(&mut tcp, &mut len, &left)?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    read_within(&mut tcp, &mut buf, &left)?;
    let answer = Message::from_vec(&buf)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    if answers(&answer, &query) {
        Ok(answer)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "answer does not match the query",
        ))
    }
}

/// Fills `buf` from `tcp`, each read given only the time `left` says is left: a server that
/// sends its answer a byte at a time cannot stretch the query past its timeout.
fn read_within(
    tcp: &mut TcpStream,
    buf: &mut [u8],
    left: &dyn Fn() -> io::Result<Duration>,
) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        tcp.set_read_timeout(Some(left()?))?;
        match tcp.read(&mut buf[filled..]).map_err(timed_out)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => filled += n,
        }
    }
    Ok(())
}

/// The time until `deadline`, or `TimedOut` once it has passed.
pub(super) fn time_left(deadline: Instant) -> io::Result<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "timed out"))
}

/// The longest a DNS answer is cached, whatever its TTL says.
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// A record's TTL as a cache lifetime: a value with the top bit set counts as zero (RFC 2181
/// §8), and none is kept longer than [`MAX_TTL`].
fn ttl(raw: u32) -> Duration {
    if raw & 0x8000_0000 != 0 {
        return Duration::ZERO;
    }
    Duration::from_secs(u64::from(raw)).min(MAX_TTL)
}

pub(super) fn timed_out(e: io::Error) -> io::Error {
    if matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    ) {
        io::Error::new(io::ErrorKind::TimedOut, "timed out")
    } else {
        e
    }
}

/// Whether `m` is the response to `q`: same id, a response, the same question (name, type
/// and class).
fn answers(m: &Message, q: &Message) -> bool {
    m.metadata.id == q.metadata.id
        && m.metadata.message_type == MessageType::Response
        && m.queries.len() == 1
        && q.queries.len() == 1
        && m.queries[0]
            .name()
            .to_ascii()
            .eq_ignore_ascii_case(&q.queries[0].name().to_ascii())
        && m.queries[0].query_type() == q.queries[0].query_type()
        && m.queries[0].query_class() == q.queries[0].query_class()
}

/// A query id: unpredictable enough to make off-path forgery a guess (RFC 5452), from the
/// OS's hash seed without pulling in a random number crate.
fn rand_id() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x1234_5678);
    (h.finish() & 0xffff) as u16
}

fn convert<T>(answer: Result<Message, String>, pick: impl Fn(&RData) -> Option<T>) -> Lookup<T> {
    match answer {
        Err(e) => Lookup::TempFail(e),
        Ok(m) if m.metadata.response_code == ResponseCode::NXDomain => Lookup::NxDomain,
        Ok(m) => Lookup::Records(
            m.answers
                .iter()
                .filter_map(|r| {
                    pick(&r.data).map(|value| Record {
                        value,
                        ttl: ttl(r.ttl),
                    })
                })
                .collect(),
        ),
    }
}

impl Resolver for StubResolver {
    fn mx(&mut self, name: &str) -> Lookup<MxRecord> {
        let answer = self.lookup(name, WireType::MX);
        convert(answer, |d| match d {
            RData::MX(mx) => {
                let exchange = mx.exchange.to_ascii();
                Some(MxRecord::new(mx.preference, exchange.trim_end_matches('.')))
            }
            _ => None,
        })
    }

    fn a(&mut self, name: &str) -> Lookup<Ipv4Addr> {
        let answer = self.lookup(name, WireType::A);
        convert(answer, |d| match d {
            RData::A(a) => Some(a.0),
            _ => None,
        })
    }

    fn aaaa(&mut self, name: &str) -> Lookup<Ipv6Addr> {
        let answer = self.lookup(name, WireType::AAAA);
        convert(answer, |d| match d {
            RData::AAAA(a) => Some(a.0),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests;
