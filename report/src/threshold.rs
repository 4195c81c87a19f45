//! k6-style pass/fail thresholds: `audio_latency_p99_ms: "< 150"`.
//!
//! Each threshold names one figure of the registry ([`crate::figure`]) and a
//! comparison. A run that violates any of them exits with
//! [`crate::EXIT_THRESHOLD`], and the report lists every threshold with its
//! measured value and verdict.
//!
//! A threshold may be scoped, as k6's sub-metric thresholds are:
//! `audio_lost{group=3g}`, `{meeting=ID}`, `{network=NAME}` or
//! `{phase=NAME}` read the figure of those participants or of that phase
//! only ([`Scope`]). `share(audio_mos >= 3.5)` is the share of participants
//! whose score holds the condition ([`Share`]), and may be scoped too.

use anyhow::bail;
use serde::Serialize;
use synth_common::redact::shown;

use crate::figure;
pub use crate::scope::Scope;

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
    /// The threshold's key as written (`audio_lost{group=3g}`): its
    /// verdict's name.
    pub name: String,
    /// The figure it reads (one of [`crate::figure::FIGURES`]), or for a
    /// participant share, the participant figure.
    #[serde(skip)]
    pub figure: String,
    /// Whose figure: the run's, or a group's, meeting's, network's or phase's.
    #[serde(skip)]
    pub scope: Scope,
    /// `share(FIGURE OP VALUE)`: the share of participants for whom it holds.
    #[serde(skip)]
    pub share: Option<Share>,
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

impl Op {
    /// Whether `a OP b` holds.
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => a == b,
        }
    }

    /// How a threshold writes it.
    pub fn text(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
        }
    }
}

/// `share(FIGURE OP VALUE)`: the share of participants (with a value for
/// the participant figure) for whom the comparison holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share {
    /// The comparison each participant's value is held to.
    pub op: Op,
    /// Its bound.
    pub value: f64,
}

impl Share {
    /// The share of `values` holding the comparison; `None` when empty.
    pub fn of(&self, values: impl IntoIterator<Item = f64>) -> Option<f64> {
        let (mut n, mut ok) = (0u64, 0u64);
        for v in values {
            n += 1;
            ok += u64::from(self.op.holds(v, self.value));
        }
        (n > 0).then(|| ok as f64 / n as f64)
    }
}

/// Reads `OP NUMBER` from the start of `text`; `what` names it in errors.
fn comparison(what: &str, text: &str) -> anyhow::Result<(Op, f64)> {
    let e = text.trim();
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
            "{what}: {:?} must look like \"< 150\" (ops < <= > >= ==)",
            shown(text)
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
                "{what}: {:?} in {:?} is not a finite number",
                shown(rest.trim()),
                shown(text)
            )
        })?;
    Ok((op, value))
}

impl Threshold {
    /// Parses `name: "OP NUMBER"`, where `name` is a figure, or
    /// `share(PARTICIPANT_FIGURE OP NUMBER)`, either with an optional scope
    /// (`{group=NAME}`, `{meeting=ID}`, `{network=NAME}`, `{phase=NAME}`).
    /// Whether the scope's name exists is for the config to check.
    pub fn parse(name: &str, expr: &str) -> anyhow::Result<Threshold> {
        let (body, scope) = Scope::split(name.trim())?;
        let (figure, share) = match body
            .strip_prefix("share(")
            .and_then(|r| r.strip_suffix(')'))
        {
            Some(inner) => {
                let at = inner.find(['<', '>', '=']).ok_or_else(|| {
                    anyhow::anyhow!(
                        "thresholds: {:?} must look like share(audio_mos >= 3.5)",
                        shown(name)
                    )
                })?;
                let field = inner[..at].trim();
                if crate::scope::participant_figure(field).is_none() {
                    bail!(
                        "thresholds: {:?}: unknown participant figure {:?} (known: {})",
                        shown(name),
                        shown(field),
                        crate::scope::participant_figure_names().join(", ")
                    );
                }
                let (op, value) = comparison(&format!("thresholds.{name}"), &inner[at..])?;
                if matches!(scope, Scope::Phase(_)) {
                    bail!(
                        "thresholds: {:?}: participant scores are the whole run's; scope a share by group, meeting or network",
                        shown(name)
                    );
                }
                (field.to_owned(), Some(Share { op, value }))
            }
            None => {
                let Some(f) = figure::get(body) else {
                    let known: Vec<_> = figure::names().collect();
                    bail!(
                        "thresholds: unknown figure {:?} (known: {})",
                        shown(body),
                        known.join(", ")
                    );
                };
                if let Some(why) = figure::unscoped_reason(f, &scope) {
                    bail!("thresholds: {:?}: {why}", shown(name));
                }
                (body.to_owned(), None)
            }
        };
        let (op, value) = comparison(&format!("thresholds.{name}"), expr)?;
        Ok(Threshold {
            name: name.trim().to_owned(),
            figure,
            scope,
            share,
            expr: expr.trim().to_owned(),
            op,
            value,
            abort_on_fail: false,
            delay_abort_eval: std::time::Duration::ZERO,
        })
    }

