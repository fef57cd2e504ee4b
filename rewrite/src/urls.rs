//! Pure functions that undo the API server's proxy prefix in one URL or one header value.
//!
//! apimachinery's `rewriteURL` (`pkg/util/proxy/transport.go`) turns an app's absolute-path URL
//! `/x` into `<prefix>/x` (root-relative, because the API server's transport has no scheme or
//! host), and a same-host absolute URL `https://<req.Host>/x` into `https://<req.Host><prefix>/x`.
//! Here the inverse: a URL whose path is `<prefix>` or starts with `<prefix>/`, written
//! root-relative, network-path (`//host/...`) or absolute with `http`/`https`, and naming either
//! the API server authority or the service origin's authority, becomes the origin-relative URL
//! `/x` (query and fragment kept). Every other URL is left exactly as it is, and every function
//! returns `None` when nothing changes, so callers can skip re-serialising.
//!
//! Values are handled as raw text: HTML character references and percent-escapes are neither
//! decoded nor re-encoded, which keeps every byte outside the removed prefix intact.

use crate::context::ShapeContext;

/// Un-prefixes one URL (an attribute value or `Location`). `None` when it is left unchanged.
pub fn unprefix_url(value: &str, ctx: &ShapeContext) -> Option<String> {
    let prefix = ctx.prefix().as_str();
    // No substring search first: the classification below only looks at the value's start,
    // and the HTML stage's selectors have already checked that the prefix occurs.
    let path = same_origin_path(value, ctx)?;
    let after = path.strip_prefix(prefix)?;
    match after.as_bytes().first() {
        None => Some("/".to_owned()),
        // Browsers read `//host`, `/\host` and `/<tab>/host` as another host: collapse the
        // leading run of separators so un-prefixing never turns a path into a foreign origin
        // (the API server's `path.Join` cleaned such runs on the way in as well).
        Some(b'/') => Some(format!(
            "/{}",
            after.trim_start_matches(['/', '\\', '\t', '\n', '\r'])
        )),
        Some(b'?' | b'#') => Some(format!("/{after}")),
        // `<prefix>foo` is a different path that merely shares the characters.
        Some(_) => None,
    }
}

/// `Location` response header: the same rule as [`unprefix_url`].
pub fn unprefix_location(value: &str, ctx: &ShapeContext) -> Option<String> {
    unprefix_url(value, ctx)
}

/// `Content-Location` response header: the same rule as [`unprefix_url`].
pub fn unprefix_content_location(value: &str, ctx: &ShapeContext) -> Option<String> {
    unprefix_url(value, ctx)
}

/// `Refresh` header or `<meta http-equiv="refresh">` content: `<delay>[;,] [url=]<url>`, parsed
/// as the HTML standard's "shared declarative refresh steps"; only the URL part changes.
pub fn unprefix_refresh(value: &str, ctx: &ShapeContext) -> Option<String> {
    let (start, end) = refresh_url_span(value)?;
    let replacement = unprefix_url(value.get(start..end)?, ctx)?;
    Some(splice(value, &[(start, end, replacement)]))
}

