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
