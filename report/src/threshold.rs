//! k6-style pass/fail thresholds: `audio_latency_p99_ms: "< 150"`.
//!
//! Each threshold names one figure of the registry ([`crate::figure`]) and a
//! comparison. A run that violates any of them exits with
//! [`crate::EXIT_THRESHOLD`], and the report lists every threshold with its
//! measured value and verdict.

use anyhow::bail;
use serde::Serialize;
use synth_common::redact::shown;

use crate::figure;

pub use crate::model::{Verdict, BUILT_IN};

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
    /// `==`
    #[serde(rename = "==")]
    Eq,
}

/// One threshold from the config.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Threshold {
    /// Figure name (one of [`crate::figure::FIGURES`]).
    pub name: String,
    /// The expression as written, e.g. `"< 150"`.
    pub expr: String,
    /// Comparison.
    #[serde(skip)]
    pub op: Op,
    /// Bound.
    #[serde(skip)]
    pub value: f64,
    /// End the run at once when this fails while the run goes (k6's `abortOnFail`).
    #[serde(skip)]
    pub abort_on_fail: bool,
    /// No abort before this much of the run has passed (k6's `delayAbortEval`).
    #[serde(skip)]
    pub delay_abort_eval: std::time::Duration,
}

impl Threshold {
    /// Parses `name: "OP NUMBER"`.
    pub fn parse(name: &str, expr: &str) -> anyhow::Result<Threshold> {
        if figure::get(name).is_none() {
            let known: Vec<_> = figure::names().collect();
            bail!(
                "thresholds: unknown figure {:?} (known: {})",
                shown(name),
                known.join(", ")
            );
        }
        let e = expr.trim();
        let (op, rest) = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .iter()
        .find_map(|(s, op)| e.strip_prefix(s).map(|rest| (*op, rest)))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "thresholds.{name}: {:?} must look like \"< 150\" (ops < <= > >= ==)",
                shown(expr)
            )
        })?;
        let value: f64 = rest
            .trim()
            .parse()
            // `NaN` and `inf` parse, but no figure compares with them as meant.
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "thresholds.{name}: {:?} in {:?} is not a finite number",
                    shown(rest.trim()),
                    shown(expr)
                )
            })?;
        Ok(Threshold {
            name: name.to_owned(),
            expr: e.to_owned(),
            op,
            value,
            abort_on_fail: false,
            delay_abort_eval: std::time::Duration::ZERO,
        })
    }

    /// Checks the threshold against a measured value.
    pub fn check(&self, actual: Option<f64>) -> Verdict {
        let pass = actual.is_some_and(|a| match self.op {
            Op::Lt => a < self.value,
            Op::Le => a <= self.value,
            Op::Gt => a > self.value,
            Op::Ge => a >= self.value,
            Op::Eq => a == self.value,
        });
        Verdict {
            name: self.name.clone(),
            expr: self.expr.clone(),
            actual,
            pass,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_check() {
        let t = Threshold::parse("audio_latency_p99_ms", "< 150").unwrap();
        assert!(t.check(Some(149.9)).pass);
        assert!(!t.check(Some(150.0)).pass);
        assert!(!t.check(None).pass, "no samples fails");
        let t = Threshold::parse("connect_success_rate", ">=0.999").unwrap();
        assert!(t.check(Some(1.0)).pass);
        assert!(!t.check(Some(0.99)).pass);
        assert!(Threshold::parse("nope", "< 1").is_err());
        assert!(Threshold::parse("reconnects", "about 3").is_err());
        assert!(Threshold::parse("reconnects", "< many").is_err());
        assert_eq!(Threshold::parse("reconnects", "== 0").unwrap().op, Op::Eq);
    }
}
