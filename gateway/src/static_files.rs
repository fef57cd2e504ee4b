//! `--www`: static files under `--www-prefix`, outside the filter, as in kubectl
//! (`http.StripPrefix(prefix, http.FileServer(http.Dir(dir)))`).
//!
//! Contract: `rest` (the escaped path below the prefix) is served from the directory with
//! tower-http's `ServeDir` (no escape above the directory, `index.html` for directories, `Range`,
//! a redirect from `dir` to `dir/`). Missing files get Go's `404 page not found`. Differences
//! from Go's `FileServer` (no directory listings, only `GET`/`HEAD`) are listed in
//! `DIFFERENCES.md`.

use std::path::PathBuf;

use http::{Request, Response, StatusCode, Uri};
use hyper::body::Incoming;
use tower::ServiceExt;
use tower_http::services::ServeDir;

use crate::body::{Body, stream};
use crate::rescue::{Error, Refusal};

/// The static file handler.
#[derive(Clone, Debug)]
pub(crate) struct StaticFiles {
    dir: ServeDir,
}

impl StaticFiles {
    /// Serves `dir` under `prefix` (which ends in `/`).
    pub(crate) fn new(dir: PathBuf, prefix: &str) -> Self {
        let dir = ServeDir::new(dir).redirect_path_prefix(prefix.trim_end_matches('/'));
        Self { dir }
    }

    /// Serves `rest` (starting with `/`) for `req`.
    pub(crate) async fn serve(
        &self,
        req: Request<Incoming>,
        rest: &str,
    ) -> Result<Response<Body>, Error> {
        let (mut parts, body) = req.into_parts();
        let pq = match parts.uri.query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest.to_owned(),
        };
        let Ok(uri) = Uri::try_from(pq) else {
            return Err(Refusal::NotFound.into());
        };
        parts.uri = uri;
        let Ok(res) = self
            .dir
            .clone()
            .oneshot(Request::from_parts(parts, body))
            .await;
        if res.status() == StatusCode::NOT_FOUND {
            return Err(Refusal::NotFound.into());
        }
        Ok(res.map(stream))
    }
}
