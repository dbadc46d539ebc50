//! [`DnsServer`]: a small authoritative DNS responder on `127.0.0.1:0` for tests that must
//! never reach the system resolver. It listens on UDP and on TCP at the same port (TCP for
//! answers truncated over UDP), answers from a table the test fills (MX, A and AAAA records
//! with their TTLs), and counts the queries it gets per (name, type) and transport.
//!
//! How a name answers is its [`Behaviour`]: from the table (the default: the records, NODATA
//! when the name has records of other types only, NXDOMAIN for a name it knows nothing of),
//! NXDOMAIN, SERVFAIL, never, truncated over UDP (the full answer over TCP), or with a
//! forged datagram first (a wrong id, another question, or not a response) that a resolver
//! must ignore. Forged answers carry [`FORGED_A`], [`FORGED_AAAA`] or an MX to
//! [`FORGED_MX`], so a test sees when one was believed.
//!
//! What it does not do: recursion, zones, delegation, CNAMEs, EDNS (an answer over 512 bytes
//! is truncated over UDP, as RFC 1035 says) or DNSSEC.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, MX};
use hickory_proto::rr::{Name, RData, Record};

/// The record type of a query or a table entry (hickory-proto's).
pub use hickory_proto::rr::RecordType;

/// The address a forged A answer gives.
pub const FORGED_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 66);
/// The address a forged AAAA answer gives.
pub const FORGED_AAAA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x66);
/// The exchange a forged MX answer names (preference 0).
pub const FORGED_MX: &str = "forged.invalid";

/// The largest answer sent over UDP (no EDNS): a longer one goes out truncated.
const UDP_LIMIT: usize = 512;

/// How a name (or one type of it) is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// From the table: the records, NODATA, or NXDOMAIN for an unknown name.
    Answer,
    /// NXDOMAIN, whatever the table holds.
    NxDomain,
    /// SERVFAIL.
    ServFail,
    /// No answer at all, over either transport (the query is still counted).
    Silent,
    /// Over UDP an empty answer with TC set; over TCP the table's answer.
    TruncatedOverUdp,
    /// Over UDP a forged datagram, then the table's answer.
    ForgedFirst(Forgery),
    /// Over UDP `count` forged datagrams ([`Forgery::WrongId`]), one every `every`, and never
    /// the true answer.
    ForgedFlood {
        /// How many.
        count: u32,
        /// The pause between two.
        every: Duration,
    },
}

/// What is wrong with a forged datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forgery {
    /// The query's id plus one.
    WrongId,
    /// The right id, but the question of another name (`forged.invalid`).
    WrongQuestion,
    /// The right id and question, but the QR bit clear (a query, not a response).
    NotAResponse,
}

/// One query the server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The name asked, lower case, without the trailing dot.
    pub name: String,
    /// The type asked.
    pub rtype: RecordType,
    /// The query's id.
    pub id: u16,
    /// Whether it came over TCP.
    pub tcp: bool,
}

#[derive(Debug, Default)]
struct Zone {
    records: HashMap<(String, RecordType), Vec<Record>>,
    behaviours: HashMap<(String, Option<RecordType>), Behaviour>,
    seen: Vec<Seen>,
}

impl Zone {
    fn behaviour(&self, name: &str, rtype: RecordType) -> Behaviour {
        let key = |t| (name.to_string(), t);
        self.behaviours
            .get(&key(Some(rtype)))
            .or_else(|| self.behaviours.get(&key(None)))
            .copied()
            .unwrap_or(Behaviour::Answer)
    }

    fn exists(&self, name: &str) -> bool {
        self.records.keys().any(|(n, _)| n == name)
    }
}

/// The responder (see the module doc). Dropping it stops it.
#[derive(Debug)]
pub struct DnsServer {
    /// Where it listens, UDP and TCP.
    pub addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    stop: Arc<AtomicBool>,
}

/// `name` as the table keys it: lower case, no trailing dot.
fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn fqdn(name: &str) -> Name {
    let name = name.trim_end_matches('.');
    if name.is_empty() {
        return Name::root();
    }
    Name::from_ascii(format!("{name}.")).expect("a valid test domain name")
}

