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
use serde::Serialize;

use crate::metrics::{Media, Metrics, Process, State, REASONS};
use crate::plan::ClientPlan;
use crate::threshold::{Threshold, Verdict};

/// Version of the JSON layout; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Always `"synth-replay-report"`.
    pub schema: &'static str,
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
    /// Actual minus scheduled send time of media packets (ms).
    pub send_lateness_ms: Percentiles,
    /// This process's cost.
    pub process: ProcessReport,
    /// Per-meeting breakdown.
    pub meetings: Vec<Meeting>,
    /// Each threshold with its verdict.
    pub thresholds: Vec<Verdict>,
    /// True when every threshold holds.
    pub passed: bool,
}

/// Client counts.
#[derive(Debug, Clone, Serialize)]
pub struct Clients {
    /// Clients in the plan.
    pub planned: usize,
    /// Clients connected at least once.
    pub connected: usize,
    /// Clients that gave up (rejected, or every first attempt failed).
    pub failed: usize,
    /// Reconnections after a dropped session.
    pub reconnects: u64,
}

/// Percentiles in milliseconds; `null` when nothing was recorded.
#[derive(Debug, Clone, Serialize, Default)]
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
        }
    }
}

/// One media kind.
#[derive(Debug, Clone, Serialize)]
pub struct MediaReport {
    /// What was sent.
    pub sent: Sent,
    /// What was received.
    pub received: Received,
}

/// Sent figures.
#[derive(Debug, Clone, Serialize)]
pub struct Sent {
    /// Packets.
    pub packets: u64,
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
}

/// Received figures.
#[derive(Debug, Clone, Serialize)]
pub struct Received {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// Sequence numbers never received (lost).
    pub gaps: u64,
    /// Packets that arrived after a higher sequence number (not lost).
    pub reordered: u64,
    /// One-way latency from senders in this process (ms).
    pub latency_ms: Percentiles,
}

/// Packet counts.
#[derive(Debug, Clone, Serialize)]
pub struct Counts {
    /// Sent.
    pub sent: u64,
    /// Received.
    pub received: u64,
}

/// Process cost.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessReport {
    /// User + system CPU seconds.
    pub cpu_seconds: f64,
    /// Peak resident memory.
    pub peak_rss_bytes: u64,
    /// Resident memory at the end.
    pub rss_bytes: u64,
}

/// One meeting's figures.
#[derive(Debug, Clone, Serialize)]
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
    /// Sequence gaps its clients saw.
    pub gaps: u64,
}

