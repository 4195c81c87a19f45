//! Meetings that behave like people: the config's load shape (`phases`),
//! `churn`, reconnect `storms`, per-group `actions` and a `conversation`
//! model, turned into one [`Script`] per participant.
//!
//! Pure and sans-IO: [`schedule`] takes the participants ([`Member`]s) and the
//! specs and returns every participant's sessions (when it joins and leaves,
//! and why), its timed [`Action`]s and its speaking intervals. The runtime
//! carries the scripts out. One seed gives one schedule: every random choice
//! comes from a small fixed generator (SplitMix64, the same bits on every
//! machine and release), split into independent streams per concern (each
//! phase, each member's churn, each storm, each group's action, each
//! meeting's turns), so adding a storm does not reshuffle the conversation.
//!
//! The steps, in order:
//! 1. *Presence*: the phases are simulated in time order. Targets of `ramp`,
//!    `constant` and `spike` count the participants those phases brought in
//!    (the *held* participants); `arrival_rate` arrivals come on top of them
//!    and each leaves after its own drawn session length. A target is split
//!    across groups in proportion to their sizes (largest remainders).
//! 2. *Churn* cuts each held presence into sessions with gaps (a tab reload).
//! 3. *Storms* end a share of the connected sessions at once; each comes back
//!    within `spread`.
//! 4. *Actions* and 5. *turns* are drawn against the connected sessions.
//!
//! Everything is cut at the run's end: sessions that would start at or after
//! it are dropped, ends at or after it become `None`, reverts past it go.
//!
//! # Semantics as implemented
//! - `ramp`/`constant`/`spike` targets count *held* participants; arrivals of
//!   `arrival_rate` are on top and do not count toward them (so a `constant`
//!   after an `arrival_rate` does not send arrivals away). Joins take the
//!   lowest free member of the group; leaves pick held members at random.
//! - `ramp_up_delay` spaces joins a phase makes *at once* (`constant`'s jump,
//!   a ramp's move to `from`, a `ramp`/`spike` with `over: 0s`); they must fit
//!   in the phase, else an error says so. A ramp with `over > 0` keeps its own
//!   linear spacing. A ramp's steps that fall within its move to `from` wait
//!   for it. `from` may be left out: the ramp starts from the count there is.
//! - A `spike` must go up (a `to` below the count before it is an error); at
//!   its end the participants it added leave at once.
//! - Churn applies to held presences (and to everyone without phases), not to
//!   arrivals. A rejoin that would fall at or after the presence's end does
//!   not happen. A drawn session or turn is at least 1 ms; draws are whole
//!   microseconds and at most 24 h.
//! - A storm's "connected" are members in a session that started before its
//!   `at` (a storm at 0s drops nobody); `round(share × connected)` drop. The
//!   way back ends where the dropped session would have, with its end cause;
//!   if `at + delay` is past that, there is no way back. `spread: 0s` (a
//!   duration, not the number 0) rejoins at once.
//! - Actions pick among the group's members connected at that instant
//!   (`ceil(share × n)`, at least one when anyone is); they are kept when the
//!   member later leaves.
//! - Talkers are drawn among a meeting's members with audio that are not
//!   viewers; every member gets `speaking: Some(..)` with a conversation
//!   (empty for those who never talk). A turn's talker is cut at the end of
//!   its session. Turn lengths come from a stream of their own, so turns
//!   start at the same instants whoever is present.
//! - Streams: each phase by its index, churn by member index, each storm by
//!   its index, each action by (group, index in the group's list), turns by
//!   meeting number.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::fmt;
use std::time::Duration;

use anyhow::bail;
use serde::Deserialize;

/// Limits that keep a schedule bounded.
pub mod limits {
    use std::time::Duration;
    /// Entries of `phases`.
    pub const PHASES: usize = 1000;
    /// Entries of `storms`.
    pub const STORMS: usize = 1000;
    /// Entries of one group's `actions`.
    pub const ACTIONS: usize = 1000;
    /// Any duration of these specs (and any drawn length).
    pub const DURATION: Duration = Duration::from_secs(24 * 3600);
    /// Sessions in one schedule.
    pub const SESSIONS: usize = 1_000_000;
    /// Sessions of one participant.
    pub const SESSIONS_PER_MEMBER: usize = 100_000;
    /// Timed actions in one schedule (every member's together).
    pub const ACTION_EVENTS: usize = 1_000_000;
    /// Speaking turns in one schedule (every meeting's together).
    pub const TURNS: usize = 10_000_000;
    /// `arrival_rate`'s `rate`, per second.
    pub const RATE: f64 = 10_000.0;
    /// A phase's participant counts (`from`, `to`, `participants`).
    pub const PARTICIPANTS: usize = crate::config::limits::CLIENTS;
    /// A lognormal's `sigma`.
    pub const SIGMA: f64 = 10.0;
    /// Characters of a phase's `name` or an action's `rendition`.
    pub const NAME_CHARS: usize = 100;
    /// The shortest drawn session or turn length: a draw of 0 would make
    /// sessions without end.
    pub const SHORTEST_DRAW: Duration = Duration::from_millis(1);
}

/// `30s`, `1m12s500ms`: a duration as the config writes it, without spaces.
fn show(d: Duration) -> String {
    humantime::format_duration(d).to_string().replace(' ', "")
}

/// Errors unless `d` is at most [`limits::DURATION`].
fn at_most_a_day(field: &str, d: Duration) -> anyhow::Result<()> {
    if d > limits::DURATION {
        bail!(
            "{field} must be at most {}, got {}",
            show(limits::DURATION),
            show(d)
        );
    }
    Ok(())
}

/// Errors unless `x` is in (0, 1].
fn share(field: &str, x: f64) -> anyhow::Result<()> {
    if !(x > 0.0 && x <= 1.0) {
        bail!("{field} must be in (0, 1], got {x}");
    }
    Ok(())
}

// ---------------------------------------------------------------- distributions

/// A distribution of durations: session lengths, rejoin delays, turn lengths.
///
/// Written `{dist: fixed, value: 30s}`, `{dist: uniform, min: 1s, max: 5s}`,
/// `{dist: exponential, mean: 30s}`, `{dist: lognormal, median: 60s, sigma: 0.5}`,
/// or as a bare duration, `30s`, for a fixed one.
#[derive(Debug, Clone, PartialEq)]
pub enum Dist {
    /// Always `value`.
    Fixed(Duration),
    /// Uniform in `[min, max]`.
    Uniform {
        /// Shortest.
        min: Duration,
        /// Longest.
        max: Duration,
    },
    /// Exponential with this mean (memoryless: a Poisson process's gaps).
    Exponential {
        /// Mean.
        mean: Duration,
    },
    /// Log-normal: `median × e^(sigma × N(0, 1))`.
    LogNormal {
        /// Median.
        median: Duration,
        /// Spread of the logarithm (unitless, > 0).
        sigma: f64,
    },
}

/// [`Dist`] as a mapping, tagged by `dist`.
#[derive(Deserialize)]
#[serde(tag = "dist", rename_all = "lowercase", deny_unknown_fields)]
enum DistMap {
    Fixed {
        #[serde(with = "humantime_serde")]
        value: Duration,
    },
    Uniform {
        #[serde(with = "humantime_serde")]
        min: Duration,
        #[serde(with = "humantime_serde")]
        max: Duration,
    },
    Exponential {
        #[serde(with = "humantime_serde")]
        mean: Duration,
    },
    Lognormal {
        #[serde(with = "humantime_serde")]
        median: Duration,
        sigma: f64,
    },
}

