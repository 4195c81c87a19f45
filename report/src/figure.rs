//! The figure registry: every figure a threshold, a live check, a search
//! step, a phase, `report diff` and `report merge` can name, declared once.
//!
//! Each [`Figure`] says what it measures, its unit, which way is worse,
//! how it is measured over a window of the run while the run goes ([`Live`],
//! `None` for figures only known at the end), how its values from several
//! pods combine ([`Merge`]), and how to read it from a finished [`Report`].
//! Threshold parsing ([`crate::threshold`]), the window figures
//! ([`crate::window`]), `report diff` and the docs' table all read this list,
//! so a figure cannot be known to one and missing from another.

use std::fmt::Write as _;

use crate::model::{MediaReport, Percentiles, Report};

/// What a figure counts or measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A number of things (packets, clients, events).
    Count,
    /// Milliseconds.
    Ms,
    /// A share between 0 and 1.
    Share,
    /// A percentage.
    Percent,
    /// Per second (frames, packets).
    PerSecond,
    /// 1 for yes, 0 for no.
    Flag,
    /// A score on the MOS scale, 1 to 5 ([`crate::score`]).
    Score,
    /// CPU cores (1 = one core busy all the time).
    Cores,
    /// Megabytes (10^6 bytes).
    Mb,
}

impl Unit {
    /// How the docs name it.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Count => "count",
            Unit::Ms => "ms",
            Unit::Share => "0..1",
            Unit::Percent => "%",
            Unit::PerSecond => "per s",
            Unit::Flag => "0 or 1",
            Unit::Score => "1..5",
            Unit::Cores => "cores",
            Unit::Mb => "MB",
        }
    }
}

/// Which way a figure gets worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Worse {
    /// A rise is a regression (latency, loss).
    Higher,
    /// A fall is a regression (success rate, frames per second).
    Lower,
}

/// How one figure's values from several pods (or windows) combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// They add up (counts).
    Adds,
    /// The larger is kept: an upper bound of a figure where higher is
    /// worse (percentiles, loss shares).
    Largest,
    /// The smaller is kept: a lower bound of a figure where lower is
    /// worse (scores, frame rates, success shares).
    Smallest,
    /// One thing every pod saw (the server beside the run): the first
    /// pod's that has it, never a sum.
    Same,
}

/// A percentile of a histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Q {
    /// Median.
    P50,
    /// 95th percentile.
    P95,
    /// 99th percentile.
    P99,
    /// The largest value.
    Max,
}

impl Q {
    /// The percentile as a fraction (`Max` is 1).
    pub fn fraction(self) -> f64 {
        match self {
            Q::P50 => 0.5,
            Q::P95 => 0.95,
            Q::P99 => 0.99,
            Q::Max => 1.0,
        }
    }

    /// `p`'s field for this percentile.
    pub fn of(self, p: &Percentiles) -> Option<f64> {
        match self {
            Q::P50 => p.p50,
            Q::P95 => p.p95,
            Q::P99 => p.p99,
            Q::Max => p.max,
        }
    }
}

/// The histograms a snapshot of the run keeps, indexed by `HistId as usize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum HistId {
    /// Connect time.
    Connect,
    /// Send lateness.
    Lateness,
    /// One-way audio latency, same process.
    AudioLatency,
    /// One-way video latency, same process.
    VideoLatency,
    /// One-way audio latency from other processes.
    AudioCrossHost,
    /// One-way video latency from other processes.
    VideoCrossHost,
    /// Audio interarrival jitter.
    AudioJitter,
    /// Video interarrival jitter.
    VideoJitter,
    /// Key-frame answer time.
    Keyframe,
    /// Join visibility.
    Join,
    /// Rejoin time.
    Rejoin,
    /// Echo time of the RTT probes through the server.
    ServerRtt,
    /// From a key-frame request sent to the key frame.
    KeyframeWait,
}

impl HistId {
    /// How many there are.
    pub const COUNT: usize = 13;
}

