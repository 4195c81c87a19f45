//! What a run measures, shared by the clients, the Prometheus endpoint and the report.
//!
//! Counters live per client ([`ClientStats`], plain atomics written by that
//! client's own tasks), so the packet path takes no lock and no label map;
//! totals are summed when scraped. Timings go to [`Hist`]: fixed Prometheus
//! buckets (atomics shared by every client of the run) for `/metrics`, and
//! HdrHistograms sharded by client behind mutexes that are rarely contended,
//! for the report's percentiles. `prometheus` lists the families `/metrics`
//! serves and writes them ([`Metrics::render`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hdrhistogram::Histogram;

mod prometheus;

/// Media classes used as the `media` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Media {
    /// Opus frames.
    Audio = 0,
    /// VP9 frames.
    Video = 1,
    /// Heartbeats.
    Heartbeat = 2,
    /// Everything else (CONNECTION, RTT, key-frame requests, meeting events).
    Other = 3,
    /// Screen-share frames (VP9, media type SCREEN).
    Screen = 4,
}

/// Label values, indexed by [`Media`].
pub const MEDIA: [&str; 5] = ["audio", "video", "heartbeat", "other", "screen"];

/// A client's connection state (the `state` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Not started yet (ramp-up).
    Pending = 0,
    /// First connection in progress.
    Connecting = 1,
    /// Session up.
    Connected = 2,
    /// Lost its session, trying again.
    Reconnecting = 3,
    /// Gave up (rejected, or every attempt failed).
    Failed = 4,
    /// Finished cleanly at the end of the run.
    Done = 5,
    /// Session open, but nothing sent has been acknowledged for `stall_after`
    /// (or a send has waited that long): derived when read, never stored.
    Stalled = 6,
    /// Left the meeting on purpose (its schedule's churn, a storm, a phase
    /// that lowered the count): between sessions, or gone for good.
    Away = 7,
}

impl State {
    /// Every state, indexed by its `u8`.
    pub const ALL: [State; 8] = [
        State::Pending,
        State::Connecting,
        State::Connected,
        State::Reconnecting,
        State::Failed,
        State::Done,
        State::Stalled,
        State::Away,
    ];

    fn from_u8(v: u8) -> State {
        State::ALL.get(v as usize).copied().unwrap_or(State::Done)
    }
}

/// Heartbeat flags, by their bit in [`ClientStats::flags`] (the `flag` label).
pub const FLAGS: [&str; 4] = ["audio", "video", "screen", "speaking"];

/// Why a connection attempt failed (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum FailReason {
    /// No answer within the connect timeout.
    Timeout = 0,
    /// The server refused the session (bad id or token, or meeting rules).
    Rejected = 1,
    /// The TLS handshake failed (certificate not trusted).
    Tls = 2,
    /// Any other transport error.
    Transport = 3,
}

/// Label values, indexed by [`FailReason`].
pub const REASONS: [&str; 4] = ["timeout", "rejected", "tls", "transport"];

