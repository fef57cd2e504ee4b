//! Full URLs and "any address": the entry point for input whose form is not known in advance,
//! such as the argument of `kgate url parse`.
//!
//! Contract: documented on [`Address`], where `cargo doc` shows it.

use serde::Serialize;

use crate::error::{BuildError, ParseError, quoted};
use crate::host::{ContextLabel, ORIGIN_SUFFIX};
use crate::rest::Rest;
use crate::target::Target;

/// The form an address was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Form {
    /// An API proxy path, `/api/v1/...`.
    Api,
    /// A short target, `svc/<ns>/<name>`.
    Short,
    /// A bare origin host, `<name>.<ns>.svc.localhost[:port]`.
    Host,
    /// A URL with an API proxy path, through the gateway or to the API server.
    Gateway,
    /// A URL on an origin host.
    Origin,
}

impl Form {
    /// The form named for people.
    pub fn description(self) -> &'static str {
        match self {
            Form::Api => "API proxy path",
            Form::Short => "short target",
            Form::Host => "origin host",
            Form::Gateway => "URL with an API proxy path",
            Form::Origin => "origin URL",
        }
    }
}

/// A parsed address of any form.
///
/// ```text
/// gateway URL = ( "http" | "https" ) "://" <authority> <API proxy path> [ "#" <fragment> ]
/// origin URL  = ( "http" | "https" ) "://" <origin host> [ ":" <port> ] [ <path> ] [ "?" <query> ] [ "#" <fragment> ]
/// ```
///
/// Contract: URLs are split by hand, not with the `url` crate, because a [`Rest`] must come
/// back byte for byte and `url` normalises paths. The authority may hold only letters,
/// digits, `.`, `-`, `_`, `:`, `[` and `]`: user information (`user@host`) and `\` are refused,
/// since both can make a host look like another one. The fragment is dropped (it is never sent).
/// A URL whose host is an origin host is an origin URL, whatever its path (on a service origin,
/// `/api/...` belongs to the service); any other URL must carry an API proxy path, whether its
/// authority is the gateway (`localhost:8001`) or the API server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Address {
    /// The form it was written in.
    pub form: Form,
    /// The service, pod or node.
    pub target: Target,
    /// The path after the target and the query, byte for byte.
    pub rest: Rest,
    /// The context label of an origin host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<ContextLabel>,
    /// `scheme://authority` of a URL, or `host[:port]` of a bare origin host, as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
}

impl Address {
    /// Parses any address form: an API proxy path (starts with `/`), a URL (starts with
    /// `<scheme>://`), an
    /// origin host or scheme-less origin URL (its host ends in `.localhost`), else a short
    /// target, which may take `default_namespace`.
    ///
    /// ```
    /// use urlgrammar::{Address, Form};
    /// for (input, form) in [
    ///     ("/api/v1/namespaces/ns/services/web/proxy/", Form::Api),
    ///     ("svc/ns/web/", Form::Short),
    ///     ("web.ns.svc.localhost:8001", Form::Host),
    ///     ("http://localhost:8001/api/v1/namespaces/ns/services/web/proxy/", Form::Gateway),
    ///     ("https://10.0.0.1:6443/api/v1/namespaces/ns/services/web/proxy/", Form::Gateway),
    ///     ("http://web.ns.svc.localhost:8001/", Form::Origin),
    ///     ("web.ns.svc.localhost:8001/", Form::Origin),
    ///     ("localhost:8001/api/v1/namespaces/ns/services/web/proxy/", Form::Gateway),
    /// ] {
    ///     let a = Address::parse(input, None)?;
    ///     assert_eq!((a.form, a.target.to_string()), (form, "svc/ns/web".to_owned()), "{input}");
    /// }
    /// # Ok::<(), urlgrammar::ParseError>(())
    /// ```
    pub fn parse(input: &str, default_namespace: Option<&str>) -> Result<Address, ParseError> {
        if input.starts_with('/') {
            let (target, rest) = Target::parse_api_path(input)?;
            return Ok(Address {
                form: Form::Api,
                target,
                rest,
                context: None,
                base: None,
            });
        }
        let has_scheme = input.split_once("://").is_some_and(|(scheme, _)| {
            !scheme.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        });
        if has_scheme {
            return Address::parse_url(input);
        }
        let first = input.split(['/', '?']).next().unwrap_or_default();
        if is_localhost_name(host_of(first)) {
            if first.len() == input.len() && first.contains('.') {
                let h = Target::parse_host(input)?;
                let rest = Rest::default();
                let base = Some(input.to_owned());
                return Ok(Address {
                    form: Form::Host,
                    target: h.target,
                    rest,
                    context: h.context,
                    base,
                });
            }
            let mut a = Address::parse_url(&format!("http://{input}"))?;
            a.base = Some(first.to_owned());
            return Ok(a);
        }
        if input.contains('/') {
            let (target, rest) = Target::parse_short(input, default_namespace)?;
            return Ok(Address {
                form: Form::Short,
                target,
                rest,
                context: None,
                base: None,
            });
        }
        Err(ParseError::Unrecognised {
            input: quoted(input),
        })
    }

