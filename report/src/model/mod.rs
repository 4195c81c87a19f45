//! The report model: every section of the JSON report (schema:
//! `docs/report-schema.json`), as the run writes it and `report merge`,
//! `report diff` and `report html` read it.
//!
//! Plain data with serde: it is filled by the engine's collector at the end
//! of a run, by [`crate::merge`] from several reports, and read back by
//! [`crate::io`]. Percentiles carry their histograms ([`crate::hist`]) so
//! that reports merge exactly.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::health::Health;
use crate::num::{quantile, round3};

pub mod control;
pub mod network;
pub mod score;
pub mod search;
pub mod server;
pub mod timeline;

pub use control::{Control, ControlCounts, Expected, Rates};
pub use network::{LinkReport, NetworkReport, QuicReport};
pub use score::{ParticipantScore, ScoreSummary, Scores};
pub use search::{PhaseReport, SearchReport, Step};
pub use server::{ServerCost, ServerQuery, ServerSample};
pub use timeline::{Av, ByState, Event, Sample, Timeline, P2};

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
    /// participants joining and leaving, the echo time of RTT probes.
    pub server_signals: Signals,
    /// The participants' profiles and what they sent and received besides
    /// media (`client_profile`).
    #[serde(default)]
    pub control: Control,
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
    /// The server's own cost, when the config said where to read it
    /// (`server: {pid}` or `server: {prometheus, queries}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cost: Option<ServerCost>,
    /// The reports this one was merged from (`report merge`), else empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<String>,
    /// Per group with a `network`: what the impairment did and what QUIC
    /// saw (filled by the engine from its impaired sockets); absent when no group has one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<NetworkReport>,
    /// The clients that adapt their rendition (`adapt: true`): their
    /// switches and time per rendition; absent when none adapts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adaptation: Option<Adaptation>,
    /// Simulcast senders and receivers with a `view` (upstream `RnD`'s
    /// layers, VIEWPORT and LAYER_PREFERENCE); absent when there are none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<Layers>,
    /// The seed of every random choice of the run (`seed` in the config).
    #[serde(default)]
    pub seed: Option<u64>,
    /// How the participants behaved (phases, churn, storms, turns,
    /// actions, screen shares, viewers); absent without a behaviour section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behaviour: Option<Behaviour>,
    /// Quality scores: each participant's audio MOS, video score and
    /// upstream's bands, summed up for the run, groups and meetings;
    /// absent when the engine scored nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scores: Option<Scores>,
    /// Each group's and network's figures, and those of the meetings a
    /// scoped threshold names (`audio_lost{group=3g}` reads them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<ScopeFigures>,
    /// The wire the run spoke, how it was chosen, and the server's
    /// `/version` when it was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire: Option<WireReport>,
}

/// The wire a run spoke and what the server said of itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WireReport {
    /// `per_packet` (one packet per uni stream, upstream main) or `framed`
    /// (length-prefixed packets on persistent streams, upstream RnD).
    pub used: String,
    /// `config` (the config named it), `version` (`auto`, from the
    /// server's `/version`), `default` (`auto` without an answer).
    pub chosen_by: String,
    /// The server's `GET /version` answer, when it gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_version: Option<ServerVersion>,
    /// Why `/version` gave nothing, when it was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_error: Option<String>,
    /// Every client joined with one fixed token whose claims say
    /// `observer: true`: the server drops what such a client sends.
    pub observer_token: bool,
}

/// A server's `GET /version` answer (upstream's fields; ours adds `wire`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerVersion {
    /// What the server says it is (`webtransport-relay`, `synth-relay`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Its version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The commit it was built from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_sha: Option<String>,
    /// The branch it was built from (`main`, `RnD`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_branch: Option<String>,
    /// When it was built.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_timestamp: Option<String>,
    /// The wire it says it speaks (the relay's answer has it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wire: Option<String>,
}