/// A counter of a run's snapshot, indexed by `Counter as usize`: the
/// change of one over a window is a figure ([`Live::Count`]) or part of a
/// timeline sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Counter {
    /// Clients in the failed state.
    Failed,
    /// Clients connected at least once.
    EverConnected,
    /// Clients that failed without ever connecting.
    FailedUnconnected,
    /// Audio packets sent.
    AudioSent,
    /// Video packets sent.
    VideoSent,
    /// Audio packets received.
    AudioReceived,
    /// Video packets received.
    VideoReceived,
    /// Bytes sent, every packet.
    SentBytes,
    /// Bytes received, every packet.
    ReceivedBytes,
    /// Audio packets missing (holes in the sequence numbers).
    AudioMissing,
    /// Video packets missing.
    VideoMissing,
    /// Audio packets late.
    AudioLate,
    /// Video packets late.
    VideoLate,
    /// Corrupted frames.
    Corrupted,
    /// Video freezes.
    Freezes,
    /// CONGESTION packets received.
    Congestion,
    /// Reconnections.
    Reconnects,
    /// Sessions that came up.
    Joins,
    /// Sessions ended on purpose.
    Leaves,
    /// Sessions up again after one ended on purpose.
    Rejoins,
    /// Stalls.
    Stalls,
    /// Time the senders waited on the server or skipped, µs.
    ServerDelayUs,
    /// CONGESTION about other senders of the room.
    RoomCongestion,
    /// Sessions ended by our idle timeout.
    EndsIdleTimeout,
    /// Sessions the server closed.
    EndsServerClosed,
    /// Sessions the server reset.
    EndsReset,
    /// Sessions ended by an error on our side.
    EndsLocalError,
    /// Sessions ended on purpose.
    EndsPlanned,
}

impl Counter {
    /// How many there are.
    pub const COUNT: usize = 28;

    /// Every counter, in index order.
    pub const ALL: [Counter; Counter::COUNT] = [
        Counter::Failed,
        Counter::EverConnected,
        Counter::FailedUnconnected,
        Counter::AudioSent,
        Counter::VideoSent,
        Counter::AudioReceived,
        Counter::VideoReceived,
        Counter::SentBytes,
        Counter::ReceivedBytes,
        Counter::AudioMissing,
        Counter::VideoMissing,
        Counter::AudioLate,
        Counter::VideoLate,
        Counter::Corrupted,
        Counter::Freezes,
        Counter::Congestion,
        Counter::Reconnects,
        Counter::Joins,
        Counter::Leaves,
        Counter::Rejoins,
        Counter::Stalls,
        Counter::ServerDelayUs,
        Counter::RoomCongestion,
        Counter::EndsIdleTimeout,
        Counter::EndsServerClosed,
        Counter::EndsReset,
        Counter::EndsLocalError,
        Counter::EndsPlanned,
    ];
}

/// How a figure is measured over a window of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Live {
    /// Clients connected over clients whose connecting ended in the window.
    ConnectRate,
    /// A percentile of what a histogram recorded in the window.
    Hist(HistId, Q),
    /// The change of a counter.
    Count(Counter),
    /// Clients up over clients started, at the window's end.
    ConnectedShare,
    /// 1 when the generator could not keep up in the window.
    Saturated,
}

/// One figure; see the module's doc.
#[derive(Debug, Clone, Copy)]
pub struct Figure {
    /// Its name, as thresholds, `--fail-on` and the report's step and
    /// phase figures write it.
    pub name: &'static str,
    /// What it measures.
    pub about: &'static str,
    /// Its unit.
    pub unit: Unit,
    /// Which way is worse.
    pub worse: Worse,
    /// How its values combine across pods and windows.
    pub merge: Merge,
    /// How it is measured while the run goes; `None`: only at the end.
    pub live: Option<Live>,
    /// An older name of this figure (`audio_gaps` of `audio_lost`).
    pub alias_of: Option<&'static str>,
    /// One of the latency, cross-host latency and jitter percentiles
    /// (named as a family in messages).
    pub percentile: bool,
    /// Reported by every capacity-search step.
    pub step: bool,
    /// Reported by every phase.
    pub phase: bool,
    /// Its value in a finished report; `None` when the run gave none.
    pub end: fn(&Report) -> Option<f64>,
}

impl Figure {
    const BASE: Figure = Figure {
        name: "",
        about: "",
        unit: Unit::Count,
        worse: Worse::Higher,
        merge: Merge::Adds,
        live: None,
        alias_of: None,
        percentile: false,
        step: false,
        phase: false,
        end: |_| None,
    };

