//! The scale harness: `synth-replay` at N clients against the relay in its own
//! process, measured from outside (`/proc`), in three shapes:
//!
//! - **send path**: each client alone in its meeting against a drain-only
//!   relay, so the replayer only sends (and receives nothing but its greeting);
//! - **receive path**: meetings of M against a relaying relay, so each client
//!   also receives (M−1) streams; the send cost measured at a similar N is
//!   subtracted to get the cost per received packet;
//! - **viewers**: meetings of S senders and V receive-only viewers
//!   (`role: viewer`, with minted observer tokens); the same senders are run
//!   alone (same meetings, no viewers) and their CPU and RSS subtracted, so
//!   what is left is the viewers' cost.
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
use synth_common::framing::Wire;
use synth_report::Report;

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
    /// The wire the relay and the clients speak.
    pub wire: Wire,
}

/// One run's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Row {
    /// `send`, `receive` or `viewers`.
    pub shape: String,
    /// Clients; for `viewers`, the viewers (the senders are in `senders`).
    pub clients: usize,
    /// Participants per meeting (viewers included).
    pub meeting_size: usize,
    /// Clients that send media (all of them, but for `viewers`).
    pub senders: usize,
    /// Time for all clients to connect, from the first start, seconds.
    pub connect_all_s: f64,
    /// Clients connected / failed (from the report).
    pub connected: u64,
    /// Clients that failed.
    pub failed: u64,
    /// Replayer CPU per client in the window, thousandths of a core; for
    /// `viewers`, per viewer after subtracting the senders-alone run.
    pub mcpu_per_client: f64,
    /// Replayer CPU in the window per packet sent, µs (`None` for `viewers`).
    pub us_per_sent_packet: Option<f64>,
    /// Packets received per client (per viewer) per second in the window.
    pub received_per_client_s: f64,
    /// Replayer CPU per received packet, µs (receive shape: after subtracting
    /// the send cost; viewers: the viewers' CPU over what they received).
    pub us_per_received_packet: Option<f64>,
    /// `viewers`: the senders-alone run's CPU, thousandths of a core in all
    /// (what was subtracted).
    pub senders_alone_mcpu: Option<f64>,
    /// Mean RSS in the window, MB.
    pub steady_rss_mb: f64,
    /// Peak RSS of the process, MB.
    pub peak_rss_mb: f64,
    /// Steady RSS per client beyond the smallest send-path run's, MB (see
    /// [`per_client_rss`]); for `viewers`, beyond the senders-alone run's, per viewer.
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
    /// What receivers saw: video latency p99 over the run, ms (`video.received.latency_ms`).
    pub video_latency_p99_ms: Option<f64>,
    /// Video frames per second of the worst-served 5 % of (sender, receiver)
    /// pairs (`video.received.rate_per_sender.p5`).
    pub video_fps_p5: Option<f64>,
    /// The replayer said it (or its host) fell behind (`generator.saturated`).
    pub saturated: bool,
    /// Why (`generator.reasons`).
    pub reasons: Vec<String>,
}

/// The relay in its own process (`synth-replay relay` on 127.0.0.1, port 0),
/// killed when dropped.
pub(crate) struct Relay {
    pub(crate) child: Killed,
    pub(crate) url: String,
    pub(crate) cert: String,
    pub(crate) stats: PathBuf,
    /// The wire it speaks (the replayer's config says the same).
    pub(crate) wire: Wire,
}