impl ServerVersion {
    /// One line: `webtransport-relay 1.0.1, branch RnD, commit 58c81a50`.
    pub fn line(&self) -> String {
        let mut parts = vec![[self.service.as_deref(), self.version.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ")];
        if let Some(b) = &self.git_branch {
            parts.push(format!("branch {b}"));
        }
        if let Some(c) = &self.git_sha {
            parts.push(format!("commit {c}"));
        }
        if let Some(w) = &self.wire {
            parts.push(format!("wire {w}"));
        }
        parts.retain(|p| !p.is_empty());
        if parts.is_empty() {
            "an empty answer".into()
        } else {
            parts.join(", ")
        }
    }
}

/// The figures of the participants of one group, network or meeting: what
/// the run's figures are for them alone (received figures are those they
/// received, sent figures those they sent).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScopeFigures {
    /// `group`, `network` or `meeting`.
    pub kind: String,
    /// The group's name, the network profile's name or the meeting id.
    pub name: String,
    /// Participants planned in it.
    pub clients: usize,
    /// Every figure of the registry a scope gives, by name (`null` when
    /// the run gave none for them).
    pub figures: BTreeMap<String, Option<f64>>,
}

/// Joins, leaves, rejoins and storm drops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
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
#[serde(default)]
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

/// How the participants behaved (the behaviour schedule and what the clients did).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
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
    pub phases: Vec<PhaseReport>,
}

/// What simulcast senders sent and receivers with a `view` got.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Layers {
    /// Clients sending simulcast (`simulcast: true`).
    pub senders: u64,
    /// Video packets they sent, by layer (0, 1, 2 and up).
    pub sent: [u64; 3],
    /// LAYER_HINTs they received from the server.
    pub hints: u64,
    /// Times a hint made one of them shed layers, and restore one.
    pub sheds: u64,
    /// See `sheds`.
    pub restores: u64,
    /// VIEWPORT packets the receivers with a view sent.
    pub viewports_sent: u64,
    /// LAYER_PREFERENCE packets they sent.
    pub preferences_sent: u64,
    /// Video packets every receiver got, by layer, of what it asked for.
    pub received: [u64; 3],
    /// Video packets receivers got that their view did not ask for (out of
    /// their tiles, or another layer, before the server applied the view).
    pub unrequested: u64,
    /// Numbers missing between the first and last packet of each upper
    /// layer asked for (layer 0 is in `video`'s exact loss).
    pub upper_missing: u64,
    /// From a view's first update covering a peer to the last packet of
    /// that peer the view no longer wanted, ms, over the receivers that
    /// saw one (see `receivers`).
    pub switch_ms: Percentiles,
    /// Each receiver with a view.
    pub receivers: Vec<LayerReceiver>,
}

/// One receiver with a `view`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LayerReceiver {
    /// Its user id.
    pub id: String,
    /// Its group's name.
    pub group: String,
    /// Video packets received, by layer.
    pub layers: [u64; 3],
    /// Video packets received that it had not asked for.
    pub unrequested: u64,
    /// Its time to a switch (ms); `null` when no packet it no longer
    /// wanted arrived after its update.
    pub switch_ms: Option<f64>,
}

impl Layers {
    /// Adds `o` to this one (`report merge`); the switch times follow the
    /// receivers.
    pub fn add(&mut self, o: &Layers) {
        self.senders += o.senders;
        for i in 0..3 {
            self.sent[i] += o.sent[i];
            self.received[i] += o.received[i];
        }
        self.hints += o.hints;
        self.sheds += o.sheds;
        self.restores += o.restores;
        self.viewports_sent += o.viewports_sent;
        self.preferences_sent += o.preferences_sent;
        self.unrequested += o.unrequested;
        self.upper_missing += o.upper_missing;
        self.receivers.extend(o.receivers.iter().cloned());
        self.switch_ms = switch_percentiles(&self.receivers);
    }

