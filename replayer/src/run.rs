//! A whole run: map the pack, start the embedded relay when no server is
//! given, start the clients on a linear ramp, watch progress, stop on time or
//! on a signal, and build the report.

use std::collections::{BTreeMap, HashSet};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;
use synth_common::pack::{Reader, TrackKind};
use tokio::sync::{watch, Semaphore};

use crate::client::{self, Shared, Spec};
use crate::config::{ClientPlan, Credentials, Settings, Trust};
use crate::metrics::{Media, Metrics, State};
use crate::report::{Inputs, Report};

/// Exit code when a threshold failed.
pub const EXIT_THRESHOLD: i32 = 3;
/// Exit code for a config or usage error.
pub const EXIT_CONFIG: i32 = 2;

/// A run refused before it started because of its input (the pack, or a
/// rendition the pack lacks): the CLI exits with [`EXIT_CONFIG`] for it.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct BadInput(anyhow::Error);

/// How the run may be stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signals {
    /// Ctrl-C and SIGTERM stop the run (a second one exits at once).
    Install,
    /// Leave signals alone (library use, tests).
    Ignore,
}

/// What the caller asks for besides the settings.
#[derive(Debug)]
pub struct Options {
    /// Signal handling.
    pub signals: Signals,
    /// Print progress lines on stderr.
    pub progress: bool,
    /// Print the summary on stdout at the end.
    pub summary: bool,
    /// Told the metrics endpoint's address once it is bound (useful with port 0).
    pub metrics_bound: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
    /// Completing this stops the run early, like a signal (library use, tests).
    pub stop: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            signals: Signals::Install,
            progress: true,
            summary: true,
            metrics_bound: None,
            stop: None,
        }
    }
}

/// The result of a run.
#[derive(Debug)]
pub struct Outcome {
    /// The report.
    pub report: Report,
    /// Process exit code: 0, or [`EXIT_THRESHOLD`].
    pub exit_code: i32,
    /// Address of the metrics endpoint, if one was served.
    pub metrics_addr: Option<SocketAddr>,
    /// Everything measured, per client.
    pub metrics: Arc<Metrics>,
}

/// A pack with the tracks resolved for each client.
#[derive(Debug)]
pub struct Resolved {
    /// The mapped pack.
    pub pack: Arc<Reader>,
    /// The audio track.
    pub audio_track: Option<usize>,
    /// Per client: the video track (if video is on).
    pub video_tracks: Vec<Option<usize>>,
    /// Per client: pack bitrate (bps) of the audio and video it sends.
    pub target_bps: Vec<[f64; 2]>,
}

/// Opens the pack and resolves every client's tracks.
pub fn resolve_pack(path: &Path, clients: &[ClientPlan]) -> anyhow::Result<Resolved> {
    if !path.exists() {
        bail!(
            "opening pack {}: no such file (build one with `synth-encode build -o {}`, or set --pack)",
            path.display(),
            path.display()
        );
    }
    let pack = Reader::open(path).with_context(|| format!("opening pack {}", path.display()))?;
    let audio_track = pack.first_track(TrackKind::Audio);
    let bitrate: Vec<f64> = (0..pack.tracks().len())
        .map(|t| pack.bitrate_bps(t))
        .collect();
    let videos: Vec<&str> = pack
        .tracks()
        .iter()
        .filter(|t| t.kind == TrackKind::Video)
        .map(|t| t.name.as_str())
        .collect();
    let mut video_tracks = Vec::with_capacity(clients.len());
    let mut target_bps = Vec::with_capacity(clients.len());
    for c in clients {
        if c.audio && audio_track.is_none() {
            bail!(
                "client {} wants audio but pack {} has no audio track",
                c.user_id,
                path.display()
            );
        }
        let video = if c.video {
            let t = match &c.rendition {
                Some(name) => pack
                    .track_by_name(name)
                    .filter(|&t| pack.tracks()[t].kind == TrackKind::Video)
                    .with_context(|| {
                        format!(
                            "client {}: rendition {name:?} is not a video track of pack {} (it has: {})",
                            c.user_id,
                            path.display(),
                            videos.join(", ")
                        )
                    })?,
                None => pack.first_track(TrackKind::Video).with_context(|| {
                    format!("client {} wants video but pack {} has no video track", c.user_id, path.display())
                })?,
            };
            Some(t)
        } else {
            None
        };
        target_bps.push([
            audio_track.filter(|_| c.audio).map_or(0.0, |t| bitrate[t]),
            video.map_or(0.0, |t| bitrate[t]),
        ]);
        video_tracks.push(video);
    }
    Ok(Resolved {
        pack: Arc::new(pack),
        audio_track,
        video_tracks,
        target_bps,
    })
}

