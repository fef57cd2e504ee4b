//! The one thing discovery needs from an API client: `GET` a path on the API server and get the
//! status, content type and (bounded) body back. The gateway's authenticated client implements
//! [`KubeApi`]; tests implement it over fixtures or a real simulated API server.
//!
//! The listing functions here turn the API server's lists into [`ServiceInfo`] and [`PodInfo`]
//! values, sorted by namespace and name.

use std::future::Future;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::model::{
    EndpointSource, List, PodInfo, ServiceInfo, WireEndpointSlice, WireEndpoints, WirePod,
    WireService, sort_services,
};

/// Bodies of list responses larger than this are refused rather than held in memory.
pub const MAX_LIST_BODY: usize = 64 << 20;

/// A response from the API server, with its body read up to a limit.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    /// HTTP status code.
    pub status: u16,
    /// The `Content-Type` header, when present.
    pub content_type: Option<String>,
    /// The `Location` header, when present (where a redirect points).
    pub location: Option<String>,
    /// The body, at most the limit the caller asked for.
    pub body: Bytes,
    /// Whether the body was cut at the limit.
    pub truncated: bool,
}

/// Why no response came back.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TransportError {
    /// The server's address refused the TCP connection.
    #[error("connection to {host} refused")]
    ConnectionRefused {
        /// `host:port` of the API server, as in the kubeconfig.
        host: String,
    },
    /// No response within the deadline.
    #[error("no response from the API server within {seconds:.1}s")]
    Timeout {
        /// The deadline that passed.
        seconds: f64,
    },
    /// Anything else (DNS, TLS, credentials that could not be obtained, a broken connection).
    #[error("{message}")]
    Other {
        /// A one-line description, free of secrets.
        message: String,
    },
}

/// `GET` on the Kubernetes API server with the user's credentials.
///
/// The future is `Send`, so that the gateway can call [`list_services`] from a request handler.
pub trait KubeApi: Sync {
    /// Sends `GET <path_and_query>` (an absolute path beginning with `/`, already encoded) to
    /// the API server and reads at most `max_body` bytes of the body.
    fn get(
        &self,
        path_and_query: &str,
        max_body: usize,
    ) -> impl Future<Output = Result<ApiResponse, TransportError>> + Send;
}

/// Which namespaces to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceScope {
    /// Every namespace (`-A`).
    All,
    /// One namespace.
    One(String),
}

/// Why a listing failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ListError {
    /// The request got no response.
    #[error("listing {resource}: {source}")]
    Transport {
        /// The resource being listed (`services`, `pods`, ...).
        resource: &'static str,
        /// What went wrong.
        #[source]
        source: TransportError,
    },
    /// The API server answered with an error status.
    #[error("listing {resource}: the API server answered {status}: {message}")]
    Status {
        /// The resource being listed.
        resource: &'static str,
        /// HTTP status code.
        status: u16,
        /// `reason` of the Kubernetes `Status` body, when there was one.
        reason: Option<String>,
        /// `message` of the `Status` body, or the text body, or `unknown`.
        message: String,
        /// Whether the body was a Kubernetes `Status` object.
        is_status: bool,
    },
    /// The body was not the expected list.
    #[error("listing {resource}: the API server's answer is not a list: {detail}")]
    Decode {
        /// The resource being listed.
        resource: &'static str,
        /// What the decoder said.
        detail: String,
    },
}

/// A label selector as given on the command line; passed to the API server unchanged.
pub type Selector<'a> = Option<&'a str>;

fn list_path(
    group_version: &str,
    scope: &NamespaceScope,
    resource: &str,
    selector: Selector<'_>,
) -> String {
    let prefix = if group_version == "v1" {
        "/api/v1".to_owned()
    } else {
        format!("/apis/{group_version}")
    };
    let mut path = match scope {
        NamespaceScope::All => format!("{prefix}/{resource}"),
        NamespaceScope::One(ns) => format!(
            "{prefix}/namespaces/{}/{resource}",
            percent_encoding::utf8_percent_encode(ns, crate::PATH_SEGMENT)
        ),
    };
    if let Some(selector) = selector {
        path.push_str("?labelSelector=");
        path.extend(percent_encoding::utf8_percent_encode(
            selector,
            crate::QUERY_VALUE,
        ));
    }
    path
}