/// `Set-Cookie` response header: a `Path` attribute under the prefix loses the prefix (a cookie
/// scoped to `<prefix>/x` becomes scoped to `/x`, one for `<prefix>` to `/`), and a `Domain`
/// attribute naming the API server host is dropped, since a browser on the service origin would
/// refuse the whole cookie for it; the cookie becomes host-only, i.e. private to the origin.
pub fn unprefix_set_cookie(value: &str, ctx: &ShapeContext) -> Option<String> {
    let prefix = ctx.prefix().as_str();
    let api_host = host_of(ctx.api_authority());
    let mut edits = Vec::new();
    let mut pos = 0;
    // The first `;`-separated piece is `name=value`; attributes follow.
    let mut pieces = value.split(';');
    if let Some(first) = pieces.next() {
        pos += first.len() + 1;
    }
    for piece in pieces {
        let start = pos;
        pos += piece.len() + 1;
        let (name, attr_value) = match piece.split_once('=') {
            Some((n, v)) => (n.trim(), v),
            None => continue,
        };
        if name.eq_ignore_ascii_case("path") {
            let trimmed = attr_value.trim();
            let Some(after) = trimmed.strip_prefix(prefix) else {
                continue;
            };
            let new_path = match after.as_bytes().first() {
                None => "/".to_owned(),
                Some(b'/') => format!("/{}", after.trim_start_matches('/')),
                Some(_) => continue,
            };
            let value_start = start + piece.len() - attr_value.len();
            let lead = attr_value.len() - attr_value.trim_start().len();
            let v_start = value_start + lead;
            edits.push((v_start, v_start + trimmed.len(), new_path));
        } else if name.eq_ignore_ascii_case("domain") {
            let domain = attr_value.trim();
            let domain = domain.strip_prefix('.').unwrap_or(domain);
            if domain.eq_ignore_ascii_case(api_host) {
                // Remove `;<piece>` (the separator before it belongs to it).
                edits.push((start - 1, start + piece.len(), String::new()));
            }
        }
    }
    (!edits.is_empty()).then(|| splice(value, &edits))
}

/// `Link` response header: every `<uri-reference>` is un-prefixed (apps preloading assets write
/// absolute paths there, like in `<link href>`); parameters are kept as they are.
pub fn unprefix_link(value: &str, ctx: &ShapeContext) -> Option<String> {
    if !value.contains(ctx.prefix().as_str()) {
        return None;
    }
    let bytes = value.as_bytes();
    let mut edits = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        // At the start of a link-value: skip separators, expect `<uri>`.
        while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b',') {
            i += 1;
        }
        if bytes.get(i) != Some(&b'<') {
            return None;
        }
        let uri_start = i + 1;
        let uri_end = uri_start + value.get(uri_start..)?.find('>')?;
        if let Some(new) = unprefix_url(value.get(uri_start..uri_end)?, ctx) {
            edits.push((uri_start, uri_end, new));
        }
        // Parameters up to the next comma outside a quoted string.
        i = uri_end + 1;
        let mut quoted = false;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b',' if !quoted => break,
                _ => {}
            }
            i += 1;
        }
    }
    (!edits.is_empty()).then(|| splice(value, &edits))
}

/// `srcset` (and `imagesrcset`): each image candidate's URL is un-prefixed; descriptors and
/// separators are kept. Parsed as the HTML standard's "parse a srcset attribute".
pub fn unprefix_srcset(value: &str, ctx: &ShapeContext) -> Option<String> {
    if !value.contains(ctx.prefix().as_str()) {
        return None;
    }
    let bytes = value.as_bytes();
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c');
    let mut edits = Vec::new();
    let mut i = 0;
    loop {
        while i < bytes.len() && (is_space(bytes[i]) || bytes[i] == b',') {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let url_start = i;
        while i < bytes.len() && !is_space(bytes[i]) {
            i += 1;
        }
        let mut url_end = i;
        let mut has_descriptors = true;
        if bytes[url_end - 1] == b',' {
            // Trailing commas end the candidate: they are separators, not part of the URL.
            while url_end > url_start && bytes[url_end - 1] == b',' {
                url_end -= 1;
            }
            has_descriptors = false;
        }
        if let Some(new) = unprefix_url(value.get(url_start..url_end)?, ctx) {
            edits.push((url_start, url_end, new));
        }
        if has_descriptors {
            let mut depth = 0usize;
            while i < bytes.len() {
                match bytes[i] {
                    b'(' => depth += 1,
                    b')' => depth = depth.saturating_sub(1),
                    b',' if depth == 0 => break,
                    _ => {}
                }
                i += 1;
            }
        }
    }
    (!edits.is_empty()).then(|| splice(value, &edits))
}

/// The `path?query#fragment` part of `value` when it is root-relative, or network-path or
/// `http(s)` absolute naming the API server or the origin; `None` for anything else.
fn same_origin_path<'v>(value: &'v str, ctx: &ShapeContext) -> Option<&'v str> {
    if let Some(rest) = value.strip_prefix("//") {
        return path_after_authority(rest, None, ctx);
    }
    if value.starts_with('/') {
        return Some(value);
    }
    let colon = value.find(':')?;
    let scheme = value.get(..colon)?;
    let is_http = scheme.eq_ignore_ascii_case("http");
    if !is_http && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let rest = value.get(colon + 1..)?.strip_prefix("//")?;
    path_after_authority(rest, Some(if is_http { "80" } else { "443" }), ctx)
}