/// Starts `replay_bin relay` (drain-only if `drain`; taking tokens signed
/// with [`JWT_ENV`]'s secret if `tokens`), its stats file in `work`.
pub(crate) fn start_relay(
    replay_bin: &Path,
    work: &Path,
    (drain, tokens, wire): (bool, bool, Wire),
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
        "--wire",
        wire.as_str(),
    ])
    .arg("--stats-json")
    .arg(&stats)
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    if drain {
        cmd.arg("--drain-only");
    }
    if tokens {
        cmd.args(["--jwt-secret-env", JWT_ENV])
            .env(JWT_ENV, JWT_SECRET);
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
        wire,
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
#[derive(Debug, Clone, Copy)]
pub(crate) struct Load {
    /// Clients that send (every client when `viewers` is 0).
    pub(crate) clients: usize,
    /// Senders per meeting; 1 without viewers: each client alone in its meeting.
    pub(crate) meeting_size: usize,
    /// Receive-only viewers per meeting (a second group, `role: viewer`); 0: none.
    pub(crate) viewers: usize,
    /// Mint a token per client ([`JWT_ENV`]), so viewers are admitted as
    /// observers: the relay then relays nothing they send, as upstream.
    pub(crate) tokens: bool,
    /// Delay between client starts, ms.
    pub(crate) ramp_ms: u64,
    /// The run's `duration`, seconds.
    pub(crate) secs: u64,
}

impl Load {
    /// Every client of the run, viewers included.
    pub(crate) fn total(&self) -> usize {
        self.clients + self.meetings() * self.viewers
    }

    /// Meetings (of the senders; the viewers fill the same ones).
    pub(crate) fn meetings(&self) -> usize {
        self.clients / self.meeting_size.max(1)
    }
}

/// The environment variable holding the JWT secret, for the relay and the
/// replayer of runs with tokens.
pub(crate) const JWT_ENV: &str = "SYNTH_SCALE_JWT_SECRET";
const JWT_SECRET: &str = "synth-scale-local-secret-not-for-production";

/// A `synth-replay run` config for `load` against `relay`, sending
/// `rendition` of `pack`, with the `extra` top-level lines first.
pub(crate) fn replay_config(
    relay: &Relay,
    pack: &Path,
    rendition: &str,
    load: &Load,
    extra: &[String],
) -> String {
    let text = config_text(&relay.url, &relay.cert, pack, rendition, load, extra);
    format!("wire: {}\n{text}", relay.wire)
}

/// [`replay_config`] for a relay at `url` with certificate `cert` (SHA-256, hex).
fn config_text(
    url: &str,
    cert: &str,
    pack: &Path,
    rendition: &str,
    load: &Load,
    extra: &[String],
) -> String {
    // Viewers share the senders' meetings through `{meeting}`, so the
    // senders' meetings are named that way too, even one sender each.
    let (meeting, size_line) = if load.meeting_size <= 1 && load.viewers == 0 {
        ("solo-{index}", String::new())
    } else {
        (
            "room-{meeting}",
            format!("    meeting_size: {}\n", load.meeting_size.max(1)),
        )
    };
    let auth = if load.tokens {
        format!("auth: {{jwt_secret_env: {JWT_ENV}}}\n")
    } else {
        String::new()
    };
    let mut config = format!(
        "server_url: {url}\npack: {pack}\nduration: {secs}s\nramp_up_delay_ms: {ramp_ms}\nconnect_timeout: 15s\nmax_concurrent_connects: 64\ntls: {{cert_sha256: \"{cert}\"}}\n{auth}groups:\n  - count: {clients}\n    user_id: \"c{{index}}\"\n    meeting_id: \"{meeting}\"\n{size_line}    rendition: {rendition}\n",
        pack = pack.display(),
        secs = load.secs,
        ramp_ms = load.ramp_ms,
        clients = load.clients,
    );
    if load.viewers > 0 {
        config.push_str(&format!(
            "  - count: {count}\n    user_id: \"v{{index}}\"\n    meeting_id: \"room-{{meeting}}\"\n    meeting_size: {size}\n    role: viewer\n",
            count = load.meetings() * load.viewers,
            size = load.viewers,
        ));
    }
    extra.iter().fold(config, |c, line| format!("{line}\n{c}"))
}

/// Starts `replay_bin run` with `config`, writing its JSON report to
/// `report` and serving `/metrics` on 127.0.0.1:`port`; its stderr goes to
/// `stderr` (a pipe must be read, or a chatty run blocks on it), stdout is
/// dropped. [`JWT_ENV`] is set, for configs that mint tokens.
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
        .env(JWT_ENV, JWT_SECRET)
        .stdout(Stdio::null())
        .stderr(stderr);
    die_with_parent(&mut cmd);
    cmd.spawn().context("starting synth-replay")
}

