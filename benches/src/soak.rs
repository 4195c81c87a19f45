//! The soak harness: `synth-replay run` at N clients in meetings of M for T
//! minutes against the relay in its own process (`synth-replay relay` on
//! 127.0.0.1, as [`crate::scale`] starts it), sampled every interval:
//!
//! - from outside, through `/proc/PID`, for both processes: RSS, open file
//!   descriptors, threads and CPU;
//! - from the replayer's `/metrics`: clients connected, packets sent and
//!   received, CONGESTION packets (the relay dropped some of ours), and for
//!   the interval alone the one-way audio latency p50/p99 and the send
//!   lateness p99. Those come from the Prometheus histogram buckets of two
//!   scrapes, differenced, and interpolated within a bucket as Prometheus'
//!   `histogram_quantile` does, so they are only as fine as the buckets
//!   (…, 100, 150, 250, 500 ms, 1 s, 2.5 s for latency; a quantile past the
//!   last bound shows as that bound).
//!
//! At the end it fits a line through each process's RSS (and descriptors and
//! threads) by least squares, over the samples taken after every client has
//! connected plus a warm-up: growth that goes on at a load the machine
//! carries is a leak; growth that levels off is a backlog filling up to a
//! bound.
//!
//! It always stops by itself (after T, or when the replayer ends), and kills
//! both children on error, on Ctrl-C or SIGTERM, and (through
//! `PR_SET_PDEATHSIG`) if it is killed itself.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;

use crate::proc::{fds, sample};
use crate::scale::{
    clients_in, connected, free_port, metric_sum, replay_config, scrape, spawn_replayer,
    start_relay, stop, Killed, Load,
};

/// How to run one soak.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The `synth-replay` binary (it also runs the relay).
    pub replay_bin: PathBuf,
    /// The pack.
    pub pack: PathBuf,
    /// Video rendition each client sends.
    pub rendition: String,
    /// Clients.
    pub clients: usize,
    /// Participants per meeting (1: each alone, against a drain-only relay).
    pub meeting_size: usize,
    /// Length of the run, from the replayer's start.
    pub duration: Duration,
    /// Time between samples.
    pub interval: Duration,
    /// What is left out of the slopes after every client has connected.
    pub warmup: Duration,
    /// Delay between client starts, ms.
    pub ramp_ms: u64,
    /// Folder for the config, the replayer's log and report, and the relay's stats.
    pub work: PathBuf,
    /// Extra top-level lines for the replayer's config, e.g. `threads: 1`.
    pub extra_config: Vec<String>,
    /// The wire the relay and the clients speak.
    pub wire: synth_common::framing::Wire,
}

/// One process at one sample.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Proc {
    /// Resident set size, MB (10^6 bytes).
    pub rss_mb: f64,
    /// Open file descriptors.
    pub fds: u64,
    /// Threads.
    pub threads: u64,
    /// CPU used since the previous sample, cores.
    pub cores: f64,
}

/// One sample.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the replayer started.
    pub t_s: f64,
    /// Clients connected (stalled ones not included).
    pub connected: u64,
    /// Clients connected but stalled (nothing acknowledged for `stall_after`).
    pub stalled: u64,
    /// The replayer.
    pub replayer: Proc,
    /// The relay.
    pub relay: Proc,
    /// Packets sent per second since the previous sample (all kinds).
    pub sent_per_s: f64,
    /// Packets received per second since the previous sample (all kinds).
    pub received_per_s: f64,
    /// One-way audio latency (senders of this process) in the interval, ms.
    pub audio_latency_p50_ms: Option<f64>,
    /// The same, p99.
    pub audio_latency_p99_ms: Option<f64>,
    /// Send lateness p99 in the interval, ms.
    pub lateness_p99_ms: Option<f64>,
    /// CONGESTION packets received in the interval (the relay dropped
    /// packets of ours because a receiver's queue was full).
    pub congestion: u64,
}

/// A least-squares line through one figure over the steady samples.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Trend {
    /// Slope, per minute.
    pub per_min: Option<f64>,
    /// First steady value.
    pub first: f64,
    /// Last steady value.
    pub last: f64,
    /// Highest steady value.
    pub max: f64,
}

/// A process's trends.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Trends {
    /// RSS, MB.
    pub rss_mb: Trend,
    /// Open file descriptors.
    pub fds: Trend,
    /// Threads.
    pub threads: Trend,
}

