//! Fuzzes the kubelet's v4 channel framing (`portforward::channel::decode`), what a WebSocket
//! port-forward carries: a channel byte (or ASCII digit and base64, for
//! `v4.base64.channel.k8s.io`) before each payload.
//!
//! Properties: nothing panics; a message that decodes encodes back to a message that decodes
//! to the same channel and payload, and in the binary framing to the very same message.
//!
//! Input layout: the first byte's low bit picks the framing; the rest is the message (binary,
//! or text where it is UTF-8).
#![no_main]

use libfuzzer_sys::fuzz_target;
use portforward::channel::{Framing, decode, encode};
use tokio_tungstenite::tungstenite::Message;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let framing = if first & 1 == 0 { Framing::Binary } else { Framing::Base64 };
    let mut messages = vec![Message::binary(rest.to_vec())];
    if let Ok(text) = std::str::from_utf8(rest) {
        messages.push(Message::text(text));
    }
    for message in messages {
        let Ok(Some((channel, payload))) = decode(framing, &message) else {
            continue;
        };
        let again = encode(framing, channel, &payload);
        assert_eq!(decode(framing, &again), Ok(Some((channel, payload))));
        if framing == Framing::Binary {
            assert_eq!(again, message);
        }
    }
});
