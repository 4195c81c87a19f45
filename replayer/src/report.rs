//! The run report: a readable summary on stdout and a versioned JSON document
//! (schema: `docs/report-schema.json`).
//!
//! Built once at the end of a run (also when it was stopped by a signal) from
//! the [`Metrics`], the plan and the pack. Percentiles come from HdrHistograms.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use anyhow::Context as _;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use synth_common::quality::{Exact, Freezes};

use crate::health::Health;
use crate::live::SearchReport;
use crate::metrics::{ClientStats, Media, Metrics, PeerView, Process, State, REASONS};
use crate::plan::ClientPlan;
use crate::threshold::{Threshold, Verdict};
use crate::timeline::{Event, Timeline};

/// Version of the JSON layout; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 3;

/// The `schema` field of every report.
pub const SCHEMA: &str = "synth-replay-report";

/// The whole report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// [`SCHEMA_VERSION`].
    pub version: u32,
    /// The server the clients talked to (`embedded relay` included in the text).
    pub server: String,
    /// Pack path.
    pub pack: String,
    /// Wall time of the run, seconds.
    pub elapsed_s: f64,
    /// `"duration"` when the run ended on time, `"signal"` when stopped.
    pub stopped_by: StopReason,
    /// Client counts.
    pub clients: Clients,
    /// Connect time percentiles (ms).
    pub connect_ms: Percentiles,
    /// Failed attempts by reason.
    pub connect_failures: BTreeMap<String, u64>,
    /// Audio figures.
    pub audio: MediaReport,
    /// Video figures.
    pub video: MediaReport,
    /// Heartbeats sent and received.
    pub heartbeats: Counts,
    /// What the server told the clients: CONGESTION, key-frame requests,
    /// participants joining and leaving.
    pub server_signals: Signals,
    /// Actual minus scheduled send time of media packets (ms).
    pub send_lateness_ms: Percentiles,
    /// Whether this process kept its schedule; when `saturated`, the figures
    /// describe this machine as much as the server.
    pub generator: Health,
    /// This process's cost.
    pub process: ProcessReport,
    /// Per-meeting breakdown.
    pub meetings: Vec<Meeting>,
    /// Each threshold with its verdict.
    pub thresholds: Vec<Verdict>,
    /// The threshold (with `abort_on_fail`) that ended the run early, as
    /// its verdict line; `null` when none did.
    #[serde(default)]
    pub aborted: Option<String>,
    /// True when every threshold holds, no threshold aborted the run, and a
    /// capacity search found a step that passed.
    pub passed: bool,
    /// The run over time: one sample per `timeline_interval`, then one for
    /// the end (`null` in reports merged from reports without one).
    #[serde(default)]
    pub timeline: Option<Timeline>,
    /// What happened when: thresholds failing and recovering, an abort,
    /// search steps.
    #[serde(default)]
    pub events: Vec<Event>,
    /// The capacity search, when the config had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchReport>,
    /// The reports this one was merged from (`report merge`), else empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<String>,
    /// Per group with a `network`: what the impairment did and what QUIC
    /// saw ([`crate::netem::report`]); absent when no group has one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<crate::netem::NetworkReport>,
    /// The clients that adapt their rendition (`adapt: true`): their
    /// switches and time per rendition; absent when none adapts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adaptation: Option<Adaptation>,
    /// The seed of every random choice of the run (`seed` in the config).
    #[serde(default)]
    pub seed: Option<u64>,
    /// How the participants behaved (phases, churn, storms, turns,
    /// actions, screen shares, viewers); absent without a behaviour section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behaviour: Option<Behaviour>,
}

/// Joins, leaves, rejoins and storm drops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Sessions {
    /// Planned sessions that came up as a join: a first session, or an
    /// arrival of a participant free again.
    pub joins: u64,
    /// Sessions ended on purpose (leaving, churn, storms).
    pub leaves: u64,
    /// Planned sessions that came up as a way back after churn or a storm.
    pub rejoins: u64,
    /// Sessions a storm dropped.
    pub storm_drops: u64,
}

impl Sessions {
    /// Adds another pod's counts.
    pub fn add(&mut self, o: &Sessions) {
        self.joins += o.joins;
        self.leaves += o.leaves;
        self.rejoins += o.rejoins;
        self.storm_drops += o.storm_drops;
    }
}

/// Screen shares and their frames.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Screen {
    /// Shares started.
    pub shares: u64,
    /// SCREEN packets sent.
    pub sent_packets: u64,
    /// Their bytes (whole wrappers).
    pub sent_bytes: u64,
    /// SCREEN packets received.
    pub received_packets: u64,
    /// Their bytes.
    pub received_bytes: u64,
}

impl Screen {
    /// Adds another pod's counts.
    pub fn add(&mut self, o: &Screen) {
        self.shares += o.shares;
        self.sent_packets += o.sent_packets;
        self.sent_bytes += o.sent_bytes;
        self.received_packets += o.received_packets;
        self.received_bytes += o.received_bytes;
    }
}

/// How the participants behaved ([`crate::people`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Behaviour {
    /// A hash of the whole schedule (hex): two runs with the same config
    /// and seed have the same.
    pub schedule_digest: String,
    /// What the schedule planned (joins counts first sessions and arrivals).
    pub planned: Sessions,
    /// What the clients did.
    pub measured: Sessions,
    /// From going back after leaving on purpose to the new session being up (ms).
    pub rejoin_ms: Percentiles,
    /// Receive-only viewers.
    pub viewers: u64,
    /// Heartbeats sent with `is_speaking` true, and all heartbeats sent.
    pub speaking_heartbeats: u64,
    /// Actions of the scripts carried out (mute, camera, screen, rendition).
    pub actions: u64,
    /// Screen shares.
    pub screen: Screen,
    /// Each phase with its own figures.
    #[serde(default)]
    pub phases: Vec<crate::live::PhaseReport>,
}

/// What the adapting clients did ([`crate::adapt`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Adaptation {
    /// Clients with `adapt: true` (and video).
    pub clients: u64,
    /// Switches to a lower rendition, summed over them.
    pub switches_down: u64,
    /// Switches to a higher rendition.
    pub switches_up: u64,
    /// Time their video lanes spent on each rendition, seconds, summed.
    pub time_per_rendition_s: BTreeMap<String, f64>,
}

impl Adaptation {
    /// Adds `o` to this one (`report merge`).
    pub fn add(&mut self, o: &Adaptation) {
        self.clients += o.clients;
        self.switches_down += o.switches_down;
        self.switches_up += o.switches_up;
        for (k, v) in &o.time_per_rendition_s {
            let t = self.time_per_rendition_s.entry(k.clone()).or_insert(0.0);
            *t = round3(*t + v);
        }
    }