/// One client's counters.
#[derive(Debug, Default)]
pub struct ClientStats {
    /// Packets sent, by [`Media`].
    pub sent_packets: [AtomicU64; 5],
    /// Bytes sent (whole PacketWrapper), by [`Media`].
    pub sent_bytes: [AtomicU64; 5],
    /// Packets received, by [`Media`].
    pub recv_packets: [AtomicU64; 5],
    /// Bytes received, by [`Media`].
    pub recv_bytes: [AtomicU64; 5],
    /// Frame bytes (payload only) sent, audio and video.
    pub sent_payload: [AtomicU64; 2],
    /// First and last media send, µs after the run started, plus one (0 = never).
    pub media_span_us: [AtomicU64; 2],
    /// Sequence numbers not received (yet) from the senders heard so far,
    /// audio and video: lost, once the run has ended ([`synth_common::seq`]).
    pub missing: [AtomicU64; 2],
    /// Packets that arrived after a higher sequence number, audio and video.
    pub reordered: [AtomicU64; 2],
    /// Packets whose sequence number had already arrived, audio and video.
    pub duplicates: [AtomicU64; 2],
    /// CONGESTION packets from the server (it dropped packets of this client).
    pub congestion: AtomicU64,
    /// Key-frame requests aimed at this client.
    pub keyframe_requests: AtomicU64,
    /// Key frames sent in answer to one.
    pub keyframes_answered: AtomicU64,
    /// Reconnections after a dropped session.
    pub reconnects: AtomicU64,
    /// Packets that could not be sent (stream or session errors).
    pub send_errors: AtomicU64,
    /// Received packets that did not parse.
    pub bad_packets: AtomicU64,
    /// PARTICIPANT_JOINED events seen.
    pub joined_events: AtomicU64,
    /// PARTICIPANT_LEFT events seen.
    pub left_events: AtomicU64,
    /// Packets the server acknowledged (every byte of their stream), by [`Media`].
    pub acked: [AtomicU64; 5],
    /// Received media packets that were late (more than `late_after` after
    /// they were due), audio and video.
    pub late: [AtomicU64; 2],
    /// Received frames from senders of this process that matched no frame of
    /// the pack (corrupted or truncated), audio and video.
    pub corrupted: [AtomicU64; 2],
    /// Video freezes seen.
    pub freezes: AtomicU64,
    /// Total duration of those freezes, µs.
    pub freeze_us: AtomicU64,
    /// The sequence number this client's sender assigns next, audio and
    /// video: what it really sent, for its peers' exact loss check.
    pub next_seq: [AtomicU64; 2],
    /// µs after the run started (plus one) of the oldest send not yet
    /// acknowledged, or of a send still waiting to go out; 0 when none.
    pub waiting_since_us: AtomicU64,
    /// Unix µs of this client's first packet sent (0 = none yet).
    pub first_packet_unix_us: AtomicU64,
    /// Unix µs of the first packet of its current planned session (0 =
    /// none yet): a peer that comes back is visible from then on.
    pub stay_first_packet_unix_us: AtomicU64,
    /// µs after the run started (plus one) of a key-frame request not yet
    /// answered (0 = none).
    pub keyframe_asked_us: AtomicU64,
    /// Time its sends waited for the server's stream credit (waits of a
    /// millisecond or more), µs: back-pressure.
    pub credit_wait_us: AtomicU64,
    /// Schedule its lanes skipped while its session was down or stalled, µs.
    pub skipped_us: AtomicU64,
    /// Times the client went [`State::Stalled`], counted by the run's monitor.
    pub stalls: AtomicU64,
    /// Time spent stalled, µs, as the run's monitor saw it (1 s steps).
    pub stalled_us: AtomicU64,
    /// Each sender as this client saw it, published when each of its
    /// sessions ends (the report's per-pair figures, library users and tests).
    pub peers: Mutex<BTreeMap<String, PeerView>>,
    /// Rendition switches of an adapting client (`adapt: true`), down and
    /// up, counted when its video lane really changed track.
    pub switches: [AtomicU64; 2],
    /// Time an adapting client's video lane spent on each rendition, in the
    /// order it first went there (empty for a client that does not adapt).
    pub renditions: Mutex<Vec<RenditionTime>>,
    /// Planned sessions that came up as a join (a first session, or an
    /// arrival of a participant free again).
    pub joins: AtomicU64,
    /// Sessions it ended on purpose (its schedule: churn, a storm, a phase).
    pub leaves: AtomicU64,
    /// Planned sessions that came up as a way back after churn or a storm.
    pub rejoins: AtomicU64,
    /// Sessions a storm dropped.
    pub storm_drops: AtomicU64,
    /// Times this sender resumed a medium it had stopped on purpose (audio,
    /// video, screen: unmuted, camera back on, share restarted, back in the
    /// meeting), counted before the first packet after the gap: a receiver
    /// that sees the count change knows the gap was no freeze.
    pub resumes: [AtomicU64; 3],
    /// Its heartbeats' flags now: bit 0 audio, 1 video, 2 screen, 3 speaking.
    pub flags: AtomicU8,
    /// Heartbeats it sent with `is_speaking` true.
    pub speaking_heartbeats: AtomicU64,
    /// Screen shares it started.
    pub screen_shares: AtomicU64,
    /// Actions of its schedule it carried out (mute, camera, screen, rendition).
    pub actions: AtomicU64,
    /// Current [`State`], as its `u8`: read through [`ClientStats::state`].
    state: AtomicU8,
    /// Whether the client was connected at least once.
    pub ever_connected: AtomicBool,
}

