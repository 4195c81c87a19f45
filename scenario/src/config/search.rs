//! The capacity search: the file's `search:` checked into a [`Search`] (its
//! steps, when each client starts, the SLO judged on each step's window), and
//! the one group its clients are made from.

use std::time::Duration;

use anyhow::{bail, Context};

use synth_report::threshold::Threshold;

use super::defaults;
use super::file::{GroupSpec, Role, SearchSpec};
use super::limits::{self, bounded};
use super::overrides::Overrides;

/// The resolved capacity search.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    /// Clients of the first step.
    pub start: usize,
    /// Clients each further step adds.
    pub step: usize,
    /// The most clients to try.
    pub max: usize,
    /// Each step's length, counted from its start (its verdict may wait up
    /// to `connect_timeout` more for its clients to connect or fail).
    pub hold: Duration,
    /// Participants per meeting.
    pub meeting_size: usize,
    /// What must hold in every step (checked on the step's own window).
    pub slo: Vec<Threshold>,
    /// A saturated generator does not break a step.
    pub ignore_saturation: bool,
}

impl Search {
    /// Number of steps: the first, then one per `step` up to `max`.
    pub fn steps(&self) -> usize {
        1 + (self.max - self.start).div_ceil(self.step)
    }

    /// Clients running in step `k` (0-based).
    pub fn clients_at(&self, k: usize) -> usize {
        (self.start + k * self.step).min(self.max)
    }

    /// The step client `i` (0-based) joins in.
    pub fn step_of(&self, i: usize) -> usize {
        if i < self.start {
            0
        } else {
            1 + (i - self.start) / self.step
        }
    }

    /// When client `i` starts: its step's start, plus `ramp` per client
    /// before it in the same step.
    pub fn start_of(&self, i: usize, ramp: Duration) -> Duration {
        let k = self.step_of(i);
        let within = if k == 0 {
            i
        } else {
            (i - self.start) % self.step
        };
        self.hold.saturating_mul(k as u32) + ramp.saturating_mul(within as u32)
    }
}

/// The `search` section, checked.
pub(super) fn search(
    spec: &SearchSpec,
    has_clients: bool,
    ramp_up_delay_ms: Option<u64>,
    o: &Overrides,
) -> anyhow::Result<Search> {
    if has_clients {
        bail!("search makes its own clients: remove `clients:` and `groups:` from the config");
    }
    if o.clients_per_pod.is_some() {
        bail!("CLIENTS_PER_POD cannot be used with search (search.max sets the clients)");
    }
    if spec.start == 0 || spec.step == 0 {
        bail!("search.start and search.step must be at least 1");
    }
    if spec.max < spec.start {
        bail!(
            "search.max {} is less than search.start {}",
            spec.max,
            spec.start
        );
    }
    if spec.max > limits::CLIENTS {
        bail!("search.max {} is more than {}", spec.max, limits::CLIENTS);
    }
    if spec.meeting_size == 0 {
        bail!("search.meeting_size must be at least 1");
    }
    let hold = bounded("search.hold", spec.hold)?;
    let se = Search {
        start: spec.start,
        step: spec.step,
        max: spec.max,
        hold,
        meeting_size: spec.meeting_size,
        slo: Vec::new(),
        ignore_saturation: spec.ignore_saturation,
    };
    if se.steps() > limits::SEARCH_STEPS {
        bail!(
            "search from {} to {} by {} makes {} steps, more than {}",
            spec.start,
            spec.max,
            spec.step,
            se.steps(),
            limits::SEARCH_STEPS
        );
    }
    let ramp = Duration::from_millis(ramp_up_delay_ms.unwrap_or(defaults::RAMP_UP_DELAY_MS));
    let longest = ramp.saturating_mul(spec.start.max(spec.step) as u32);
    if longest.saturating_mul(2) > hold {
        bail!(
            "search.hold {} is too short: starting {} clients at ramp_up_delay_ms {} takes {}; hold at least twice that, or lower ramp_up_delay_ms",
            humantime::format_duration(hold),
            spec.start.max(spec.step),
            ramp.as_millis(),
            humantime::format_duration(longest)
        );
    }
    let mut slo = Vec::with_capacity(spec.slo.len());
    for (name, expr) in &spec.slo {
        let t = Threshold::parse(name, expr).context("search.slo")?;
        if t.scope != synth_report::threshold::Scope::Run || t.share.is_some() {
            bail!("search.slo.{name}: a step's SLOs are the whole step's figures (no scopes or shares; put those in `thresholds`)");
        }
        if !synth_report::figure::is_live(name) {
            bail!(
                "search.slo.{name}: a step is judged on its own window, and {name} is only known at the end of a run (use one of: the latency, cross-host latency and jitter percentiles, {})",
                synth_report::figure::live_names()
            );
        }
        slo.push(t);
    }
    Ok(Search { slo, ..se })
}

/// The search's clients, as one group of `search.max`.
pub(super) fn search_group(spec: &SearchSpec) -> GroupSpec {
    GroupSpec {
        name: None,
        count: spec.max,
        user_id: spec.user_id.clone(),
        meeting_id: spec.meeting_id.clone(),
        meeting_size: spec
            .meeting_id
            .contains("{meeting")
            .then_some(spec.meeting_size),
        enable_audio: spec.enable_audio,
        enable_video: spec.enable_video,
        rendition: spec.rendition.clone(),
        network: None,
        adapt: false,
        simulcast: false,
        view: None,
        role: Role::Participant,
        actions: Vec::new(),
        client_profile: None,
    }
}
