//! The SPDY/3 header compression dictionary (draft-mbelshe-httpbis-spdy-00, §2.6.10.1): 65
//! length-prefixed words (each a 4-byte big-endian length, then the word) followed by a run of
//! status codes, reason phrases, dates and common values. Both ends of a SPDY session prime
//! their zlib streams with it.

use std::sync::OnceLock;

/// The words, each written with its 4-byte length before it.
const WORDS: &[&str] = &[
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// What follows the words, as is.
const TAIL: &str = concat!(
    "10010120120220520630030230330430530630740240540640740840941041141241341441541641",
    "7502504505203 Non-Authoritative Information204 No Content301 Moved Permanently40",
    "0 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error",
    "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept O",
    "ct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,imag",
    "e/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/",
    "javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1",
    ",utf-,*,enq=0.",
);

/// The dictionary's bytes (1,423 of them).
pub(crate) fn get() -> &'static [u8] {
    static DICTIONARY: OnceLock<Vec<u8>> = OnceLock::new();
    DICTIONARY.get_or_init(|| {
        let mut out = Vec::with_capacity(1423);
        for word in WORDS {
            out.extend_from_slice(&u32::try_from(word.len()).unwrap_or(0).to_be_bytes());
            out.extend_from_slice(word.as_bytes());
        }
        out.extend_from_slice(TAIL.as_bytes());
        out
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_dictionary_is_the_drafts() {
        let d = super::get();
        assert_eq!(d.len(), 1423);
        // Its Adler-32, as every zlib stream primed with it announces (FDICT).
        let (mut a, mut b) = (1u32, 0u32);
        for &byte in d {
            a = (a + u32::from(byte)) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!(b << 16 | a, 0xe3c6_a7c2);
    }
}