/// Time an adapting client spent sending one video rendition.
#[derive(Debug, Clone, PartialEq)]
pub struct RenditionTime {
    /// The pack's track name.
    pub name: String,
    /// The track's pack bitrate, bits per second.
    pub bps: f64,
    /// Time on it, µs.
    pub us: u64,
}

impl ClientStats {
    /// Adds `us` on rendition `name` (of `bps`) to the client's time per rendition.
    pub fn add_rendition_time(&self, name: &str, bps: f64, us: u64) {
        let Ok(mut r) = self.renditions.lock() else {
            return;
        };
        match r.iter_mut().find(|t| t.name == name) {
            Some(t) => t.us += us,
            None => r.push(RenditionTime {
                name: name.to_owned(),
                bps,
                us,
            }),
        }
    }

    /// The pack bitrate of the video it sent, weighted by the time on each
    /// rendition; `None` for a client that did not adapt (or no time yet).
    pub fn adapted_video_bps(&self) -> Option<f64> {
        let r = self.renditions.lock().ok()?;
        let total: u64 = r.iter().map(|t| t.us).sum();
        (total > 0).then(|| r.iter().map(|t| t.bps * t.us as f64).sum::<f64>() / total as f64)
    }

    /// Counts a sent packet.
    #[inline]
    pub fn sent(&self, m: Media, bytes: usize) {
        self.sent_packets[m as usize].fetch_add(1, Relaxed);
        self.sent_bytes[m as usize].fetch_add(bytes as u64, Relaxed);
    }

    /// Counts a received packet.
    #[inline]
    pub fn received(&self, m: Media, bytes: usize) {
        self.recv_packets[m as usize].fetch_add(1, Relaxed);
        self.recv_bytes[m as usize].fetch_add(bytes as u64, Relaxed);
    }

    /// Notes a media send for the client's active time.
    #[inline]
    pub fn mark_media_sent(&self, started: Instant) {
        let t = started.elapsed().as_micros() as u64 + 1;
        if self.media_span_us[0].load(Relaxed) == 0 {
            self.media_span_us[0].store(t, Relaxed);
        }
        self.media_span_us[1].store(t, Relaxed);
    }

    /// Time between the first and the last media send.
    pub fn media_active(&self) -> std::time::Duration {
        let (a, b) = (
            self.media_span_us[0].load(Relaxed),
            self.media_span_us[1].load(Relaxed),
        );
        std::time::Duration::from_micros(b.saturating_sub(a))
    }

    /// Sets the state.
    pub fn set_state(&self, s: State) {
        self.state.store(s as u8, Relaxed);
        if s == State::Connected {
            self.ever_connected.store(true, Relaxed);
        }
    }

    /// The state as set by the client (never [`State::Stalled`]).
    pub fn state(&self) -> State {
        State::from_u8(self.state.load(Relaxed))
    }

    /// The state at `now_us` (µs after the run started): [`State::Stalled`]
    /// for a connected client whose oldest unacknowledged send is older than
    /// `stall_after_us`.
    pub fn state_at(&self, now_us: u64, stall_after_us: u64) -> State {
        let s = self.state();
        let since = self.waiting_since_us.load(Relaxed);
        if s == State::Connected && since != 0 && now_us + 1 > since + stall_after_us {
            State::Stalled
        } else {
            s
        }
    }
}

/// One sender as one receiver saw it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PeerView {
    /// Audio and video: sequence accounting and experience figures.
    pub media: [synth_common::quality::Summary; 2],
    /// For a sender of this process: its next audio and video sequence
    /// numbers when this receiver joined (everything from there on had to arrive).
    pub expect_from: Option<[u64; 2]>,
    /// For a sender of this process: its next numbers when this receiver
    /// left the meeting on purpose for the last time (it was away at the
    /// end): nothing from there on had to arrive.
    pub until: Option<[u64; 2]>,
    /// This sender belongs to this process (same clock, known pack).
    pub ours: bool,
}

const SHARDS: usize = 16;

/// A timing distribution in microseconds: Prometheus buckets plus HdrHistograms.
#[derive(Debug)]
pub struct Hist {
    bounds_us: &'static [u64],
    buckets: Box<[AtomicU64]>,
    sum_us: AtomicU64,
    count: AtomicU64,
    shards: Box<[Mutex<Histogram<u64>>]>,
}

/// The most values one [`Hist::record_correct`] adds.
const MAX_CORRECTED: usize = 10_000;

