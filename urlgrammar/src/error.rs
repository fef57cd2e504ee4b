//! Errors of every parser and builder in this crate.
//!
//! Contract: each error names the part of the address that was wrong (`Part`), the rule it
//! broke (`Rule`) where there is one, and what to do; its `Display` is one line, so a command
//! can print it as is. Values quoted from the input are cut to [`MAX_QUOTED`] characters, so a
//! hostile `Host` header cannot blow up a log line.

use std::fmt;

use crate::target::Kind;

/// The longest piece of input quoted in an error message, in characters.
pub const MAX_QUOTED: usize = 96;

/// Which part of an address an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Part {
    /// The namespace of a service or pod.
    Namespace,
    /// The name of a service.
    ServiceName,
    /// The name of a pod.
    PodName,
    /// The name of a node.
    NodeName,
    /// A port given by name.
    PortName,
    /// A port given by number.
    PortNumber,
    /// The context label of an origin host.
    Context,
    /// The path after `/proxy`.
    Path,
    /// The query string.
    Query,
    /// A `Host` header value or the host of a URL.
    Host,
}

impl Part {
    /// The part named for people, as used in error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Namespace => "namespace",
            Part::ServiceName => "service name",
            Part::PodName => "pod name",
            Part::NodeName => "node name",
            Part::PortName => "port name",
            Part::PortNumber => "port number",
            Part::Context => "context label",
            Part::Path => "path",
            Part::Query => "query",
            Part::Host => "host",
        }
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validation rule, as Kubernetes defines it (apimachinery `pkg/util/validation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// `IsDNS1123Label`: at most 63 characters of `a-z`, `0-9` and `-`, starting and ending
    /// with a letter or digit. Namespaces and service names.
    Dns1123Label,
    /// `IsDNS1123Subdomain`: at most 253 characters, DNS-1123 labels joined by dots. Pod and
    /// node names.
    Dns1123Subdomain,
    /// `IsValidPortName` (IANA service name, RFC 6335): 1 to 15 characters of `a-z`, `0-9` and
    /// `-`, at least one letter, no leading, trailing or double `-`.
    IanaServiceName,
    /// `IsValidPortNum`: 1 to 65535, written in decimal without leading zeros.
    PortNumber,
    /// A context label of an origin host: a DNS-1123 label that is not one of the kind
    /// keywords (`svc`, `pod`, `node`, with or without `http-` / `https-`).
    ContextLabel,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rule::Dns1123Label => {
                "a DNS-1123 label (at most 63 characters: a-z, 0-9 and '-', \
                 starting and ending with a letter or digit)"
            }
            Rule::Dns1123Subdomain => {
                "a DNS-1123 subdomain (at most 253 characters: DNS-1123 labels joined by '.')"
            }
            Rule::IanaServiceName => {
                "an IANA service name (1 to 15 characters: a-z, 0-9 and '-', at least one \
                 letter, no leading, trailing or double '-')"
            }
            Rule::PortNumber => "a port number (1 to 65535, no leading zeros)",
            Rule::ContextLabel => {
                "a context label (a DNS-1123 label other than svc, pod, node, http-svc, \
                 https-svc, http-pod, https-pod, http-node or https-node)"
            }
        })
    }
}

/// Why an address could not be parsed, or a target could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A name, namespace, port or label broke its validation rule.
    #[error("invalid {part} {value:?}: {problem}; it must be {rule}")]
    Invalid {
        /// The part that was wrong.
        part: Part,
        /// The offending text (cut to [`MAX_QUOTED`] characters).
        value: String,
        /// The rule it broke.
        rule: Rule,
        /// What exactly is wrong with it.
        problem: String,
    },
    /// The `[scheme:]name[:port]` segment does not split as apimachinery's
    /// `SplitSchemeNamePort` splits it (the API server answers 400 `invalid <kind> request`).
    #[error("invalid {kind} request {id:?}: {problem}; write [http:|https:]<name>[:<port>]")]
    SchemeNamePort {
        /// The kind of object the segment names.
        kind: Kind,
        /// The offending segment (cut to [`MAX_QUOTED`] characters).
        id: String,
        /// What exactly is wrong with it.
        problem: &'static str,
    },
    /// The path is not an API proxy path of a service, pod or node.
    #[error(
        "not an API proxy path: {path:?} ({problem}); expected \
         /api/v1/namespaces/<ns>/services/<id>/proxy[/<path>], \
         /api/v1/namespaces/<ns>/pods/<id>/proxy[/<path>] or /api/v1/nodes/<id>/proxy[/<path>]"
    )]
    NotProxyPath {
        /// The offending path (cut to [`MAX_QUOTED`] characters).
        path: String,
        /// What exactly is wrong with it.
        problem: String,
    },
    /// The path has a `.` or `..` segment (also written `%2E`).
    #[error(
        "the path has the segment {segment:?}: browsers and URL libraries resolve `.` and `..` \
         segments (also as %2E) and the API server cleans them with path.Join, so kgate refuses \
         them; remove the segment"
    )]
    DotSegment {
        /// The offending segment as written.
        segment: String,
    },
    /// A character that must be percent-encoded was found raw.
    #[error("the {part} has {found:?} at byte {position}, which must be percent-encoded ({hint})")]
    Character {
        /// Where it was found.
        part: Part,
        /// The byte offset in the part.
        position: usize,
        /// The character.
        found: char,
        /// Why, and how to write it.
        hint: &'static str,
    },
    /// A `%` not followed by two hex digits.
    #[error(
        "the {part} has a malformed percent-escape at byte {position}: '%' must be followed by \
         two hex digits (write a literal '%' as %25)"
    )]
    Escape {
        /// Where it was found.
        part: Part,
        /// The byte offset of the `%` in the part.
        position: usize,
    },
    /// A short target that does not follow the short grammar.
    #[error(
        "invalid short target {input:?}: {problem}; expected svc/<ns>/<name>[:<port>][/<path>], \
         pod/<ns>/<name>[:<port>][/<path>] or node/<name>[:<port>][/<path>]"
    )]
    Short {
        /// The offending input (cut to [`MAX_QUOTED`] characters).
        input: String,
        /// What exactly is wrong with it.
        problem: String,
    },
    /// A short target without namespace, and no default namespace to use.
    #[error(
        "{input:?} names no namespace and no default namespace is set: write \
         {kind}/<namespace>/<name> or give a default namespace"
    )]
    NoNamespace {
        /// The kind keyword (`svc` or `pod`).
        kind: &'static str,
        /// The offending input (cut to [`MAX_QUOTED`] characters).
        input: String,
    },
    /// A host that is not a kgate origin host.
    #[error(
        "not a kgate origin host: {host:?} ({problem}); expected \
         [<port>.]<name>.<namespace>.svc[.<context>].localhost, the same with pod, or \
         [<port>.]<name>.node[.<context>].localhost"
    )]
    Host {
        /// The offending host (cut to [`MAX_QUOTED`] characters).
        host: String,
        /// What exactly is wrong with it.
        problem: String,
    },
    /// A URL that is neither a gateway/API-server URL nor an origin URL.
    #[error("invalid URL {url:?}: {problem}")]
    Url {
        /// The offending URL (cut to [`MAX_QUOTED`] characters).
        url: String,
        /// What exactly is wrong with it.
        problem: String,
    },
    /// Input that matches none of the address forms.
    #[error(
        "cannot tell what {input:?} is: give an API proxy path (/api/v1/...), a short target \
         (svc/<ns>/<name>), an origin host (<name>.<ns>.svc.localhost) or a URL (http://...)"
    )]
    Unrecognised {
        /// The offending input (cut to [`MAX_QUOTED`] characters).
        input: String,
    },
}

/// Why a target could not be written in a given form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The name cannot be one label of an origin host.
    #[error(
        "{kind} {name:?} has no origin host: {problem}; reach it through its API path \
         (kgate url build --form api) or a dedicated port"
    )]
    NoOriginHost {
        /// The kind of the object.
        kind: Kind,
        /// Its name (cut to [`MAX_QUOTED`] characters).
        name: String,
        /// Why it cannot be a label.
        problem: &'static str,
    },
    /// The gateway address given to a URL builder is not `[http[s]://]host[:port]`.
    #[error(
        "invalid gateway address {value:?}: {problem}; write host[:port] or \
         http://host[:port], e.g. localhost:8001"
    )]
    Gateway {
        /// The offending value (cut to [`MAX_QUOTED`] characters).
        value: String,
        /// What exactly is wrong with it.
        problem: &'static str,
    },
}

/// `s` cut to [`MAX_QUOTED`] characters for quoting in an error message.
pub(crate) fn quoted(s: &str) -> String {
    match s.char_indices().nth(MAX_QUOTED) {
        None => s.to_owned(),
        Some((end, _)) => format!("{}…", &s[..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_cuts_long_values_on_a_char_boundary() {
        let long = "é".repeat(MAX_QUOTED + 10);
        let q = quoted(&long);
        assert_eq!(q.chars().count(), MAX_QUOTED + 1);
        assert!(q.ends_with('…'));
        assert_eq!(quoted("short"), "short");
    }

    #[test]
    fn messages_are_one_line() {
        let e = ParseError::Invalid {
            part: Part::Namespace,
            value: "A".into(),
            rule: Rule::Dns1123Label,
            problem: "has the upper-case letter 'A'".into(),
        };
        let s = e.to_string();
        assert!(!s.contains('\n'), "{s}");
        assert!(
            s.contains("namespace") && s.contains("DNS-1123 label"),
            "{s}"
        );
    }
}
