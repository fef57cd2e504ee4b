//! Label and field selectors on lists, as apimachinery's `pkg/labels/selector.go` parses them
//! (`=`, `==`, `!=`, `in (...)`, `notin (...)`, `key`, `!key`, comma-separated, all must hold)
//! and the two field selectors every resource supports (`metadata.name`, `metadata.namespace`).

use std::collections::BTreeMap;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// Splits on commas outside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_set(key: &str, rest: &str) -> Result<Vec<String>, String> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| {
            format!("unable to parse requirement: found '{rest}', expected: '(' for key {key:?}")
        })?;
    Ok(inner.split(',').map(|v| v.trim().to_owned()).collect())
}

/// Parses a label selector; the error is the message of the API server's 400.
pub(crate) fn parse_labels(s: &str) -> Result<Vec<Requirement>, String> {
    let mut reqs = Vec::new();
    for raw in split_top_level(s) {
        let term = raw.trim();
        if term.is_empty() {
            continue;
        }
        let req = if let Some(key) = term.strip_prefix('!') {
            Requirement::DoesNotExist(key.trim().to_owned())
        } else if let Some((k, v)) = term.split_once("!=") {
            Requirement::NotEquals(k.trim().to_owned(), v.trim().to_owned())
        } else if let Some((k, v)) = term.split_once("==") {
            Requirement::Equals(k.trim().to_owned(), v.trim().to_owned())
        } else if let Some((k, v)) = term.split_once('=') {
            Requirement::Equals(k.trim().to_owned(), v.trim().to_owned())
        } else if let Some((k, rest)) = term.split_once(" notin ") {
            Requirement::NotIn(k.trim().to_owned(), parse_set(k, rest)?)
        } else if let Some((k, rest)) = term.split_once(" in ") {
            Requirement::In(k.trim().to_owned(), parse_set(k, rest)?)
        } else if term.contains(|c: char| c.is_whitespace() || "()<>".contains(c)) {
            return Err(format!(
                "unable to parse requirement: invalid label key {term:?}"
            ));
        } else {
            Requirement::Exists(term.to_owned())
        };
        reqs.push(req);
    }
    Ok(reqs)
}

/// Whether all requirements hold for `labels`.
pub(crate) fn matches(reqs: &[Requirement], labels: &BTreeMap<String, String>) -> bool {
    reqs.iter().all(|r| match r {
        Requirement::Equals(k, v) => labels.get(k) == Some(v),
        Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
        Requirement::In(k, set) => labels.get(k).is_some_and(|v| set.contains(v)),
        Requirement::NotIn(k, set) => labels.get(k).is_none_or(|v| !set.contains(v)),
        Requirement::Exists(k) => labels.contains_key(k),
        Requirement::DoesNotExist(k) => !labels.contains_key(k),
    })
}

/// A field selector: `(field, value, equal)` terms.
pub(crate) fn parse_fields(s: &str) -> Result<Vec<(String, String, bool)>, String> {
    let mut out = Vec::new();
    for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (field, value, eq) = if let Some((f, v)) = term.split_once("!=") {
            (f, v, false)
        } else if let Some((f, v)) = term.split_once("==") {
            (f, v, true)
        } else if let Some((f, v)) = term.split_once('=') {
            (f, v, true)
        } else {
            return Err(format!(
                "invalid selector: '{s}'; can't understand '{term}'"
            ));
        };
        if field != "metadata.name" && field != "metadata.namespace" {
            return Err(format!("field label not supported: {field}"));
        }
        out.push((field.to_owned(), value.to_owned(), eq));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn equality_sets_and_existence() {
        let l = labels(&[("kubernetes.io/cluster-service", "true"), ("app", "x")]);
        let ok = |s: &str| matches(&parse_labels(s).unwrap_or_default(), &l);
        assert!(ok("kubernetes.io/cluster-service=true"));
        assert!(ok("kubernetes.io/cluster-service==true,app"));
        assert!(!ok("kubernetes.io/cluster-service=false"));
        assert!(ok("app in (x, y)"));
        assert!(!ok("app notin (x)"));
        assert!(ok("!missing"));
        assert!(!ok("app!=x"));
        assert!(parse_labels("app in x").is_err());
    }

    #[test]
    fn fields() {
        assert!(parse_fields("metadata.name=x").is_ok());
        assert!(parse_fields("spec.nodeName=x").is_err());
    }
}
