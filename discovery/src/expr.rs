//! `--expect-json EXPR`: a jq expression evaluated on the response body, run by `jaq`
//! (`jaq-core`, `jaq-std`, `jaq-json`), a maintained jq implementation, rather than a language
//! of kgate's own.
//!
//! Contract: the expression passes when it yields at least one value and every value it yields
//! is truthy (neither `false` nor `null`), as `jq -e` judges its last output. A body that is not
//! JSON, an expression that raises an error, or no output at all fail with a reason.
//!
//! jq covers what checks need: paths (`.status`, `.nodes[0].name`), comparisons
//! (`==`, `!=`, `<`, `<=`, `>`, `>=`), `and`, `or`, `not` (postfix in jq: `(.a == 1) | not`),
//! and membership: jq 1.6's `IN(...)` is added here (`.status | IN("green", "yellow")`) beside
//! jaq's own `in(...)` (key membership). Examples:
//! `.status != "red"`, `.number_of_nodes >= 3 and .timed_out == false`.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;

/// jq 1.6's `IN`, which jaq does not ship.
const PRELUDE: &str = "def IN(s): any(s == .; .); def IN(src; s): any(src == s; .);";

/// A compiled `--expect-json` expression.
pub struct JsonExpr {
    source: String,
    filter: jaq_core::Filter<data::JustLut<Val>>,
}

impl std::fmt::Debug for JsonExpr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("JsonExpr").field(&self.source).finish()
    }
}

/// Why an expression does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --expect-json expression {expression:?}: {detail}")]
pub struct ExprError {
    /// The expression as given.
    pub expression: String,
    /// What is wrong, with the position when known.
    pub detail: String,
}

/// The outcome of evaluating an expression on a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExprOutcome {
    /// Every output was truthy.
    Pass,
    /// Why not: a falsy output (shown), an error, or no output.
    Fail(String),
}

impl JsonExpr {
    /// Parses and compiles `source`.
    pub fn compile(source: &str) -> Result<JsonExpr, ExprError> {
        let err = |detail: String| ExprError {
            expression: source.to_owned(),
            detail,
        };
        let prelude = jaq_core::load::parse(PRELUDE, |p| p.defs())
            .ok_or_else(|| err("internal prelude does not parse".to_owned()))?;
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs())
            .chain(prelude);
        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs());
        let loader = Loader::new(defs);
        let arena = Arena::default();
        let modules = loader
            .load(
                &arena,
                File {
                    code: source,
                    path: (),
                },
            )
            .map_err(|errs| err(describe_load_errors(source, &errs)))?;
        let filter = Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|errs| {
                let names: Vec<String> = errs
                    .iter()
                    .flat_map(|(_, es)| es.iter())
                    .map(|(name, undef)| format!("undefined {} `{name}`", undef.as_str()))
                    .collect();
                err(names.join(", "))
            })?;
        Ok(JsonExpr {
            source: source.to_owned(),
            filter,
        })
    }

    /// The expression as given.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates the expression on `body`.
    pub fn evaluate(&self, body: &[u8]) -> ExprOutcome {
        let input = match jaq_json::read::parse_single(body) {
            Ok(v) => v,
            Err(e) => return ExprOutcome::Fail(format!("body is not JSON: {e}")),
        };
        let ctx = Ctx::<data::JustLut<Val>>::new(&self.filter.lut, Vars::new([]));
        let mut outputs = 0usize;
        // Bounded, so that a generator like `range(1e12)` cannot spin forever.
        for out in self
            .filter
            .id
            .run((ctx, input))
            .map(unwrap_valr)
            .take(10_000)
        {
            outputs += 1;
            match out {
                Ok(v) if is_truthy(&v) => {}
                Ok(v) => {
                    return ExprOutcome::Fail(format!(
                        "{} gave {}",
                        self.source,
                        short(&v.to_string())
                    ));
                }
                Err(e) => {
                    return ExprOutcome::Fail(format!(
                        "{}: {}",
                        self.source,
                        short(&e.to_string())
                    ));
                }
            }
        }
        if outputs == 0 {
            ExprOutcome::Fail(format!("{} gave no output", self.source))
        } else {
            ExprOutcome::Pass
        }
    }
}

fn is_truthy(v: &Val) -> bool {
    !matches!(v, Val::Null | Val::Bool(false))
}