pub(crate) fn status_error(resource: &'static str, resp: &ApiResponse) -> ListError {
    #[derive(serde::Deserialize)]
    struct Status {
        kind: Option<String>,
        reason: Option<String>,
        message: Option<String>,
    }
    let parsed = serde_json::from_slice::<Status>(&resp.body)
        .ok()
        .filter(|s| s.kind.as_deref() == Some("Status"));
    match parsed {
        Some(s) => ListError::Status {
            resource,
            status: resp.status,
            reason: s.reason.filter(|r| !r.is_empty()),
            message: s.message.unwrap_or_default(),
            is_status: true,
        },
        None => {
            // As client-go's `transformUnstructuredResponseError`: the body is only shown when
            // it is plain text; otherwise the message is "unknown".
            let is_text = resp.content_type.as_deref().is_some_and(|ct| {
                ct.split(';')
                    .next()
                    .is_some_and(|m| m.trim() == "text/plain")
            });
            let message = if is_text {
                String::from_utf8_lossy(&resp.body).trim().to_owned()
            } else {
                "unknown".to_owned()
            };
            ListError::Status {
                resource,
                status: resp.status,
                reason: None,
                message,
                is_status: false,
            }
        }
    }
}

async fn list<T: DeserializeOwned + Default, C: KubeApi>(
    client: &C,
    resource: &'static str,
    path: &str,
) -> Result<Vec<T>, ListError> {
    let resp = client
        .get(path, MAX_LIST_BODY)
        .await
        .map_err(|source| ListError::Transport { resource, source })?;
    if !(200..300).contains(&resp.status) {
        return Err(status_error(resource, &resp));
    }
    if resp.truncated {
        return Err(ListError::Decode {
            resource,
            detail: format!(
                "the list is larger than {MAX_LIST_BODY} bytes; narrow it with -n or -l"
            ),
        });
    }
    serde_json::from_slice::<List<T>>(&resp.body)
        .map(|l| l.items)
        .map_err(|e| ListError::Decode {
            resource,
            detail: e.to_string(),
        })
}

/// Lists the services in `scope` matching `selector`, without endpoint readiness, in the order
/// the API server returned them (what `kubectl cluster-info` prints).
pub async fn list_services_raw<C: KubeApi>(
    client: &C,
    scope: &NamespaceScope,
    selector: Selector<'_>,
) -> Result<Vec<ServiceInfo>, ListError> {
    let path = list_path("v1", scope, "services", selector);
    let items: Vec<WireService> = list(client, "services", &path).await?;
    Ok(items.into_iter().map(|s| s.into_info(None)).collect())
}

/// Lists the services in `scope` matching `selector`, each port with its readiness, sorted by
/// namespace and name.
///
/// Readiness comes from EndpointSlices; if the API server does not serve them (404, as before
/// Kubernetes 1.21) it falls back to Endpoints. A namespace-wide list is one request per kind
/// whatever the number of services.
pub async fn list_services<C: KubeApi>(
    client: &C,
    scope: &NamespaceScope,
    selector: Selector<'_>,
) -> Result<Vec<ServiceInfo>, ListError> {
    let path = list_path("v1", scope, "services", selector);
    let items: Vec<WireService> = list(client, "services", &path).await?;
    let endpoints = if items.is_empty() {
        None
    } else {
        Some(endpoint_source(client, scope).await?)
    };
    let mut services: Vec<ServiceInfo> = items
        .into_iter()
        .map(|s| s.into_info(endpoints.as_ref()))
        .collect();
    sort_services(&mut services);
    Ok(services)
}

async fn endpoint_source<C: KubeApi>(
    client: &C,
    scope: &NamespaceScope,
) -> Result<EndpointSource, ListError> {
    let path = list_path("discovery.k8s.io/v1", scope, "endpointslices", None);
    match list::<WireEndpointSlice, C>(client, "endpointslices", &path).await {
        Ok(slices) => Ok(EndpointSource::Slices(slices)),
        Err(ListError::Status { status: 404, .. }) => {
            let path = list_path("v1", scope, "endpoints", None);
            let eps: Vec<WireEndpoints> = list(client, "endpoints", &path).await?;
            Ok(EndpointSource::Endpoints(eps))
        }
        Err(e) => Err(e),
    }
}

