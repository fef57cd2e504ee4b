//! Authentication and authorization as the API server does them, for the users a test
//! registers.
//!
//! Authentication is a union like apiserver's `pkg/authentication/request/union`: a client
//! certificate verified against the cluster CA wins (x509 authenticator), then a bearer token,
//! then basic auth (removed from Kubernetes in 1.19 but still in kubeconfigs; simulated for
//! clients that send it). A credential that is present but wrong is a 401; a request without
//! credentials is `system:anonymous`, which may only read the `system:public-info-viewer`
//! paths (`/healthz`, `/livez`, `/readyz`, `/version`), as a cluster with RBAC does.
//! Authorization denials carry apiserver's `forbiddenMessage`
//! (`pkg/endpoints/handlers/responsewriters/errors.go`).

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use crate::requestinfo::RequestInfo;
use crate::status::Status;

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct User {
    pub(crate) name: String,
    pub(crate) groups: Vec<String>,
}

impl User {
    pub(crate) fn anonymous() -> Self {
        Self {
            name: "system:anonymous".to_owned(),
            groups: vec!["system:unauthenticated".to_owned()],
        }
    }

    pub(crate) fn is_anonymous(&self) -> bool {
        self.name == "system:anonymous"
    }
}

/// The registered credentials and per-user rules.
pub(crate) struct Authn {
    /// token → user
    pub(crate) tokens: Vec<(SecretString, String)>,
    /// user → password
    pub(crate) basic: BTreeMap<String, SecretString>,
    /// users who may not use any `*/proxy` subresource
    pub(crate) forbid_proxy: BTreeSet<String>,
    /// users who may not use `pods/portforward`
    pub(crate) forbid_portforward: BTreeSet<String>,
}

impl std::fmt::Debug for Authn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authn")
            .field("tokens", &format_args!("<{} redacted>", self.tokens.len()))
            .field("basic_users", &self.basic.keys().collect::<Vec<_>>())
            .field("forbid_proxy", &self.forbid_proxy)
            .field("forbid_portforward", &self.forbid_portforward)
            .finish()
    }
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Authn {
    /// Who sent the request: `Ok(user)`, or the 401 for a wrong credential.
    pub(crate) fn authenticate(
        &self,
        cert_user: Option<&User>,
        authorization: Option<&http::HeaderValue>,
    ) -> Result<User, Status> {
        if let Some(user) = cert_user {
            return Ok(user.clone());
        }
        let Some(value) = authorization else {
            return Ok(User::anonymous());
        };
        let value = value.to_str().map_err(|_| Status::unauthorized())?;
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            // apiserver's bearertoken authenticator: an empty token is "no credential".
            let token = rest.trim();
            if token.is_empty() {
                return Ok(User::anonymous());
            }
            return self
                .tokens
                .iter()
                .find(|(t, _)| constant_time_eq(t.expose_secret().as_bytes(), token.as_bytes()))
                .map(|(_, user)| self.user(user))
                .ok_or_else(Status::unauthorized);
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest.trim())
                .map_err(|_| Status::unauthorized())?;
            let decoded = String::from_utf8(decoded).map_err(|_| Status::unauthorized())?;
            let (name, password) = decoded.split_once(':').ok_or_else(Status::unauthorized)?;
            return match self.basic.get(name) {
                Some(p) if constant_time_eq(p.expose_secret().as_bytes(), password.as_bytes()) => {
                    Ok(self.user(name))
                }
                _ => Err(Status::unauthorized()),
            };
        }
        // Another scheme is not a credential any authenticator understands: anonymous.
        Ok(User::anonymous())
    }

    fn user(&self, name: &str) -> User {
        let mut groups = vec!["system:authenticated".to_owned()];
        if name == crate::ADMIN_USER {
            groups.insert(0, "system:masters".to_owned());
        }
        User {
            name: name.to_owned(),
            groups,
        }
    }

    /// Whether `user` may do what `info` asks; the 403 if not.
    pub(crate) fn authorize(&self, user: &User, info: &RequestInfo) -> Result<(), Status> {
        let denied = if user.is_anonymous() {
            // system:public-info-viewer (RBAC bootstrap policy) grants only these to everyone.
            let public = ["/healthz", "/livez", "/readyz", "/version", "/version/"];
            let path = info.path.as_str();
            !(!info.is_resource
                && info.verb == "get"
                && (public.contains(&path)
                    || path.starts_with("/healthz/")
                    || path.starts_with("/livez/")
                    || path.starts_with("/readyz/")))
        } else {
            info.is_resource
                && ((info.subresource == "proxy" && self.forbid_proxy.contains(&user.name))
                    || (info.subresource == "portforward"
                        && self.forbid_portforward.contains(&user.name)))
        };
        if denied {
            Err(forbidden(user, info))
        } else {
            Ok(())
        }
    }
}

/// `responsewriters.Forbidden`: `NewForbidden(groupResource, name, forbiddenMessage(attrs))`.
pub(crate) fn forbidden(user: &User, info: &RequestInfo) -> Status {
    if !info.is_resource {
        let why = format!(
            "User {:?} cannot {} path {:?}",
            user.name, info.verb, info.path
        );
        return Status::forbidden("", "", "", &why);
    }
    let mut resource = info.resource.clone();
    if !info.subresource.is_empty() {
        resource = format!("{resource}/{}", info.subresource);
    }
    let why = if info.namespace.is_empty() {
        format!(
            "User {:?} cannot {} resource {resource:?} in API group {:?} at the cluster scope",
            user.name, info.verb, info.api_group
        )
    } else {
        format!(
            "User {:?} cannot {} resource {resource:?} in API group {:?} in the namespace {:?}",
            user.name, info.verb, info.api_group, info.namespace
        )
    };
    Status::forbidden(&info.api_group, &info.resource, &info.name, &why)
}
