//! Fuzzes the SPDY/3.1 frame decoder (`portforward::spdy::frame::Decoder`), which reads what an
//! API server (or, in simcluster, a client) sends on a port-forward session, header blocks
//! decompressed with the session's zlib state.
//!
//! Properties: nothing panics; decoding does not depend on how the stream is cut into reads;
//! every frame decoded, written again by one `Encoder` (its own compression state for the whole
//! stream) and read by a fresh `Decoder`, is the same frame (header values of a repeated name
//! are grouped, as SPDY's block joins them with NUL).
//!
//! Input layout: the first byte picks the size of the pieces the rest is fed in (1 to 256).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use portforward::spdy::frame::{Decoder, Encoder, Frame, FrameError, Headers};

/// Frames up to the first error (or the end), feeding `stream` `piece` bytes at a time.
fn decode_all(stream: &[u8], piece: usize) -> (Vec<Frame>, Option<FrameError>) {
    let mut decoder = Decoder::new();
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in stream.chunks(piece) {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(err) => return (frames, Some(err)),
            }
        }
    }
    (frames, None)
}

/// `headers` with each name's values together, names in the order they first appear.
fn grouped(headers: &Headers) -> Headers {
    let mut names: Vec<&str> = Vec::new();
    for (name, _) in headers {
        if !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    names
        .iter()
        .flat_map(|n| headers.iter().filter(move |(name, _)| name == n).cloned())
        .collect()
}

fn canonical(frame: Frame) -> Frame {
    match frame {
        Frame::SynStream { stream, associated, priority, flags, headers } => Frame::SynStream {
            stream,
            associated,
            priority,
            flags,
            headers: grouped(&headers),
        },
        Frame::SynReply { stream, flags, headers } => Frame::SynReply {
            stream,
            flags,
            headers: grouped(&headers),
        },
        Frame::Headers { stream, flags, headers } => Frame::Headers {
            stream,
            flags,
            headers: grouped(&headers),
        },
        other => other,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, stream)) = data.split_first() else {
        return;
    };
    let piece = usize::from(first) + 1;
    let whole = decode_all(stream, stream.len().max(1));
    let cut = decode_all(stream, piece);
    assert_eq!(whole, cut, "decoding depends on the cut (pieces of {piece})");

    let mut encoder = Encoder::new();
    let mut decoder = Decoder::new();
    let mut wire = BytesMut::new();
    for frame in whole.0 {
        let frame = canonical(frame);
        if encoder.encode(&frame, &mut wire).is_err() {
            // Only a frame this side would not send (a data frame over its limit).
            assert!(matches!(frame, Frame::Data { .. }), "{frame:?} not written");
            return;
        }
        let again = decoder.decode(&mut wire).expect("a frame it wrote reads back");
        assert_eq!(again.map(canonical), Some(frame));
        assert!(wire.is_empty(), "one frame written, one read");
    }
});
