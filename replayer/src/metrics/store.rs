//! Everything a run measures ([`Metrics`]): every client's counters and
//! the run's timing distributions, shared by the clients, the Prometheus
//! endpoint, the live monitor and the collector.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::client::ClientStats;
use super::hist::{
    Hist, Layout, CONNECT_BUCKETS, JITTER_BUCKETS, LATENCY_BUCKETS, LATENESS_BUCKETS,
};
use super::labels::FailReason;
use super::loop_delay::LoopDelay;
use synth_report::model::Verdict;

/// Everything the run measures.
#[derive(Debug)]
pub struct Metrics {
    /// Per client, in plan order.
    pub clients: Vec<Arc<ClientStats>>,
    /// Connect time of each successful connection.
    pub connect: Hist,
    /// Actual minus scheduled send time of media packets.
    pub lateness: Hist,
    /// One-way latency of received audio (index 0) and video (index 1) from our own senders.
    pub latency: [Hist; 2],
    /// The same from senders in other processes: depends on their clock sync.
    pub cross_host_latency: [Hist; 2],
    /// RFC 3550 interarrival jitter at each received audio and video packet.
    pub jitter: [Hist; 2],
    /// From a key-frame request's arrival to the key frame's send.
    pub keyframe_answer: Hist,
    /// From a client's first packet (or a receiver's join, if later) to
    /// when a peer in this process receives its first packet.
    pub join_visibility: Hist,
    /// From the moment a client went back to the meeting after leaving it on
    /// purpose (churn or storm) to its new session being up.
    pub rejoin: Hist,
    /// Echo time of the RTT probes of `browser` clients: the server's
    /// event loop as a participant feels it (not QUIC's RTT).
    pub server_rtt: Hist,
    /// From a key-frame request a `browser` client sent to the key frame
    /// it asked for.
    pub keyframe_wait: Hist,
    /// Lateness of the event loops' timers (the generator's own health).
    pub loop_delay: Arc<LoopDelay>,
    /// A session with nothing acknowledged for this long is stalled, µs.
    pub stall_after_us: u64,
    /// Failed connection attempts, by [`FailReason`].
    pub connect_failures: [AtomicU64; 4],
    /// Set once the pack is read and the clients are starting.
    pub ready: AtomicBool,
    /// The first reason a client gave up, for the error when none connects.
    pub first_failure: Mutex<Option<String>>,
    /// When the run started.
    pub started: Instant,
    /// Each threshold's last verdict, by name and expression: `true` when it
    /// held. Set by the live checks while the run goes (only those checked
    /// so far) and from the report's verdicts at the end; served as
    /// `synth_threshold_passing`.
    pub thresholds: Mutex<BTreeMap<(String, String), bool>>,
    /// The scores served (`synth_interval_audio_mos`, the participants'
    /// score histograms and verdict counts).
    pub scores: Mutex<ScoreGauges>,
}

/// What `/metrics` serves of the scores: the last timeline interval's
/// audio MOS while the run goes, every participant's scores and verdict
/// once the report has them (at the end).
#[derive(Debug, Default, Clone)]
pub struct ScoreGauges {
    /// The last interval's audio MOS; `None` before the first interval
    /// with audio, or when the last had none.
    pub interval_audio_mos: Option<f64>,
    /// Whether this machine fell behind in the last interval; `None`
    /// before the first.
    pub interval_behind: Option<bool>,
    /// Each scored participant's audio MOS (those who heard audio).
    pub audio_mos: Vec<f64>,
    /// Each scored participant's video score (those who watched video).
    pub video_score: Vec<f64>,
    /// Participants by verdict: green, yellow, red, not measured; `None`
    /// until the run was scored.
    pub verdicts: Option<[u64; 4]>,
}

impl Metrics {
    /// Metrics for `clients` planned clients; a session with nothing
    /// acknowledged for [`crate::config::defaults::STALL_AFTER`] counts as
    /// stalled (see [`Metrics::with_stall_after`]).
    pub fn new(clients: usize) -> Metrics {
        Metrics::laid_out(clients, Layout::default())
    }

    /// The same, each histogram's shards split among `layout`'s groups so
    /// that a group's distributions can be read alone ([`Hist::merged_groups`]).
    pub fn laid_out(clients: usize, layout: Layout) -> Metrics {
        let hist = |bounds, shards| Hist::laid_out(bounds, shards, layout.clone());
        Metrics {
            clients: (0..clients)
                .map(|_| Arc::new(ClientStats::default()))
                .collect(),
            connect: hist(CONNECT_BUCKETS, 4),
            lateness: hist(LATENESS_BUCKETS, 16),
            latency: [hist(LATENCY_BUCKETS, 16), hist(LATENCY_BUCKETS, 16)],
            cross_host_latency: [hist(LATENCY_BUCKETS, 16), hist(LATENCY_BUCKETS, 16)],
            jitter: [hist(JITTER_BUCKETS, 16), hist(JITTER_BUCKETS, 16)],
            keyframe_answer: hist(LATENCY_BUCKETS, 2),
            join_visibility: hist(CONNECT_BUCKETS, 2),
            rejoin: hist(CONNECT_BUCKETS, 2),
            server_rtt: hist(LATENCY_BUCKETS, 4),
            keyframe_wait: hist(CONNECT_BUCKETS, 2),
            loop_delay: Arc::default(),
            stall_after_us: crate::config::defaults::STALL_AFTER.as_micros() as u64,
            connect_failures: Default::default(),
            ready: AtomicBool::new(false),
            first_failure: Mutex::new(None),
            started: Instant::now(),
            thresholds: Mutex::default(),
            scores: Mutex::default(),
        }
    }

