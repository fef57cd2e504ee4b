//! Property tests of every grammar: what is built parses back to the same target in every form,
//! nothing appended after a target's proxy prefix can name another target (also after a WHATWG
//! URL parser normalised it), and no input makes any parser panic.

use proptest::prelude::*;
use urlgrammar::{
    Address, ContextLabel, Form, Kind, OriginHost, Port, PortName, Rest, Scheme, Target,
};

fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?",
        1 => "[a-z0-9][-a-z0-9]{61}[a-z0-9]",
        1 => Just("http".to_owned()),
        1 => Just("https".to_owned()),
        1 => Just("svc".to_owned()),
        1 => Just("node".to_owned()),
    ]
}

fn subdomain() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => label(),
        1 => "[a-z0-9]([-a-z0-9]{0,5}[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]{0,5}[a-z0-9])?){1,3}",
        1 => "[a-z0-9][-a-z0-9]{62,120}[a-z0-9]",
    ]
}

fn port() -> impl Strategy<Value = Option<Port>> {
    prop_oneof![
        1 => Just(None),
        1 => (1u16..=u16::MAX).prop_map(|n| Some(Port::Number(n))),
        1 => "[a-z0-9]{0,3}[a-z]([a-z0-9]|-[a-z0-9]){0,5}"
            .prop_filter_map("IANA service name", |s| PortName::new(&s).ok().map(|n| Some(Port::Name(n)))),
    ]
}

fn scheme() -> impl Strategy<Value = Scheme> {
    prop_oneof![
        Just(Scheme::Unspecified),
        Just(Scheme::Http),
        Just(Scheme::Https)
    ]
}

fn target() -> impl Strategy<Value = Target> {
    let kind = prop_oneof![Just(Kind::Service), Just(Kind::Pod), Just(Kind::Node)];
    (kind, label(), label(), subdomain(), scheme(), port()).prop_filter_map(
        "valid target",
        |(kind, ns, service, object, scheme, port)| {
            let name = if kind == Kind::Service {
                service
            } else {
                object
            };
            Target::new(kind, Some(&ns), &name)
                .ok()
                .map(|t| t.with_scheme(scheme).with_port(port))
        },
    )
}

/// A path segment of allowed characters (escapes included), never `.` or `..`.
fn segment() -> impl Strategy<Value = String> {
    "([a-zA-Z0-9._~!$&'()*+,;=:@\"<>{}|^`\\[\\]-]|%[0-9A-Fa-f]{2}|%2[eE]){0,6}".prop_filter(
        "not a dot segment",
        |s| {
            !matches!(
                s.to_ascii_lowercase().replace("%2e", ".").as_str(),
                "." | ".."
            )
        },
    )
}

fn rest() -> impl Strategy<Value = Rest> {
    let path = prop_oneof![
        1 => Just(String::new()),
        4 => prop::collection::vec(segment(), 1..5).prop_map(|s| format!("/{}", s.join("/"))),
    ];
    let query = prop::option::of("[!-\"$-~]{0,12}");
    (path, query).prop_filter_map("valid rest", |(p, q)| Rest::new(&p, q.as_deref()).ok())
}

fn context() -> impl Strategy<Value = Option<ContextLabel>> {
    prop::option::of(label().prop_filter_map("context label", |l| ContextLabel::new(&l).ok()))
}

/// Text built from the characters that matter to these grammars, to reach deeper than
/// uniformly random strings.
fn urlish() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("/"),
            Just("."),
            Just(".."),
            Just("%2e"),
            Just("%2E"),
            Just("%2F"),
            Just("%"),
            Just("?"),
            Just("#"),
            Just("\\"),
            Just(":"),
            Just("@"),
            Just("a"),
            Just("0"),
            Just("-"),
            Just("proxy"),
            Just("api"),
            Just("v1"),
            Just("namespaces"),
            Just("nodes"),
            Just("services"),
            Just("pods"),
            Just("svc"),
            Just("pod"),
            Just("node"),
            Just("https"),
            Just("localhost"),
            Just("://"),
            Just("é"),
            Just(" "),
            Just("\u{0}"),
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