/// What one replayer run measured, before it is made a [`Row`].
struct Measured {
    /// Time for every client to connect, from the first start, s.
    connect_all_s: f64,
    /// Length of the window, s.
    secs: f64,
    /// Replayer CPU in the window, s.
    cpu_s: f64,
    /// Packets sent and received in the window (all kinds, from `/metrics`).
    sent: f64,
    recv: f64,
    /// Mean RSS in the window and peak RSS, bytes.
    steady_rss: f64,
    peak_rss: u64,
    /// The relay's CPU in the window, cores.
    relay_cores: f64,
    /// The replayer's JSON report.
    report: Report,
    /// Packets the relay received, all kinds.
    relay_received: u64,
}

impl Measured {
    /// The replayer's cost: cores in the window and steady RSS.
    fn cost(&self) -> Cost {
        Cost {
            cores: self.cpu_s / self.secs,
            rss_bytes: self.steady_rss,
        }
    }
}

/// Runs `load` (its clients' count and duration are filled in here) against
/// a relay of its own (drain-only if `drain`), files named by `tag`.
fn measure(s: &Setup, tag: &str, drain: bool, mut load: Load) -> anyhow::Result<Measured> {
    let mut relay = start_relay(&s.replay_bin, &s.work, (drain, load.tokens, s.wire), tag)?;
    let clients = load.total();
    let ramp = Duration::from_millis(load.ramp_ms * clients as u64);
    // Room for a slow connect phase, so the steady window always fits in the run.
    let connect_allowance = Duration::from_secs(30);
    let total = ramp + connect_allowance + s.settle + s.window + Duration::from_secs(3);
    load.secs = total.as_secs();
    let config = replay_config(&relay, &s.pack, &s.rendition, &load, &s.extra_config);
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
    let cpu_s = (last.cpu - first.cpu).as_secs_f64();
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
    let report = Report::read(&report)?;
    let relay_stats: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&relay.stats)
            .with_context(|| format!("reading {}", relay.stats.display()))?,
    )?;
    Ok(Measured {
        connect_all_s: connect_all.as_secs_f64(),
        secs,
        cpu_s,
        sent,
        recv,
        steady_rss: if rss_n > 0 {
            rss_sum / rss_n as f64
        } else {
            last.rss as f64
        },
        peak_rss: last.peak_rss,
        relay_cores: (relay_last.cpu.saturating_sub(relay_first.cpu)).as_secs_f64() / secs,
        relay_received: relay_total(&relay_stats),
        report,
    })
}

