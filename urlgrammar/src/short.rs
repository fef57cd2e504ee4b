//! Short targets, the form people type on the command line.
//!
//! Contract: the grammar is documented on [`Target::parse_short`], where `cargo doc` shows it.

use crate::error::{ParseError, quoted};
use crate::rest::Rest;
use crate::scheme_name_port::Scheme;
use crate::target::{Kind, Port, Target};

impl Target {
    /// Parses a short target. `default_namespace` is used when the input names none (it is
    /// validated like any namespace); without one such input is an error.
    ///
    /// # Grammar
    ///
    /// ```text
    /// svc/<ns>/<id>[<path>][?<query>]      pod/<ns>/<id>[<path>][?<query>]
    /// svc/<id>[<path>][?<query>]           pod/<id>[<path>][?<query>]      (default namespace)
    /// node/<id>[<path>][?<query>]
    /// <id> = [http: | https:] <name> [:<port>]
    /// ```
    ///
    /// Contract, and how it differs from the API path's `[scheme:]name[:port]`:
    ///
    /// * A leading `http:` or `https:` is always the scheme, also with two parts: `https:grafana`
    ///   is the service `grafana` over https (in an API path it would be the service `https` on
    ///   port `grafana`). A service really named `http` or `https` with a port is written with an
    ///   empty scheme first, as apimachinery allows: `:https:8443`.
    /// * A namespace never holds `:`, so a first segment with a `:` is the id of the
    ///   namespace-less form: `svc/grafana:3000/api/health` takes the default namespace, while
    ///   `svc/monitoring/grafana` is the service `grafana` in `monitoring`. To give a path without
    ///   a namespace and without a port, end the name with an empty port: `svc/grafana:/login`.
    /// * The kinds `service`, `services`, `pods`, `po`, `nodes` and `no` are accepted as kubectl
    ///   accepts them; built targets always use `svc`, `pod` and `node`.
    /// * The path and query are a [`Rest`], with its rules, kept byte for byte.
    ///
    /// # Examples
    ///
    /// ```
    /// use urlgrammar::{Scheme, Target};
    /// let (t, rest) = Target::parse_short("svc/kube-system/elasticsearch-logging:9200/_cluster/health", None)?;
    /// assert_eq!(t.api_path(&rest), "/api/v1/namespaces/kube-system/services/elasticsearch-logging:9200/proxy/_cluster/health");
    ///
    /// let (t, rest) = Target::parse_short("svc/https:grafana/login?next=%2F", Some("monitoring"))?;
    /// assert_eq!((t.namespace(), t.name(), t.scheme()), (Some("monitoring"), "grafana", Scheme::Https));
    /// assert_eq!(rest.to_string(), "/login?next=%2F");
    ///
    /// let (t, _) = Target::parse_short("node/ip-10-0-0-1.ec2.internal:10255/metrics", None)?;
    /// assert_eq!(t.api_path(&Default::default()), "/api/v1/nodes/ip-10-0-0-1.ec2.internal:10255/proxy");
    ///
    /// assert!(Target::parse_short("svc/grafana", None).is_err()); // which namespace?
    /// assert!(Target::parse_short("deploy/ns/web", None).is_err());
    /// # Ok::<(), urlgrammar::ParseError>(())
    /// ```
    pub fn parse_short(
        input: &str,
        default_namespace: Option<&str>,
    ) -> Result<(Target, Rest), ParseError> {
        let short = |problem: String| ParseError::Short {
            input: quoted(input),
            problem,
        };
        let (body, query) = match input.split_once('?') {
            Some((body, query)) => (body, Some(query)),
            None => (input, None),
        };
        let (keyword, after) = body
            .split_once('/')
            .ok_or_else(|| short("it has no '/' after the kind".to_owned()))?;
        let kind = match keyword {
            "svc" | "service" | "services" => Kind::Service,
            "pod" | "pods" | "po" => Kind::Pod,
            "node" | "nodes" | "no" => Kind::Node,
            other => {
                return Err(short(format!(
                    "unknown kind {:?}: use svc, pod or node",
                    quoted(other)
                )));
            }
        };
        let (first, tail) = split_segment(after);
        let (namespace, id, tail) = if !kind.is_namespaced() {
            (None, first, tail)
        } else if first.contains(':') || tail.is_empty() {
            let namespace = default_namespace.ok_or_else(|| ParseError::NoNamespace {
                kind: kind.keyword(),
                input: quoted(input),
            })?;
            (Some(namespace), first, tail)
        } else {
            let (id, tail) = split_segment(&tail[1..]);
            (Some(first), id, tail)
        };
        let target = target_from_short_id(kind, namespace, id).map_err(|e| match e {
            ParseError::Short { problem, .. } => short(problem),
            e => e,
        })?;
        Ok((target, Rest::new(tail, query)?))
    }

