//! The shaped body under a real async runtime: upstream data arrives over time, output leaves
//! before the input has ended, and upstream failures surface as upstream failures.
#![expect(
    clippy::expect_used,
    reason = "helpers of this test binary fail the test by panicking"
)]

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use rewrite::{ShapeBodyError, ShapeContext, shape_response};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

const P: &str = "/api/v1/namespaces/default/services/web/proxy";

fn ctx() -> ShapeContext {
    ShapeContext::new(P, "127.0.0.1:6443", "web.default.svc.localhost:8001").expect("ctx")
}

/// A body fed through a channel: `Ok` chunks, or an `Err` to fail the body.
struct ChannelBody(mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.0.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
    }
}

fn shaped(
    headers: &[(&str, &str)],
) -> (
    mpsc::Sender<Result<Bytes, std::io::Error>>,
    impl Body<Data = Bytes, Error = ShapeBodyError> + Unpin,
) {
    let (tx, rx) = mpsc::channel(4);
    let mut builder = http::Response::builder();
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let (mut parts, ()) = builder.body(()).expect("response").into_parts();
    let body = shape_response(&mut parts, ChannelBody(rx), &ctx());
    (tx, Box::pin(body))
}

async fn next_data<B: Body<Data = Bytes> + Unpin>(body: &mut B) -> Option<Result<Bytes, B::Error>> {
    loop {
        match body.frame().await? {
            Ok(frame) => match frame.into_data() {
                Ok(data) if data.is_empty() => continue,
                Ok(data) => return Some(Ok(data)),
                Err(_) => continue,
            },
            Err(e) => return Some(Err(e)),
        }
    }
}

async fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    async_compression::tokio::bufread::GzipEncoder::new(data)
        .read_to_end(&mut out)
        .await
        .expect("gzip");
    out
}

#[tokio::test]
async fn html_output_leaves_before_the_input_ends() {
    let (tx, mut body) = shaped(&[("content-type", "text/html")]);
    let first = format!("<html><body><a href=\"{P}/one\">1</a><p>text</p>");
    tx.send(Ok(Bytes::from(first))).await.expect("send");
    // The upstream is still open: output must come anyway.
    let out = next_data(&mut body).await.expect("output").expect("data");
    assert!(
        String::from_utf8_lossy(&out).contains("<a href=\"/one\">1</a>"),
        "{out:?}"
    );
    tx.send(Ok(Bytes::from(format!(
        "<a href=\"{P}/two\">2</a></body></html>"
    ))))
    .await
    .expect("send");
    drop(tx);
    let mut rest = Vec::new();
    while let Some(chunk) = next_data(&mut body).await {
        rest.extend_from_slice(&chunk.expect("data"));
    }
    let whole = [out.to_vec(), rest].concat();
    assert_eq!(
        String::from_utf8(whole).expect("utf-8"),
        "<html><body><a href=\"/one\">1</a><p>text</p><a href=\"/two\">2</a></body></html>"
    );
}

#[tokio::test]
async fn gzip_output_leaves_after_the_first_member() {
    let (tx, mut body) = shaped(&[("content-type", "text/html"), ("content-encoding", "gzip")]);
    let member = gzip(format!("<a href=\"{P}/one\">1</a>").as_bytes()).await;
    tx.send(Ok(Bytes::from(member))).await.expect("send");
    let out = next_data(&mut body).await.expect("output").expect("data");
    assert_eq!(&out[..], b"<a href=\"/one\">1</a>");
    let member = gzip(format!("<a href=\"{P}/two\">2</a>").as_bytes()).await;
    tx.send(Ok(Bytes::from(member))).await.expect("send");
    drop(tx);
    let out = next_data(&mut body).await.expect("output").expect("data");
    assert_eq!(&out[..], b"<a href=\"/two\">2</a>");
    assert!(next_data(&mut body).await.is_none());
}

#[tokio::test]
async fn upstream_failures_are_reported_as_upstream_failures() {
    for headers in [
        &[("content-type", "text/html")][..],
        &[("content-type", "text/html"), ("content-encoding", "gzip")][..],
        &[("content-type", "application/json")][..],
    ] {
        let (tx, mut body) = shaped(headers);
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        tx.send(Err(reset)).await.expect("send");
        let err = loop {
            match next_data(&mut body).await {
                Some(Err(e)) => break e,
                Some(Ok(_)) => continue,
                None => panic!("{headers:?}: the failure was swallowed"),
            }
        };
        assert!(
            matches!(err, ShapeBodyError::Upstream(_)),
            "{headers:?}: {err}"
        );
        assert!(err.to_string().contains("reset by peer"), "{err}");
        // The error is reported once; the body then ends.
        drop(tx);
        assert!(next_data(&mut body).await.is_none(), "{headers:?}");
    }
}
