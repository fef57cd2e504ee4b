//! Streaming HTML un-prefixing with lol_html: chunks in, chunks out, memory bounded.
//!
//! Rewritten attributes are exactly those of apimachinery's `atomsToAttrs` table
//! (`pkg/util/proxy/transport.go`), plus `srcset`/`imagesrcset` and the URL in
//! `<meta http-equiv="refresh" content>`, which the API server does not rewrite but an app may
//! have written with the prefix. There is one selector per element: `tag[attr*="<prefix>"]` for
//! elements with one URL attribute (lol_html's selector VM then wakes the handler only for values
//! that contain the prefix), the bare tag name for the few with several; either way only values
//! containing the prefix are touched. Every other byte of the page, including tags left alone,
//! is copied from the input verbatim.
//!
//! Memory: lol_html keeps at most one partial token plus what a matching tag needs; that is capped
//! by `MemorySettings::with_max_allowed_memory_usage` (from
//! [`ShapeContext::with_max_buffered_bytes`]), with graceful bail-out: on overflow lol_html flushes
//! what it holds unmodified, and the rest of the page then streams through unrewritten. Output is
//! handed out after every input chunk, so nothing else accumulates.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::{Bytes, BytesMut};
use lol_html::errors::RewritingError;
use lol_html::send::{HtmlRewriter, Settings};
use lol_html::{AsciiCompatibleEncoding, MemorySettings, OutputSink, element};

use crate::context::ShapeContext;
use crate::urls::{unprefix_refresh, unprefix_srcset, unprefix_url};

/// apimachinery's `atomsToAttrs`: the element → attribute pairs the API server rewrites (the
/// table lives in `wire`, which the simulated API server reads too).
pub use wire::html::URL_ATTRIBUTES as API_SERVER_URL_ATTRIBUTES;

/// Candidate-list attributes (`srcset` syntax) that are un-prefixed as well.
const SRCSET_ATTRIBUTES: &[(&str, &str)] = &[
    ("img", "srcset"),
    ("source", "srcset"),
    ("link", "imagesrcset"),
];

/// Why the HTML stage failed in a way it could not recover from by passing bytes through.
#[derive(Debug, thiserror::Error)]
#[error("HTML rewriting failed and the page cannot be completed: {source}")]
pub struct HtmlError {
    #[source]
    source: RewritingError,
}

/// Collects what lol_html emits; drained after every `write`. A mutex only to make the rewriter
/// `Send` (it is never contended: the rewriter and the drain run on the same task).
#[derive(Clone, Default)]
struct SharedSink(Arc<Mutex<BytesMut>>);

impl OutputSink for SharedSink {
    fn handle_chunk(&mut self, chunk: &[u8]) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(chunk);
    }
}

impl SharedSink {
    fn take(&self) -> Bytes {
        let mut out = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let taken = out.split().freeze();
        // Room for the next slice's output, so that it is not grown piece by piece.
        out.reserve(crate::body::MAX_FEED + 4096);
        taken
    }
}

/// One page being un-prefixed. After a graceful bail-out it becomes a pass-through.
pub(crate) struct HtmlStream {
    rewriter: Option<HtmlRewriter<'static, SharedSink>>,
    sink: SharedSink,
    bailed_out: bool,
}

impl std::fmt::Debug for HtmlStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HtmlStream")
            .field("bailed_out", &self.bailed_out)
            .finish_non_exhaustive()
    }
}

impl HtmlStream {
    /// `encoding` from the response's `charset`; `None` means none was given, in which case a
    /// `<meta charset>` may still switch it (as a browser would).
    pub(crate) fn new(ctx: &ShapeContext, encoding: Option<AsciiCompatibleEncoding>) -> Self {
        let sink = SharedSink::default();
        let settings = settings(ctx, encoding);
        Self {
            rewriter: Some(HtmlRewriter::new(settings, sink.clone())),
            sink,
            bailed_out: false,
        }
    }

    /// Whether the rewriter gave up (memory limit) and the rest is passed through.
    pub(crate) fn bailed_out(&self) -> bool {
        self.bailed_out
    }

    /// Feeds one input chunk; returns the output it produced (possibly empty).
    pub(crate) fn write(&mut self, chunk: &[u8]) -> Result<Bytes, HtmlError> {
        let Some(rewriter) = self.rewriter.as_mut() else {
            return Ok(Bytes::copy_from_slice(chunk));
        };
        if let Err(source) = rewriter.write(chunk) {
            self.rewriter = None;
            self.recover(source)?;
        }
        Ok(self.sink.take())
    }

    /// Ends the page; returns the last output.
    pub(crate) fn end(&mut self) -> Result<Bytes, HtmlError> {
        if let Some(rewriter) = self.rewriter.take()
            && let Err(source) = rewriter.end()
        {
            self.recover(source)?;
        }
        Ok(self.sink.take())
    }

    /// With graceful bail-out on, lol_html has already flushed every byte it held, unmodified,
    /// for memory and handler errors; anything else (parsing ambiguity, impossible with
    /// `strict(false)`) lost bytes and must fail the body rather than corrupt it silently.
    fn recover(&mut self, source: RewritingError) -> Result<(), HtmlError> {
        match source {
            RewritingError::MemoryLimitExceeded(_) | RewritingError::ContentHandlerError(_) => {
                self.bailed_out = true;
                Ok(())
            }
            source => Err(HtmlError { source }),
        }
    }
}

