//! The run over time: snapshots of the [`Metrics`], the figures of the
//! window between two of them, and the report's timeline.
//!
//! A [`Snapshot`] sums every counter and merges every histogram of the run at
//! one instant. A [`Window`] between two snapshots has the counts of what
//! happened in it (differences) and percentiles of what was recorded in it
//! (the later histogram minus the earlier one). The run takes a snapshot
//! every `timeline_interval`: the window since the previous one is a timeline
//! [`Sample`]; the window since the start gives the figures live thresholds
//! are checked against; the window of a capacity-search step gives that
//! step's figures.

use std::sync::atomic::Ordering::Relaxed;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::metrics::{Metrics, Process, State};
use crate::report::round3;

/// The histograms a snapshot keeps, in [`Snapshot::hists`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
enum H {
    Connect,
    Lateness,
    Latency0,
    Latency1,
    Cross0,
    Cross1,
    Jitter0,
    Jitter1,
    Keyframe,
    Join,
    Rejoin,
}

const HISTS: usize = 11;

/// Every counter of the run summed, and every histogram merged, at one instant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Seconds since the run started.
    pub t_s: f64,
    /// Wall clock, Unix ms.
    pub unix_ms: u64,
    states: [u64; 8],
    ever_connected: u64,
    failed_unconnected: u64,
    sent: [u64; 2],
    recv: [u64; 2],
    sent_bytes: u64,
    recv_bytes: u64,
    missing: [u64; 2],
    late: [u64; 2],
    corrupted: u64,
    freezes: u64,
    congestion: u64,
    reconnects: u64,
    /// Sessions up, ended on purpose, and up again after one of those.
    people: [u64; 3],
    stalls: u64,
    server_delay_us: u64,
    cpu_seconds: f64,
    rss_bytes: u64,
    hists: Vec<Histogram<u64>>,
}

impl Snapshot {
    /// Clients that have connected at least once or failed without ever
    /// connecting: those whose connecting is over.
    pub fn resolved(&self) -> u64 {
        self.ever_connected + self.failed_unconnected
    }

    /// Everything `m` has counted until now.
    pub fn take(m: &Metrics) -> Snapshot {
        let media = |f: &dyn Fn(&crate::metrics::ClientStats, usize) -> u64| {
            [m.sum(|c| f(c, 0)), m.sum(|c| f(c, 1))]
        };
        let (mut ever, mut failed_unconnected) = (0, 0);
        for c in &m.clients {
            let connected = c.ever_connected.load(Relaxed);
            ever += u64::from(connected);
            failed_unconnected += u64::from(!connected && c.state() == State::Failed);
        }
        let p = Process::now();
        let hists = [
            &m.connect,
            &m.lateness,
            &m.latency[0],
            &m.latency[1],
            &m.cross_host_latency[0],
            &m.cross_host_latency[1],
            &m.jitter[0],
            &m.jitter[1],
            &m.keyframe_answer,
            &m.join_visibility,
            &m.rejoin,
        ]
        .iter()
        .map(|h| h.merged())
        .collect();
        Snapshot {
            t_s: m.started.elapsed().as_secs_f64(),
            unix_ms: synth_common::clock::unix_ms_u64(),
            states: m.states(),
            ever_connected: ever,
            failed_unconnected,
            sent: media(&|c, i| c.sent_packets[i].load(Relaxed)),
            recv: media(&|c, i| c.recv_packets[i].load(Relaxed)),
            sent_bytes: m.sum(|c| c.sent_bytes.iter().map(|b| b.load(Relaxed)).sum()),
            recv_bytes: m.sum(|c| c.recv_bytes.iter().map(|b| b.load(Relaxed)).sum()),
            missing: media(&|c, i| c.missing[i].load(Relaxed)),
            late: media(&|c, i| c.late[i].load(Relaxed)),
            corrupted: m.sum(|c| c.corrupted.iter().map(|b| b.load(Relaxed)).sum()),
            freezes: m.sum(|c| c.freezes.load(Relaxed)),
            congestion: m.sum(|c| c.congestion.load(Relaxed)),
            reconnects: m.sum(|c| c.reconnects.load(Relaxed)),
            people: [
                m.sum(|c| c.joins.load(Relaxed)),
                m.sum(|c| c.leaves.load(Relaxed)),
                m.sum(|c| c.rejoins.load(Relaxed)),
            ],
            stalls: m.sum(|c| c.stalls.load(Relaxed)),
            server_delay_us: m.sum(|c| c.credit_wait_us.load(Relaxed) + c.skipped_us.load(Relaxed)),
            cpu_seconds: p.cpu_seconds,
            rss_bytes: p.rss_bytes,
            hists,
        }
    }

