//! The behaviour schedule's phases while the run goes: each judged on its
//! own window of the run, with an event at its start and its end.

use std::time::Duration;

use synth_report::figure::FIGURES;
use synth_report::model::PhaseReport;
use synth_report::num::round3;

use crate::people::PhaseWindow;
use crate::timeline::{Event, Snapshot, Window};

/// The phases: which is under way, since when, and those done.
pub(super) struct Phases {
    windows: Vec<PhaseWindow>,
    /// The phase under way.
    k: usize,
    from: Snapshot,
    done: Vec<PhaseReport>,
    /// Figures reported besides the registry's phase figures.
    extra: Vec<String>,
}

impl Phases {
    /// The phases of `windows`, the first starting at `zero` (with its
    /// event); `None` without phases.
    /// Each phase reports the registry's phase figures and `extra` (those
    /// of the thresholds scoped to a phase).
    pub(super) fn new(
        windows: &[PhaseWindow],
        zero: &Snapshot,
        extra: &[String],
    ) -> Option<(Phases, Event)> {
        let first = windows.first()?;
        let e = Event::at(zero, "phase", first.name.clone(), first.kind);
        let phases = Phases {
            windows: windows.to_vec(),
            k: 0,
            from: zero.clone(),
            done: Vec::new(),
            extra: extra.to_vec(),
        };
        Some((phases, e))
    }

    /// The phase under way, if one is.
    pub(super) fn name(&self) -> Option<String> {
        self.windows.get(self.k).map(|w| w.name.clone())
    }

    /// When the phase under way ends, after the run's start.
    pub(super) fn next_end(&self) -> Duration {
        self.windows.get(self.k).map_or(Duration::MAX, |w| w.end)
    }

    /// Whether a phase is under way.
    pub(super) fn under_way(&self) -> bool {
        self.k < self.windows.len()
    }

    /// Ends every phase over at `now` (at `snap`); their events.
    pub(super) fn tick(&mut self, snap: &Snapshot, now: Duration, cores: f64) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some(w) = self.windows.get(self.k) {
            if now < w.end {
                break;
            }
            events.extend(self.end(snap, cores));
        }
        events
    }

    /// The phase under way is over at `snap`: its figures, its events, the next.
    pub(super) fn end(&mut self, snap: &Snapshot, cores: f64) -> Vec<Event> {
        let Some(w) = self.windows.get(self.k) else {
            return Vec::new();
        };
        let win = Window::new(&self.from, snap, cores);
        let figures = FIGURES
            .iter()
            .filter(|f| f.phase || self.extra.iter().any(|x| x == f.name))
            .map(|f| (f.name.to_string(), win.figure(f.name).map(round3)))
            .collect();
        self.done.push(PhaseReport {
            name: w.name.clone(),
            kind: w.kind.to_string(),
            t_start_s: round3(self.from.t_s),
            t_end_s: round3(snap.t_s),
            connected_at_end: snap.connected(),
            figures,
        });
        let mut events = vec![Event::at(snap, "phase_end", w.name.clone(), "")];
        self.k += 1;
        self.from = snap.clone();
        if let Some(next) = self.windows.get(self.k) {
            events.push(Event::at(snap, "phase", next.name.clone(), next.kind));
        }
        events
    }

    /// Each phase done, with its figures.
    pub(super) fn into_reports(self) -> Vec<PhaseReport> {
        self.done
    }
}