fn path_after_authority<'v>(
    rest: &'v str,
    default_port: Option<&str>,
    ctx: &ShapeContext,
) -> Option<&'v str> {
    let end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let known = [ctx.api_authority(), ctx.origin_authority()];
    known
        .iter()
        .any(|k| same_authority(authority, k, default_port))
        .then_some(path)
}

/// ASCII case-insensitive authority comparison where an explicit default port equals none.
fn same_authority(candidate: &str, known: &str, default_port: Option<&str>) -> bool {
    if candidate.eq_ignore_ascii_case(known) {
        return true;
    }
    let Some(port) = default_port else {
        return false;
    };
    let strip = |a: &'_ str| -> String {
        let lower = a.to_ascii_lowercase();
        match lower.rsplit_once(':') {
            Some((host, p)) if p == port && !host.is_empty() => host.to_owned(),
            _ => lower,
        }
    };
    strip(candidate) == strip(known)
}

/// The host of `host[:port]` (IPv6 literals keep their brackets).
fn host_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(i) => &authority[..=i],
            None => authority,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// Where the URL of a refresh value is, as `(start, end)` byte offsets.
fn refresh_url_span(value: &str) -> Option<(usize, usize)> {
    let bytes = value.as_bytes();
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c');
    let mut i = 0;
    while i < bytes.len() && is_space(bytes[i]) {
        i += 1;
    }
    let digits_start = i;
    while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
        i += 1;
    }
    if i == digits_start {
        return None;
    }
    while i < bytes.len() && is_space(bytes[i]) {
        i += 1;
    }
    if i < bytes.len() && matches!(bytes[i], b';' | b',') {
        i += 1;
    }
    while i < bytes.len() && is_space(bytes[i]) {
        i += 1;
    }
    if i >= bytes.len() {
        return None;
    }
    if value
        .get(i..i + 3)
        .is_some_and(|s| s.eq_ignore_ascii_case("url"))
    {
        let mut j = i + 3;
        while j < bytes.len() && is_space(bytes[j]) {
            j += 1;
        }
        if bytes.get(j) == Some(&b'=') {
            i = j + 1;
            while i < bytes.len() && is_space(bytes[i]) {
                i += 1;
            }
        }
    }
    match bytes.get(i) {
        Some(&q @ (b'"' | b'\'')) => {
            let start = i + 1;
            let end = value
                .get(start..)?
                .find(q as char)
                .map_or(bytes.len(), |e| start + e);
            Some((start, end))
        }
        Some(_) => {
            let mut end = bytes.len();
            while end > i && is_space(bytes[end - 1]) {
                end -= 1;
            }
            Some((i, end))
        }
        None => None,
    }
}