    /// The summary line.
    pub fn line(&self) -> String {
        let times: Vec<String> = self
            .time_per_rendition_s
            .iter()
            .map(|(k, v)| format!("{k} {v:.1} s"))
            .collect();
        format!(
            "{} adapting client(s): {} switch(es) down, {} up; time per rendition: {}",
            self.clients,
            self.switches_down,
            self.switches_up,
            if times.is_empty() {
                "none".to_string()
            } else {
                times.join(", ")
            }
        )
    }
}

/// The adapting clients' switches and time per rendition; `None` when none adapts.
fn adaptation(m: &Metrics, plan: &[ClientPlan]) -> Option<Adaptation> {
    let mut a = Adaptation::default();
    for (c, p) in m.clients.iter().zip(plan) {
        if !p.adapt {
            continue;
        }
        a.clients += 1;
        a.switches_down += c.switches[0].load(Relaxed);
        a.switches_up += c.switches[1].load(Relaxed);
        if let Ok(r) = c.renditions.lock() {
            for t in r.iter() {
                *a.time_per_rendition_s.entry(t.name.clone()).or_insert(0.0) += t.us as f64 / 1e6;
            }
        }
    }
    for v in a.time_per_rendition_s.values_mut() {
        *v = round3(*v);
    }
    (a.clients > 0).then_some(a)
}

/// Client counts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Clients {
    /// Clients in the plan.
    pub planned: usize,
    /// Clients connected at least once.
    pub connected: usize,
    /// Clients that gave up: rejected or refused by TLS (a client that had
    /// connected retries those for 30 s first), or every first attempt
    /// failed. A client that connected and later gave up counts in
    /// `connected` and in `failed`.
    pub failed: usize,
    /// Clients connected (or stalled) when the run stopped.
    pub connected_at_end: usize,
    /// Clients that had started (were past their ramp-up) when the run stopped.
    pub started_at_end: usize,
    /// Reconnections after a dropped session.
    pub reconnects: u64,
    /// Times a client went stalled (session open, nothing acknowledged for
    /// `stall_after`), sampled every second.
    pub stalls: u64,
    /// Time clients spent stalled, summed, seconds (1 s samples).
    pub stalled_s: f64,
    /// Clients of the plan whose behaviour schedule never needed them
    /// (never started, not counted in `connect_success_rate`).
    #[serde(default)]
    pub unscheduled: usize,
}

/// Server signals.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Signals {
    /// CONGESTION packets received (the server dropped packets of ours).
    pub congestion_received: u64,
    /// Clients that received at least one.
    pub clients_with_congestion: usize,
    /// The most one client received.
    pub congestion_max_per_client: u64,
    /// Key-frame requests aimed at our clients.
    pub keyframe_requests_received: u64,
    /// Key frames sent in answer.
    pub keyframes_answered: u64,
    /// From a request's arrival to the key frame's send (ms).
    pub keyframe_answer_ms: Percentiles,
    /// PARTICIPANT_JOINED packets seen.
    pub participant_joined_seen: u64,
    /// PARTICIPANT_LEFT packets seen.
    pub participant_left_seen: u64,
    /// From a client's first packet (or its peer's join, if later) to the
    /// first packet of it a peer in this process received (ms): "I joined
    /// and nobody saw me".
    pub join_visibility_ms: Percentiles,
}

/// Percentiles in milliseconds; `null` when nothing was recorded.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Percentiles {
    /// Number of samples.
    pub count: u64,
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
    /// The histogram itself (µs), HdrHistogram's V2 deflate format in
    /// base64, so that reports can be merged exactly (`report merge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hist: Option<String>,
}

impl Percentiles {
    /// From a histogram of microseconds.
    pub fn from_us(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |q: f64| Some(h.value_at_quantile(q) as f64 / 1000.0);
        Percentiles {
            count: h.len(),
            p50: ms(0.5),
            p95: ms(0.95),
            p99: ms(0.99),
            max: Some(h.max() as f64 / 1000.0),
            hist: crate::hist::encode(h),
        }
    }
}

/// One media kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MediaReport {
    /// What was sent.
    pub sent: Sent,
    /// What was received.
    pub received: Received,
}

/// Sent figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sent {
    /// Packets written to a stream.
    pub packets: u64,
    /// Of those, acknowledged by the server (every byte and the end of the stream).
    pub acked: u64,
    /// Written but never acknowledged: into a dead session, or still in
    /// flight when the end-of-run wait (`ack_wait`) ran out.
    pub unacked: u64,
    /// Bytes on the wire (whole PacketWrapper).
    pub bytes: u64,
    /// Frame bytes only.
    pub payload_bytes: u64,
    /// Frame bitrate per sending client, averaged over clients' active time.
    pub bitrate_kbps: Option<f64>,
    /// The pack's own bitrate for the tracks sent (what a client should achieve).
    pub target_kbps: Option<f64>,
    /// `|bitrate - target| / target`, in percent.
    pub bitrate_error_pct: Option<f64>,
    /// Sending clients' active time, summed (s): what the bitrates average over.
    #[serde(default)]
    pub active_s: f64,
    /// Frame bits those clients sent in it.
    #[serde(default)]
    pub bits: f64,
    /// Frame bits the pack's bitrate would have sent in it.
    #[serde(default)]
    pub target_bits: f64,
}

/// Received figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Received {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// Packets that never arrived by the end of the run (after the drain):
    /// for senders of this process, everything they sent after the receiver
    /// joined that did not arrive (`exact`); for others, the holes in the
    /// span of numbers seen.
    pub lost: u64,
    /// The part of `lost` checked against what senders of this process sent.
    pub exact: ExactReport,
    /// Arrived, but more than `late_after` after it was due.
    pub late: u64,
    /// Arrived after a higher sequence number (not lost).
    pub reordered: u64,
    /// Arrived again.
    pub duplicate: u64,
    /// Frames from senders of this process that matched no frame of the pack.
    pub corrupted: u64,
    /// One-way latency from senders in this process (same clock, ms).
    pub latency_ms: Percentiles,
    /// One-way latency from senders in other processes (ms): only as good
    /// as the clock sync between the hosts.
    pub cross_host_latency_ms: Percentiles,
    /// RFC 3550 interarrival jitter at each received packet (ms).
    pub jitter_ms: Percentiles,
    /// Packets (frames) per second each receiver got from each sender,
    /// across (sender, receiver) pairs.
    pub rate_per_sender: Rate,
    /// Video freezes (video only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freezes: Option<FreezeReport>,
    /// Audio concealment (audio only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concealment: Option<Concealment>,
}

