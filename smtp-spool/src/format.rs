//! The on-disk format of one spool file (described byte by byte in `docs/SPOOL.md`).
//!
//! ```text
//! offset      size  field
//! 0           8     magic "IMPSPOOL"
//! 8           2     format version, u16 big-endian (1)
//! 10          4     E = envelope length, u32 big-endian (at most MAX_ENVELOPE_LEN)
//! 14          E     envelope: records `tag u8 | len u32 BE | value[len]`
//! 14+E        B     message bytes, exactly as received (after dot-unstuffing)
//! 14+E+B      4     "END!"
//! 18+E+B      8     B, u64 big-endian
//! 26+E+B      4     E again, u32 big-endian
//! 30+E+B      4     CRC-32 (IEEE) of every byte of the file before this field
//! ```
//!
//! Every value is length-prefixed, so no byte of a value (CR, LF, NUL, a fake tag, a fake
//! "END!") is ever interpreted: values are copied, never scanned.

use super::error::SpoolError;
use super::id::QueueId;

/// The first eight bytes of every spool file.
pub const MAGIC: &[u8; 8] = b"IMPSPOOL";
/// The format version this code writes and reads.
pub const VERSION: u16 = 1;
/// Length of the fixed header: magic, version, envelope length.
pub const HEADER_LEN: usize = 14;
/// The magic that opens the END (commit) record.
pub const END_MAGIC: &[u8; 4] = b"END!";
/// Length of the END record: magic, body length, envelope length, CRC-32.
pub const TRAILER_LEN: usize = 20;
/// The largest envelope the format accepts (16 MiB: far above 1000 recipients of 1 KiB).
pub const MAX_ENVELOPE_LEN: usize = 16 << 20;

const TAG_ID: u8 = 1;
const TAG_RECEIVED: u8 = 2;
const TAG_SENDER: u8 = 3;
const TAG_MAIL_PARAMS: u8 = 4;
const TAG_RCPT: u8 = 5;
const TAG_PEER: u8 = 6;
const TAG_HELO: u8 = 7;
const TAG_TLS: u8 = 8;
const TAG_AUTH: u8 = 9;
const TAG_NOTE: u8 = 10;

/// The envelope of a message: everything the SMTP transaction said about it besides the
/// message bytes. Strings are stored exactly as given (any byte, CR/LF/NUL included).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse-path without angle brackets; empty for the null sender `<>`.
    pub sender: String,
    /// The MAIL FROM parameters as received (for example `SIZE=1000 BODY=8BITMIME`).
    pub mail_params: String,
    /// The accepted recipients, in RCPT order.
    pub recipients: Vec<Recipient>,
    /// The client's address, for example `192.0.2.1:40000`.
    pub peer: String,
    /// The name the client gave in HELO/EHLO.
    pub helo: String,
    /// When the transaction started, in seconds since the Unix epoch.
    pub received: u64,
    /// TLS session description (protocol, cipher, SNI) when the session used TLS.
    pub tls: Option<String>,
    /// The authenticated identity when the client used AUTH (never a password).
    pub auth: Option<String>,
    /// Free-form notes from hooks and plugins, in order.
    pub notes: Vec<String>,
}

/// One accepted recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recipient {
    /// The forward-path without angle brackets (`Postmaster` for the bare `<Postmaster>`).
    pub address: String,
    /// The RCPT TO parameters as received (for example `NOTIFY=NEVER`).
    pub params: String,
}

impl Recipient {
    /// A recipient without parameters.
    pub fn new(address: impl Into<String>) -> Recipient {
        Recipient {
            address: address.into(),
            params: String::new(),
        }
    }
}

fn put(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    out.push(tag);
    // Lengths are bounded by MAX_ENVELOPE_LEN, checked by the caller.
    out.extend_from_slice(&(value.len() as u32).to_be_bytes());
    out.extend_from_slice(value);
}

