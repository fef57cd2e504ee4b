//! `Status` objects, the API server's error bodies, with the shapes and messages of
//! apimachinery's `pkg/api/errors/errors.go` (`NewNotFound`, `NewForbidden`, `NewBadRequest`,
//! `NewServiceUnavailable`, `NewUnauthorized`, `NewInternalError`, `NewMethodNotSupported`).

use serde::Serialize;

use crate::body::{Resp, respond};

/// A `metav1.Status` with `status: Failure`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Status {
    pub(crate) code: u16,
    pub(crate) reason: &'static str,
    pub(crate) message: String,
    pub(crate) details: Option<Details>,
}

/// `metav1.StatusDetails`; empty fields are omitted as Go's `omitempty` does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Details {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) group: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) kind: String,
}

/// Field order as `metav1.Status` serialises.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
    kind: &'static str,
    api_version: &'static str,
    metadata: Empty,
    status: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a Details>,
    code: u16,
}

#[derive(Serialize)]
struct Empty {}

/// `schema.GroupResource.String()`: `resource` or `resource.group`.
fn group_resource(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}.{group}")
    }
}

impl Status {
    /// `NewNotFound`: `<resource> "<name>" not found`.
    pub(crate) fn not_found(group: &str, resource: &str, name: &str) -> Self {
        Self {
            code: 404,
            reason: "NotFound",
            message: format!("{} {name:?} not found", group_resource(group, resource)),
            details: Some(Details {
                name: name.to_owned(),
                group: group.to_owned(),
                kind: resource.to_owned(),
            }),
        }
    }

    /// The API server's answer to a path no handler serves (apiserver `pkg/endpoints/handlers/responsewriters`,
    /// `NotFound` via `NewGenericServerResponse`).
    pub(crate) fn path_not_found() -> Self {
        Self {
            code: 404,
            reason: "NotFound",
            message: "the server could not find the requested resource".to_owned(),
            details: Some(Details::default()),
        }
    }

    /// `NewForbidden` around apiserver's `forbiddenMessage`.
    pub(crate) fn forbidden(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let message = if resource.is_empty() {
            format!("forbidden: {why}")
        } else if name.is_empty() {
            format!("{} is forbidden: {why}", group_resource(group, resource))
        } else {
            format!(
                "{} {name:?} is forbidden: {why}",
                group_resource(group, resource)
            )
        };
        Self {
            code: 403,
            reason: "Forbidden",
            message,
            details: Some(Details {
                name: name.to_owned(),
                group: group.to_owned(),
                kind: resource.to_owned(),
            }),
        }
    }

    /// `NewUnauthorized("")`, what the authentication filter writes
    /// (apiserver `pkg/endpoints/handlers/responsewriters/errors.go`, `unauthorizedHandler`).
    pub(crate) fn unauthorized() -> Self {
        Self {
            code: 401,
            reason: "Unauthorized",
            message: "Unauthorized".to_owned(),
            details: None,
        }
    }

    /// `NewBadRequest(message)`.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self {
            code: 400,
            reason: "BadRequest",
            message: message.into(),
            details: None,
        }
    }

    /// `NewServiceUnavailable(message)`.
    pub(crate) fn service_unavailable(message: impl Into<String>) -> Self {
        Self {
            code: 503,
            reason: "ServiceUnavailable",
            message: message.into(),
            details: None,
        }
    }

    /// `NewInternalError(err)`: `Internal error occurred: <err>`.
    pub(crate) fn internal(err: impl std::fmt::Display) -> Self {
        Self {
            code: 500,
            reason: "InternalError",
            message: format!("Internal error occurred: {err}"),
            details: None,
        }
    }

    /// What `ErrorToAPIStatus` makes of an error that is not a `Status`: the code, the error's
    /// text and no reason (`StatusReasonUnknown` is `""`), as the proxy's responder writes
    /// dial and upgrade failures.
    pub(crate) fn unknown(code: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: "",
            message: message.into(),
            details: None,
        }
    }

    /// `NewMethodNotSupported`.
    pub(crate) fn method_not_supported(group: &str, resource: &str, method: &str) -> Self {
        Self {
            code: 405,
            reason: "MethodNotAllowed",
            message: format!(
                "{method} is not supported on resources of kind {:?}",
                group_resource(group, resource)
            ),
            details: Some(Details {
                name: String::new(),
                group: group.to_owned(),
                kind: resource.to_owned(),
            }),
        }
    }

    /// The serialised object.
    pub(crate) fn to_json(&self) -> String {
        let wire = Wire {
            kind: "Status",
            api_version: "v1",
            metadata: Empty {},
            status: "Failure",
            message: &self.message,
            reason: self.reason,
            details: self.details.as_ref(),
            code: self.code,
        };
        serde_json::to_string(&wire).unwrap_or_default()
    }

    /// The HTTP response carrying it.
    pub(crate) fn into_response(self) -> Resp {
        respond(self.code, "application/json", self.to_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_proxy_message_matches_the_api_server() {
        let s = Status::forbidden(
            "",
            "services",
            "x",
            "User \"u\" cannot get resource \"services/proxy\" in API group \"\" in the namespace \"ns\"",
        );
        assert_eq!(
            s.to_json(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"services \"x\" is forbidden: User \"u\" cannot get resource \"services/proxy\" in API group \"\" in the namespace \"ns\"","reason":"Forbidden","details":{"name":"x","kind":"services"},"code":403}"#
        );
    }

    #[test]
    fn unauthorized_has_no_details() {
        assert_eq!(
            Status::unauthorized().to_json(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#
        );
    }

    #[test]
    fn non_resource_forbidden_has_empty_details() {
        let s = Status::forbidden(
            "",
            "",
            "",
            "User \"system:anonymous\" cannot get path \"/api\"",
        );
        assert!(s.to_json().contains(r#""message":"forbidden: User \"system:anonymous\" cannot get path \"/api\"","reason":"Forbidden","details":{},"#));
    }
}
