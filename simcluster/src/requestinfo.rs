//! What a request asks for, parsed as apiserver's `RequestInfoFactory.NewRequestInfo`
//! (`pkg/endpoints/request/requestinfo.go`): resource or non-resource, group, version,
//! namespace, resource, name, subresource and the authorization verb.

/// The parsed request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct RequestInfo {
    pub(crate) is_resource: bool,
    pub(crate) path: String,
    pub(crate) verb: String,
    pub(crate) api_prefix: String,
    pub(crate) api_group: String,
    pub(crate) api_version: String,
    pub(crate) namespace: String,
    pub(crate) resource: String,
    pub(crate) subresource: String,
    pub(crate) name: String,
    /// The path segments after the version (and after `namespaces/<ns>` when followed by more).
    pub(crate) parts: Vec<String>,
}

/// `namespaceSubresources` in requestinfo.go: these stay subresources of a namespace.
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

/// Parses a decoded request path with its method and query.
pub(crate) fn parse(method: &http::Method, path: &str, query: Option<&str>) -> RequestInfo {
    let mut info = RequestInfo {
        path: path.to_owned(),
        verb: method.as_str().to_ascii_lowercase(),
        ..RequestInfo::default()
    };
    let mut parts: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(str::to_owned)
        .collect();
    if parts.len() < 3 {
        // `/api`, `/apis/<group>` and other short paths are non-resource requests.
        return info;
    }
    let prefix = parts.remove(0);
    if prefix != "api" && prefix != "apis" {
        return info;
    }
    info.api_prefix = prefix.clone();
    if prefix == "apis" {
        info.api_group = parts.remove(0);
        if parts.is_empty() {
            return info;
        }
    }
    info.api_version = parts.remove(0);
    if parts.is_empty() {
        return info;
    }
    info.is_resource = true;
    // specialVerbs = {"proxy", "watch"}: a leading one names the verb.
    let mut verb_from_path = false;
    if parts[0] == "proxy" || parts[0] == "watch" {
        if parts.len() < 2 {
            info.is_resource = false;
            return info;
        }
        info.verb = parts.remove(0);
        verb_from_path = true;
    } else {
        info.verb = match *method {
            http::Method::POST => "create",
            http::Method::GET | http::Method::HEAD => "get",
            http::Method::PUT => "update",
            http::Method::PATCH => "patch",
            http::Method::DELETE => "delete",
            _ => "",
        }
        .to_owned();
    }
    if parts[0] == "namespaces" && parts.len() > 1 {
        info.namespace = parts[1].clone();
        if parts.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&parts[2].as_str()) {
            parts.drain(..2);
        }
    }
    info.resource = parts[0].clone();
    if parts.len() >= 2 {
        info.name = parts[1].clone();
    }
    if parts.len() >= 3 {
        info.subresource = parts[2].clone();
    }
    info.parts = parts;
    if info.name.is_empty() && info.verb == "get" && !verb_from_path {
        let watch = query
            .unwrap_or_default()
            .split('&')
            .any(|kv| kv == "watch=true" || kv == "watch=1");
        info.verb = if watch { "watch" } else { "list" }.to_owned();
    }
    if info.name.is_empty() && info.verb == "delete" {
        info.verb = "deletecollection".to_owned();
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_proxy_path() {
        let i = parse(
            &http::Method::GET,
            "/api/v1/namespaces/ns/services/svc:http/proxy/a/b",
            None,
        );
        assert!(i.is_resource);
        assert_eq!(
            (
                i.verb.as_str(),
                i.namespace.as_str(),
                i.resource.as_str(),
                i.name.as_str(),
                i.subresource.as_str()
            ),
            ("get", "ns", "services", "svc:http", "proxy")
        );
        assert_eq!(i.parts[3..], ["a".to_owned(), "b".to_owned()]);
    }

    #[test]
    fn lists_and_namespaces() {
        let i = parse(&http::Method::GET, "/api/v1/services", None);
        assert_eq!((i.verb.as_str(), i.resource.as_str()), ("list", "services"));
        let i = parse(&http::Method::GET, "/api/v1/namespaces/kube-system", None);
        assert_eq!(
            (i.verb.as_str(), i.resource.as_str(), i.name.as_str()),
            ("get", "namespaces", "kube-system")
        );
        let i = parse(&http::Method::POST, "/api/v1/nodes/n1/proxy", None);
        assert_eq!(
            (i.verb.as_str(), i.resource.as_str(), i.subresource.as_str()),
            ("create", "nodes", "proxy")
        );
        let i = parse(
            &http::Method::GET,
            "/apis/discovery.k8s.io/v1/endpointslices",
            Some("watch=true"),
        );
        assert_eq!(
            (i.verb.as_str(), i.api_group.as_str()),
            ("watch", "discovery.k8s.io")
        );
        assert!(!parse(&http::Method::GET, "/api", None).is_resource);
        assert!(!parse(&http::Method::GET, "/api/v1", None).is_resource);
        assert!(!parse(&http::Method::GET, "/healthz", None).is_resource);
    }
}
