//! What happened between two instants of a run.
//!
//! A [`Snapshot`] holds every counter of the run summed, and every histogram
//! merged, at one instant (the engine takes them from its live metrics). A
//! [`Window`] between two snapshots has the counts of what happened in it
//! (differences) and percentiles of what was recorded in it (the later
//! histogram minus the earlier one). The window since the previous snapshot
//! is a timeline [`Sample`]; the window since the start gives the figures
//! live thresholds are checked against; the window of a capacity-search
//! step or a phase gives that step's or phase's figures. Which figures a
//! window gives, and how, is the figure registry's [`Live`].

use hdrhistogram::Histogram;

use crate::figure::{self, Counter, HistId, Live, Q};
use crate::health::Limits;
use crate::model::{Av, ByState, Event, Sample, P2};
use crate::num::round3;

/// Every counter of the run summed, and every histogram merged, at one instant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Seconds since the run started.
    pub t_s: f64,
    /// Wall clock, Unix ms.
    pub unix_ms: u64,
    /// Clients in each state.
    pub clients: ByState,
    /// Clients connected at least once.
    pub ever_connected: u64,
    /// Clients that failed without ever connecting.
    pub failed_unconnected: u64,
    /// Media packets sent.
    pub sent: Av<u64>,
    /// Media packets received.
    pub recv: Av<u64>,
    /// Bytes sent, every packet.
    pub sent_bytes: u64,
    /// Bytes received, every packet.
    pub recv_bytes: u64,
    /// Packets missing (holes in the sequence numbers).
    pub missing: Av<u64>,
    /// Packets late.
    pub late: Av<u64>,
    /// Corrupted frames.
    pub corrupted: u64,
    /// Video freezes.
    pub freezes: u64,
    /// CONGESTION packets received.
    pub congestion: u64,
    /// Reconnections.
    pub reconnects: u64,
    /// Sessions that came up.
    pub joins: u64,
    /// Sessions ended on purpose.
    pub leaves: u64,
    /// Sessions up again after one ended on purpose.
    pub rejoins: u64,
    /// Stalls.
    pub stalls: u64,
    /// Time the senders waited on the server or skipped, µs.
    pub server_delay_us: u64,
    /// This process's CPU seconds.
    pub cpu_seconds: f64,
    /// Its resident memory.
    pub rss_bytes: u64,
    /// The histograms, indexed by [`HistId`].
    pub hists: Vec<Histogram<u64>>,
}

impl Snapshot {
    /// A snapshot of nothing at the run's start (`t_s` 0): the origin of
    /// cumulative windows. `unix_ms` is the run's start on the wall clock,
    /// `cpu_seconds` the process's CPU time then.
    pub fn zero(unix_ms: u64, cpu_seconds: f64) -> Snapshot {
        Snapshot {
            t_s: 0.0,
            unix_ms,
            clients: ByState::default(),
            ever_connected: 0,
            failed_unconnected: 0,
            sent: Av::default(),
            recv: Av::default(),
            sent_bytes: 0,
            recv_bytes: 0,
            missing: Av::default(),
            late: Av::default(),
            corrupted: 0,
            freezes: 0,
            congestion: 0,
            reconnects: 0,
            joins: 0,
            leaves: 0,
            rejoins: 0,
            stalls: 0,
            server_delay_us: 0,
            cpu_seconds,
            rss_bytes: 0,
            hists: (0..HistId::COUNT).map(|_| crate::hist::new()).collect(),
        }
    }

    /// Clients that have connected at least once or failed without ever
    /// connecting: those whose connecting is over.
    pub fn resolved(&self) -> u64 {
        self.ever_connected + self.failed_unconnected
    }

    /// Clients connected (or stalled) at this instant.
    pub fn connected(&self) -> u64 {
        self.clients.connected + self.clients.stalled
    }