    /// The summary lines.
    pub fn lines(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.senders > 0 {
            v.push(format!(
                "{} simulcast sender(s): layers 0/1/2+ sent {}/{}/{} packets; {} LAYER_HINT(s), {} shed(s), {} restore(s)",
                self.senders, self.sent[0], self.sent[1], self.sent[2], self.hints, self.sheds, self.restores
            ));
        }
        if !self.receivers.is_empty() {
            let f = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.0}"));
            v.push(format!(
                "{} receiver(s) with a view: {} VIEWPORT, {} LAYER_PREFERENCE sent; layers 0/1/2+ received {}/{}/{}, {} not asked for, {} missing above layer 0; switch p50 {} / max {} ms",
                self.receivers.len(),
                self.viewports_sent,
                self.preferences_sent,
                self.received[0],
                self.received[1],
                self.received[2],
                self.unrequested,
                self.upper_missing,
                f(self.switch_ms.p50),
                f(self.switch_ms.max)
            ));
        }
        v
    }
}

/// The switch times of `receivers` as percentiles (exact: one value each).
pub fn switch_percentiles(receivers: &[LayerReceiver]) -> Percentiles {
    let mut v: Vec<f64> = receivers.iter().filter_map(|r| r.switch_ms).collect();
    let mut at = |q: f64| quantile(&mut v, q).map(round3);
    let (p50, p95, p99, max) = (at(0.50), at(0.95), at(0.99), at(1.0));
    Percentiles {
        count: v.len() as u64,
        p50,
        p95,
        p99,
        max,
        ..Percentiles::default()
    }
}

/// What the adapting clients did (`adapt: true`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
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

/// Client counts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
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
    /// Sessions that were up and ended, by cause; the ones not planned
    /// add up to `reconnects`.
    pub session_ends: SessionEnds,
    /// The server's closes (`session_ends.server_closed`) by `"<code>
    /// <reason>"`: `0x<code>` a WebTransport session's code, `h3 0x<code>`
    /// an HTTP/3 code the connection closed with, `quic 0x<code>` a QUIC
    /// transport error; at most 32 keys, the rest under `other`.
    pub server_close_reasons: BTreeMap<String, u64>,
    /// Clients of the plan whose behaviour schedule never needed them
    /// (never started, not counted in `connect_success_rate`).
    #[serde(default)]
    pub unscheduled: usize,
}

/// Sessions that were up and ended, by cause (`clients.session_ends`,
/// and per interval in the timeline). Each end is counted once, where the
/// session ended, from QUIC's and WebTransport's close reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionEnds {
    /// No packet from the server for the QUIC idle timeout (the smaller of
    /// ours, `idle_timeout`, and the server's): noticed that long after the
    /// server went silent.
    pub idle_timeout: u64,
    /// The server closed the session or its connection
    /// (`clients.server_close_reasons` has the codes and reasons).
    pub server_closed: u64,
    /// The server reset the connection (a stateless reset: it no longer
    /// knew it, e.g. after a restart).
    pub reset: u64,
    /// Our side ended it for a reason that was not planned: a write that
    /// failed while the connection was up, a QUIC protocol error it
    /// detected, a close of its own.
    pub local_error: u64,
    /// Ended on purpose: a leave of the behaviour schedule (churn, a storm,
    /// a phase) or the end of the run. Not a failure.
    pub planned: u64,
}

impl SessionEnds {
    /// Adds another pod's (or interval's) counts.
    pub fn add(&mut self, o: &SessionEnds) {
        self.idle_timeout += o.idle_timeout;
        self.server_closed += o.server_closed;
        self.reset += o.reset;
        self.local_error += o.local_error;
        self.planned += o.planned;
    }

    /// The ends that were not planned (each was followed by a reconnection
    /// attempt).
    pub fn unplanned(&self) -> u64 {
        self.idle_timeout + self.server_closed + self.reset + self.local_error
    }

