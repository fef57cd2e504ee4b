//! The rest of a proxied address: the path after `/proxy` and the query, as raw
//! percent-encoded text.
//!
//! Contract: see [`Rest`]; the rules are documented there, where `cargo doc` shows them.

use std::fmt;

use serde::Serialize;

use crate::error::{ParseError, Part};

/// The path after `/proxy` and the query, as raw percent-encoded text.
///
/// Contract: a [`Rest`] is carried byte for byte, never decoded or re-encoded, so the upstream
/// sees what the client sent. What it may hold is chosen so that no rest can move a request
/// out of its target's proxy prefix, whoever normalises the URL on the way (a browser, the
/// `url` crate, Go's `net/url`, the API server's `path.Join`):
///
/// * the path is empty or starts with `/`; it holds printable ASCII only (`!` to `~`) except
///   `#`, `?` (which starts the query) and `\` (which WHATWG URL parsers read as `/`): write
///   them as `%23`, `%3F`, `%5C`;
/// * every `%` starts a two-hex-digit escape (Go's `url.Parse`, and so the API server, refuses
///   the request otherwise);
/// * `.` and `..` segments are refused, also when written `%2E` / `%2e` (WHATWG resolves those
///   too). The API server would clamp them at the backend's root, but a browser or URL library
///   before it would resolve them against the proxy prefix and so change the target;
/// * `%2F` is allowed and is not a separator here; the API server decodes it, so `a%2Fb`
///   reaches the backend as `a/b`. Since it comes after `/proxy`, it cannot change the target;
/// * empty segments (`//`) are allowed and kept; the API server's `path.Join` collapses them;
/// * escapes of bytes that are not UTF-8 (`%FF`) are allowed and kept: Go's decoded path may
///   hold any bytes;
/// * the query holds printable ASCII except `#`, and is copied as is (the API server forwards
///   `RawQuery` unchanged, §2.6 of the reference).
///
/// ```
/// use urlgrammar::Rest;
/// let rest = Rest::parse("/_cluster/health?pretty")?;
/// assert_eq!(rest.path(), "/_cluster/health");
/// assert_eq!(rest.query(), Some("pretty"));
/// assert_eq!(rest.to_string(), "/_cluster/health?pretty");
/// assert!(Rest::parse("/a/%2e%2E/b").is_err());
/// # Ok::<(), urlgrammar::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Rest {
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    query: Option<String>,
}

impl Rest {
    /// Splits `path_and_query` at its first `?` and checks both halves.
    pub fn parse(path_and_query: &str) -> Result<Self, ParseError> {
        match path_and_query.split_once('?') {
            Some((path, query)) => Self::new(path, Some(query)),
            None => Self::new(path_and_query, None),
        }
    }

    /// A rest from a path (empty or starting with `/`) and an optional query (without `?`).
    pub fn new(path: &str, query: Option<&str>) -> Result<Self, ParseError> {
        check_path(path)?;
        if let Some(query) = query {
            check_query(query)?;
        }
        Ok(Rest {
            path: path.to_owned(),
            query: query.map(str::to_owned),
        })
    }

    /// The rest `/`: the root of the target.
    pub fn root() -> Self {
        Rest {
            path: "/".to_owned(),
            query: None,
        }
    }

    /// This rest, or the root `/` (keeping the query) when the path is empty: what a request
    /// for the target itself should ask for, since the API server answers an empty path with a
    /// 301 to the same path plus `/`.
    ///
    /// ```
    /// use urlgrammar::Rest;
    /// assert_eq!(Rest::default().or_root().to_string(), "/");
    /// assert_eq!(Rest::parse("?pretty")?.or_root().to_string(), "/?pretty");
    /// assert_eq!(Rest::parse("/healthz")?.or_root().to_string(), "/healthz");
    /// # Ok::<(), urlgrammar::ParseError>(())
    /// ```
    pub fn or_root(self) -> Self {
        if self.path.is_empty() {
            Rest {
                path: "/".to_owned(),
                query: self.query,
            }
        } else {
            self
        }
    }

    /// The path, empty or starting with `/`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query without its `?`; `Some("")` for a bare `?`.
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// Whether there is neither a path nor a query.
    pub fn is_empty(&self) -> bool {
        self.path.is_empty() && self.query.is_none()
    }
}

impl fmt::Display for Rest {
    /// The path and `?query`, as given.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)?;
        if let Some(query) = &self.query {
            write!(f, "?{query}")?;
        }
        Ok(())
    }
}