/// The plan as `validate` prints it.
#[derive(Debug, Serialize)]
pub struct PlanSummary {
    /// Server, or the embedded relay.
    pub server: String,
    /// Pack path.
    pub pack: String,
    /// Run length, seconds.
    pub duration_s: f64,
    /// Time until the last client starts, seconds.
    pub ramp_up_s: f64,
    /// Every client.
    pub clients: Vec<PlanClient>,
    /// Clients per meeting.
    pub meetings: BTreeMap<String, usize>,
    /// Expected send bitrate of all clients together, kbps.
    pub expected_kbps: ExpectedKbps,
    /// Warnings about the plan.
    pub warnings: Vec<String>,
}

/// One client in [`PlanSummary`].
#[derive(Debug, Serialize)]
pub struct PlanClient {
    /// User id.
    pub user_id: String,
    /// Meeting id.
    pub meeting_id: String,
    /// Sends audio.
    pub audio: bool,
    /// Sends video.
    pub video: bool,
    /// Video track name, if video is on.
    pub rendition: Option<String>,
}

/// Expected bitrates.
#[derive(Debug, Serialize)]
pub struct ExpectedKbps {
    /// Audio, all clients.
    pub audio: f64,
    /// Video, all clients.
    pub video: f64,
}

/// Expands and checks the plan against the pack, without connecting.
pub fn plan_summary(s: &Settings) -> anyhow::Result<PlanSummary> {
    let r = resolve_pack(&s.pack, &s.clients)?;
    let mut meetings = BTreeMap::new();
    let mut clients = Vec::with_capacity(s.clients.len());
    let (mut audio, mut video) = (0.0, 0.0);
    for ((c, v), t) in s.clients.iter().zip(&r.video_tracks).zip(&r.target_bps) {
        *meetings.entry(c.meeting_id.clone()).or_insert(0) += 1;
        audio += t[0] / 1000.0;
        video += t[1] / 1000.0;
        clients.push(PlanClient {
            user_id: c.user_id.clone(),
            meeting_id: c.meeting_id.clone(),
            audio: c.audio,
            video: c.video,
            rendition: v.map(|t| r.pack.tracks()[t].name.clone()),
        });
    }
    let ramp = s.ramp_up_delay * (s.clients.len().saturating_sub(1) as u32);
    let mut warnings = Vec::new();
    if ramp >= s.duration {
        warnings.push(format!(
            "the ramp-up ({:.1} s for {} clients) is not shorter than the duration ({:.1} s): the last clients will not start",
            ramp.as_secs_f64(),
            s.clients.len(),
            s.duration.as_secs_f64()
        ));
    }
    if let Some((m, n)) = meetings.iter().find(|(_, n)| **n == 1) {
        if meetings.len() > 1 || s.clients.len() == 1 {
            warnings.push(format!(
                "meeting {m} has {n} participant: nobody receives its media"
            ));
        }
    }
    Ok(PlanSummary {
        server: server_label(s),
        pack: s.pack.display().to_string(),
        duration_s: s.duration.as_secs_f64(),
        ramp_up_s: ramp.as_secs_f64(),
        clients,
        meetings,
        expected_kbps: ExpectedKbps {
            audio: (audio * 10.0).round() / 10.0,
            video: (video * 10.0).round() / 10.0,
        },
        warnings,
    })
}

fn server_label(s: &Settings) -> String {
    s.server_url
        .as_ref()
        .map_or("embedded relay (in-process, 127.0.0.1)".to_string(), |u| {
            u.to_string()
        })
}

