//! What [`schedule`](super::schedule) takes: the participants and the specs.

use std::time::Duration;

use super::spec::{ActionSpec, ChurnSpec, ConversationSpec, PhaseSpec, StormSpec};

/// One participant as the schedule sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Its group (index into the config's `groups`).
    pub group: usize,
    /// Its meeting (any number; equal numbers share a meeting).
    pub meeting: usize,
    /// It sends audio.
    pub audio: bool,
    /// It only watches (never a talker).
    pub viewer: bool,
}

/// What [`schedule`](super::schedule) needs.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The participants, in index order.
    pub members: &'a [Member],
    /// Members per group, by group index.
    pub group_sizes: &'a [usize],
    /// Actions by group index (missing groups have none).
    pub group_actions: &'a [Vec<ActionSpec>],
    /// The load shape; empty: every member from `starts[i]` to the end.
    pub phases: &'a [PhaseSpec],
    /// Churn of held participants.
    pub churn: Option<&'a ChurnSpec>,
    /// Reconnect storms.
    pub storms: &'a [StormSpec],
    /// Speaking turns; `None`: everyone with audio talks all the time.
    pub conversation: Option<&'a ConversationSpec>,
    /// Start of each member when there are no phases.
    pub starts: &'a [Duration],
    /// Spacing of joins that a phase makes at once.
    pub ramp_up_delay: Duration,
    /// The run's length: everything is cut here.
    pub end: Duration,
    /// The seed of every random choice.
    pub seed: u64,
}
