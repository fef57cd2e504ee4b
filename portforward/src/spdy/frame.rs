//! SPDY/3.1 frames, as the SPDY/3 draft defines them and moby/spdystream's `spdy` package (what
//! kubectl, client-go and the kubelet speak) reads and writes them.
//!
//! Contract: [`Decoder`] turns a byte stream into [`Frame`]s and [`Encoder`] the reverse. Each
//! keeps one direction's header compression state: header blocks are zlib streams with the
//! SPDY/3 dictionary (the crate-private `spdy::dictionary`, draft section 2.6.10.1), one
//! stream per direction for the whole session, each block ended with a sync flush
//! (spdystream's `Framer`: `zlib.BestCompression`, `Flush()` after each block; its reader is
//! one `zlib.NewReaderDict` fed each block in turn).
//! Header names are lower case; a name's values are joined with NUL. Frames spdystream ignores
//! (`SETTINGS`, `WINDOW_UPDATE`) are still decoded, so a peer that sends them is understood.
//!
//! Bounds: a frame's length field is 24 bits (16 MiB); a header block may decompress to at most
//! [`MAX_HEADER_BLOCK`] bytes and hold at most [`MAX_HEADERS`] names, else the session is
//! broken off with [`FrameError::TooLarge`]. Nothing here panics on input.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::dictionary;

/// The SPDY version of every control frame.
pub const VERSION: u16 = 3;

/// The largest payload one data frame may carry (24-bit length).
pub const MAX_DATA: usize = (1 << 24) - 1;

/// The most a header block may decompress to.
pub const MAX_HEADER_BLOCK: usize = 1 << 20;

/// The most names one header block may hold.
pub const MAX_HEADERS: usize = 1024;

/// `FLAG_FIN` of data frames and of `SYN_STREAM`, `SYN_REPLY` and `HEADERS`.
pub const FLAG_FIN: u8 = 0x01;
/// `FLAG_UNIDIRECTIONAL` of `SYN_STREAM`.
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;

/// Header names and values, in the order they came (names lower case).
pub type Headers = Vec<(String, String)>;

/// `RST_STREAM` status codes (SPDY/3 §2.6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RstStatus {
    ProtocolError,
    InvalidStream,
    RefusedStream,
    UnsupportedVersion,
    Cancel,
    InternalError,
    FlowControlError,
    StreamInUse,
    StreamAlreadyClosed,
    /// A code this implementation does not name.
    Other(u32),
}

impl RstStatus {
    fn code(self) -> u32 {
        match self {
            Self::ProtocolError => 1,
            Self::InvalidStream => 2,
            Self::RefusedStream => 3,
            Self::UnsupportedVersion => 4,
            Self::Cancel => 5,
            Self::InternalError => 6,
            Self::FlowControlError => 7,
            Self::StreamInUse => 8,
            Self::StreamAlreadyClosed => 9,
            Self::Other(code) => code,
        }
    }

    fn from_code(code: u32) -> Self {
        match code {
            1 => Self::ProtocolError,
            2 => Self::InvalidStream,
            3 => Self::RefusedStream,
            4 => Self::UnsupportedVersion,
            5 => Self::Cancel,
            6 => Self::InternalError,
            7 => Self::FlowControlError,
            8 => Self::StreamInUse,
            9 => Self::StreamAlreadyClosed,
            other => Self::Other(other),
        }
    }
}

/// One SPDY frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// `SYN_STREAM`: opens stream `stream` with `headers`.
    SynStream {
        stream: u32,
        associated: u32,
        priority: u8,
        flags: u8,
        headers: Headers,
    },
    /// `SYN_REPLY`: the receiver's acceptance of `stream`.
    SynReply {
        stream: u32,
        flags: u8,
        headers: Headers,
    },
    /// `RST_STREAM`: `stream` ends abnormally.
    RstStream { stream: u32, status: RstStatus },
    /// `SETTINGS` (id, value pairs; flags of each entry dropped).
    Settings { entries: Vec<(u32, u32)> },
    /// `PING`: odd ids are the client's, even ids the server's; the other side echoes it.
    Ping { id: u32 },
    /// `GOAWAY`: no new streams beyond `last_good`.
    GoAway { last_good: u32, status: u32 },
    /// `HEADERS` on an open stream.
    Headers {
        stream: u32,
        flags: u8,
        headers: Headers,
    },
    /// `WINDOW_UPDATE` (flow control, which spdystream neither sends nor honours).
    WindowUpdate { stream: u32, delta: u32 },
    /// A data frame: `data` for `stream`; `fin` ends the sender's half.
    Data { stream: u32, fin: bool, data: Bytes },
}