/// Loss checked against what senders of this process sent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExactReport {
    /// (sender, receiver) pairs checked.
    pub pairs: u64,
    /// Packets sent after each receiver joined, summed over pairs.
    pub expected: u64,
    /// Of those, never received.
    pub lost: u64,
}

/// A rate across pairs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Rate {
    /// Pairs with any watched time.
    pub pairs: u64,
    /// 5th percentile (the worst-served receivers).
    pub p5: Option<f64>,
    /// Median.
    pub p50: Option<f64>,
    /// Mean.
    pub mean: Option<f64>,
    /// Sum of the pairs' rates (for an exact mean when reports are merged).
    #[serde(default)]
    pub sum: f64,
    /// The pairs' rates in thousandths, as a histogram ([`Percentiles::hist`]'s format).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hist: Option<String>,
}

/// Video freezes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FreezeReport {
    /// Freezes, all pairs.
    pub count: u64,
    /// Their total duration (ms).
    pub total_ms: f64,
    /// The longest (ms).
    pub longest_ms: f64,
    /// Frozen time over watched time, all pairs (0..1); `null` when nothing was watched.
    pub share: Option<f64>,
    /// Receivers that saw at least one freeze.
    pub receivers_with_freezes: u64,
    /// Freezes per receiver, median.
    pub per_receiver_p50: f64,
    /// Largest number of freezes one receiver saw.
    pub per_receiver_max: f64,
    /// Frozen time of the receiver that was frozen longest (ms).
    pub per_receiver_total_max_ms: f64,
    /// Watched time, all pairs (ms): what `share` is a share of.
    #[serde(default)]
    pub watched_ms: f64,
    /// Freezes per receiver, as a histogram ([`Percentiles::hist`]'s format).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_receiver_hist: Option<String>,
}

/// Audio concealment: 20 ms slots with no packet by their playout time.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Concealment {
    /// Slots that had to be played (packets expected).
    pub slots: u64,
    /// Of those, concealed: lost, or late.
    pub concealed: u64,
    /// `concealed / slots` (0..1); `null` when no slot was expected.
    pub share: Option<f64>,
    /// The share of the worst 5 % of pairs (95th percentile).
    pub pair_p95: Option<f64>,
    /// The pairs' shares in millionths, as a histogram ([`Percentiles::hist`]'s format).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair_hist: Option<String>,
}

/// Packet counts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Counts {
    /// Sent.
    pub sent: u64,
    /// Received.
    pub received: u64,
}

/// Process cost.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessReport {
    /// User + system CPU seconds.
    pub cpu_seconds: f64,
    /// Peak resident memory.
    pub peak_rss_bytes: u64,
    /// Resident memory at the end.
    pub rss_bytes: u64,
}

/// One meeting's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meeting {
    /// Meeting id.
    pub meeting_id: String,
    /// Clients planned in it.
    pub clients: usize,
    /// Of those, connected at least once.
    pub connected: usize,
    /// Audio packets sent by its clients.
    pub audio_sent: u64,
    /// Video packets sent by its clients.
    pub video_sent: u64,
    /// Audio packets its clients received.
    pub audio_received: u64,
    /// Video packets its clients received.
    pub video_received: u64,
    /// Packets its clients never received (audio and video).
    pub lost: u64,
}

/// Why a run ended (`stopped_by` in the report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StopReason {
    /// Its duration was over.
    Duration,
    /// The caller's shutdown future completed (Ctrl-C or SIGTERM for the binary).
    Signal,
    /// Every client had failed.
    Failure,
    /// A threshold with `abort_on_fail` failed while the run went.
    Abort,
    /// The capacity search was over (a step broke, or the last passed).
    Search,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StopReason::Duration => "duration",
            StopReason::Signal => "signal",
            StopReason::Failure => "failure",
            StopReason::Abort => "abort",
            StopReason::Search => "search",
        })
    }
}

/// What the report needs besides the metrics.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// The plan (each client's target bitrate included).
    pub plan: &'a [ClientPlan],
    /// Server shown in the report.
    pub server: String,
    /// Pack path.
    pub pack: String,
    /// Why the run ended.
    pub stopped_by: StopReason,
    /// Thresholds to check.
    pub thresholds: &'a [Threshold],
    /// The generator's own health.
    pub health: Health,
    /// Clients connected (or stalled) when the run stopped, and clients started by then.
    pub at_end: (usize, usize),
    /// The timeline, the events, the search and the phases, from [`crate::live::Live::finish`].
    #[allow(clippy::type_complexity)]
    pub live: Option<(
        Timeline,
        Vec<Event>,
        Option<SearchReport>,
        Vec<crate::live::PhaseReport>,
    )>,
    /// The seed of the run's random choices.
    pub seed: u64,
    /// The behaviour schedule, when the config has one.
    pub schedule: Option<&'a crate::plan::ScheduleInfo>,
    /// The verdict line of the threshold that aborted the run.
    pub aborted: Option<String>,
}

/// The behaviour section: the schedule's plan and what the clients did.
fn behaviour(m: &Metrics, plan: &[ClientPlan], sc: &crate::plan::ScheduleInfo) -> Behaviour {
    let sum = |f: fn(&ClientStats) -> &std::sync::atomic::AtomicU64| m.sum(|c| f(c).load(Relaxed));
    let screen = Media::Screen as usize;
    Behaviour {
        schedule_digest: format!("{:016x}", sc.digest),
        planned: Sessions {
            joins: sc.planned.joins as u64,
            leaves: (sc.planned.leaves + sc.planned.churn_drops + sc.planned.storm_drops) as u64,
            rejoins: (sc.planned.rejoins + sc.planned.storm_rejoins) as u64,
            storm_drops: sc.planned.storm_drops as u64,
        },
        measured: Sessions {
            joins: sum(|c| &c.joins),
            leaves: sum(|c| &c.leaves),
            rejoins: sum(|c| &c.rejoins),
            storm_drops: sum(|c| &c.storm_drops),
        },
        rejoin_ms: Percentiles::from_us(&m.rejoin.merged()),
        viewers: plan.iter().filter(|p| p.behaviour.viewer).count() as u64,
        speaking_heartbeats: sum(|c| &c.speaking_heartbeats),
        actions: sum(|c| &c.actions),
        screen: Screen {
            shares: sum(|c| &c.screen_shares),
            sent_packets: m.sum(|c| c.sent_packets[screen].load(Relaxed)),
            sent_bytes: m.sum(|c| c.sent_bytes[screen].load(Relaxed)),
            received_packets: m.sum(|c| c.recv_packets[screen].load(Relaxed)),
            received_bytes: m.sum(|c| c.recv_bytes[screen].load(Relaxed)),
        },
        phases: Vec::new(),
    }
}

