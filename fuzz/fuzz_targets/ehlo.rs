//! Fuzzes EHLO reply → capabilities (`smtp_parse_capabilities`): never panics, and the set
//! written back as an EHLO reply parses to the same set.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_proto::capability::parse_capabilities;
use smtp_proto::reply::Reply;
use smtp_proto::EnhancedStatus;

fuzz_target!(|input: &[u8]| {
    let Ok(Some((reply, _))) = Reply::parse(input) else {
        return;
    };
    let caps = parse_capabilities(&reply);
    // `to_reply` documents its round trip for a domain that cannot be read as an enhanced
    // status code (the reply parser would take it as one).
    let domain_is_status = EnhancedStatus::parse(caps.domain()).is_some();
    if reply.is_positive_completion() && !domain_is_status {
        let domain = caps.domain().to_owned();
        let greeting = caps.greeting().to_owned();
        let again = parse_capabilities(&caps.to_reply(&domain, &greeting));
        assert_eq!(again, caps);
    }
});