    /// The metrics of the clients `members` (plan indices) alone: their
    /// counters (shared, not copied) and what `hist_groups` recorded in the
    /// histograms (none with `None`); the run's start and stall limit. The
    /// run's connect-failure counts are not any client's and stay zero.
    pub fn subset(&self, members: &[usize], hist_groups: Option<&[usize]>) -> Metrics {
        let sub = |h: &Hist| h.subset(hist_groups);
        Metrics {
            clients: members
                .iter()
                .filter_map(|&i| self.clients.get(i).cloned())
                .collect(),
            connect: sub(&self.connect),
            lateness: sub(&self.lateness),
            latency: [sub(&self.latency[0]), sub(&self.latency[1])],
            cross_host_latency: [
                sub(&self.cross_host_latency[0]),
                sub(&self.cross_host_latency[1]),
            ],
            jitter: [sub(&self.jitter[0]), sub(&self.jitter[1])],
            keyframe_answer: sub(&self.keyframe_answer),
            join_visibility: sub(&self.join_visibility),
            rejoin: sub(&self.rejoin),
            server_rtt: sub(&self.server_rtt),
            keyframe_wait: sub(&self.keyframe_wait),
            loop_delay: self.loop_delay.clone(),
            stall_after_us: self.stall_after_us,
            connect_failures: Default::default(),
            ready: AtomicBool::new(self.ready.load(Relaxed)),
            first_failure: Mutex::new(None),
            thresholds: Mutex::default(),
            scores: Mutex::default(),
            started: self.started,
        }
    }

    /// The same metrics with another stall limit.
    pub fn with_stall_after(mut self, stall_after: std::time::Duration) -> Metrics {
        self.stall_after_us = stall_after.as_micros() as u64;
        self
    }

    /// Counts a failed connection attempt.
    pub fn connect_failed(&self, r: FailReason) {
        self.connect_failures[r as usize].fetch_add(1, Relaxed);
    }

    /// Records `verdicts` as each threshold's latest (`synth_threshold_passing`).
    pub fn set_verdicts<'a>(&self, verdicts: impl IntoIterator<Item = &'a Verdict>) {
        // A poisoned lock only means a reader panicked: the map is whole.
        let mut map = self.thresholds.lock().unwrap_or_else(|e| e.into_inner());
        for v in verdicts {
            map.insert((v.name.clone(), v.expr.clone()), v.pass);
        }
    }

    /// Records the last timeline interval's audio MOS
    /// (`synth_interval_audio_mos`).
    pub fn set_interval_audio_mos(&self, mos: Option<f64>) {
        self.score_gauges().interval_audio_mos = mos;
    }

    /// Records whether this machine fell behind in the last timeline
    /// interval (`synth_generator_behind`).
    pub fn set_interval_behind(&self, behind: bool) {
        self.score_gauges().interval_behind = Some(behind);
    }

    /// Records the report's participant scores (their histograms and the
    /// verdict counts).
    pub fn set_scores(&self, scores: &synth_report::model::Scores) {
        use synth_report::score::Band;
        let mut g = self.score_gauges();
        let p = &scores.participants;
        g.audio_mos = p.iter().filter_map(|p| p.audio_mos).collect();
        g.video_score = p.iter().filter_map(|p| p.video_score).collect();
        let mut n = [0u64; 4];
        for p in p {
            n[match p.verdict {
                Some(Band::Green) => 0,
                Some(Band::Yellow) => 1,
                Some(Band::Red) => 2,
                None => 3,
            }] += 1;
        }
        g.verdicts = Some(n);
    }

    /// The scores served, for reading or setting.
    pub fn score_gauges(&self) -> std::sync::MutexGuard<'_, ScoreGauges> {
        // A poisoned lock only means a writer panicked between fields.
        self.scores.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The thresholds' latest verdicts (see [`Metrics::thresholds`]), by
    /// name and expression.
    pub fn verdicts(&self) -> Vec<((String, String), bool)> {
        let map = self.thresholds.lock().unwrap_or_else(|e| e.into_inner());
        map.iter().map(|(k, pass)| (k.clone(), *pass)).collect()
    }

    /// Sums one per-client counter over all clients.
    pub fn sum(&self, f: impl Fn(&ClientStats) -> u64) -> u64 {
        self.clients.iter().map(|c| f(c)).sum()
    }

    /// Clients in each state now, indexed by `State as usize`.
    pub fn states(&self) -> [u64; 8] {
        self.count_states(self.clients.iter())
    }

    /// The same for the clients of `members` (plan indices).
    pub fn states_of(&self, members: &[usize]) -> [u64; 8] {
        self.count_states(members.iter().filter_map(|&i| self.clients.get(i)))
    }

    fn count_states<'a>(&self, clients: impl Iterator<Item = &'a Arc<ClientStats>>) -> [u64; 8] {
        let now = self.started.elapsed().as_micros() as u64;
        let mut n = [0u64; 8];
        for c in clients {
            n[c.state_at(now, self.stall_after_us) as usize] += 1;
        }
        n
    }
}
