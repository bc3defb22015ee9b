//! Any bytes into the message decoders: never a panic, and whatever decodes
//! re-encodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wschat::{ClientMessage, ServerMessage, Version};

fuzz_target!(|data: &[u8]| {
    for version in [Version::V1, Version::V2] {
        if let Ok(message) = ClientMessage::decode_for(data, version) {
            assert!(message.allowed_in(version));
        }
    }
    if let Ok(message) = ClientMessage::decode(data) {
        let again = ClientMessage::decode(&message.encode()).expect("own encoding decodes");
        assert_eq!(again, message);
    }
    if let Ok(message) = ServerMessage::decode(data) {
        let again = ServerMessage::decode(&message.encode()).expect("own encoding decodes");
        assert_eq!(again, message);
    }
});
