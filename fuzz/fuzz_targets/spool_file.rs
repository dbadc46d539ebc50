//! Fuzzes the spool's readers of stored bytes: a queue file (`decode_file`) and a state
//! record (`decode_state`). Neither may panic; whatever decodes must encode back to the same
//! bytes, so a stored file or record is read exactly as it was written.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_server::spool::{decode_file, decode_state, encode_file, encode_state};

fuzz_target!(|input: &[u8]| {
    if let Ok(payload) = decode_state(input) {
        assert_eq!(encode_state(payload).expect("decoded payload fits"), input);
    }
    if let Ok((id, envelope, body)) = decode_file(input) {
        let again = encode_file(&id, &envelope, body).expect("decoded envelope fits");
        let (id2, envelope2, body2) = decode_file(&again).expect("re-encoded file decodes");
        assert_eq!((id2, &envelope2, body2), (id, &envelope, body));
    }
});