    /// Whether a window of the run gives it (live thresholds, steps, phases).
    pub fn is_live(&self) -> bool {
        self.live.is_some()
    }
}

/// Audio's or video's received figures.
fn rx(r: &Report, video: bool) -> &crate::model::Received {
    let m: &MediaReport = if video { &r.video } else { &r.audio };
    &m.received
}

fn count(v: impl Into<u64>) -> Option<f64> {
    Some(v.into() as f64)
}

/// A latency, cross-host latency or jitter percentile of audio or video.
macro_rules! percentile {
    ($name:literal, $about:literal, $video:literal, $field:ident, $q:ident, $hist:ident) => {
        Figure {
            name: $name,
            about: $about,
            unit: Unit::Ms,
            merge: Merge::Largest,
            live: Some(Live::Hist(HistId::$hist, Q::$q)),
            percentile: true,
            end: |r| Q::$q.of(&rx(r, $video).$field),
            ..Figure::BASE
        }
    };
}

/// A score of the run's participants (end only; lower is worse).
macro_rules! score {
    ($name:literal, $about:literal, $get:expr) => {
        Figure {
            name: $name,
            about: $about,
            unit: Unit::Score,
            worse: Worse::Lower,
            merge: Merge::Smallest,
            end: |r| {
                let get: fn(&crate::model::Scores) -> Option<f64> = $get;
                get(r.scores.as_ref()?)
            },
            ..Figure::BASE
        }
    };
}

/// A count that a window gives as the change of a counter.
macro_rules! counted {
    ($name:literal, $about:literal, $counter:ident, $end:expr) => {
        Figure {
            name: $name,
            about: $about,
            live: Some(Live::Count(Counter::$counter)),
            end: $end,
            ..Figure::BASE
        }
    };
}