/// The share of started clients connected at the end below which a run
/// fails whatever its thresholds (`connected_at_end_share`).
pub const CONNECTED_AT_END_FLOOR: f64 = 0.5;

/// One (sender, receiver, media) pair's loss at the end: exact for senders
/// of this process the receiver joined with, inferred from the span otherwise.
fn pair_loss(
    m: &Metrics,
    view: &PeerView,
    sender: Option<usize>,
    i: usize,
) -> (u64, Option<Exact>) {
    let c = &view.media[i].seq;
    match (view.expect_from, sender.and_then(|s| m.clients.get(s))) {
        (Some(from), Some(s)) if view.ours => {
            let mut until = s.next_seq[i].load(Relaxed);
            if let Some(u) = view.until {
                until = until.min(u[i]);
            }
            let e = Exact::check(c, from[i], until);
            (e.lost, Some(e))
        }
        _ => (c.missing(), None),
    }
}

/// Per media, what the report computes from every (sender, receiver) pair.
#[derive(Debug, Default)]
struct Pairs {
    lost: u64,
    exact: ExactReport,
    rates: Vec<f64>,
    /// Audio: (slots, concealed) per pair.
    slots: Vec<(u64, u64)>,
    freezes: Freezes,
    watched_ms: f64,
    /// Video: per receiver, (freezes, frozen ms).
    per_receiver: Vec<(u64, f64)>,
    /// Lost, per receiving client (in the metrics' order).
    lost_by_receiver: Vec<u64>,
}

fn pairs(m: &Metrics, index: &BTreeMap<&str, usize>, i: usize) -> Pairs {
    let mut p = Pairs::default();
    for c in &m.clients {
        let Ok(peers) = c.peers.lock() else {
            p.lost_by_receiver.push(0);
            continue;
        };
        let mut mine = Freezes::default();
        let mut heard = false;
        let mut mine_lost = 0;
        for (id, view) in peers.iter() {
            let sum = &view.media[i];
            let (lost, exact) = pair_loss(m, view, index.get(id.as_str()).copied(), i);
            p.lost += lost;
            mine_lost += lost;
            let slots = match exact {
                Some(e) => {
                    p.exact.pairs += 1;
                    p.exact.expected += e.expected;
                    p.exact.lost += e.lost;
                    e.expected
                }
                None => sum.seq.span(),
            };
            if slots == 0 && sum.seq.received == 0 {
                continue;
            }
            heard = true;
            if let Some(r) = sum.rate() {
                p.rates.push(r);
            }
            p.slots.push((slots, (lost + sum.late).min(slots)));
            p.freezes.merge(&sum.freezes);
            mine.merge(&sum.freezes);
            p.watched_ms += sum.watched_ms;
        }
        if heard {
            p.per_receiver.push((mine.count, mine.total_ms));
        }
        p.lost_by_receiver.push(mine_lost);
    }
    p
}

/// Frame bitrate, the pack's bitrate (kbps) and the error between them (%),
/// rounded as reported, from the frame bits sent, the bits the pack's
/// bitrate would have sent, and the active seconds they were sent in.
pub(crate) fn bitrates(
    bits: f64,
    target_bits: f64,
    active_s: f64,
) -> (Option<f64>, Option<f64>, Option<f64>) {
    let bitrate = (active_s > 0.0).then(|| bits / active_s / 1000.0);
    let target = (active_s > 0.0).then(|| target_bits / active_s / 1000.0);
    let err = match (bitrate, target) {
        (Some(b), Some(t)) if t > 0.0 => Some(((b - t) / t * 100.0).abs()),
        _ => None,
    };
    (bitrate.map(round3), target.map(round3), err.map(round3))
}