/// Why bytes are not a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("SPDY frame: unsupported version {0}")]
    Version(u16),
    #[error("SPDY frame: unknown control frame type {0}")]
    UnknownType(u16),
    #[error("SPDY frame: a {kind} frame of {length} bytes is malformed")]
    Malformed { kind: &'static str, length: usize },
    #[error("SPDY frame: stream id 0 is not allowed on {0}")]
    ZeroStream(&'static str),
    #[error("SPDY header block: {0}")]
    Header(String),
    #[error("SPDY frame: {0} is larger than this implementation accepts")]
    TooLarge(&'static str),
}

/// The 31-bit stream id of a 32-bit word (the top bit is reserved).
fn stream_id(word: u32) -> u32 {
    word & 0x7fff_ffff
}

/// Reads frames from a byte stream, keeping the peer's header compression state.
pub struct Decoder {
    inflate: Decompress,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Decoder")
    }
}

impl Decoder {
    pub fn new() -> Self {
        Self {
            inflate: Decompress::new(true),
        }
    }

    /// The next whole frame at the front of `buf`, consumed from it; `Ok(None)` when `buf`
    /// does not hold a whole frame yet.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let length = usize::from(buf[5]) << 16 | usize::from(buf[6]) << 8 | usize::from(buf[7]);
        if buf.len() < 8 + length {
            return Ok(None);
        }
        let mut frame = buf.split_to(8 + length).freeze();
        let first = frame.get_u32();
        let flags_length = frame.get_u32();
        let flags = u8::try_from(flags_length >> 24).unwrap_or(0);
        if first & 0x8000_0000 == 0 {
            let stream = stream_id(first);
            if stream == 0 {
                return Err(FrameError::ZeroStream("a data frame"));
            }
            return Ok(Some(Frame::Data {
                stream,
                fin: flags & FLAG_FIN != 0,
                data: frame,
            }));
        }
        let version = u16::try_from((first >> 16) & 0x7fff).unwrap_or(0);
        if version != VERSION {
            return Err(FrameError::Version(version));
        }
        let kind = u16::try_from(first & 0xffff).unwrap_or(0);
        self.control(kind, flags, frame).map(Some)
    }

    fn control(&mut self, kind: u16, flags: u8, mut body: Bytes) -> Result<Frame, FrameError> {
        let length = body.len();
        let malformed = |kind| FrameError::Malformed { kind, length };
        match kind {
            1 => {
                if length < 10 {
                    return Err(malformed("SYN_STREAM"));
                }
                let stream = stream_id(body.get_u32());
                let associated = stream_id(body.get_u32());
                let priority = body.get_u8() >> 5;
                let _slot = body.get_u8();
                if stream == 0 {
                    return Err(FrameError::ZeroStream("SYN_STREAM"));
                }
                let headers = self.headers(&body)?;
                Ok(Frame::SynStream {
                    stream,
                    associated,
                    priority,
                    flags,
                    headers,
                })
            }
            2 | 8 => {
                if length < 4 {
                    return Err(malformed(if kind == 2 { "SYN_REPLY" } else { "HEADERS" }));
                }
                let stream = stream_id(body.get_u32());
                if stream == 0 {
                    return Err(FrameError::ZeroStream("SYN_REPLY"));
                }
                let headers = self.headers(&body)?;
                Ok(if kind == 2 {
                    Frame::SynReply {
                        stream,
                        flags,
                        headers,
                    }
                } else {
                    Frame::Headers {
                        stream,
                        flags,
                        headers,
                    }
                })
            }
            3 => {
                if length != 8 {
                    return Err(malformed("RST_STREAM"));
                }
                let stream = stream_id(body.get_u32());
                let status = body.get_u32();
                if stream == 0 || status == 0 {
                    return Err(malformed("RST_STREAM"));
                }
                Ok(Frame::RstStream {
                    stream,
                    status: RstStatus::from_code(status),
                })
            }
            4 => {
                if length < 4 {
                    return Err(malformed("SETTINGS"));
                }
                let count = usize::try_from(body.get_u32()).unwrap_or(usize::MAX);
                if count.checked_mul(8) != Some(body.len()) {
                    return Err(malformed("SETTINGS"));
                }
                let entries = (0..count)
                    .map(|_| (body.get_u32() & 0x00ff_ffff, body.get_u32()))
                    .collect();
                Ok(Frame::Settings { entries })
            }
            6 => {
                if length != 4 {
                    return Err(malformed("PING"));
                }
                Ok(Frame::Ping { id: body.get_u32() })
            }
            7 => {
                if length != 8 {
                    return Err(malformed("GOAWAY"));
                }
                Ok(Frame::GoAway {
                    last_good: stream_id(body.get_u32()),
                    status: body.get_u32(),
                })
            }
            9 => {
                if length != 8 {
                    return Err(malformed("WINDOW_UPDATE"));
                }
                Ok(Frame::WindowUpdate {
                    stream: stream_id(body.get_u32()),
                    delta: body.get_u32() & 0x7fff_ffff,
                })
            }
            other => Err(FrameError::UnknownType(other)),
        }
    }

    /// Decompresses one header block (the rest of a frame) and parses it.
    fn headers(&mut self, block: &[u8]) -> Result<Headers, FrameError> {
        let plain = self.inflate_block(block)?;
        parse_block(&plain)
    }

    fn inflate_block(&mut self, block: &[u8]) -> Result<Vec<u8>, FrameError> {
        let mut out = Vec::with_capacity(block.len() * 4);
        let mut input = block;
        loop {
            if out.capacity() - out.len() < 1024 {
                out.reserve(out.capacity().max(4096));
            }
            let before_in = self.inflate.total_in();
            let before_out = out.len();
            let result = self
                .inflate
                .decompress_vec(input, &mut out, FlushDecompress::Sync);
            let used = usize::try_from(self.inflate.total_in() - before_in).unwrap_or(input.len());
            input = &input[used.min(input.len())..];
            let stalled = used == 0 && out.len() == before_out;
            match result {
                Ok(Status::Ok | Status::BufError) => {}
                Ok(Status::StreamEnd) => {
                    return Err(FrameError::Header("the zlib stream ended".to_owned()));
                }
                Err(err) if err.needs_dictionary().is_some() => {
                    self.inflate
                        .set_dictionary(dictionary::get())
                        .map_err(|e| FrameError::Header(e.to_string()))?;
                    continue;
                }
                Err(err) => return Err(FrameError::Header(err.to_string())),
            }
            if stalled && !input.is_empty() {
                return Err(FrameError::Header(
                    "the zlib stream does not advance".to_owned(),
                ));
            }
            if out.len() > MAX_HEADER_BLOCK {
                return Err(FrameError::TooLarge("a header block"));
            }
            // Done when every input byte was taken and no output is pending.
            if input.is_empty() && out.capacity() > out.len() {
                return Ok(out);
            }
        }
    }
}

