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
use crate::host::HostReading;
use crate::model::{Av, ByState, Event, Sample, SessionEnds, P2};
use crate::num::round3;
use crate::server::ServerReading;

/// Every counter of the run summed, and every histogram merged, at one instant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Seconds since the run started.
    pub t_s: f64,
    /// Wall clock, Unix ms.
    pub unix_ms: u64,
    /// Clients in each state.
    pub clients: ByState,
    /// The counters, indexed by [`Counter`].
    pub counts: [u64; Counter::COUNT],
    /// This process's CPU seconds.
    pub cpu_seconds: f64,
    /// The host's CPU counters, where they could be read.
    pub host: Option<HostReading>,
    /// Its resident memory.
    pub rss_bytes: u64,
    /// The server beside the run, when the config watches it.
    pub server: Option<ServerReading>,
    /// The histograms, indexed by [`HistId`].
    pub hists: Vec<Histogram<u64>>,
}

impl Snapshot {
    /// A snapshot of nothing at the run's start (`t_s` 0): the origin of
    /// cumulative windows. `unix_ms` is the run's start on the wall clock,
    /// `cpu_seconds` the process's CPU time then, `host` the host's counters.
    pub fn zero(unix_ms: u64, cpu_seconds: f64, host: Option<HostReading>) -> Snapshot {
        Snapshot {
            t_s: 0.0,
            unix_ms,
            clients: ByState::default(),
            counts: [0; Counter::COUNT],
            cpu_seconds,
            host,
            rss_bytes: 0,
            server: None,
            hists: (0..HistId::COUNT).map(|_| crate::hist::new()).collect(),
        }
    }

    /// A counter's value.
    pub fn count(&self, c: Counter) -> u64 {
        self.counts[c as usize]
    }

    /// Clients that have connected at least once or failed without ever
    /// connecting: those whose connecting is over.
    pub fn resolved(&self) -> u64 {
        self.count(Counter::EverConnected) + self.count(Counter::FailedUnconnected)
    }