    /// The short target with `rest` appended, always with its namespace, e.g.
    /// `svc/monitoring/grafana:3000/login`.
    ///
    /// ```
    /// use urlgrammar::{Rest, Target};
    /// let (t, rest) = Target::parse_api_path("/api/v1/namespaces/ns/services/https:web:/proxy/x")?;
    /// assert_eq!(t.short(&rest), "svc/ns/https:web/x");
    /// # Ok::<(), urlgrammar::ParseError>(())
    /// ```
    pub fn short(&self, rest: &Rest) -> String {
        match self.namespace() {
            Some(ns) => format!(
                "{}/{ns}/{}{rest}",
                self.kind().keyword(),
                self.short_id(false)
            ),
            None => format!("{}/{}{rest}", self.kind().keyword(), self.short_id(false)),
        }
    }

    /// The short target relative to `default_namespace`: without the namespace when it is the
    /// default one (adding an empty port, `svc/web:/path`, where a path would otherwise be
    /// read as a name), else as [`Target::short`].
    ///
    /// ```
    /// use urlgrammar::{Rest, Target};
    /// let t = Target::service("default", "web")?;
    /// assert_eq!(t.short_in(Some("default"), &Rest::parse("/healthz")?), "svc/web:/healthz");
    /// assert_eq!(t.short_in(Some("default"), &Rest::default()), "svc/web");
    /// assert_eq!(t.short_in(Some("other"), &Rest::default()), "svc/default/web");
    /// # Ok::<(), urlgrammar::ParseError>(())
    /// ```
    pub fn short_in(&self, default_namespace: Option<&str>, rest: &Rest) -> String {
        match self.namespace() {
            Some(ns) if Some(ns) == default_namespace => {
                let id = self.short_id(!rest.path().is_empty());
                format!("{}/{id}{rest}", self.kind().keyword())
            }
            _ => self.short(rest),
        }
    }

    /// The id in short syntax; `need_colon`: the id must hold a ':' so that it is not read as a
    /// namespace.
    fn short_id(&self, need_colon: bool) -> String {
        let name = self.name();
        let port = self.port().map(Port::to_string).unwrap_or_default();
        match self.scheme() {
            Scheme::Unspecified => {
                let looks_like_scheme = matches!(name, "http" | "https");
                if looks_like_scheme && (need_colon || !port.is_empty()) {
                    format!(":{name}:{port}")
                } else if !port.is_empty() || need_colon {
                    format!("{name}:{port}")
                } else {
                    name.to_owned()
                }
            }
            scheme if port.is_empty() => format!("{}:{name}", scheme.as_str()),
            scheme => format!("{}:{name}:{port}", scheme.as_str()),
        }
    }
}

/// Splits `s` at its first '/': the segment, and the tail starting with '/' (or empty).
fn split_segment(s: &str) -> (&str, &str) {
    match s.find('/') {
        Some(i) => s.split_at(i),
        None => (s, ""),
    }
}