/// The figures of `m` common to every shape, for `clients` clients of
/// which `senders` send; the shape's own are filled in by the caller.
fn row(shape: &str, m: &Measured, clients: usize, meeting_size: usize, senders: usize) -> Row {
    let report = &m.report;
    let report_sent = report.audio.sent.packets
        + report.video.sent.packets
        + report.heartbeats.sent
        + report_connections(report);
    Row {
        shape: shape.into(),
        clients,
        meeting_size,
        senders,
        connect_all_s: m.connect_all_s,
        connected: report.clients.connected as u64,
        failed: report.clients.failed as u64,
        mcpu_per_client: m.cpu_s / m.secs / clients as f64 * 1000.0,
        us_per_sent_packet: Some(m.cpu_s * 1e6 / m.sent.max(1.0)),
        received_per_client_s: m.recv / m.secs / clients as f64,
        us_per_received_packet: None,
        senders_alone_mcpu: None,
        steady_rss_mb: m.steady_rss / 1e6,
        peak_rss_mb: m.peak_rss as f64 / 1e6,
        rss_per_client_mb: 0.0,
        lateness_p99_ms: report.send_lateness_ms.p99,
        audio_bitrate_error_pct: report.audio.sent.bitrate_error_pct,
        video_bitrate_error_pct: report.video.sent.bitrate_error_pct,
        relay_cores: m.relay_cores,
        report_sent,
        relay_received: m.relay_received,
        lost: report.audio.received.lost + report.video.received.lost,
        video_latency_p99_ms: report.video.received.latency_ms.p99,
        video_fps_p5: report.video.received.rate_per_sender.p5,
        saturated: report.generator.saturated,
        reasons: report.generator.reasons.clone(),
    }
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
    let load = Load {
        clients,
        meeting_size,
        viewers: 0,
        tokens: false,
        ramp_ms: RAMP_MS,
        secs: 0,
    };
    let m = measure(s, &tag, drain, load)?;
    let mut r = row(
        if drain { "send" } else { "receive" },
        &m,
        clients,
        meeting_size,
        clients,
    );
    r.us_per_received_packet = match (drain, send_us) {
        (false, Some(send_us)) if m.recv > 0.0 => Some((m.cpu_s * 1e6 - m.sent * send_us) / m.recv),
        _ => None,
    };
    Ok(r)
}

/// Delay between client starts: 1000 clients start over 5 s.
const RAMP_MS: u64 = 5;

/// The viewers shape: meetings each of `senders` senders and `viewers`
/// receive-only viewers.
#[derive(Debug, Clone, Copy)]
pub struct Audience {
    /// Meetings.
    pub meetings: usize,
    /// Senders per meeting.
    pub senders: usize,
    /// Viewers per meeting.
    pub viewers: usize,
}

impl Audience {
    /// As many whole meetings of `senders` + `viewers` as `total_viewers`
    /// viewers fill (at least one).
    pub fn for_viewers(total_viewers: usize, senders: usize, viewers: usize) -> Audience {
        Audience {
            meetings: (total_viewers / viewers.max(1)).max(1),
            senders: senders.max(1),
            viewers: viewers.max(1),
        }
    }

    /// The run's load: the senders' group and the viewers', with tokens so
    /// the viewers are observers (`with_viewers` false: the senders alone,
    /// in the same meetings).
    fn load(&self, with_viewers: bool) -> Load {
        Load {
            clients: self.meetings * self.senders,
            meeting_size: self.senders,
            viewers: if with_viewers { self.viewers } else { 0 },
            tokens: true,
            ramp_ms: RAMP_MS,
            secs: 0,
        }
    }
}

/// A replayer run's cost: CPU (cores, averaged over the window) and steady RSS.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    /// Cores.
    pub cores: f64,
    /// Bytes.
    pub rss_bytes: f64,
}

/// What each viewer costs: `with` (senders and viewers) minus `alone` (the
/// same senders in the same meetings, no viewers), over `viewers`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerViewer {
    /// Thousandths of a core per viewer.
    pub mcpu: f64,
    /// µs of CPU per packet the viewers received (`None` if they received none).
    pub us_per_received_packet: Option<f64>,
    /// Steady RSS per viewer, MB.
    pub rss_mb: f64,
}

/// Subtracts the senders-alone run from the run with viewers. `received_s`
/// is the packets the viewers received per second (see [`run_viewers`]).
/// Noise can make a figure negative; it is reported as it is.
pub fn per_viewer(with: Cost, alone: Cost, viewers: usize, received_s: f64) -> PerViewer {
    let cores = with.cores - alone.cores;
    let n = viewers.max(1) as f64;
    PerViewer {
        mcpu: cores / n * 1000.0,
        us_per_received_packet: (received_s > 0.0).then(|| cores * 1e6 / received_s),
        rss_mb: (with.rss_bytes - alone.rss_bytes) / n / 1e6,
    }
}

