//! Kubernetes name rules, as apimachinery's `pkg/util/validation/validation.go` defines them
//! (`IsDNS1123Label`, `IsDNS1123Subdomain`, `IsValidPortName`, `IsValidPortNum`).
//!
//! Contract: each function accepts exactly what its Kubernetes counterpart accepts and, when it
//! refuses, returns a [`ParseError::Invalid`] naming the part, the rule and the first problem
//! found. Service names are checked as DNS-1123 labels: Kubernetes itself requires the
//! stricter DNS-1035 label (first character a letter), so kgate accepts a few names no real
//! service can have, and the API server answers 404 for them.

use crate::error::{ParseError, Part, Rule, quoted};

/// The longest DNS-1123 label (`DNS1123LabelMaxLength`).
pub const LABEL_MAX: usize = 63;
/// The longest DNS-1123 subdomain (`DNS1123SubdomainMaxLength`).
pub const SUBDOMAIN_MAX: usize = 253;
/// The longest IANA service name (RFC 6335 §5.1).
pub const PORT_NAME_MAX: usize = 15;

fn invalid(part: Part, value: &str, rule: Rule, problem: String) -> ParseError {
    ParseError::Invalid {
        part,
        value: quoted(value),
        rule,
        problem,
    }
}

/// The first character of `s` that is not `a-z`, `0-9` or one of `extra`, described.
fn bad_char(s: &str, extra: &[char]) -> Option<String> {
    let (i, c) = s
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_lowercase() || c.is_ascii_digit() || extra.contains(&c)))?;
    Some(if c.is_ascii_uppercase() {
        format!("has the upper-case letter {c:?} at {i}")
    } else {
        format!("has the character {c:?} at {i}")
    })
}

/// Checks one DNS-1123 label (no length check): alphabet and ends.
fn label_shape(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("is empty".to_owned());
    }
    if let Some(problem) = bad_char(s, &['-']) {
        return Some(problem);
    }
    if s.starts_with('-') {
        return Some("starts with '-'".to_owned());
    }
    if s.ends_with('-') {
        return Some("ends with '-'".to_owned());
    }
    None
}

/// `IsDNS1123Label`.
pub fn dns1123_label(part: Part, s: &str) -> Result<(), ParseError> {
    if s.len() > LABEL_MAX {
        let problem = format!("is {} characters long, more than {LABEL_MAX}", s.len());
        return Err(invalid(part, s, Rule::Dns1123Label, problem));
    }
    match label_shape(s) {
        Some(problem) => Err(invalid(part, s, Rule::Dns1123Label, problem)),
        None => Ok(()),
    }
}

/// `IsDNS1123Subdomain`. Like Kubernetes, it limits the whole name to 253 characters and does
/// not limit each dot-separated label to 63.
pub fn dns1123_subdomain(part: Part, s: &str) -> Result<(), ParseError> {
    if s.len() > SUBDOMAIN_MAX {
        let problem = format!("is {} characters long, more than {SUBDOMAIN_MAX}", s.len());
        return Err(invalid(part, s, Rule::Dns1123Subdomain, problem));
    }
    if let Some(problem) = bad_char(s, &['-', '.']) {
        return Err(invalid(part, s, Rule::Dns1123Subdomain, problem));
    }
    for label in s.split('.') {
        if let Some(problem) = label_shape(label) {
            let problem = if label.is_empty() {
                "has an empty label (a leading, trailing or double '.')".to_owned()
            } else {
                format!("has the label {label:?} that {problem}")
            };
            return Err(invalid(part, s, Rule::Dns1123Subdomain, problem));
        }
    }
    Ok(())
}

/// `IsValidPortName`.
pub fn port_name(s: &str) -> Result<(), ParseError> {
    let fail = |problem: String| Err(invalid(Part::PortName, s, Rule::IanaServiceName, problem));
    if s.is_empty() {
        return fail("is empty".to_owned());
    }
    if s.len() > PORT_NAME_MAX {
        return fail(format!(
            "is {} characters long, more than {PORT_NAME_MAX}",
            s.len()
        ));
    }
    if let Some(problem) = bad_char(s, &['-']) {
        return fail(problem);
    }
    if !s.bytes().any(|b| b.is_ascii_lowercase()) {
        return fail("has no letter".to_owned());
    }
    if s.starts_with('-') || s.ends_with('-') {
        return fail("starts or ends with '-'".to_owned());
    }
    if s.contains("--") {
        return fail("has a double '-'".to_owned());
    }
    Ok(())
}