/// A whole soak.
#[derive(Debug, Clone, Serialize)]
pub struct Soak {
    /// Clients.
    pub clients: usize,
    /// Participants per meeting.
    pub meeting_size: usize,
    /// Seconds from the replayer's start until every client was past its
    /// first connection (see [`all_past_first_connect`]), if that happened.
    pub all_connected_s: Option<f64>,
    /// The slopes use the samples from this time on (s): every client
    /// connected plus the warm-up (from the start plus the warm-up if they
    /// never all were).
    pub steady_from_s: f64,
    /// Steady samples used.
    pub steady_samples: usize,
    /// Every sample.
    pub samples: Vec<Sample>,
    /// The replayer's trends.
    pub replayer: Trends,
    /// The relay's trends.
    pub relay: Trends,
    /// Audio latency p50 over the whole steady part, ms.
    pub steady_audio_latency_p50_ms: Option<f64>,
    /// Audio latency p99 over the whole steady part, ms.
    pub steady_audio_latency_p99_ms: Option<f64>,
    /// Send lateness p99 over the whole steady part, ms.
    pub steady_lateness_p99_ms: Option<f64>,
    /// The relay's RSS 5 s after the replayer ended (every session closed), MB.
    pub relay_rss_after_mb: Option<f64>,
    /// `"time"`, or `"signal"` when Ctrl-C or SIGTERM cut it short.
    pub stopped_by: String,
}

const LATENCY: &str = "synth_receive_latency_seconds";
const AUDIO: &str = "media=\"audio\"";
const LATENESS: &str = "synth_send_lateness_seconds";

static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALLED.store(true, Ordering::Relaxed);
}

/// Makes Ctrl-C and SIGTERM end the soak early (children killed, what was
/// sampled so far still reported) instead of killing the harness alone.
pub fn catch_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
}

/// Whether Ctrl-C or SIGTERM arrived.
pub fn signalled() -> bool {
    SIGNALLED.load(Ordering::Relaxed)
}

/// Whether every one of `clients` is past its first connection: none is
/// still connecting and each is connected, stalled (its session is open but
/// nothing is acknowledged), reconnecting (it had connected) or failed. A
/// saturated run seldom has every client connected at one instant.
pub fn all_past_first_connect(text: &str, clients: usize) -> bool {
    let past: f64 = ["connected", "stalled", "reconnecting", "failed"]
        .iter()
        .map(|s| clients_in(text, s))
        .sum();
    clients_in(text, "connecting") == 0.0 && past as usize >= clients
}

/// The cumulative buckets of histogram `name` in a scrape, for the series
/// whose labels contain `label` (`""`: any), as (upper bound in seconds,
/// count), `+Inf` last as infinity.
pub fn buckets(text: &str, name: &str, label: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{");
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (labels, value) = rest.split_once("} ")?;
            if !labels.contains(label) {
                return None;
            }
            let le = labels.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, value.trim().parse().ok()?))
        })
        .collect()
}

/// The `q` quantile (0..1) of what was observed between two scrapes'
/// cumulative buckets of one histogram (`before` empty: since the start),
/// in the buckets' unit: linear within the bucket it falls in, from 0 for
/// the first; past the last finite bound, that bound. `None` if nothing was
/// observed in between.
pub fn quantile(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> Option<f64> {
    let at = |i: usize| before.get(i).map_or(0.0, |b| b.1);
    let delta: Vec<(f64, f64)> = after
        .iter()
        .enumerate()
        .map(|(i, &(le, n))| (le, (n - at(i)).max(0.0)))
        .collect();
    let total = delta.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for &(le, n) in &delta {
        if n >= rank {
            if le.is_infinite() {
                return Some(lower);
            }
            let inside = n - below;
            let share = if inside > 0.0 {
                (rank - below) / inside
            } else {
                1.0
            };
            return Some(lower + (le - lower) * share);
        }
        (lower, below) = (le, n);
    }
    Some(lower)
}

/// The least-squares slope of y over x; `None` with fewer than two points
/// or no spread in x.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    Some(sxy / sxx)
}