    /// One line for the summary, e.g. `31 idle timeout (ours), 4 closed by
    /// the server (0x0 "bye" ×4), 120 planned`; `reasons` are the server's
    /// closes by `"<code> <reason>"`.
    pub fn line(&self, reasons: &BTreeMap<String, u64>) -> String {
        let mut parts = Vec::new();
        if self.idle_timeout > 0 {
            parts.push(format!("{} idle timeout (ours)", self.idle_timeout));
        }
        if self.server_closed > 0 {
            let shown: Vec<String> = reasons
                .iter()
                .map(|(k, n)| match split_close(k) {
                    (code, "") => format!("{code} ×{n}"),
                    (code, reason) => format!("{code} \"{reason}\" ×{n}"),
                })
                .collect();
            parts.push(if shown.is_empty() {
                format!("{} closed by the server", self.server_closed)
            } else {
                format!(
                    "{} closed by the server ({})",
                    self.server_closed,
                    shown.join(", ")
                )
            });
        }
        if self.reset > 0 {
            parts.push(format!("{} reset by the server", self.reset));
        }
        if self.local_error > 0 {
            parts.push(format!(
                "{} ended by an error on our side",
                self.local_error
            ));
        }
        parts.push(format!("{} planned", self.planned));
        format!("session ends: {}", parts.join(", "))
    }
}

/// A server close's key split into its code (with its `h3` or `quic`
/// prefix) and its reason.
fn split_close(key: &str) -> (&str, &str) {
    let skip = usize::from(key.starts_with("h3 ") || key.starts_with("quic "));
    let mut at = key.match_indices(' ').map(|(i, _)| i).skip(skip);
    match at.next() {
        Some(i) => (&key[..i], &key[i + 1..]),
        None => (key, ""),
    }
}

/// `n` with a comma every three digits (`29,323`).
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Distinct `"<code> <reason>"` keys kept of the server's closes; the
/// closes beyond are counted under `other`.
pub const MAX_CLOSE_REASONS: usize = 32;

/// Adds `n` closes with `key` to `into`, keeping at most
/// [`MAX_CLOSE_REASONS`] keys (the rest under `other`).
pub fn add_close_reason(into: &mut BTreeMap<String, u64>, key: &str, n: u64) {
    let key = if into.contains_key(key) || into.len() < MAX_CLOSE_REASONS {
        key
    } else {
        "other"
    };
    *into.entry(key.to_owned()).or_insert(0) += n;
}

/// Server signals.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Signals {
    /// CONGESTION packets about our clients' own packets (their
    /// `session_id` was the receiver's session): the server dropped packets
    /// the client sent.
    pub congestion_received: u64,
    /// Clients that received at least one.
    pub clients_with_congestion: usize,
    /// The most one client received.
    pub congestion_max_per_client: u64,
    /// CONGESTION packets about other senders of the room (the server tells
    /// every member): seen, not counted as the client's own.
    pub room_congestion_seen: u64,
    /// Key-frame requests aimed at our clients.
    pub keyframe_requests_received: u64,
    /// Key frames sent in answer (a `browser` answers every request of its
    /// room, whoever it asks).
    pub keyframes_answered: u64,
    /// From a request's arrival to the key frame's send (ms).
    pub keyframe_answer_ms: Percentiles,
    /// Key-frame requests our `browser` clients sent (a gap in a peer's
    /// video, a screen share joined mid-stream).
    pub keyframe_requests_sent: u64,
    /// Of those, the ones a key frame answered.
    pub keyframe_requests_answered: u64,
    /// From a request sent to the key frame it asked for (ms).
    pub keyframe_wait_ms: Percentiles,
    /// Echo time of our `browser` clients' RTT probes through the server
    /// (ms): its event loop as a participant feels it, not QUIC's RTT.
    pub server_rtt_ms: Percentiles,
    /// PARTICIPANT_JOINED packets seen.
    pub participant_joined_seen: u64,
    /// Packets of types past upstream main's (upstream `RnD`'s
    /// `peer_event`, `viewport`, `layer_preference`, `layer_hint`,
    /// `downlink_congestion`, `reaction`) and of types nobody knows
    /// (`unknown`), by name: counted, never an error. Only those seen.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other_types: BTreeMap<String, u64>,
    /// PARTICIPANT_LEFT packets seen.
    pub participant_left_seen: u64,
    /// From a client's first packet (or its peer's join, if later) to the
    /// first packet of it a peer in this process received (ms): "I joined
    /// and nobody saw me".
    pub join_visibility_ms: Percentiles,
}

/// Percentiles in milliseconds; `null` when nothing was recorded.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
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
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MediaReport {
    /// What was sent.
    pub sent: Sent,
    /// What was received.
    pub received: Received,
}