/// Runs the viewers shape: `a` with its viewers, then its senders alone, and
/// gives the viewers' row (CPU and RSS per viewer after subtracting the senders).
pub fn run_viewers(s: &Setup, a: Audience) -> anyhow::Result<Row> {
    let viewers = a.meetings * a.viewers;
    let tag = format!("viewers-{}x{}+{}", a.meetings, a.senders, a.viewers);
    let with = measure(s, &tag, false, a.load(true))?;
    let alone = measure(s, &format!("{tag}-senders"), false, a.load(false))?;
    // What the viewers received: the run's packets received less what the
    // senders receive alone (RTT echoes; as observers, the viewers have
    // nothing relayed to the senders, not even heartbeats).
    let received_s = (with.recv / with.secs - alone.recv / alone.secs).max(0.0);
    let v = per_viewer(with.cost(), alone.cost(), viewers, received_s);
    let mut r = row(
        "viewers",
        &with,
        viewers,
        a.senders + a.viewers,
        a.meetings * a.senders,
    );
    r.mcpu_per_client = v.mcpu;
    r.received_per_client_s = received_s / viewers.max(1) as f64;
    r.us_per_sent_packet = None;
    r.us_per_received_packet = v.us_per_received_packet;
    r.rss_per_client_mb = v.rss_mb;
    r.senders_alone_mcpu = Some(alone.cost().cores * 1000.0);
    Ok(r)
}

/// CONNECTION packets sent: one per `bot` session, so one per connected client
/// plus one per reconnection; `browser`s send none (nor does upstream's web
/// client). The harness runs one profile at a time.
fn report_connections(report: &Report) -> u64 {
    if report.control.bots == 0 {
        return 0;
    }
    report.clients.connected as u64 + report.clients.reconnects
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

/// A Markdown table of `header` and one line per row of cells.
fn markdown(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut o = format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        "---|".repeat(header.len())
    );
    for cells in rows {
        o.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    o
}

/// `v` with `d` decimals, `-` for none.
fn opt(v: Option<f64>, d: usize) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.d$}"))
}

/// The results table as Markdown.
pub fn table(rows: &[Row]) -> String {
    let header = [
        "shape",
        "clients",
        "meeting",
        "all connected (s)",
        "mCPU/client",
        "µs/sent pkt",
        "recv pkt/client/s",
        "µs/recv pkt",
        "steady RSS (MB)",
        "peak RSS (MB)",
        "MB/client",
        "lateness p99 (ms)",
        "audio/video bitrate err (%)",
        "relay cores",
        "relay recv / report sent",
        "lost",
        "generator",
    ];
    markdown(
        &header,
        rows.iter().map(|r| {
            vec![
                r.shape.clone(),
                r.clients.to_string(),
                r.meeting_size.to_string(),
                format!("{:.2}", r.connect_all_s),
                format!("{:.3}", r.mcpu_per_client),
                opt(r.us_per_sent_packet, 1),
                format!("{:.1}", r.received_per_client_s),
                opt(r.us_per_received_packet, 1),
                format!("{:.1}", r.steady_rss_mb),
                format!("{:.1}", r.peak_rss_mb),
                format!("{:.3}", r.rss_per_client_mb),
                opt(r.lateness_p99_ms, 2),
                format!(
                    "{} / {}",
                    opt(r.audio_bitrate_error_pct, 2),
                    opt(r.video_bitrate_error_pct, 2)
                ),
                format!("{:.2}", r.relay_cores),
                format!("{} / {}", r.relay_received, r.report_sent),
                r.lost.to_string(),
                if r.saturated { "saturated" } else { "kept up" }.to_string(),
            ]
        }),
    )
}

