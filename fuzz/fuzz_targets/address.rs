//! Fuzzes path and mailbox parsing, with and without SMTPUTF8: never panics, and every accepted
//! address written back in wire form parses to the same address.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_proto::address::{AddressOptions, ForwardPath, Mailbox, Path};

fuzz_target!(|input: &[u8]| {
    let Some((&steer, data)) = input.split_first() else {
        return;
    };
    let options = AddressOptions {
        smtputf8: steer & 1 != 0,
        ..AddressOptions::default()
    };
    if let Ok(path) = Path::parse(data, &options) {
        let wire = path.to_string();
        assert_eq!(Path::parse(wire.as_bytes(), &options).as_ref(), Ok(&path));
    }
    if let Ok(path) = ForwardPath::parse(data, &options) {
        let wire = path.to_string();
        assert_eq!(
            ForwardPath::parse(wire.as_bytes(), &options).as_ref(),
            Ok(&path)
        );
    }
    if let Ok(mailbox) = Mailbox::parse(data, &options) {
        let wire = mailbox.to_string();
        assert_eq!(
            Mailbox::parse(wire.as_bytes(), &options).as_ref(),
            Ok(&mailbox)
        );
        assert_eq!(mailbox.clone().into_owned(), mailbox);
    }
});