/// Parses an uncompressed header block: a 32-bit count, then (length, name, length, value)
/// per name, values joined with NUL.
fn parse_block(mut block: &[u8]) -> Result<Headers, FrameError> {
    let short = || FrameError::Header("the block ends early".to_owned());
    if block.len() < 4 {
        return Err(short());
    }
    let count = usize::try_from(block.get_u32()).unwrap_or(usize::MAX);
    if count > MAX_HEADERS {
        return Err(FrameError::TooLarge("the header count"));
    }
    let mut headers = Vec::with_capacity(count);
    for _ in 0..count {
        let name = take_string(&mut block).ok_or_else(short)?;
        let value = take_string(&mut block).ok_or_else(short)?;
        let name = name.to_ascii_lowercase();
        for part in value.split('\0') {
            headers.push((name.clone(), part.to_owned()));
        }
    }
    Ok(headers)
}

fn take_string(block: &mut &[u8]) -> Option<String> {
    if block.len() < 4 {
        return None;
    }
    let length = usize::try_from(block.get_u32()).ok()?;
    if block.len() < length {
        return None;
    }
    let text = String::from_utf8_lossy(&block[..length]).into_owned();
    block.advance(length);
    Some(text)
}

/// Writes frames, keeping this side's header compression state.
pub struct Encoder {
    deflate: Compress,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Encoder")
    }
}

impl Encoder {
    pub fn new() -> Self {
        let mut deflate = Compress::new(Compression::best(), true);
        // A fresh stream always takes a dictionary; failure would be a library bug, and the
        // peer would then refuse our first header block, which reports it.
        let _ = deflate.set_dictionary(dictionary::get());
        Self { deflate }
    }

