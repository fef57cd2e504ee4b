//! The `[scheme:]name[:port]` segment of a proxy path, split exactly as apimachinery's
//! `SplitSchemeNamePort` (`pkg/util/net/port_split.go`) and joined as `JoinSchemeNamePort`.

use serde::{Deserialize, Serialize};

/// The scheme part of a `[scheme:]name[:port]` segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// No scheme given: the API server uses `http`. Serialised as `""`.
    #[default]
    #[serde(rename = "")]
    Unspecified,
    /// `http:`
    Http,
    /// `https:`: the API server reaches the endpoint over TLS without verifying it.
    Https,
}

impl Scheme {
    /// The text of the scheme as it appears in the segment (`""` when unspecified).
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Unspecified => "",
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A `[scheme:]name[:port]` segment split into its parts, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemeNamePort<'a> {
    /// The scheme (`http`, `https` or none).
    pub scheme: Scheme,
    /// The object's name; never empty.
    pub name: &'a str,
    /// The port name or number as written; empty when none was given.
    pub port: &'a str,
}

/// Splits `id` as apimachinery's `SplitSchemeNamePort` does.
///
/// One part is a name, two are `name:port`, three are `scheme:name:port`; anything else, an
/// empty name, or a scheme other than `http`, `https` or empty is invalid (`None`).
/// A scheme always needs three parts: `https:svc` is the name `https` with the port `svc`.
///
/// ```
/// use urlgrammar::{split_scheme_name_port, Scheme};
/// let s = split_scheme_name_port("https:grafana:").unwrap();
/// assert_eq!((s.scheme, s.name, s.port), (Scheme::Https, "grafana", ""));
/// assert!(split_scheme_name_port("ftp:grafana:80").is_none());
/// ```
pub fn split_scheme_name_port(id: &str) -> Option<SchemeNamePort<'_>> {
    let mut parts = id.split(':');
    let first = parts.next().unwrap_or_default();
    let (scheme, name, port) = match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) => ("", first, ""),
        (Some(port), None, _) => ("", first, port),
        (Some(name), Some(port), None) => (first, name, port),
        (Some(_), Some(_), Some(_)) => return None,
    };
    let scheme = match scheme {
        "" => Scheme::Unspecified,
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return None,
    };
    if name.is_empty() {
        return None;
    }
    Some(SchemeNamePort { scheme, name, port })
}

/// Joins the parts as apimachinery's `JoinSchemeNamePort`: `s:n:p` with a scheme, `n:p` with a
/// port, else `n`.
pub fn join_scheme_name_port(scheme: Scheme, name: &str, port: &str) -> String {
    match (scheme, port) {
        (Scheme::Unspecified, "") => name.to_owned(),
        (Scheme::Unspecified, port) => format!("{name}:{port}"),
        (scheme, port) => format!("{}:{name}:{port}", scheme.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table of apimachinery's `TestSplitSchemeNamePort` (`pkg/util/net/port_split_test.go`,
    /// kubernetes staging copy): input, valid, scheme, name, port, normalized. Like upstream,
    /// every valid input must split again to the same parts after joining, and a normalized
    /// one must join back to exactly the input.
    #[test]
    fn upstream_split_table() {
        let table: &[(&str, bool, &str, &str, &str, bool)] = &[
            ("aoeu:asdf", true, "", "aoeu", "asdf", true),
            ("http:aoeu:asdf", true, "http", "aoeu", "asdf", true),
            ("https:aoeu:", true, "https", "aoeu", "", false),
            ("https:aoeu:asdf", true, "https", "aoeu", "asdf", true),
            ("aoeu:", true, "", "aoeu", "", false),
            ("aoeu", true, "", "aoeu", "", true),
            (":asdf", false, "", "", "", false),
            ("aoeu:asdf:htns", false, "", "", "", false),
            ("http::asdf", false, "", "", "", false),
            ("http::", false, "", "", "", false),
            ("", false, "", "", "", false),
        ];
        for &(input, valid, scheme, name, port, normalized) in table {
            let got = split_scheme_name_port(input);
            assert_eq!(got.is_some(), valid, "{input:?}");
            let Some(got) = got else { continue };
            assert_eq!(
                (got.scheme.as_str(), got.name, got.port),
                (scheme, name, port),
                "{input:?}"
            );
            let joined = join_scheme_name_port(got.scheme, got.name, got.port);
            if normalized {
                assert_eq!(joined, input);
            }
            let again = split_scheme_name_port(&joined);
            assert_eq!(again, Some(got), "{input:?} joined as {joined:?}");
        }
    }

    /// Our own cases beyond the table: an empty scheme with three parts, a scheme with two
    /// parts, and schemes are case-sensitive.
    #[test]
    fn split_edge_cases() {
        let split = |s| split_scheme_name_port(s).map(|p| (p.scheme, p.name, p.port));
        assert_eq!(
            split(":aoeu:asdf"),
            Some((Scheme::Unspecified, "aoeu", "asdf"))
        );
        assert_eq!(
            split("https:svc"),
            Some((Scheme::Unspecified, "https", "svc"))
        );
        assert_eq!(split("HTTPS:aoeu:1"), None);
        assert_eq!(split("::"), None);
        assert_eq!(split("a:b:c:d"), None);
    }

    #[test]
    fn join_matches_apimachinery() {
        assert_eq!(join_scheme_name_port(Scheme::Unspecified, "n", ""), "n");
        assert_eq!(join_scheme_name_port(Scheme::Unspecified, "n", "p"), "n:p");
        assert_eq!(join_scheme_name_port(Scheme::Https, "n", ""), "https:n:");
        assert_eq!(join_scheme_name_port(Scheme::Http, "n", "p"), "http:n:p");
    }
}