/// What an origin URL carries for `rest`: an empty path is sent as `/`.
fn as_sent(rest: &Rest) -> Result<Rest, urlgrammar::ParseError> {
    if rest.path().is_empty() {
        Rest::new("/", rest.query())
    } else {
        Ok(rest.clone())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn api_paths_round_trip(t in target(), r in rest()) {
        let built = t.api_path(&r);
        prop_assert_eq!(Target::parse_api_path(&built), Ok((t.clone(), r.clone())), "{}", built);
        let a = Address::parse(&built, None);
        prop_assert_eq!(a.map(|a| (a.form, a.target, a.rest)), Ok((Form::Api, t, r)));
    }

    #[test]
    fn short_targets_round_trip(t in target(), r in rest(), default in label()) {
        let built = t.short(&r);
        prop_assert_eq!(Target::parse_short(&built, None), Ok((t.clone(), r.clone())), "{}", built);
        prop_assert_eq!(Target::parse_short(&built, Some(&default)), Ok((t.clone(), r.clone())), "{}", built);
        let own = t.namespace().unwrap_or("default");
        let relative = t.short_in(Some(own), &r);
        prop_assert_eq!(Target::parse_short(&relative, Some(own)), Ok((t.clone(), r.clone())), "{}", relative);
        let a = Address::parse(&relative, Some(own));
        prop_assert_eq!(a.map(|a| (a.form, a.target, a.rest)), Ok((Form::Short, t, r)));
    }

    #[test]
    fn origin_hosts_round_trip(t in target(), ctx in context(), listen in prop::option::of(1u16..)) {
        let representable = !t.name().contains('.') && t.name().len() <= 63;
        let host = t.origin_host(ctx.as_ref());
        prop_assert_eq!(host.is_ok(), representable, "{:?}", host);
        let Ok(host) = host else { return Ok(()) };
        prop_assert!(host.split('.').all(|l| !l.is_empty() && l.len() <= 63), "{}", host);
        prop_assert!(host.len() <= 253);
        let header = match listen { Some(p) => format!("{host}:{p}"), None => host.clone() };
        let expected = OriginHost { target: t, context: ctx, port: listen };
        prop_assert_eq!(Target::parse_host(&header), Ok(expected.clone()));
        prop_assert_eq!(Target::parse_host(&header.to_ascii_uppercase()), Ok(expected.clone()));
        let dotted = match listen { Some(p) => format!("{host}.:{p}"), None => format!("{host}.") };
        prop_assert_eq!(Target::parse_host(&dotted), Ok(expected));
    }

    #[test]
    fn urls_round_trip(t in target(), r in rest(), ctx in context(), listen in 1u16..) {
        let gateway = t.gateway_url(&format!("localhost:{listen}"), &r);
        let Ok(gateway) = gateway else { return Err(TestCaseError::fail(format!("{gateway:?}"))) };
        let a = Address::parse_url(&gateway);
        prop_assert_eq!(a.map(|a| (a.form, a.target, a.rest)), Ok((Form::Gateway, t.clone(), r.clone())));
        if let Ok(origin) = t.origin_url(ctx.as_ref(), Some(listen), &r) {
            let a = Address::parse(&origin, None);
            let sent = as_sent(&r);
            prop_assert_eq!(a.map(|a| (a.form, a.target, a.context, Ok(a.rest))), Ok((Form::Origin, t, ctx, sent)));
        }
    }

    /// Whatever is appended to a target's proxy prefix, the path names that target or nothing;
    /// and when kgate accepts it, a WHATWG URL parser (the `url` crate, as browsers) keeps the
    /// target too.
    #[test]
    fn nothing_after_the_prefix_changes_the_target(t in target(), tail in urlish()) {
        for sep in ["", "/"] {
            let path = format!("{}{sep}{tail}", t.proxy_prefix());
            if let Ok((parsed, rest)) = Target::parse_api_path(&path) {
                prop_assert_eq!(&parsed, &t, "{}", path);
                let normalised = url::Url::parse(&format!("http://localhost{}", t.api_path(&rest)));
                let Ok(normalised) = normalised else {
                    return Err(TestCaseError::fail(format!("{path}: {normalised:?}")));
                };
                let again = match normalised.query() {
                    Some(q) => format!("{}?{q}", normalised.path()),
                    None => normalised.path().to_owned(),
                };
                let reparsed = Target::parse_api_path(&again).map(|(t, _)| t);
                prop_assert_eq!(reparsed, Ok(t.clone()), "{} normalised to {}", path, again);
            }
        }
    }

    #[test]
    fn any_rest_keeps_the_target(t in target(), tail in urlish()) {
        if let Ok(r) = Rest::parse(&tail) {
            prop_assert_eq!(Target::parse_api_path(&t.api_path(&r)), Ok((t.clone(), r.clone())));
            prop_assert_eq!(Target::parse_short(&t.short(&r), None), Ok((t, r)));
        }
    }

    /// Every host the parser accepts can be built again (found by fuzzing: pod and node
    /// names longer than 63 characters used to parse).
    #[test]
    fn parsed_hosts_rebuild(labels in prop::collection::vec(prop_oneof![label(), subdomain(), Just("pod".to_owned())], 1..5), ctx in context(), upper in any::<bool>()) {
        let mut host = labels.join(".");
        if let Some(ctx) = &ctx {
            host = format!("{host}.{ctx}");
        }
        host.push_str(".localhost");
        if upper {
            host = host.to_ascii_uppercase();
        }
        if let Ok(parsed) = Target::parse_host(&host) {
            let built = parsed.target.origin_host(parsed.context.as_ref());
            let lower = host.to_ascii_lowercase();
            prop_assert_eq!(built.as_deref().ok(), Some(lower.as_str()));
        }
    }

    /// Every address `Address::parse` accepts prints again in its own form and parses back to
    /// the same target.
    #[test]
    fn parsed_addresses_rebuild(t in target(), r in rest(), ctx in context(), form in 0..4usize, noise in urlish()) {
        let Ok(origin) = t.origin_url(ctx.as_ref(), Some(8001), &r) else { return Ok(()) };
        let inputs = [t.api_path(&r), t.short(&r), origin.clone(), format!("{origin}{noise}")];
        let Ok(a) = Address::parse(&inputs[form], None) else { return Ok(()) };
        let built = match a.form {
            Form::Api => Ok(a.target.api_path(&a.rest)),
            Form::Short => Ok(a.target.short(&a.rest)),
            Form::Gateway => a.target.gateway_url("localhost:8001", &a.rest),
            Form::Host | Form::Origin => a.target.origin_url(a.context.as_ref(), Some(8001), &a.rest),
        };
        let Ok(built) = built else { return Err(TestCaseError::fail(format!("{a:?}: {built:?}"))) };
        let again = Address::parse(&built, None).map(|b| (b.target, b.context));
        prop_assert_eq!(again, Ok((a.target, a.context)), "{}", built);
    }

    #[test]
    fn no_parser_panics_on_strings(s in prop_oneof![any::<String>(), urlish()]) {
        let _ = Target::parse_api_path(&s);
        let _ = Target::parse_short(&s, Some("default"));
        let _ = Target::parse_short(&s, None);
        let _ = Target::parse_host(&s);
        let _ = Address::parse(&s, Some("default"));
        let _ = Address::parse_url(&s);
        let _ = Rest::parse(&s);
        let _ = Port::parse(&s);
        let _ = ContextLabel::new(&s);
        let _ = urlgrammar::split_scheme_name_port(&s);
        for kind in [Kind::Service, Kind::Pod, Kind::Node] {
            let _ = Target::from_id(kind, Some("ns"), &s);
        }
    }

    #[test]
    fn no_parser_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let s = String::from_utf8_lossy(&bytes);
        let _ = Target::parse_api_path(&s);
        let _ = Target::parse_short(&s, Some("default"));
        let _ = Target::parse_host(&s);
        let _ = Address::parse(&s, None);
    }
}
