//! API proxy paths: `/api/v1/namespaces/<ns>/{services|pods}/<id>/proxy[/<rest>][?<query>]` and
//! `/api/v1/nodes/<id>/proxy[/<rest>][?<query>]` (reference §2.1), with `<id>` =
//! `[scheme:]name[:port]` split as apimachinery's `SplitSchemeNamePort`.
//!
//! Contract: parsing reads the prefix the way the API server does (it routes on the decoded
//! path, so each prefix segment is percent-decoded before it is matched and validated) but
//! refuses a prefix segment whose decoding holds a `/`, so the segments kgate sees are the
//! segments the API server sees. The rest is a [`Rest`], kept byte for byte. Building always
//! writes the canonical prefix (no escapes, `JoinSchemeNamePort`), so
//! `parse_api_path(t.api_path(r)) == (t, r)` for every target and rest.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

use crate::error::{ParseError, quoted};
use crate::rest::Rest;
use crate::scheme_name_port::split_scheme_name_port;
use crate::target::{Kind, Port, Target};

impl Target {
    /// Parses an API proxy path with optional query (the request target of an HTTP request,
    /// in origin form) into its target and rest.
    ///
    /// ```
    /// use urlgrammar::{Kind, Target};
    /// let (t, rest) = Target::parse_api_path(
    ///     "/api/v1/namespaces/kube-system/services/https:elasticsearch-logging:9200/proxy/_cluster/health?pretty",
    /// )?;
    /// assert_eq!((t.kind(), t.namespace(), t.name()), (Kind::Service, Some("kube-system"), "elasticsearch-logging"));
    /// assert_eq!(t.id(), "https:elasticsearch-logging:9200");
    /// assert_eq!(rest.to_string(), "/_cluster/health?pretty");
    ///
    /// let (node, rest) = Target::parse_api_path("/api/v1/nodes/node-1:10255/proxy")?;
    /// assert_eq!(node.to_string(), "node/node-1:10255");
    /// assert!(rest.is_empty());
    ///
    /// // Not a proxy path, or one the API server would refuse:
    /// assert!(Target::parse_api_path("/api/v1/pods").is_err());
    /// assert!(Target::parse_api_path("/api/v1/namespaces/ns/services/ftp:web:21/proxy/").is_err());
    /// assert!(Target::parse_api_path("/api/v1/namespaces/ns/services/web/proxy/../../other").is_err());
    /// # Ok::<(), urlgrammar::ParseError>(())
    /// ```
    pub fn parse_api_path(path_and_query: &str) -> Result<(Target, Rest), ParseError> {
        let (path, query) = match path_and_query.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path_and_query, None),
        };
        if !path.starts_with('/') {
            return Err(not_proxy(path, "it does not start with '/'".to_owned()));
        }
        let mut segments = Segments { path, tail: path };
        segments.expect("api")?;
        segments.expect("v1")?;
        let (kind, namespace) = match &*segments.required("\"namespaces\" or \"nodes\"")? {
            "nodes" => (Kind::Node, None),
            "namespaces" => {
                let namespace = segments.required("namespace")?;
                let kind = match &*segments.required("\"services\" or \"pods\"")? {
                    "services" => Kind::Service,
                    "pods" => Kind::Pod,
                    other => return Err(segments.misplaced(other, "\"services\" or \"pods\"")),
                };
                (kind, Some(namespace))
            }
            other => return Err(segments.misplaced(other, "\"namespaces\" or \"nodes\"")),
        };
        let id = segments.required("name")?;
        segments.expect("proxy")?;
        let target = Target::from_id(kind, namespace.as_deref(), &id)?;
        let rest = Rest::new(segments.tail, query)?;
        Ok((target, rest))
    }

    /// The API proxy path of this target with `rest` appended.
    ///
    /// ```
    /// use urlgrammar::{Rest, Target};
    /// let t = Target::pod("default", "web-0")?;
    /// assert_eq!(t.api_path(&Rest::parse("/metrics")?), "/api/v1/namespaces/default/pods/web-0/proxy/metrics");
    /// # Ok::<(), urlgrammar::ParseError>(())
    /// ```
    pub fn api_path(&self, rest: &Rest) -> String {
        format!("{}{rest}", self.proxy_prefix())
    }

    /// The API proxy path without rest and without trailing slash, e.g.
    /// `/api/v1/namespaces/ns/services/web:http/proxy`: the prefix the API server writes into
    /// HTML and `Location` headers, which service origins undo.
    pub fn proxy_prefix(&self) -> String {
        match self.namespace() {
            Some(ns) => {
                format!(
                    "/api/v1/namespaces/{ns}/{}/{}/proxy",
                    self.kind().resource(),
                    self.id()
                )
            }
            None => format!("/api/v1/{}/{}/proxy", self.kind().resource(), self.id()),
        }
    }

    /// A target from the `<id>` segment of an API path, split as apimachinery's
    /// `SplitSchemeNamePort` and then validated. `namespace` is required for services and pods.
    ///
    /// ```
    /// use urlgrammar::{Kind, Scheme, Target};
    /// let t = Target::from_id(Kind::Service, Some("ns"), "https:web:")?;
    /// assert_eq!((t.scheme(), t.name(), t.port()), (Scheme::Https, "web", None));
    /// // A scheme needs three parts: this is the service "https" on its port "web".
    /// assert_eq!(Target::from_id(Kind::Service, Some("ns"), "https:web")?.name(), "https");
    /// assert!(Target::from_id(Kind::Service, Some("ns"), "ftp:web:21").is_err());
    /// assert!(Target::from_id(Kind::Service, Some("ns"), "web:0").is_err());
    /// # Ok::<(), urlgrammar::ParseError>(())
    /// ```
    pub fn from_id(kind: Kind, namespace: Option<&str>, id: &str) -> Result<Target, ParseError> {
        let split = split_scheme_name_port(id).ok_or_else(|| ParseError::SchemeNamePort {
            kind,
            id: quoted(id),
            problem: split_problem(id),
        })?;
        let port = match split.port {
            "" => None,
            port => Some(Port::parse(port)?),
        };
        Ok(Target::new(kind, namespace, split.name)?
            .with_scheme(split.scheme)
            .with_port(port))
    }
}

