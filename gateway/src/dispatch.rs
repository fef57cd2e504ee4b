//! Dispatch: one request through the gateway, phase by phase.
//!
//! Contract: [`Gateway::handle`] is the whole path of a request, and reads as DESIGN's list:
//!
//! ```text
//! classify → admit → build → send → shape      (or a gateway page, or static files)
//!                 ↘ any phase's Err → rescue
//! ```
//!
//! Each phase is a module with one job: `classify` names the [`Destination`], `admit` refuses
//! or lets it pass, `build` makes the upstream request and chooses its [`crate::shape::Shape`],
//! `send` is the seam to the API server, `shape` makes its answer the client's, and `rescue`
//! turns every refusal and failure into the response for its audience. One access line is
//! written per request (`access`). Nothing here looks at a header or the path itself, but for
//! one rule of the connection: an upgrade that was refused closes it.

use std::net::IpAddr;

use http::{Method, Request, Response};
use hyper::body::Incoming;

use crate::access;
use crate::admit::Admission;
use crate::body::Body;
use crate::build::{self, Outbound};
use crate::classify::{Classifier, Destination, Role, Unserved};
use crate::local::{self, LocalPages};
use crate::rescue::{Error, Failure, Refusal, Rescue};
use crate::send::Sender;
use crate::static_files::StaticFiles;

/// Everything the phases need, shared by every connection.
pub(crate) struct Gateway {
    pub(crate) classifier: Classifier,
    pub(crate) admission: Admission,
    pub(crate) sender: Sender,
    /// Default ports of origin targets; `None` without service origins, or in tests without a
    /// cluster.
    pub(crate) ports: Option<discovery::ports::DefaultPorts<auth::ApiClient>>,
    pub(crate) static_files: Option<StaticFiles>,
    /// The gateway's own pages; `None` for `kgate proxy`.
    pub(crate) local: Option<LocalPages>,
    pub(crate) rescue: Rescue,
}

impl Gateway {
    /// Answers `req`, which arrived from `peer` on a listener of `role`.
    pub(crate) async fn handle(
        &self,
        role: &Role,
        req: Request<Incoming>,
        peer: Option<IpAddr>,
    ) -> Response<Body> {
        let entry = access::enabled().then(|| access::Entry::new(req.method(), req.uri().path()));
        if tracing::enabled!(tracing::Level::TRACE) {
            tracing::trace!(
                method = %req.method(),
                path = req.uri().path(),
                headers = %crate::redact::redacted(req.headers()),
                "request"
            );
        }
        let method = req.method().clone();
        let upgrade = wire::headers::is_upgrade(req.headers());
        let destination = self.classifier.classify(role, &req);
        let local = destination.is_local();
        let res = match self.dispatch(destination, req, peer).await {
            Ok(res) => res,
            Err(error) => self.rescue.respond(error).await,
        };
        let mut res = if local {
            local::head_only(&method, res)
        } else {
            res
        };
        // A client that asked to leave HTTP and was refused gets no keep-alive: kubectl writes
        // its refusals of upgrades on the hijacked connection and closes it, and a client
        // that expected a tunnel should not be left waiting on one.
        if upgrade && res.status() != http::StatusCode::SWITCHING_PROTOCOLS {
            res.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
        match entry {
            Some(entry) => access::logged(entry, res),
            None => res,
        }
    }

    /// admit, then the destination's own phases.
    async fn dispatch(
        &self,
        destination: Destination,
        mut req: Request<Incoming>,
        peer: Option<IpAddr>,
    ) -> Result<Response<Body>, Error> {
        self.admission.admit(&destination, &mut req)?;
        match destination {
            Destination::Api { upstream_path, .. } => {
                let out = build::api(req, &upstream_path, peer, &self.upstream())?;
                self.forward(out).await
            }
            Destination::Origin(origin) | Destination::Mount(origin) => {
                let out = build::origin(req, origin, peer, &self.upstream()).await?;
                self.forward(out).await
            }
            Destination::Local { port } => match &self.local {
                Some(pages) => pages.serve(&self.sender, &req, port).await,
                None => Err(Refusal::NotFound.into()),
            },
            Destination::Static { rest } => match &self.static_files {
                Some(files) => files.serve(req, &rest).await,
                None => Err(Refusal::NotFound.into()),
            },
            Destination::Unserved(unserved) => Err(unserved_refusal(unserved, req.method()).into()),
        }
    }

    /// send, then shape.
    async fn forward(&self, out: Outbound) -> Result<Response<Body>, Error> {
        let Outbound {
            request,
            client_upgrade,
            shape,
            audience,
        } = out;
        let res = self
            .sender
            .send(request, client_upgrade)
            .await
            .map_err(|error| Failure::proxy(error, audience))?;
        Ok(shape.apply(res).await?)
    }

    fn upstream(&self) -> build::Upstream<'_> {
        build::Upstream {
            server: self.sender.server(),
            authority: self.sender.api_authority(),
            ports: self.ports.as_ref(),
        }
    }
}

/// The refusal for a request that names nothing the gateway serves.
fn unserved_refusal(unserved: Unserved, method: &Method) -> Refusal {
    match unserved {
        Unserved::NotFound => Refusal::NotFound,
        Unserved::BadRequest => Refusal::BadRequest,
        Unserved::Moved { location } => Refusal::Moved {
            location,
            method: method.clone(),
        },
        Unserved::NotAnOrigin { why } => Refusal::NotAnOrigin { why },
    }
}
