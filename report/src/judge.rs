//! A report's verdict: its figures read through the registry, every
//! threshold checked against them, and the built-in verdicts.

use crate::figure;
use crate::model::Report;
use crate::threshold::{Threshold, Verdict, BUILT_IN};

/// The share of started clients connected at the end below which a run
/// fails whatever its thresholds (`connected_at_end_share`).
pub const CONNECTED_AT_END_FLOOR: f64 = 0.5;

impl Report {
    /// Checks `thresholds` and the built-in verdicts against the report's
    /// figures and sets `thresholds` and `passed`.
    pub fn judge(&mut self, thresholds: &[Threshold]) {
        self.thresholds = thresholds
            .iter()
            .map(|t| t.check(self.threshold_value(t)))
            .collect();
        // Built in: a run whose clients are mostly gone at the end never passes.
        let share = self.figure("connected_at_end_share");
        self.thresholds.push(Verdict {
            name: "connected_at_end_share".into(),
            expr: format!(">= {CONNECTED_AT_END_FLOOR}{BUILT_IN}"),
            actual: share,
            pass: share.is_some_and(|v| v >= CONNECTED_AT_END_FLOOR),
        });
        let no_knee = self.search.as_ref().is_some_and(|s| s.knee.is_none());
        self.passed = self.thresholds.iter().all(|v| v.pass) && self.aborted.is_none() && !no_knee;
    }

    /// The value of a figure of the registry ([`crate::figure::FIGURES`]);
    /// `None` for an unknown name or when the run gave none.
    pub fn figure(&self, name: &str) -> Option<f64> {
        figure::get(name).and_then(|f| (f.end)(self))
    }
}