/// Why `SplitSchemeNamePort` refuses `id` (only called when it does).
fn split_problem(id: &str) -> &'static str {
    let parts: Vec<&str> = id.split(':').collect();
    match parts.as_slice() {
        [_, _, _, _, ..] => "it has more than three ':'-separated parts",
        [scheme, _, _] if !matches!(*scheme, "" | "http" | "https") => {
            "the scheme must be http, https or empty"
        }
        _ => "the name is empty",
    }
}

/// Percent-decodes one prefix segment as the API server would see it.
fn decode_segment(segment: &str) -> Result<Cow<'_, str>, String> {
    if !segment.contains('%') {
        return Ok(Cow::Borrowed(segment));
    }
    let decoded = percent_decode_str(segment).decode_utf8().map_err(|_| {
        format!(
            "the segment {:?} decodes to bytes that are not UTF-8",
            quoted(segment)
        )
    })?;
    if decoded.contains('/') {
        return Err(format!(
            "the segment {:?} holds an escaped '/', which the API server would split on",
            quoted(segment)
        ));
    }
    Ok(decoded)
}

fn not_proxy(path: &str, problem: String) -> ParseError {
    ParseError::NotProxyPath {
        path: quoted(path),
        problem,
    }
}

/// The segments of a path, each percent-decoded as the API server sees it; `tail` is what is
/// left, empty or starting with '/'.
struct Segments<'a> {
    path: &'a str,
    tail: &'a str,
}