    /// Parses an `http` or `https` URL: an origin URL, or a URL with an API proxy path.
    ///
    /// ```
    /// use urlgrammar::{Address, Form};
    /// let a = Address::parse_url("http://grafana.monitoring.svc.localhost:8001/d/abc?orgId=1#panel")?;
    /// assert_eq!(a.form, Form::Origin);
    /// assert_eq!(a.rest.to_string(), "/d/abc?orgId=1");
    /// assert_eq!(a.base.as_deref(), Some("http://grafana.monitoring.svc.localhost:8001"));
    ///
    /// assert!(Address::parse_url("http://evil.example@web.ns.svc.localhost/").is_err());
    /// assert!(Address::parse_url("ftp://localhost/api/v1/nodes/n/proxy").is_err());
    /// # Ok::<(), urlgrammar::ParseError>(())
    /// ```
    pub fn parse_url(url: &str) -> Result<Address, ParseError> {
        let fail = |problem: &str| ParseError::Url {
            url: quoted(url),
            problem: problem.to_owned(),
        };
        let (scheme, after) = url
            .split_once("://")
            .ok_or_else(|| fail("it has no scheme://"))?;
        if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
            return Err(fail("only http and https URLs name a target"));
        }
        let url = url.split_once('#').map_or(url, |(before, _)| before);
        let after = after.split_once('#').map_or(after, |(before, _)| before);
        let end = after.find(['/', '?']).unwrap_or(after.len());
        let (authority, path_and_query) = after.split_at(end);
        check_authority(authority).map_err(fail)?;
        let base = Some(url[..url.len() - path_and_query.len()].to_owned());
        let host = host_of(authority);
        if is_localhost_name(host) && !host.eq_ignore_ascii_case(ORIGIN_SUFFIX) {
            let origin = Target::parse_host(authority);
            if let Ok(h) = origin {
                let rest = match path_and_query.strip_prefix('?') {
                    Some(query) => Rest::new("/", Some(query))?,
                    None if path_and_query.is_empty() => Rest::root(),
                    None => Rest::parse(path_and_query)?,
                };
                return Ok(Address {
                    form: Form::Origin,
                    target: h.target,
                    rest,
                    context: h.context,
                    base,
                });
            }
            if let (Err(e), Err(_)) = (origin, Target::parse_api_path(path_and_query)) {
                return Err(e);
            }
        }
        let (target, rest) = Target::parse_api_path(path_and_query)?;
        Ok(Address {
            form: Form::Gateway,
            target,
            rest,
            context: None,
            base,
        })
    }
}

impl Target {
    /// The URL of this target's API proxy path through a gateway (or an API server) at
    /// `gateway`: `host[:port]`, or `http://` / `https://` followed by it (`http` by default).
    ///
    /// ```
    /// use urlgrammar::{Rest, Target};
    /// let t = Target::service("kube-system", "elasticsearch-logging")?;
    /// assert_eq!(
    ///     t.gateway_url("localhost:8001", &Rest::parse("/_cluster/health")?).ok(),
    ///     Some("http://localhost:8001/api/v1/namespaces/kube-system/services/elasticsearch-logging/proxy/_cluster/health".into()),
    /// );
    /// assert!(t.gateway_url("user@localhost", &Rest::default()).is_err());
    /// # Ok::<(), urlgrammar::ParseError>(())
    /// ```
    pub fn gateway_url(&self, gateway: &str, rest: &Rest) -> Result<String, BuildError> {
        let fail = |problem| BuildError::Gateway {
            value: quoted(gateway),
            problem,
        };
        let trimmed = gateway.strip_suffix('/').unwrap_or(gateway);
        let (scheme, authority) = match trimmed.split_once("://") {
            Some((scheme, authority)) if scheme == "http" || scheme == "https" => {
                (scheme, authority)
            }
            Some(_) => return Err(fail("the scheme must be http or https")),
            None => ("http", trimmed),
        };
        check_authority(authority).map_err(fail)?;
        Ok(format!("{scheme}://{authority}{}", self.api_path(rest)))
    }
}