/// Runs the load test described by `s`.
pub async fn run(s: Settings, mut opts: Options) -> anyhow::Result<Outcome> {
    let resolved = resolve_pack(&s.pack, &s.clients).map_err(BadInput)?;
    let metrics = Arc::new(Metrics::new(s.clients.len()));

    // Without a server, the embedded relay is the target: pinned by hash.
    let mut relay = None;
    let (server, trust, label) = match &s.server_url {
        Some(u) => (u.clone(), s.trust.clone(), u.to_string()),
        None => {
            let jwt_secret = match &s.credentials {
                Credentials::Mint { secret, .. } => Some(secret.clone()),
                _ => None,
            };
            let r = synth_relay::Relay::start(synth_relay::RelayConfig {
                jwt_secret,
                ..synth_relay::RelayConfig::default()
            })
            .await
            .context("starting the embedded relay")?;
            let url: url::Url = r.url().parse().context("relay URL")?;
            let label = format!("embedded relay {url}");
            let trust = Trust::Pinned(vec![r.cert_sha256()]);
            relay = Some(r);
            (url, trust, label)
        }
    };

    let metrics_addr = match s.metrics_listen {
        Some(addr) => Some(crate::http::serve(addr, metrics.clone()).await?),
        None => None,
    };
    if let (Some((addr, _)), Some(tx)) = (&metrics_addr, opts.metrics_bound.take()) {
        let _ = tx.send(*addr);
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        pack: resolved.pack.clone(),
        server: server.clone(),
        credentials: s.credentials.clone(),
        connect_timeout: s.connect_timeout,
        connect_attempts: s.connect_attempts,
        heartbeat_interval: s.heartbeat_interval,
        batch_window: s.batch_window,
        connect_slots: Semaphore::new(s.max_concurrent_connects),
        metrics: metrics.clone(),
        ours: s
            .clients
            .iter()
            .map(|c| c.user_id.as_bytes().into())
            .collect::<HashSet<_>>(),
        audio_track: resolved.audio_track,
        stop: stop_rx,
    });

    let t0 = Instant::now();
    let deadline = t0 + s.duration;
    let threads = s.threads.clamp(1, s.clients.len().max(1));
    let mut per_thread: Vec<Vec<Spec>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, plan) in s.clients.iter().enumerate() {
        // Spread each client's media phase over one audio frame (20 ms), so a
        // ramp in multiples of 20 ms does not line every client up.
        let phase = Duration::from_micros((i as u64 * 7_919) % 20_000);
        per_thread[i % threads].push(Spec {
            plan: plan.clone(),
            video_track: resolved.video_tracks[i],
            start_at: t0 + s.ramp_up_delay * i as u32,
            phase,
        });
    }
    let bind = crate::transport::bind_for(&server);
    let mut tasks = Vec::with_capacity(threads);
    for (k, specs) in per_thread.into_iter().enumerate() {
        tasks.push(spawn_thread(k, shared.clone(), trust.clone(), bind, specs).await?);
    }
    metrics.ready.store(true, Relaxed);
    tracing::info!(clients = s.clients.len(), server = %label, "run started");

    let mut progress = opts
        .progress
        .then(|| Progress::new(std::io::stderr().is_terminal()));
    let external = opts.stop.take();
    let mode = opts.signals;
    let mut signals = Box::pin(async move {
        match external {
            Some(rx) => tokio::select! {
                _ = signals(mode) => {}
                r = rx => if r.is_err() { std::future::pending::<()>().await },
            },
            None => signals(mode).await,
        }
    });
    let stopped_by = loop {
        let tick = Instant::now()
            + Duration::from_secs(if progress.as_ref().is_some_and(|p| p.tty) {
                1
            } else {
                5
            });
        tokio::select! {
            _ = tokio::time::sleep_until(deadline.min(tick).into()) => {}
            _ = &mut signals => break "signal",
        }
        if let Some(p) = progress.as_mut() {
            p.print(&metrics);
        }
        if Instant::now() >= deadline {
            break "duration";
        }
        let states = metrics.states();
        if states[State::Failed as usize] == s.clients.len() as u64 {
            break "failure";
        }
    };
    if let Some(p) = progress.as_mut() {
        p.finish();
    }
    let _ = stop_tx.send(true);
    if stopped_by == "signal" && mode == Signals::Install {
        // A second signal exits at once.
        tokio::spawn(async move {
            signals_once().await;
            eprintln!("second signal: exiting now");
            std::process::exit(130);
        });
        eprintln!("stopping: closing sessions (signal again to exit at once)");
    }
    let all_done = async {
        for t in tasks {
            let _ = t.await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(5), all_done)
        .await
        .is_err()
    {
        tracing::warn!("some clients did not stop within 5 s");
    }

    let report = Report::build(
        &metrics,
        &Inputs {
            plan: &s.clients,
            target_bps: &resolved.target_bps,
            server: label,
            pack: s.pack.display().to_string(),
            stopped_by,
            thresholds: &s.thresholds,
        },
    );
    if let Some(r) = relay {
        r.shutdown().await;
    }
    if let Some((_, task)) = &metrics_addr {
        task.abort();
    }
    if let Some(path) = &s.report {
        write_report(path, &report)?;
    }
    if opts.summary {
        print!("{}", report.summary());
    }
    if report.clients.failed > 0 && report.clients.connected > 0 {
        if let Some(first) = metrics.first_failure.lock().ok().and_then(|f| f.clone()) {
            eprintln!(
                "warning: {} of {} clients failed; the first: {first}",
                report.clients.failed, report.clients.planned
            );
        }
    }
    if report.clients.connected == 0 {
        let first = metrics
            .first_failure
            .lock()
            .ok()
            .and_then(|f| f.clone())
            .unwrap_or_else(|| "no client connected before the run ended".to_string());
        bail!("no client could connect: {first}");
    }
    let exit_code = if report.passed { 0 } else { EXIT_THRESHOLD };
    Ok(Outcome {
        report,
        exit_code,
        metrics_addr: metrics_addr.map(|(a, _)| a),
        metrics,
    })
}