    /// Clients connected (or stalled) at this instant.
    pub fn connected(&self) -> u64 {
        self.states[State::Connected as usize] + self.states[State::Stalled as usize]
    }

    /// A snapshot of nothing at the run's start (`unix_ms` now): the origin
    /// of cumulative windows.
    pub fn zero(m: &Metrics) -> Snapshot {
        Snapshot {
            t_s: 0.0,
            unix_ms: synth_common::clock::unix_ms_u64()
                .saturating_sub(m.started.elapsed().as_millis() as u64),
            states: [0; 8],
            ever_connected: 0,
            failed_unconnected: 0,
            sent: [0; 2],
            recv: [0; 2],
            sent_bytes: 0,
            recv_bytes: 0,
            missing: [0; 2],
            late: [0; 2],
            corrupted: 0,
            freezes: 0,
            congestion: 0,
            reconnects: 0,
            people: [0; 3],
            stalls: 0,
            server_delay_us: 0,
            cpu_seconds: Process::now().cpu_seconds,
            rss_bytes: 0,
            hists: (0..HISTS).map(|_| crate::hist::new()).collect(),
        }
    }
}

/// What happened between two snapshots.
#[derive(Debug)]
pub struct Window<'a> {
    from: &'a Snapshot,
    to: &'a Snapshot,
    hists: Vec<Histogram<u64>>,
    cores: f64,
}

/// Figures a [`Window`] can give: counts of what happened in it, percentiles
/// of what was recorded in it, and the clients' states at its end. The
/// others (rates per pair, shares, bitrates, unacknowledged sends) are only
/// known at the end of the run.
pub const WINDOW_FIGURES: &[&str] = &[
    "connect_success_rate",
    "connect_p95_ms",
    "connect_p99_ms",
    "failed_clients",
    "reconnects",
    "send_lateness_p50_ms",
    "send_lateness_p99_ms",
    "send_lateness_max_ms",
    "audio_lost",
    "video_lost",
    "audio_gaps",
    "video_gaps",
    "audio_late",
    "video_late",
    "corrupted_frames",
    "video_freezes",
    "audio_received_packets",
    "video_received_packets",
    "congestion_received",
    "keyframe_answer_p99_ms",
    "join_visibility_p99_ms",
    "joins",
    "leaves",
    "rejoins",
    "rejoin_p99_ms",
    "connected_at_end_share",
    "stalls",
    "generator_saturated",
];

/// Whether a threshold figure can be checked on a window (live, or per
/// search step): one of [`WINDOW_FIGURES`], or a latency, cross-host
/// latency or jitter percentile.
pub fn window_figure(name: &str) -> bool {
    WINDOW_FIGURES.contains(&name) || percentile_of(name).is_some()
}

/// `audio_latency_p99_ms` → (the histogram, 0.99).
fn percentile_of(name: &str) -> Option<(H, f64)> {
    let n = name.strip_suffix("_ms")?;
    let (media, rest) = n.split_once('_')?;
    let (which, q) = rest.rsplit_once('_')?;
    let q = match q {
        "p50" => 0.5,
        "p95" => 0.95,
        "p99" => 0.99,
        "max" => 1.0,
        _ => return None,
    };
    let h = match (media, which) {
        ("audio", "latency") => H::Latency0,
        ("video", "latency") => H::Latency1,
        ("audio", "cross_host_latency") => H::Cross0,
        ("video", "cross_host_latency") => H::Cross1,
        ("audio", "jitter") => H::Jitter0,
        ("video", "jitter") => H::Jitter1,
        _ => return None,
    };
    Some((h, q))
}

