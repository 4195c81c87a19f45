//! The capacity search's steps and the behaviour schedule's phases, each
//! judged on its own window of the run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One step of a capacity search.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Step {
    /// Clients running in the step.
    pub clients: usize,
    /// Its start, seconds since the run started.
    pub t_start_s: f64,
    /// Its end.
    pub t_end_s: f64,
    /// Every SLO held, every new client connected, and the generator kept up.
    pub passed: bool,
    /// What broke: SLO verdicts (`audio_latency_p99_ms < 150 (was 180.2)`),
    /// `connect_success_rate >= 1 (built in)`, `generator saturated`.
    pub broken: Vec<String>,
    /// The generator could not keep up in the step (its figures measure this machine).
    pub saturated: bool,
    /// The step's figures: each SLO's, and the usual ones.
    pub figures: BTreeMap<String, Option<f64>>,
    /// Mean CPU cores the server's process used over the step's window
    /// (`server: {pid}`); `null` without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cores: Option<f64>,
}

/// The capacity search's result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SearchReport {
    /// Clients of the first step.
    pub start: usize,
    /// Clients each step added.
    pub step: usize,
    /// The most clients it would try.
    pub max: usize,
    /// Each step's length, seconds.
    pub hold_s: f64,
    /// Participants per meeting.
    pub meeting_size: usize,
    /// The largest step that passed; `null` when the first one broke.
    pub knee: Option<usize>,
    /// What broke first in the first step that broke (`null` when none broke).
    pub first_broken: Option<String>,
    /// `broken` (a step broke), `max` (every step up to `max` passed), or
    /// `stopped` (the run ended before the search did: a signal, `--duration`, an abort).
    pub ended: String,
    /// Every step run, in order.
    pub steps: Vec<Step>,
    /// The server's mean cores in the knee's step; `null` without a knee
    /// or without `server: {pid}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cores_at_knee: Option<f64>,
    /// The knee's clients over the server's cores in its step: how many
    /// participants one server core carried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub participants_per_server_core: Option<f64>,
}

impl SearchReport {
    /// Fills [`SearchReport::server_cores_at_knee`] and
    /// [`SearchReport::participants_per_server_core`] from the steps.
    pub fn server_at_knee(&mut self) {
        let knee = self
            .knee
            .and_then(|k| self.steps.iter().rev().find(|s| s.passed && s.clients == k));
        self.server_cores_at_knee = knee.and_then(|s| s.server_cores);
        self.participants_per_server_core = knee.and_then(|s| {
            let cores = s.server_cores.filter(|c| *c > 0.0)?;
            Some(crate::num::round3(s.clients as f64 / cores))
        });
    }
}

/// One phase of the run (the behaviour schedule's `phases`) and what happened in it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PhaseReport {
    /// Its name (`warm-up`, or `2-arrival_rate`).
    pub name: String,
    /// `constant`, `ramp`, `arrival_rate`, `spike` or `hold`.
    pub kind: String,
    /// Start and end, seconds since the run started.
    pub t_start_s: f64,
    /// End (the run's end when the run stopped inside it).
    pub t_end_s: f64,
    /// Clients connected at its end.
    pub connected_at_end: u64,
    /// Its figures (`joins`, `audio_latency_p99_ms`, …), from its own window.
    pub figures: BTreeMap<String, Option<f64>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn participants_per_server_core_at_the_knee() {
        let step = |clients, passed, cores| Step {
            clients,
            passed,
            server_cores: cores,
            ..Step::default()
        };
        let mut s = SearchReport {
            knee: Some(20),
            steps: vec![
                step(10, true, Some(0.5)),
                step(20, true, Some(0.8)),
                step(30, false, Some(1.9)),
            ],
            ..SearchReport::default()
        };
        s.server_at_knee();
        assert_eq!(s.server_cores_at_knee, Some(0.8));
        assert_eq!(s.participants_per_server_core, Some(25.0));
        // No knee, or no server: nothing at the knee.
        s.knee = None;
        s.server_at_knee();
        assert_eq!(
            (s.server_cores_at_knee, s.participants_per_server_core),
            (None, None)
        );
        s.knee = Some(10);
        s.steps[0].server_cores = None;
        s.server_at_knee();
        assert_eq!(
            (s.server_cores_at_knee, s.participants_per_server_core),
            (None, None)
        );
        // An idle server (0 cores) has no participants per core.
        s.steps[0].server_cores = Some(0.0);
        s.server_at_knee();
        assert_eq!(
            (s.server_cores_at_knee, s.participants_per_server_core),
            (Some(0.0), None)
        );
    }
}