/// Lists the pods in `scope` matching `selector` that declare container ports, sorted by
/// namespace and name.
pub async fn list_pods<C: KubeApi>(
    client: &C,
    scope: &NamespaceScope,
    selector: Selector<'_>,
) -> Result<Vec<PodInfo>, ListError> {
    let path = list_path("v1", scope, "pods", selector);
    let items: Vec<WirePod> = list(client, "pods", &path).await?;
    let mut pods: Vec<PodInfo> = items.into_iter().filter_map(WirePod::into_info).collect();
    pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(pods)
}

#[cfg(test)]
pub(crate) mod fake {
    //! A [`KubeApi`] over canned responses, for unit tests.
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    pub(crate) struct Fake {
        pub(crate) routes: HashMap<String, (u16, String)>,
        pub(crate) seen: Mutex<Vec<String>>,
    }

    impl Fake {
        pub(crate) fn with(mut self, path: &str, status: u16, body: serde_json::Value) -> Self {
            self.routes
                .insert(path.to_owned(), (status, body.to_string()));
            self
        }
    }

    impl KubeApi for Fake {
        async fn get(&self, path: &str, max_body: usize) -> Result<ApiResponse, TransportError> {
            self.seen.lock().unwrap().push(path.to_owned());
            let (status, body) = self.routes.get(path).cloned().unwrap_or((
                404,
                r#"{"kind":"Status","reason":"NotFound","message":"not found"}"#.to_owned(),
            ));
            let mut body = Bytes::from(body);
            let truncated = body.len() > max_body;
            body.truncate(max_body);
            Ok(ApiResponse {
                status,
                content_type: Some("application/json".to_owned()),
                location: None,
                body,
                truncated,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::Fake;
    use super::*;
    use serde_json::json;

    #[test]
    fn list_paths_encode_namespace_and_selector() {
        assert_eq!(
            list_path(
                "v1",
                &NamespaceScope::One("kube-system".into()),
                "services",
                Some("kubernetes.io/cluster-service=true")
            ),
            "/api/v1/namespaces/kube-system/services?labelSelector=kubernetes.io%2Fcluster-service%3Dtrue"
        );
        assert_eq!(
            list_path(
                "discovery.k8s.io/v1",
                &NamespaceScope::All,
                "endpointslices",
                None
            ),
            "/apis/discovery.k8s.io/v1/endpointslices"
        );
    }

    /// The gateway calls these from request handlers, which must be `Send`.
    #[test]
    fn listing_futures_are_send() {
        fn assert_send<T: Send>(_: &T) {}
        let fake = Fake::default();
        let scope = NamespaceScope::All;
        assert_send(&list_services(&fake, &scope, None));
        assert_send(&list_pods(&fake, &scope, Some("app=web")));
    }

    #[tokio::test]
    async fn falls_back_to_endpoints_when_slices_are_not_served() {
        let fake = Fake::default()
            .with("/api/v1/namespaces/ns/services", 200, json!({"items": [
                {"metadata": {"name": "b", "namespace": "ns"}, "spec": {"ports": [{"port": 80}]}},
                {"metadata": {"name": "a", "namespace": "ns"}, "spec": {"ports": [{"port": 80}]}}
            ]}))
            .with("/api/v1/namespaces/ns/endpoints", 200, json!({"items": [
                {"metadata": {"name": "a", "namespace": "ns"},
                 "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]}
            ]}));
        let services = list_services(&fake, &NamespaceScope::One("ns".into()), None)
            .await
            .unwrap();
        assert_eq!(
            services.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(services[0].ports[0].readiness.fraction(), "1/1");
        assert_eq!(services[1].ports[0].readiness.fraction(), "0/0");
        let seen = fake.seen.lock().unwrap().clone();
        assert_eq!(
            seen[1],
            "/apis/discovery.k8s.io/v1/namespaces/ns/endpointslices"
        );
    }

    #[tokio::test]
    async fn error_statuses_carry_reason_and_message() {
        let fake = Fake::default().with(
            "/api/v1/services",
            403,
            json!({"kind": "Status", "reason": "Forbidden", "message": "services is forbidden"}),
        );
        let err = list_services(&fake, &NamespaceScope::All, None)
            .await
            .unwrap_err();
        match err {
            ListError::Status {
                status,
                reason,
                message,
                is_status,
                ..
            } => {
                assert_eq!(
                    (status, reason.as_deref(), message.as_str(), is_status),
                    (403, Some("Forbidden"), "services is forbidden", true)
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