impl<'a> Window<'a> {
    /// The window from `from` to `to` (a later snapshot of the same run);
    /// `cores` are those the CPU share is of.
    pub fn new(from: &'a Snapshot, to: &'a Snapshot, cores: f64) -> Window<'a> {
        let hists = to
            .hists
            .iter()
            .zip(&from.hists)
            .map(|(b, a)| {
                let mut d = b.clone();
                if !a.is_empty() {
                    // Counts only grow, so this cannot fail; if it did, the
                    // later histogram alone is the honest upper bound.
                    let _ = d.subtract(a);
                }
                d
            })
            .collect();
        Window {
            from,
            to,
            hists,
            cores: if cores > 0.0 { cores } else { 1.0 },
        }
    }

    fn secs(&self) -> f64 {
        (self.to.t_s - self.from.t_s).max(1e-6)
    }

    fn ms(&self, h: H, q: f64) -> Option<f64> {
        let h = &self.hists[h as usize];
        if h.is_empty() {
            return None;
        }
        let v = if q >= 1.0 {
            h.max()
        } else {
            h.value_at_quantile(q)
        };
        Some(v as f64 / 1000.0)
    }

    fn delta(&self, f: impl Fn(&Snapshot) -> u64) -> u64 {
        f(self.to).saturating_sub(f(self.from))
    }

    /// Share of the available cores this process used in the window (0..1).
    pub fn cpu_share(&self) -> Option<f64> {
        let used = self.to.cpu_seconds - self.from.cpu_seconds;
        (self.secs() > 0.01).then(|| (used / self.secs() / self.cores).clamp(0.0, 1.0))
    }

    /// Whether the generator could not keep up in the window: send lateness
    /// p99 over the limit that the server does not explain (a second or more
    /// of back-pressure or skipped schedule), or a CPU share at or above the
    /// mean limit (see [`crate::health::assess`]).
    pub fn saturated(&self, limits: &crate::health::Limits) -> bool {
        let late = self
            .ms(H::Lateness, 0.99)
            .is_some_and(|p| p > limits.lateness_p99_ms);
        let explained = self.delta(|s| s.server_delay_us) >= 1_000_000;
        let busy = self.cpu_share().is_some_and(|c| c >= limits.cpu_share_mean);
        (late && !explained) || busy
    }

    /// The value of a threshold figure in this window; `None` for a figure
    /// no window gives (see [`window_figure`]) or with no data in it.
    pub fn figure(&self, name: &str) -> Option<f64> {
        let d = |f: fn(&Snapshot) -> u64| self.delta(f) as f64;
        Some(match name {
            "connect_success_rate" => {
                let ok = self.delta(|s| s.ever_connected);
                let failed = self.delta(|s| s.failed_unconnected);
                if ok + failed == 0 {
                    return None;
                }
                ok as f64 / (ok + failed) as f64
            }
            "connect_p95_ms" => return self.ms(H::Connect, 0.95),
            "connect_p99_ms" => return self.ms(H::Connect, 0.99),
            "failed_clients" => d(|s| s.states[State::Failed as usize]),
            "reconnects" => d(|s| s.reconnects),
            "send_lateness_p50_ms" => return self.ms(H::Lateness, 0.5),
            "send_lateness_p99_ms" => return self.ms(H::Lateness, 0.99),
            "send_lateness_max_ms" => return self.ms(H::Lateness, 1.0),
            "audio_lost" | "audio_gaps" => d(|s| s.missing[0]),
            "video_lost" | "video_gaps" => d(|s| s.missing[1]),
            "audio_late" => d(|s| s.late[0]),
            "video_late" => d(|s| s.late[1]),
            "corrupted_frames" => d(|s| s.corrupted),
            "video_freezes" => d(|s| s.freezes),
            "audio_received_packets" => d(|s| s.recv[0]),
            "video_received_packets" => d(|s| s.recv[1]),
            "congestion_received" => d(|s| s.congestion),
            "keyframe_answer_p99_ms" => return self.ms(H::Keyframe, 0.99),
            "join_visibility_p99_ms" => return self.ms(H::Join, 0.99),
            "joins" => d(|s| s.people[0]),
            "leaves" => d(|s| s.people[1]),
            "rejoins" => d(|s| s.people[2]),
            "rejoin_p99_ms" => return self.ms(H::Rejoin, 0.99),
            "stalls" => d(|s| s.stalls),
            "connected_at_end_share" => {
                let st = &self.to.states;
                let started: u64 =
                    st.iter().sum::<u64>() - st[State::Pending as usize] - st[State::Away as usize];
                if started == 0 {
                    return None;
                }
                let up = st[State::Connected as usize] + st[State::Stalled as usize];
                up as f64 / started as f64
            }
            "generator_saturated" => {
                f64::from(u8::from(self.saturated(&crate::health::Limits::default())))
            }
            n => {
                let (h, q) = percentile_of(n)?;
                return self.ms(h, q);
            }
        })
    }

    /// The window as a timeline sample.
    pub fn sample(&self, phase: Option<String>, failing: Vec<String>) -> Sample {
        let st = &self.to.states;
        let av = |f: fn(&Snapshot) -> [u64; 2]| Av {
            audio: f(self.to)[0].saturating_sub(f(self.from)[0]),
            video: f(self.to)[1].saturating_sub(f(self.from)[1]),
        };
        let p = |h: H| P2 {
            p50: self.ms(h, 0.5).map(round3),
            p99: self.ms(h, 0.99).map(round3),
        };
        let mbps = |b: u64| round3(b as f64 * 8.0 / self.secs() / 1e6);
        Sample {
            t_s: round3(self.to.t_s),
            unix_ms: self.to.unix_ms,
            phase,
            clients: ByState {
                pending: st[State::Pending as usize],
                connecting: st[State::Connecting as usize],
                connected: st[State::Connected as usize],
                stalled: st[State::Stalled as usize],
                reconnecting: st[State::Reconnecting as usize],
                failed: st[State::Failed as usize],
                done: st[State::Done as usize],
                away: st[State::Away as usize],
            },
            sent_packets: av(|s| s.sent),
            recv_packets: av(|s| s.recv),
            sent_mbps: mbps(self.delta(|s| s.sent_bytes)),
            recv_mbps: mbps(self.delta(|s| s.recv_bytes)),
            lost: Av {
                audio: self.to.missing[0] as i64 - self.from.missing[0] as i64,
                video: self.to.missing[1] as i64 - self.from.missing[1] as i64,
            },
            latency_ms: Av {
                audio: p(H::Latency0),
                video: p(H::Latency1),
            },
            jitter_ms: Av {
                audio: self.ms(H::Jitter0, 0.99).map(round3),
                video: self.ms(H::Jitter1, 0.99).map(round3),
            },
            freezes: self.delta(|s| s.freezes),
            lateness_p99_ms: self.ms(H::Lateness, 0.99).map(round3),
            cpu_share: self.cpu_share().map(|c| (c * 1000.0).round() / 1000.0),
            rss_mb: round3(self.to.rss_bytes as f64 / 1e6),
            failing,
        }
    }
}