/// Encodes the fixed header and the envelope: the first `HEADER_LEN + E` bytes of the file.
pub(crate) fn encode_header(id: &QueueId, env: &Envelope) -> Result<Vec<u8>, SpoolError> {
    let mut rec = Vec::with_capacity(256);
    put(&mut rec, TAG_ID, id.as_str().as_bytes());
    put(&mut rec, TAG_RECEIVED, &env.received.to_be_bytes());
    put(&mut rec, TAG_SENDER, env.sender.as_bytes());
    put(&mut rec, TAG_MAIL_PARAMS, env.mail_params.as_bytes());
    for r in &env.recipients {
        if r.address.len() > MAX_ENVELOPE_LEN {
            return Err(SpoolError::EnvelopeTooLarge(r.address.len()));
        }
        let mut v = Vec::with_capacity(4 + r.address.len() + r.params.len());
        v.extend_from_slice(&(r.address.len() as u32).to_be_bytes());
        v.extend_from_slice(r.address.as_bytes());
        v.extend_from_slice(r.params.as_bytes());
        put(&mut rec, TAG_RCPT, &v);
    }
    put(&mut rec, TAG_PEER, env.peer.as_bytes());
    put(&mut rec, TAG_HELO, env.helo.as_bytes());
    if let Some(tls) = &env.tls {
        put(&mut rec, TAG_TLS, tls.as_bytes());
    }
    if let Some(auth) = &env.auth {
        put(&mut rec, TAG_AUTH, auth.as_bytes());
    }
    for note in &env.notes {
        put(&mut rec, TAG_NOTE, note.as_bytes());
    }
    if rec.len() > MAX_ENVELOPE_LEN {
        return Err(SpoolError::EnvelopeTooLarge(rec.len()));
    }
    let mut out = Vec::with_capacity(HEADER_LEN + rec.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&(rec.len() as u32).to_be_bytes());
    out.extend_from_slice(&rec);
    Ok(out)
}

/// Checks the fixed header and returns the envelope length `E`.
pub(crate) fn decode_fixed_header(h: &[u8; HEADER_LEN]) -> Result<usize, String> {
    if &h[..8] != MAGIC {
        return Err("bad magic".into());
    }
    let version = u16::from_be_bytes([h[8], h[9]]);
    if version != VERSION {
        return Err(format!("unsupported format version {version}"));
    }
    let len = u32::from_be_bytes([h[10], h[11], h[12], h[13]]) as usize;
    if len > MAX_ENVELOPE_LEN {
        return Err(format!("envelope length {len} over the limit"));
    }
    Ok(len)
}

fn utf8(v: &[u8], what: &str) -> Result<String, String> {
    String::from_utf8(v.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
}

fn set_once<T>(slot: &mut Option<T>, value: T, what: &str) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("duplicate {what} record"));
    }
    *slot = Some(value);
    Ok(())
}

/// Decodes the envelope records (the `E` bytes after the fixed header).
pub(crate) fn decode_envelope(mut rec: &[u8]) -> Result<(QueueId, Envelope), String> {
    let mut id = None;
    let mut received = None;
    let mut sender = None;
    let mut mail_params = None;
    let mut peer = None;
    let mut helo = None;
    let mut tls = None;
    let mut auth = None;
    let mut recipients = Vec::new();
    let mut notes = Vec::new();
    while !rec.is_empty() {
        if rec.len() < 5 {
            return Err("truncated record header".into());
        }
        let tag = rec[0];
        let len = u32::from_be_bytes([rec[1], rec[2], rec[3], rec[4]]) as usize;
        let value = rec
            .get(5..5 + len)
            .ok_or_else(|| format!("record {tag} runs past the envelope"))?;
        rec = &rec[5 + len..];
        match tag {
            TAG_ID => {
                let s = utf8(value, "queue id")?;
                let parsed = QueueId::parse(&s).map_err(|e| e.to_string())?;
                set_once(&mut id, parsed, "queue id")?;
            }
            TAG_RECEIVED => {
                let b: [u8; 8] = value
                    .try_into()
                    .map_err(|_| "received time is not 8 bytes".to_string())?;
                set_once(&mut received, u64::from_be_bytes(b), "received")?;
            }
            TAG_SENDER => set_once(&mut sender, utf8(value, "sender")?, "sender")?,
            TAG_MAIL_PARAMS => set_once(
                &mut mail_params,
                utf8(value, "MAIL parameters")?,
                "MAIL parameters",
            )?,
            TAG_RCPT => {
                if value.len() < 4 {
                    return Err("truncated recipient".into());
                }
                let alen = u32::from_be_bytes([value[0], value[1], value[2], value[3]]) as usize;
                let address = value
                    .get(4..4 + alen)
                    .ok_or_else(|| "recipient address runs past its record".to_string())?;
                recipients.push(Recipient {
                    address: utf8(address, "recipient")?,
                    params: utf8(&value[4 + alen..], "RCPT parameters")?,
                });
            }
            TAG_PEER => set_once(&mut peer, utf8(value, "peer")?, "peer")?,
            TAG_HELO => set_once(&mut helo, utf8(value, "HELO name")?, "HELO name")?,
            TAG_TLS => set_once(&mut tls, utf8(value, "TLS info")?, "TLS info")?,
            TAG_AUTH => set_once(&mut auth, utf8(value, "AUTH identity")?, "AUTH identity")?,
            TAG_NOTE => notes.push(utf8(value, "note")?),
            other => return Err(format!("unknown record tag {other}")),
        }
    }
    let missing = |what: &str| format!("missing {what} record");
    let env = Envelope {
        sender: sender.ok_or_else(|| missing("sender"))?,
        mail_params: mail_params.ok_or_else(|| missing("MAIL parameters"))?,
        recipients,
        peer: peer.ok_or_else(|| missing("peer"))?,
        helo: helo.ok_or_else(|| missing("HELO"))?,
        received: received.ok_or_else(|| missing("received"))?,
        tls,
        auth,
        notes,
    };
    Ok((id.ok_or_else(|| missing("queue id"))?, env))
}