/// Prometheus bucket bounds (µs) for send lateness.
pub const LATENESS_BUCKETS: &[u64] = &[
    250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 250_000, 1_000_000,
];
/// Prometheus bucket bounds (µs) for one-way latency.
pub const LATENCY_BUCKETS: &[u64] = &[
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 150_000, 250_000, 500_000,
    1_000_000, 2_500_000,
];
/// Prometheus bucket bounds (µs) for interarrival jitter.
pub const JITTER_BUCKETS: &[u64] = &[
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
];
/// Prometheus bucket bounds (µs) for connect time.
pub const CONNECT_BUCKETS: &[u64] = &[
    5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000, 30_000_000,
];

impl Hist {
    /// An empty distribution with the given Prometheus bucket bounds.
    pub fn new(bounds_us: &'static [u64]) -> Hist {
        Hist::with_shards(bounds_us, SHARDS)
    }

    /// The same with `shards` HdrHistograms (each about 190 KB) instead of
    /// the usual 16: for what is recorded now and then, not per packet.
    pub fn with_shards(bounds_us: &'static [u64], shards: usize) -> Hist {
        Hist {
            bounds_us,
            buckets: (0..bounds_us.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
            count: AtomicU64::new(0),
            shards: (0..shards.max(1))
                // The report's shape: 1 µs to 1 hour, 3 significant digits.
                .map(|_| Mutex::new(crate::hist::new()))
                .collect(),
        }
    }

    /// Records `us` and, as HdrHistogram's coordinated-omission correction
    /// does, the values a sample every `interval_us` would have had while the
    /// recorder was held up: `us - interval_us`, `us - 2 × interval_us`, …
    pub fn record_correct(&self, us: u64, interval_us: u64, shard: usize) {
        self.record(us, shard);
        if interval_us == 0 {
            return;
        }
        // At most MAX_CORRECTED values (a 200 s stall of 20 ms frames).
        let mut v = us;
        for _ in 0..MAX_CORRECTED {
            if v <= interval_us {
                break;
            }
            v -= interval_us;
            self.record(v, shard);
        }
    }

    /// Records one value; `shard` spreads lock use (pass the client index).
    #[inline]
    pub fn record(&self, us: u64, shard: usize) {
        if let Some(i) = self.bounds_us.iter().position(|&b| us <= b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.sum_us.fetch_add(us, Relaxed);
        self.count.fetch_add(1, Relaxed);
        if let Ok(mut h) = self.shards[shard % self.shards.len()].lock() {
            h.saturating_record(us.max(1));
        }
    }

    /// All shards merged.
    pub fn merged(&self) -> Histogram<u64> {
        let mut all = crate::hist::new();
        for s in self.shards.iter() {
            if let Ok(h) = s.lock() {
                let _ = all.add(&*h);
            }
        }
        all
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }
}

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
    /// Lateness of the event loops' timers (the generator's own health).
    pub loop_delay: Arc<crate::health::LoopDelay>,
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
}

impl Metrics {
    /// Metrics for `clients` planned clients; a session with nothing
    /// acknowledged for [`crate::config::defaults::STALL_AFTER`] counts as
    /// stalled (see [`Metrics::with_stall_after`]).
    pub fn new(clients: usize) -> Metrics {
        Metrics {
            clients: (0..clients)
                .map(|_| Arc::new(ClientStats::default()))
                .collect(),
            connect: Hist::with_shards(CONNECT_BUCKETS, 4),
            lateness: Hist::new(LATENESS_BUCKETS),
            latency: [Hist::new(LATENCY_BUCKETS), Hist::new(LATENCY_BUCKETS)],
            cross_host_latency: [Hist::new(LATENCY_BUCKETS), Hist::new(LATENCY_BUCKETS)],
            jitter: [Hist::new(JITTER_BUCKETS), Hist::new(JITTER_BUCKETS)],
            keyframe_answer: Hist::with_shards(LATENCY_BUCKETS, 2),
            join_visibility: Hist::with_shards(CONNECT_BUCKETS, 2),
            rejoin: Hist::with_shards(CONNECT_BUCKETS, 2),
            loop_delay: Arc::default(),
            stall_after_us: crate::config::defaults::STALL_AFTER.as_micros() as u64,
            connect_failures: Default::default(),
            ready: AtomicBool::new(false),
            first_failure: Mutex::new(None),
            started: Instant::now(),
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

    /// Sums one per-client counter over all clients.
    pub fn sum(&self, f: impl Fn(&ClientStats) -> u64) -> u64 {
        self.clients.iter().map(|c| f(c)).sum()
    }

    /// Clients in each state now, indexed by `State as usize`.
    pub fn states(&self) -> [u64; 8] {
        let now = self.started.elapsed().as_micros() as u64;
        let mut n = [0u64; 8];
        for c in &self.clients {
            n[c.state_at(now, self.stall_after_us) as usize] += 1;
        }
        n
    }

    /// The Prometheus text exposition (format 0.0.4), from the table of
    /// families in `metrics/prometheus.rs`.
    pub fn render(&self) -> String {
        prometheus::render(self)
    }
}

/// CPU and memory of this process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Process {
    /// User + system CPU seconds.
    pub cpu_seconds: f64,
    /// Current resident set size.
    pub rss_bytes: u64,
    /// Peak resident set size.
    pub peak_rss_bytes: u64,
}

impl Process {
    /// Reads getrusage and /proc/self/statm.
    pub fn now() -> Process {
        // SAFETY: getrusage writes into the zeroed struct we pass; rusage is plain data.
        let ru = unsafe {
            let mut ru: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_SELF, &mut ru);
            ru
        };
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        // SAFETY: sysconf has no memory effects.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
        let rss_pages = std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| {
                s.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .unwrap_or(0);
        Process {
            cpu_seconds: secs(ru.ru_utime) + secs(ru.ru_stime),
            rss_bytes: rss_pages * page,
            peak_rss_bytes: ru.ru_maxrss as u64 * 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hist_buckets_and_percentiles() {
        let h = Hist::new(LATENESS_BUCKETS);
        for us in [100, 400, 900, 3_000, 2_000_000] {
            h.record(us, 3);
        }
        let mut o = String::new();
        prometheus::histogram(&mut o, "x", "", &h);
        assert!(o.contains("x_bucket{le=\"0.00025\"} 1\n"), "{o}");
        assert!(o.contains("x_bucket{le=\"0.001\"} 3\n"));
        assert!(o.contains("x_bucket{le=\"1\"} 4\n"));
        assert!(o.contains("x_bucket{le=\"+Inf\"} 5\n"));
        assert!(o.contains("x_count 5\n"));
        let m = h.merged();
        assert_eq!(m.len(), 5);
        assert_eq!(m.value_at_quantile(0.5), 900);
    }

    #[test]
    fn render_sums_clients() {
        let m = Metrics::new(3);
        m.clients[0].sent(Media::Audio, 100);
        m.clients[2].sent(Media::Audio, 50);
        m.clients[1].set_state(State::Connected);
        m.connect_failed(FailReason::Rejected);
        let text = m.render();
        assert!(text.contains("synth_packets_sent_total{media=\"audio\"} 2\n"));
        assert!(text.contains("synth_bytes_sent_total{media=\"audio\"} 150\n"));
        assert!(text.contains("synth_clients{state=\"connected\"} 1\n"));
        assert!(text.contains("synth_connect_failures_total{reason=\"rejected\"} 1\n"));
        assert!(text.contains("# TYPE synth_send_lateness_seconds histogram"));
        let p = Process::now();
        assert!(p.cpu_seconds > 0.0 && p.rss_bytes > 0 && p.peak_rss_bytes >= p.rss_bytes / 2);
    }

    /// Samples that read the process (CPU time, resident memory): their
    /// values vary from one render to the next, so the golden comparison
    /// masks each one's value (after checking it is a number) and compares
    /// everything else byte for byte.
    const PROCESS_SAMPLES: [&str; 2] = [
        "synth_process_cpu_seconds_total",
        "synth_process_resident_memory_bytes",
    ];

    /// The golden exposition, rendered from [`populated`].
    const GOLDEN: &str = include_str!("testdata/exposition.txt");

    /// A `Metrics` with a different non-zero value in every counter, gauge
    /// and histogram `/metrics` serves, and clients in every state (one
    /// stalled: connected, waiting since the run's first µs, with the run
    /// started 2 s ago and a 1 s stall limit).
    fn populated() -> Metrics {
        let mut m = Metrics::new(10).with_stall_after(std::time::Duration::from_secs(1));
        m.started = Instant::now() - std::time::Duration::from_secs(2);
        // 1, 3, 6, 10, …: every value differs from the others.
        let mut n = 0;
        let mut next = || {
            n += 1;
            n * (n + 1) / 2
        };
        for (i, c) in m.clients.iter().enumerate() {
            for a in [
                &c.sent_packets,
                &c.sent_bytes,
                &c.recv_packets,
                &c.recv_bytes,
                &c.acked,
            ] {
                for x in a {
                    x.store(next(), Relaxed);
                }
            }
            for a in [
                &c.missing,
                &c.reordered,
                &c.duplicates,
                &c.late,
                &c.corrupted,
            ] {
                for x in a {
                    x.store(next(), Relaxed);
                }
            }
            for x in [
                &c.congestion,
                &c.keyframe_requests,
                &c.keyframes_answered,
                &c.reconnects,
                &c.send_errors,
                &c.bad_packets,
                &c.joined_events,
                &c.left_events,
                &c.freezes,
                &c.stalls,
                &c.joins,
                &c.leaves,
                &c.rejoins,
                &c.storm_drops,
                &c.screen_shares,
            ] {
                x.store(next(), Relaxed);
            }
            // Not whole seconds once summed.
            c.freeze_us.store(1_234_567 * (i as u64 + 1), Relaxed);
            // Each client a different mix of audio, video, screen, speaking.
            c.flags.store(i as u8 % 16, Relaxed);
        }
        for (i, s) in [
            State::Pending,
            State::Connecting,
            State::Connecting,
            State::Connected,
            State::Connected,
            State::Connected,
            State::Reconnecting,
            State::Failed,
            State::Done,
            State::Away,
        ]
        .into_iter()
        .enumerate()
        {
            m.clients[i].set_state(s);
        }
        // Connected, but nothing acknowledged since the run's first µs: stalled.
        m.clients[5].waiting_since_us.store(1, Relaxed);
        for (i, r) in [
            FailReason::Timeout,
            FailReason::Rejected,
            FailReason::Tls,
            FailReason::Transport,
        ]
        .into_iter()
        .enumerate()
        {
            for _ in 0..=i * 2 {
                m.connect_failed(r);
            }
        }
        // Values below the first bound, between bounds, on a bound and past
        // the last one (counted only in +Inf), scaled apart per histogram.
        let values = |k: u64| [37 * k, 1_000 * k, 4_321 * k, 77_777 * k, 40_000_000 + k];
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
        ];
        for (k, h) in hists.into_iter().enumerate() {
            for (i, us) in values(k as u64 + 1).into_iter().take(k % 5 + 1).enumerate() {
                h.record(us, i);
            }
            h.record(values(k as u64 + 1)[4], 0);
        }
        for ms in [0, 1, 3, 12, 2_000] {
            m.loop_delay.record(std::time::Duration::from_millis(ms), 1);
        }
        m
    }

    /// `text` with each of [`PROCESS_SAMPLES`]' values replaced by `<varies>`.
    fn mask_process(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for line in text.lines() {
            let masked = PROCESS_SAMPLES.iter().find_map(|name| {
                let value = line.strip_prefix(name)?.strip_prefix(' ')?;
                assert!(value.parse::<f64>().is_ok(), "{line}");
                Some(format!("{name} <varies>"))
            });
            out.push_str(masked.as_deref().unwrap_or(line));
            out.push('\n');
        }
        out
    }

    /// The text served is byte for byte the golden file's, but for the
    /// process samples' values. `SYNTH_BLESS=1` rewrites the file from the
    /// current code instead (then review its diff).
    #[test]
    fn render_matches_golden() {
        let text = mask_process(&populated().render());
        assert_eq!(text.matches("<varies>").count(), PROCESS_SAMPLES.len());
        if std::env::var_os("SYNTH_BLESS").is_some() {
            let path = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/src/metrics/testdata/exposition.txt"
            );
            std::fs::write(path, &text).unwrap();
            return;
        }
        if text != GOLDEN {
            let first = text
                .lines()
                .zip(GOLDEN.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(text.lines().count().min(GOLDEN.lines().count()));
            panic!(
                "/metrics differs from the golden exposition from line {}:\n  got:  {:?}\n  want: {:?}",
                first + 1,
                text.lines().nth(first),
                GOLDEN.lines().nth(first)
            );
        }
    }
}