    /// Whether a window of the run gives this threshold's value (it can be
    /// checked while the run goes): a live figure of the run, a group, a
    /// network or a meeting. Shares and phase thresholds are judged on the
    /// finished run (a phase's figures on its own window).
    pub fn is_live(&self) -> bool {
        self.share.is_none()
            && !matches!(self.scope, Scope::Phase(_))
            && figure::is_live(&self.figure)
    }

    /// Checks the threshold against a measured value.
    pub fn check(&self, actual: Option<f64>) -> Verdict {
        Verdict {
            name: self.name.clone(),
            expr: self.expr.clone(),
            actual,
            pass: actual.is_some_and(|a| self.op.holds(a, self.value)),
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

    #[test]
    fn scopes_and_shares() {
        let t = Threshold::parse("audio_lost{group=3g}", "== 0").unwrap();
        assert_eq!(
            (t.figure.as_str(), &t.scope, t.name.as_str()),
            (
                "audio_lost",
                &Scope::Group("3g".into()),
                "audio_lost{group=3g}"
            )
        );
        assert!(t.is_live());
        let t = Threshold::parse("audio_lost{ phase = warm-up }", "< 5").unwrap();
        assert_eq!(t.scope, Scope::Phase("warm-up".into()));
        assert!(!t.is_live(), "a phase is judged on its own window");
        let t = Threshold::parse("share(audio_mos >= 3.5){network=3g}", ">= 0.95").unwrap();
        assert_eq!(t.figure, "audio_mos");
        assert_eq!(t.scope, Scope::Network("3g".into()));
        let s = t.share.unwrap();
        assert_eq!(s.of([4.0, 3.5, 2.0, 4.1]), Some(0.75));
        assert_eq!(s.of([]), None);
        assert!(!t.is_live());
        for (key, wanted) in [
            ("audio_lost{room=1}", "unknown scope"),
            ("audio_lost{group=}", "has no value"),
            ("audio_lost{group}", "must look like {group=NAME}"),
            ("audio_lost}", "has no `{`"),
            ("share(audio_mos)", "must look like share("),
            ("share(nope >= 1)", "unknown participant figure"),
            ("share(audio_mos >= many)", "not a finite number"),
            ("share(audio_mos >= 3){phase=a}", "whole run's"),
            ("audio_latency_p99_ms{meeting=m1}", "not kept per meeting"),
            ("generator_saturated{group=a}", "the generator's"),
            ("video_unacked{phase=a}", "only known at the end"),
        ] {
            let e = Threshold::parse(key, "< 1").unwrap_err().to_string();
            assert!(e.contains(wanted), "{key}: {e}");
        }
        assert!(Threshold::parse("audio_latency_p99_ms{group=a}", "< 1").is_ok());
        assert!(Threshold::parse("audio_latency_p99_ms{phase=a}", "< 1").is_ok());
    }
}
