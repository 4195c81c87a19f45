//! The report's timeline: one [`Sample`] per interval of the run, and the
//! [`Event`]s that happened in it.

use serde::{Deserialize, Serialize};

use super::server::ServerSample;
use crate::num::round3;

/// Audio and video.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Av<T> {
    /// Audio.
    pub audio: T,
    /// Video.
    pub video: T,
}

/// Median and 99th percentile (ms); `null` with no samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct P2 {
    /// Median.
    pub p50: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
}

/// Clients in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ByState {
    /// Not started yet.
    pub pending: u64,
    /// First connection in progress.
    pub connecting: u64,
    /// Session up.
    pub connected: u64,
    /// Session up, but nothing acknowledged for `stall_after`.
    pub stalled: u64,
    /// Lost its session, trying again.
    pub reconnecting: u64,
    /// Gave up.
    pub failed: u64,
    /// Finished at the end of the run.
    pub done: u64,
    /// Left the meeting on purpose (between sessions, or gone for good).
    #[serde(default)]
    pub away: u64,
}

/// One interval of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sample {
    /// End of the interval, seconds since the run started.
    pub t_s: f64,
    /// End of the interval, Unix ms (reports of several pods align on it).
    pub unix_ms: u64,
    /// The phase or capacity-search step the interval ended in, if any.
    pub phase: Option<String>,
    /// Clients by state at the end of the interval.
    pub clients: ByState,
    /// Media packets sent in the interval.
    pub sent_packets: Av<u64>,
    /// Media packets received in the interval.
    pub recv_packets: Av<u64>,
    /// Mbit/s sent (every packet, whole wrapper).
    pub sent_mbps: f64,
    /// Mbit/s received.
    pub recv_mbps: f64,
    /// Change of the packets missing (holes in the sequence numbers) in the
    /// interval: new holes minus holes filled late. Summed over the timeline
    /// it is the holes left at the end.
    pub lost: Av<i64>,
    /// One-way latency of the packets received in the interval (same process).
    pub latency_ms: Av<P2>,
    /// 99th percentile of the interarrival jitter sampled in the interval (ms).
    pub jitter_ms: Av<Option<f64>>,
    /// Video freezes that ended in the interval.
    pub freezes: u64,
    /// Sessions that ended in the interval, by cause (the report's
    /// `clients.session_ends`, per interval).
    pub session_ends: super::SessionEnds,
    /// 99th percentile of the send lateness in the interval (ms).
    pub lateness_p99_ms: Option<f64>,
    /// Echo time of `browser` clients' RTT probes through the server in the
    /// interval (ms).
    pub server_rtt_ms: P2,
    /// Share of the available cores this process used (0..1).
    pub cpu_share: Option<f64>,
    /// Share of the host's CPU time that was busy (0..1), where read.
    pub host_busy: Option<f64>,
    /// Share of the interval in which some task of the host waited for a
    /// CPU (0..1), where the kernel says.
    pub host_pressure: Option<f64>,
    /// Datagrams the kernel dropped at this process's UDP sockets in the
    /// interval (their receive buffers were full: it read too late).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_drops: Option<u64>,
    /// Bytes waiting in its sockets' receive queues at the end of the
    /// interval, KiB: how far behind it reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rx_queue_kb: Option<f64>,
    /// This machine fell behind in the interval (see
    /// `synth_report::window::Window::saturated`): what was lost or late
    /// in it cannot be laid on the server alone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub saturated: bool,
    /// Resident memory at the end of the interval, MB.
    pub rss_mb: f64,
    /// The server's cost in the interval, when the config watches it (`server:`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerSample>,
    /// Thresholds failing when checked live at the end of the interval.
    pub failing: Vec<String>,
    /// The interval's audio MOS ([`crate::score::interval_audio_mos`]);
    /// `null` when no audio was received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_mos: Option<f64>,
    /// The interval's video score ([`crate::score::interval_video_score`]);
    /// `null` when the engine measured none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_score: Option<f64>,
}