fn settings(
    ctx: &ShapeContext,
    encoding: Option<AsciiCompatibleEncoding>,
) -> Settings<'static, 'static> {
    let prefix = ctx.prefix().as_str();
    let memory = MemorySettings::new()
        .with_max_allowed_memory_usage(ctx.max_buffered_bytes())
        .with_graceful_bail_out_on_memory_limit_exceeded(true);
    let mut settings = Settings::new_send()
        .with_strict(false)
        .with_memory_settings(memory)
        .with_graceful_bail_out_on_content_handler_error(true);
    settings = match encoding {
        Some(encoding) => settings.with_encoding(encoding),
        None => settings.with_adjust_charset_on_meta_tag(true),
    };
    for (tag, attrs) in API_SERVER_URL_ATTRIBUTES {
        let srcset = SRCSET_ATTRIBUTES
            .iter()
            .find(|(t, _)| t == tag)
            .map(|(_, a)| *a);
        settings = settings
            .append_element_content_handler(element_handler(ctx, tag, attrs, srcset, prefix));
    }
    let c = ctx.clone();
    settings.append_element_content_handler(element!(
        format!("meta[content*=\"{prefix}\"]"),
        move |el: &mut lol_html::send::Element<'_, '_>| {
            let is_refresh = el
                .get_attribute("http-equiv")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("refresh"));
            if is_refresh
                && let Some(new) = el
                    .get_attribute("content")
                    .and_then(|v| unprefix_refresh(&v, &c))
            {
                el.set_attribute("content", &new)?;
            }
            Ok(())
        }
    ))
}

type ElementHandlers = (
    std::borrow::Cow<'static, lol_html::Selector>,
    lol_html::send::ElementContentHandlers<'static>,
);

/// One selector per element keeps lol_html's selector VM short (it tries every selector on
/// every start tag). An element with one URL attribute is matched only when that attribute holds
/// the prefix; one with several is matched by name and its attributes checked here.
fn element_handler(
    ctx: &ShapeContext,
    tag: &'static str,
    attrs: &'static [&'static str],
    srcset: Option<&'static str>,
    prefix: &str,
) -> ElementHandlers {
    let selector = match (attrs, srcset) {
        ([attr], None) => format!("{tag}[{attr}*=\"{prefix}\"]"),
        _ => (*tag).to_owned(),
    };
    let ctx = ctx.clone();
    element!(selector, move |el: &mut lol_html::send::Element<'_, '_>| {
        let prefix = ctx.prefix().as_str();
        let url_attrs = attrs.iter().map(|a| (*a, unprefix_url as Unprefix));
        let srcset_attrs = srcset.map(|a| (a, unprefix_srcset as Unprefix));
        for (attr, unprefix) in url_attrs.chain(srcset_attrs) {
            let new = el
                .get_attribute(attr)
                .filter(|v| v.contains(prefix))
                .and_then(|v| unprefix(&v, &ctx));
            if let Some(new) = new {
                el.set_attribute(attr, &new)?;
            }
        }
        Ok(())
    })
}

type Unprefix = fn(&str, &ShapeContext) -> Option<String>;

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "/api/v1/namespaces/ns/services/svc:http/proxy";

    fn ctx() -> ShapeContext {
        ShapeContext::new(P, "10.0.0.1:6443", "svc.ns.svc.localhost:8001").expect("ctx")
    }

    fn run(input: &str) -> String {
        let mut h = HtmlStream::new(&ctx(), None);
        let mut out = h.write(input.as_bytes()).expect("write").to_vec();
        out.extend_from_slice(&h.end().expect("end"));
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn every_attribute_of_the_api_server_table_is_unprefixed() {
        for (tag, attrs) in API_SERVER_URL_ATTRIBUTES {
            for attr in *attrs {
                let input = format!("<{tag} {attr}=\"{P}/x?a=1&amp;b\">");
                assert_eq!(
                    run(&input),
                    format!("<{tag} {attr}=\"/x?a=1&amp;b\">"),
                    "{input}"
                );
            }
        }
    }

    #[test]
    fn other_attributes_and_elements_are_left_alone() {
        for input in [
            format!("<div data-href=\"{P}/x\"></div>"),
            format!("<a title=\"{P}/x\" href=\"/y\">t</a>"),
            format!("<img alt=\"{P}/x\">"),
            format!("<script>fetch(\"{P}/x\")</script>"),
            format!("<!-- <a href=\"{P}/x\"> -->"),
            format!("<textarea><a href=\"{P}/x\"></textarea>"),
            format!("<meta name=\"x\" content=\"0;url={P}/x\">"),
        ] {
            assert_eq!(run(&input), input);
        }
    }

    #[test]
    fn srcset_and_meta_refresh() {
        assert_eq!(
            run(&format!(
                "<img srcset=\"{P}/a.png 1x, {P}/b.png 2x\" src=\"{P}/a.png\">"
            )),
            "<img srcset=\"/a.png 1x, /b.png 2x\" src=\"/a.png\">"
        );
        assert_eq!(
            run(&format!("<picture><source srcset='{P}/a.webp'></picture>")),
            "<picture><source srcset=\"/a.webp\"></picture>"
        );
        assert_eq!(
            run(&format!(
                "<meta http-equiv=Refresh content=\"0; url={P}/next\">"
            )),
            "<meta http-equiv=Refresh content=\"0; url=/next\">"
        );
    }

    #[test]
    fn unchanged_tags_keep_their_exact_bytes() {
        let input = format!(
            "<A HREF='/x'  class=c>a</A><IMG\nSRC={P}/i.png alt='q\"'/><base href=\"{P}/\">"
        );
        assert_eq!(
            run(&input),
            "<A HREF='/x'  class=c>a</A><IMG SRC=\"/i.png\" alt='q\"' /><base href=\"/\">"
        );
    }
}
