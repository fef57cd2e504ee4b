//! The names the port-forward protocols use, and how streams pair up.
//!
//! Contract (cri-streaming `pkg/streaming/portforward/{constants,httpstream}.go`, client-go
//! `tools/portforward/portforward.go`): over SPDY, each forwarded connection is a pair of
//! streams with the same `port` and `requestID` headers, one with `streamType: error` (which
//! the client half-closes at once and reads to its end: any text is the error) and one with
//! `streamType: data` (the connection's bytes). A stream without `requestID` pairs by its id
//! ([`pairing_id`]). The kubelet's answer to a port the pod does not serve is text on the
//! error stream ([`forward_error`]).

/// The subprotocol of port-forward over SPDY.
pub const PORTFORWARD_V1: &str = "portforward.k8s.io";

/// `SPDY/3.1+portforward.k8s.io`: the same, tunnelled through a WebSocket.
pub const TUNNELED_PORTFORWARD_V1: &str = "SPDY/3.1+portforward.k8s.io";

/// The header of a stream's type.
pub const STREAM_TYPE: &str = "streamtype";
/// `streamType: data`.
pub const STREAM_TYPE_DATA: &str = "data";
/// `streamType: error`.
pub const STREAM_TYPE_ERROR: &str = "error";
/// The header of the remote port.
pub const PORT: &str = "port";
/// The header that pairs a connection's two streams.
pub const REQUEST_ID: &str = "requestid";

/// The pairing key of a stream without `requestID`: an error stream's own id, a data stream's
/// id less 2 (the client opens the error stream first).
pub fn pairing_id(stream_type: &str, stream_id: u32) -> String {
    match stream_type {
        STREAM_TYPE_DATA => stream_id.saturating_sub(2).to_string(),
        _ => stream_id.to_string(),
    }
}

/// The kubelet's text for a failed forward (`error forwarding port %d to pod %s, uid %v: %v`).
pub fn forward_error(port: u16, pod: &str, uid: &str, cause: &str) -> String {
    format!("error forwarding port {port} to pod {pod}, uid {uid}: {cause}")
}

/// Validates a stream's `port` header as the kubelet does (`httpStreamReceived`).
pub fn parse_port(value: Option<&str>) -> Result<u16, String> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Err(format!("{PORT:?} header is required"));
    };
    let port: u16 = value
        .parse()
        .map_err(|e| format!("unable to parse {value:?} as a port: {e}"))?;
    if port < 1 {
        return Err(format!("port {value:?} must be > 0"));
    }
    Ok(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairing_and_ports_as_the_kubelet_reads_them() {
        assert_eq!(pairing_id(STREAM_TYPE_ERROR, 5), "5");
        assert_eq!(pairing_id(STREAM_TYPE_DATA, 7), "5");
        assert_eq!(parse_port(Some("8080")), Ok(8080));
        assert!(parse_port(Some("0")).unwrap_err().contains("must be > 0"));
        assert!(parse_port(None).unwrap_err().contains("required"));
        assert!(parse_port(Some("70000")).is_err());
        assert_eq!(
            forward_error(81, "web-1", "u-1", "connection refused"),
            "error forwarding port 81 to pod web-1, uid u-1: connection refused"
        );
    }
}
