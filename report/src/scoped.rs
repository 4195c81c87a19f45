//! Scoped thresholds read here: a figure of a group, network or meeting
//! (the report's [`ScopeFigures`](crate::model::ScopeFigures)), of a phase
//! (its window's figures), and participant shares over the participants'
//! scores.

use crate::model::Report;
use crate::scope::Scope;
pub use crate::scope::{
    participant_figure, participant_figure_names, ParticipantFigure, PARTICIPANT_FIGURES,
};
use crate::threshold::Threshold;

impl Report {
    /// The figures of a group, network or meeting, if the report has them.
    pub fn scope(&self, kind: &str, name: &str) -> Option<&crate::model::ScopeFigures> {
        self.scopes
            .iter()
            .find(|s| s.kind == kind && s.name == name)
    }

    /// The value `t` reads in this report: its figure in its scope, or its
    /// participant share; `None` when the run gave none (or the scope is
    /// not in the report).
    pub fn threshold_value(&self, t: &Threshold) -> Option<f64> {
        if let Some(share) = &t.share {
            return share.of(self.participant_values(&t.figure, &t.scope));
        }
        self.figure_in(&t.figure, &t.scope)
    }

    /// Figure `name` of `scope`: the run's, a phase's (its window's), or a
    /// group's, network's or meeting's; `None` when the report has none.
    pub fn figure_in(&self, name: &str, scope: &Scope) -> Option<f64> {
        match scope {
            Scope::Run => self.figure(name),
            Scope::Phase(p) => {
                let phase = self
                    .behaviour
                    .as_ref()?
                    .phases
                    .iter()
                    .find(|x| &x.name == p)?;
                phase.figures.get(name).copied().flatten()
            }
            scope => {
                let s = self.scope(scope.kind()?, scope.value()?)?;
                s.figures.get(name).copied().flatten()
            }
        }
    }

    /// Every scope of the report with the figures it has: its groups,
    /// networks and meetings (`scopes`), then its phases.
    pub fn scoped_figures(&self) -> Vec<(Scope, Vec<&str>)> {
        let mut out: Vec<(Scope, Vec<&str>)> = Vec::new();
        for s in &self.scopes {
            // `scopes` holds groups, networks and meetings only.
            let Some(scope) = Scope::of(&s.kind, &s.name) else {
                continue;
            };
            out.push((scope, s.figures.keys().map(String::as_str).collect()));
        }
        for p in self.behaviour.iter().flat_map(|b| &b.phases) {
            out.push((
                Scope::Phase(p.name.clone()),
                p.figures.keys().map(String::as_str).collect(),
            ));
        }
        out
    }

    /// The values of participant figure `name` of the participants in
    /// `scope` that have one.
    pub fn participant_values(&self, name: &str, scope: &Scope) -> Vec<f64> {
        let Some(scores) = &self.scores else {
            return Vec::new();
        };
        scores
            .participants
            .iter()
            .filter(|p| match scope {
                Scope::Run | Scope::Phase(_) => true,
                Scope::Group(g) => &p.group == g,
                Scope::Meeting(m) => &p.meeting == m,
                Scope::Network(n) => p.network.as_deref() == Some(n.as_str()),
            })
            .filter_map(|p| p.figure(name))
            .collect()
    }
}