/// Applies non-overlapping, ascending `(start, end, replacement)` edits.
fn splice(value: &str, edits: &[(usize, usize, String)]) -> String {
    let mut out = String::with_capacity(value.len());
    let mut at = 0;
    for (start, end, replacement) in edits {
        out.push_str(value.get(at..*start).unwrap_or_default());
        out.push_str(replacement);
        at = *end;
    }
    out.push_str(value.get(at..).unwrap_or_default());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "/api/v1/namespaces/monitoring/services/https:grafana:3000/proxy";

    fn ctx() -> ShapeContext {
        ShapeContext::new(P, "10.0.0.1:6443", "grafana.monitoring.svc.localhost:8001")
            .expect("valid context")
    }

    fn un(v: &str) -> Option<String> {
        unprefix_url(v, &ctx())
    }

    #[test]
    fn root_relative_urls_lose_the_prefix() {
        assert_eq!(un(&format!("{P}/login")), Some("/login".into()));
        assert_eq!(un(&format!("{P}/")), Some("/".into()));
        assert_eq!(un(P), Some("/".into()));
        assert_eq!(
            un(&format!("{P}?a=1&amp;b=2")),
            Some("/?a=1&amp;b=2".into())
        );
        assert_eq!(un(&format!("{P}#top")), Some("/#top".into()));
        assert_eq!(un(&format!("{P}/d/x?q=1#f")), Some("/d/x?q=1#f".into()));
        assert_eq!(un(&format!("{P}/a%20b/")), Some("/a%20b/".into()));
    }

    #[test]
    fn absolute_urls_to_the_api_server_or_the_origin_lose_scheme_host_and_prefix() {
        assert_eq!(
            un(&format!("https://10.0.0.1:6443{P}/x")),
            Some("/x".into())
        );
        assert_eq!(
            un(&format!("HTTPS://10.0.0.1:6443{P}/x?y")),
            Some("/x?y".into())
        );
        assert_eq!(un(&format!("//10.0.0.1:6443{P}/x")), Some("/x".into()));
        assert_eq!(
            un(&format!(
                "http://Grafana.Monitoring.svc.localhost:8001{P}/x"
            )),
            Some("/x".into())
        );
        let default_port = ShapeContext::new(P, "api.example:443", "o.localhost").expect("ctx");
        assert_eq!(
            unprefix_url(&format!("https://api.example{P}/x"), &default_port),
            Some("/x".into())
        );
        assert_eq!(
            unprefix_url(&format!("http://o.localhost:80{P}/x"), &default_port),
            Some("/x".into())
        );
    }

    #[test]
    fn everything_else_is_untouched() {
        for v in [
            "/login".to_owned(),
            "login".to_owned(),
            "../x".to_owned(),
            "#f".to_owned(),
            "?q".to_owned(),
            format!("{P}foo/x"),
            format!("https://example.org{P}/x"),
            format!("//cdn.example{P}/x"),
            format!("https://user@10.0.0.1:6443{P}/x"),
            format!("ftp://10.0.0.1:6443{P}/x"),
            format!("javascript:location='{P}/x'"),
            format!(" {P}/x"),
            format!("/other{P}/x"),
            format!("https://10.0.0.1:6443/other{P}"),
            "https://10.0.0.1:6443".to_owned(),
            String::new(),
        ] {
            assert_eq!(un(&v), None, "{v:?}");
        }
    }

    #[test]
    fn unprefixing_never_yields_another_host() {
        assert_eq!(
            un(&format!("{P}//evil.example/x")),
            Some("/evil.example/x".into())
        );
        assert_eq!(
            un(&format!("{P}/\\evil.example")),
            Some("/evil.example".into())
        );
        assert_eq!(
            un(&format!("{P}/\t/evil.example")),
            Some("/evil.example".into())
        );
    }

    #[test]
    fn location_and_content_location() {
        let c = ctx();
        assert_eq!(
            unprefix_location(&format!("{P}/login?next=%2F"), &c),
            Some("/login?next=%2F".into())
        );
        assert_eq!(unprefix_location("https://accounts.example/auth", &c), None);
        assert_eq!(
            unprefix_content_location(&format!("{P}/index.html"), &c),
            Some("/index.html".into())
        );
    }

    #[test]
    fn refresh_keeps_delay_and_spelling() {
        let c = ctx();
        assert_eq!(
            unprefix_refresh(&format!("5; url={P}/next"), &c),
            Some("5; url=/next".into())
        );
        assert_eq!(
            unprefix_refresh(&format!("0;URL='{P}/n x'"), &c),
            Some("0;URL='/n x'".into())
        );
        assert_eq!(
            unprefix_refresh(&format!("3,{P}/a "), &c),
            Some("3,/a ".into())
        );
        assert_eq!(
            unprefix_refresh(&format!("1.5 ; url = \"{P}\""), &c),
            Some("1.5 ; url = \"/\"".into())
        );
        assert_eq!(unprefix_refresh("5", &c), None);
        assert_eq!(unprefix_refresh("5; url=/x", &c), None);
        assert_eq!(unprefix_refresh(&format!("url={P}/x"), &c), None);
    }

    #[test]
    fn set_cookie_path_and_domain() {
        let c = ctx();
        assert_eq!(
            unprefix_set_cookie(&format!("sid=1; Path={P}/app; HttpOnly"), &c),
            Some("sid=1; Path=/app; HttpOnly".into())
        );
        assert_eq!(
            unprefix_set_cookie(&format!("sid=1; path= {P} ; Secure"), &c),
            Some("sid=1; path= / ; Secure".into())
        );
        assert_eq!(unprefix_set_cookie("sid=1; Path=/; HttpOnly", &c), None);
        assert_eq!(unprefix_set_cookie(&format!("sid={P}; Path=/"), &c), None);
        assert_eq!(unprefix_set_cookie(&format!("sid=1; Path={P}x"), &c), None);
        assert_eq!(
            unprefix_set_cookie("sid=1; Domain=10.0.0.1; Path=/", &c),
            Some("sid=1; Path=/".into())
        );
        assert_eq!(unprefix_set_cookie("sid=1; Domain=example.org", &c), None);
    }

    #[test]
    fn link_header_uris() {
        let c = ctx();
        assert_eq!(
            unprefix_link(
                &format!(
                    "<{P}/a.css>; rel=preload; as=style, <https://cdn.example/b.js>; rel=preload"
                ),
                &c
            ),
            Some("</a.css>; rel=preload; as=style, <https://cdn.example/b.js>; rel=preload".into())
        );
        assert_eq!(
            unprefix_link(
                &format!("<https://x.example/>; title=\"a, b\", <{P}/c>; rel=next"),
                &c
            ),
            Some("<https://x.example/>; title=\"a, b\", </c>; rel=next".into())
        );
        assert_eq!(unprefix_link("</a.css>; rel=preload", &c), None);
        assert_eq!(unprefix_link(&format!("garbage {P}/x"), &c), None);
    }

    #[test]
    fn srcset_candidates() {
        let c = ctx();
        assert_eq!(
            unprefix_srcset(&format!("{P}/a.png 1x, {P}/b.png 2x"), &c),
            Some("/a.png 1x, /b.png 2x".into())
        );
        assert_eq!(
            unprefix_srcset(
                &format!("{P}/a.png, {P}/b.png 480w,https://cdn.example{P}/c.png"),
                &c
            ),
            Some(format!("/a.png, /b.png 480w,https://cdn.example{P}/c.png"))
        );
        // Without whitespace after the comma a browser reads one URL (`a.png,<P>/b.png`), so
        // only its start is a prefix.
        assert_eq!(
            unprefix_srcset(&format!("{P}/a.png,{P}/b.png 2x"), &c),
            Some(format!("/a.png,{P}/b.png 2x"))
        );
        assert_eq!(
            unprefix_srcset(
                &format!(" {P}/a.png (max-width: 1px, x) 1x ,\n{P}/b.png"),
                &c
            ),
            Some(" /a.png (max-width: 1px, x) 1x ,\n/b.png".into())
        );
        assert_eq!(unprefix_srcset("/a.png 1x, /b.png 2x", &c), None);
    }
}