/// The END (commit) record, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trailer {
    /// The number of message bytes.
    pub body_len: u64,
    /// The envelope length, repeated.
    pub envelope_len: u32,
    /// CRC-32 of every byte of the file before the CRC field.
    pub crc: u32,
}

/// Encodes the END record; `crc` has seen every byte before it and sees its first 16 bytes.
pub(crate) fn encode_trailer(
    body_len: u64,
    envelope_len: u32,
    mut crc: crc32fast::Hasher,
) -> [u8; TRAILER_LEN] {
    let mut t = [0u8; TRAILER_LEN];
    t[..4].copy_from_slice(END_MAGIC);
    t[4..12].copy_from_slice(&body_len.to_be_bytes());
    t[12..16].copy_from_slice(&envelope_len.to_be_bytes());
    crc.update(&t[..16]);
    t[16..].copy_from_slice(&crc.finalize().to_be_bytes());
    t
}

/// Decodes the END record (the checksum itself is checked by the reader).
pub(crate) fn decode_trailer(t: &[u8; TRAILER_LEN]) -> Result<Trailer, String> {
    if &t[..4] != END_MAGIC {
        return Err("missing END record".into());
    }
    let mut b8 = [0u8; 8];
    b8.copy_from_slice(&t[4..12]);
    Ok(Trailer {
        body_len: u64::from_be_bytes(b8),
        envelope_len: u32::from_be_bytes([t[12], t[13], t[14], t[15]]),
        crc: u32::from_be_bytes([t[16], t[17], t[18], t[19]]),
    })
}

/// Encodes a whole file in memory (tests and tools; the spool itself streams).
pub fn encode_file(id: &QueueId, env: &Envelope, body: &[u8]) -> Result<Vec<u8>, SpoolError> {
    let mut out = encode_header(id, env)?;
    let elen = (out.len() - HEADER_LEN) as u32;
    out.extend_from_slice(body);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&out);
    out.extend_from_slice(&encode_trailer(body.len() as u64, elen, crc));
    Ok(out)
}