/// Sent figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
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
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
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
    /// `exact.lost` by cause: while the receiver's session was up, or while
    /// it was down; `null` with no sender of this process to check (what
    /// other processes sent is never split).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_causes: Option<LostCauses>,
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
#[serde(default)]
pub struct ExactReport {
    /// (sender, receiver) pairs checked.
    pub pairs: u64,
    /// Packets sent after each receiver joined, summed over pairs.
    pub expected: u64,
    /// Of those, never received.
    pub lost: u64,
}

/// Exact loss by cause: the two add up to `exact.lost`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LostCauses {
    /// Lost while the receiver's session was up: dropped by the server (a
    /// full queue, a failed stream), lost on the way, or written into the
    /// sender's session after it had died but before the sender knew (a
    /// sender sends nothing while its session is down). An idle timeout
    /// is known `idle_timeout` late: what was sent to a receiver in those
    /// seconds is counted here.
    pub while_connected: u64,
    /// Sent while the receiver's session was down: from the moment the
    /// receiver knew its session had ended until its next session was up
    /// (less what arrived on it all the same). A leave on purpose is not
    /// down: what is sent then is excused, never lost.
    pub while_down: u64,
}

impl LostCauses {
    /// Adds another's counts.
    pub fn add(&mut self, o: &LostCauses) {
        self.while_connected += o.while_connected;
        self.while_down += o.while_down;
    }

    /// The summary's line, with `lost` the exact loss they split, e.g.
    /// `lost 29,323: 6,100 while both ends were connected, 23,223 while the
    /// receiver was reconnecting`.
    pub fn line(&self, lost: u64) -> String {
        format!(
            "lost {}: {} while both ends were connected, {} while the receiver was reconnecting",
            thousands(lost),
            thousands(self.while_connected),
            thousands(self.while_down)
        )
    }
}

/// A rate across pairs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
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
#[serde(default)]
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
#[serde(default)]
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
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Counts {
    /// Sent.
    pub sent: u64,
    /// Received.
    pub received: u64,
}

/// Process cost.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessReport {
    /// User + system CPU seconds.
    pub cpu_seconds: f64,
    /// Peak resident memory.
    pub peak_rss_bytes: u64,
    /// Resident memory at the end.
    pub rss_bytes: u64,
}

/// One meeting's figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
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
    /// Packets its clients never received (audio and video); `gaps` in
    /// reports of version 1.
    #[serde(alias = "gaps")]
    pub lost: u64,
    /// Of `lost`, what its clients missed from senders of this process
    /// while their sessions were down (see [`LostCauses::while_down`]).
    pub lost_while_down: u64,
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

/// What the expression of a built-in verdict ends with
/// (`connected_at_end_share >= 0.5 (built in)`).
pub const BUILT_IN: &str = " (built in)";

/// A threshold checked against a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Verdict {
    /// Figure name.
    pub name: String,
    /// The expression as written.
    pub expr: String,
    /// The measured value (`null` when the run produced none, e.g. no latency samples).
    pub actual: Option<f64>,
    /// Whether the threshold holds. A figure with no value fails.
    pub pass: bool,
}

impl Verdict {
    /// A verdict the report adds itself (not a threshold of the config).
    pub fn is_built_in(&self) -> bool {
        self.expr.ends_with(BUILT_IN.trim_start())
    }
}

/// A report with nothing in it, as a run that measured nothing would write
/// it: the base of the tests' reports.
#[cfg(test)]
pub(crate) fn bare() -> Report {
    serde_json::from_value(serde_json::json!({
        "schema": SCHEMA, "version": SCHEMA_VERSION, "server": "s", "pack": "p",
        "elapsed_s": 10.0, "stopped_by": "duration", "clients": {}, "connect_ms": {},
        "connect_failures": {}, "audio": {"sent": {}, "received": {}},
        "video": {"sent": {}, "received": {}}, "heartbeats": {}, "server_signals": {},
        "send_lateness_ms": {}, "generator": {}, "process": {}, "meetings": [],
        "thresholds": [], "passed": true
    }))
    .expect("a bare report reads")
}
