//! Pure parsing and building of every address form kgate speaks.
//!
//! No I/O and no async: this crate builds in seconds, so it can be fuzzed (`fuzz/` at the
//! repository root) and property-tested (`tests/properties.rs`). Nothing else in kgate builds
//! or splits an address by hand: every form goes through a [`Target`] and a [`Rest`].
//!
//! # The target
//!
//! A [`Target`] is a service, pod or node, with its namespace (services and pods), its name,
//! a [`Scheme`] (none, `http` or `https`) and an optional [`Port`] (a number or an IANA port
//! name). It is validated when made, as Kubernetes validates objects (`validate`):
//!
//! | part | rule |
//! |---|---|
//! | namespace, service name | DNS-1123 label: at most 63 of `a-z 0-9 -`, letter or digit at both ends |
//! | pod name, node name | DNS-1123 subdomain: at most 253 characters, labels joined by `.` |
//! | port name | IANA service name: 1–15 of `a-z 0-9 -`, a letter, no leading, trailing or double `-` |
//! | port number | 1 to 65535, decimal, no leading zero |
//!
//! Every failure is a [`ParseError`] naming the part ([`Part`]) and the rule ([`Rule`]):
//!
//! ```
//! use urlgrammar::{ParseError, Part, Rule, Target};
//! let err = Target::parse_short("svc/Monitoring/grafana", None).unwrap_err();
//! assert!(matches!(err, ParseError::Invalid { part: Part::Namespace, rule: Rule::Dns1123Label, .. }));
//! assert_eq!(
//!     err.to_string(),
//!     "invalid namespace \"Monitoring\": has the upper-case letter 'M' at 0; it must be a DNS-1123 label \
//!      (at most 63 characters: a-z, 0-9 and '-', starting and ending with a letter or digit)",
//! );
//! ```
//!
//! # API proxy paths
//!
//! ```text
//! /api/v1/namespaces/<ns>/services/<id>/proxy[<rest>]
//! /api/v1/namespaces/<ns>/pods/<id>/proxy[<rest>]
//! /api/v1/nodes/<id>/proxy[<rest>]
//! <id>   = [<scheme>:]<name>[:<port>]    split as apimachinery's SplitSchemeNamePort
//! <rest> = [/<path>][?<query>]           raw percent-encoded text, kept byte for byte
//! ```
//!
//! The `<id>` is split exactly as the API server splits it ([`split_scheme_name_port`]): one
//! part is a name, two are `name:port`, three are `scheme:name:port` with the scheme `http`,
//! `https` or empty; so `https:web:` is `web` over https on the default port, and `https:web`
//! is the service `https` on the port `web`. Building joins as `JoinSchemeNamePort`.
//!
//! The API server routes on the decoded path, so the prefix segments are percent-decoded
//! before they are matched (`%73ervices` is `services`), and a prefix segment that decodes to
//! a `/` is refused. The rest is never decoded: see [`Rest`] for what it may hold and why
//! (`.`/`..` segments are refused in every spelling, `%2F`, empty segments and non-UTF-8
//! escapes are kept). Nothing appended after `/proxy` can name another target.
//!
//! ```
//! use urlgrammar::{Rest, Target};
//! let path = "/api/v1/namespaces/kube-system/services/elasticsearch-logging:9200/proxy/_cluster/health?pretty";
//! let (target, rest) = Target::parse_api_path(path)?;
//! assert_eq!(target.to_string(), "svc/kube-system/elasticsearch-logging:9200");
//! assert_eq!(rest.to_string(), "/_cluster/health?pretty");
//! assert_eq!(target.api_path(&rest), path);
//!
//! let kept = "/api/v1/nodes/n1/proxy/a//b%2Fc/%FF?x=%zz";
//! assert_eq!(Target::parse_api_path(kept).map(|(t, r)| t.api_path(&r))?, kept);
//! assert!(Target::parse_api_path("/api/v1/nodes/n1/proxy/%2e%2e/%2e%2e/n2/proxy").is_err());
//! # Ok::<(), urlgrammar::ParseError>(())
//! ```
//!
//! # Short targets
//!
//! ```text
//! svc/<ns>/<id>[<rest>]     pod/<ns>/<id>[<rest>]     node/<id>[<rest>]
//! svc/<id>[<rest>]          pod/<id>[<rest>]          (the caller's default namespace)
//! <id> = [http: | https:]<name>[:<port>]
//! ```
//!
//! For people on the command line. A leading `http:`/`https:` is always the scheme
//! (`https:grafana`); a first segment holding `:` is the id of the namespace-less form (a
//! namespace never holds `:`), so `svc/grafana:3000/login` and `svc/grafana:/login` take the
//! default namespace while `svc/monitoring/grafana` does not. Details in
//! [`Target::parse_short`].
//!
//! ```
//! use urlgrammar::Target;
//! let (t, rest) = Target::parse_short("svc/https:grafana:3000/login", Some("monitoring"))?;
//! assert_eq!(t.api_path(&rest), "/api/v1/namespaces/monitoring/services/https:grafana:3000/proxy/login");
//! assert_eq!(t.short(&rest), "svc/monitoring/https:grafana:3000/login");
//! assert_eq!(t.short_in(Some("monitoring"), &rest), "svc/https:grafana:3000/login");
//! # Ok::<(), urlgrammar::ParseError>(())
//! ```
//!
//! # Origin hosts
//!
//! ```text
//! [<port>.]<name>.<ns>.<kind>[.<context>].localhost[.][:<listen port>]    services, pods
//! [<port>.]<name>.<kind>[.<context>].localhost[.][:<listen port>]         nodes
//! <kind> = [http- | https-](svc | pod | node)
//! ```
//!
//! Each target gets its own browser origin under `localhost`. Read from the right, the kind
//! label fixes how many labels precede it, so the grammar is unambiguous; a context label may
//! not be a kind label. The kind label carries the scheme, so every target round-trips.
//! Parsing lower-cases; names with a `.` or longer than 63 characters (possible for pods and
//! nodes) have no origin host ([`BuildError::NoOriginHost`]). The full write-up is in
//! `HOSTS.md` beside this crate, and in [`Target::parse_host`].
//!
//! ```
//! use urlgrammar::{ContextLabel, Target};
//! let h = Target::parse_host("3000.Grafana.monitoring.svc.prod.localhost:8001")?;
//! assert_eq!(h.target.to_string(), "svc/monitoring/grafana:3000");
//! assert_eq!((h.context.as_ref().map(ContextLabel::as_str), h.port), (Some("prod"), Some(8001)));
//! assert_eq!(h.target.origin_host(h.context.as_ref()).ok(), Some("3000.grafana.monitoring.svc.prod.localhost".into()));
//! # Ok::<(), urlgrammar::ParseError>(())
//! ```
//!
//! # URLs and any address
//!
//! ```text
//! http[s]://<gateway or API server>/api/v1/...proxy[<rest>]     a gateway URL
//! http[s]://<origin host>[:<port>][<path>][?<query>]           an origin URL
//! ```
//!
//! [`Address::parse`] takes any of the forms above (and URLs) and says which it was
//! ([`Form`]); user information (`user@host`) and `\` in a URL's authority are refused, and
//! fragments dropped. Every target prints in every form:
//!
//! ```
//! use urlgrammar::{Address, Rest};
//! let a = Address::parse("http://localhost:8001/api/v1/namespaces/monitoring/services/grafana/proxy/login", None)?;
//! let (t, rest) = (&a.target, &a.rest);
//! assert_eq!(t.api_path(rest), "/api/v1/namespaces/monitoring/services/grafana/proxy/login");
//! assert_eq!(t.short(rest), "svc/monitoring/grafana/login");
//! assert_eq!(t.gateway_url("localhost:8001", rest).ok().as_deref(),
//!            Some("http://localhost:8001/api/v1/namespaces/monitoring/services/grafana/proxy/login"));
//! assert_eq!(t.origin_url(None, Some(8001), rest).ok().as_deref(),
//!            Some("http://grafana.monitoring.svc.localhost:8001/login"));
//! # Ok::<(), urlgrammar::ParseError>(())
//! ```

mod address;
mod api_path;
mod error;
mod host;
mod rest;
mod scheme_name_port;
mod short;
mod target;
pub mod validate;

pub use address::{Address, Form};
pub use error::{BuildError, MAX_QUOTED, ParseError, Part, Rule};
pub use host::{ContextLabel, ORIGIN_SUFFIX, OriginHost};
pub use rest::Rest;
pub use scheme_name_port::{Scheme, SchemeNamePort, join_scheme_name_port, split_scheme_name_port};
pub use target::{Kind, Port, PortName, Target};