/// Decodes and fully verifies a whole file held in memory: returns its id, envelope and
/// message bytes. The spool itself reads files in a streaming way; this is for tests and tools.
pub fn decode_file(file: &[u8]) -> Result<(QueueId, Envelope, &[u8]), String> {
    let head: &[u8; HEADER_LEN] = file
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or("file shorter than its header")?;
    let elen = decode_fixed_header(head)?;
    if file.len() < HEADER_LEN + elen + TRAILER_LEN {
        return Err("file shorter than its envelope and END record".into());
    }
    let (id, env) = decode_envelope(&file[HEADER_LEN..HEADER_LEN + elen])?;
    let tpos = file.len() - TRAILER_LEN;
    let trailer = decode_trailer(file[tpos..].try_into().map_err(|_| "short trailer")?)?;
    let body = &file[HEADER_LEN + elen..tpos];
    if trailer.body_len != body.len() as u64 || trailer.envelope_len as usize != elen {
        return Err("END record lengths do not match the file".into());
    }
    if crc32fast::hash(&file[..file.len() - 4]) != trailer.crc {
        return Err("checksum mismatch".into());
    }
    Ok((id, env, body))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_recipient() -> impl Strategy<Value = Recipient> {
        (any::<String>(), any::<String>())
            .prop_map(|(address, params)| Recipient { address, params })
    }

    pub(crate) fn any_envelope() -> impl Strategy<Value = Envelope> {
        (
            (
                any::<String>(),
                any::<String>(),
                proptest::collection::vec(any_recipient(), 0..5),
            ),
            (any::<String>(), any::<String>(), any::<u64>()),
            (
                any::<Option<String>>(),
                any::<Option<String>>(),
                proptest::collection::vec(any::<String>(), 0..4),
            ),
        )
            .prop_map(
                |(
                    (sender, mail_params, recipients),
                    (peer, helo, received),
                    (tls, auth, notes),
                )| {
                    Envelope {
                        sender,
                        mail_params,
                        recipients,
                        peer,
                        helo,
                        received,
                        tls,
                        auth,
                        notes,
                    }
                },
            )
    }

    /// Strings made of the bytes that break line- or NUL-delimited formats.
    fn hostile() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just("\r"),
                Just("\n"),
                Just("\0"),
                Just("\r\n.\r\n"),
                Just("END!"),
                Just("IMPSPOOL"),
                Just("\u{1}\u{0}\u{0}\u{0}\u{5}"),
                Just(" "),
                Just("x"),
                Just("é"),
                Just("\u{7f}"),
            ],
            0..12,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn round_trip_arbitrary(env in any_envelope(), body in proptest::collection::vec(any::<u8>(), 0..2048), micros in 0u64..(1 << 56)) {
            let id = QueueId::from_parts(micros, 0x123456);
            let file = encode_file(&id, &env, &body).unwrap();
            let (id2, env2, body2) = decode_file(&file).unwrap();
            prop_assert_eq!(id2, id);
            prop_assert_eq!(env2, env);
            prop_assert_eq!(body2, &body[..]);
        }

        #[test]
        fn round_trip_hostile(sender in hostile(), params in hostile(), rcpt in hostile(), rparams in hostile(),
                              helo in hostile(), note in hostile(), tls in hostile(), body in hostile()) {
            let env = Envelope {
                sender, mail_params: params, recipients: vec![Recipient { address: rcpt, params: rparams }, Recipient::new("b@x")],
                peer: "[::1]:25".into(), helo, received: 7, tls: Some(tls), auth: None, notes: vec![note.clone(), note],
            };
            let id = QueueId::from_parts(1, 2);
            let file = encode_file(&id, &env, body.as_bytes()).unwrap();
            let (_, env2, body2) = decode_file(&file).unwrap();
            prop_assert_eq!(env2, env);
            prop_assert_eq!(body2, body.as_bytes());
        }

        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_file(&bytes);
            let _ = decode_envelope(&bytes);
        }

        #[test]
        fn any_flipped_byte_is_detected(env in any_envelope(), body in proptest::collection::vec(any::<u8>(), 0..256), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let id = QueueId::from_parts(3, 4);
            let mut file = encode_file(&id, &env, &body).unwrap();
            let i = pos.index(file.len());
            file[i] ^= 1 << bit;
            prop_assert!(decode_file(&file).is_err());
        }
    }

    #[test]
    fn truncation_is_detected() {
        let env = Envelope {
            sender: "a@b".into(),
            recipients: vec![Recipient::new("c@d")],
            ..Envelope::default()
        };
        let file = encode_file(&QueueId::from_parts(1, 1), &env, b"hello\r\n").unwrap();
        for len in 0..file.len() {
            assert!(
                decode_file(&file[..len]).is_err(),
                "truncated at {len} accepted"
            );
        }
        assert!(decode_file(&file).is_ok());
    }

    #[test]
    fn optional_fields_keep_empty_versus_absent() {
        let env = Envelope {
            tls: Some(String::new()),
            ..Envelope::default()
        };
        let file = encode_file(&QueueId::from_parts(1, 1), &env, b"").unwrap();
        assert_eq!(decode_file(&file).unwrap().1.tls, Some(String::new()));
        assert_eq!(decode_file(&file).unwrap().1.auth, None);
    }
}
