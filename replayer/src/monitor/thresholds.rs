//! The thresholds checked while the run goes: those a window of the run so
//! far gives, at every sample; what starts or stops failing is an event, and
//! one marked `abort_on_fail` failing after its `delay_abort_eval` ends the run.

use std::collections::BTreeSet;
use std::time::Duration;

use synth_report::num::round3;
use synth_report::threshold::{Threshold, Verdict};

use crate::timeline::{Event, Snapshot};

/// The live thresholds, and those failing at the last check.
pub(super) struct Thresholds {
    list: Vec<Threshold>,
    failing: BTreeSet<String>,
}

/// What a check found.
pub(super) struct Checked {
    /// The thresholds failing now.
    pub(super) failing: Vec<String>,
    /// What started or stopped failing, and the abort.
    pub(super) events: Vec<Event>,
    /// The verdict line of the first threshold that aborts the run.
    pub(super) abort: Option<String>,
    /// The verdict of each threshold checked (those with a value so far).
    pub(super) verdicts: Vec<Verdict>,
}

impl Thresholds {
    pub(super) fn new(list: &[Threshold]) -> Thresholds {
        Thresholds {
            list: list.to_vec(),
            failing: BTreeSet::new(),
        }
    }

    /// Checks every threshold a window gives (`value`: its value on the
    /// run until `snap`, `now` after its start; `None` for one only known at
    /// the end, or with no data yet).
    pub(super) fn check(
        &mut self,
        mut value: impl FnMut(&Threshold) -> Option<f64>,
        snap: &Snapshot,
        now: Duration,
    ) -> Checked {
        let mut failing = Vec::new();
        let mut events = Vec::new();
        let mut abort = None;
        let mut verdicts = Vec::new();
        for t in &self.list {
            // No data yet (no latency before the first packet) is not a failure while the run goes.
            let Some(v) = value(t) else {
                continue;
            };
            let verdict = t.check(Some(v));
            let line = line(t, Some(v));
            let pass = verdict.pass;
            verdicts.push(verdict);
            if pass {
                if self.failing.remove(&t.name) {
                    events.push(Event::at(snap, "threshold_recovered", &t.name, line));
                }
                continue;
            }
            failing.push(t.name.clone());
            if self.failing.insert(t.name.clone()) {
                events.push(Event::at(snap, "threshold_failed", &t.name, line.clone()));
            }
            if t.abort_on_fail && now >= t.delay_abort_eval && abort.is_none() {
                events.push(Event::at(snap, "abort", &t.name, line.clone()));
                abort = Some(line);
            }
        }
        Checked {
            failing,
            events,
            abort,
            verdicts,
        }
    }
}

/// A threshold and the value it was checked on, as a verdict line shows them.
pub(super) fn line(t: &Threshold, v: Option<f64>) -> String {
    format!(
        "{} {} (was {})",
        t.name,
        t.expr,
        v.map_or("no data".into(), short)
    )
}

/// A figure as a verdict line shows it.
pub(super) fn short(v: f64) -> String {
    format!("{}", round3(v))
}
