//! What the config writes: the load shape (`phases`), `churn`, `storms`, the
//! `conversation` and each group's `actions`, as serde types, with the checks
//! that keep them within [`limits`](super::limits).

use std::fmt;
use std::time::Duration;

use anyhow::bail;
use serde::Deserialize;

use super::limits;
use super::rng::Rng;

/// `30s`, `1m12s500ms`: a duration as the config writes it, without spaces.
pub(super) fn show(d: Duration) -> String {
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
    pub(super) fn sample(&self, rng: &mut Rng) -> Duration {
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