/// What the receiving rows (receive and viewers) cost and what their
/// receivers saw, as Markdown. For `viewers` the client columns are per
/// viewer, after subtracting the senders-alone run (its CPU in its own column).
pub fn receivers_table(rows: &[Row]) -> String {
    let header = [
        "shape",
        "receiving clients",
        "meeting",
        "senders",
        "senders alone (mCPU)",
        "mCPU/receiving client",
        "µs/recv pkt",
        "recv pkt/client/s",
        "MB/client",
        "lost",
        "video latency p99 (ms)",
        "video fps p5",
    ];
    markdown(
        &header,
        rows.iter().filter(|r| r.shape != "send").map(|r| {
            vec![
                r.shape.clone(),
                r.clients.to_string(),
                r.meeting_size.to_string(),
                r.senders.to_string(),
                opt(r.senders_alone_mcpu, 1),
                format!("{:.3}", r.mcpu_per_client),
                opt(r.us_per_received_packet, 1),
                format!("{:.1}", r.received_per_client_s),
                format!("{:.3}", r.rss_per_client_mb),
                r.lost.to_string(),
                opt(r.video_latency_p99_ms, 1),
                opt(r.video_fps_p5, 1),
            ]
        }),
    )
}

/// The receive-shape row to compare viewer row `v` with: the one whose
/// clients receive the closest number of packets per second (so a viewer
/// and a sender-receiver take in the same streams), then the closest
/// client count.
pub fn peer_of<'a>(rows: &'a [Row], v: &Row) -> Option<&'a Row> {
    rows.iter().filter(|r| r.shape == "receive").min_by(|a, b| {
        let key = |r: &Row| {
            (
                (r.received_per_client_s - v.received_per_client_s).abs(),
                r.clients.abs_diff(v.clients),
            )
        };
        let (ka, kb) = (key(a), key(b));
        ka.0.total_cmp(&kb.0).then(ka.1.cmp(&kb.1))
    })
}