    /// Appends `frame` to `out`.
    pub fn encode(&mut self, frame: &Frame, out: &mut BytesMut) -> Result<(), FrameError> {
        match frame {
            Frame::Data { stream, fin, data } => {
                if data.len() > MAX_DATA {
                    return Err(FrameError::TooLarge("a data frame"));
                }
                out.put_u32(stream_id(*stream));
                out.put_u32(u32::from(u8::from(*fin)) << 24 | len24(data.len()));
                out.put_slice(data);
            }
            Frame::SynStream {
                stream,
                associated,
                priority,
                flags,
                headers,
            } => {
                let block = self.block(headers)?;
                control(out, 1, *flags, 10 + block.len());
                out.put_u32(stream_id(*stream));
                out.put_u32(stream_id(*associated));
                out.put_u8(priority << 5);
                out.put_u8(0);
                out.put_slice(&block);
            }
            Frame::SynReply {
                stream,
                flags,
                headers,
            }
            | Frame::Headers {
                stream,
                flags,
                headers,
            } => {
                let kind = if matches!(frame, Frame::SynReply { .. }) {
                    2
                } else {
                    8
                };
                let block = self.block(headers)?;
                control(out, kind, *flags, 4 + block.len());
                out.put_u32(stream_id(*stream));
                out.put_slice(&block);
            }
            Frame::RstStream { stream, status } => {
                control(out, 3, 0, 8);
                out.put_u32(stream_id(*stream));
                out.put_u32(status.code());
            }
            Frame::Settings { entries } => {
                control(out, 4, 0, 4 + entries.len() * 8);
                out.put_u32(u32::try_from(entries.len()).unwrap_or(u32::MAX));
                for (id, value) in entries {
                    out.put_u32(id & 0x00ff_ffff);
                    out.put_u32(*value);
                }
            }
            Frame::Ping { id } => {
                control(out, 6, 0, 4);
                out.put_u32(*id);
            }
            Frame::GoAway { last_good, status } => {
                control(out, 7, 0, 8);
                out.put_u32(stream_id(*last_good));
                out.put_u32(*status);
            }
            Frame::WindowUpdate { stream, delta } => {
                control(out, 9, 0, 8);
                out.put_u32(stream_id(*stream));
                out.put_u32(delta & 0x7fff_ffff);
            }
        }
        Ok(())
    }

    /// One compressed header block, ended with a sync flush.
    fn block(&mut self, headers: &Headers) -> Result<Vec<u8>, FrameError> {
        let plain = write_block(headers);
        let mut out = Vec::with_capacity(plain.len() / 2 + 64);
        let mut input = plain.as_slice();
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            let before_in = self.deflate.total_in();
            self.deflate
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .map_err(|e| FrameError::Header(e.to_string()))?;
            let used = usize::try_from(self.deflate.total_in() - before_in).unwrap_or(input.len());
            input = &input[used.min(input.len())..];
            // The flush is complete when input is gone and the buffer was not filled.
            if input.is_empty() && out.capacity() - out.len() >= 64 {
                return Ok(out);
            }
        }
    }
}

/// The uncompressed block: values of a repeated name joined with NUL, names lower case.
fn write_block(headers: &Headers) -> Vec<u8> {
    let mut names: Vec<(String, String)> = Vec::new();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        match names.iter_mut().find(|(n, _)| *n == name) {
            Some((_, joined)) => {
                joined.push('\0');
                joined.push_str(value);
            }
            None => names.push((name, value.clone())),
        }
    }
    let mut out = Vec::new();
    out.put_u32(u32::try_from(names.len()).unwrap_or(u32::MAX));
    for (name, value) in &names {
        out.put_u32(u32::try_from(name.len()).unwrap_or(u32::MAX));
        out.put_slice(name.as_bytes());
        out.put_u32(u32::try_from(value.len()).unwrap_or(u32::MAX));
        out.put_slice(value.as_bytes());
    }
    out
}

fn len24(length: usize) -> u32 {
    u32::try_from(length).unwrap_or(0) & 0x00ff_ffff
}