/// Every figure, in the order `report diff` lists them.
pub static FIGURES: &[Figure] = &[
    Figure {
        name: "connect_success_rate",
        about: "clients connected / clients planned, less those a behaviour schedule never needed (0..1)",
        unit: Unit::Share,
        worse: Worse::Lower,
        merge: Merge::Smallest,
        live: Some(Live::ConnectRate),
        step: true,
        phase: true,
        end: |r| {
            let meant = r.clients.planned.saturating_sub(r.clients.unscheduled);
            (meant > 0).then(|| r.clients.connected as f64 / meant as f64)
        },
        ..Figure::BASE
    },
    Figure {
        name: "connect_p95_ms",
        about: "95th percentile of connect time",
        unit: Unit::Ms,
        merge: Merge::Largest,
        live: Some(Live::Hist(HistId::Connect, Q::P95)),
        end: |r| r.connect_ms.p95,
        ..Figure::BASE
    },
    Figure {
        name: "connect_p99_ms",
        about: "99th percentile of connect time",
        unit: Unit::Ms,
        merge: Merge::Largest,
        live: Some(Live::Hist(HistId::Connect, Q::P99)),
        end: |r| r.connect_ms.p99,
        ..Figure::BASE
    },
    Figure {
        step: true,
        phase: true,
        ..counted!(
            "failed_clients",
            "clients that gave up: rejected, TLS refused, or no first connection within connect_attempts",
            Failed,
            |r| count(r.clients.failed as u64)
        )
    },
    Figure {
        phase: true,
        ..counted!(
            "reconnects",
            "reconnections after a dropped session",
            Reconnects,
            |r| count(r.clients.reconnects)
        )
    },
    percentile!("audio_latency_p50_ms", "median one-way audio latency", false, latency_ms, P50, AudioLatency),
    percentile!("audio_latency_p95_ms", "95th percentile one-way audio latency", false, latency_ms, P95, AudioLatency),
    Figure {
        step: true,
        phase: true,
        ..percentile!("audio_latency_p99_ms", "99th percentile one-way audio latency", false, latency_ms, P99, AudioLatency)
    },
    percentile!("audio_latency_max_ms", "largest one-way audio latency", false, latency_ms, Max, AudioLatency),
    percentile!("video_latency_p50_ms", "median one-way video latency", true, latency_ms, P50, VideoLatency),
    percentile!("video_latency_p95_ms", "95th percentile one-way video latency", true, latency_ms, P95, VideoLatency),
    Figure {
        step: true,
        phase: true,
        ..percentile!("video_latency_p99_ms", "99th percentile one-way video latency", true, latency_ms, P99, VideoLatency)
    },
    percentile!("video_latency_max_ms", "largest one-way video latency", true, latency_ms, Max, VideoLatency),
    Figure {
        name: "send_lateness_p50_ms",
        about: "median send lateness (actual - scheduled send time)",
        unit: Unit::Ms,
        merge: Merge::Largest,
        live: Some(Live::Hist(HistId::Lateness, Q::P50)),
        end: |r| r.send_lateness_ms.p50,
        ..Figure::BASE
    },
    Figure {
        name: "send_lateness_p99_ms",
        about: "99th percentile send lateness",
        unit: Unit::Ms,
        merge: Merge::Largest,
        live: Some(Live::Hist(HistId::Lateness, Q::P99)),
        step: true,
        phase: true,
        end: |r| r.send_lateness_ms.p99,
        ..Figure::BASE
    },
    Figure {
        name: "send_lateness_max_ms",
        about: "largest send lateness",
        unit: Unit::Ms,
        merge: Merge::Largest,
        live: Some(Live::Hist(HistId::Lateness, Q::Max)),
        end: |r| r.send_lateness_ms.max,
        ..Figure::BASE
    },
    Figure {
        name: "audio_bitrate_error_pct",
        about: "|sent audio bitrate - pack bitrate| / pack bitrate, in %",
        unit: Unit::Percent,
        merge: Merge::Largest,
        end: |r| r.audio.sent.bitrate_error_pct,
        ..Figure::BASE
    },
    Figure {
        name: "video_bitrate_error_pct",
        about: "|sent video bitrate - pack bitrate| / pack bitrate, in %",
        unit: Unit::Percent,
        merge: Merge::Largest,
        end: |r| r.video.sent.bitrate_error_pct,
        ..Figure::BASE
    },
    Figure {
        alias_of: Some("audio_lost"),
        ..counted!("audio_gaps", "older name of audio_lost", AudioMissing, |r| count(r.audio.received.lost))
    },
    Figure {
        alias_of: Some("video_lost"),
        ..counted!("video_gaps", "older name of video_lost", VideoMissing, |r| count(r.video.received.lost))
    },
    Figure {
        worse: Worse::Lower,
        phase: true,
        ..counted!(
            "audio_received_packets",
            "audio packets received by all clients",
            AudioReceived,
            |r| count(r.audio.received.packets)
        )
    },
    Figure {
        worse: Worse::Lower,
        phase: true,
        ..counted!(
            "video_received_packets",
            "video packets received by all clients",
            VideoReceived,
            |r| count(r.video.received.packets)
        )
    },
    Figure {
        step: true,
        phase: true,
        ..counted!(
            "audio_lost",
            "audio packets never received by the end of the run (exact for senders of this process)",
            AudioMissing,
            |r| count(r.audio.received.lost)
        )
    },
    Figure {
        step: true,
        phase: true,
        ..counted!(
            "video_lost",
            "video packets never received by the end of the run (exact for senders of this process)",
            VideoMissing,
            |r| count(r.video.received.lost)
        )
    },
    counted!(
        "audio_late",
        "audio packets that arrived more than late_after.audio after they were due",
        AudioLate,
        |r| count(r.audio.received.late)
    ),
    counted!(
        "video_late",
        "video packets that arrived more than late_after.video after they were due",
        VideoLate,
        |r| count(r.video.received.late)
    ),
    Figure {
        name: "audio_unacked",
        about: "audio packets sent but never acknowledged by the server",
        end: |r| count(r.audio.sent.unacked),
        ..Figure::BASE
    },
    Figure {
        name: "video_unacked",
        about: "video packets sent but never acknowledged by the server",
        end: |r| count(r.video.sent.unacked),
        ..Figure::BASE
    },
    counted!(
        "corrupted_frames",
        "received frames from senders of this process that match no frame of the pack",
        Corrupted,
        |r| count(r.audio.received.corrupted + r.video.received.corrupted)
    ),
    Figure {
        name: "audio_concealment",
        about: "share of 20 ms audio slots concealed: lost or late (0..1)",
        unit: Unit::Share,
        merge: Merge::Largest,
        end: |r| r.audio.received.concealment.as_ref()?.share,
        ..Figure::BASE
    },
    Figure {
        phase: true,
        ..counted!(
            "video_freezes",
            "video freezes, all (sender, receiver) pairs",
            Freezes,
            |r| count(r.video.received.freezes.as_ref()?.count)
        )
    },
    Figure {
        name: "video_freeze_share",
        about: "frozen time over watched time, all pairs (0..1)",
        unit: Unit::Share,
        merge: Merge::Largest,
        end: |r| r.video.received.freezes.as_ref()?.share,
        ..Figure::BASE
    },
    Figure {
        name: "video_longest_freeze_ms",
        about: "the longest video freeze",
        unit: Unit::Ms,
        merge: Merge::Largest,
        end: |r| Some(r.video.received.freezes.as_ref()?.longest_ms),
        ..Figure::BASE
    },
    Figure {
        name: "video_fps_p5",
        about: "5th percentile of received frames per second per (sender, receiver) pair",
        unit: Unit::PerSecond,
        worse: Worse::Lower,
        merge: Merge::Smallest,
        end: |r| r.video.received.rate_per_sender.p5,
        ..Figure::BASE
    },
    Figure {
        name: "video_fps_p50",
        about: "median received frames per second per (sender, receiver) pair",
        unit: Unit::PerSecond,
        worse: Worse::Lower,
        merge: Merge::Smallest,
        end: |r| r.video.received.rate_per_sender.p50,
        ..Figure::BASE
    },
    Figure {
        name: "audio_rate_p5",
        about: "5th percentile of received audio packets per second per pair",
        unit: Unit::PerSecond,
        worse: Worse::Lower,
        merge: Merge::Smallest,
        end: |r| r.audio.received.rate_per_sender.p5,
        ..Figure::BASE
    },
    Figure {
        step: true,
        phase: true,
        ..counted!(
            "congestion_received",
            "CONGESTION packets the server sent our clients",
            Congestion,
            |r| count(r.server_signals.congestion_received)
        )
    },
    Figure {
        name: "keyframe_answer_p99_ms",
        about: "99th percentile from a key-frame request's arrival to the key frame's send",
        unit: Unit::Ms,
        merge: Merge::Largest,
        live: Some(Live::Hist(HistId::Keyframe, Q::P99)),
        end: |r| r.server_signals.keyframe_answer_ms.p99,
        ..Figure::BASE
    },
    counted!(
        "room_congestion_seen",
        "CONGESTION packets about other senders of the room (the server tells every member)",
        RoomCongestion,
        |r| count(r.server_signals.room_congestion_seen)
    ),
    Figure {
        name: "keyframe_wait_p99_ms",
        about: "99th percentile from a key-frame request a browser client sent to the key frame it asked for",
        unit: Unit::Ms,
        merge: Merge::Largest,
        live: Some(Live::Hist(HistId::KeyframeWait, Q::P99)),
        end: |r| r.server_signals.keyframe_wait_ms.p99,
        ..Figure::BASE
    },
    Figure {
        name: "server_rtt_p50_ms",
        about: "median echo time of browser clients' RTT probes through the server (its event loop as a participant feels it, not QUIC's RTT)",
        unit: Unit::Ms,
        merge: Merge::Largest,
        live: Some(Live::Hist(HistId::ServerRtt, Q::P50)),
        end: |r| r.server_signals.server_rtt_ms.p50,
        ..Figure::BASE
    },
    Figure {
        name: "server_rtt_p99_ms",
        about: "99th percentile echo time of browser clients' RTT probes through the server",
        unit: Unit::Ms,
        merge: Merge::Largest,
        live: Some(Live::Hist(HistId::ServerRtt, Q::P99)),
        step: true,
        phase: true,
        end: |r| r.server_signals.server_rtt_ms.p99,
        ..Figure::BASE
    },
    Figure {
        name: "server_rtt_max_ms",
        about: "longest echo time of browser clients' RTT probes through the server",
        unit: Unit::Ms,
        merge: Merge::Largest,
        live: Some(Live::Hist(HistId::ServerRtt, Q::Max)),
        end: |r| r.server_signals.server_rtt_ms.max,
        ..Figure::BASE
    },
    Figure {
        name: "join_visibility_p99_ms",
        about: "99th percentile from a client's first packet to its first packet at a peer",
        unit: Unit::Ms,
        merge: Merge::Largest,
        live: Some(Live::Hist(HistId::Join, Q::P99)),
        end: |r| r.server_signals.join_visibility_ms.p99,
        ..Figure::BASE
    },
    Figure {
        phase: true,
        ..counted!(
            "joins",
            "sessions that came up: first joins, rejoins and returns after a storm",
            Joins,
            |r| count(r.behaviour.as_ref().map_or(0, |b| b.measured.joins))
        )
    },
    Figure {
        phase: true,
        ..counted!(
            "leaves",
            "sessions ended on purpose by the schedule (churn, storms, phases)",
            Leaves,
            |r| count(r.behaviour.as_ref().map_or(0, |b| b.measured.leaves))
        )
    },
    Figure {
        phase: true,
        ..counted!(
            "rejoins",
            "sessions that came up after one ended on purpose",
            Rejoins,
            |r| count(r.behaviour.as_ref().map_or(0, |b| b.measured.rejoins))
        )
    },
    Figure {
        name: "rejoin_p99_ms",
        about: "99th percentile from going back after leaving on purpose to the new session being up",
        unit: Unit::Ms,
        merge: Merge::Largest,
        live: Some(Live::Hist(HistId::Rejoin, Q::P99)),
        phase: true,
        end: |r| r.behaviour.as_ref()?.rejoin_ms.p99,
        ..Figure::BASE
    },
    Figure {
        name: "delivered_share",
        about: "media packets received in time (not lost, not late) over those expected from senders of this process (audio and video, exact: sent after each receiver joined; 0..1); also built in as >= 0.01 when any were expected",
        unit: Unit::Share,
        worse: Worse::Lower,
        merge: Merge::Smallest,
        end: |r| r.delivered_share(),
        ..Figure::BASE
    },
    Figure {
        name: "connected_at_end_share",
        about: "clients connected (or stalled) when the run stopped over clients started (0..1); also built in as >= 0.5",
        unit: Unit::Share,
        worse: Worse::Lower,
        merge: Merge::Smallest,
        live: Some(Live::ConnectedShare),
        end: |r| {
            let c = &r.clients;
            (c.started_at_end > 0).then(|| c.connected_at_end as f64 / c.started_at_end as f64)
        },
        ..Figure::BASE
    },
    counted!(
        "stalls",
        "times a client stalled: session open, nothing acknowledged for stall_after",
        Stalls,
        |r| count(r.clients.stalls)
    ),
    Figure {
        name: "generator_saturated",
        about: "1 when this process could not keep its schedule or its host was short of CPU (so \"< 1\" requires it false)",
        unit: Unit::Flag,
        merge: Merge::Largest,
        live: Some(Live::Saturated),
        end: |r| Some(f64::from(u8::from(r.generator.saturated))),
        ..Figure::BASE
    },
    Figure {
        name: "server_cores_max",
        about: "most CPU cores the server's process used in one timeline interval (`server: {pid}`; absent without one)",
        unit: Unit::Cores,
        merge: Merge::Same,
        end: |r| r.server_cost.as_ref()?.cores_max,
        ..Figure::BASE
    },
    Figure {
        name: "server_rss_peak_mb",
        about: "largest resident memory of the server's process seen in a timeline sample (`server: {pid}`)",
        unit: Unit::Mb,
        merge: Merge::Same,
        end: |r| r.server_cost.as_ref()?.rss_peak_mb,
        ..Figure::BASE
    },
    percentile!("audio_cross_host_latency_p50_ms", "median one-way audio latency from senders in other processes (clock sync)", false, cross_host_latency_ms, P50, AudioCrossHost),
    percentile!("audio_cross_host_latency_p95_ms", "95th percentile one-way audio latency from senders in other processes (clock sync)", false, cross_host_latency_ms, P95, AudioCrossHost),
    percentile!("audio_cross_host_latency_p99_ms", "99th percentile one-way audio latency from senders in other processes (clock sync)", false, cross_host_latency_ms, P99, AudioCrossHost),
    percentile!("audio_cross_host_latency_max_ms", "largest one-way audio latency from senders in other processes (clock sync)", false, cross_host_latency_ms, Max, AudioCrossHost),
    percentile!("audio_jitter_p50_ms", "median RFC 3550 audio interarrival jitter", false, jitter_ms, P50, AudioJitter),
    percentile!("audio_jitter_p95_ms", "95th percentile RFC 3550 audio interarrival jitter", false, jitter_ms, P95, AudioJitter),
    percentile!("audio_jitter_p99_ms", "99th percentile RFC 3550 audio interarrival jitter", false, jitter_ms, P99, AudioJitter),
    percentile!("audio_jitter_max_ms", "largest RFC 3550 audio interarrival jitter", false, jitter_ms, Max, AudioJitter),
    percentile!("video_cross_host_latency_p50_ms", "median one-way video latency from senders in other processes (clock sync)", true, cross_host_latency_ms, P50, VideoCrossHost),
    percentile!("video_cross_host_latency_p95_ms", "95th percentile one-way video latency from senders in other processes (clock sync)", true, cross_host_latency_ms, P95, VideoCrossHost),
    percentile!("video_cross_host_latency_p99_ms", "99th percentile one-way video latency from senders in other processes (clock sync)", true, cross_host_latency_ms, P99, VideoCrossHost),
    percentile!("video_cross_host_latency_max_ms", "largest one-way video latency from senders in other processes (clock sync)", true, cross_host_latency_ms, Max, VideoCrossHost),
    percentile!("video_jitter_p50_ms", "median RFC 3550 video interarrival jitter", true, jitter_ms, P50, VideoJitter),
    percentile!("video_jitter_p95_ms", "95th percentile RFC 3550 video interarrival jitter", true, jitter_ms, P95, VideoJitter),
    percentile!("video_jitter_p99_ms", "99th percentile RFC 3550 video interarrival jitter", true, jitter_ms, P99, VideoJitter),
    percentile!("video_jitter_max_ms", "largest RFC 3550 video interarrival jitter", true, jitter_ms, Max, VideoJitter),
    score!("audio_mos_p5", "5th percentile of the participants' audio MOS (ITU-T G.107 E-model)", |s| s.run.audio_mos.p5),
    score!("audio_mos_p50", "median of the participants' audio MOS (ITU-T G.107 E-model)", |s| s.run.audio_mos.p50),
    score!("audio_mos_mean", "mean of the participants' audio MOS (ITU-T G.107 E-model)", |s| s.run.audio_mos.mean),
    score!("video_score_p5", "5th percentile of the participants' video score (frame rate, bits per pixel, freezes)", |s| s.run.video_score.p5),
    score!("video_score_p50", "median of the participants' video score (frame rate, bits per pixel, freezes)", |s| s.run.video_score.p50),
    score!("video_score_mean", "mean of the participants' video score (frame rate, bits per pixel, freezes)", |s| s.run.video_score.mean),
    Figure {
        name: "green_share",
        about: "participants whose verdict (worst of upstream's A/V/L/Q/S bands) is green, over those with a verdict (0..1)",
        unit: Unit::Share,
        worse: Worse::Lower,
        merge: Merge::Smallest,
        end: |r| r.scores.as_ref()?.run.verdicts.green_share(),
        ..Figure::BASE
    },
    Figure {
        name: "red_participants",
        about: "participants with a band of upstream's A/V/L/Q/S in red",
        end: |r| count(r.scores.as_ref()?.run.verdicts.red),
        ..Figure::BASE
    },
];