impl<'a> Segments<'a> {
    fn next(&mut self) -> Result<Option<Cow<'a, str>>, ParseError> {
        let Some(after_slash) = self.tail.strip_prefix('/') else {
            return Ok(None);
        };
        let (segment, tail) = match after_slash.find('/') {
            Some(i) => after_slash.split_at(i),
            None => (after_slash, ""),
        };
        self.tail = tail;
        decode_segment(segment)
            .map(Some)
            .map_err(|problem| not_proxy(self.path, problem))
    }

    /// The next segment, which must exist: `what` says what belongs there.
    fn required(&mut self, what: &str) -> Result<Cow<'a, str>, ParseError> {
        self.next()?
            .ok_or_else(|| not_proxy(self.path, format!("it ends where the {what} belongs")))
    }

    /// The next segment, which must be `word`.
    fn expect(&mut self, word: &str) -> Result<(), ParseError> {
        let what = format!("{word:?}");
        match self.required(&what)? {
            found if found == word => Ok(()),
            found => Err(self.misplaced(&found, &what)),
        }
    }

    fn misplaced(&self, found: &str, what: &str) -> ParseError {
        not_proxy(
            self.path,
            format!("found {:?} where {what} belongs", quoted(found)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Part;
    use crate::scheme_name_port::Scheme;

    fn parse(path: &str) -> Result<(Target, Rest), ParseError> {
        Target::parse_api_path(path)
    }

    fn problem(path: &str) -> String {
        match parse(path) {
            Err(ParseError::NotProxyPath { problem, .. }) => problem,
            other => format!("not a NotProxyPath: {other:?}"),
        }
    }

    #[test]
    fn every_kind_and_id_shape() -> Result<(), ParseError> {
        let (t, r) = parse("/api/v1/namespaces/ns/pods/web-0.web:8080/proxy/")?;
        assert_eq!(
            (t.kind(), t.name(), t.port(), r.path()),
            (Kind::Pod, "web-0.web", Some(&Port::Number(8080)), "/")
        );
        let (t, _) = parse("/api/v1/namespaces/ns/services/:web:http/proxy")?;
        assert_eq!(
            (t.scheme(), t.id()),
            (Scheme::Unspecified, "web:http".to_owned())
        );
        let (t, _) = parse("/api/v1/namespaces/ns/services/web:/proxy")?;
        assert_eq!((t.port(), t.id()), (None, "web".to_owned()));
        let (t, _) = parse("/api/v1/nodes/https:n1:/proxy")?;
        assert_eq!(
            (t.kind(), t.namespace(), t.scheme()),
            (Kind::Node, None, Scheme::Https)
        );
        Ok(())
    }

    #[test]
    fn prefix_segments_are_decoded_as_the_api_server_does() -> Result<(), ParseError> {
        let (t, r) = parse("/api/v1/namespaces/n%73/%73ervices/web%3Ahttp/prox%79/a%2Fb")?;
        assert_eq!(
            t.api_path(&r),
            "/api/v1/namespaces/ns/services/web:http/proxy/a%2Fb"
        );
        assert!(problem("/api/v1/namespaces/a%2Fb/services/web/proxy").contains("escaped '/'"));
        assert!(problem("/api/v1/nodes/n%FF/proxy").contains("not UTF-8"));
        assert!(matches!(
            parse("/api/v1/namespaces/ns/services/web%zz/proxy"),
            Err(ParseError::Invalid {
                part: Part::ServiceName,
                ..
            })
        ));
        Ok(())
    }

    #[test]
    fn wrong_structure_says_where() {
        assert!(problem("api/v1/nodes/n/proxy").contains("does not start with '/'"));
        assert!(problem("/").contains("found \"\" where \"api\" belongs"));
        assert!(problem("/api/v2/nodes/n/proxy").contains("found \"v2\" where \"v1\" belongs"));
        assert!(problem("/api/v1").contains("ends where the \"namespaces\" or \"nodes\" belongs"));
        assert!(
            problem("/api/v1/pods").contains("found \"pods\" where \"namespaces\" or \"nodes\"")
        );
        assert!(
            problem("/api/v1/namespaces/ns/endpoints/e/proxy").contains("\"services\" or \"pods\"")
        );
        assert!(problem("/api/v1/namespaces/ns/services").contains("ends where the name belongs"));
        assert!(problem("/api/v1/namespaces/ns/services/web").contains("ends where the \"proxy\""));
        assert!(problem("/api/v1/namespaces/ns/services/web/proxyx").contains("found \"proxyx\""));
        assert!(problem("/api/v1/nodes/n/status").contains("found \"status\""));
        assert!(problem("//api/v1/nodes/n/proxy").contains("found \"\" where \"api\""));
    }

    #[test]
    fn ids_the_api_server_refuses() {
        for (path, kind, needle) in [
            (
                "/api/v1/namespaces/ns/services/ftp:web:21/proxy",
                Kind::Service,
                "scheme must be",
            ),
            (
                "/api/v1/namespaces/ns/pods/a:b:c:d/proxy",
                Kind::Pod,
                "more than three",
            ),
            ("/api/v1/nodes/:80/proxy", Kind::Node, "name is empty"),
            ("/api/v1/nodes/http::/proxy", Kind::Node, "name is empty"),
        ] {
            match parse(path) {
                Err(e @ ParseError::SchemeNamePort { kind: k, .. }) => {
                    assert_eq!(k, kind);
                    let msg = e.to_string();
                    assert!(msg.starts_with(&format!("invalid {kind} request")), "{msg}");
                    assert!(msg.contains(needle), "{msg}");
                }
                other => panic!("{path}: {other:?}"),
            }
        }
        assert!(matches!(
            parse("/api/v1/namespaces/ns/services/web:99999/proxy"),
            Err(ParseError::Invalid {
                part: Part::PortNumber,
                ..
            })
        ));
        assert!(matches!(
            parse("/api/v1/namespaces/ns/services/web:web--ui/proxy"),
            Err(ParseError::Invalid {
                part: Part::PortName,
                ..
            })
        ));
    }

    #[test]
    fn the_rest_is_checked() {
        assert!(matches!(
            parse("/api/v1/nodes/n/proxy/.."),
            Err(ParseError::DotSegment { .. })
        ));
        assert!(matches!(
            parse("/api/v1/nodes/n/proxy/a b"),
            Err(ParseError::Character { .. })
        ));
        assert!(matches!(
            parse("/api/v1/nodes/n/proxy/%"),
            Err(ParseError::Escape { .. })
        ));
        assert!(matches!(
            parse("/api/v1/nodes/n/proxy?a#b"),
            Err(ParseError::Character {
                part: Part::Query,
                ..
            })
        ));
    }

    #[test]
    fn proxy_prefix_has_no_trailing_slash() -> Result<(), ParseError> {
        assert_eq!(Target::node("n1")?.proxy_prefix(), "/api/v1/nodes/n1/proxy");
        assert_eq!(
            Target::pod("ns", "p")?.proxy_prefix(),
            "/api/v1/namespaces/ns/pods/p/proxy"
        );
        Ok(())
    }
}