impl<'de> Deserialize<'de> for Dist {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Dist;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a duration like 30s, or {dist: fixed|uniform|exponential|lognormal, ...}",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dist, E> {
                humantime::parse_duration(v).map(Dist::Fixed).map_err(|e| {
                    E::custom(format!(
                        "{:?} is not a duration like 30s ({e}); a distribution is \
                         {{dist: fixed|uniform|exponential|lognormal, ...}}",
                        crate::config::shown(v)
                    ))
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, a: A) -> Result<Dist, A::Error> {
                let m = DistMap::deserialize(serde::de::value::MapAccessDeserializer::new(a))?;
                Ok(match m {
                    DistMap::Fixed { value } => Dist::Fixed(value),
                    DistMap::Uniform { min, max } => Dist::Uniform { min, max },
                    DistMap::Exponential { mean } => Dist::Exponential { mean },
                    DistMap::Lognormal { median, sigma } => Dist::LogNormal { median, sigma },
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl fmt::Display for Dist {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Dist::Fixed(v) => write!(f, "fixed {}", show(*v)),
            Dist::Uniform { min, max } => write!(f, "uniform {}..{}", show(*min), show(*max)),
            Dist::Exponential { mean } => write!(f, "exponential, mean {}", show(*mean)),
            Dist::LogNormal { median, sigma } => {
                write!(f, "lognormal, median {}, sigma {sigma}", show(*median))
            }
        }
    }
}

impl Dist {
    /// Checks the parameters; `field` names it in the error (`churn.session`).
    /// `positive`: it must be able to draw more than 0 (a session, a turn).
    pub fn check(&self, field: &str, positive: bool) -> anyhow::Result<()> {
        match *self {
            Dist::Fixed(v) => {
                at_most_a_day(&format!("{field}.value"), v)?;
                if positive && v.is_zero() {
                    bail!("{field}.value must be more than 0");
                }
            }
            Dist::Uniform { min, max } => {
                at_most_a_day(&format!("{field}.max"), max)?;
                if min > max {
                    bail!(
                        "{field}.min ({}) must be at most max ({})",
                        show(min),
                        show(max)
                    );
                }
                if positive && max.is_zero() {
                    bail!("{field}.max must be more than 0");
                }
            }
            Dist::Exponential { mean } => {
                at_most_a_day(&format!("{field}.mean"), mean)?;
                if mean.is_zero() {
                    bail!("{field}.mean must be more than 0");
                }
            }
            Dist::LogNormal { median, sigma } => {
                at_most_a_day(&format!("{field}.median"), median)?;
                if median.is_zero() {
                    bail!("{field}.median must be more than 0");
                }
                if !(sigma > 0.0 && sigma <= limits::SIGMA) {
                    bail!(
                        "{field}.sigma must be > 0 and at most {}, got {sigma}",
                        limits::SIGMA
                    );
                }
            }
        }
        Ok(())
    }

    /// One draw, in whole microseconds, at most [`limits::DURATION`].
    fn sample(&self, rng: &mut Rng) -> Duration {
        let secs = match *self {
            Dist::Fixed(v) => return v,
            Dist::Uniform { min, max } => {
                min.as_secs_f64() + (max - min).as_secs_f64() * rng.unit()
            }
            // Inversion: -mean × ln(U), U in (0, 1].
            Dist::Exponential { mean } => -mean.as_secs_f64() * (1.0 - rng.unit()).ln(),
            Dist::LogNormal { median, sigma } => {
                median.as_secs_f64() * (sigma * rng.normal()).exp()
            }
        };
        let max = limits::DURATION.as_secs_f64();
        Duration::from_micros((secs.clamp(0.0, max) * 1e6).round() as u64)
    }
}

fn default_rejoin() -> Dist {
    Dist::Fixed(Duration::from_secs(2))
}

// ---------------------------------------------------------------- specs

/// One phase of the load shape; phases run in sequence.
///
/// The counts of `ramp`, `constant` and `spike` are of the participants these
/// phases bring in (*held*); `arrival_rate` arrivals come on top.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PhaseSpec {
    /// From `from` to `to` participants, the k-th of the |to − from| changes
    /// at `over × k / |to − from|`. When the count at the ramp's start is not
    /// `from`, it first moves to `from` at once; without `from` the ramp
    /// starts from the count there is.
    Ramp {
        /// Count at the start (informative, see above).
        #[serde(default)]
        from: Option<usize>,
        /// Count at the end.
        to: usize,
        /// Length of the ramp (and of the phase).
        #[serde(with = "humantime_serde")]
        over: Duration,
        /// Name in reports; default `<n>-ramp`.
        #[serde(default)]
        name: Option<String>,
    },
    /// `participants` at once (joins spaced by `ramp_up_delay`), then held.
    Constant {
        /// Count.
        participants: usize,
        /// Length.
        #[serde(rename = "for", with = "humantime_serde")]
        length: Duration,
        /// Name in reports; default `<n>-constant`.
        #[serde(default)]
        name: Option<String>,
    },
    /// Poisson arrivals, `rate` a second; each stays a drawn `session` length.
    ArrivalRate {
        /// Arrivals per second.
        rate: f64,
        /// Length (of the arrivals; their sessions may run on).
        #[serde(rename = "for", with = "humantime_serde")]
        length: Duration,
        /// How long each arrival stays.
        session: Dist,
        /// Name in reports; default `<n>-arrival_rate`.
        #[serde(default)]
        name: Option<String>,
    },
    /// Up to `to` within `over`, held `for`, then at once back to the count
    /// before the spike (the participants it added leave).
    Spike {
        /// Count at the top (at least the count before the spike).
        to: usize,
        /// Rise time.
        #[serde(with = "humantime_serde")]
        over: Duration,
        /// Time at the top.
        #[serde(rename = "for", with = "humantime_serde")]
        length: Duration,
        /// Name in reports; default `<n>-spike`.
        #[serde(default)]
        name: Option<String>,
    },
    /// Changes nothing for a while.
    Hold {
        /// Length.
        #[serde(rename = "for", with = "humantime_serde")]
        length: Duration,
        /// Name in reports; default `<n>-hold`.
        #[serde(default)]
        name: Option<String>,
    },
}

impl PhaseSpec {
    /// The `type:` as written: `ramp`, `constant`, `arrival_rate`, `spike`, `hold`.
    pub fn kind(&self) -> &'static str {
        match self {
            PhaseSpec::Ramp { .. } => "ramp",
            PhaseSpec::Constant { .. } => "constant",
            PhaseSpec::ArrivalRate { .. } => "arrival_rate",
            PhaseSpec::Spike { .. } => "spike",
            PhaseSpec::Hold { .. } => "hold",
        }
    }

    /// Its name: the configured one, else `<i + 1>-<type>`.
    pub fn name(&self, i: usize) -> String {
        let given = match self {
            PhaseSpec::Ramp { name, .. }
            | PhaseSpec::Constant { name, .. }
            | PhaseSpec::ArrivalRate { name, .. }
            | PhaseSpec::Spike { name, .. }
            | PhaseSpec::Hold { name, .. } => name,
        };
        given
            .clone()
            .unwrap_or_else(|| format!("{}-{}", i + 1, self.kind()))
    }

    /// How long it lasts (a spike: `over + for`).
    pub fn length(&self) -> Duration {
        match *self {
            PhaseSpec::Ramp { over, .. } => over,
            PhaseSpec::Spike { over, length, .. } => over.saturating_add(length),
            PhaseSpec::Constant { length, .. }
            | PhaseSpec::ArrivalRate { length, .. }
            | PhaseSpec::Hold { length, .. } => length,
        }
    }

    /// Checks the phase `phases[i]`.
    pub fn check(&self, i: usize) -> anyhow::Result<()> {
        let at = format!("phases[{i}] ({})", self.kind());
        let count = |field: &str, n: usize| -> anyhow::Result<()> {
            if n > limits::PARTICIPANTS {
                bail!(
                    "{at}: {field} must be at most {}, got {n}",
                    limits::PARTICIPANTS
                );
            }
            Ok(())
        };
        let day = |field: &str, d: Duration| at_most_a_day(&format!("{at}: {field}"), d);
        match self {
            PhaseSpec::Ramp { from, to, over, .. } => {
                if let Some(f) = from {
                    count("from", *f)?;
                }
                count("to", *to)?;
                day("over", *over)?;
            }
            PhaseSpec::Constant {
                participants,
                length,
                ..
            } => {
                count("participants", *participants)?;
                day("for", *length)?;
            }
            PhaseSpec::ArrivalRate {
                rate,
                length,
                session,
                ..
            } => {
                if !(*rate > 0.0 && *rate <= limits::RATE) {
                    bail!(
                        "{at}: rate must be > 0 and at most {} per second, got {rate}",
                        limits::RATE
                    );
                }
                day("for", *length)?;
                session
                    .check("session", true)
                    .map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
            }
            PhaseSpec::Spike {
                to, over, length, ..
            } => {
                count("to", *to)?;
                day("over", *over)?;
                day("for", *length)?;
            }
            PhaseSpec::Hold { length, .. } => day("for", *length)?,
        }
        if let PhaseSpec::Ramp { name: Some(n), .. }
        | PhaseSpec::Constant { name: Some(n), .. }
        | PhaseSpec::ArrivalRate { name: Some(n), .. }
        | PhaseSpec::Spike { name: Some(n), .. }
        | PhaseSpec::Hold { name: Some(n), .. } = self
        {
            if n.trim().is_empty() || n.chars().count() > limits::NAME_CHARS {
                bail!(
                    "{at}: name must be 1 to {} characters, got {:?}",
                    limits::NAME_CHARS,
                    crate::config::shown(n)
                );
            }
        }
        Ok(())
    }
}

/// The schedule's length: the phases' lengths summed.
pub fn phases_length(phases: &[PhaseSpec]) -> Duration {
    phases
        .iter()
        .fold(Duration::ZERO, |t, p| t.saturating_add(p.length()))
}

/// `churn:` sessions of held participants end after a drawn length and the
/// same participant rejoins after `rejoin_after` (a tab reload).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChurnSpec {
    /// Length of one session.
    pub session: Dist,
    /// Gap before the rejoin (default: 2 s).
    #[serde(default = "default_rejoin")]
    pub rejoin_after: Dist,
}

impl ChurnSpec {
    /// Checks `churn`.
    pub fn check(&self) -> anyhow::Result<()> {
        self.session.check("churn.session", true)?;
        self.rejoin_after.check("churn.rejoin_after", false)
    }
}

/// One reconnect storm: at `at`, a `share` of the connected participants
/// drop at once and each rejoins within `spread`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StormSpec {
    /// When.
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    /// Share of the connected participants that drop, in (0, 1].
    pub share: f64,
    /// Each rejoins at a uniform moment in `[at, at + spread)` (default 0s: at once).
    #[serde(default, with = "humantime_serde")]
    pub spread: Duration,
}

impl StormSpec {
    /// Checks `storms[i]`.
    pub fn check(&self, i: usize) -> anyhow::Result<()> {
        at_most_a_day(&format!("storms[{i}].at"), self.at)?;
        share(&format!("storms[{i}].share"), self.share)?;
        at_most_a_day(&format!("storms[{i}].spread"), self.spread)
    }
}

fn one() -> f64 {
    1.0
}

/// `conversation:` speaking turns, one or two talkers at a time per meeting.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationSpec {
    /// Share of each meeting's audio participants (not viewers) who ever
    /// take turns, in (0, 1]; at least one per meeting (default 1).
    #[serde(default = "one")]
    pub talkers: f64,
    /// Length of one turn.
    pub turn: Dist,
    /// Probability that a turn has a second simultaneous talker, in [0, 1] (default 0).
    #[serde(default)]
    pub overlap: f64,
}

impl ConversationSpec {
    /// Checks `conversation`.
    pub fn check(&self) -> anyhow::Result<()> {
        share("conversation.talkers", self.talkers)?;
        self.turn.check("conversation.turn", true)?;
        if !(0.0..=1.0).contains(&self.overlap) {
            bail!(
                "conversation.overlap must be in [0, 1], got {}",
                self.overlap
            );
        }
        Ok(())
    }
}

/// What an action does, as written in `do:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Stop sending audio.
    Mute,
    /// Send audio again.
    Unmute,
    /// Stop sending video.
    CameraOff,
    /// Send video again.
    CameraOn,
    /// Start a screen share.
    ScreenShare,
    /// Stop the screen share.
    ScreenShareStop,
    /// Switch the video rendition to `rendition:`.
    Rendition,
}

/// One action of a group: at `at`, `at + every`, … a `share` of the group's
/// connected members do it, and undo it `for` later if set.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    /// First time.
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    /// Repeat period.
    #[serde(default, with = "humantime_serde")]
    pub every: Option<Duration>,
    /// Share of the group's connected members, in (0, 1] (at least one).
    pub share: f64,
    /// What they do.
    #[serde(rename = "do")]
    pub action: ActionKind,
    /// Undo after this long (unmute after mute, camera_on after camera_off,
    /// the previous rendition after rendition, and so on).
    #[serde(default, rename = "for", with = "humantime_serde")]
    pub revert_after: Option<Duration>,
    /// The rendition of `do: rendition`.
    #[serde(default)]
    pub rendition: Option<String>,
}

impl ActionSpec {
    /// Checks `groups[group].actions[j]`.
    pub fn check(&self, group: usize, j: usize) -> anyhow::Result<()> {
        let at = format!("groups[{group}].actions[{j}]");
        at_most_a_day(&format!("{at}.at"), self.at)?;
        if let Some(e) = self.every {
            at_most_a_day(&format!("{at}.every"), e)?;
            if e.is_zero() {
                bail!("{at}.every must be more than 0");
            }
        }
        if let Some(f) = self.revert_after {
            at_most_a_day(&format!("{at}.for"), f)?;
        }
        share(&format!("{at}.share"), self.share)?;
        match (self.action, &self.rendition) {
            (ActionKind::Rendition, None) => {
                bail!("{at}: do: rendition needs `rendition: NAME` (a video track of the pack)")
            }
            (ActionKind::Rendition, Some(r))
                if r.trim().is_empty() || r.chars().count() > limits::NAME_CHARS =>
            {
                bail!(
                    "{at}.rendition must be 1 to {} characters, got {:?}",
                    limits::NAME_CHARS,
                    crate::config::shown(r)
                )
            }
            (ActionKind::Rendition, Some(_)) | (_, None) => {}
            (_, Some(_)) => bail!("{at}: `rendition` goes only with do: rendition"),
        }
        Ok(())
    }