/// The `q` quantile of `v` (sorted in place), nearest rank.
fn quantile(v: &mut [f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

/// Checks before a run that its report can be written to `path`: not a
/// directory, its folder creatable, and a file creatable there.
pub fn check_path(path: &std::path::Path) -> anyhow::Result<()> {
    if path.is_dir() {
        anyhow::bail!("report {} is a directory: give a file name", path.display());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("report {}: creating its folder", path.display()))?;
    }
    let probe = path.with_extension("json.tmp");
    std::fs::write(&probe, b"")
        .with_context(|| format!("report {}: cannot write there", path.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Where the report goes when its own path could not be written at the end:
/// the working folder, or the temporary one when that is not writable.
pub fn fallback_path() -> std::path::PathBuf {
    let name = format!(
        "synth-replay-report-{}.json",
        synth_common::clock::unix_secs()
    );
    let here = std::path::PathBuf::from(&name);
    if std::fs::write(&here, b"").is_ok() {
        return here;
    }
    std::env::temp_dir().join(name)
}

impl Report {
    /// Writes the JSON report (to a temporary name first, so a reader never sees half of it).
    pub fn write(&self, path: &std::path::Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the report's folder {}", dir.display()))?;
        }
        let json = serde_json::to_vec_pretty(self).context("encoding the report")?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json).with_context(|| format!("writing report {}", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("writing report {}", path.display()))?;
        Ok(())
    }

    /// Reads a JSON report written by [`Report::write`]: one line of error
    /// naming the file when it is missing, not JSON, not a synth-replay
    /// report, or of another [`SCHEMA_VERSION`].
    pub fn read(path: &std::path::Path) -> anyhow::Result<Report> {
        let shown = path.display();
        let bytes = std::fs::read(path).with_context(|| format!("report {shown}: cannot read"))?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).with_context(|| format!("report {shown}: not JSON"))?;
        if v.get("schema").and_then(|s| s.as_str()) != Some(SCHEMA) {
            anyhow::bail!(
                "report {shown}: not a synth-replay report (no \"schema\": \"{SCHEMA}\")"
            );
        }
        match v.get("version").and_then(|n| n.as_u64()) {
            Some(n) if n == u64::from(SCHEMA_VERSION) => {}
            n => anyhow::bail!(
                "report {shown}: schema version {} is not {SCHEMA_VERSION}, the one this synth-replay reads",
                n.map_or("missing".to_string(), |n| n.to_string())
            ),
        }
        serde_json::from_value(v).with_context(|| format!("report {shown}: not a valid report"))
    }

    /// Builds the report from the run's measurements.
    pub fn build(m: &Metrics, inp: &Inputs) -> Report {
        let index: BTreeMap<&str, usize> = inp
            .plan
            .iter()
            .map(|p| (p.user_id.as_str(), p.index))
            .collect();
        let pr = [pairs(m, &index, 0), pairs(m, &index, 1)];
        let mut meeting_lost = vec![0u64; m.clients.len()];
        for p in &pr {
            for (l, n) in meeting_lost.iter_mut().zip(&p.lost_by_receiver) {
                *l += n;
            }
        }
        let media = |mut pr: Pairs, i: usize| -> MediaReport {
            let mut bits = 0f64;
            let mut expected = 0f64;
            let mut active = 0f64;
            for (c, p) in m.clients.iter().zip(inp.plan) {
                let mut t = p.target_bps;
                // An adapting client's video target follows the renditions
                // it sent, weighted by the time on each.
                if i == Media::Video as usize && p.adapt {
                    if let Some(bps) = c.adapted_video_bps() {
                        t[i] = bps;
                    }
                }
                let payload = c.sent_payload[i].load(Relaxed);
                // A client whose script stops or thins this medium (mute,
                // DTX, turns, camera, leaving) sends less than its pack
                // bitrate on purpose: it is not part of the bitrate check.
                if payload == 0 || t[i] == 0.0 || !p.steady(i) {
                    continue;
                }
                let secs = c.media_active().as_secs_f64();
                if secs <= 0.0 {
                    continue;
                }
                bits += payload as f64 * 8.0;
                expected += t[i] * secs;
                active += secs;
            }
            let (bitrate, target, err) = bitrates(bits, expected, active);
            let sent = m.sum(|c| c.sent_packets[i].load(Relaxed));
            let acked = m.sum(|c| c.acked[i].load(Relaxed));
            let freezes = (i == Media::Video as usize).then(|| {
                let mut counts: Vec<f64> = pr.per_receiver.iter().map(|r| r.0 as f64).collect();
                FreezeReport {
                    count: pr.freezes.count,
                    total_ms: round3(pr.freezes.total_ms),
                    longest_ms: round3(pr.freezes.longest_ms),
                    share: (pr.watched_ms > 0.0)
                        .then(|| round6((pr.freezes.total_ms / pr.watched_ms).min(1.0))),
                    receivers_with_freezes: pr.per_receiver.iter().filter(|r| r.0 > 0).count()
                        as u64,
                    per_receiver_p50: quantile(&mut counts, 0.5).unwrap_or(0.0),
                    per_receiver_max: counts.last().copied().unwrap_or(0.0),
                    per_receiver_total_max_ms: round3(
                        pr.per_receiver.iter().map(|r| r.1).fold(0.0, f64::max),
                    ),
                    watched_ms: round3(pr.watched_ms),
                    per_receiver_hist: crate::hist::encode_values(&counts, 1.0),
                }
            });
            let concealment = (i == Media::Audio as usize).then(|| {
                let slots: u64 = pr.slots.iter().map(|s| s.0).sum();
                let concealed: u64 = pr.slots.iter().map(|s| s.1).sum();
                let mut shares: Vec<f64> = pr
                    .slots
                    .iter()
                    .filter(|s| s.0 > 0)
                    .map(|s| s.1 as f64 / s.0 as f64)
                    .collect();
                Concealment {
                    slots,
                    concealed,
                    share: (slots > 0).then(|| round6(concealed as f64 / slots as f64)),
                    pair_p95: quantile(&mut shares, 0.95).map(round6),
                    pair_hist: crate::hist::encode_values(&shares, 1e6),
                }
            });
            let n = pr.rates.len();
            let mean = (n > 0).then(|| pr.rates.iter().sum::<f64>() / n as f64);
            let rate = Rate {
                pairs: n as u64,
                p5: quantile(&mut pr.rates, 0.05).map(round3),
                p50: quantile(&mut pr.rates, 0.5).map(round3),
                mean: mean.map(round3),
                sum: pr.rates.iter().sum(),
                hist: crate::hist::encode_values(&pr.rates, 1000.0),
            };
            MediaReport {
                sent: Sent {
                    packets: sent,
                    acked,
                    unacked: sent.saturating_sub(acked),
                    bytes: m.sum(|c| c.sent_bytes[i].load(Relaxed)),
                    payload_bytes: m.sum(|c| c.sent_payload[i].load(Relaxed)),
                    bitrate_kbps: bitrate,
                    target_kbps: target,
                    bitrate_error_pct: err,
                    active_s: active,
                    bits,
                    target_bits: expected,
                },
                received: Received {
                    packets: m.sum(|c| c.recv_packets[i].load(Relaxed)),
                    bytes: m.sum(|c| c.recv_bytes[i].load(Relaxed)),
                    lost: pr.lost,
                    exact: pr.exact,
                    late: m.sum(|c| c.late[i].load(Relaxed)),
                    reordered: m.sum(|c| c.reordered[i].load(Relaxed)),
                    duplicate: m.sum(|c| c.duplicates[i].load(Relaxed)),
                    corrupted: m.sum(|c| c.corrupted[i].load(Relaxed)),
                    latency_ms: Percentiles::from_us(&m.latency[i].merged()),
                    cross_host_latency_ms: Percentiles::from_us(&m.cross_host_latency[i].merged()),
                    jitter_ms: Percentiles::from_us(&m.jitter[i].merged()),
                    rate_per_sender: rate,
                    freezes,
                    concealment,
                },
            }
        };
        let states = m.states();
        let mut meetings: BTreeMap<&str, Meeting> = BTreeMap::new();
        for ((p, c), lost) in inp.plan.iter().zip(&m.clients).zip(&meeting_lost) {
            let e = meetings.entry(&p.meeting_id).or_insert_with(|| Meeting {
                meeting_id: p.meeting_id.clone(),
                clients: 0,
                connected: 0,
                audio_sent: 0,
                video_sent: 0,
                audio_received: 0,
                video_received: 0,
                lost: 0,
            });
            e.clients += 1;
            e.connected += c.ever_connected.load(Relaxed) as usize;
            e.audio_sent += c.sent_packets[Media::Audio as usize].load(Relaxed);
            e.video_sent += c.sent_packets[Media::Video as usize].load(Relaxed);
            e.audio_received += c.recv_packets[Media::Audio as usize].load(Relaxed);
            e.video_received += c.recv_packets[Media::Video as usize].load(Relaxed);
            e.lost += lost;
        }
        let congestion: Vec<u64> = m
            .clients
            .iter()
            .map(|c| c.congestion.load(Relaxed))
            .collect();
        let [pa, pv] = pr;
        let p = Process::now();
        let mut r = Report {
            schema: SCHEMA.to_string(),
            version: SCHEMA_VERSION,
            server: inp.server.clone(),
            pack: inp.pack.clone(),
            elapsed_s: round3(m.started.elapsed().as_secs_f64()),
            stopped_by: inp.stopped_by,
            clients: Clients {
                planned: m.clients.len(),
                unscheduled: inp.plan.iter().filter(|p| p.unneeded()).count(),
                connected: m
                    .clients
                    .iter()
                    .filter(|c| c.ever_connected.load(Relaxed))
                    .count(),
                failed: states[State::Failed as usize] as usize,
                reconnects: m.sum(|c| c.reconnects.load(Relaxed)),
                connected_at_end: inp.at_end.0,
                started_at_end: inp.at_end.1,
                stalls: m.sum(|c| c.stalls.load(Relaxed)),
                stalled_s: round3(m.sum(|c| c.stalled_us.load(Relaxed)) as f64 / 1e6),
            },
            connect_ms: Percentiles::from_us(&m.connect.merged()),
            connect_failures: REASONS
                .iter()
                .enumerate()
                .map(|(i, r)| (r.to_string(), m.connect_failures[i].load(Relaxed)))
                .collect(),
            audio: media(pa, 0),
            video: media(pv, 1),
            heartbeats: Counts {
                sent: m.sum(|c| c.sent_packets[Media::Heartbeat as usize].load(Relaxed)),
                received: m.sum(|c| c.recv_packets[Media::Heartbeat as usize].load(Relaxed)),
            },
            server_signals: Signals {
                congestion_received: congestion.iter().sum(),
                clients_with_congestion: congestion.iter().filter(|&&n| n > 0).count(),
                congestion_max_per_client: congestion.iter().copied().max().unwrap_or(0),
                keyframe_requests_received: m.sum(|c| c.keyframe_requests.load(Relaxed)),
                keyframes_answered: m.sum(|c| c.keyframes_answered.load(Relaxed)),
                keyframe_answer_ms: Percentiles::from_us(&m.keyframe_answer.merged()),
                participant_joined_seen: m.sum(|c| c.joined_events.load(Relaxed)),
                participant_left_seen: m.sum(|c| c.left_events.load(Relaxed)),
                join_visibility_ms: Percentiles::from_us(&m.join_visibility.merged()),
            },
            send_lateness_ms: Percentiles::from_us(&m.lateness.merged()),
            generator: inp.health.clone(),
            process: ProcessReport {
                cpu_seconds: round3(p.cpu_seconds),
                peak_rss_bytes: p.peak_rss_bytes,
                rss_bytes: p.rss_bytes,
            },
            meetings: meetings.into_values().collect(),
            thresholds: Vec::new(),
            aborted: inp.aborted.clone(),
            passed: true,
            timeline: None,
            events: Vec::new(),
            search: None,
            merged_from: Vec::new(),
            networks: Vec::new(),
            adaptation: adaptation(m, inp.plan),
            seed: Some(inp.seed),
            behaviour: inp.schedule.map(|sc| behaviour(m, inp.plan, sc)),
        };
        if let Some((timeline, events, search, phases)) = inp.live.clone() {
            r.timeline = Some(timeline);
            r.events = events;
            r.search = search;
            if let Some(b) = r.behaviour.as_mut() {
                b.phases = phases;
            }
        }
        r.judge(inp.thresholds);
        r
    }

    /// Checks `thresholds` and the built-in verdicts against the report's
    /// figures and sets `thresholds` and `passed`.
    pub fn judge(&mut self, thresholds: &[Threshold]) {
        self.thresholds = thresholds
            .iter()
            .map(|t| t.check(self.figure(&t.name)))
            .collect();
        // Built in: a run whose clients are mostly gone at the end never passes.
        let share = self.figure("connected_at_end_share");
        self.thresholds.push(Verdict {
            name: "connected_at_end_share".into(),
            expr: format!(">= {CONNECTED_AT_END_FLOOR} (built in)"),
            actual: share,
            pass: share.is_some_and(|v| v >= CONNECTED_AT_END_FLOOR),
        });
        let no_knee = self.search.as_ref().is_some_and(|s| s.knee.is_none());
        self.passed = self.thresholds.iter().all(|v| v.pass) && self.aborted.is_none() && !no_knee;
    }

    /// The value of a threshold figure (see [`crate::threshold::NAMES`]).
    pub fn figure(&self, name: &str) -> Option<f64> {
        let q = |l: &Percentiles, q: &str| match q {
            "p50" => l.p50,
            "p95" => l.p95,
            "p99" => l.p99,
            "max" => l.max,
            _ => None,
        };
        let (a, v) = (&self.audio.received, &self.video.received);
        let sig = &self.server_signals;
        Some(match name {
            "connect_success_rate" => {
                let meant = self
                    .clients
                    .planned
                    .saturating_sub(self.clients.unscheduled);
                if meant == 0 {
                    return None;
                }
                self.clients.connected as f64 / meant as f64
            }
            "connect_p95_ms" => return self.connect_ms.p95,
            "connect_p99_ms" => return self.connect_ms.p99,
            "failed_clients" => self.clients.failed as f64,
            "reconnects" => self.clients.reconnects as f64,
            "send_lateness_p50_ms" => return self.send_lateness_ms.p50,
            "send_lateness_p99_ms" => return self.send_lateness_ms.p99,
            "send_lateness_max_ms" => return self.send_lateness_ms.max,
            "audio_bitrate_error_pct" => return self.audio.sent.bitrate_error_pct,
            "video_bitrate_error_pct" => return self.video.sent.bitrate_error_pct,
            "audio_lost" | "audio_gaps" => a.lost as f64,
            "video_lost" | "video_gaps" => v.lost as f64,
            "audio_late" => a.late as f64,
            "video_late" => v.late as f64,
            "audio_unacked" => self.audio.sent.unacked as f64,
            "video_unacked" => self.video.sent.unacked as f64,
            "corrupted_frames" => (a.corrupted + v.corrupted) as f64,
            "audio_concealment" => return a.concealment.as_ref()?.share,
            "video_freezes" => v.freezes.as_ref()?.count as f64,
            "video_freeze_share" => return v.freezes.as_ref()?.share,
            "video_longest_freeze_ms" => v.freezes.as_ref()?.longest_ms,
            "video_fps_p5" => return v.rate_per_sender.p5,
            "video_fps_p50" => return v.rate_per_sender.p50,
            "audio_rate_p5" => return a.rate_per_sender.p5,
            "audio_received_packets" => a.packets as f64,
            "video_received_packets" => v.packets as f64,
            "congestion_received" => sig.congestion_received as f64,
            "keyframe_answer_p99_ms" => return sig.keyframe_answer_ms.p99,
            "join_visibility_p99_ms" => return sig.join_visibility_ms.p99,
            "joins" => self.behaviour.as_ref().map_or(0, |b| b.measured.joins) as f64,
            "leaves" => self.behaviour.as_ref().map_or(0, |b| b.measured.leaves) as f64,
            "rejoins" => self.behaviour.as_ref().map_or(0, |b| b.measured.rejoins) as f64,
            "rejoin_p99_ms" => return self.behaviour.as_ref()?.rejoin_ms.p99,
            "stalls" => self.clients.stalls as f64,
            "connected_at_end_share" => {
                if self.clients.started_at_end == 0 {
                    return None;
                }
                self.clients.connected_at_end as f64 / self.clients.started_at_end as f64
            }
            "generator_saturated" => f64::from(u8::from(self.generator.saturated)),
            n => {
                let n = n.strip_suffix("_ms")?;
                let (media, rest) = n.split_once('_')?;
                let r = match media {
                    "audio" => a,
                    "video" => v,
                    _ => return None,
                };
                let (which, quantile) = rest.rsplit_once('_')?;
                let l = match which {
                    "latency" => &r.latency_ms,
                    "cross_host_latency" => &r.cross_host_latency_ms,
                    "jitter" => &r.jitter_ms,
                    _ => return None,
                };
                return q(l, quantile);
            }
        })
    }

    /// The readable summary.
    pub fn summary(&self) -> String {
        let mut o = String::new();
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
        let pct = |p: &Percentiles| {
            format!(
                "p50 {} / p95 {} / p99 {} / max {} ms",
                f(p.p50),
                f(p.p95),
                f(p.p99),
                f(p.max)
            )
        };
        let _ = writeln!(o, "── synth-replay report ──────────────────────────────");
        let _ = writeln!(o, "server   {}", self.server);
        let _ = writeln!(o, "pack     {}", self.pack);
        let _ = writeln!(
            o,
            "ran      {:.1} s (ended by {})",
            self.elapsed_s, self.stopped_by
        );
        let c = &self.clients;
        let _ = writeln!(
            o,
            "clients  {} planned, {} connected, {} failed, {} reconnects, {} stalls ({:.0} s)",
            c.planned, c.connected, c.failed, c.reconnects, c.stalls, c.stalled_s
        );
        let fails: Vec<String> = self
            .connect_failures
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        if !fails.is_empty() {
            let _ = writeln!(o, "failures {}", fails.join(", "));
        }
        let _ = writeln!(o, "connect  {}", pct(&self.connect_ms));
        for (name, m) in [("audio", &self.audio), ("video", &self.video)] {
            let s = &m.sent;
            let _ = writeln!(
                o,
                "{name}    sent {} pkts {:.2} MB, {} kbps/client (pack {} kbps, error {} %)",
                s.packets,
                s.bytes as f64 / 1e6,
                f(s.bitrate_kbps),
                f(s.target_kbps),
                s.bitrate_error_pct
                    .map_or("-".into(), |e| format!("{e:.2}")),
            );
            let _ = writeln!(
                o,
                "         acked {} of them, {} unacknowledged",
                s.acked, s.unacked
            );
            let r = &m.received;
            let _ = writeln!(
                o,
                "         recv {} pkts {:.2} MB: {} lost (exact: {} of {} expected), {} late, {} reordered, {} duplicate, {} corrupted",
                r.packets,
                r.bytes as f64 / 1e6,
                r.lost,
                r.exact.lost,
                r.exact.expected,
                r.late,
                r.reordered,
                r.duplicate,
                r.corrupted,
            );
            let _ = writeln!(o, "         latency {}", pct(&r.latency_ms));
            if r.cross_host_latency_ms.count > 0 {
                let _ = writeln!(
                    o,
                    "         cross-host latency {}",
                    pct(&r.cross_host_latency_ms)
                );
            }
            let _ = writeln!(
                o,
                "         jitter {}; {} per sender p5 {} / p50 {}",
                pct(&r.jitter_ms),
                if name == "video" { "fps" } else { "packets/s" },
                f(r.rate_per_sender.p5),
                f(r.rate_per_sender.p50)
            );
            if let Some(fr) = &r.freezes {
                let _ = writeln!(
                    o,
                    "         freezes {} ({:.0} ms in all, longest {:.0} ms, {} % of watched time, {} receivers)",
                    fr.count,
                    fr.total_ms,
                    fr.longest_ms,
                    fr.share.map_or("-".into(), |v| format!("{:.2}", v * 100.0)),
                    fr.receivers_with_freezes
                );
            }
            if let Some(c) = &r.concealment {
                let _ = writeln!(
                    o,
                    "         concealed {} of {} slots ({} %)",
                    c.concealed,
                    c.slots,
                    c.share.map_or("-".into(), |v| format!("{:.3}", v * 100.0))
                );
            }
        }
        let sig = &self.server_signals;
        let _ = writeln!(
            o,
            "server   {} CONGESTION ({} clients), {} key-frame requests ({} answered, {}), joined/left seen {}/{}",
            sig.congestion_received,
            sig.clients_with_congestion,
            sig.keyframe_requests_received,
            sig.keyframes_answered,
            pct(&sig.keyframe_answer_ms),
            sig.participant_joined_seen,
            sig.participant_left_seen
        );
        let _ = writeln!(o, "visible  {}", pct(&sig.join_visibility_ms));
        let _ = writeln!(o, "lateness {}", pct(&self.send_lateness_ms));
        let g = &self.generator;
        let _ = writeln!(
            o,
            "generator CPU {:.0} % of {:.1} cores (max {:.0} %), event-loop delay p99 {:.1} ms",
            g.cpu_share_mean * 100.0,
            g.cores,
            g.cpu_share_max * 100.0,
            g.loop_delay_p99_ms
        );
        if !g.notes.is_empty() {
            let _ = writeln!(
                o,
                "NOTE     the schedule was not kept, because of the server (not this machine):"
            );
            for n in &g.notes {
                let _ = writeln!(o, "         {n}");
            }
        }
        if g.saturated {
            let _ = writeln!(
                o,
                "WARNING  the generator was saturated: these figures describe this machine, not only the server"
            );
            for r in &g.reasons {
                let _ = writeln!(o, "         {r}");
            }
        }
        let _ = writeln!(
            o,
            "process  {:.2} CPU s, peak RSS {:.1} MB",
            self.process.cpu_seconds,
            self.process.peak_rss_bytes as f64 / 1e6
        );
        if self.meetings.len() <= 20 {
            for mt in &self.meetings {
                let _ = writeln!(
                    o,
                    "meeting  {}: {}/{} connected, sent a/v {}/{}, received a/v {}/{}, lost {}",
                    mt.meeting_id,
                    mt.connected,
                    mt.clients,
                    mt.audio_sent,
                    mt.video_sent,
                    mt.audio_received,
                    mt.video_received,
                    mt.lost
                );
            }
        } else {
            let _ = writeln!(
                o,
                "meetings {} (see the JSON report for each)",
                self.meetings.len()
            );
        }
        for t in &self.thresholds {
            let _ = writeln!(
                o,
                "{} {} {} (actual {})",
                if t.pass { "PASS" } else { "FAIL" },
                t.name,
                t.expr,
                f(t.actual)
            );
        }
        if let Some(se) = &self.search {
            let _ = writeln!(
                o,
                "search   from {} by {} to {} clients, {:.0} s a step, meetings of {}:",
                se.start, se.step, se.max, se.hold_s, se.meeting_size
            );
            for st in se.steps.iter().rev().take(30).rev() {
                let _ = writeln!(
                    o,
                    "         {:>6} clients {:>8.1}-{:<8.1} s  {}",
                    st.clients,
                    st.t_start_s,
                    st.t_end_s,
                    if st.passed {
                        "passed".to_string()
                    } else {
                        format!("BROKE: {}", st.broken.join("; "))
                    }
                );
            }
            let _ = writeln!(
                o,
                "knee     {}",
                match (se.knee, se.ended.as_str()) {
                    (Some(k), "max") =>
                        format!("{k} clients: every step passed, up to the maximum"),
                    (Some(k), "broken") => format!(
                        "{k} clients: the largest step that passed; then {}",
                        se.first_broken.as_deref().unwrap_or("?")
                    ),
                    (Some(k), _) =>
                        format!("at least {k} clients (the run ended before the search did)"),
                    (None, _) => format!(
                        "none: the first step broke ({})",
                        se.first_broken.as_deref().unwrap_or("the run ended first")
                    ),
                }
            );
        }
        for n in &self.networks {
            let _ = writeln!(o, "network  {}", n.line());
        }
        if let Some(a) = &self.adaptation {
            let _ = writeln!(o, "adapt    {}", a.line());
        }
        if let Some(b) = &self.behaviour {
            let (p, m) = (&b.planned, &b.measured);
            let _ = writeln!(
                o,
                "people   joins {} (planned {}), leaves {} ({}), rejoins {} ({}), storm drops {} ({}); rejoin p50 {} / p99 {} ms; schedule {}",
                m.joins,
                p.joins,
                m.leaves,
                p.leaves,
                m.rejoins,
                p.rejoins,
                m.storm_drops,
                p.storm_drops,
                f(b.rejoin_ms.p50),
                f(b.rejoin_ms.p99),
                b.schedule_digest
            );
            let _ = writeln!(
                o,
                "         {} viewers, {} actions, {} speaking heartbeats, {} screen shares ({} SCREEN packets sent, {} received)",
                b.viewers,
                b.actions,
                b.speaking_heartbeats,
                b.screen.shares,
                b.screen.sent_packets,
                b.screen.received_packets
            );
            for ph in &b.phases {
                let g = |k: &str| ph.figures.get(k).copied().flatten();
                let _ = writeln!(
                    o,
                    "phase    {} ({}) {:.0}-{:.0} s: {} connected at its end, joins {}, leaves {}, audio p99 {} ms, video p99 {} ms, lost {}/{}",
                    ph.name,
                    ph.kind,
                    ph.t_start_s,
                    ph.t_end_s,
                    ph.connected_at_end,
                    f(g("joins")),
                    f(g("leaves")),
                    f(g("audio_latency_p99_ms")),
                    f(g("video_latency_p99_ms")),
                    f(g("audio_lost")),
                    f(g("video_lost"))
                );
            }
        }
        if let Some(seed) = self.seed {
            let _ = writeln!(o, "seed     {seed}");
        }
        if let Some(a) = &self.aborted {
            let _ = writeln!(o, "ABORTED  the run was ended early by a threshold: {a}");
        }
        if !self.thresholds.is_empty() {
            let _ = writeln!(
                o,
                "result   {}",
                if self.passed {
                    "passed"
                } else if self.aborted.is_some() {
                    "FAILED: aborted by a threshold"
                } else if self.thresholds.iter().all(|t| t.pass) {
                    "FAILED: no step of the search passed"
                } else {
                    "FAILED: a threshold was violated"
                }
            );
        }
        o
    }
}

pub(crate) fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

pub(crate) fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn plan(n: usize) -> Vec<ClientPlan> {
        (0..n)
            .map(|i| ClientPlan {
                index: i,
                user_id: format!("u{i}"),
                meeting_id: "m".into(),
                audio_track: Some(0),
                video_track: None,
                target_bps: [32_000.0, 0.0],
                start_after: Duration::ZERO,
                phase: Duration::ZERO,
                step: 0,
                network: None,
                adapt: false,
                behaviour: Default::default(),
            })
            .collect()
    }

    fn build(at_end: (usize, usize)) -> Report {
        let m = Metrics::new(4);
        let plan = plan(4);
        let cpu = crate::health::CpuSampler::new(2.0);
        let health = crate::health::assess(
            1.0,
            crate::health::ServerDelays::default(),
            &cpu,
            &m.loop_delay,
            &crate::health::Limits::default(),
        );
        Report::build(
            &m,
            &Inputs {
                plan: &plan,
                server: "s".into(),
                pack: "p".into(),
                stopped_by: StopReason::Duration,
                thresholds: &[],
                health,
                at_end,
                live: None,
                aborted: None,
                seed: 1,
                schedule: None,
            },
        )
    }

    /// A run whose clients are mostly gone at the end (or all failed)
    /// fails whatever its thresholds: its exit code is never 0.
    #[test]
    fn clients_mostly_gone_at_the_end_fail_the_run() {
        let r = build((1, 4));
        assert!(!r.passed);
        let v = r.thresholds.last().unwrap();
        assert_eq!(
            (v.name.as_str(), v.actual, v.pass),
            ("connected_at_end_share", Some(0.25), false)
        );
        assert!(build((2, 4)).passed, "half is the floor");
        assert!(!build((0, 4)).passed, "every client failed");
        // Clients still in their ramp-up do not count against the run.
        assert!(build((2, 2)).passed);
    }
}