/// The host of an authority, without `:port`.
fn host_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.split_once(']').map_or(authority, |(h, _)| h);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

/// Whether `host` is `localhost` or a name under it (case-insensitive, trailing dot allowed).
fn is_localhost_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    let n = host.len();
    n >= ORIGIN_SUFFIX.len()
        && host.is_char_boundary(n - ORIGIN_SUFFIX.len())
        && host[n - ORIGIN_SUFFIX.len()..].eq_ignore_ascii_case(ORIGIN_SUFFIX)
        && (n == ORIGIN_SUFFIX.len() || host.as_bytes()[n - ORIGIN_SUFFIX.len() - 1] == b'.')
}

fn check_authority(authority: &str) -> Result<(), &'static str> {
    if authority.is_empty() {
        return Err("it has no host");
    }
    if authority.contains('@') {
        return Err("user information (user@host) is refused: it can disguise the host");
    }
    if !authority
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'))
    {
        return Err(
            "the host holds a character other than letters, digits, '.', '-', '_', ':', '[' and ']'",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_urls_keep_rest_and_base() -> Result<(), ParseError> {
        let a = Address::parse_url("HTTPS://[::1]:6443/api/v1/nodes/n1/proxy/stats?x#frag")?;
        assert_eq!(a.form, Form::Gateway);
        assert_eq!(a.base.as_deref(), Some("HTTPS://[::1]:6443"));
        assert_eq!(a.rest.to_string(), "/stats?x");
        assert_eq!(a.target.to_string(), "node/n1");
        Ok(())
    }

    #[test]
    fn origin_urls_take_precedence_over_api_paths() -> Result<(), ParseError> {
        let a = Address::parse_url("http://web.ns.svc.localhost/api/v1/nodes/n1/proxy")?;
        assert_eq!(
            (a.form, a.target.to_string()),
            (Form::Origin, "svc/ns/web".to_owned())
        );
        assert_eq!(a.rest.path(), "/api/v1/nodes/n1/proxy");
        let a = Address::parse_url("http://web.ns.svc.localhost?q")?;
        assert_eq!(a.rest.to_string(), "/?q");
        let a = Address::parse_url("http://web.ns.svc.localhost")?;
        assert_eq!(a.rest.to_string(), "/");
        Ok(())
    }

    #[test]
    fn localhost_itself_is_the_gateway() -> Result<(), ParseError> {
        let a = Address::parse_url("http://localhost:8001/api/v1/namespaces/a/pods/b/proxy")?;
        assert_eq!(a.form, Form::Gateway);
        // A .localhost name that is no origin host may still be a gateway address.
        let a = Address::parse_url("http://kgate.localhost/api/v1/namespaces/a/pods/b/proxy")?;
        assert_eq!(a.form, Form::Gateway);
        let e = Address::parse_url("http://kgate.localhost/metrics");
        assert!(matches!(e, Err(ParseError::Host { .. })), "{e:?}");
        Ok(())
    }

    #[test]
    fn bad_urls_say_why() {
        let msg = |s: &str| {
            Address::parse(s, None)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(msg("http:///api").contains("no host"));
        assert!(msg("http://a@b/api").contains("user information"));
        assert!(msg("http://a\\b.svc.localhost/").contains("character other than"));
        assert!(msg("gopher://x/").contains("only http and https"));
        assert!(msg("http://localhost:8001/api/v1/pods").contains("not an API proxy path"));
        assert!(msg("grafana").contains("cannot tell what"));
        assert!(msg("").contains("cannot tell what"));
    }

    #[test]
    fn localhost_names() {
        assert!(is_localhost_name("localhost"));
        assert!(is_localhost_name("a.LOCALHOST."));
        assert!(!is_localhost_name("notlocalhost"));
        assert!(!is_localhost_name("é.localhos"));
        assert!(!is_localhost_name("localhost.example"));
    }
}
