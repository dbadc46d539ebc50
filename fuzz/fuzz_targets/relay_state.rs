//! The relay's state record payload (`smtp_relay::state`): decoding arbitrary bytes never
//! panics, and whatever decodes is valid and encodes back to exactly the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_relay::MessageState;

fuzz_target!(|data: &[u8]| {
    if let Ok(state) = MessageState::decode(data) {
        assert_eq!(state.validate(), Ok(()));
        assert_eq!(state.encode(), data);
    }
});