fn check_path(path: &str) -> Result<(), ParseError> {
    if let Some(c) = path.chars().next().filter(|&c| c != '/') {
        return Err(ParseError::Character {
            part: Part::Path,
            position: 0,
            found: c,
            hint: "the path must start with '/'",
        });
    }
    let bytes = path.as_bytes();
    for (i, c) in path.char_indices() {
        let hint = match c {
            '#' => "'#' starts a fragment, which is never sent: write %23",
            '?' => "'?' starts the query: write %3F",
            '\\' => "browsers read '\\' as '/': write %5C",
            '%' => {
                if !(hex_at(bytes, i + 1) && hex_at(bytes, i + 2)) {
                    return Err(ParseError::Escape {
                        part: Part::Path,
                        position: i,
                    });
                }
                continue;
            }
            '!'..='~' => continue,
            _ => "only printable ASCII is sent raw: percent-encode it",
        };
        return Err(ParseError::Character {
            part: Part::Path,
            position: i,
            found: c,
            hint,
        });
    }
    for segment in path.split('/') {
        if is_dot_segment(segment) {
            return Err(ParseError::DotSegment {
                segment: segment.to_owned(),
            });
        }
    }
    Ok(())
}

fn check_query(query: &str) -> Result<(), ParseError> {
    for (i, c) in query.char_indices() {
        let hint = match c {
            '#' => "'#' starts a fragment, which is never sent: write %23",
            '!'..='~' => continue,
            _ => "only printable ASCII is sent raw: percent-encode it",
        };
        return Err(ParseError::Character {
            part: Part::Query,
            position: i,
            found: c,
            hint,
        });
    }
    Ok(())
}

fn hex_at(bytes: &[u8], i: usize) -> bool {
    bytes.get(i).is_some_and(u8::is_ascii_hexdigit)
}

/// `.` or `..`, with any dot written as `%2E` or `%2e` (as the WHATWG URL standard's "single-
/// and double-dot path segments").
pub(crate) fn is_dot_segment(segment: &str) -> bool {
    let rest = strip_dot(segment);
    rest.is_some_and(|r| r.is_empty() || strip_dot(r).is_some_and(str::is_empty))
}

fn strip_dot(s: &str) -> Option<&str> {
    s.strip_prefix('.')
        .or_else(|| s.strip_prefix("%2e"))
        .or_else(|| s.strip_prefix("%2E"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_text_byte_for_byte() -> Result<(), ParseError> {
        for text in [
            "",
            "/",
            "//",
            "/a//b/",
            "/a%2Fb",
            "/%FF%fe",
            "/a:b@c!$&'()*+,;=~_-",
            "?",
            "?a=1&b=%ZZ?c",
            "/x?q=\"{}\"|^`",
            "/...",
            "/.a/..b/a.",
        ] {
            let rest = Rest::parse(text)?;
            assert_eq!(rest.to_string(), text);
        }
        Ok(())
    }

    #[test]
    fn refuses_dot_segments_in_every_spelling() {
        for text in [
            "/.", "/..", "/a/./b", "/a/../b", "/%2e", "/%2E%2e/", "/.%2E", "/%2e./x",
        ] {
            assert!(
                matches!(Rest::parse(text), Err(ParseError::DotSegment { .. })),
                "{text}"
            );
        }
    }

    #[test]
    fn refuses_characters_that_change_meaning() {
        let at = |text: &str| match Rest::parse(text) {
            Err(ParseError::Character {
                part,
                position,
                found,
                ..
            }) => Some((part, position, found)),
            _ => None,
        };
        assert_eq!(at("a"), Some((Part::Path, 0, 'a')));
        assert_eq!(at("/a#b"), Some((Part::Path, 2, '#')));
        assert_eq!(at("/a\\b"), Some((Part::Path, 2, '\\')));
        assert_eq!(at("/a b"), Some((Part::Path, 2, ' ')));
        assert_eq!(at("/é"), Some((Part::Path, 1, 'é')));
        assert_eq!(at("/\u{0}"), Some((Part::Path, 1, '\u{0}')));
        assert_eq!(at("/?a#b"), Some((Part::Query, 1, '#')));
        assert_eq!(at("/?a b"), Some((Part::Query, 1, ' ')));
        assert_eq!(Rest::new("/a?b", None).ok(), None);
    }

    #[test]
    fn refuses_malformed_escapes_in_the_path() {
        for (text, position) in [("/%", 1), ("/%4", 1), ("/a%zz", 2), ("/%%41", 1)] {
            assert_eq!(
                Rest::parse(text),
                Err(ParseError::Escape {
                    part: Part::Path,
                    position
                }),
                "{text}"
            );
        }
    }
}
