//! Discovery and health for kgate, kept out of the gateway so it can be tested without a server:
//!
//! - [`cluster_info`]: `kgate cluster-info`, byte for byte what `kubectl cluster-info` prints;
//! - [`urls`]: `kgate urls`, every service (and pod) port with its scheme, API proxy URL,
//!   gateway URL, origin URL and readiness, as a table, JSON or YAML ([`urls::UrlList`] is the
//!   documented JSON shape);
//! - [`index`]: the HTML index page a running gateway serves ([`index::index_page`] lists and
//!   renders in one call; [`index::render_index`] is the pure renderer);
//! - [`ports`]: the port (and scheme) an address without one stands for, cached briefly;
//! - [`check`]: `kgate check`, health checks through the API server's proxy verb with
//!   expectations on status, JSON ([`expr`]) and body, retries, timeouts and parallelism.
//!
//! Everything talks to the API server through the [`KubeApi`] trait (one `GET`), which the
//! gateway's authenticated client implements; tests implement it over fixtures or simcluster.

mod addr;
pub mod check;
mod client;
pub mod cluster_info;
pub mod expr;
pub mod index;
mod kube;
mod model;
pub mod ports;
pub mod urls;

pub use client::{
    ApiResponse, KubeApi, ListError, MAX_LIST_BODY, NamespaceScope, Selector, TransportError,
    list_pods, list_services, list_services_raw,
};
pub use model::{PodInfo, PodPort, Readiness, ServiceInfo, ServicePort, sort_services};

use percent_encoding::{AsciiSet, CONTROLS};

/// Characters escaped in one path segment (RFC 3986 `pchar` keeps the rest).
pub(crate) const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Characters escaped in a query parameter value.
pub(crate) const QUERY_VALUE: &AsciiSet = &PATH_SEGMENT.add(b'&').add(b'=').add(b'+').add(b':');