/// Audio and video.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Av<T> {
    /// Audio.
    pub audio: T,
    /// Video.
    pub video: T,
}

/// Median and 99th percentile (ms); `null` with no samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct P2 {
    /// Median.
    pub p50: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
}

/// Clients in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// 99th percentile of the send lateness in the interval (ms).
    pub lateness_p99_ms: Option<f64>,
    /// Share of the available cores this process used (0..1).
    pub cpu_share: Option<f64>,
    /// Resident memory at the end of the interval, MB.
    pub rss_mb: f64,
    /// Thresholds failing when checked live at the end of the interval.
    pub failing: Vec<String>,
}

impl Sample {
    /// Takes in the interval right after this one: counts add, states,
    /// memory and time are the later interval's, Mbit/s and the CPU share
    /// are averaged, percentiles take the larger (an upper bound of the
    /// pair's), the failing thresholds are the union.
    pub fn absorb(&mut self, later: &Sample) {
        let max = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(x), Some(y)) => Some(x.max(y)),
            (x, y) => x.or(y),
        };
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
        self.lateness_p99_ms = max(self.lateness_p99_ms, later.lateness_p99_ms);
        self.cpu_share = mean(self.cpu_share, later.cpu_share);
        self.rss_mb = later.rss_mb;
        for f in &later.failing {
            if !self.failing.contains(f) {
                self.failing.push(f.clone());
            }
        }
    }
}

/// The report's timeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

impl Event {
    /// An event now, at `snap`'s time.
    pub fn at(
        snap: &Snapshot,
        kind: &str,
        name: impl Into<String>,
        detail: impl Into<String>,
    ) -> Event {
        Event {
            t_s: round3(snap.t_s),
            unix_ms: snap.unix_ms,
            kind: kind.into(),
            name: name.into(),
            detail: detail.into(),
        }
    }
}