/// Why a run ended (`stopped_by` in the report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StopReason {
    /// Its duration was over.
    Duration,
    /// The caller's shutdown future completed (Ctrl-C or SIGTERM for the binary).
    Signal,
    /// Every client had failed.
    Failure,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StopReason::Duration => "duration",
            StopReason::Signal => "signal",
            StopReason::Failure => "failure",
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

    /// Builds the report from the run's measurements.
    pub fn build(m: &Metrics, inp: &Inputs) -> Report {
        let media = |i: usize| -> MediaReport {
            let mut bits = 0f64;
            let mut expected = 0f64;
            let mut active = 0f64;
            for (c, p) in m.clients.iter().zip(inp.plan) {
                let t = &p.target_bps;
                let payload = c.sent_payload[i].load(Relaxed);
                if payload == 0 || t[i] == 0.0 {
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
            let bitrate = (active > 0.0).then(|| bits / active / 1000.0);
            let target = (active > 0.0).then(|| expected / active / 1000.0);
            let err = match (bitrate, target) {
                (Some(b), Some(t)) if t > 0.0 => Some(((b - t) / t * 100.0).abs()),
                _ => None,
            };
            MediaReport {
                sent: Sent {
                    packets: m.sum(|c| c.sent_packets[i].load(Relaxed)),
                    bytes: m.sum(|c| c.sent_bytes[i].load(Relaxed)),
                    payload_bytes: m.sum(|c| c.sent_payload[i].load(Relaxed)),
                    bitrate_kbps: bitrate.map(round3),
                    target_kbps: target.map(round3),
                    bitrate_error_pct: err.map(round3),
                },
                received: Received {
                    packets: m.sum(|c| c.recv_packets[i].load(Relaxed)),
                    bytes: m.sum(|c| c.recv_bytes[i].load(Relaxed)),
                    gaps: m.sum(|c| c.missing[i].load(Relaxed)),
                    reordered: m.sum(|c| c.reordered[i].load(Relaxed)),
                    latency_ms: Percentiles::from_us(&m.latency[i].merged()),
                },
            }
        };
        let states = m.states();
        let mut meetings: BTreeMap<&str, Meeting> = BTreeMap::new();
        for (p, c) in inp.plan.iter().zip(&m.clients) {
            let e = meetings.entry(&p.meeting_id).or_insert_with(|| Meeting {
                meeting_id: p.meeting_id.clone(),
                clients: 0,
                connected: 0,
                audio_sent: 0,
                video_sent: 0,
                audio_received: 0,
                video_received: 0,
                gaps: 0,
            });
            e.clients += 1;
            e.connected += c.ever_connected.load(Relaxed) as usize;
            e.audio_sent += c.sent_packets[Media::Audio as usize].load(Relaxed);
            e.video_sent += c.sent_packets[Media::Video as usize].load(Relaxed);
            e.audio_received += c.recv_packets[Media::Audio as usize].load(Relaxed);
            e.video_received += c.recv_packets[Media::Video as usize].load(Relaxed);
            e.gaps += c.missing[0].load(Relaxed) + c.missing[1].load(Relaxed);
        }
        let p = Process::now();
        let mut r = Report {
            schema: "synth-replay-report",
            version: SCHEMA_VERSION,
            server: inp.server.clone(),
            pack: inp.pack.clone(),
            elapsed_s: round3(m.started.elapsed().as_secs_f64()),
            stopped_by: inp.stopped_by,
            clients: Clients {
                planned: m.clients.len(),
                connected: m
                    .clients
                    .iter()
                    .filter(|c| c.ever_connected.load(Relaxed))
                    .count(),
                failed: states[State::Failed as usize] as usize,
                reconnects: m.sum(|c| c.reconnects.load(Relaxed)),
            },
            connect_ms: Percentiles::from_us(&m.connect.merged()),
            connect_failures: REASONS
                .iter()
                .enumerate()
                .map(|(i, r)| (r.to_string(), m.connect_failures[i].load(Relaxed)))
                .collect(),
            audio: media(0),
            video: media(1),
            heartbeats: Counts {
                sent: m.sum(|c| c.sent_packets[Media::Heartbeat as usize].load(Relaxed)),
                received: m.sum(|c| c.recv_packets[Media::Heartbeat as usize].load(Relaxed)),
            },
            send_lateness_ms: Percentiles::from_us(&m.lateness.merged()),
            process: ProcessReport {
                cpu_seconds: round3(p.cpu_seconds),
                peak_rss_bytes: p.peak_rss_bytes,
                rss_bytes: p.rss_bytes,
            },
            meetings: meetings.into_values().collect(),
            thresholds: Vec::new(),
            passed: true,
        };
        r.thresholds = inp
            .thresholds
            .iter()
            .map(|t| t.check(r.figure(&t.name)))
            .collect();
        r.passed = r.thresholds.iter().all(|v| v.pass);
        r
    }

    /// The value of a threshold figure (see [`crate::threshold::NAMES`]).
    pub fn figure(&self, name: &str) -> Option<f64> {
        let lat = |m: &MediaReport, q: &str| {
            let l = &m.received.latency_ms;
            match q {
                "p50" => l.p50,
                "p95" => l.p95,
                "p99" => l.p99,
                _ => l.max,
            }
        };
        Some(match name {
            "connect_success_rate" => {
                if self.clients.planned == 0 {
                    return None;
                }
                self.clients.connected as f64 / self.clients.planned as f64
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
            "audio_gaps" => self.audio.received.gaps as f64,
            "video_gaps" => self.video.received.gaps as f64,
            "audio_received_packets" => self.audio.received.packets as f64,
            "video_received_packets" => self.video.received.packets as f64,
            n => {
                let (media, q) = n.strip_suffix("_ms")?.split_once("_latency_")?;
                let m = match media {
                    "audio" => &self.audio,
                    "video" => &self.video,
                    _ => return None,
                };
                return lat(m, q);
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
            "clients  {} planned, {} connected, {} failed, {} reconnects",
            c.planned, c.connected, c.failed, c.reconnects
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
            let r = &m.received;
            let _ = writeln!(
                o,
                "         recv {} pkts {:.2} MB, {} gaps, {} reordered, latency {}",
                r.packets,
                r.bytes as f64 / 1e6,
                r.gaps,
                r.reordered,
                pct(&r.latency_ms)
            );
        }
        let _ = writeln!(o, "lateness {}", pct(&self.send_lateness_ms));
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
                    "meeting  {}: {}/{} connected, sent a/v {}/{}, received a/v {}/{}, gaps {}",
                    mt.meeting_id,
                    mt.connected,
                    mt.clients,
                    mt.audio_sent,
                    mt.video_sent,
                    mt.audio_received,
                    mt.video_received,
                    mt.gaps
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
        if !self.thresholds.is_empty() {
            let _ = writeln!(
                o,
                "result   {}",
                if self.passed {
                    "passed"
                } else {
                    "FAILED: a threshold was violated"
                }
            );
        }
        o
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}