/// `IsValidPortNum` on the decimal text of a port: 1 to 65535, canonical decimal (no sign, no
/// leading zero), so that a number always prints back as it was written.
pub fn port_number(s: &str) -> Result<u16, ParseError> {
    let fail = |problem: &str| {
        Err(invalid(
            Part::PortNumber,
            s,
            Rule::PortNumber,
            problem.to_owned(),
        ))
    };
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return fail("is not a decimal number");
    }
    if s.len() > 1 && s.starts_with('0') {
        return fail("has a leading zero");
    }
    match s.parse::<u32>() {
        Ok(0) => fail("is 0"),
        Ok(n) => u16::try_from(n).or_else(|_| fail("is more than 65535")),
        Err(_) => fail("is more than 65535"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule_of(r: Result<impl Sized, ParseError>) -> Option<(Part, Rule)> {
        match r {
            Err(ParseError::Invalid { part, rule, .. }) => Some((part, rule)),
            _ => None,
        }
    }

    #[test]
    fn dns1123_labels() {
        for ok in ["a", "0", "kube-system", "a-b-c", "a1", &"a".repeat(63)] {
            assert!(dns1123_label(Part::Namespace, ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "A",
            "a_b",
            "a.b",
            "é",
            "a b",
            &"a".repeat(64),
        ] {
            assert_eq!(
                rule_of(dns1123_label(Part::Namespace, bad)),
                Some((Part::Namespace, Rule::Dns1123Label)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn dns1123_label_messages_name_the_problem() {
        let msg = |s: &str| match dns1123_label(Part::ServiceName, s) {
            Err(e) => e.to_string(),
            Ok(()) => String::new(),
        };
        assert!(msg("Grafana").contains("upper-case letter 'G'"));
        assert!(msg(&"a".repeat(64)).contains("64 characters long"));
        assert!(msg("-a").contains("starts with '-'"));
        assert!(msg("a-").contains("ends with '-'"));
        assert!(msg("").contains("is empty"));
        assert!(msg("a_b").contains("'_' at 1"));
        assert!(msg("a_b").starts_with("invalid service name \"a_b\""));
    }

    #[test]
    fn dns1123_subdomains() {
        let long_label = "a".repeat(100);
        for ok in [
            "a",
            "a.b",
            "ip-10-0-0-1.ec2.internal",
            long_label.as_str(),
            &"a".repeat(253),
        ] {
            assert!(dns1123_subdomain(Part::PodName, ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".a",
            "a.",
            "a..b",
            "a.-b",
            "a-.b",
            "A.b",
            "a_b",
            &"a".repeat(254),
        ] {
            assert_eq!(
                rule_of(dns1123_subdomain(Part::PodName, bad)),
                Some((Part::PodName, Rule::Dns1123Subdomain)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn iana_port_names() {
        for ok in [
            "http",
            "https",
            "h2c",
            "web-ui",
            "a",
            "a1",
            "123456789012345a"[1..].as_ref(),
        ] {
            assert!(port_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1234",
            "-http",
            "http-",
            "web--ui",
            "HTTP",
            "web_ui",
            "abcdefghijklmnop",
            "a.b",
        ] {
            assert_eq!(
                rule_of(port_name(bad)),
                Some((Part::PortName, Rule::IanaServiceName)),
                "{bad:?}"
            );
        }
        let msg = |s: &str| {
            port_name(s)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(msg("abcdefghijklmnop").contains("16 characters long"));
        assert!(msg("1234").contains("no letter"));
        assert!(msg("web--ui").contains("double '-'"));
    }

    #[test]
    fn port_numbers() {
        assert_eq!(port_number("1").ok(), Some(1));
        assert_eq!(port_number("8080").ok(), Some(8080));
        assert_eq!(port_number("65535").ok(), Some(65535));
        for bad in [
            "0",
            "65536",
            "99999999999999999999",
            "080",
            "00",
            "+80",
            "-1",
            "8 0",
            "",
        ] {
            assert_eq!(
                rule_of(port_number(bad)),
                Some((Part::PortNumber, Rule::PortNumber)),
                "{bad:?}"
            );
        }
        let msg = |s: &str| {
            port_number(s)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(msg("0").contains("is 0"));
        assert!(msg("65536").contains("more than 65535"));
        assert!(msg("080").contains("leading zero"));
    }
}
