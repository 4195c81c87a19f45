//! Scoped thresholds read here: a figure of a group, network or meeting
//! (the report's [`ScopeFigures`](crate::model::ScopeFigures)), of a phase
//! (its window's figures), and participant shares over the participants'
//! scores.

use crate::model::Report;
use crate::threshold::{Scope, Threshold};

/// A figure each participant has, which `share(FIGURE OP VALUE)` reads.
#[derive(Debug, Clone, Copy)]
pub struct ParticipantFigure {
    /// Its name in a share.
    pub name: &'static str,
    /// What it is.
    pub about: &'static str,
}

/// The participant figures, in the order the docs list them.
pub static PARTICIPANT_FIGURES: &[ParticipantFigure] = &[
    ParticipantFigure {
        name: "audio_mos",
        about: "the participant's audio MOS (ITU-T G.107 E-model, 1..4.5)",
    },
    ParticipantFigure {
        name: "video_score",
        about: "the participant's video score (1..5)",
    },
    ParticipantFigure {
        name: "audio_concealment",
        about: "its concealed audio slots over slots expected, all its senders (0..1; band A)",
    },
    ParticipantFigure {
        name: "video_freeze_share",
        about: "its frozen time over watched time, all its senders (0..1; band V)",
    },
    ParticipantFigure {
        name: "latency_p95_ms",
        about: "95th percentile of its one-way audio latency, at most (ms; band L)",
    },
    ParticipantFigure {
        name: "low_fps_share",
        about: "its share of watched seconds with 0 < fps < low_fps (0..1; band Q)",
    },
    ParticipantFigure {
        name: "reconnects_per_hour",
        about: "its unplanned reconnects per hour of its presence (band S)",
    },
];

/// The participant figure called `name`.
pub fn participant_figure(name: &str) -> Option<&'static ParticipantFigure> {
    PARTICIPANT_FIGURES.iter().find(|f| f.name == name)
}

/// Every participant figure's name.
pub fn participant_figure_names() -> Vec<&'static str> {
    PARTICIPANT_FIGURES.iter().map(|f| f.name).collect()
}

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
        match &t.scope {
            Scope::Run => self.figure(&t.figure),
            Scope::Phase(p) => {
                let phase = self
                    .behaviour
                    .as_ref()?
                    .phases
                    .iter()
                    .find(|x| &x.name == p)?;
                phase.figures.get(&t.figure).copied().flatten()
            }
            scope => {
                let s = self.scope(scope.kind()?, scope.value()?)?;
                s.figures.get(&t.figure).copied().flatten()
            }
        }
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