impl Sample {
    /// Takes in the interval right after this one: counts add, states,
    /// memory and time are the later interval's, Mbit/s and the CPU share
    /// are averaged, percentiles take the larger (an upper bound of the
    /// pair's), scores the lower (lower is worse), the failing thresholds
    /// are the union; the server's, see [`ServerSample::absorb`].
    pub fn absorb(&mut self, later: &Sample) {
        let max = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(x), Some(y)) => Some(x.max(y)),
            (x, y) => x.or(y),
        };
        let min = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        self.audio_mos = min(self.audio_mos, later.audio_mos);
        self.video_score = min(self.video_score, later.video_score);
        let mean = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(x), Some(y)) => Some(round3((x + y) / 2.0)),
            (x, y) => x.or(y),
        };
        self.t_s = later.t_s;
        self.unix_ms = later.unix_ms;
        self.phase = later.phase.clone();
        self.clients = later.clients;
        self.sent_packets.audio += later.sent_packets.audio;
        self.sent_packets.video += later.sent_packets.video;
        self.recv_packets.audio += later.recv_packets.audio;
        self.recv_packets.video += later.recv_packets.video;
        self.sent_mbps = round3((self.sent_mbps + later.sent_mbps) / 2.0);
        self.recv_mbps = round3((self.recv_mbps + later.recv_mbps) / 2.0);
        self.lost.audio += later.lost.audio;
        self.lost.video += later.lost.video;
        for (a, b) in [
            (&mut self.latency_ms.audio, &later.latency_ms.audio),
            (&mut self.latency_ms.video, &later.latency_ms.video),
        ] {
            a.p50 = max(a.p50, b.p50);
            a.p99 = max(a.p99, b.p99);
        }
        self.jitter_ms.audio = max(self.jitter_ms.audio, later.jitter_ms.audio);
        self.jitter_ms.video = max(self.jitter_ms.video, later.jitter_ms.video);
        self.freezes += later.freezes;
        self.session_ends.add(&later.session_ends);
        self.lateness_p99_ms = max(self.lateness_p99_ms, later.lateness_p99_ms);
        self.server_rtt_ms.p50 = max(self.server_rtt_ms.p50, later.server_rtt_ms.p50);
        self.server_rtt_ms.p99 = max(self.server_rtt_ms.p99, later.server_rtt_ms.p99);
        self.cpu_share = mean(self.cpu_share, later.cpu_share);
        self.host_busy = mean(self.host_busy, later.host_busy);
        self.host_pressure = mean(self.host_pressure, later.host_pressure);
        self.socket_drops = match (self.socket_drops, later.socket_drops) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        self.rx_queue_kb = later.rx_queue_kb.or(self.rx_queue_kb);
        self.saturated |= later.saturated;
        self.rss_mb = later.rss_mb;
        match (&mut self.server, &later.server) {
            (Some(a), Some(b)) => a.absorb(b),
            (a @ None, b) => a.clone_from(b),
            (Some(_), None) => {}
        }
        for f in &later.failing {
            if !self.failing.contains(f) {
                self.failing.push(f.clone());
            }
        }
    }
}

/// The report's timeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Timeline {
    /// The sampling interval, seconds.
    pub interval_s: f64,
    /// The run's start, Unix ms.
    pub start_unix_ms: u64,
    /// One sample per interval, then one for the end of the run (senders
    /// stopped, acknowledgement wait and drain), so the samples' counts add
    /// up to the report's totals.
    pub samples: Vec<Sample>,
}

/// Something that happened at one time of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Event {
    /// Seconds since the run started.
    pub t_s: f64,
    /// Unix ms.
    pub unix_ms: u64,
    /// `threshold_failed`, `threshold_recovered`, `abort`, `step` or `phase`.
    pub kind: String,
    /// The threshold, step or phase.
    pub name: String,
    /// What was measured.
    pub detail: String,
}