/// The figure called `name`.
pub fn get(name: &str) -> Option<&'static Figure> {
    FIGURES.iter().find(|f| f.name == name)
}

/// Why a threshold cannot read `f` in `scope`; `None` when it can. The
/// generator's own figures are the process's, and the server's the run's,
/// not a group's; percentiles
/// are kept per group (histogram shards), not per meeting; a phase is a
/// window of the run, which gives only the live figures.
pub fn unscoped_reason(f: &Figure, scope: &crate::scope::Scope) -> Option<String> {
    use crate::scope::Scope;
    let kind = scope.kind()?;
    if (matches!(
        f.name,
        "generator_saturated" | "connected_at_end_share" | "delivered_share"
    ) || f.merge == Merge::Same)
        && !matches!(scope, Scope::Phase(_))
    {
        return Some(format!(
            "{} is the generator's or the whole run's, not a {kind}'s",
            f.name
        ));
    }
    match (scope, f.live) {
        (Scope::Phase(_), None) => Some(format!(
            "{} is only known at the end, and a phase is a window of the run (live figures: the latency, cross-host latency and jitter percentiles, {})",
            f.name,
            live_names()
        )),
        (Scope::Meeting(_), Some(Live::Hist(..))) => Some(format!(
            "{} is a percentile, and percentiles are not kept per meeting: scope it by group or network",
            f.name
        )),
        _ => None,
    }
}