/// The trend of `value` over samples (time in seconds, slope per minute).
fn trend(samples: &[&Sample], value: impl Fn(&Sample) -> f64) -> Trend {
    let points: Vec<(f64, f64)> = samples.iter().map(|s| (s.t_s / 60.0, value(s))).collect();
    Trend {
        per_min: slope(&points),
        first: points.first().map_or(0.0, |p| p.1),
        last: points.last().map_or(0.0, |p| p.1),
        max: points.iter().map(|p| p.1).fold(0.0, f64::max),
    }
}

fn trends(samples: &[&Sample], which: impl Fn(&Sample) -> Proc) -> Trends {
    Trends {
        rss_mb: trend(samples, |s| which(s).rss_mb),
        fds: trend(samples, |s| which(s).fds as f64),
        threads: trend(samples, |s| which(s).threads as f64),
    }
}

/// The header of the table [`row`] prints a line of.
pub fn header() -> String {
    format!(
        "{:>6} {:>5} {:>5} | {:>8} {:>5} {:>4} {:>5} | {:>8} {:>5} {:>4} {:>5} | {:>7} {:>7} | {:>15} {:>8} {:>6}\n{:>6} {:>5} {:>5} | {:>8} {:>5} {:>4} {:>5} | {:>8} {:>5} {:>4} {:>5} | {:>7} {:>7} | {:>15} {:>8} {:>6}",
        "t", "conn", "stall", "replayer", "", "", "", "relay", "", "", "", "pkt/s", "", "audio latency", "lateness", "cong.",
        "(s)", "", "", "RSS MB", "fds", "thr", "cores", "RSS MB", "fds", "thr", "cores", "sent", "recv", "p50/p99 (ms)", "p99 (ms)", "",
    )
}

/// One sample as a line of the table.
pub fn row(s: &Sample) -> String {
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    format!(
        "{:>6.0} {:>5} {:>5} | {:>8.1} {:>5} {:>4} {:>5.2} | {:>8.1} {:>5} {:>4} {:>5.2} | {:>7.0} {:>7.0} | {:>15} {:>8} {:>6}",
        s.t_s,
        s.connected,
        s.stalled,
        s.replayer.rss_mb,
        s.replayer.fds,
        s.replayer.threads,
        s.replayer.cores,
        s.relay.rss_mb,
        s.relay.fds,
        s.relay.threads,
        s.relay.cores,
        s.sent_per_s,
        s.received_per_s,
        format!(
            "{} / {}",
            ms(s.audio_latency_p50_ms),
            ms(s.audio_latency_p99_ms)
        ),
        ms(s.lateness_p99_ms),
        s.congestion,
    )
}

/// The closing lines: slopes and steady latency.
pub fn summary(s: &Soak) -> String {
    let per_min = |t: &Trend, unit: &str| {
        t.per_min
            .map_or("-".to_string(), |v| format!("{:+.2} {unit}/min", v + 0.0))
    };
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1} ms"));
    let mut o = format!(
        "{} clients in meetings of {}; all connected (or stalled, reconnecting, failed) at {}; slopes over {} samples from t = {:.0} s (that + warm-up), least squares:\n",
        s.clients,
        s.meeting_size,
        s.all_connected_s
            .map_or("never".to_string(), |t| format!("{t:.1} s")),
        s.steady_samples,
        s.steady_from_s,
    );
    if s.steady_samples < 2 {
        o.push_str(
            "  too few samples after the warm-up for a slope: run longer, or sample more often\n",
        );
    }
    for (name, t) in [("replayer", &s.replayer), ("relay", &s.relay)] {
        o.push_str(&format!(
            "  {name:<8} RSS {:.1} -> {:.1} MB (max {:.1}): {}; fds {:.0} -> {:.0}: {}; threads {:.0} -> {:.0}: {}\n",
            t.rss_mb.first,
            t.rss_mb.last,
            t.rss_mb.max,
            per_min(&t.rss_mb, "MB"),
            t.fds.first,
            t.fds.last,
            per_min(&t.fds, "fds"),
            t.threads.first,
            t.threads.last,
            per_min(&t.threads, "threads"),
        ));
    }
    o.push_str(&format!(
        "  steady audio latency p50 {} p99 {}, send lateness p99 {} (from the Prometheus buckets)\n",
        ms(s.steady_audio_latency_p50_ms),
        ms(s.steady_audio_latency_p99_ms),
        ms(s.steady_lateness_p99_ms),
    ));
    if let Some(after) = s.relay_rss_after_mb {
        o.push_str(&format!(
            "  relay RSS 5 s after the replayer ended (no session left): {after:.1} MB\n"
        ));
    }
    if s.stopped_by != "time" {
        o.push_str("  cut short by a signal\n");
    }
    o
}

