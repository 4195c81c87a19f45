//! The scale harness: `synth-replay` at N clients against the relay in its own
//! process, measured from outside (`/proc`), in two shapes:
//!
//! - **send path**: each client alone in its meeting against a drain-only
//!   relay, so the replayer only sends (and receives nothing but its greeting);
//! - **receive path**: meetings of M against a relaying relay, so each client
//!   also receives (M−1) streams; the send cost measured at a similar N is
//!   subtracted to get the cost per received packet.
//!
//! For each run: CPU per client over a steady window after every client has
//! connected, CPU per packet, steady and peak RSS, time for all N to connect,
//! send lateness p99, achieved vs pack bitrate, and the relay's received count
//! against the report's sent count.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;

use crate::proc::{die_with_parent, sample, Sample};

/// How to run one measurement.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The `synth-replay` binary.
    pub replay_bin: PathBuf,
    /// The pack.
    pub pack: PathBuf,
    /// Video rendition each client sends.
    pub rendition: String,
    /// Length of the steady window measured after every client is connected.
    pub window: Duration,
    /// Settling time between "all connected" and the window.
    pub settle: Duration,
    /// Folder for configs, reports and relay stats.
    pub work: PathBuf,
    /// Extra top-level lines for the replayer's config, e.g. `threads: 1`.
    pub extra_config: Vec<String>,
}

/// One run's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `send` or `receive`.
    pub shape: String,
    /// Clients.
    pub clients: usize,
    /// Participants per meeting.
    pub meeting_size: usize,
    /// Time for all clients to connect, from the first start, seconds.
    pub connect_all_s: f64,
    /// Clients connected / failed (from the report).
    pub connected: u64,
    /// Clients that failed.
    pub failed: u64,
    /// Replayer CPU per client in the window, thousandths of a core.
    pub mcpu_per_client: f64,
    /// Replayer CPU in the window per packet sent, µs.
    pub us_per_sent_packet: f64,
    /// Packets received per client per second in the window.
    pub received_per_client_s: f64,
    /// Replayer CPU per received packet, µs (receive shape: after subtracting the send cost).
    pub us_per_received_packet: Option<f64>,
    /// Mean RSS in the window, MB.
    pub steady_rss_mb: f64,
    /// Peak RSS of the process, MB.
    pub peak_rss_mb: f64,
    /// Steady RSS per client beyond the smallest send-path run's, MB (see [`per_client_rss`]).
    pub rss_per_client_mb: f64,
    /// Send lateness p99 over the whole run, ms.
    pub lateness_p99_ms: Option<f64>,
    /// Audio and video bitrate error vs the pack, %.
    pub audio_bitrate_error_pct: Option<f64>,
    /// Video bitrate error vs the pack, %.
    pub video_bitrate_error_pct: Option<f64>,
    /// The relay's CPU in the window, cores (it shares the machine).
    pub relay_cores: f64,
    /// Packets the report says were sent (all kinds).
    pub report_sent: u64,
    /// Packets the relay received (all kinds).
    pub relay_received: u64,
    /// Audio and video packets the report calls lost: 0 in a clean run
    /// that ends normally, whatever its size.
    pub lost: u64,
}

/// The relay in its own process (`synth-replay relay` on 127.0.0.1, port 0),
/// killed when dropped.
pub(crate) struct Relay {
    pub(crate) child: Killed,
    pub(crate) url: String,
    pub(crate) cert: String,
    pub(crate) stats: PathBuf,
}

/// Starts `replay_bin relay` (drain-only if `drain`), its stats file in `work`.
pub(crate) fn start_relay(
    replay_bin: &Path,
    work: &Path,
    drain: bool,
    tag: &str,
) -> anyhow::Result<Relay> {
    let stats = work.join(format!("relay-{tag}.json"));
    let mut cmd = Command::new(replay_bin);
    cmd.args([
        "relay",
        "--listen",
        "127.0.0.1:0",
        "--udp-buffer",
        "8388608",
        "--leave-grace",
        "0s",
    ])
    .arg("--stats-json")
    .arg(&stats)
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    if drain {
        cmd.arg("--drain-only");
    }
    die_with_parent(&mut cmd);
    let mut child = Killed(cmd.spawn().context("starting the relay")?);
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().context("relay stdout")?)
        .read_line(&mut line)
        .context("reading the relay's first line")?;
    let v: serde_json::Value =
        serde_json::from_str(&line).with_context(|| format!("relay said {line:?}"))?;
    Ok(Relay {
        child,
        url: v["url"].as_str().context("url")?.to_string(),
        cert: v["cert_sha256"]
            .as_str()
            .context("cert_sha256")?
            .to_string(),
        stats,
    })
}

