//! What a schedule is: one [`Script`] per participant (its sessions, its
//! timed actions, when it speaks), the phases' windows and the counts.

use std::time::Duration;

use super::rng::Fnv;

/// Every participant's script, and what the schedule holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// One script per member, in index order.
    pub clients: Vec<Script>,
    /// The phases' windows, in order (also those past the end of the run).
    pub phases: Vec<PhaseWindow>,
    /// Counts of the schedule's sessions.
    pub planned: Planned,
}

/// One phase in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseWindow {
    /// Its name (configured, or `<n>-<type>`).
    pub name: String,
    /// Its `type:`.
    pub kind: &'static str,
    /// Start, after the run's start.
    pub start: Duration,
    /// End.
    pub end: Duration,
}

/// Counts in the schedule (after the cut at the run's end).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Planned {
    /// Sessions that are a first join or a fresh arrival.
    pub joins: usize,
    /// Sessions that end because the participant leaves.
    pub leaves: usize,
    /// Sessions that are a churn rejoin.
    pub rejoins: usize,
    /// Sessions ended by a storm.
    pub storm_drops: usize,
    /// Sessions that are a rejoin after a storm.
    pub storm_rejoins: usize,
    /// Sessions ended by churn.
    pub churn_drops: usize,
    /// Sessions in all.
    pub sessions: usize,
    /// Timed actions in all.
    pub actions: usize,
}

/// What one participant does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Script {
    /// Its sessions, sorted, never overlapping.
    pub sessions: Vec<SessionPlan>,
    /// Timed actions, in time order (kept when the member is away: the
    /// runtime applies the state on its next session).
    pub actions: Vec<(Duration, Action)>,
    /// When it speaks: sorted, merged `[start, end)` intervals; `None`
    /// without a conversation (it talks whenever it is connected).
    pub speaking: Option<Vec<(Duration, Duration)>>,
}

/// One session: a connection from `start` to `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPlan {
    /// When it connects.
    pub start: Duration,
    /// When it leaves; `None`: at the end of the run.
    pub end: Option<Duration>,
    /// Why it connects.
    pub cause: Cause,
    /// Why it ends; `None` with `end: None`.
    pub end_cause: Option<EndCause>,
}

/// Why a session starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// A first session, or a fresh join or arrival of a free member.
    Join,
    /// Back after churn.
    Rejoin,
    /// Back after a storm.
    Storm,
}

/// Why a session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndCause {
    /// The participant leaves (a ramp down, a spike's end, an arrival's session).
    Leave,
    /// Churn: it comes back after `rejoin_after`.
    Churn,
    /// A storm dropped it.
    Storm,
}

/// A timed action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Stop sending audio.
    Mute,
    /// Send audio again.
    Unmute,
    /// Stop sending video.
    CameraOff,
    /// Send video again.
    CameraOn,
    /// Start a screen share.
    ScreenShareStart,
    /// Stop the screen share.
    ScreenShareStop,
    /// Switch the video to this rendition.
    Rendition(String),
    /// Back to the rendition before the last switch.
    RenditionRevert,
}

impl Script {
    /// The index of the session connected at `t`.
    pub(super) fn session_at(&self, t: Duration) -> Option<usize> {
        let i = self
            .sessions
            .partition_point(|s| s.start <= t)
            .checked_sub(1)?;
        self.sessions[i].end.is_none_or(|e| t < e).then_some(i)
    }

    /// It is connected at `t` (in a session, not between two).
    pub fn present_at(&self, t: Duration) -> bool {
        self.session_at(t).is_some()
    }

    /// It is connected and speaking at `t` (without a conversation: whenever connected).
    pub fn speaking_at(&self, t: Duration) -> bool {
        self.present_at(t)
            && self.speaking.as_ref().is_none_or(|iv| {
                let i = iv.partition_point(|&(a, _)| a <= t);
                i > 0 && t < iv[i - 1].1
            })
    }
}

impl Schedule {
    /// A hash of the whole schedule (FNV-1a, the same on every machine), for
    /// reports: two runs with equal digests ran the same schedule.
    pub fn digest(&self) -> u64 {
        let mut h = Fnv::new();
        let nanos = |d: Duration| d.as_nanos() as u64;
        for p in &self.phases {
            h.bytes(p.name.as_bytes());
            h.bytes(p.kind.as_bytes());
            h.u64(nanos(p.start));
            h.u64(nanos(p.end));
        }
        for c in &self.clients {
            h.u64(c.sessions.len() as u64);
            for s in &c.sessions {
                h.u64(nanos(s.start));
                h.u64(s.end.map_or(u64::MAX, nanos));
                h.u64(s.cause as u64);
                h.u64(s.end_cause.map_or(9, |e| e as u64));
            }
            h.u64(c.actions.len() as u64);
            for (t, a) in &c.actions {
                h.u64(nanos(*t));
                let (tag, name) = match a {
                    Action::Mute => (0, ""),
                    Action::Unmute => (1, ""),
                    Action::CameraOff => (2, ""),
                    Action::CameraOn => (3, ""),
                    Action::ScreenShareStart => (4, ""),
                    Action::ScreenShareStop => (5, ""),
                    Action::Rendition(r) => (6, r.as_str()),
                    Action::RenditionRevert => (7, ""),
                };
                h.u64(tag);
                h.bytes(name.as_bytes());
            }
            match &c.speaking {
                None => h.u64(u64::MAX),
                Some(iv) => {
                    h.u64(iv.len() as u64);
                    for &(a, b) in iv {
                        h.u64(nanos(a));
                        h.u64(nanos(b));
                    }
                }
            }
        }
        h.finish()
    }
}