fn short(s: &str) -> String {
    const MAX: usize = 120;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push('…');
        t
    }
}

fn describe_load_errors(source: &str, errs: &jaq_core::load::Errors<&str, ()>) -> String {
    use jaq_core::load::Error;
    let mut parts = Vec::new();
    for (_, e) in errs {
        match e {
            Error::Io(items) => parts.extend(items.iter().map(|(p, m)| format!("{p}: {m}"))),
            Error::Lex(items) => parts.extend(items.iter().map(|(expect, found)| {
                let at = jaq_core::load::span(source, found).start;
                format!("expected {} at offset {at}", expect.as_str())
            })),
            Error::Parse(items) => parts.extend(items.iter().map(|(expect, found)| {
                if found.is_empty() {
                    format!("expected {} at the end", expect.as_str())
                } else {
                    let at = jaq_core::load::span(source, found).start;
                    format!(
                        "expected {} at offset {at}, found {found:?}",
                        expect.as_str()
                    )
                }
            })),
        }
    }
    if parts.is_empty() {
        "does not parse".to_owned()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(expr: &str, body: &str) -> ExprOutcome {
        JsonExpr::compile(expr).unwrap().evaluate(body.as_bytes())
    }

    const HEALTH: &str = r#"{"cluster_name":"logging","status":"yellow","number_of_nodes":3,"timed_out":false,"indices":{"a":1}}"#;

    #[test]
    fn comparisons_and_paths() {
        assert_eq!(eval(r#".status != "red""#, HEALTH), ExprOutcome::Pass);
        assert_eq!(eval(".number_of_nodes >= 3", HEALTH), ExprOutcome::Pass);
        assert_eq!(
            eval(".number_of_nodes > 3", HEALTH),
            ExprOutcome::Fail(".number_of_nodes > 3 gave false".to_owned())
        );
        assert_eq!(eval(".indices.a == 1", HEALTH), ExprOutcome::Pass);
        assert_eq!(
            eval(".missing", HEALTH),
            ExprOutcome::Fail(".missing gave null".to_owned())
        );
    }

    #[test]
    fn boolean_operators_and_membership() {
        assert_eq!(
            eval(r#".status == "green" or .status == "yellow""#, HEALTH),
            ExprOutcome::Pass
        );
        assert_eq!(
            eval(r#".status != "red" and .timed_out == false"#, HEALTH),
            ExprOutcome::Pass
        );
        assert!(matches!(
            eval(r#"(.status == "yellow") | not"#, HEALTH),
            ExprOutcome::Fail(_)
        ));
        assert_eq!(
            eval(r#".status | IN("green", "yellow")"#, HEALTH),
            ExprOutcome::Pass
        );
        assert!(matches!(
            eval(r#".status | IN("green")"#, HEALTH),
            ExprOutcome::Fail(_)
        ));
        assert_eq!(
            eval(r#".indices as $i | "a" | in($i)"#, HEALTH),
            ExprOutcome::Pass
        );
    }

    #[test]
    fn every_output_must_be_truthy_and_errors_fail() {
        assert!(matches!(eval(".[]", "[true, false]"), ExprOutcome::Fail(_)));
        assert_eq!(eval(".[]", "[1, true]"), ExprOutcome::Pass);
        assert_eq!(
            eval("empty", "{}"),
            ExprOutcome::Fail("empty gave no output".to_owned())
        );
        match eval(".a.b", r#"{"a": 5}"#) {
            ExprOutcome::Fail(reason) => assert!(reason.starts_with(".a.b: "), "{reason}"),
            ExprOutcome::Pass => panic!("indexing a number must fail"),
        }
        match eval(".status", "<html>") {
            ExprOutcome::Fail(reason) => {
                assert!(reason.starts_with("body is not JSON"), "{reason}")
            }
            ExprOutcome::Pass => panic!("HTML is not JSON"),
        }
    }

    #[test]
    fn bad_expressions_are_rejected_with_a_reason() {
        let err = JsonExpr::compile(".status ==").unwrap_err();
        assert!(err.detail.contains("expected"), "{err}");
        let err = JsonExpr::compile("nosuchfn(1)").unwrap_err();
        assert!(err.detail.contains("undefined filter `nosuchfn`"), "{err}");
    }
}
