//! HTML as Go and apimachinery write and read it.
//!
//! Contract: [`escape`] is Go's `html.EscapeString` (the same five replacements as `net/http`'s
//! `htmlReplacer`, which `http.Redirect` uses for its body), safe for element content and for
//! quoted attribute values; [`URL_ATTRIBUTES`] is apimachinery's `atomsToAttrs`
//! (`pkg/util/proxy/transport.go`): the attributes, by element, whose URLs the API server's
//! proxy rewrites with its prefix, and which the gateway therefore un-prefixes.

/// Escapes `&`, `'`, `<`, `>` and `"` as Go's `html.EscapeString` does.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            c => out.push(c),
        }
    }
    out
}

/// apimachinery's `atomsToAttrs`: element → the attributes of it that hold URLs.
pub const URL_ATTRIBUTES: &[(&str, &[&str])] = &[
    ("a", &["href"]),
    ("applet", &["codebase"]),
    ("area", &["href"]),
    ("audio", &["src"]),
    ("base", &["href"]),
    ("blockquote", &["cite"]),
    ("body", &["background"]),
    ("button", &["formaction"]),
    ("command", &["icon"]),
    ("del", &["cite"]),
    ("embed", &["src"]),
    ("form", &["action"]),
    ("frame", &["longdesc", "src"]),
    ("head", &["profile"]),
    ("html", &["manifest"]),
    ("iframe", &["longdesc", "src"]),
    ("img", &["longdesc", "src", "usemap"]),
    ("input", &["src", "usemap", "formaction"]),
    ("ins", &["cite"]),
    ("link", &["href"]),
    ("object", &["classid", "codebase", "data", "usemap"]),
    ("q", &["cite"]),
    ("script", &["src"]),
    ("source", &["src"]),
    ("video", &["poster", "src"]),
];

/// The URL-bearing attributes of `element` (lower case), empty for any other element.
pub fn url_attributes(element: &str) -> &'static [&'static str] {
    URL_ATTRIBUTES
        .iter()
        .find(|(tag, _)| *tag == element)
        .map_or(&[], |(_, attrs)| attrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&#34;x&#34;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("plain ünïcode"), "plain ünïcode");
    }

    #[test]
    fn the_table_is_atoms_to_attrs() {
        // 25 elements, 35 attributes, in the Go source's order.
        assert_eq!(URL_ATTRIBUTES.len(), 25);
        let attrs: usize = URL_ATTRIBUTES.iter().map(|(_, a)| a.len()).sum();
        assert_eq!(attrs, 35);
        assert_eq!(url_attributes("img"), ["longdesc", "src", "usemap"]);
        assert!(url_attributes("div").is_empty());
        let mut tags: Vec<_> = URL_ATTRIBUTES.iter().map(|(t, _)| *t).collect();
        let sorted = tags.clone();
        tags.sort_unstable();
        assert_eq!(
            tags, sorted,
            "kept in alphabetical order, as the Go map literal"
        );
    }
}
