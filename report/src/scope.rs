//! Whose figure a threshold reads ([`Scope`]: a group, meeting, network or
//! phase of the run) and the figures each participant has
//! ([`PARTICIPANT_FIGURES`]), which `share(...)` thresholds read. A leaf:
//! the threshold parser, the figure registry and the scoped readers all
//! build on it.

use anyhow::bail;
use synth_common::redact::shown;

/// Whose figure a threshold reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// The whole run (no label).
    #[default]
    Run,
    /// The participants of one group of the config (`{group=NAME}`: its
    /// `name`, by default its index).
    Group(String),
    /// The participants of one meeting (`{meeting=ID}`).
    Meeting(String),
    /// The participants of the groups with this network profile (`{network=NAME}`).
    Network(String),
    /// One phase of the behaviour schedule (`{phase=NAME}`): the figure on
    /// that phase's window of the run.
    Phase(String),
}

impl Scope {
    /// The label's key (`group`), `None` for the run.
    pub fn kind(&self) -> Option<&'static str> {
        Some(match self {
            Scope::Run => return None,
            Scope::Group(_) => "group",
            Scope::Meeting(_) => "meeting",
            Scope::Network(_) => "network",
            Scope::Phase(_) => "phase",
        })
    }

    /// The label's value (`3g`), `None` for the run.
    pub fn value(&self) -> Option<&str> {
        match self {
            Scope::Run => None,
            Scope::Group(v) | Scope::Meeting(v) | Scope::Network(v) | Scope::Phase(v) => Some(v),
        }
    }

    /// Splits `figure{key=value}` into the figure and its scope.
    pub(crate) fn split(key: &str) -> anyhow::Result<(&str, Scope)> {
        let Some(body) = key.strip_suffix('}') else {
            return Ok((key, Scope::Run));
        };
        let Some((figure, label)) = body.rsplit_once('{') else {
            bail!(
                "thresholds: {:?} ends with `}}` but has no `{{`",
                shown(key)
            );
        };
        let Some((k, v)) = label.split_once('=') else {
            bail!(
                "thresholds: {:?}: the scope must look like {{group=NAME}} (keys: group, meeting, network, phase)",
                shown(key)
            );
        };
        let v = v.trim();
        if v.is_empty() {
            bail!(
                "thresholds: {:?}: the scope {:?} has no value",
                shown(key),
                k.trim()
            );
        }
        let Some(scope) = Scope::of(k.trim(), v) else {
            bail!(
                "thresholds: {:?}: unknown scope {:?} (known: group, meeting, network, phase)",
                shown(key),
                shown(k.trim())
            );
        };
        Ok((figure.trim(), scope))
    }

    /// The scope of key `kind` (`group`, `meeting`, `network`, `phase`)
    /// and `value`; `None` for another key.
    pub fn of(kind: &str, value: &str) -> Option<Scope> {
        let v = value.to_owned();
        Some(match kind {
            "group" => Scope::Group(v),
            "meeting" => Scope::Meeting(v),
            "network" => Scope::Network(v),
            "phase" => Scope::Phase(v),
            _ => return None,
        })
    }
}

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
