//! The target of a proxy request: a service, pod or node, with scheme and port.
//!
//! Contract: a [`Target`] can only be made through constructors that validate every part
//! (namespace and service name as DNS-1123 labels, pod and node names as DNS-1123 subdomains,
//! port names as IANA service names, port numbers 1 to 65535), so every target that exists
//! prints as a valid address in every form, and two targets are equal exactly when they name
//! the same object, scheme and port.

use std::fmt;

use serde::Serialize;

use crate::error::{ParseError, Part};
use crate::scheme_name_port::{Scheme, join_scheme_name_port};
use crate::validate;

/// The kind of object a target names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A service (`/api/v1/namespaces/<ns>/services/<id>/proxy`).
    Service,
    /// A pod (`/api/v1/namespaces/<ns>/pods/<id>/proxy`).
    Pod,
    /// A node, that is its kubelet or another port on it (`/api/v1/nodes/<id>/proxy`).
    Node,
}

impl Kind {
    /// The resource name in API paths: `services`, `pods`, `nodes`.
    pub fn resource(self) -> &'static str {
        match self {
            Kind::Service => "services",
            Kind::Pod => "pods",
            Kind::Node => "nodes",
        }
    }

    /// The keyword of short targets and origin hosts: `svc`, `pod`, `node`.
    pub fn keyword(self) -> &'static str {
        match self {
            Kind::Service => "svc",
            Kind::Pod => "pod",
            Kind::Node => "node",
        }
    }

    /// Whether objects of this kind live in a namespace.
    pub fn is_namespaced(self) -> bool {
        !matches!(self, Kind::Node)
    }

    /// The part that names an object of this kind, for errors.
    pub fn name_part(self) -> Part {
        match self {
            Kind::Service => Part::ServiceName,
            Kind::Pod => Part::PodName,
            Kind::Node => Part::NodeName,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Service => "service",
            Kind::Pod => "pod",
            Kind::Node => "node",
        })
    }
}

/// A port, by number or by name.
///
/// For a service, a number is matched against `spec.ports[].port` and a name against
/// `spec.ports[].name`; for a pod the API server uses either verbatim (it does not resolve
/// named container ports); for a node, a number other than the kubelet port reaches that port
/// on the node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum Port {
    /// A port number, 1 to 65535.
    Number(u16),
    /// A port name (IANA service name).
    Name(PortName),
}

/// A valid IANA service name (`IsValidPortName`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PortName(String);

impl PortName {
    /// Validates `name` as an IANA service name.
    pub fn new(name: &str) -> Result<Self, ParseError> {
        validate::port_name(name)?;
        Ok(PortName(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Port {
    /// Parses the port part of `[scheme:]name[:port]`: all digits is a number, anything else a
    /// name.
    ///
    /// ```
    /// use urlgrammar::Port;
    /// assert_eq!(Port::parse("9200")?, Port::Number(9200));
    /// assert_eq!(Port::parse("https")?.to_string(), "https");
    /// assert!(Port::parse("0").is_err());
    /// assert!(Port::parse("web--ui").is_err());
    /// # Ok::<(), urlgrammar::ParseError>(())
    /// ```
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            validate::port_number(s).map(Port::Number)
        } else {
            PortName::new(s).map(Port::Name)
        }
    }

    /// A port number, checked to be 1 to 65535.
    pub fn number(n: u16) -> Result<Self, ParseError> {
        validate::port_number(&n.to_string()).map(Port::Number)
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Port::Number(n) => write!(f, "{n}"),
            Port::Name(name) => f.write_str(name.as_str()),
        }
    }
}

/// A service, pod or node to proxy to, with the scheme and port the API server should use.
///
/// Make one with [`Target::service`], [`Target::pod`] or [`Target::node`], or parse one from
/// any address form. Printing it (`Display`) gives its short target.
///
/// ```
/// use urlgrammar::{Port, Scheme, Target};
/// let t = Target::service("monitoring", "grafana")?
///     .with_port(Some(Port::parse("3000")?))
///     .with_scheme(Scheme::Https);
/// assert_eq!(t.to_string(), "svc/monitoring/https:grafana:3000");
/// assert_eq!(t.id(), "https:grafana:3000");
/// assert_eq!(t.namespace(), Some("monitoring"));
/// # Ok::<(), urlgrammar::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Target {
    kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    name: String,
    scheme: Scheme,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<Port>,
}

impl Target {
    /// A service; `namespace` and `name` must be DNS-1123 labels.
    pub fn service(namespace: &str, name: &str) -> Result<Self, ParseError> {
        Self::new(Kind::Service, Some(namespace), name)
    }

    /// A pod; `namespace` must be a DNS-1123 label, `name` a DNS-1123 subdomain.
    pub fn pod(namespace: &str, name: &str) -> Result<Self, ParseError> {
        Self::new(Kind::Pod, Some(namespace), name)
    }

    /// A node; `name` must be a DNS-1123 subdomain.
    pub fn node(name: &str) -> Result<Self, ParseError> {
        Self::new(Kind::Node, None, name)
    }

    /// A target of `kind`. `namespace` is required for services and pods and ignored for
    /// nodes.
    pub fn new(kind: Kind, namespace: Option<&str>, name: &str) -> Result<Self, ParseError> {
        let namespace = if kind.is_namespaced() {
            let ns = namespace.unwrap_or_default();
            validate::dns1123_label(Part::Namespace, ns)?;
            Some(ns.to_owned())
        } else {
            None
        };
        match kind {
            Kind::Service => validate::dns1123_label(Part::ServiceName, name)?,
            Kind::Pod => validate::dns1123_subdomain(Part::PodName, name)?,
            Kind::Node => validate::dns1123_subdomain(Part::NodeName, name)?,
        }
        Ok(Target {
            kind,
            namespace,
            name: name.to_owned(),
            scheme: Scheme::Unspecified,
            port: None,
        })
    }