/// A target from a short id, `[http:|https:]name[:port]` (see the module docs).
fn target_from_short_id(
    kind: Kind,
    namespace: Option<&str>,
    id: &str,
) -> Result<Target, ParseError> {
    let short = |problem: &str| ParseError::Short {
        input: String::new(),
        problem: problem.to_owned(),
    };
    let parts: Vec<&str> = id.split(':').collect();
    let (scheme, name, port) = match parts.as_slice() {
        [name] => ("", *name, ""),
        [scheme @ ("http" | "https"), name] => (*scheme, *name, ""),
        [name, port] => ("", *name, *port),
        [scheme, name, port] => (*scheme, *name, *port),
        _ => return Err(short("the id has more than three ':'-separated parts")),
    };
    let scheme = match scheme {
        "" => Scheme::Unspecified,
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return Err(short("the scheme must be http or https")),
    };
    if name.is_empty() {
        return Err(short("the name is empty"));
    }
    let port = match port {
        "" => None,
        port => Some(Port::parse(port)?),
    };
    Ok(Target::new(kind, namespace, name)?
        .with_scheme(scheme)
        .with_port(port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<(Target, Rest), ParseError> {
        Target::parse_short(s, Some("dflt"))
    }

    #[test]
    fn namespaced_and_default_forms() -> Result<(), ParseError> {
        let (t, r) = parse("svc/monitoring/grafana")?;
        assert_eq!(
            (t.namespace(), t.name(), r.is_empty()),
            (Some("monitoring"), "grafana", true)
        );
        let (t, r) = parse("svc/grafana")?;
        assert_eq!(
            (t.namespace(), t.name(), r.is_empty()),
            (Some("dflt"), "grafana", true)
        );
        let (t, r) = parse("svc/grafana:3000/api/health")?;
        assert_eq!(
            (t.namespace(), t.id(), r.path()),
            (Some("dflt"), "grafana:3000".into(), "/api/health")
        );
        let (t, r) = parse("svc/grafana:/login")?;
        assert_eq!(
            (t.namespace(), t.id(), r.path()),
            (Some("dflt"), "grafana".into(), "/login")
        );
        let (t, r) = parse("pod/web-0?x=1")?;
        assert_eq!(
            (t.kind(), t.namespace(), r.query()),
            (Kind::Pod, Some("dflt"), Some("x=1"))
        );
        let (t, r) = parse("svc/monitoring/grafana/")?;
        assert_eq!((t.name(), r.path()), ("grafana", "/"));
        Ok(())
    }

    #[test]
    fn schemes_and_ports() -> Result<(), ParseError> {
        let id =
            |s: &str| parse(s).map(|(t, _)| (t.scheme(), t.name().to_owned(), t.port().cloned()));
        assert_eq!(id("svc/ns/https:web")?, (Scheme::Https, "web".into(), None));
        assert_eq!(
            id("svc/ns/http:web:80")?,
            (Scheme::Http, "web".into(), Some(Port::Number(80)))
        );
        assert_eq!(
            id("svc/ns/:https:8443")?,
            (
                Scheme::Unspecified,
                "https".into(),
                Some(Port::Number(8443))
            )
        );
        assert_eq!(
            id("svc/ns/web:")?,
            (Scheme::Unspecified, "web".into(), None)
        );
        assert_eq!(
            id("node/n1:https")?.2.map(|p| p.to_string()),
            Some("https".into())
        );
        Ok(())
    }

    #[test]
    fn kind_aliases() -> Result<(), ParseError> {
        for (s, kind) in [
            ("service/a/b", Kind::Service),
            ("services/a/b", Kind::Service),
            ("po/a/b", Kind::Pod),
            ("pods/a/b", Kind::Pod),
            ("no/a", Kind::Node),
            ("nodes/a", Kind::Node),
        ] {
            assert_eq!(parse(s)?.0.kind(), kind, "{s}");
        }
        Ok(())
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let msg = |s: &str, ns: Option<&str>| {
            Target::parse_short(s, ns)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(msg("svc", None).contains("no '/' after the kind"));
        assert!(msg("deploy/a/b", None).contains("unknown kind \"deploy\""));
        assert!(msg("svc/web", None).contains("no default namespace"));
        assert!(msg("svc/ns/a:b:c:d", None).contains("more than three"));
        assert!(msg("svc/ns/ftp:web:21", None).contains("scheme must be http or https"));
        assert!(msg("svc/ns/https:", None).contains("name is empty"));
        assert!(msg("svc/ns/", None).contains("name is empty"));
        assert!(msg("svc/ns/web:0", None).contains("port number"));
        assert!(msg("svc/NS/web", None).contains("namespace"));
        assert!(msg("svc/ns/web/../x", None).contains("\"..\""));
        assert!(msg("svc/web", Some("Bad")).contains("invalid namespace"));
    }

    #[test]
    fn built_short_targets_parse_back() -> Result<(), ParseError> {
        let rest = Rest::parse("/p?q")?;
        for t in [
            Target::service("dflt", "https")?.with_port(Some(Port::parse("web")?)),
            Target::service("dflt", "http")?,
            Target::service("dflt", "web")?.with_scheme(Scheme::Https),
            Target::service("other", "web")?,
            Target::node("n.1")?
                .with_scheme(Scheme::Http)
                .with_port(Some(Port::Number(1))),
        ] {
            for r in [&rest, &Rest::default(), &Rest::root()] {
                assert_eq!(
                    parse(&t.short(r))?,
                    (t.clone(), r.clone()),
                    "{}",
                    t.short(r)
                );
                let relative = t.short_in(Some("dflt"), r);
                assert_eq!(parse(&relative)?, (t.clone(), r.clone()), "{relative}");
            }
        }
        Ok(())
    }
}