    /// The action at `at` and the one that undoes it.
    fn actions(&self) -> (Action, Action) {
        match self.action {
            ActionKind::Mute => (Action::Mute, Action::Unmute),
            ActionKind::Unmute => (Action::Unmute, Action::Mute),
            ActionKind::CameraOff => (Action::CameraOff, Action::CameraOn),
            ActionKind::CameraOn => (Action::CameraOn, Action::CameraOff),
            ActionKind::ScreenShare => (Action::ScreenShareStart, Action::ScreenShareStop),
            ActionKind::ScreenShareStop => (Action::ScreenShareStop, Action::ScreenShareStart),
            ActionKind::Rendition => (
                Action::Rendition(self.rendition.clone().unwrap_or_default()),
                Action::RenditionRevert,
            ),
        }
    }
}

/// Checks every spec, with the counts' limits: usable when the config is read.
pub fn validate(
    phases: &[PhaseSpec],
    churn: Option<&ChurnSpec>,
    storms: &[StormSpec],
    conversation: Option<&ConversationSpec>,
    group_actions: &[Vec<ActionSpec>],
) -> anyhow::Result<()> {
    if phases.len() > limits::PHASES {
        bail!(
            "phases has {} entries, at most {}",
            phases.len(),
            limits::PHASES
        );
    }
    if storms.len() > limits::STORMS {
        bail!(
            "storms has {} entries, at most {}",
            storms.len(),
            limits::STORMS
        );
    }
    for (i, p) in phases.iter().enumerate() {
        p.check(i)?;
    }
    if let Some(c) = churn {
        c.check()?;
    }
    for (i, s) in storms.iter().enumerate() {
        s.check(i)?;
    }
    if let Some(c) = conversation {
        c.check()?;
    }
    for (g, actions) in group_actions.iter().enumerate() {
        if actions.len() > limits::ACTIONS {
            bail!(
                "groups[{g}].actions has {} entries, at most {}",
                actions.len(),
                limits::ACTIONS
            );
        }
        for (j, a) in actions.iter().enumerate() {
            a.check(g, j)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- output

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

/// What [`schedule`] needs.
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
    fn session_at(&self, t: Duration) -> Option<usize> {
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
        let mut h = Fnv(0xcbf2_9ce4_8422_2325);
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
        h.0
    }
}

/// FNV-1a, 64 bits.
struct Fnv(u64);

impl Fnv {
    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        for &x in b {
            self.0 = (self.0 ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn u64(&mut self, x: u64) {
        for x in x.to_le_bytes() {
            self.0 = (self.0 ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

// ---------------------------------------------------------------- randomness

/// The independent random streams, one per concern.
#[derive(Clone, Copy)]
enum Stream {
    Phase = 1,
    Churn,
    Storm,
    Action,
    TurnLength,
    TurnPick,
}

/// SplitMix64's finaliser: scatters nearby inputs.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64: fixed output on every machine and release (a library
/// generator may change between versions, and with it every schedule).
struct Rng(u64);

impl Rng {
    /// The stream `kind` of `seed`, for the item `path` (a phase's index, a
    /// member's, a group's and an action's).
    fn stream(seed: u64, kind: Stream, path: &[usize]) -> Rng {
        let start = mix(seed ^ mix(kind as u64));
        Rng(path
            .iter()
            .fold(start, |s, &p| mix(s ^ mix((p as u64).wrapping_add(GOLDEN)))))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix(self.0)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Moves `n` uniformly chosen items of `items` to its front (a partial
    /// Fisher–Yates shuffle) and returns them.
    fn choose<'a, T>(&mut self, items: &'a mut [T], n: usize) -> &'a [T] {
        let n = n.min(items.len());
        for j in 0..n {
            let r = j + self.below(items.len() - j);
            items.swap(j, r);
        }
        &items[..n]
    }
}

/// A duration from seconds, in whole microseconds (so schedules do not
/// depend on the last bits of floating point).
fn secs(x: f64) -> Duration {
    Duration::from_micros((x.max(0.0) * 1e6).round() as u64)
}

// ---------------------------------------------------------------- presence

/// A stretch in which a member is present as the phases say (churn and
/// storms then cut it into sessions).
#[derive(Debug, Clone, Copy)]
struct Presence {
    start: Duration,
    end: Option<Duration>,
    /// Joined through ramp/constant/spike (or without phases): churn applies.
    held: bool,
}

/// `n` split across groups in proportion to their sizes, by largest
/// remainders (ties to the lower group), so the parts add up to `n`.
fn split(n: usize, sizes: &[usize]) -> Vec<usize> {
    let total: u128 = sizes.iter().map(|&s| s as u128).sum();
    if total == 0 {
        return vec![0; sizes.len()];
    }
    let exact = |s: usize| n as u128 * s as u128;
    let mut parts: Vec<usize> = sizes.iter().map(|&s| (exact(s) / total) as usize).collect();
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&g| (Reverse(exact(sizes[g]) % total), g));
    let short = n.saturating_sub(parts.iter().sum());
    for &g in order.iter().take(short) {
        parts[g] += 1;
    }
    parts
}

/// The phase being simulated, for errors.
struct Here<'a> {
    i: usize,
    kind: &'static str,
    /// How to fix a pool that runs out.
    fix: &'a str,
}

/// The phases' simulation: who is present, who is free.
struct Pool<'a> {
    members: &'a [Member],
    sizes: &'a [usize],
    /// Free members per group, lowest index first.
    free: Vec<BTreeSet<usize>>,
    /// Held members present per group.
    held: Vec<Vec<usize>>,
    /// Every held join, in order (a spike's added members are its tail).
    joined: Vec<usize>,
    /// Each member's presences; the last is open while it is present.
    presences: Vec<Vec<Presence>>,
    /// Arrivals' departures.
    departures: BinaryHeap<Reverse<(Duration, usize)>>,
    /// Presences made.
    count: usize,
    /// The held target now.
    level: usize,
    /// The time of the last change: changes never go back before it.
    now: Duration,
}

impl<'a> Pool<'a> {
    fn new(members: &'a [Member], sizes: &'a [usize]) -> Pool<'a> {
        let mut free = vec![BTreeSet::new(); sizes.len()];
        for (m, member) in members.iter().enumerate() {
            free[member.group].insert(m);
        }
        Pool {
            members,
            sizes,
            free,
            held: vec![Vec::new(); sizes.len()],
            joined: Vec::new(),
            presences: vec![Vec::new(); members.len()],
            departures: BinaryHeap::new(),
            count: 0,
            level: 0,
            now: Duration::ZERO,
        }
    }

    /// Processes the arrivals' departures up to `t` (inclusive: a member
    /// that leaves at `t` is free for a join at `t`).
    fn advance(&mut self, t: Duration) {
        while let Some(&Reverse((d, m))) = self.departures.peek() {
            if d > t {
                break;
            }
            self.departures.pop();
            self.close(m, d);
        }
    }

    fn close(&mut self, m: usize, t: Duration) {
        let list = &mut self.presences[m];
        match list.last_mut() {
            // Joined and left at one instant (changes that waited for a
            // move to `from`): it never was there.
            Some(p) if p.start == t => {
                list.pop();
                self.count -= 1;
            }
            Some(p) => p.end = Some(t),
            None => {}
        }
        self.free[self.members[m].group].insert(m);
    }

    /// The lowest free member of group `g` becomes present at `t`.
    fn take(&mut self, g: usize, t: Duration, held: bool, here: &Here) -> anyhow::Result<usize> {
        let Some(m) = self.free[g].pop_first() else {
            bail!(
                "phases[{}] ({}) needs {} participants of group {g} at {} but it has {}: raise groups[{g}].count or {}",
                here.i,
                here.kind,
                self.sizes[g] + 1,
                show(t),
                self.sizes[g],
                here.fix
            );
        };
        self.count += 1;
        if self.count > limits::SESSIONS {
            bail!(
                "phases[{}] ({}): the schedule would have more than {} sessions at {}: lower the rate or the counts, or shorten the phases",
                here.i,
                here.kind,
                limits::SESSIONS,
                show(t)
            );
        }
        self.presences[m].push(Presence {
            start: t,
            end: None,
            held,
        });
        Ok(m)
    }

    /// Moves the held participants to `level` at `t` (or at the last
    /// change, if that is later: a ramp's first steps may fall within the
    /// spaced joins of its move to `from`): leaves first (random present
    /// members, or `prefer` first), then joins (lowest free).
    fn set_level(
        &mut self,
        t: Duration,
        level: usize,
        rng: &mut Rng,
        prefer: &mut Vec<usize>,
        here: &Here,
    ) -> anyhow::Result<()> {
        let t = t.max(self.now);
        self.now = t;
        self.advance(t);
        let target = split(level, self.sizes);
        for (g, &want) in target.iter().enumerate() {
            while self.held[g].len() > want {
                // The latest preferred member still here; recent joins are
                // at the end of `held`.
                let mut preferred = None;
                while let Some(p) = prefer.iter().rposition(|&m| self.members[m].group == g) {
                    let m = prefer.remove(p);
                    preferred = self.held[g].iter().rposition(|&x| x == m);
                    if preferred.is_some() {
                        break;
                    }
                }
                let k = match preferred {
                    Some(k) => k,
                    None => rng.below(self.held[g].len()),
                };
                let m = self.held[g].swap_remove(k);
                self.close(m, t);
            }
        }
        for (g, &want) in target.iter().enumerate() {
            while self.held[g].len() < want {
                let m = self.take(g, t, true, here)?;
                self.held[g].push(m);
                self.joined.push(m);
            }
        }
        self.level = level;
        Ok(())
    }
}

/// The phases, simulated: every member's presences.
fn presences(input: &Input) -> anyhow::Result<Vec<Vec<Presence>>> {
    let end = input.end;
    if input.phases.is_empty() {
        return Ok(input
            .starts
            .iter()
            .map(|&start| {
                let p = Presence {
                    start,
                    end: None,
                    held: true,
                };
                if start < end {
                    vec![p]
                } else {
                    Vec::new()
                }
            })
            .collect());
    }
    let mut pool = Pool::new(input.members, input.group_sizes);
    let total: usize = input.group_sizes.iter().sum();
    let mut ps = Duration::ZERO;
    for (i, phase) in input.phases.iter().enumerate() {
        let len = phase.length();
        let pe = ps.saturating_add(len);
        if ps >= end {
            break;
        }
        let mut rng = Rng::stream(input.seed, Stream::Phase, &[i]);
        let here = Here {
            i,
            kind: phase.kind(),
            fix: if matches!(phase, PhaseSpec::ArrivalRate { .. }) {
                "lower the rate"
            } else {
                "lower the phase's count"
            },
        };
        let delay = input.ramp_up_delay;
        // Joins made at once are spaced by `ramp_up_delay` (and must fit in
        // the phase); leaves are at once.
        let at_once = |pool: &mut Pool, rng: &mut Rng, t0: Duration, to: usize| {
            let n = to.saturating_sub(pool.level);
            if n <= 1 || delay.is_zero() {
                return pool.set_level(t0, to, rng, &mut Vec::new(), &here);
            }
            let spread = delay.saturating_mul((n - 1) as u32);
            if t0 + spread > pe {
                bail!(
                    "phases[{i}] ({}): {n} joins spaced by ramp_up_delay {} take {}, longer than the phase ({}): lengthen it or lower ramp_up_delay",
                    here.kind,
                    show(delay),
                    show(spread),
                    show(len)
                );
            }
            for j in 0..n {
                let t = t0 + delay.saturating_mul(j as u32);
                if t >= end {
                    break;
                }
                pool.set_level(t, pool.level + 1, rng, &mut Vec::new(), &here)?;
            }
            Ok(())
        };
        // The k-th of the changes from the level now to `to` at `over × k / n`.
        let linear = |pool: &mut Pool, rng: &mut Rng, over: Duration, to: usize| {
            let from = pool.level;
            let n = from.abs_diff(to);
            for k in 1..=n {
                let t = ps + Duration::from_nanos((over.as_nanos() * k as u128 / n as u128) as u64);
                if t >= end {
                    break;
                }
                let level = if to > from { from + k } else { from - k };
                pool.set_level(t, level, rng, &mut Vec::new(), &here)?;
            }
            Ok::<(), anyhow::Error>(())
        };
        match phase {
            PhaseSpec::Ramp { from, to, over, .. } => {
                if let Some(f) = *from {
                    if f != pool.level {
                        at_once(&mut pool, &mut rng, ps, f)?;
                    }
                }
                if over.is_zero() {
                    at_once(&mut pool, &mut rng, ps, *to)?;
                } else {
                    linear(&mut pool, &mut rng, *over, *to)?;
                }
            }
            PhaseSpec::Constant { participants, .. } => {
                at_once(&mut pool, &mut rng, ps, *participants)?;
            }
            PhaseSpec::Spike { to, over, .. } => {
                let before = pool.level;
                if *to < before {
                    bail!(
                        "phases[{i}] (spike): to {to} is below the {before} participants present when it starts at {}: a spike goes up (use a ramp to go down)",
                        show(ps)
                    );
                }
                let first = pool.joined.len();
                if over.is_zero() {
                    at_once(&mut pool, &mut rng, ps, *to)?;
                } else {
                    linear(&mut pool, &mut rng, *over, *to)?;
                }
                if pe < end {
                    let mut added = pool.joined[first..].to_vec();
                    pool.set_level(pe, before, &mut rng, &mut added, &here)?;
                }
            }
            PhaseSpec::ArrivalRate { rate, session, .. } => {
                let mut x = 0.0;
                loop {
                    x += -(1.0 - rng.unit()).ln() / rate;
                    let t = ps + secs(x);
                    if t >= pe || t >= end {
                        break;
                    }
                    pool.advance(t);
                    let mut r = rng.below(total.max(1));
                    let g = input
                        .group_sizes
                        .iter()
                        .position(|&s| {
                            let hit = r < s;
                            r = r.saturating_sub(s);
                            hit
                        })
                        .unwrap_or(0);
                    let m = pool.take(g, t, false, &here)?;
                    let stay = session.sample(&mut rng).max(limits::SHORTEST_DRAW);
                    pool.departures.push(Reverse((t + stay, m)));
                }
            }
            PhaseSpec::Hold { .. } => {}
        }
        ps = pe;
    }
    // Departures up to the end; those after it run to the end.
    while let Some(&Reverse((d, m))) = pool.departures.peek() {
        if d >= end {
            break;
        }
        pool.departures.pop();
        pool.close(m, d);
    }
    Ok(pool.presences)
}

// ---------------------------------------------------------------- sessions

/// Presences cut into sessions by churn (held ones only) and at the end.
fn sessions(input: &Input, presences: &[Vec<Presence>]) -> anyhow::Result<Vec<Script>> {
    let end = input.end;
    let mut total = 0usize;
    let mut out = Vec::with_capacity(presences.len());
    for (m, list) in presences.iter().enumerate() {
        let mut rng = Rng::stream(input.seed, Stream::Churn, &[m]);
        let mut script = Script::default();
        for p in list.iter().filter(|p| p.start < end) {
            // `None`: it stays to the end of the run.
            let leave = p.end.filter(|&e| e < end);
            let stop = leave.unwrap_or(end);
            let churn = input.churn.filter(|_| p.held);
            let Some(churn) = churn else {
                script.sessions.push(SessionPlan {
                    start: p.start,
                    end: leave,
                    cause: Cause::Join,
                    end_cause: leave.map(|_| EndCause::Leave),
                });
                continue;
            };
            let mut t = p.start;
            let mut cause = Cause::Join;
            loop {
                if script.sessions.len() >= limits::SESSIONS_PER_MEMBER {
                    bail!(
                        "churn.session ({}) gives participant {m} more than {} sessions in {}: lengthen churn.session",
                        churn.session,
                        limits::SESSIONS_PER_MEMBER,
                        show(end)
                    );
                }
                let e = t + churn.session.sample(&mut rng).max(limits::SHORTEST_DRAW);
                if e >= stop {
                    script.sessions.push(SessionPlan {
                        start: t,
                        end: leave,
                        cause,
                        end_cause: leave.map(|_| EndCause::Leave),
                    });
                    break;
                }
                script.sessions.push(SessionPlan {
                    start: t,
                    end: Some(e),
                    cause,
                    end_cause: Some(EndCause::Churn),
                });
                t = e + churn.rejoin_after.sample(&mut rng);
                if t >= stop {
                    break;
                }
                cause = Cause::Rejoin;
            }
        }
        total += script.sessions.len();
        if total > limits::SESSIONS {
            let why = match input.churn {
                Some(c) => format!("churn.session ({}) is short for the run", c.session),
                None => "too many joins".to_owned(),
            };
            bail!(
                "the schedule would have more than {} sessions ({why}): lengthen churn.session, lower the counts or shorten the run",
                limits::SESSIONS
            );
        }
        out.push(script);
    }
    Ok(out)
}

/// The storms, in time order (equal times in the config's order): each ends
/// a share of the sessions connected at its `at` and starts them again.
fn storms(input: &Input, clients: &mut [Script]) -> anyhow::Result<()> {
    let end = input.end;
    let mut order: Vec<usize> = (0..input.storms.len()).collect();
    order.sort_by_key(|&i| (input.storms[i].at, i));
    for i in order {
        let storm = &input.storms[i];
        let at = storm.at;
        if at >= end {
            continue;
        }
        let mut rng = Rng::stream(input.seed, Stream::Storm, &[i]);
        // Connected then: in a session that started before `at`.
        let mut connected: Vec<(usize, usize)> = clients
            .iter()
            .enumerate()
            .filter_map(|(m, c)| {
                let k = c.session_at(at)?;
                (c.sessions[k].start < at).then_some((m, k))
            })
            .collect();
        let n = (storm.share * connected.len() as f64).round() as usize;
        for &(m, k) in rng.choose(&mut connected, n) {
            let sessions = &mut clients[m].sessions;
            let old = sessions[k];
            sessions[k].end = Some(at);
            sessions[k].end_cause = Some(EndCause::Storm);
            let back = at + secs(storm.spread.as_secs_f64() * rng.unit());
            if back < old.end.unwrap_or(end) {
                sessions.insert(
                    k + 1,
                    SessionPlan {
                        start: back,
                        cause: Cause::Storm,
                        ..old
                    },
                );
            }
            if sessions.len() > limits::SESSIONS_PER_MEMBER {
                bail!(
                    "storms give participant {m} more than {} sessions",
                    limits::SESSIONS_PER_MEMBER
                );
            }
        }
    }
    let total: usize = clients.iter().map(|c| c.sessions.len()).sum();
    if total > limits::SESSIONS {
        bail!(
            "with the storms the schedule would have more than {} sessions: fewer storms or a smaller share",
            limits::SESSIONS
        );
    }
    Ok(())
}

/// Each group's actions, against the sessions connected at each instant.
fn actions(input: &Input, clients: &mut [Script]) -> anyhow::Result<()> {
    let end = input.end;
    let mut events = 0usize;
    for (g, specs) in input.group_actions.iter().enumerate() {
        let group: Vec<usize> = (0..input.members.len())
            .filter(|&m| input.members[m].group == g)
            .collect();
        for (j, spec) in specs.iter().enumerate() {
            if spec.at >= end {
                continue;
            }
            if let Some(every) = spec.every {
                let times = (end - spec.at).as_nanos() / every.as_nanos();
                if times >= limits::ACTION_EVENTS as u128 {
                    bail!(
                        "groups[{g}].actions[{j}]: every {} repeats it {times} times in {}, more than {}: raise every",
                        show(every),
                        show(end),
                        limits::ACTION_EVENTS
                    );
                }
            }
            let mut rng = Rng::stream(input.seed, Stream::Action, &[g, j]);
            let (act, undo) = spec.actions();
            let mut t = spec.at;
            while t < end {
                let mut here: Vec<usize> = group
                    .iter()
                    .copied()
                    .filter(|&m| clients[m].present_at(t))
                    .collect();
                // ceil(share × n), at least one when anyone is here; the
                // epsilon keeps 0.3 × 10 at 3.
                let n = ((spec.share * here.len() as f64) - 1e-9).ceil().max(1.0) as usize;
                for &m in rng.choose(&mut here, n) {
                    clients[m].actions.push((t, act.clone()));
                    events += 1;
                    if let Some(back) = spec.revert_after.map(|d| t + d).filter(|&b| b < end) {
                        clients[m].actions.push((back, undo.clone()));
                        events += 1;
                    }
                }
                if events > limits::ACTION_EVENTS {
                    bail!(
                        "groups[{g}].actions[{j}]: the schedule would have more than {} timed actions: lower share or raise every",
                        limits::ACTION_EVENTS
                    );
                }
                match spec.every {
                    Some(every) => t += every,
                    None => break,
                }
            }
        }
    }
    for c in clients {
        // Stable: actions at one instant keep the config's order.
        c.actions.sort_by_key(|&(t, _)| t);
    }
    Ok(())
}

/// Speaking turns, per meeting, against the sessions connected at each turn's start.
fn conversation(
    input: &Input,
    spec: &ConversationSpec,
    clients: &mut [Script],
) -> anyhow::Result<()> {
    let end = input.end;
    let mut meetings: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (m, member) in input.members.iter().enumerate() {
        if member.audio && !member.viewer {
            meetings.entry(member.meeting).or_default().push(m);
        }
    }
    let mut speaking: Vec<Vec<(Duration, Duration)>> = vec![Vec::new(); clients.len()];
    let mut turns = 0usize;
    for (&meeting, eligible) in &meetings {
        let mut lengths = Rng::stream(input.seed, Stream::TurnLength, &[meeting]);
        let mut picks = Rng::stream(input.seed, Stream::TurnPick, &[meeting]);
        let k = ((spec.talkers * eligible.len() as f64).round() as usize).clamp(1, eligible.len());
        let mut talkers = eligible.clone();
        let talkers = picks.choose(&mut talkers, k).to_vec();
        let mut t = Duration::ZERO;
        let mut previous = None;
        while t < end {
            turns += 1;
            if turns > limits::TURNS {
                bail!(
                    "conversation.turn ({}) makes more than {} turns in {}: lengthen conversation.turn",
                    spec.turn,
                    limits::TURNS,
                    show(end)
                );
            }
            let next = t + spec.turn.sample(&mut lengths).max(limits::SHORTEST_DRAW);
            // The same three draws every turn, so one turn's presence does
            // not shift the choices of the next.
            let (u1, u2, u3) = (picks.unit(), picks.unit(), picks.unit());
            let here: Vec<usize> = talkers
                .iter()
                .copied()
                .filter(|&m| clients[m].present_at(t))
                .collect();
            let mut speak = |m: usize| {
                let c = &clients[m];
                let until = c
                    .session_at(t)
                    .and_then(|k| c.sessions[k].end)
                    .unwrap_or(end);
                speaking[m].push((t, next.min(until).min(end)));
            };
            if !here.is_empty() {
                // Someone other than the last talker, when there is one.
                let others: Vec<usize> = here
                    .iter()
                    .copied()
                    .filter(|&m| Some(m) != previous)
                    .collect();
                let from = if others.is_empty() { &here } else { &others };
                let first = from[(u1 * from.len() as f64) as usize];
                speak(first);
                previous = Some(first);
                if here.len() >= 2 && u2 < spec.overlap {
                    let rest: Vec<usize> = here.iter().copied().filter(|&m| m != first).collect();
                    speak(rest[(u3 * rest.len() as f64) as usize]);
                }
            }
            t = next;
        }
    }
    for (c, mut iv) in clients.iter_mut().zip(speaking) {
        iv.sort_unstable();
        let mut merged: Vec<(Duration, Duration)> = Vec::with_capacity(iv.len());
        for (a, b) in iv {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        c.speaking = Some(merged);
    }
    Ok(())
}

/// Every participant's script: sessions from the phases (or `starts`), cut
/// by churn and storms, with actions and speaking turns.
///
/// Errors name the field or the phase: a spec out of bounds, a group whose
/// pool runs out, a schedule past its bounds.
pub fn schedule(input: &Input) -> anyhow::Result<Schedule> {
    validate(
        input.phases,
        input.churn,
        input.storms,
        input.conversation,
        input.group_actions,
    )?;
    if input.group_actions.len() > input.group_sizes.len() {
        bail!(
            "actions for {} groups, but there are {}",
            input.group_actions.len(),
            input.group_sizes.len()
        );
    }
    let mut counted = vec![0usize; input.group_sizes.len()];
    for (m, member) in input.members.iter().enumerate() {
        match counted.get_mut(member.group) {
            Some(n) => *n += 1,
            None => bail!(
                "member {m} is in group {}, but there are {} groups",
                member.group,
                input.group_sizes.len()
            ),
        }
    }
    if let Some(g) = (0..counted.len()).find(|&g| counted[g] != input.group_sizes[g]) {
        bail!(
            "group {g} has {} members but its size is given as {}",
            counted[g],
            input.group_sizes[g]
        );
    }
    if input.phases.is_empty() && input.starts.len() != input.members.len() {
        bail!(
            "{} starts for {} members",
            input.starts.len(),
            input.members.len()
        );
    }
    let presences = presences(input)?;
    let mut clients = sessions(input, &presences)?;
    storms(input, &mut clients)?;
    actions(input, &mut clients)?;
    if let Some(spec) = input.conversation {
        conversation(input, spec, &mut clients)?;
    }
    let mut phases = Vec::with_capacity(input.phases.len());
    let mut t = Duration::ZERO;
    for (i, p) in input.phases.iter().enumerate() {
        let e = t.saturating_add(p.length());
        phases.push(PhaseWindow {
            name: p.name(i),
            kind: p.kind(),
            start: t,
            end: e,
        });
        t = e;
    }
    let mut planned = Planned::default();
    for c in &clients {
        planned.actions += c.actions.len();
        for s in &c.sessions {
            planned.sessions += 1;
            match s.cause {
                Cause::Join => planned.joins += 1,
                Cause::Rejoin => planned.rejoins += 1,
                Cause::Storm => planned.storm_rejoins += 1,
            }
            match s.end_cause {
                Some(EndCause::Leave) => planned.leaves += 1,
                Some(EndCause::Churn) => planned.churn_drops += 1,
                Some(EndCause::Storm) => planned.storm_drops += 1,
                None => {}
            }
        }
    }
    Ok(Schedule {
        clients,
        phases,
        planned,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: f64) -> Duration {
        Duration::from_secs_f64(x)
    }

    /// The specs of a test config, as the owner's config will hold them.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[serde(default)]
        phases: Vec<PhaseSpec>,
        churn: Option<ChurnSpec>,
        #[serde(default)]
        storms: Vec<StormSpec>,
        conversation: Option<ConversationSpec>,
        #[serde(default)]
        actions: Vec<ActionSpec>,
    }

    fn doc(yaml: &str) -> anyhow::Result<Doc> {
        serde_saphyr::from_str(yaml).map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// An owned [`Input`]: groups of members, meetings of `meeting_size` in
    /// index order, everyone with audio, starting at 0, a 60 s run.
    struct Case {
        members: Vec<Member>,
        sizes: Vec<usize>,
        actions: Vec<Vec<ActionSpec>>,
        doc: Doc,
        starts: Vec<Duration>,
        delay: Duration,
        end: Duration,
        seed: u64,
    }

    impl Case {
        fn new(sizes: &[usize], meeting_size: usize, yaml: &str) -> Case {
            let mut members = Vec::new();
            for (g, &n) in sizes.iter().enumerate() {
                for _ in 0..n {
                    members.push(Member {
                        group: g,
                        meeting: members.len() / meeting_size,
                        audio: true,
                        viewer: false,
                    });
                }
            }
            let doc = doc(yaml).unwrap();
            let mut actions = vec![Vec::new(); sizes.len()];
            actions[0] = doc.actions.clone();
            Case {
                starts: vec![Duration::ZERO; members.len()],
                members,
                sizes: sizes.to_vec(),
                actions,
                doc,
                delay: Duration::ZERO,
                end: s(60.0),
                seed: 42,
            }
        }

        fn input(&self) -> Input<'_> {
            Input {
                members: &self.members,
                group_sizes: &self.sizes,
                group_actions: &self.actions,
                phases: &self.doc.phases,
                churn: self.doc.churn.as_ref(),
                storms: &self.doc.storms,
                conversation: self.doc.conversation.as_ref(),
                starts: &self.starts,
                ramp_up_delay: self.delay,
                end: self.end,
                seed: self.seed,
            }
        }

        fn try_run(&self) -> anyhow::Result<Schedule> {
            schedule(&self.input())
        }

        /// The schedule, checked for what every schedule must hold.
        fn run(&self) -> Schedule {
            let out = self.try_run().unwrap();
            for (m, c) in out.clients.iter().enumerate() {
                for w in c.sessions.windows(2) {
                    let e = w[0].end.expect("only the last session runs to the end");
                    assert!(e <= w[1].start, "member {m}: sessions overlap: {w:?}");
                }
                for p in &c.sessions {
                    assert!(p.start < self.end, "member {m}: {p:?} starts after the end");
                    assert!(p.end.is_none_or(|e| p.start < e && e < self.end), "{p:?}");
                    assert_eq!(p.end.is_none(), p.end_cause.is_none(), "{p:?}");
                }
                assert!(c.actions.windows(2).all(|w| w[0].0 <= w[1].0));
            }
            out
        }
    }

    fn present(out: &Schedule, t: Duration) -> usize {
        out.clients.iter().filter(|c| c.present_at(t)).count()
    }

    fn present_in(out: &Schedule, case: &Case, g: usize, t: Duration) -> usize {
        out.clients
            .iter()
            .zip(&case.members)
            .filter(|(c, m)| m.group == g && c.present_at(t))
            .count()
    }

    const EXAMPLE: &str = r#"
phases:
  - {type: ramp, from: 0, to: 20, over: 30s, name: warm-up}
  - {type: constant, participants: 20, for: 60s}
  - {type: arrival_rate, rate: 0.5, for: 60s, session: {dist: exponential, mean: 30s}}
  - {type: spike, to: 40, over: 2s, for: 20s}
  - {type: hold, for: 30s}
churn:
  session: {dist: lognormal, median: 60s, sigma: 0.5}
  rejoin_after: {dist: uniform, min: 1s, max: 5s}
storms:
  - {at: 90s, share: 0.3, spread: 5s}
conversation:
  talkers: 0.5
  turn: {dist: exponential, mean: 6s}
  overlap: 0.1
actions:
  - {at: 20s, every: 60s, share: 0.3, do: mute, for: 15s}
  - {at: 40s, share: 0.1, do: camera_off, for: 20s}
  - {at: 60s, share: 0.05, do: screen_share, for: 30s}
  - {at: 80s, share: 0.5, do: rendition, rendition: video-320x180}
"#;

    #[test]
    fn the_example_parses() {
        let d = doc(EXAMPLE).unwrap();
        assert_eq!(d.phases.len(), 5);
        assert_eq!(
            d.phases[0],
            PhaseSpec::Ramp {
                from: Some(0),
                to: 20,
                over: s(30.0),
                name: Some("warm-up".into())
            }
        );
        assert_eq!(d.phases[0].name(0), "warm-up");
        assert_eq!(d.phases[1].name(1), "2-constant");
        assert_eq!(
            d.phases[2],
            PhaseSpec::ArrivalRate {
                rate: 0.5,
                length: s(60.0),
                session: Dist::Exponential { mean: s(30.0) },
                name: None
            }
        );
        assert_eq!(d.phases[3].length(), s(22.0));
        assert_eq!(phases_length(&d.phases), s(202.0));
        let churn = d.churn.as_ref().unwrap();
        assert_eq!(
            churn.session,
            Dist::LogNormal {
                median: s(60.0),
                sigma: 0.5
            }
        );
        assert_eq!(
            d.storms[0],
            StormSpec {
                at: s(90.0),
                share: 0.3,
                spread: s(5.0)
            }
        );
        assert_eq!(d.conversation.as_ref().unwrap().overlap, 0.1);
        assert_eq!(d.actions[0].revert_after, Some(s(15.0)));
        assert_eq!(d.actions[0].every, Some(s(60.0)));
        assert_eq!(d.actions[2].action, ActionKind::ScreenShare);
        assert_eq!(d.actions[3].rendition.as_deref(), Some("video-320x180"));
        validate(
            &d.phases,
            d.churn.as_ref(),
            &d.storms,
            d.conversation.as_ref(),
            &[d.actions],
        )
        .unwrap();
        // Defaults, and a bare duration as a fixed distribution.
        let d =
            doc("churn: {session: 30s}\nconversation: {turn: 5s}\nstorms: [{at: 1s, share: 1}]")
                .unwrap();
        let churn = d.churn.unwrap();
        assert_eq!(churn.session, Dist::Fixed(s(30.0)));
        assert_eq!(churn.rejoin_after, Dist::Fixed(s(2.0)));
        let c = d.conversation.unwrap();
        assert_eq!((c.talkers, c.overlap), (1.0, 0.0));
        assert_eq!(d.storms[0].spread, Duration::ZERO);
    }

    #[test]
    fn parse_errors_name_the_problem() {
        let cases = [
            (
                "phases: [{type: hold, for: 1s, colour: red}]",
                "unknown field `colour`",
            ),
            ("phases: [{type: plateau, for: 1s}]", "plateau"),
            ("phases: [{type: constant, for: 1s}]", "participants"),
            ("phases: [{type: hold, for: soon}]", "soon"),
            ("churn: {session: {dist: gamma, mean: 1s}}", "gamma"),
            (
                "churn: {session: {dist: fixed, value: 1s, mean: 2s}}",
                "mean",
            ),
            ("churn: {session: soon}", "not a duration like 30s"),
            (
                "churn: {session: 30s, rejoin: 1s}",
                "unknown field `rejoin`",
            ),
            (
                "storms: [{at: 1s, share: 0.5, when: 2s}]",
                "unknown field `when`",
            ),
            ("actions: [{at: 1s, share: 1, do: dance}]", "dance"),
            ("conversation: {turn: 5s, talk: 1}", "unknown field `talk`"),
        ];
        for (yaml, want) in cases {
            let e = doc(yaml).unwrap_err().to_string();
            assert!(e.contains(want), "{yaml}: got {e:?}, want {want:?}");
        }
    }

    #[test]
    fn validation_errors_name_the_field() {
        let cases = [
            (
                "phases: [{type: hold, for: 1s}, {type: hold, for: 1s}, {type: arrival_rate, rate: -1, for: 1s, session: 1s}]",
                "phases[2] (arrival_rate): rate must be > 0 and at most 10000 per second, got -1",
            ),
            (
                "phases: [{type: arrival_rate, rate: 20000, for: 1s, session: 1s}]",
                "rate must be > 0 and at most 10000 per second, got 20000",
            ),
            (
                "phases: [{type: arrival_rate, rate: 1, for: 1s, session: 0s}]",
                "phases[0] (arrival_rate): session.value must be more than 0",
            ),
            (
                "phases: [{type: ramp, to: 200000, over: 1s}]",
                "phases[0] (ramp): to must be at most 100000, got 200000",
            ),
            (
                "phases: [{type: ramp, to: 2, over: 25h}]",
                "phases[0] (ramp): over must be at most 1day, got 1day1h",
            ),
            (
                "phases: [{type: constant, participants: 2, for: 2days}]",
                "phases[0] (constant): for must be at most",
            ),
            (
                "phases: [{type: spike, to: 2, over: 1s, for: 1s, name: ''}]",
                "phases[0] (spike): name must be 1 to 100 characters",
            ),
            ("storms: [{at: 1s, share: 1.5}]", "storms[0].share must be in (0, 1], got 1.5"),
            ("storms: [{at: 1s, share: 0}]", "storms[0].share must be in (0, 1], got 0"),
            ("storms: [{at: 25h, share: 1}]", "storms[0].at must be at most"),
            ("storms: [{at: 1s, share: 1, spread: 25h}]", "storms[0].spread must be at most"),
            (
                "churn: {session: {dist: uniform, min: 5s, max: 1s}}",
                "churn.session.min (5s) must be at most max (1s)",
            ),
            (
                "churn: {session: {dist: exponential, mean: 0s}}",
                "churn.session.mean must be more than 0",
            ),
            (
                "churn: {session: {dist: lognormal, median: 1s, sigma: 0}}",
                "churn.session.sigma must be > 0 and at most 10, got 0",
            ),
            (
                "churn: {session: {dist: lognormal, median: 0s, sigma: 1}}",
                "churn.session.median must be more than 0",
            ),
            (
                "churn: {session: 1s, rejoin_after: 2days}",
                "churn.rejoin_after.value must be at most",
            ),
            ("conversation: {turn: 1s, talkers: 0}", "conversation.talkers must be in (0, 1], got 0"),
            ("conversation: {turn: 1s, overlap: 1.2}", "conversation.overlap must be in [0, 1], got 1.2"),
            ("conversation: {turn: 0s}", "conversation.turn.value must be more than 0"),
            (
                "actions: [{at: 1s, share: 2, do: mute}]",
                "groups[0].actions[0].share must be in (0, 1], got 2",
            ),
            (
                "actions: [{at: 1s, every: 0s, share: 1, do: mute}]",
                "groups[0].actions[0].every must be more than 0",
            ),
            (
                "actions: [{at: 1s, share: 1, do: mute, for: 2days}]",
                "groups[0].actions[0].for must be at most",
            ),
            (
                "actions: [{at: 1s, share: 1, do: rendition}]",
                "groups[0].actions[0]: do: rendition needs `rendition: NAME`",
            ),
            (
                "actions: [{at: 1s, share: 1, do: mute, rendition: x}]",
                "groups[0].actions[0]: `rendition` goes only with do: rendition",
            ),
        ];
        for (yaml, want) in cases {
            let d = doc(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
            let e = validate(
                &d.phases,
                d.churn.as_ref(),
                &d.storms,
                d.conversation.as_ref(),
                &[d.actions],
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains(want), "{yaml}: got {e:?}, want {want:?}");
            assert!(!e.contains('\n'), "one line: {e:?}");
        }
        let many = vec![
            PhaseSpec::Hold {
                length: s(1.0),
                name: None
            };
            1001
        ];
        let e = validate(&many, None, &[], None, &[]).unwrap_err();
        assert_eq!(e.to_string(), "phases has 1001 entries, at most 1000");
        let storm = StormSpec {
            at: s(1.0),
            share: 0.5,
            spread: Duration::ZERO,
        };
        let e = validate(&[], None, &vec![storm; 1001], None, &[]).unwrap_err();
        assert_eq!(e.to_string(), "storms has 1001 entries, at most 1000");
        let action = doc("actions: [{at: 1s, share: 1, do: mute}]")
            .unwrap()
            .actions;
        let e = validate(
            &[],
            None,
            &[],
            None,
            &[vec![], vec![action[0].clone(); 1001]],
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "groups[1].actions has 1001 entries, at most 1000"
        );
    }

    #[test]
    fn same_seed_same_schedule_other_seed_another() {
        let mut case = Case::new(&[30, 30], 6, EXAMPLE);
        case.end = s(200.0);
        let a = case.run();
        let b = case.run();
        assert_eq!(a, b);
        assert_eq!(a.digest(), b.digest());
        assert!(
            a.planned.rejoins > 0 && a.planned.storm_drops > 0,
            "{:?}",
            a.planned
        );
        case.seed = 43;
        let c = case.run();
        assert_ne!(a.clients, c.clients);
        assert_ne!(a.digest(), c.digest());
    }

    #[test]
    fn a_storm_does_not_reshuffle_the_other_streams() {
        let yaml = "churn: {session: {dist: exponential, mean: 20s}}\n\
                    conversation: {talkers: 0.5, turn: {dist: exponential, mean: 3s}, overlap: 0.2}\n\
                    actions: [{at: 5s, every: 10s, share: 0.3, do: mute, for: 3s}]";
        let quiet = Case::new(&[40], 8, yaml);
        let mut stormy = Case::new(&[40], 8, yaml);
        stormy.doc.storms = vec![StormSpec {
            at: s(30.0),
            share: 0.5,
            spread: s(2.0),
        }];
        let (a, b) = (quiet.run(), stormy.run());
        assert!(b.planned.storm_drops > 0);
        let before = |iv: &[(Duration, Duration)]| -> Vec<(Duration, Duration)> {
            iv.iter()
                .filter(|p| p.0 < s(30.0))
                .map(|&(x, y)| (x, y.min(s(30.0))))
                .collect()
        };
        for (x, y) in a.clients.iter().zip(&b.clients) {
            // Turns, actions and churn before the storm are those without it.
            assert_eq!(
                before(x.speaking.as_ref().unwrap()),
                before(y.speaking.as_ref().unwrap())
            );
            let early = |c: &Script| -> Vec<(Duration, Action)> {
                c.actions
                    .iter()
                    .filter(|p| p.0 < s(30.0))
                    .cloned()
                    .collect()
            };
            assert_eq!(early(x), early(y));
            // A member the storm left alone keeps its churn sessions.
            if !y.sessions.iter().any(|p| p.cause == Cause::Storm) {
                assert_eq!(x.sessions, y.sessions);
            }
        }
        // The turn boundaries do not move either: who speaks when anyone does
        // may change, but every turn still starts where it did.
        let starts = |out: &Schedule| -> BTreeSet<Duration> {
            out.clients
                .iter()
                .flat_map(|c| c.speaking.clone().unwrap())
                .map(|p| p.0)
                .filter(|&t| t < s(30.0))
                .collect()
        };
        assert_eq!(starts(&a), starts(&b));
    }

    #[test]
    fn poisson_arrivals() {
        let mut case = Case::new(
            &[200],
            1000,
            "phases: [{type: arrival_rate, rate: 2, for: 600s, session: 1s}]",
        );
        case.end = s(600.0);
        let out = case.run();
        let mut starts: Vec<f64> = out
            .clients
            .iter()
            .flat_map(|c| &c.sessions)
            .map(|p| p.start.as_secs_f64())
            .collect();
        starts.sort_by(f64::total_cmp);
        let n = starts.len() as f64;
        // Poisson(1200): σ = √1200 ≈ 34.6.
        assert!((n - 1200.0).abs() < 4.0 * 1200f64.sqrt(), "{n} arrivals");
        assert_eq!(out.planned.joins, starts.len());
        let gaps: Vec<f64> = std::iter::once(starts[0])
            .chain(starts.windows(2).map(|w| w[1] - w[0]))
            .collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        let cv = var.sqrt() / mean;
        assert!((mean - 0.5).abs() < 0.025, "mean gap {mean}");
        assert!((cv - 1.0).abs() < 0.1, "coefficient of variation {cv}");
        // Each arrival stays its drawn 1 s.
        for p in out.clients.iter().flat_map(|c| &c.sessions) {
            if let Some(e) = p.end {
                assert_eq!(e - p.start, s(1.0));
                assert_eq!(p.end_cause, Some(EndCause::Leave));
            }
        }
    }

    #[test]
    fn arrivals_pick_groups_by_size() {
        let mut case = Case::new(
            &[100, 300],
            10,
            "phases: [{type: arrival_rate, rate: 2, for: 600s, session: 1s}]",
        );
        case.end = s(600.0);
        let out = case.run();
        let per: Vec<usize> = (0..2)
            .map(|g| {
                out.clients
                    .iter()
                    .zip(&case.members)
                    .filter(|(_, m)| m.group == g)
                    .map(|(c, _)| c.sessions.len())
                    .sum()
            })
            .collect();
        let n = (per[0] + per[1]) as f64;
        // Binomial(n, 0.75): σ of the share ≈ 0.0125 at n = 1200.
        let share = per[1] as f64 / n;
        assert!(
            (share - 0.75).abs() < 4.0 * (0.75 * 0.25 / n).sqrt(),
            "{per:?}"
        );
        // Lowest free first: the first members of each group are the busiest.
        let first = out.clients[100].sessions.len();
        let last = out.clients[399].sessions.len();
        assert!(first > 0 && last == 0, "{first} {last}");
    }

    /// Kolmogorov–Smirnov statistic of `xs` against `cdf`.
    fn ks(mut xs: Vec<f64>, cdf: impl Fn(f64) -> f64) -> f64 {
        xs.sort_by(f64::total_cmp);
        let n = xs.len() as f64;
        xs.iter()
            .enumerate()
            .map(|(i, &x)| {
                let f = cdf(x);
                (f - i as f64 / n).abs().max((f - (i + 1) as f64 / n).abs())
            })
            .fold(0.0, f64::max)
    }

    /// erf, Abramowitz and Stegun 7.1.26 (error < 1.5e-7).
    fn erf(x: f64) -> f64 {
        let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
        let y = 1.0
            - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736)
                * t
                + 0.254_829_592)
                * t
                * (-x * x).exp();
        y.copysign(x)
    }

    fn draws(d: &Dist, n: usize) -> Vec<f64> {
        let mut rng = Rng::stream(7, Stream::Churn, &[0]);
        (0..n).map(|_| d.sample(&mut rng).as_secs_f64()).collect()
    }

    #[test]
    fn distributions_have_their_shape() {
        const N: usize = 5000;
        // KS critical value at α = 0.001: 1.95 / √n.
        let critical = 1.95 / (N as f64).sqrt();
        let exp = draws(&Dist::Exponential { mean: s(30.0) }, N);
        let d = ks(exp.clone(), |x| 1.0 - (-x / 30.0).exp());
        assert!(d < critical, "exponential: D = {d}");
        let mean = exp.iter().sum::<f64>() / N as f64;
        assert!((mean - 30.0).abs() < 30.0 * 0.05, "exponential mean {mean}");
        let uni = draws(
            &Dist::Uniform {
                min: s(1.0),
                max: s(5.0),
            },
            N,
        );
        assert!(uni.iter().all(|&x| (1.0..=5.0).contains(&x)));
        let d = ks(uni, |x| ((x - 1.0) / 4.0).clamp(0.0, 1.0));
        assert!(d < critical, "uniform: D = {d}");
        let logn = draws(
            &Dist::LogNormal {
                median: s(60.0),
                sigma: 0.5,
            },
            N,
        );
        let d = ks(logn.clone(), |x| {
            0.5 * (1.0 + erf((x / 60.0).ln() / (0.5 * std::f64::consts::SQRT_2)))
        });
        assert!(d < critical, "lognormal: D = {d}");
        let mut sorted = logn;
        sorted.sort_by(f64::total_cmp);
        let q = |p: f64| sorted[(p * N as f64) as usize];
        assert!((q(0.5) / 60.0 - 1.0).abs() < 0.05, "median {}", q(0.5));
        // The 84th percentile is median × e^σ.
        let spread = (q(0.8413) / q(0.5)).ln();
        assert!((spread - 0.5).abs() < 0.05, "sigma {spread}");
        assert_eq!(draws(&Dist::Fixed(s(3.0)), 3), [3.0; 3]);
        // The test can fail: the exponential is not the uniform.
        let d = ks(draws(&Dist::Exponential { mean: s(3.0) }, N), |x| {
            ((x - 1.0) / 4.0).clamp(0.0, 1.0)
        });
        assert!(d > critical);
    }

    #[test]
    fn ramp_constant_spike_counts() {
        let yaml = "phases:\n\
            - {type: ramp, from: 0, to: 20, over: 20s}\n\
            - {type: constant, participants: 30, for: 10s}\n\
            - {type: spike, to: 50, over: 0s, for: 10s}\n\
            - {type: ramp, to: 10, over: 10s}\n\
            - {type: hold, for: 10s}\n\
            - {type: ramp, from: 25, to: 25, over: 5s}";
        let mut case = Case::new(&[100], 10, yaml);
        case.end = s(65.0);
        let out = case.run();
        let at = |t: f64| present(&out, s(t));
        let want = [
            (0.0, 0),
            (0.99, 0),
            (1.0, 1),
            (10.0, 10),
            (19.99, 19),
            // The ramp's last join and the constant's jump share t = 20.
            (20.0, 30),
            (29.99, 30),
            (30.0, 50),
            (39.99, 50),
            (40.0, 30),
            // 20 leaves in 10 s: one each 0.5 s.
            (44.99, 21),
            (45.0, 20),
            (50.0, 10),
            (59.99, 10),
            // `from` differs from the count: it moves there at once.
            (60.0, 25),
            (64.99, 25),
        ];
        for (t, n) in want {
            assert_eq!(at(t), n, "at {t} s");
        }
        // The spike's own participants leave at its end, and meetings fill in
        // order: the first 30 members are those present after it.
        assert!((0..30).all(|m| out.clients[m].present_at(s(40.0))));
        assert_eq!(out.phases[2].name, "3-spike");
        assert_eq!((out.phases[2].start, out.phases[2].end), (s(30.0), s(40.0)));
        // The ramp down leaves random members, not the last ones.
        let stayed: Vec<usize> = (0..30)
            .filter(|&m| out.clients[m].present_at(s(55.0)))
            .collect();
        assert_eq!(stayed.len(), 10);
        assert_ne!(stayed, (0..10).collect::<Vec<_>>());
        // Joins made at once are spaced by ramp_up_delay.
        case.delay = s(0.1);
        let out = case.run();
        assert_eq!(present(&out, s(20.0)), 21);
        assert_eq!(present(&out, s(20.5)), 26);
        assert_eq!(present(&out, s(21.0)), 30);
        // A ramp's first steps within the spaced joins of its move to `from`
        // wait for them (and no session ends before it starts).
        let mut case = Case::new(
            &[20],
            10,
            "phases: [{type: ramp, from: 10, to: 0, over: 20s}]",
        );
        case.delay = s(1.0);
        case.end = s(21.0);
        let out = case.run();
        assert_eq!(present(&out, s(8.5)), 9);
        assert_eq!(
            present(&out, s(9.0)),
            6,
            "10 joined, the 4 leaves due by 9 s at 9 s"
        );
        assert_eq!(present(&out, s(10.0)), 5);
        assert_eq!(present(&out, s(20.0)), 0);
    }

    #[test]
    fn any_seed_gives_a_well_formed_schedule() {
        let mut case = Case::new(&[50, 30], 5, EXAMPLE);
        case.end = s(202.0);
        case.delay = s(0.05);
        case.members[3].viewer = true;
        for seed in 0..20 {
            case.seed = seed;
            let out = case.run();
            let p = out.planned;
            assert_eq!(p.sessions, p.joins + p.rejoins + p.storm_rejoins);
            // Present counts at the plateaus: 20 held (a storm or churn may
            // have some away), at most 40 at the spike's top.
            assert!(present(&out, s(200.0)) <= 40);
        }
    }

    #[test]
    fn targets_split_across_groups_by_size() {
        assert_eq!(split(10, &[10, 30, 60]), [1, 3, 6]);
        assert_eq!(split(7, &[10, 30, 60]), [1, 2, 4]);
        assert_eq!(split(0, &[10, 30, 60]), [0, 0, 0]);
        assert_eq!(split(3, &[1, 1, 1, 1]), [1, 1, 1, 0]);
        assert_eq!(split(5, &[0, 0]), [0, 0]);
        for n in 0..=100 {
            assert_eq!(split(n, &[13, 29, 58]).iter().sum::<usize>(), n);
        }
        let case = Case::new(
            &[10, 30, 60],
            5,
            "phases: [{type: constant, participants: 7, for: 10s}, {type: ramp, to: 50, over: 10s}]",
        );
        let out = case.run();
        let parts =
            |t: f64| -> Vec<usize> { (0..3).map(|g| present_in(&out, &case, g, s(t))).collect() };
        assert_eq!(parts(5.0), [1, 2, 4]);
        assert_eq!(parts(20.0), [5, 15, 30]);
        // The lowest free members of each group: group 1 starts at member 10.
        assert!(out.clients[10].present_at(s(5.0)) && out.clients[11].present_at(s(5.0)));
        assert!(!out.clients[12].present_at(s(5.0)));
    }

    #[test]
    fn pool_and_phase_errors() {
        let case = Case::new(
            &[5],
            5,
            "phases: [{type: hold, for: 1s}, {type: arrival_rate, rate: 10, for: 60s, session: 60s}]",
        );
        let e = case.try_run().unwrap_err().to_string();
        assert!(
            e.starts_with("phases[1] (arrival_rate) needs 6 participants of group 0 at 1s")
                && e.ends_with("but it has 5: raise groups[0].count or lower the rate"),
            "{e}"
        );
        let case = Case::new(
            &[5],
            5,
            "phases: [{type: constant, participants: 6, for: 1s}]",
        );
        let e = case.try_run().unwrap_err().to_string();
        assert_eq!(
            e,
            "phases[0] (constant) needs 6 participants of group 0 at 0s but it has 5: raise groups[0].count or lower the phase's count"
        );
        let case = Case::new(
            &[5],
            5,
            "phases: [{type: constant, participants: 4, for: 1s}, {type: spike, to: 2, over: 1s, for: 1s}]",
        );
        let e = case.try_run().unwrap_err().to_string();
        assert!(
            e.contains("phases[1] (spike): to 2 is below the 4 participants"),
            "{e}"
        );
        let mut case = Case::new(
            &[50],
            5,
            "phases: [{type: constant, participants: 20, for: 1s}]",
        );
        case.delay = s(0.1);
        let e = case.try_run().unwrap_err().to_string();
        assert_eq!(
            e,
            "phases[0] (constant): 20 joins spaced by ramp_up_delay 100ms take 1s900ms, longer than the phase (1s): lengthen it or lower ramp_up_delay"
        );
    }

    #[test]
    fn no_phases_start_at_the_given_times() {
        let mut case = Case::new(&[3], 3, "{}");
        case.starts = vec![s(0.0), s(1.0), s(70.0)];
        let out = case.run();
        let first: Vec<Option<SessionPlan>> = out
            .clients
            .iter()
            .map(|c| c.sessions.first().copied())
            .collect();
        assert_eq!(
            first[1],
            Some(SessionPlan {
                start: s(1.0),
                end: None,
                cause: Cause::Join,
                end_cause: None
            })
        );
        assert_eq!(first[2], None, "a start past the end is dropped");
        assert!(out.clients[0].speaking.is_none());
        assert!(out.clients[0].speaking_at(s(5.0)) && !out.clients[1].speaking_at(s(0.5)));
        assert_eq!(out.phases, []);
    }

    #[test]
    fn churn_ends_and_rejoins() {
        let case = Case::new(
            &[10],
            10,
            "churn: {session: 10s, rejoin_after: {dist: uniform, min: 1s, max: 3s}}",
        );
        let out = case.run();
        for c in &out.clients {
            assert_eq!(c.sessions[0].cause, Cause::Join);
            for w in c.sessions.windows(2) {
                assert_eq!(w[0].end_cause, Some(EndCause::Churn));
                assert_eq!(w[0].end.unwrap() - w[0].start, s(10.0));
                let gap = w[1].start - w[0].end.unwrap();
                assert!(gap >= s(1.0) && gap <= s(3.0), "{gap:?}");
                assert_eq!(w[1].cause, Cause::Rejoin);
            }
            assert!(
                c.sessions.len() >= 5,
                "60 s of 10 s sessions and short gaps"
            );
        }
        assert_eq!(out.planned.joins, 10);
        // A drop whose rejoin would fall past the end has none.
        let unanswered = out.planned.churn_drops - out.planned.rejoins;
        assert!(unanswered <= 10, "{:?}", out.planned);
        // Arrivals keep their own length: churn does not cut them.
        let mut case = Case::new(
            &[50],
            50,
            "phases: [{type: arrival_rate, rate: 1, for: 30s, session: 20s}]\nchurn: {session: 1s}",
        );
        case.end = s(30.0);
        let out = case.run();
        assert_eq!(out.planned.rejoins, 0);
        // A tiny session length is refused, naming the cause.
        let mut case = Case::new(&[1], 1, "churn: {session: 1ms, rejoin_after: 0s}");
        case.end = s(3600.0);
        let e = case.try_run().unwrap_err().to_string();
        assert!(
            e.starts_with(
                "churn.session (fixed 1ms) gives participant 0 more than 100000 sessions"
            ),
            "{e}"
        );
    }

    #[test]
    fn storm_drops_a_share_and_they_come_back() {
        let case = Case::new(&[100], 10, "storms: [{at: 30s, share: 0.3, spread: 5s}]");
        let out = case.run();
        assert_eq!(out.planned.storm_drops, 30);
        assert_eq!(out.planned.storm_rejoins, 30);
        assert_eq!(present(&out, s(29.99)), 100);
        assert!(present(&out, s(30.0)) >= 70 && present(&out, s(30.0)) < 100);
        assert_eq!(present(&out, s(35.0)), 100);
        for c in out.clients.iter().filter(|c| c.sessions.len() > 1) {
            assert_eq!(c.sessions[0].end, Some(s(30.0)));
            assert_eq!(c.sessions[0].end_cause, Some(EndCause::Storm));
            let back = c.sessions[1];
            assert_eq!(back.cause, Cause::Storm);
            assert!(back.start >= s(30.0) && back.start < s(35.0));
            assert_eq!(back.end, None, "it goes on as the old session would have");
        }
        // With churn: a share of those connected at `at`, not of everyone.
        let churny = "churn: {session: {dist: exponential, mean: 10s}, rejoin_after: 5s}";
        let calm = Case::new(&[100], 10, churny);
        let connected = calm
            .run()
            .clients
            .iter()
            .filter(|c| {
                c.session_at(s(30.0))
                    .is_some_and(|k| c.sessions[k].start < s(30.0))
            })
            .count();
        assert!(connected < 100);
        let stormy = Case::new(
            &[100],
            10,
            &format!("{churny}\nstorms: [{{at: 30s, share: 0.5}}]"),
        );
        let out = stormy.run();
        assert_eq!(
            out.planned.storm_drops,
            (connected as f64 * 0.5).round() as usize
        );
    }

    #[test]
    fn actions_share_every_and_revert() {
        let yaml = "actions:\n\
            - {at: 10s, every: 20s, share: 0.3, do: mute, for: 5s}\n\
            - {at: 15s, share: 0.01, do: rendition, rendition: video-320x180}\n\
            - {at: 55s, share: 0.25, do: camera_off, for: 10s}";
        let case = Case::new(&[20], 20, yaml);
        let out = case.run();
        let count = |t: f64, a: &Action| {
            out.clients
                .iter()
                .filter(|c| c.actions.contains(&(s(t), a.clone())))
                .count()
        };
        for t in [10.0, 30.0, 50.0] {
            assert_eq!(count(t, &Action::Mute), 6, "at {t}");
            assert_eq!(count(t + 5.0, &Action::Unmute), 6, "at {t} + 5");
        }
        assert_eq!(count(70.0, &Action::Mute), 0);
        // At least one, and no revert without `for`.
        assert_eq!(count(15.0, &Action::Rendition("video-320x180".into())), 1);
        assert!(out
            .clients
            .iter()
            .all(|c| !c.actions.iter().any(|a| a.1 == Action::RenditionRevert)));
        // ceil(0.25 × 20) = 5; the revert at 65 s is past the end.
        assert_eq!(count(55.0, &Action::CameraOff), 5);
        assert_eq!(out.planned.actions, 3 * 12 + 1 + 5);
        for c in &out.clients {
            for w in c.actions.windows(2) {
                if w[0].1 == Action::Mute {
                    assert_eq!(w[1], (w[0].0 + s(5.0), Action::Unmute));
                }
            }
        }
        // Only members connected at that instant are picked.
        let mut case = Case::new(
            &[20],
            20,
            "phases: [{type: ramp, to: 20, over: 20s}]\nactions: [{at: 5s, every: 5s, share: 1, do: screen_share, for: 1s}]",
        );
        case.end = s(20.0);
        let out = case.run();
        for t in [5.0, 10.0, 15.0] {
            let got: Vec<usize> = (0..20)
                .filter(|&m| {
                    out.clients[m]
                        .actions
                        .contains(&(s(t), Action::ScreenShareStart))
                })
                .collect();
            assert_eq!(got, (0..t as usize).collect::<Vec<_>>(), "at {t}");
        }
        let case = Case::new(
            &[2],
            2,
            "actions: [{at: 0s, every: 1us, share: 1, do: mute}]",
        );
        let e = case.try_run().unwrap_err().to_string();
        assert!(
            e.starts_with("groups[0].actions[0]: every 1us repeats it"),
            "{e}"
        );
    }

    /// Members speaking at `t` in each meeting.
    fn talking(out: &Schedule, case: &Case, t: Duration) -> BTreeMap<usize, usize> {
        let mut n = BTreeMap::new();
        for (c, m) in out.clients.iter().zip(&case.members) {
            if c.speaking_at(t) {
                *n.entry(m.meeting).or_insert(0) += 1;
            }
        }
        n
    }

    #[test]
    fn conversation_turns() {
        let yaml =
            "conversation: {talkers: 0.5, turn: {dist: exponential, mean: 2s}, overlap: 0.3}";
        let mut case = Case::new(&[24], 6, yaml);
        case.members[5].viewer = true;
        case.members[4].audio = false;
        let out = case.run();
        let mut doubles = 0;
        for k in 0..6000 {
            let per = talking(&out, &case, s(k as f64 * 0.01));
            assert!(per.values().all(|&n| n <= 2), "{per:?}");
            doubles += per.values().filter(|&&n| n == 2).count();
        }
        assert!(doubles > 0, "overlap 0.3 makes some turns of two");
        for meeting in 0..4 {
            let members = meeting * 6..meeting * 6 + 6;
            let talkers = members
                .clone()
                .filter(|&m| !out.clients[m].speaking.as_ref().unwrap().is_empty())
                .count();
            // Half of 6 audio members, or of 4 in the meeting with a viewer
            // and a member without audio.
            assert_eq!(talkers, 3 - usize::from(meeting == 0), "meeting {meeting}");
        }
        assert!(out.clients[4].speaking.as_ref().unwrap().is_empty());
        assert!(out.clients[5].speaking.as_ref().unwrap().is_empty());
        // Overlap 0: one at a time, and the turns cover the whole run.
        let case = Case::new(
            &[12],
            6,
            "conversation: {talkers: 1, turn: {dist: uniform, min: 1s, max: 3s}}",
        );
        let out = case.run();
        for meeting in 0..2 {
            let mut all: Vec<(Duration, Duration)> = (meeting * 6..meeting * 6 + 6)
                .flat_map(|m| out.clients[m].speaking.clone().unwrap())
                .collect();
            all.sort();
            assert_eq!(all[0].0, Duration::ZERO);
            assert_eq!(all.last().unwrap().1, case.end);
            for w in all.windows(2) {
                assert_eq!(w[0].1, w[1].0, "one talker at a time, back to back");
            }
            // Someone other than the last talker: no talker has two turns in
            // a row, so no merged interval is longer than one turn.
            assert!(all.iter().all(|&(a, b)| b - a <= s(3.0)));
        }
    }

    #[test]
    fn talkers_follow_presence() {
        // One talker left alone speaks turn after turn; nobody present: silence.
        let mut case = Case::new(&[2], 2, "conversation: {turn: 1s}");
        case.starts = vec![s(10.0), s(70.0)];
        let out = case.run();
        assert_eq!(out.clients[0].speaking, Some(vec![(s(10.0), s(60.0))]));
        assert_eq!(out.clients[1].speaking, Some(vec![]));
        assert!(!out.clients[0].speaking_at(s(5.0)) && out.clients[0].speaking_at(s(30.0)));
    }

    #[test]
    fn arrivals_past_the_end_run_to_it() {
        let mut case = Case::new(
            &[100],
            100,
            "phases: [{type: arrival_rate, rate: 1, for: 60s, session: 100s}]",
        );
        case.end = s(30.0);
        let out = case.run();
        let all: Vec<&SessionPlan> = out.clients.iter().flat_map(|c| &c.sessions).collect();
        assert!(!all.is_empty());
        assert!(all.iter().all(|p| p.end.is_none() && p.start < s(30.0)));
        assert_eq!(out.planned.leaves, 0);
        assert_eq!(out.phases[0].end, s(60.0), "windows stay as configured");
    }
}