/// Every figure's name, in registry order.
pub fn names() -> impl Iterator<Item = &'static str> {
    FIGURES.iter().map(|f| f.name)
}

/// Whether a window of the run gives `name` (live thresholds, search
/// steps' SLOs, phases).
pub fn is_live(name: &str) -> bool {
    get(name).is_some_and(Figure::is_live)
}

/// The live figures outside the percentile families, joined with `, `:
/// how errors list what a window gives besides "the latency, cross-host
/// latency and jitter percentiles".
pub fn live_names() -> String {
    FIGURES
        .iter()
        .filter(|f| f.is_live() && !f.percentile)
        .map(|f| f.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The command that writes the docs' figures table.
pub const MARKDOWN_COMMAND: &str =
    "cargo run -p synth-report --features cli -- figures > docs/src/reference/figures.md";

/// The figures table of the docs, as markdown (`docs/src/reference/figures.md`).
pub fn markdown() -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "<!-- Made from the figure registry (report/src/figure.rs) by `{MARKDOWN_COMMAND}`; do not edit. -->\n"
    );
    o.push_str("| figure | unit | worse when | live | merged | measures |\n");
    o.push_str("| --- | --- | --- | --- | --- | --- |\n");
    for f in FIGURES {
        let _ = writeln!(
            o,
            "| `{}` | {} | {} | {} | {} | {} |",
            f.name,
            f.unit.name(),
            match f.worse {
                Worse::Higher => "higher",
                Worse::Lower => "lower",
            },
            if f.is_live() { "yes" } else { "end only" },
            match f.merge {
                Merge::Adds => "adds",
                Merge::Largest => "largest",
                Merge::Smallest => "smallest",
                Merge::Same => "first pod's",
            },
            f.about.replace('|', "\\|")
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_listed_in_index_order() {
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i, "{c:?}");
        }
    }

    #[test]
    fn names_are_unique_and_aliases_point_at_figures() {
        let mut seen = std::collections::BTreeSet::new();
        for f in FIGURES {
            assert!(seen.insert(f.name), "{} twice", f.name);
            if let Some(a) = f.alias_of {
                let target = get(a).unwrap_or_else(|| panic!("{} aliases unknown {a}", f.name));
                assert_eq!(f.live, target.live, "{} reads as {a}", f.name);
            }
        }
    }

    /// A figure's unit follows its name: the `_ms` figures are in ms, the
    /// percentile families are exactly the `<media>_<kind>_<q>_ms` names.
    #[test]
    fn units_and_families_agree_with_names() {
        for f in FIGURES {
            assert_eq!(f.name.ends_with("_ms"), f.unit == Unit::Ms, "{}", f.name);
            let family = ["_latency_", "_cross_host_latency_", "_jitter_"]
                .iter()
                .any(|k| f.name.contains(k))
                && (f.name.starts_with("audio_") || f.name.starts_with("video_"));
            assert_eq!(family, f.percentile, "{}", f.name);
            assert_eq!(f.merge == Merge::Adds, f.unit == Unit::Count, "{}", f.name);
            // Pods' values combine to the worse: the smaller where lower is worse.
            if f.merge != Merge::Adds {
                assert_eq!(
                    f.merge == Merge::Smallest,
                    f.worse == Worse::Lower,
                    "{}",
                    f.name
                );
            }
        }
    }

    /// The docs' table is the registry's: a figure added, renamed or
    /// changed in the code fails here until the table is made again.
    #[test]
    fn the_docs_figures_table_is_the_registrys() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/src/reference/figures.md"
        );
        let docs = std::fs::read_to_string(path).expect("the docs' figures table");
        assert!(
            docs == markdown(),
            "{path} is not the registry's table: run `{MARKDOWN_COMMAND}`"
        );
    }

    #[test]
    fn steps_and_phases_report_live_figures_only() {
        for f in FIGURES.iter().filter(|f| f.step || f.phase) {
            assert!(
                f.is_live(),
                "{} is reported per window but no window gives it",
                f.name
            );
        }
    }
}