impl DnsServer {
    /// A responder on a free loopback port, UDP and TCP, with an empty table.
    pub fn start() -> DnsServer {
        let (udp, tcp) = bind_pair();
        let addr = udp.local_addr().expect("its address");
        let zone = Arc::new(Mutex::new(Zone::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (z, s) = (zone.clone(), stop.clone());
        std::thread::spawn(move || serve_udp(udp, &z, &s));
        let (z, s) = (zone.clone(), stop.clone());
        std::thread::spawn(move || serve_tcp(tcp, &z, &s));
        DnsServer { addr, zone, stop }
    }

    fn zone(&self) -> MutexGuard<'_, Zone> {
        self.zone.lock().expect("the responder's lock")
    }

    fn put(&self, name: &str, rtype: RecordType, records: Vec<Record>) -> &DnsServer {
        self.zone().records.insert((key(name), rtype), records);
        self
    }

    /// Sets the MX records of `name` (`(preference, exchange)`, in answer order; `(0, ".")`
    /// is a null MX), each with `ttl` seconds.
    pub fn mx(&self, name: &str, ttl: u32, mx: &[(u16, &str)]) -> &DnsServer {
        let owner = fqdn(name);
        let records = mx
            .iter()
            .map(|&(pref, exchange)| {
                let data = RData::MX(MX::new(pref, fqdn(exchange)));
                Record::from_rdata(owner.clone(), ttl, data)
            })
            .collect();
        self.put(name, RecordType::MX, records)
    }

    /// Sets the A records of `name`, each with `ttl` seconds.
    pub fn a(&self, name: &str, ttl: u32, addrs: &[Ipv4Addr]) -> &DnsServer {
        let owner = fqdn(name);
        let records = addrs
            .iter()
            .map(|&ip| Record::from_rdata(owner.clone(), ttl, RData::A(A(ip))))
            .collect();
        self.put(name, RecordType::A, records)
    }

    /// Sets the AAAA records of `name`, each with `ttl` seconds.
    pub fn aaaa(&self, name: &str, ttl: u32, addrs: &[Ipv6Addr]) -> &DnsServer {
        let owner = fqdn(name);
        let records = addrs
            .iter()
            .map(|&ip| Record::from_rdata(owner.clone(), ttl, RData::AAAA(AAAA(ip))))
            .collect();
        self.put(name, RecordType::AAAA, records)
    }

    /// How every query of `name` is answered.
    pub fn behave(&self, name: &str, behaviour: Behaviour) -> &DnsServer {
        self.zone().behaviours.insert((key(name), None), behaviour);
        self
    }

    /// How queries of `name` of type `rtype` are answered (before [`DnsServer::behave`]'s).
    pub fn behave_for(&self, name: &str, rtype: RecordType, behaviour: Behaviour) -> &DnsServer {
        let k = (key(name), Some(rtype));
        self.zone().behaviours.insert(k, behaviour);
        self
    }

    /// Queries of `name` of type `rtype` received, over both transports.
    pub fn queries(&self, name: &str, rtype: RecordType) -> usize {
        let name = key(name);
        let zone = self.zone();
        zone.seen
            .iter()
            .filter(|s| s.name == name && s.rtype == rtype)
            .count()
    }

    /// Queries of `name` of type `rtype` received over TCP.
    pub fn tcp_queries(&self, name: &str, rtype: RecordType) -> usize {
        let name = key(name);
        let zone = self.zone();
        zone.seen
            .iter()
            .filter(|s| s.tcp && s.name == name && s.rtype == rtype)
            .count()
    }

    /// Every query received, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.zone().seen.clone()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake both threads so they see the flag.
        if let Ok(s) = UdpSocket::bind("127.0.0.1:0") {
            let _ = s.send_to(&[0], self.addr);
        }
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// A UDP socket and a TCP listener on the same free loopback port.
fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind a loopback UDP port");
        let addr = udp.local_addr().expect("its address");
        if let Ok(tcp) = TcpListener::bind(addr) {
            return (udp, tcp);
        }
    }
    panic!("no loopback port free for both UDP and TCP");
}

/// What to send back to one query: zero or more datagrams (or TCP messages), in order, and a
/// flood to send from another thread.
#[derive(Default)]
struct Answers {
    now: Vec<Vec<u8>>,
    flood: Option<(Vec<u8>, u32, Duration)>,
}

fn encode(m: &Message) -> Vec<u8> {
    m.to_vec().expect("an encodable answer")
}

/// A forged answer to `query`: records the resolver must not believe.
fn forged(query: &Message, forgery: Forgery) -> Message {
    let q = &query.queries[0];
    let mut m = Message::response(query.metadata.id, OpCode::Query);
    let mut question = q.clone();
    match forgery {
        Forgery::WrongId => m.metadata.id = query.metadata.id.wrapping_add(1),
        Forgery::WrongQuestion => question.name = fqdn(FORGED_MX),
        Forgery::NotAResponse => m.metadata.message_type = MessageType::Query,
    }
    m.add_query(question);
    let owner = q.name().clone();
    let data = match q.query_type() {
        RecordType::AAAA => RData::AAAA(AAAA(FORGED_AAAA)),
        RecordType::MX => RData::MX(MX::new(0, fqdn(FORGED_MX))),
        _ => RData::A(A(FORGED_A)),
    };
    m.add_answer(Record::from_rdata(owner, 3600, data));
    m
}