    fn counter(&self, c: Counter) -> u64 {
        match c {
            Counter::Failed => self.clients.failed,
            Counter::Reconnects => self.reconnects,
            Counter::AudioMissing => self.missing.audio,
            Counter::VideoMissing => self.missing.video,
            Counter::AudioLate => self.late.audio,
            Counter::VideoLate => self.late.video,
            Counter::Corrupted => self.corrupted,
            Counter::Freezes => self.freezes,
            Counter::AudioReceived => self.recv.audio,
            Counter::VideoReceived => self.recv.video,
            Counter::Congestion => self.congestion,
            Counter::Joins => self.joins,
            Counter::Leaves => self.leaves,
            Counter::Rejoins => self.rejoins,
            Counter::Stalls => self.stalls,
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

    fn ms(&self, h: HistId, q: Q) -> Option<f64> {
        let h = &self.hists[h as usize];
        if h.is_empty() {
            return None;
        }
        let v = match q {
            Q::Max => h.max(),
            q => h.value_at_quantile(q.fraction()),
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
    pub fn saturated(&self, limits: &Limits) -> bool {
        let late = self
            .ms(HistId::Lateness, Q::P99)
            .is_some_and(|p| p > limits.lateness_p99_ms);
        let explained = self.delta(|s| s.server_delay_us) >= 1_000_000;
        let busy = self.cpu_share().is_some_and(|c| c >= limits.cpu_share_mean);
        (late && !explained) || busy
    }

    /// The value of a figure in this window; `None` for a figure no window
    /// gives (see [`figure::Figure::live`]) or with no data in it.
    pub fn figure(&self, name: &str) -> Option<f64> {
        self.measure(figure::get(name)?.live?)
    }

    /// What `live` measures in this window.
    pub fn measure(&self, live: Live) -> Option<f64> {
        Some(match live {
            Live::ConnectRate => {
                let ok = self.delta(|s| s.ever_connected);
                let failed = self.delta(|s| s.failed_unconnected);
                if ok + failed == 0 {
                    return None;
                }
                ok as f64 / (ok + failed) as f64
            }
            Live::Hist(h, q) => return self.ms(h, q),
            Live::Count(c) => self.delta(|s| s.counter(c)) as f64,
            Live::ConnectedShare => {
                let st = &self.to.clients;
                let started = st.connecting
                    + st.connected
                    + st.stalled
                    + st.reconnecting
                    + st.failed
                    + st.done;
                if started == 0 {
                    return None;
                }
                (st.connected + st.stalled) as f64 / started as f64
            }
            Live::Saturated => f64::from(u8::from(self.saturated(&Limits::default()))),
        })
    }

    /// The window as a timeline sample.
    pub fn sample(&self, phase: Option<String>, failing: Vec<String>) -> Sample {
        let av = |f: fn(&Snapshot) -> Av<u64>| Av {
            audio: f(self.to).audio.saturating_sub(f(self.from).audio),
            video: f(self.to).video.saturating_sub(f(self.from).video),
        };
        let p = |h: HistId| P2 {
            p50: self.ms(h, Q::P50).map(round3),
            p99: self.ms(h, Q::P99).map(round3),
        };
        let mbps = |b: u64| round3(b as f64 * 8.0 / self.secs() / 1e6);
        Sample {
            t_s: round3(self.to.t_s),
            unix_ms: self.to.unix_ms,
            phase,
            clients: self.to.clients,
            sent_packets: av(|s| s.sent),
            recv_packets: av(|s| s.recv),
            sent_mbps: mbps(self.delta(|s| s.sent_bytes)),
            recv_mbps: mbps(self.delta(|s| s.recv_bytes)),
            lost: Av {
                audio: self.to.missing.audio as i64 - self.from.missing.audio as i64,
                video: self.to.missing.video as i64 - self.from.missing.video as i64,
            },
            latency_ms: Av {
                audio: p(HistId::AudioLatency),
                video: p(HistId::VideoLatency),
            },
            jitter_ms: Av {
                audio: self.ms(HistId::AudioJitter, Q::P99).map(round3),
                video: self.ms(HistId::VideoJitter, Q::P99).map(round3),
            },
            freezes: self.delta(|s| s.freezes),
            lateness_p99_ms: self.ms(HistId::Lateness, Q::P99).map(round3),
            cpu_share: self.cpu_share().map(|c| (c * 1000.0).round() / 1000.0),
            rss_mb: round3(self.to.rss_bytes as f64 / 1e6),
            failing,
        }
    }
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
