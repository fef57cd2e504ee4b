//! [`KubeApi`] for the gateway's authenticated client, `auth::ApiClient`: one `GET`, the body
//! read up to a limit, and connection failures classified the way `kubectl` words them.

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;

use crate::client::{ApiResponse, KubeApi, TransportError};

impl KubeApi for auth::ApiClient {
    async fn get(
        &self,
        path_and_query: &str,
        max_body: usize,
    ) -> Result<ApiResponse, TransportError> {
        let request = http::Request::get(path_and_query)
            .header(http::header::ACCEPT, "application/json, */*")
            .body(auth::empty_body())
            .map_err(|e| TransportError::Other {
                message: format!("bad request path {path_and_query:?}: {e}"),
            })?;
        let response = self.send(request).await.map_err(|e| classify(self, &e))?;
        let status = response.status().as_u16();
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header(http::header::CONTENT_TYPE);
        let location = header(http::header::LOCATION);
        let mut body = response.into_body();
        let mut buf = BytesMut::new();
        let mut truncated = false;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| TransportError::Other {
                message: format!("reading the answer to GET {path_and_query} failed: {e}"),
            })?;
            if let Ok(data) = frame.into_data() {
                let room = max_body.saturating_sub(buf.len());
                if data.len() > room {
                    buf.extend_from_slice(&data[..room]);
                    truncated = true;
                    break;
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(ApiResponse {
            status,
            content_type,
            location,
            body: Bytes::from(buf),
            truncated,
        })
    }
}

/// Maps the client's error to a [`TransportError`]; a refused TCP connection is singled out
/// because `kubectl` prints a dedicated line for it.
fn classify(client: &auth::ApiClient, err: &auth::SendError) -> TransportError {
    match err {
        auth::SendError::Connect {
            reason, via: None, ..
        } if reason.to_ascii_lowercase().contains("refused") => {
            let server = client.server();
            let host = match (server.host_str(), server.port()) {
                (Some(h), Some(p)) if h.contains(':') => format!("[{h}]:{p}"),
                (Some(h), Some(p)) => format!("{h}:{p}"),
                (Some(h), None) => h.to_owned(),
                (None, _) => server.to_string(),
            };
            TransportError::ConnectionRefused { host }
        }
        auth::SendError::Timeout { after, .. } => TransportError::Timeout {
            seconds: after.as_secs_f64(),
        },
        other => TransportError::Other {
            message: other.to_string(),
        },
    }
}