/// Fills `rss_per_client_mb` from the smallest send-path run as the base
/// (viewer rows have their own, from their senders-alone run).
pub fn per_client_rss(rows: &mut [Row]) {
    let Some(base) = rows
        .iter()
        .filter(|r| r.shape == "send")
        .min_by_key(|r| r.clients)
        .map(|r| (r.clients, r.steady_rss_mb))
    else {
        return;
    };
    for r in rows.iter_mut().filter(|r| r.shape != "viewers") {
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
    /// The wire the relay and the clients speak: per_packet (upstream main) or
    /// framed (upstream RnD).
    #[arg(long, default_value = "per_packet")]
    pub wire: Wire,
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

    /// `load` as the replayer's config code resolves it (with a duration:
    /// [`measure`] fills that in).
    fn resolve(load: &Load) -> synth_scenario::config::Settings {
        let load = &Load { secs: 60, ..*load };
        let text = config_text(
            "https://127.0.0.1:4433",
            &"ab".repeat(32),
            Path::new("packs/default.pack"),
            "video-640x360",
            load,
            &["threads: 1".into()],
        );
        let file = synth_scenario::config::parse(&text).expect(&text);
        let env = |k: &str| (k == JWT_ENV).then(|| JWT_SECRET.to_string());
        synth_scenario::config::Settings::resolve(file, &Default::default(), &env).expect(&text)
    }

    /// The replayer's own config code reads the viewers shape as meetings of
    /// one sender and 49 viewers, the viewers receive-only.
    #[test]
    fn viewers_config_fills_each_meeting() {
        let a = Audience::for_viewers(500, 1, 49);
        assert_eq!((a.meetings, a.senders, a.viewers), (10, 1, 49));
        let load = a.load(true);
        assert_eq!(load.total(), 500);
        let s = resolve(&load);
        assert_eq!(s.clients.len(), 500);
        let mut meetings = std::collections::BTreeMap::<&str, (usize, usize)>::new();
        for p in &s.clients {
            let m = meetings.entry(&p.meeting_id).or_default();
            if p.viewer {
                assert!(!p.audio && !p.video, "{} sends media", p.user_id);
                m.1 += 1;
            } else {
                assert!(p.audio && p.video);
                m.0 += 1;
            }
        }
        assert_eq!(meetings.len(), 10);
        assert!(meetings.values().all(|&c| c == (1, 49)), "{meetings:?}");

        // The senders alone: the same meetings, no viewers.
        let s = resolve(&a.load(false));
        assert_eq!(s.clients.len(), 10);
        assert!(s.clients.iter().all(|p| !p.viewer));
        let ids: std::collections::BTreeSet<_> = s.clients.iter().map(|p| &p.meeting_id).collect();
        assert_eq!(ids.len(), 10);

        // Two senders a meeting.
        let s = resolve(&Audience::for_viewers(200, 2, 49).load(true));
        assert_eq!(s.clients.len(), 4 * 2 + 4 * 49);
    }

    /// The send and receive shapes' configs are as before: no tokens, no viewers.
    #[test]
    fn plain_config_has_no_viewers() {
        let s = resolve(&Load {
            clients: 6,
            meeting_size: 3,
            viewers: 0,
            tokens: false,
            ramp_ms: 5,
            secs: 10,
        });
        assert_eq!(s.clients.len(), 6);
        assert!(s.clients.iter().all(|p| !p.viewer));
        assert_eq!(s.clients[5].meeting_id, "room-1");
    }

    #[test]
    fn tables_are_markdown() {
        let rows = [
            Row {
                shape: "send".into(),
                clients: 10,
                ..Row::default()
            },
            Row {
                shape: "viewers".into(),
                clients: 49,
                meeting_size: 50,
                senders: 1,
                senders_alone_mcpu: Some(4.26),
                video_fps_p5: Some(29.94),
                ..Row::default()
            },
        ];
        let t = table(&rows);
        assert_eq!(t.lines().count(), 4);
        assert!(t.lines().all(|l| l.matches('|').count() == 18), "{t}");
        assert!(t
            .lines()
            .nth(2)
            .unwrap()
            .starts_with("| send | 10 | 0 | 0.00 | 0.000 | - |"));
        let t = receivers_table(&rows);
        assert_eq!(
            t.lines().nth(2),
            Some("| viewers | 49 | 50 | 1 | 4.3 | 0.000 | - | 0.0 | 0.000 | 0 | - | 29.9 |")
        );
    }

    #[test]
    fn per_viewer_subtracts_the_senders() {
        let with = Cost {
            cores: 0.50,
            rss_bytes: 150e6,
        };
        let alone = Cost {
            cores: 0.10,
            rss_bytes: 100e6,
        };
        let v = per_viewer(with, alone, 200, 200.0 * 80.0);
        assert!((v.mcpu - 2.0).abs() < 1e-9, "{v:?}");
        assert!((v.us_per_received_packet.unwrap() - 25.0).abs() < 1e-9);
        assert!((v.rss_mb - 0.25).abs() < 1e-9);
        assert_eq!(
            per_viewer(with, alone, 200, 0.0).us_per_received_packet,
            None
        );
    }

    #[test]
    fn viewers_compare_with_the_receive_row_taking_in_as_much() {
        let r = |shape: &str, clients, recv| Row {
            shape: shape.into(),
            clients,
            received_per_client_s: recv,
            ..Row::default()
        };
        let rows = [
            r("send", 200, 0.0),
            r("receive", 200, 729.0),
            r("receive", 100, 81.0),
            r("receive", 200, 81.0),
            r("viewers", 196, 80.6),
        ];
        let peer = peer_of(&rows, &rows[4]).unwrap();
        assert_eq!((peer.clients, peer.received_per_client_s), (200, 81.0));
        assert!(peer_of(&rows[..1], &rows[4]).is_none());
    }
}