/// Ends `child` with SIGTERM (a clean end: the replayer writes its report),
/// and kills it if it is still there 10 s later.
pub(crate) fn stop(child: &mut Child) {
    // SAFETY: kill with a valid pid and signal number has no memory effects.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A free TCP port on 127.0.0.1 (for `--metrics-listen`).
pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Sums every sample of a metric (all label sets) in a scrape.
pub(crate) fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with(' ') || r.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `GET /metrics` from 127.0.0.1:`port`, the body; `None` if it does not answer.
pub(crate) fn scrape(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out.split_once("\r\n\r\n")?.1.to_string())
}

/// Clients connected now (stalled ones not included), from a scrape.
pub(crate) fn connected(text: &str) -> f64 {
    clients_in(text, "connected")
}

/// Clients in `state` now, from a scrape.
pub(crate) fn clients_in(text: &str, state: &str) -> f64 {
    let prefix = format!("synth_clients{{state=\"{state}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The shape of one replayer run.
pub(crate) struct Load {
    /// Clients.
    pub(crate) clients: usize,
    /// Participants per meeting; 1: each client alone in its meeting.
    pub(crate) meeting_size: usize,
    /// Delay between client starts, ms.
    pub(crate) ramp_ms: u64,
    /// The run's `duration`, seconds.
    pub(crate) secs: u64,
}

/// A `synth-replay run` config for `load` against `relay`, sending
/// `rendition` of `pack`, with the `extra` top-level lines first.
pub(crate) fn replay_config(
    relay: &Relay,
    pack: &Path,
    rendition: &str,
    load: &Load,
    extra: &[String],
) -> String {
    let (meeting, size_line) = if load.meeting_size <= 1 {
        ("solo-{index}", String::new())
    } else {
        (
            "room-{meeting}",
            format!("    meeting_size: {}\n", load.meeting_size),
        )
    };
    let config = format!(
        "server_url: {url}\npack: {pack}\nduration: {secs}s\nramp_up_delay_ms: {ramp_ms}\nconnect_timeout: 15s\nmax_concurrent_connects: 64\ntls: {{cert_sha256: \"{cert}\"}}\ngroups:\n  - count: {clients}\n    user_id: \"c{{index}}\"\n    meeting_id: \"{meeting}\"\n{size_line}    rendition: {rendition}\n",
        url = relay.url,
        pack = pack.display(),
        secs = load.secs,
        ramp_ms = load.ramp_ms,
        cert = relay.cert,
        clients = load.clients,
    );
    extra.iter().fold(config, |c, line| format!("{line}\n{c}"))
}

/// Starts `replay_bin run` with `config`, writing its JSON report to
/// `report` and serving `/metrics` on 127.0.0.1:`port`; its stderr goes to
/// `stderr` (a pipe must be read, or a chatty run blocks on it), stdout is
/// dropped.
pub(crate) fn spawn_replayer(
    replay_bin: &Path,
    config: &Path,
    report: &Path,
    port: u16,
    stderr: Stdio,
) -> anyhow::Result<Child> {
    let mut cmd = Command::new(replay_bin);
    cmd.args(["run", "--quiet", "--config"])
        .arg(config)
        .arg("--report")
        .arg(report)
        .args(["--metrics-listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(stderr);
    die_with_parent(&mut cmd);
    cmd.spawn().context("starting synth-replay")
}

/// Runs `clients` clients in meetings of `meeting_size` (1 = send path against a drain-only relay).
pub fn run(
    s: &Setup,
    clients: usize,
    meeting_size: usize,
    send_us: Option<f64>,
) -> anyhow::Result<Row> {
    let drain = meeting_size == 1;
    let tag = format!(
        "{}-{clients}-m{meeting_size}",
        if drain { "send" } else { "recv" }
    );
    let mut relay = start_relay(&s.replay_bin, &s.work, drain, &tag)?;
    let ramp_ms = 5u64; // 1000 clients start over 5 s
    let ramp = Duration::from_millis(ramp_ms * clients as u64);
    // Room for a slow connect phase, so the steady window always fits in the run.
    let connect_allowance = Duration::from_secs(30);
    let total = ramp + connect_allowance + s.settle + s.window + Duration::from_secs(3);
    let config = replay_config(
        &relay,
        &s.pack,
        &s.rendition,
        &Load {
            clients,
            meeting_size,
            ramp_ms,
            secs: total.as_secs(),
        },
        &s.extra_config,
    );
    let cfg = s.work.join(format!("{tag}.yaml"));
    std::fs::write(&cfg, config)?;
    let report = s.work.join(format!("{tag}-report.json"));
    let port = free_port()?;
    let started = Instant::now();
    let mut child = spawn_replayer(&s.replay_bin, &cfg, &report, port, Stdio::piped())?;
    let pid = child.id();

    // Wait for every client to connect.
    let connect_deadline = started + ramp + connect_allowance;
    let mut connect_all = None;
    while Instant::now() < connect_deadline {
        if let Some(text) = scrape(port) {
            if connected(&text) as usize >= clients {
                connect_all = Some(started.elapsed());
                break;
            }
        }
        if let Ok(Some(st)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            bail!("synth-replay exited early ({st}): {err}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let connect_all = connect_all.unwrap_or_else(|| started.elapsed());
    std::thread::sleep(s.settle);

    // The steady window.
    let first: Sample = sample(pid).context("sampling synth-replay")?;
    let relay_first = sample(relay.child.0.id()).unwrap_or_default();
    let m0 = scrape(port).context("scraping synth-replay's metrics")?;
    let window_start = Instant::now();
    let mut rss_sum = 0f64;
    let mut rss_n = 0u32;
    while window_start.elapsed() < s.window {
        std::thread::sleep(Duration::from_millis(250));
        if let Some(x) = sample(pid) {
            rss_sum += x.rss as f64;
            rss_n += 1;
        }
    }
    let last: Sample = sample(pid).context("sampling synth-replay")?;
    let relay_last = sample(relay.child.0.id()).unwrap_or_default();
    let m1 = scrape(port).context("synth-replay ended before the measurement window did")?;
    let secs = window_start.elapsed().as_secs_f64();
    let cpu = (last.cpu - first.cpu).as_secs_f64();
    let sent =
        metric_sum(&m1, "synth_packets_sent_total") - metric_sum(&m0, "synth_packets_sent_total");
    let recv = metric_sum(&m1, "synth_packets_received_total")
        - metric_sum(&m0, "synth_packets_received_total");

    // The window is measured: stop the run (SIGTERM ends it cleanly, report written).
    stop(&mut child);
    let status = child.wait()?;
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    if !status.success() {
        bail!("synth-replay failed ({status}): {}", err.trim());
    }
    stop(&mut relay.child.0);
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&report).with_context(|| format!("reading {}", report.display()))?,
    )?;
    let relay_stats: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&relay.stats)
            .with_context(|| format!("reading {}", relay.stats.display()))?,
    )?;
    let report_sent = ["audio", "video"]
        .iter()
        .map(|m| report[m]["sent"]["packets"].as_u64().unwrap_or(0))
        .sum::<u64>()
        + report["heartbeats"]["sent"].as_u64().unwrap_or(0)
        + report_connections(&report);
    let relay_received = relay_total(&relay_stats);
    let peak = last.peak_rss;
    let steady_rss = if rss_n > 0 {
        rss_sum / rss_n as f64
    } else {
        last.rss as f64
    };
    let us_per_sent = cpu * 1e6 / sent.max(1.0);
    let us_per_recv = match (drain, send_us) {
        (false, Some(send_us)) if recv > 0.0 => Some((cpu * 1e6 - sent * send_us) / recv),
        _ => None,
    };
    Ok(Row {
        shape: if drain { "send" } else { "receive" }.into(),
        clients,
        meeting_size,
        connect_all_s: connect_all.as_secs_f64(),
        connected: report["clients"]["connected"].as_u64().unwrap_or(0),
        failed: report["clients"]["failed"].as_u64().unwrap_or(0),
        mcpu_per_client: cpu / secs / clients as f64 * 1000.0,
        us_per_sent_packet: us_per_sent,
        received_per_client_s: recv / secs / clients as f64,
        us_per_received_packet: us_per_recv,
        steady_rss_mb: steady_rss / 1e6,
        peak_rss_mb: peak as f64 / 1e6,
        rss_per_client_mb: 0.0,
        lateness_p99_ms: report["send_lateness_ms"]["p99"].as_f64(),
        audio_bitrate_error_pct: report["audio"]["sent"]["bitrate_error_pct"].as_f64(),
        video_bitrate_error_pct: report["video"]["sent"]["bitrate_error_pct"].as_f64(),
        relay_cores: (relay_last.cpu.saturating_sub(relay_first.cpu)).as_secs_f64() / secs,
        report_sent,
        relay_received,
        lost: ["audio", "video"]
            .iter()
            .map(|m| report[m]["received"]["lost"].as_u64().unwrap_or(0))
            .sum(),
    })
}

/// CONNECTION packets sent: one per session, so one per connected client plus
/// one per reconnection.
fn report_connections(report: &serde_json::Value) -> u64 {
    report["clients"]["connected"].as_u64().unwrap_or(0)
        + report["clients"]["reconnects"].as_u64().unwrap_or(0)
}

fn relay_total(stats: &serde_json::Value) -> u64 {
    let Some(users) = stats["per_user"].as_object() else {
        return 0;
    };
    users
        .values()
        .map(|u| {
            [
                "audio_packets",
                "video_packets",
                "heartbeats",
                "connection_packets",
            ]
            .iter()
            .map(|k| u[k].as_u64().unwrap_or(0))
            .sum::<u64>()
        })
        .sum()
}

/// A child process killed when dropped, so a run that fails half-way (or a
/// harness that panics) leaves nothing running.
pub(crate) struct Killed(pub(crate) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The results table as Markdown.
pub fn table(rows: &[Row]) -> String {
    let mut o = String::from(
        "| shape | clients | meeting | all connected (s) | mCPU/client | µs/sent pkt | recv pkt/client/s | µs/recv pkt | steady RSS (MB) | peak RSS (MB) | MB/client | lateness p99 (ms) | audio/video bitrate err (%) | relay cores | relay recv / report sent | lost |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let f = |v: Option<f64>, d: usize| v.map_or("-".to_string(), |v| format!("{v:.d$}"));
    for r in rows {
        o.push_str(&format!(
            "| {} | {} | {} | {:.2} | {:.3} | {:.1} | {:.1} | {} | {:.1} | {:.1} | {:.3} | {} | {} / {} | {:.2} | {} / {} | {} |\n",
            r.shape,
            r.clients,
            r.meeting_size,
            r.connect_all_s,
            r.mcpu_per_client,
            r.us_per_sent_packet,
            r.received_per_client_s,
            f(r.us_per_received_packet, 1),
            r.steady_rss_mb,
            r.peak_rss_mb,
            r.rss_per_client_mb,
            f(r.lateness_p99_ms, 2),
            f(r.audio_bitrate_error_pct, 2),
            f(r.video_bitrate_error_pct, 2),
            r.relay_cores,
            r.relay_received,
            r.report_sent,
            r.lost,
        ));
    }
    o
}

/// Fills `rss_per_client_mb` from the smallest send-path run as the base.
pub fn per_client_rss(rows: &mut [Row]) {
    let Some(base) = rows
        .iter()
        .filter(|r| r.shape == "send")
        .min_by_key(|r| r.clients)
        .map(|r| (r.clients, r.steady_rss_mb))
    else {
        return;
    };
    for r in rows.iter_mut() {
        if r.clients > base.0 {
            r.rss_per_client_mb = (r.steady_rss_mb - base.1) / (r.clients - base.0) as f64;
        }
    }
}

/// A harness's work folder: `target/NAME` of the workspace.
pub fn work_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target")
        .join(name)
}

/// What the harnesses run, as command-line options (`synth-scale` and
/// `synth-soak` flatten it into theirs).
#[derive(Debug, Clone, clap::Args)]
pub struct Replay {
    /// The synth-replay binary to measure (a release build); it also runs the relay.
    #[arg(long, default_value = "target/release/synth-replay")]
    pub replay_bin: PathBuf,
    /// Pack to replay.
    #[arg(long, default_value = "packs/default.pack")]
    pub pack: PathBuf,
    /// Video rendition each client sends.
    #[arg(long, default_value = "video-640x360")]
    pub rendition: String,
    /// An extra top-level line for every replayer config, e.g. `--config-line "threads: 1"`
    /// or `--config-line "batch_window: 0ms"` (repeatable).
    #[arg(long)]
    pub config_line: Vec<String>,
}

impl Replay {
    /// Checks the binary is there and returns the pack's absolute path.
    pub fn check(&self) -> anyhow::Result<PathBuf> {
        anyhow::ensure!(
            self.replay_bin.exists(),
            "{} not found: cargo build --release -p synth-replayer",
            self.replay_bin.display()
        );
        std::fs::canonicalize(&self.pack).with_context(|| {
            format!(
                "pack {} (build it with synth-encode build)",
                self.pack.display()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_sums() {
        let t = "# HELP x y\nsynth_packets_sent_total{media=\"audio\"} 10\nsynth_packets_sent_total{media=\"video\"} 5\nsynth_packets_sent_totally 99\nsynth_clients{state=\"connected\"} 7\nsynth_clients{state=\"stalled\"} 2\n";
        assert_eq!(metric_sum(t, "synth_packets_sent_total"), 15.0);
        assert_eq!(connected(t), 7.0);
        assert_eq!(clients_in(t, "stalled"), 2.0);
        assert_eq!(clients_in(t, "failed"), 0.0);
    }
}