    /// The same target with another port (`None`: the default port).
    #[must_use]
    pub fn with_port(mut self, port: Option<Port>) -> Self {
        self.port = port;
        self
    }

    /// The same target with another scheme.
    #[must_use]
    pub fn with_scheme(mut self, scheme: Scheme) -> Self {
        self.scheme = scheme;
        self
    }

    /// The kind of object.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The namespace; `None` for nodes.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The scheme as written (`Unspecified` means `http` to the API server).
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The port; `None` means the default (a service's unnamed port, a pod's first declared
    /// container port, a node's kubelet port).
    pub fn port(&self) -> Option<&Port> {
        self.port.as_ref()
    }

    /// The scheme the upstream actually speaks: as written, except that an unspecified scheme
    /// becomes `https` for a port named `https` or numbered 443 (DESIGN, "Addresses"), and
    /// `http` otherwise.
    ///
    /// ```
    /// use urlgrammar::{Port, Scheme, Target};
    /// let es = Target::service("logging", "es")?;
    /// assert_eq!(es.effective_scheme(), Scheme::Http);
    /// let es = es.with_port(Some(Port::parse("443")?));
    /// assert_eq!(es.effective_scheme(), Scheme::Https);
    /// # Ok::<(), urlgrammar::ParseError>(())
    /// ```
    pub fn effective_scheme(&self) -> Scheme {
        match (self.scheme, &self.port) {
            (Scheme::Unspecified, Some(Port::Number(443))) => Scheme::Https,
            (Scheme::Unspecified, Some(Port::Name(n))) if n.as_str() == "https" => Scheme::Https,
            (Scheme::Unspecified, _) => Scheme::Http,
            (scheme, _) => scheme,
        }
    }

    /// The `[scheme:]name[:port]` segment of the API path, joined as apimachinery's
    /// `JoinSchemeNamePort`.
    pub fn id(&self) -> String {
        let port = self.port.as_ref().map(Port::to_string).unwrap_or_default();
        join_scheme_name_port(self.scheme, &self.name, &port)
    }
}

impl fmt::Display for Target {
    /// The short target, e.g. `svc/monitoring/grafana:3000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.short(&crate::Rest::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_validate_each_part() -> Result<(), ParseError> {
        assert!(Target::service("kube-system", "elasticsearch-logging").is_ok());
        assert!(Target::pod("default", "web-0.web").is_ok());
        assert!(Target::node("ip-10-0-0-1.ec2.internal").is_ok());

        let part = |r: Result<Target, ParseError>| match r {
            Err(ParseError::Invalid { part, .. }) => Some(part),
            _ => None,
        };
        assert_eq!(part(Target::service("Kube", "a")), Some(Part::Namespace));
        assert_eq!(part(Target::service("a", "a.b")), Some(Part::ServiceName));
        assert_eq!(part(Target::pod("a", "a..b")), Some(Part::PodName));
        assert_eq!(part(Target::node("-n")), Some(Part::NodeName));
        assert_eq!(
            part(Target::new(Kind::Pod, None, "p")),
            Some(Part::Namespace)
        );
        assert_eq!(
            Target::new(Kind::Node, Some("ignored"), "n")?.namespace(),
            None
        );
        Ok(())
    }

    #[test]
    fn ports_are_numbers_or_names() -> Result<(), ParseError> {
        assert_eq!(Port::parse("1")?, Port::Number(1));
        assert_eq!(Port::parse("http")?, Port::Name(PortName::new("http")?));
        assert!(Port::parse("").is_err());
        assert!(Port::parse("65536").is_err());
        assert!(Port::number(0).is_err());
        assert_eq!(Port::number(65535)?, Port::Number(65535));
        Ok(())
    }

    #[test]
    fn ids_join_like_apimachinery() -> Result<(), ParseError> {
        let t = Target::service("ns", "web")?;
        assert_eq!(t.id(), "web");
        assert_eq!(t.clone().with_scheme(Scheme::Https).id(), "https:web:");
        assert_eq!(t.with_port(Some(Port::parse("http")?)).id(), "web:http");
        Ok(())
    }

    #[test]
    fn effective_scheme_prefers_what_was_written() -> Result<(), ParseError> {
        let t = Target::service("ns", "web")?.with_port(Some(Port::parse("https")?));
        assert_eq!(t.effective_scheme(), Scheme::Https);
        assert_eq!(t.with_scheme(Scheme::Http).effective_scheme(), Scheme::Http);
        Ok(())
    }

    #[test]
    fn serialises_for_scripts() -> Result<(), Box<dyn std::error::Error>> {
        let t = Target::service("ns", "web")?.with_port(Some(Port::parse("8080")?));
        assert_eq!(
            serde_json::to_string(&t)?,
            r#"{"kind":"service","namespace":"ns","name":"web","scheme":"","port":8080}"#
        );
        let n = Target::node("n1")?.with_port(Some(Port::parse("metrics")?));
        assert_eq!(
            serde_json::to_string(&n)?,
            r#"{"kind":"node","name":"n1","scheme":"","port":"metrics"}"#
        );
        Ok(())
    }
}