/// Writes the JSON report (to a temporary name first, so a reader never sees half of it).
pub fn write_report(path: &Path, report: &Report) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the report's folder {}", dir.display()))?;
    }
    let json = serde_json::to_vec_pretty(report).context("encoding the report")?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, json).with_context(|| format!("writing report {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing report {}", path.display()))?;
    Ok(())
}

/// Starts a thread that runs `specs` on a current-thread runtime with its own
/// QUIC endpoint (UDP socket). A client's sender, receiver and connection
/// driver then share one thread and one cache, and never wake each other
/// across cores. Resolves once the endpoint is up; the returned receiver
/// completes when every client of the thread has finished.
async fn spawn_thread(
    k: usize,
    shared: Arc<Shared>,
    trust: Trust,
    bind: SocketAddr,
    specs: Vec<Spec>,
) -> anyhow::Result<tokio::sync::oneshot::Receiver<()>> {
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<anyhow::Result<()>>();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(format!("clients-{k}"))
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ =
                        ready_tx.send(Err(anyhow::Error::new(e).context("client thread runtime")));
                    return;
                }
            };
            rt.block_on(async move {
                let endpoint = match crate::transport::client(&trust, bind) {
                    Ok(e) => e,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let tasks: Vec<_> = specs
                    .into_iter()
                    .map(|spec| tokio::spawn(client::run(shared.clone(), endpoint.clone(), spec)))
                    .collect();
                for t in tasks {
                    let _ = t.await;
                }
                // The sessions are closed; give their CLOSE frames a moment to leave.
                tokio::time::sleep(Duration::from_millis(50)).await;
            });
            let _ = done_tx.send(());
        })
        .context("starting a client thread")?;
    ready_rx
        .await
        .context("client thread ended before its endpoint was up")??;
    Ok(done_rx)
}

/// Completes on the first Ctrl-C or SIGTERM (never, with [`Signals::Ignore`]).
async fn signals(mode: Signals) {
    if mode == Signals::Ignore {
        std::future::pending::<()>().await;
    }
    signals_once().await;
}

async fn signals_once() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The live progress line.
struct Progress {
    tty: bool,
    last: Instant,
    sent: u64,
    recv: u64,
    printed: bool,
}

impl Progress {
    fn new(tty: bool) -> Progress {
        Progress {
            tty,
            last: Instant::now(),
            sent: 0,
            recv: 0,
            printed: false,
        }
    }

    fn print(&mut self, m: &Metrics) {
        let now = Instant::now();
        let secs = now.duration_since(self.last).as_secs_f64().max(1e-3);
        let sent = m.sum(|c| c.sent_bytes.iter().map(|b| b.load(Relaxed)).sum());
        let recv = m.sum(|c| c.recv_bytes.iter().map(|b| b.load(Relaxed)).sum());
        let out = (sent - self.sent) as f64 * 8.0 / secs / 1e6;
        let inn = (recv - self.recv) as f64 * 8.0 / secs / 1e6;
        (self.last, self.sent, self.recv) = (now, sent, recv);
        let st = m.states();
        let lateness = m.lateness.merged();
        let p99 = if lateness.is_empty() {
            "-".to_string()
        } else {
            format!("{:.1}", lateness.value_at_quantile(0.99) as f64 / 1000.0)
        };
        let errors = m.sum(|c| c.send_errors.load(Relaxed))
            + m.connect_failures
                .iter()
                .map(|f| f.load(Relaxed))
                .sum::<u64>();
        let line = format!(
            "[{:>6.1}s] clients {}/{} connected ({} connecting, {} reconnecting, {} failed) | out {:.1} Mbit/s in {:.1} Mbit/s | lateness p99 {} ms | errors {} | audio sent {}",
            m.started.elapsed().as_secs_f64(),
            st[State::Connected as usize],
            m.clients.len(),
            st[State::Connecting as usize],
            st[State::Reconnecting as usize],
            st[State::Failed as usize],
            out,
            inn,
            p99,
            errors,
            m.sum(|c| c.sent_packets[Media::Audio as usize].load(Relaxed)),
        );
        if self.tty {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("{line}");
        }
        self.printed = true;
    }

    fn finish(&mut self) {
        if self.tty && self.printed {
            eprintln!();
        }
    }
}
