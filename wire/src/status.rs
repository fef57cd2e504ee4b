//! The API server's `Status` object (apimachinery `metav1.Status`), as error bodies carry it:
//! what a client shows of a failure is its `message`, and what it decides on is its `reason`
//! (`NotFound`, `Forbidden`, ...), not the HTTP status alone (a `403` is also how a protocol
//! negotiation fails).

/// The fields of a `Status` body a client acts on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    /// `reason`, e.g. `NotFound`; empty when absent.
    pub reason: String,
    /// `message`; empty when absent.
    pub message: String,
}

/// The `Status` in `body`, when it is one (`"kind": "Status"`).
pub fn parse(body: &[u8]) -> Option<Status> {
    #[derive(serde::Deserialize)]
    struct Wire {
        kind: Option<String>,
        reason: Option<String>,
        message: Option<String>,
    }
    let wire: Wire = serde_json::from_slice(body).ok()?;
    (wire.kind.as_deref() == Some("Status")).then(|| Status {
        reason: wire.reason.unwrap_or_default(),
        message: wire.message.unwrap_or_default(),
    })
}

/// What to show of an error body: a `Status` message, else the start of the text (200
/// characters, trimmed).
pub fn message(body: &[u8]) -> String {
    match parse(body) {
        Some(status) if !status.message.is_empty() => status.message,
        _ => String::from_utf8_lossy(body)
            .trim()
            .chars()
            .take(200)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_body_is_read_and_anything_else_is_shown_as_text() {
        let body = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods \"x\" not found","reason":"NotFound","code":404}"#;
        assert_eq!(
            parse(body),
            Some(Status {
                reason: "NotFound".into(),
                message: "pods \"x\" not found".into()
            })
        );
        assert_eq!(message(body), "pods \"x\" not found");
        assert_eq!(parse(br#"{"message":"not a status"}"#), None);
        assert_eq!(
            message(b"  upstream connect error\n"),
            "upstream connect error"
        );
        assert_eq!(message(&[b'x'; 500]).len(), 200);
    }
}