fn control(out: &mut BytesMut, kind: u16, flags: u8, length: usize) {
    out.put_u16(0x8000 | VERSION);
    out.put_u16(kind);
    out.put_u32(u32::from(flags) << 24 | len24(length));
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn round_trip(frames: &[Frame]) -> Vec<Frame> {
        let mut enc = Encoder::new();
        let mut wire = BytesMut::new();
        for f in frames {
            enc.encode(f, &mut wire).unwrap();
        }
        let mut dec = Decoder::new();
        let mut out = Vec::new();
        while let Some(f) = dec.decode(&mut wire).unwrap() {
            out.push(f);
        }
        assert!(wire.is_empty());
        out
    }

    #[test]
    fn every_frame_round_trips_and_header_state_carries_across_frames() {
        let frames = vec![
            Frame::SynStream {
                stream: 1,
                associated: 0,
                priority: 0,
                flags: FLAG_FIN,
                headers: headers(&[
                    ("streamtype", "error"),
                    ("port", "8080"),
                    ("requestid", "0"),
                ]),
            },
            Frame::SynStream {
                stream: 3,
                associated: 0,
                priority: 0,
                flags: 0,
                headers: headers(&[("streamtype", "data"), ("port", "8080"), ("requestid", "0")]),
            },
            Frame::SynReply {
                stream: 1,
                flags: 0,
                headers: vec![],
            },
            Frame::Data {
                stream: 3,
                fin: false,
                data: Bytes::from_static(b"GET / HTTP/1.1\r\n\r\n"),
            },
            Frame::Data {
                stream: 3,
                fin: true,
                data: Bytes::new(),
            },
            Frame::RstStream {
                stream: 3,
                status: RstStatus::Cancel,
            },
            Frame::Settings {
                entries: vec![(7, 65536)],
            },
            Frame::Ping { id: 1 },
            Frame::Headers {
                stream: 1,
                flags: 0,
                headers: headers(&[("a", "1"), ("a", "2")]),
            },
            Frame::WindowUpdate {
                stream: 3,
                delta: 1000,
            },
            Frame::GoAway {
                last_good: 3,
                status: 0,
            },
        ];
        assert_eq!(round_trip(&frames), frames);
    }

    #[test]
    fn the_first_header_block_uses_the_spdy3_dictionary() {
        let mut enc = Encoder::new();
        let mut wire = BytesMut::new();
        let frame = Frame::SynReply {
            stream: 1,
            flags: 0,
            headers: headers(&[("content-type", "text/plain")]),
        };
        enc.encode(&frame, &mut wire).unwrap();
        // zlib header (CMF, FLG with FDICT) then the dictionary's Adler-32, big-endian.
        let block = &wire[12..];
        assert_eq!(block[0] & 0x0f, 8, "deflate");
        assert_ne!(block[1] & 0x20, 0, "FDICT");
        assert_eq!(&block[2..6], &0xe3c6_a7c2u32.to_be_bytes());
    }

    #[test]
    fn partial_input_waits_and_bad_input_is_an_error() {
        let mut dec = Decoder::new();
        let mut short = BytesMut::from(&[0x80, 0x03, 0x00, 0x06, 0x00, 0x00][..]);
        assert_eq!(dec.decode(&mut short), Ok(None));
        let mut v2 = BytesMut::from(&[0x80, 0x02, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 1][..]);
        assert_eq!(dec.decode(&mut v2), Err(FrameError::Version(2)));
        let mut zero = BytesMut::from(&[0, 0, 0, 0, 0, 0, 0, 0][..]);
        assert!(dec.decode(&mut zero).is_err());
        let mut unknown = BytesMut::from(&[0x80, 0x03, 0x00, 0x0a, 0, 0, 0, 0][..]);
        assert_eq!(dec.decode(&mut unknown), Err(FrameError::UnknownType(10)));
        // A SYN_STREAM whose header block is not zlib.
        let mut junk = BytesMut::new();
        junk.put_slice(&[0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 14]);
        junk.put_u32(1);
        junk.put_u32(0);
        junk.put_slice(&[0, 0, 1, 2, 3, 4]);
        assert!(dec.decode(&mut junk).is_err());
    }

    proptest! {
        #[test]
        fn header_blocks_round_trip(
            pairs in proptest::collection::vec(("[a-z][a-z0-9-]{0,20}", "[ -~]{0,40}"), 0..12),
            splits in proptest::collection::vec(1usize..64, 1..20),
        ) {
            let hs: Headers = pairs;
            let frames: Vec<Frame> = (1..4u32)
                .map(|i| Frame::Headers { stream: 2 * i - 1, flags: 0, headers: hs.clone() })
                .collect();
            let mut enc = Encoder::new();
            let mut wire = BytesMut::new();
            for f in &frames {
                enc.encode(f, &mut wire).unwrap();
            }
            // Fed in arbitrary pieces, the same frames come out.
            let mut dec = Decoder::new();
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            let mut rest = wire.freeze();
            let mut i = 0;
            while !rest.is_empty() {
                let n = splits[i % splits.len()].min(rest.len());
                buf.extend_from_slice(&rest.split_to(n));
                while let Some(f) = dec.decode(&mut buf).unwrap() {
                    out.push(f);
                }
                i += 1;
            }
            // Repeated names arrive grouped, as the block joins their values.
            let mut grouped: Headers = Vec::new();
            for (name, _) in &hs {
                if grouped.iter().any(|(n, _)| n == name) { continue; }
                for (n, v) in &hs {
                    if n == name { grouped.push((n.clone(), v.clone())); }
                }
            }
            for f in out {
                let Frame::Headers { headers, .. } = f else { panic!("{f:?}") };
                prop_assert_eq!(&headers, &grouped);
            }
        }
    }
}