/// The last `max` bytes of a file, for an error message.
fn tail(path: &Path, max: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let from = text.len().saturating_sub(max);
    String::from_utf8_lossy(&text[from..]).trim().to_string()
}

/// Runs one soak, printing a table line per sample to stdout as it goes.
pub fn run(s: &Setup) -> anyhow::Result<Soak> {
    let drain = s.meeting_size <= 1;
    let tag = format!("soak-{}-m{}", s.clients, s.meeting_size);
    let mut relay = start_relay(&s.replay_bin, &s.work, (drain, false, s.wire), &tag)?;
    // The replayer would stop by itself a minute after the harness means to
    // stop it, should the harness be stopped in a way it cannot catch.
    let config = replay_config(
        &relay,
        &s.pack,
        &s.rendition,
        &Load {
            clients: s.clients,
            meeting_size: s.meeting_size,
            viewers: 0,
            tokens: false,
            ramp_ms: s.ramp_ms,
            secs: s.duration.as_secs() + 60,
        },
        &s.extra_config,
    );
    let cfg = s.work.join(format!("{tag}.yaml"));
    std::fs::write(&cfg, config)?;
    let report = s.work.join(format!("{tag}-report.json"));
    let log = s.work.join(format!("{tag}.log"));
    let port = free_port()?;
    let log_file = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let started = Instant::now();
    let mut child = Killed(spawn_replayer(
        &s.replay_bin,
        &cfg,
        &report,
        port,
        Stdio::from(log_file),
    )?);
    let (pid, relay_pid) = (child.0.id(), relay.child.0.id());

    let mut samples: Vec<Sample> = Vec::new();
    let mut all_connected: Option<f64> = None;
    let mut prev_text = String::new();
    let (mut prev_cpu, mut prev_relay_cpu) = (Duration::ZERO, Duration::ZERO);
    let mut prev_t = 0.0;
    let mut steady_text: Option<String> = None;
    let mut last_text = String::new();
    let mut next = started + s.interval;
    let end = started + s.duration;
    let stopped_by = loop {
        if signalled() {
            break "signal";
        }
        if let Ok(Some(st)) = child.0.try_wait() {
            bail!(
                "synth-replay exited before the soak ended ({st}); its log {}:\n{}",
                log.display(),
                tail(&log, 2000)
            );
        }
        let now = Instant::now();
        if all_connected.is_none() {
            if let Some(text) = scrape(port) {
                if all_past_first_connect(&text, s.clients) {
                    all_connected = Some(started.elapsed().as_secs_f64());
                }
            }
        }
        if now >= next.min(end) {
            next += s.interval;
            // A saturated replayer may answer late: one more try, then the
            // sample is skipped (the next one covers both intervals).
            let Some(text) = scrape(port).or_else(|| scrape(port)) else {
                eprintln!(
                    "warning: synth-replay's /metrics did not answer at t = {:.0} s; sample skipped",
                    started.elapsed().as_secs_f64()
                );
                if now >= end {
                    break "time";
                }
                continue;
            };
            let t = started.elapsed().as_secs_f64();
            let dt = (t - prev_t).max(1e-9);
            let me = sample(pid).context("sampling synth-replay")?;
            let them = sample(relay_pid).context("sampling the relay")?;
            let proc_of = |x: crate::proc::Sample, prev: Duration, p: u32| Proc {
                rss_mb: x.rss as f64 / 1e6,
                fds: fds(p).unwrap_or(0),
                threads: x.threads,
                cores: x.cpu.saturating_sub(prev).as_secs_f64() / dt,
            };
            let diff =
                |name: &str| (metric_sum(&text, name) - metric_sum(&prev_text, name)).max(0.0);
            let lat = buckets(&text, LATENCY, AUDIO);
            let lat0 = buckets(&prev_text, LATENCY, AUDIO);
            let late = buckets(&text, LATENESS, "");
            let late0 = buckets(&prev_text, LATENESS, "");
            let sample = Sample {
                t_s: t,
                connected: connected(&text) as u64,
                stalled: clients_in(&text, "stalled") as u64,
                replayer: proc_of(me, prev_cpu, pid),
                relay: proc_of(them, prev_relay_cpu, relay_pid),
                sent_per_s: diff("synth_packets_sent_total") / dt,
                received_per_s: diff("synth_packets_received_total") / dt,
                audio_latency_p50_ms: quantile(&lat0, &lat, 0.5).map(|v| v * 1e3),
                audio_latency_p99_ms: quantile(&lat0, &lat, 0.99).map(|v| v * 1e3),
                lateness_p99_ms: quantile(&late0, &late, 0.99).map(|v| v * 1e3),
                congestion: diff("synth_congestion_received_total") as u64,
            };
            println!("{}", row(&sample));
            let steady_from = all_connected.unwrap_or(0.0) + s.warmup.as_secs_f64();
            if steady_text.is_none() && all_connected.is_some() && t >= steady_from {
                steady_text = Some(text.clone());
            }
            samples.push(sample);
            (prev_cpu, prev_relay_cpu, prev_t) = (me.cpu, them.cpu, t);
            last_text = text.clone();
            prev_text = text;
            if now >= end {
                break "time";
            }
        }
        let wait = if all_connected.is_none() {
            Duration::from_millis(250)
        } else {
            Duration::from_millis(100)
        };
        std::thread::sleep(wait.min(next.min(end).saturating_duration_since(Instant::now())));
    };
    stop(&mut child.0);
    // What the relay keeps once every session has ended: a backlog is freed
    // with its sessions, a leak stays.
    for _ in 0..50 {
        if signalled() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let relay_rss_after_mb = sample(relay_pid).map(|x| x.rss as f64 / 1e6);
    stop(&mut relay.child.0);

    let steady_from_s = all_connected.unwrap_or(0.0) + s.warmup.as_secs_f64();
    let steady: Vec<&Sample> = samples.iter().filter(|x| x.t_s >= steady_from_s).collect();
    let (first, last) = (steady_text.unwrap_or_default(), last_text);
    let whole = |name: &str, label: &str, q: f64| {
        quantile(
            &buckets(&first, name, label),
            &buckets(&last, name, label),
            q,
        )
        .map(|v| v * 1e3)
    };
    Ok(Soak {
        clients: s.clients,
        meeting_size: s.meeting_size,
        all_connected_s: all_connected,
        steady_from_s,
        steady_samples: steady.len(),
        replayer: trends(&steady, |x| x.replayer),
        relay: trends(&steady, |x| x.relay),
        steady_audio_latency_p50_ms: whole(LATENCY, AUDIO, 0.5),
        steady_audio_latency_p99_ms: whole(LATENCY, AUDIO, 0.99),
        steady_lateness_p99_ms: whole(LATENESS, "", 0.99),
        relay_rss_after_mb,
        samples,
        stopped_by: stopped_by.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_line_and_of_noise_around_it() {
        let line: Vec<(f64, f64)> = (0..10)
            .map(|i| (i as f64, 272.0 + 23.5 * i as f64))
            .collect();
        assert!((slope(&line).unwrap() - 23.5).abs() < 1e-9);
        let flat = [(0.0, 100.0), (1.0, 101.0), (2.0, 99.0), (3.0, 100.0)];
        assert!(slope(&flat).unwrap().abs() < 0.5);
        assert_eq!(slope(&[(1.0, 5.0)]), None);
        assert_eq!(slope(&[(1.0, 5.0), (1.0, 6.0)]), None, "no spread in x");
    }

    #[test]
    fn trend_is_per_minute_over_seconds() {
        let s = |t_s: f64, rss_mb: f64| Sample {
            t_s,
            connected: 0,
            stalled: 0,
            replayer: Proc {
                rss_mb,
                fds: 20,
                threads: 5,
                cores: 0.0,
            },
            relay: Proc::default(),
            sent_per_s: 0.0,
            received_per_s: 0.0,
            audio_latency_p50_ms: None,
            audio_latency_p99_ms: None,
            lateness_p99_ms: None,
            congestion: 0,
        };
        let v = [s(60.0, 272.0), s(90.0, 280.0), s(120.0, 288.0)];
        let refs: Vec<&Sample> = v.iter().collect();
        let t = trends(&refs, |x| x.replayer);
        assert!((t.rss_mb.per_min.unwrap() - 16.0).abs() < 1e-9);
        assert_eq!(
            (t.rss_mb.first, t.rss_mb.last, t.rss_mb.max),
            (272.0, 288.0, 288.0)
        );
        assert_eq!(t.fds.per_min, Some(0.0));
    }

    #[test]
    fn all_past_first_connect_counts_stalled_reconnecting_and_failed() {
        let t = |connecting: u32, connected: u32, stalled: u32| {
            format!(
                "synth_clients{{state=\"connecting\"}} {connecting}\nsynth_clients{{state=\"connected\"}} {connected}\nsynth_clients{{state=\"stalled\"}} {stalled}\nsynth_clients{{state=\"reconnecting\"}} 1\nsynth_clients{{state=\"failed\"}} 1\n"
            )
        };
        assert!(all_past_first_connect(&t(0, 250, 48), 300));
        assert!(!all_past_first_connect(&t(1, 250, 47), 300));
        assert!(
            !all_past_first_connect(&t(0, 250, 40), 300),
            "some not started"
        );
    }

    const SCRAPE: &str = "# TYPE synth_receive_latency_seconds histogram
synth_receive_latency_seconds_bucket{media=\"audio\",le=\"0.001\"} 10
synth_receive_latency_seconds_bucket{media=\"audio\",le=\"0.01\"} 90
synth_receive_latency_seconds_bucket{media=\"audio\",le=\"0.1\"} 100
synth_receive_latency_seconds_bucket{media=\"audio\",le=\"+Inf\"} 100
synth_receive_latency_seconds_sum{media=\"audio\"} 0.5
synth_receive_latency_seconds_count{media=\"audio\"} 100
synth_receive_latency_seconds_bucket{media=\"video\",le=\"0.001\"} 0
synth_receive_latency_seconds_bucket{media=\"video\",le=\"0.01\"} 0
synth_receive_latency_seconds_bucket{media=\"video\",le=\"0.1\"} 0
synth_receive_latency_seconds_bucket{media=\"video\",le=\"+Inf\"} 7
synth_send_lateness_seconds_bucket{le=\"0.001\"} 4
synth_send_lateness_seconds_bucket{le=\"+Inf\"} 4
";

    #[test]
    fn buckets_are_read_per_label() {
        let a = buckets(SCRAPE, LATENCY, AUDIO);
        assert_eq!(
            a,
            vec![
                (0.001, 10.0),
                (0.01, 90.0),
                (0.1, 100.0),
                (f64::INFINITY, 100.0)
            ]
        );
        let v = buckets(SCRAPE, LATENCY, "media=\"video\"");
        assert_eq!(v.last(), Some(&(f64::INFINITY, 7.0)));
        assert_eq!(
            buckets(SCRAPE, LATENESS, ""),
            vec![(0.001, 4.0), (f64::INFINITY, 4.0)]
        );
        assert!(buckets(SCRAPE, "synth_nothing", "").is_empty());
    }

    #[test]
    fn quantiles_interpolate_within_a_bucket_as_prometheus_does() {
        let a = buckets(SCRAPE, LATENCY, AUDIO);
        // p50: rank 50 of 100, in (0.001, 0.01] holding 80: 40/80 of the way.
        let p50 = quantile(&[], &a, 0.5).unwrap();
        assert!((p50 - (0.001 + 0.009 * 0.5)).abs() < 1e-12, "{p50}");
        // p5: in the first bucket, from 0.
        assert!((quantile(&[], &a, 0.05).unwrap() - 0.0005).abs() < 1e-12);
        // Past the last finite bound: that bound.
        let v = buckets(SCRAPE, LATENCY, "media=\"video\"");
        assert_eq!(quantile(&[], &v, 0.99), Some(0.1));
    }

    #[test]
    fn quantiles_of_an_interval_difference_two_scrapes() {
        let before = [(0.001, 10.0), (0.01, 90.0), (f64::INFINITY, 90.0)];
        let after = [(0.001, 10.0), (0.01, 90.0), (f64::INFINITY, 100.0)];
        // Only the ten observations past 10 ms happened in the interval.
        assert_eq!(quantile(&before, &after, 0.5), Some(0.01));
        assert_eq!(quantile(&after, &after, 0.5), None, "nothing observed");
        assert_eq!(quantile(&[], &[], 0.5), None);
    }
}