fn respond(zone: &Mutex<Zone>, wire: &[u8], tcp: bool) -> Answers {
    let Ok(query) = Message::from_vec(wire) else {
        return Answers::default();
    };
    let id = query.metadata.id;
    if query.metadata.message_type != MessageType::Query || query.queries.len() != 1 {
        let m = Message::error_msg(id, query.metadata.op_code, ResponseCode::FormErr);
        return Answers {
            now: vec![encode(&m)],
            flood: None,
        };
    }
    let q = &query.queries[0];
    let name = key(&q.name().to_ascii());
    let rtype = q.query_type();
    let mut zone = zone.lock().expect("the responder's lock");
    zone.seen.push(Seen {
        name: name.clone(),
        rtype,
        id,
        tcp,
    });
    let behaviour = zone.behaviour(&name, rtype);
    let mut m = Message::response(id, OpCode::Query);
    m.metadata.authoritative = true;
    m.metadata.recursion_desired = query.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    m.add_query(q.clone());
    let mut out = Answers::default();
    match behaviour {
        Behaviour::Silent => return out,
        Behaviour::NxDomain => m.metadata.response_code = ResponseCode::NXDomain,
        Behaviour::ServFail => m.metadata.response_code = ResponseCode::ServFail,
        Behaviour::TruncatedOverUdp if !tcp => m.metadata.truncation = true,
        Behaviour::ForgedFlood { count, every } if !tcp => {
            out.flood = Some((encode(&forged(&query, Forgery::WrongId)), count, every));
            return out;
        }
        other => {
            if let Behaviour::ForgedFirst(forgery) = other {
                if !tcp {
                    out.now.push(encode(&forged(&query, forgery)));
                }
            }
            if let Some(records) = zone.records.get(&(name.clone(), rtype)) {
                m.add_answers(records.iter().cloned());
            } else if !zone.exists(&name) {
                m.metadata.response_code = ResponseCode::NXDomain;
            }
        }
    }
    let mut wire = encode(&m);
    if !tcp && wire.len() > UDP_LIMIT {
        m.answers.clear();
        m.metadata.truncation = true;
        wire = encode(&m);
    }
    out.now.push(wire);
    out
}

fn serve_udp(socket: UdpSocket, zone: &Mutex<Zone>, stop: &AtomicBool) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            continue;
        };
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let answers = respond(zone, &buf[..n], false);
        for datagram in &answers.now {
            let _ = socket.send_to(datagram, from);
        }
        if let Some((datagram, count, every)) = answers.flood {
            let Ok(socket) = socket.try_clone() else {
                continue;
            };
            std::thread::spawn(move || {
                for _ in 0..count {
                    let _ = socket.send_to(&datagram, from);
                    std::thread::sleep(every);
                }
            });
        }
    }
}

fn serve_tcp(listener: TcpListener, zone: &Arc<Mutex<Zone>>, stop: &AtomicBool) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let zone = zone.clone();
        std::thread::spawn(move || serve_connection(stream, &zone));
    }
}

/// RFC 1035 §4.2.2: each message preceded by its length in two bytes.
fn serve_connection(mut stream: TcpStream, zone: &Mutex<Zone>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    loop {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).is_err() {
            return;
        }
        let mut wire = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if stream.read_exact(&mut wire).is_err() {
            return;
        }
        for answer in respond(zone, &wire, true).now {
            let Ok(len) = u16::try_from(answer.len()) else {
                return;
            };
            if stream.write_all(&len.to_be_bytes()).is_err() || stream.write_all(&answer).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;

    fn ask(server: &DnsServer, name: &str, rtype: RecordType) -> Message {
        let mut q = Message::new(7, MessageType::Query, OpCode::Query);
        q.add_query(Query::query(fqdn(name), rtype));
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        socket.send_to(&encode(&q), server.addr).unwrap();
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf).unwrap();
        Message::from_vec(&buf[..n]).unwrap()
    }

    #[test]
    fn the_table_answers_records_nodata_and_nxdomain_and_counts_queries() {
        let dns = DnsServer::start();
        dns.a("Host.Test.", 60, &[Ipv4Addr::new(127, 0, 0, 2)]);
        let m = ask(&dns, "host.test", RecordType::A);
        assert_eq!(m.metadata.id, 7);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].ttl, 60);
        let m = ask(&dns, "host.test", RecordType::MX);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty(), "NODATA");
        let m = ask(&dns, "other.test", RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(dns.queries("HOST.test", RecordType::A), 1);
        assert_eq!(dns.queries("host.test", RecordType::MX), 1);
        assert_eq!(dns.tcp_queries("host.test", RecordType::A), 0);
    }

    #[test]
    fn a_long_answer_is_truncated_over_udp() {
        let dns = DnsServer::start();
        let many: Vec<Ipv4Addr> = (0..40).map(|i| Ipv4Addr::new(10, 0, 0, i)).collect();
        dns.a("many.test", 60, &many);
        let m = ask(&dns, "many.test", RecordType::A);
        assert!(m.metadata.truncation);
        assert!(m.answers.is_empty());
    }
}