    /// Clients connected (or stalled) at this instant.
    pub fn connected(&self) -> u64 {
        self.clients.connected + self.clients.stalled
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

    fn delta(&self, c: Counter) -> u64 {
        self.to.count(c).saturating_sub(self.from.count(c))
    }

    /// A counter's change, negative when it fell (holes filled late).
    fn change(&self, c: Counter) -> i64 {
        self.to.count(c) as i64 - self.from.count(c) as i64
    }

    /// Audio's and video's change of two counters.
    fn av(&self, audio: Counter, video: Counter) -> Av<u64> {
        Av {
            audio: self.delta(audio),
            video: self.delta(video),
        }
    }

    /// Share of the available cores this process used in the window (0..1).
    pub fn cpu_share(&self) -> Option<f64> {
        let used = self.to.cpu_seconds - self.from.cpu_seconds;
        (self.secs() > 0.01).then(|| (used / self.secs() / self.cores).clamp(0.0, 1.0))
    }

    /// Share of the host's CPU time that was busy in the window (0..1).
    pub fn host_busy(&self) -> Option<f64> {
        let secs = Some(self.secs()).filter(|s| *s > 0.01)?;
        self.from.host?.busy_until(&self.to.host?, secs)
    }

    /// Share of the window in which some task waited for a CPU (0..1).
    pub fn host_pressure(&self) -> Option<f64> {
        let secs = Some(self.secs()).filter(|s| *s > 0.01)?;
        self.from.host?.pressure_until(&self.to.host?, secs)
    }

    /// Datagrams dropped at this process's sockets in the window (it read
    /// too late); `None` where they could not be read.
    pub fn socket_drops(&self) -> Option<u64> {
        self.from.host?.drops_until(&self.to.host?)
    }

    /// Mean CPU cores the server's process used in the window; `None`
    /// without one, or when either end has no reading of it.
    pub fn server_cores(&self) -> Option<f64> {
        let (a, b) = (self.from.server.as_ref()?, self.to.server.as_ref()?);
        a.sample_until(b, self.secs()).cores
    }

    /// Whether the generator could not keep up in the window: send lateness
    /// p99 over the limit that the server does not explain (a second or more
    /// of back-pressure or skipped schedule), a CPU share at or above the
    /// mean limit, or a host short of CPU (busy or starved at its limits;
    /// see [`crate::health::assess`]).
    pub fn saturated(&self, limits: &Limits) -> bool {
        let late = self
            .ms(HistId::Lateness, Q::P99)
            .is_some_and(|p| p > limits.lateness_p99_ms);
        let explained = self.delta(Counter::ServerDelayUs) >= 1_000_000;
        let busy = self.cpu_share().is_some_and(|c| c >= limits.cpu_share_mean);
        let host_short = self
            .host_busy()
            .is_some_and(|b| b >= limits.host_busy_share)
            || self
                .host_pressure()
                .is_some_and(|p| p >= limits.host_pressure_share);
        let read_late = self.socket_drops().is_some_and(|d| d > 0);
        (late && !explained) || busy || host_short || read_late
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
                let ok = self.delta(Counter::EverConnected);
                let failed = self.delta(Counter::FailedUnconnected);
                if ok + failed == 0 {
                    return None;
                }
                ok as f64 / (ok + failed) as f64
            }
            Live::Hist(h, q) => return self.ms(h, q),
            Live::Count(c) => self.delta(c) as f64,
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
            sent_packets: self.av(Counter::AudioSent, Counter::VideoSent),
            recv_packets: self.av(Counter::AudioReceived, Counter::VideoReceived),
            sent_mbps: mbps(self.delta(Counter::SentBytes)),
            recv_mbps: mbps(self.delta(Counter::ReceivedBytes)),
            lost: Av {
                audio: self.change(Counter::AudioMissing),
                video: self.change(Counter::VideoMissing),
            },
            latency_ms: Av {
                audio: p(HistId::AudioLatency),
                video: p(HistId::VideoLatency),
            },
            jitter_ms: Av {
                audio: self.ms(HistId::AudioJitter, Q::P99).map(round3),
                video: self.ms(HistId::VideoJitter, Q::P99).map(round3),
            },
            freezes: self.delta(Counter::Freezes),
            session_ends: SessionEnds {
                idle_timeout: self.delta(Counter::EndsIdleTimeout),
                server_closed: self.delta(Counter::EndsServerClosed),
                reset: self.delta(Counter::EndsReset),
                local_error: self.delta(Counter::EndsLocalError),
                planned: self.delta(Counter::EndsPlanned),
            },
            lateness_p99_ms: self.ms(HistId::Lateness, Q::P99).map(round3),
            server_rtt_ms: p(HistId::ServerRtt),
            cpu_share: self.cpu_share().map(|c| (c * 1000.0).round() / 1000.0),
            host_busy: self.host_busy().map(round3),
            host_pressure: self.host_pressure().map(round3),
            socket_drops: self.socket_drops(),
            rx_queue_kb: self
                .to
                .host
                .and_then(|h| h.sockets)
                .map(|s| crate::host::kib(s.rx_queue_bytes)),
            saturated: self.saturated(&Limits::default()),
            rss_mb: round3(self.to.rss_bytes as f64 / 1e6),
            server: match (&self.from.server, &self.to.server) {
                (Some(a), Some(b)) => Some(a.sample_until(b, self.secs())),
                (None, Some(b)) => Some(ServerReading::default().sample_until(b, self.secs())),
                _ => None,
            },
            failing,
            // The engine fills them with [`Sample::score`].
            audio_mos: None,
            video_score: None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::SocketReading;

    fn at(t_s: f64, idle_ticks: u64, drops: u64, queue: u64) -> Snapshot {
        let host = HostReading {
            idle_ticks,
            cpus: 2,
            ticks_per_s: 100,
            pressure_us: Some(0),
            sockets: Some(SocketReading {
                rx_queue_bytes: queue,
                drops,
            }),
        };
        Snapshot {
            t_s,
            ..Snapshot::zero(0, 0.0, Some(host))
        }
    }

    /// A drop at this process's sockets is enough for a window to have
    /// fallen behind; an idle host and no drops is not.
    #[test]
    fn drops_at_our_sockets_mean_the_window_fell_behind() {
        let limits = Limits::default();
        // 1 s, 2 CPUs at 100 ticks: 200 ticks, 150 idle.
        let (a, b) = (at(0.0, 0, 7, 0), at(1.0, 150, 7, 2048));
        let w = Window::new(&a, &b, 2.0);
        assert_eq!(w.socket_drops(), Some(0));
        assert!(!w.saturated(&limits));
        let s = w.sample(None, Vec::new());
        assert_eq!(
            (s.socket_drops, s.rx_queue_kb, s.saturated),
            (Some(0), Some(2.0), false)
        );
        let c = at(2.0, 300, 9, 0);
        let w = Window::new(&b, &c, 2.0);
        assert_eq!(w.socket_drops(), Some(2));
        assert!(w.saturated(&limits));
        assert!(w.sample(None, Vec::new()).saturated);
        assert_eq!(w.measure(Live::Saturated), Some(1.0));
        // Without a reading of the sockets: unknown, not behind.
        let mut d = at(3.0, 450, 0, 0);
        d.host = d.host.map(|h| HostReading { sockets: None, ..h });
        assert_eq!(Window::new(&c, &d, 2.0).socket_drops(), None);
    }
}
