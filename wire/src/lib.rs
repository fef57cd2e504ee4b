//! HTTP as Go's `net/http` and Kubernetes' apimachinery apply it.
//!
//! kgate sits on one side of the API server's proxy verb and `simcluster` plays the API server
//! on the other. Both must apply the same handful of rules exactly as the Go code does, or the
//! simulation would drift from the thing it simulates; so each rule is written once, here, with
//! the source it reproduces:
//!
//! - [`headers`]: hop-by-hop removal and `X-Forwarded-For` (Go's `httputil.ReverseProxy`),
//!   upgrade detection (apimachinery's `httpstream.IsUpgradeRequest`), and removal of the
//!   credential and impersonation headers a request carried;
//! - [`html`]: Go's `html.EscapeString`, and which attributes of which elements hold URLs
//!   (apimachinery's `atomsToAttrs`);
//! - [`status`]: the API server's `Status` error bodies (apimachinery `metav1.Status`);
//! - [`tls`]: a certificate verifier that accepts any certificate, for Go's
//!   `InsecureSkipVerify` (a kubeconfig's `insecure-skip-tls-verify`, the API server's
//!   connections to endpoints).
//!
//! No I/O, no async: every item is a plain function or constant, tested here.

pub mod headers;
pub mod html;
pub mod status;
pub mod tls;
